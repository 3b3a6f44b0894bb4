"""feeds.yaml: loading and validation.

Every problem becomes a `ConfigError` whose message is one line naming the file, the entry
(with its line) and the fix, so a cron user can act on it without reading the code.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from aggregator.schedule import MIN_INTERVAL_FLOOR_MINUTES  # the polling floor's floor
from aggregator.text import http_url_problem, outlet_name, plural

DEFAULT_CONFIG = Path("feeds.yaml")
DEFAULT_MODEL = "all-MiniLM-L6-v2"
MAX_WINDOW_HOURS = 1_000_000  # about 114 years: the window's start must stay a representable date


class ConfigError(Exception):
    """A problem in feeds.yaml; str() is a single line meant for the user."""


@dataclass(frozen=True, slots=True)
class FeedConfig:
    url: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    allow_private: bool = False
    min_interval_minutes: int | None = None  # this feed's floor: see poller._floor
    full_text: bool | None = None  # None: the top-level `full_text`


@dataclass(frozen=True, slots=True)
class SiteSettings:
    title: str = "Daily digest"
    base_url: str | None = None
    timezone: str = "UTC"
    static: Path | None = None  # a folder whose files are copied into every build


@dataclass(frozen=True, slots=True)
class EmailSettings:
    to: tuple[str, ...] = ()
    sender: str = "aggregator@localhost"
    subject: str = "Daily digest"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    security: str = "none"  # "none" | "starttls" | "ssl"
    username_env: str | None = None
    password_env: str | None = None
    max_stories: int = 20
    # "HH:MM" in site.timezone: `--email` runs before it send nothing (an hourly cron's 00:07
    # run would send the day's digest holding yesterday's news); None: any time
    send_after: str | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingSettings:
    backend: str = "auto"  # "auto" | "onnx" | "torch"
    max_tokens: int = 112  # = embed.DEFAULT_MAX_TOKENS (not imported: it would pull in numpy)
    threads: int | None = None


@dataclass(frozen=True, slots=True)
class PollSettings:
    concurrency: int = 32
    per_host: int = 2
    timeout_seconds: float = 30.0
    max_body_mb: float = 10.0
    max_items: int = 500  # entries taken from one fetch of a feed, the newest
    min_interval_minutes: int = 60  # shortest time between two polls of a feed
    unconditional_interval_minutes: int = 240  # the same when the server sends no validators


@dataclass(frozen=True, slots=True)
class CoverageDimension:
    """One `coverage:` dimension: a name and the feed tags that are its values, in order."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    lease_seconds: int = 600  # a claim by a worker that died is taken again after this
    idle_seconds: float = 30.0  # a looping worker with nothing due checks again after this


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    feeds: tuple[FeedConfig, ...]
    database: Path | str  # a SQLite file, or a postgresql:// URL (see aggregator.db)
    output: Path
    window_hours: float = 24.0
    model: str = DEFAULT_MODEL
    site: SiteSettings = field(default_factory=SiteSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    poll: PollSettings = field(default_factory=PollSettings)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    grouping: Mapping[str, Any] = field(default_factory=dict)  # validated GroupingParams fields
    templates: Path | None = None
    allow_private: bool = False
    coverage: tuple[CoverageDimension, ...] = ()
    warnings: tuple[str, ...] = ()  # one line each, for the CLI to print once; never fatal
    full_text: bool = False  # fetch article pages for every feed (a feed may say otherwise)
    # how long an item's article text is kept, from its date; None: for good
    keep_full_text_days: float | None = None
    # The line of each setting the file gives a value (`model`, `embedding.backend`): a
    # problem found only when a setting is used still names its line.
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)
    # Where `database` came from when not from the file (AGGREGATOR_DATABASE, the demo's own).
    database_source: str | None = field(default=None, compare=False)

    def where(self, setting: str, default_noted: bool = True) -> str:
        """`feeds.yaml:4: model`, to start a message about a setting that failed in use, as
        the loader's messages start; one the file leaves out is said to be the default (unless
        not `default_noted`: a setting with no default), and a database given otherwise
        names its source."""
        if setting == "database" and self.database_source:
            return f"{self.database_source} (database)"
        line = self.lines.get(setting)
        if line is not None:
            return f"{self.path}:{line}: {setting}"
        return f"{self.path}: {setting}" + (" (not set: the default)" if default_noted else "")

    def with_database(self, database: Path | str, source: str) -> Config:
        """This configuration with another database, given by `source` (not the file)."""
        return dataclasses.replace(self, database=database, database_source=source)

    def own_file(self, path: Path) -> str | None:
        """What ``path`` is to this configuration, if it is one of its files ("feeds.yaml",
        "the database", a page the site's build wrote): a command that writes a file the user
        names must not overwrite it."""
        target = path.expanduser().resolve()
        if target == self.path.resolve():
            return self.path.name
        if isinstance(self.database, Path):
            for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
                if target == Path(f"{self.database.resolve()}{suffix}"):
                    return f"the database ({self.database.name}{suffix})"
        output = self.output.expanduser().resolve()
        if target.is_relative_to(output):
            from aggregator.site import built_file

            relative = target.relative_to(output).as_posix()
            if built_file(output, relative):
                return f"a file of the site ({relative} in {self.output}), which `build` writes"
        return None

    def feed(self, url: str) -> FeedConfig | None:
        """The configured feed that is `url`, however its scheme, host or port is spelled."""
        key = feed_key(url)
        return next((f for f in self.feeds if feed_key(f.url) == key), None)

    def wants_full_text(self, feed: FeedConfig) -> bool:
        return self.full_text if feed.full_text is None else feed.full_text

    def grouping_params(self) -> Any:
        from aggregator.grouping import GroupingParams

        return GroupingParams(**self.grouping)


# ------------------------------------------------------------------ feed URLs

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def normalise_url(url: str) -> str:
    """The URL with its scheme and host in lower case and a default port dropped; the path,
    query and any user name are kept exactly (servers may treat their case as meaningful)."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: leave the URL for validation to refuse
        return url.strip()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))


def feed_key(url: str) -> str:
    """What two spellings of the same feed share: the normalised URL, with the host's loopback
    names (localhost, 127.0.0.1, ::1), an IP address however written (127.1, 2130706433,
    ::ffff:127.0.0.1) and a trailing dot on the host counted as one, and the path as RFC 3986
    compares it (no dot segments; %73 is s, %2f stays %2F)."""
    parts = urlsplit(normalise_url(url))
    host = _ip_as_written_once((parts.hostname or "").rstrip("."))
    if host in _LOOPBACK_NAMES:
        host = "localhost"
    try:
        netloc = host if parts.port is None else f"{host}:{parts.port}"
    except ValueError:
        return url.strip()
    path = _without_dot_segments(_unreserved_decoded(parts.path)) or "/"
    return urlunsplit((parts.scheme, netloc, path, _unreserved_decoded(parts.query), ""))


_ESCAPED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
_NUMERIC_HOST = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)(?:\.(?:0[xX][0-9A-Fa-f]*|[0-9]+)){0,3}")


def _unreserved_decoded(text: str) -> str:
    """RFC 3986 6.2.2.2: an escaped unreserved character is that character; other escapes
    are kept, in upper case."""

    def one(escape: re.Match[str]) -> str:
        char = chr(int(escape.group(1), 16))
        return char if char in _UNRESERVED else escape.group().upper()

    return _ESCAPED.sub(one, text) if "%" in text else text


def _without_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4: "/a/./b/../c" is "/a/c"."""
    if "." not in path:
        return path
    segments = path.split("/")
    kept: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and len(kept) > 1:
                kept.pop()
            if last:
                kept.append("")
            continue
        kept.append(segment)
    return "/".join(kept)


def _ip_as_written_once(host: str) -> str:
    """An IP address in one form: IPv4 as four decimals (however the resolver would read it:
    "127.1", "2130706433", "0x7f.1"), an IPv4-mapped IPv6 address as its IPv4."""
    import ipaddress
    import socket

    if _NUMERIC_HOST.fullmatch(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return host
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return host
        return str(address.ipv4_mapped or address)
    return host


# ------------------------------------------------------------------ validation helpers


class _Where:
    """Formats 'file:line: entry' prefixes for messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.root: Any = None  # the file's top-level mapping, once read

    def error(self, node: Any, key: str | int | None, entry: str, message: str) -> ConfigError:
        """`entry` is the setting as the user writes it (`email.smtp_port`, `window_hours`);
        empty for the file's top level as a whole."""
        line = _line_of(node, key)
        top = entry.partition(".")[0]
        if line is None and key is None and isinstance(self.root, Mapping) and top in self.root:
            line = _line_of(self.root, top)  # a block given as a plain value (`poll: 5`)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {entry}: {message}" if entry else f"{where}: {message}")


def _setting(entry: str, key: str) -> str:
    """The setting's name as written in feeds.yaml: `email.smtp_port`, or `window_hours` at
    the top level (whose entry is empty)."""
    return f"{entry}.{key}" if entry else key


def _line_of(node: Any, key: str | int | None) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:  # a node made here (e.g. for an empty file)
        return None
    try:
        if key is None:
            return lc.line + 1
        if isinstance(key, int):
            return lc.item(key)[0] + 1
        return lc.key(key)[0] + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return lc.line + 1


def _check_keys(where: _Where, node: Mapping, allowed: set[str], entry: str) -> None:
    for key in node:
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            raise where.error(node, key, entry, f"unknown key {key!r} (allowed: {hint})")


_KIND_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
TOP = ""  # the entry of a top-level key: its messages name the key alone (`window_hours`)


def _typed(
    where: _Where, node: Mapping, key: str, kinds: type | tuple[type, ...], entry: str
) -> Any:
    value = node[key]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    # bool is an int in Python: never accept true/false where a number is meant.
    wrong_bool = isinstance(value, bool) and bool not in kinds
    if wrong_bool or not isinstance(value, kinds):
        wanted = (
            "a number"
            if set(kinds) == {int, float}
            else " or ".join(_KIND_WORDS.get(k, k.__name__) for k in kinds)
        )
        raise where.error(
            node, key, _setting(entry, key), f"must be {wanted}, got {_kind_name(value)}"
        )
    return value


def _kind_name(value: Any) -> str:
    """The value and what kind of value YAML read it as, in plain words (never a Python or
    ruamel type name): `2.5 (a number with a decimal point)`, `'soon' (a string)`."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (true/false)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int):
        return f"{int(value)} (a whole number)"
    if isinstance(value, float):
        return f"{_number_text(value)} (a number with a decimal point)"
    if isinstance(value, str):
        return f"{str(value)!r} (a string)"
    if isinstance(value, date):  # YAML reads 2024-01-01 as a date
        return f"{value.isoformat()} (a date)"
    return "a value of another kind"


def _number_text(value: float) -> str:
    """A number as the user wrote it, near enough: 2.5, 1e-09, 99999, inf."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _number(
    where: _Where,
    node: Mapping,
    key: str,
    entry: str,
    *,
    integer: bool = False,
    above: float | None = None,
    least: float | None = None,
    below: float | None = None,
    most: float | None = None,
) -> Any:
    """A number (whole if `integer`) within the bounds given: greater than `above`, at least
    `least`, less than `below`, at most `most`; never nan or infinite. The message names the
    allowed range."""
    value = _typed(where, node, key, int if integer else (int, float), entry)
    in_range = (
        math.isfinite(value)
        and (above is None or value > above)
        and (least is None or value >= least)
        and (below is None or value < below)
        and (most is None or value <= most)
    )
    if not in_range:
        wanted = "a finite number " if not math.isfinite(value) else ""
        if integer:
            wanted = (
                "a whole number of " if least is not None and most is None else "a whole number "
            )
        if least is not None and most is not None:
            bounds = f"from {_number_text(least)} to {_number_text(most)}"
        else:
            bounds = " and ".join(
                f"{words} {_number_text(bound)}"
                for words, bound in (
                    ("greater than", above),
                    ("at least", least),
                    ("less than", below),
                    ("at most", most),
                )
                if bound is not None
            )
        raise where.error(
            node, key, _setting(entry, key), f"must be {wanted}{bounds}, got {_number_text(value)}"
        )
    return value


def _positive(where: _Where, node: Mapping, key: str, entry: str, *, integer: bool = False) -> Any:
    return _number(where, node, key, entry, integer=integer, above=0)


def _http_url(where: _Where, node: Mapping, key: str, entry: str) -> str:
    url = _typed(where, node, key, str, entry).strip()
    problem = http_url_problem(url)
    if problem:
        raise where.error(node, key, _setting(entry, key), f"{url!r} {problem}")
    return url


# ------------------------------------------------------------------ sections


def _parse_feeds(where: _Where, root: Mapping) -> tuple[FeedConfig, ...]:
    if "feeds" not in root:
        raise where.error(
            root, None, "feeds", "missing: add a `feeds:` list of `- url: https://...`"
        )
    raw = root["feeds"]
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise where.error(
            root, "feeds", "feeds", "must be a list of entries like `- url: https://...`"
        )
    feeds: list[FeedConfig] = []
    seen: dict[str, tuple[int, str]] = {}
    for index, entry in enumerate(raw):
        label = f"feeds[{index}]"
        if isinstance(entry, str):  # `- https://...` shorthand
            entry = CommentedMap(url=entry)
            entry.lc.line = getattr(raw, "lc", None) and raw.lc.item(index)[0]
        if not isinstance(entry, Mapping):
            raise where.error(raw, index, label, "must be a mapping like `- url: https://...`")
        _check_keys(where, entry, _FEED_KEYS, label)
        if "url" not in entry:
            raise where.error(
                entry, None, label, "missing `url:` (add `url: https://.../feed.xml`)"
            )
        url = normalise_url(_http_url(where, entry, "url", label))
        key = feed_key(url)
        if key in seen:
            first, first_url = seen[key]
            same = "duplicates" if url == first_url else f"is the same feed as {first_url} in"
            raise where.error(
                entry,
                "url",
                label,
                f"{url} {same} feeds[{first}] (line {_line_of(raw, first) or '?'}): "
                "remove one of the two",
            )
        seen[key] = (index, url)
        try:
            feeds.append(
                FeedConfig(
                    url=url,
                    # as the site shows it: one of invisible characters only is no name
                    name=outlet_name(_optional_str(where, entry, "name", label) or "") or None,
                    tags=_tags(where, entry, label),
                    allow_private=_optional_bool(where, entry, "allow_private", label, False),
                    min_interval_minutes=_interval(where, entry, "min_interval_minutes", label)
                    if entry.get("min_interval_minutes") is not None
                    else None,
                    full_text=_optional_bool(where, entry, "full_text", label, None),
                )
            )
        except ConfigError as exc:
            raise ConfigError(f"{exc} (feed {url})") from None
    return tuple(feeds)


_FEED_KEYS = {"url", "name", "tags", "allow_private", "min_interval_minutes", "full_text"}


def _interval(where: _Where, node: Mapping, key: str, entry: str) -> int:
    """Minutes between two polls: a whole number, never below MIN_INTERVAL_FLOOR_MINUTES."""
    value = _positive(where, node, key, entry, integer=True)
    if value < MIN_INTERVAL_FLOOR_MINUTES:
        raise where.error(
            node,
            key,
            f"{entry}.{key}",
            f"must be at least {MIN_INTERVAL_FLOOR_MINUTES} (minutes), got {value}; "
            "to fetch a feed sooner once, run `aggregator poll --force URL`",
        )
    return value


def _optional_str(where: _Where, node: Mapping, key: str, entry: str) -> str | None:
    if node.get(key) is None:
        return None
    value = _typed(where, node, key, str, entry).strip()
    return value or None


def _optional_bool(where: _Where, node: Mapping, key: str, entry: str, default: Any) -> Any:
    if key not in node:
        return default
    return _typed(where, node, key, bool, entry)


def _tags(where: _Where, node: Mapping, entry: str) -> tuple[str, ...]:
    if node.get("tags") is None:
        return ()
    value = node["tags"]
    if type(value) is str and "," in value:  # unquoted `tags: world, europe`: one tag in YAML
        words = ", ".join(w.strip() for w in value.split(",") if w.strip())
        message = (
            f"a list is written in brackets: `tags: [{words}]` (one tag with a comma: quote it)"
        )
        raise where.error(node, "tags", f"{entry}.tags", message)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        message = "must be a list of words, e.g. [world, europe]" + _quote_hint(value)
        raise where.error(node, "tags", f"{entry}.tags", message)
    return tuple(dict.fromkeys(t.strip() for t in value))


def _quote_hint(value: Any) -> str:
    """YAML reads `[2024]` or `[true]` as a number or a boolean: say how to keep it a word."""
    values = value if isinstance(value, list) else [value]
    odd = [v for v in values if isinstance(v, int | float | bool)]
    if not odd:
        return ""
    shown = "true" if odd[0] is True else "false" if odd[0] is False else str(odd[0])
    return f"; quote numbers and true/false, e.g. ['{shown}']"


def _same_tag_spelling(
    feeds: tuple[FeedConfig, ...], dimensions: tuple[CoverageDimension, ...]
) -> tuple[tuple[FeedConfig, ...], tuple[CoverageDimension, ...]]:
    """Tags match ignoring case; here every spelling of a tag becomes one (the first in the
    file: `coverage:` first, then the feeds), so coverage, sections and pages all agree."""
    spelling: dict[str, str] = {}
    for tag in [v for d in dimensions for v in d.values] + [t for f in feeds for t in f.tags]:
        spelling.setdefault(tag.casefold(), tag)

    def one(tags: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(spelling[t.casefold()] for t in tags))

    return (
        tuple(dataclasses.replace(f, tags=one(f.tags)) for f in feeds),
        tuple(CoverageDimension(d.name, one(d.values)) for d in dimensions),
    )


# ------------------------------------------------------------------ settings blocks

# Reads one key of a block: (where, node, key, entry) -> value, or None for "use the default".
Reader = Callable[[_Where, Mapping, str, str], Any]


def _settings_block(
    where: _Where,
    node: Any,
    cls: type,
    entry: str,
    readers: Mapping[str, Reader],
    renamed: Mapping[str, str] | None = None,
) -> Any:
    """Any subset of a block's keys: each key given is validated by its reader, every other
    field keeps the dataclass's default (taken from an instance, never from the class: with
    slots a class attribute is a member descriptor, not the default)."""
    if node is None:
        return cls()
    if not isinstance(node, Mapping):
        keys = ", ".join(readers)
        raise where.error(node, None, entry, f"must be a mapping with some of: {keys}")
    _check_keys(where, node, set(readers), entry)
    renamed = renamed or {}
    values = {}
    for key in node:
        if node[key] is None:
            continue  # `key:` with nothing after it means the default
        value = readers[key](where, node, key, entry)
        if value is not None:
            values[renamed.get(key, key)] = value
    return cls(**values)


def _read_str(where: _Where, node: Mapping, key: str, entry: str) -> str | None:
    return _optional_str(where, node, key, entry)


def _read_positive_int(where: _Where, node: Mapping, key: str, entry: str) -> int:
    return _positive(where, node, key, entry, integer=True)


def _read_positive(where: _Where, node: Mapping, key: str, entry: str) -> float:
    return _positive(where, node, key, entry)


def _read_port(where: _Where, node: Mapping, key: str, entry: str) -> int:
    return _number(where, node, key, entry, integer=True, least=1, most=65535)


def _read_max_tokens(where: _Where, node: Mapping, key: str, entry: str) -> int:
    return _number(where, node, key, entry, integer=True, least=2)  # as embed.load_embedder


_CLOCK_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def _read_clock_time(where: _Where, node: Mapping, key: str, entry: str) -> str | None:
    """A local time of day, "07:00" (or an hour, 7), as "HH:MM"."""
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 23:
        return f"{value:02d}:00"
    match = _CLOCK_TIME.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise where.error(
            node, key, f"{entry}.{key}", f'must be a time of day such as "07:00", got {value!r}'
        )
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _read_choice(*choices: str) -> Reader:
    def read(where: _Where, node: Mapping, key: str, entry: str) -> str | None:
        value = _optional_str(where, node, key, entry)
        if value is not None and value not in choices:
            allowed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
            raise where.error(node, key, f"{entry}.{key}", f"must be {allowed}, got {value!r}")
        return value

    return read


def _read_base_url(where: _Where, node: Mapping, key: str, entry: str) -> str | None:
    if not node.get(key):
        return None
    return _http_url(where, node, key, entry).rstrip("/") + "/"


def _read_timezone(where: _Where, node: Mapping, key: str, entry: str) -> str | None:
    timezone = _optional_str(where, node, key, entry)
    if timezone is None:
        return None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise where.error(
            node, key, f"{entry}.{key}", f"unknown time zone {timezone!r} (e.g. Europe/Paris)"
        ) from None
    return timezone


def _read_folder(base: Path) -> Reader:
    def read(where: _Where, node: Mapping, key: str, entry: str) -> Path | None:
        value = _optional_str(where, node, key, entry)
        if value is None:
            return None
        folder = (base / Path(value).expanduser()).resolve()
        if not folder.is_dir():
            raise where.error(
                node,
                key,
                f"{entry}.{key}",
                f"{folder} is not a folder (create it, or fix the path; it is relative to "
                f"{where.path.name})",
            )
        return folder

    return read


def _parse_site(where: _Where, node: Any, base: Path) -> SiteSettings:
    readers = {
        "title": _read_str,
        "base_url": _read_base_url,
        "timezone": _read_timezone,
        "static": _read_folder(base),
    }
    return _settings_block(where, node, SiteSettings, "site", readers)


_EMAIL_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+$")


def _address(where: _Where, node: Mapping, key: str, value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL_ADDRESS.match(value.strip()):
        raise where.error(node, key, f"email.{key}", f"{value!r} is not an email address")
    return value.strip()


def _read_address(where: _Where, node: Mapping, key: str, entry: str) -> str:
    return _address(where, node, key, node[key])


def _read_addresses(where: _Where, node: Mapping, key: str, entry: str) -> tuple[str, ...]:
    raw = node[key]
    listed = [raw] if isinstance(raw, str) else raw
    if not isinstance(listed, list):
        raise where.error(node, key, f"{entry}.{key}", "must be an address or a list of addresses")
    return tuple(_address(where, node, key, a) for a in listed)


def _read_env_name(where: _Where, node: Mapping, key: str, entry: str) -> str | None:
    value = _optional_str(where, node, key, entry)
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise where.error(
            node, key, f"{entry}.{key}", "must be the NAME of an environment variable"
        )
    return value


def _parse_email(where: _Where, node: Any) -> EmailSettings:
    if isinstance(node, Mapping):
        for secret in ("password", "username"):
            if secret in node:
                raise where.error(
                    node,
                    secret,
                    f"email.{secret}",
                    f"never store credentials here: name an environment variable in {secret}_env",
                )
    readers = {
        "to": _read_addresses,
        "from": _read_address,
        "subject": _read_str,
        "smtp_host": _read_str,
        "smtp_port": _read_port,
        "security": _read_choice("none", "starttls", "ssl"),
        "username_env": _read_env_name,
        "password_env": _read_env_name,
        "max_stories": _read_positive_int,
        "send_after": _read_clock_time,
    }
    settings = _settings_block(where, node, EmailSettings, "email", readers, {"from": "sender"})
    if not isinstance(node, Mapping) or node.get("smtp_port") is None:
        port = {"ssl": 465, "starttls": 587}.get(settings.security, 25)  # follows security
        settings = dataclasses.replace(settings, smtp_port=port)
    return settings


def _parse_embedding(where: _Where, node: Any) -> EmbeddingSettings:
    readers = {
        "backend": _read_choice("auto", "onnx", "torch"),
        "max_tokens": _read_max_tokens,
        "threads": _read_positive_int,
    }
    return _settings_block(where, node, EmbeddingSettings, "embedding", readers)


def _parse_poll(where: _Where, node: Any) -> PollSettings:
    readers = {
        f.name: _interval
        if f.name.endswith("_interval_minutes")
        else _read_positive_int
        if f.type == "int"
        else _read_positive
        for f in dataclasses.fields(PollSettings)
    }
    return _settings_block(where, node, PollSettings, "poll", readers)


def _parse_workers(where: _Where, node: Any) -> WorkerSettings:
    readers = {
        "lease_seconds": _read_positive_int,
        "idle_seconds": _read_positive,
    }
    return _settings_block(where, node, WorkerSettings, "workers", readers)


def _parse_grouping(where: _Where, node: Any) -> dict[str, Any]:
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise where.error(node, None, "grouping", "must be a mapping of grouping parameters")
    from aggregator.grouping import CLUSTERERS, GroupingParams

    fields = {f.name: f for f in dataclasses.fields(GroupingParams)}
    _check_keys(where, node, set(fields), "grouping")
    values: dict[str, Any] = {}
    for key in node:
        if node[key] is None:
            continue  # `key:` with nothing after it means the default, as in the other blocks
        if key == "clusterer":
            values[key] = _read_choice(*CLUSTERERS)(where, node, key, "grouping")
        else:
            values[key] = _number(where, node, key, "grouping", **_GROUPING_RANGES[key])
    try:  # every key was checked above; this keeps the two in step
        GroupingParams(**values)
    except (TypeError, ValueError) as exc:
        raise where.error(node, None, "grouping", str(exc)) from None
    return values


# The allowed values of each numeric `grouping:` key (GroupingParams checks the same).
_GROUPING_RANGES: dict[str, dict[str, Any]] = {
    "min_cluster_size": {"integer": True, "least": 2},
    "min_samples": {"integer": True, "least": 1},
    "neighbors": {"integer": True, "least": 1},
    "min_similarity": {"least": 0, "most": 1},  # a cosine: above 1 no pair is ever neighbours
    "merge_probability": {"above": 0, "below": 1},
    "duplicate_jaccard": {"above": 0, "most": 1},  # a Jaccard: 0 would make every pair copies
}


_COVERAGE_EXAMPLE = "e.g. `lean: [left, center, right]`"


def _parse_coverage(where: _Where, node: Any) -> tuple[CoverageDimension, ...]:
    """`coverage:` maps a dimension name to the feed tags that are its values."""
    if node is None:
        return ()
    if not isinstance(node, Mapping):
        raise where.error(
            node, None, "coverage", f"must be a mapping of dimension to tags, {_COVERAGE_EXAMPLE}"
        )
    dimensions = []
    for name, values in node.items():
        if not isinstance(name, str) or not name.strip():
            raise where.error(
                node, name, "coverage", f"{name!r} is not a dimension name (a word like lean)"
            )
        entry = f"coverage.{name}"
        if values is None:
            continue  # an empty dimension is left out quietly
        if not isinstance(values, list) or not all(
            isinstance(v, str) and v.strip() for v in values
        ):
            message = f"must be a list of feed tags, {_COVERAGE_EXAMPLE}" + _quote_hint(values)
            raise where.error(node, name, entry, message)
        seen: set[str] = set()
        for value in values:
            if value.strip().casefold() in seen:
                raise where.error(node, name, entry, f"lists {value.strip()!r} twice: remove one")
            seen.add(value.strip().casefold())
        if values:
            dimensions.append(CoverageDimension(name.strip(), tuple(v.strip() for v in values)))
    return tuple(dimensions)


def _coverage_warnings(
    where: _Where,
    node: Any,
    dimensions: tuple[CoverageDimension, ...],
    feeds: tuple[FeedConfig, ...],
) -> tuple[str, ...]:
    """One line per dimension naming the tags no feed carries (tags match ignoring case)."""
    carried = {tag.casefold() for feed in feeds for tag in feed.tags}
    warnings = []
    for dimension in dimensions:
        missing = [v for v in dimension.values if v.casefold() not in carried]
        if missing:
            names = ", ".join(repr(v) for v in missing)
            tags = "tag" if len(missing) == 1 else "tags"
            fix = f"add the {tags} to a feed's `tags:` or remove {'it' if len(missing) == 1 else 'them'} here"
            message = f"no feed carries the {tags} {names} ({fix})"
            warnings.append(
                str(where.error(node, dimension.name, f"coverage.{dimension.name}", message))
            )
    return tuple(warnings)


def _path(where: _Where, root: Mapping, key: str, default: str, base: Path) -> Path:
    if root.get(key) is None:
        return (base / default).resolve()
    value = _typed(where, root, key, str, TOP)
    return (base / Path(value).expanduser()).resolve()


def _check_published(
    where: _Where, node: Any, key: str, entry: str, folder: Path, private: Mapping[Path, str]
) -> None:
    """Refuse a site (or site.static) folder that holds feeds.yaml or the database: a build
    would publish them (the database's -wal/-shm/lock files sit beside it)."""
    inside = [name for path, name in private.items() if path.is_relative_to(folder)]
    if inside:
        raise where.error(
            node,
            key,
            entry,
            f"{folder} holds {' and '.join(inside)}, which a build would publish; "
            f"use a folder of its own, e.g. `{entry}: {'site' if key == 'output' else 'static'}`",
        )


DATABASE_ENV = "AGGREGATOR_DATABASE"
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# A libpq "key=value" connection string (host=db dbname=news): not a file name, not a URL.
_LIBPQ_KEYWORDS = re.compile(
    r"^\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|options|"
    r"connect_timeout|application_name)\s*=",
    re.IGNORECASE,
)
_NO_PASSWORD = "put it in PGPASSWORD or ~/.pgpass"


def database_target(value: str, base: Path, where: str) -> Path | str:
    """A postgresql:// URL as it is (never with a password), else a SQLite path under base."""
    value = value.strip()
    if _LIBPQ_KEYWORDS.match(value):
        raise ConfigError(
            f"{where}: a key=value connection string is not supported: give a URL, "
            "postgresql://user@host:5432/dbname (the password in PGPASSWORD or ~/.pgpass)"
        )
    if not _URL_SCHEME.match(value):
        return (base / Path(value).expanduser()).resolve()
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"{where}: {parts.scheme}:// is not a supported database: give a SQLite file path "
            "or a postgresql://user@host:5432/dbname URL"
        )
    if parts.password is not None:
        raise ConfigError(
            f"{where}: never write the database password here: remove it from the URL and "
            f"{_NO_PASSWORD}"
        )
    if any(key.lower() == "password" for key, _ in parse_qsl(parts.query, True)):
        raise ConfigError(
            f"{where}: never write the database password here: remove ?password= from the "
            f"URL and {_NO_PASSWORD}"
        )
    return value


def _database(where: _Where, root: Mapping, base: Path) -> Path | str:
    if root.get("database") is None:
        return (base / "aggregator.db").resolve()
    value = _typed(where, root, "database", str, TOP)
    line = _line_of(root, "database")
    return database_target(value, base, f"{where.path}:{line}: database" if line else "database")


_TOP_KEYS = {
    "feeds", "database", "output", "window_hours", "site", "model", "email",
    "embedding", "poll", "grouping", "templates", "allow_private", "coverage", "full_text",
    "workers", "keep_full_text_days",
}  # fmt: skip


def yaml_syntax_error(path: Path, exc: MarkedYAMLError) -> str:
    """`feeds.yaml:3: YAML syntax error: ...`: where, and what, in one line."""
    mark = exc.problem_mark
    line = f":{mark.line + 1}" if mark else ""
    problem = (exc.problem or str(exc)).splitlines()[0]
    return f"{path}{line}: YAML syntax error: {problem}"


def parse_config(text: str, path: Path) -> Config:
    where = _Where(path)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True  # a quoted scalar says it is meant as written (see _tags)
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        raise ConfigError(yaml_syntax_error(path, exc)) from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {str(exc).splitlines()[0]}") from None
    if root is None:
        root = CommentedMap()
    if not isinstance(root, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping with a `feeds:` list")
    where.root = root
    _check_keys(where, root, _TOP_KEYS, TOP)
    base = path.resolve().parent
    window = (
        _number(where, root, "window_hours", TOP, above=0, most=MAX_WINDOW_HOURS)
        if "window_hours" in root
        else 24.0
    )
    model = _optional_str(where, root, "model", TOP) or DEFAULT_MODEL
    feeds, coverage = _same_tag_spelling(
        _parse_feeds(where, root), _parse_coverage(where, root.get("coverage"))
    )
    database = _database(where, root, base)
    output = _path(where, root, "output", "output", base)
    site = _parse_site(where, root.get("site"), base)
    private = {path.resolve(): path.name}
    if isinstance(database, Path):  # a PostgreSQL database is never in a folder
        private[database] = f"the database ({database.name})"
    _check_published(where, root, "output", "output", output, private)
    if site.static is not None:
        _check_published(where, root.get("site"), "static", "site.static", site.static, private)
    return Config(
        path=path,
        feeds=feeds,
        database=database,
        output=output,
        window_hours=float(window),
        model=model,
        site=site,
        email=_parse_email(where, root.get("email")),
        embedding=_parse_embedding(where, root.get("embedding")),
        poll=_parse_poll(where, root.get("poll")),
        workers=_parse_workers(where, root.get("workers")),
        grouping=_parse_grouping(where, root.get("grouping")),
        templates=_templates(where, root, base),
        allow_private=_optional_bool(where, root, "allow_private", TOP, False),
        coverage=coverage,
        warnings=_coverage_warnings(where, root.get("coverage"), coverage, feeds),
        full_text=_optional_bool(where, root, "full_text", TOP, False),
        keep_full_text_days=_keep_full_text_days(where, root, window),
        lines=_setting_lines(root),
    )


def _keep_full_text_days(where: _Where, root: Mapping, window_hours: float) -> float | None:
    """Days an item's article text is kept: at least the window, whose items are grouped
    (and embedded) with it."""
    if root.get("keep_full_text_days") is None:
        return None
    days = _number(where, root, "keep_full_text_days", TOP, above=0, most=MAX_WINDOW_HOURS // 24)
    if days * 24 < window_hours:
        raise where.error(
            root,
            "keep_full_text_days",
            "keep_full_text_days",
            f"{_number_text(days)} {'day is' if days == 1 else 'days is'} shorter than the "
            "window (window_hours: "
            f"{_number_text(window_hours)}), whose items are grouped with their article text; "
            f"keep it at least {plural(math.ceil(window_hours / 24), 'day')}",
        )
    return float(days)


def _setting_lines(node: Mapping, prefix: str = "") -> dict[str, int]:
    """The line of each top-level setting and of each key in a block (`embedding.backend`),
    leaving out those written empty: they mean the default."""
    lines: dict[str, int] = {}
    for key, value in node.items():
        line = _line_of(node, key)
        if value is None or (isinstance(value, str) and not value.strip()) or line is None:
            continue
        lines[f"{prefix}{key}"] = line
        if isinstance(value, Mapping) and not prefix:
            lines.update(_setting_lines(value, f"{key}."))
    return lines


def _templates(where: _Where, root: Mapping, base: Path) -> Path | None:
    """The user's template folder, which must exist: a misspelt one would be ignored in silence
    (the built-in templates serve every page it does not override)."""
    if not root.get("templates"):
        return None
    folder = _path(where, root, "templates", "", base)
    if not folder.is_dir():
        raise where.error(
            root,
            "templates",
            "templates",
            f"{folder} is not a folder: create it with the templates to override (e.g. "
            "base.html), or remove the setting",
        )
    return folder


def has_no_settings(path: Path) -> bool:
    """True for an empty or comments-only YAML file."""
    try:
        return YAML(typ="safe").load(path.read_text(encoding="utf-8")) is None
    except (OSError, UnicodeDecodeError, YAMLError):
        return False


def load_config(path: Path | str = DEFAULT_CONFIG) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        looked = "" if path.is_absolute() else f"looked for {path.absolute()}; "
        raise ConfigError(
            f"{path}: not found ({looked}create it, or pass --config PATH; see the README)"
        ) from None
    except UnicodeDecodeError as exc:  # Latin-1, or UTF-16 as Windows PowerShell writes
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text: save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    config = parse_config(text, path)
    override = os.environ.get(DATABASE_ENV, "").strip()
    if override:  # a deployment's database without editing the shared feeds.yaml
        config = config.with_database(
            database_target(override, Path.cwd(), DATABASE_ENV), DATABASE_ENV
        )
    if config.allow_private:
        config = dataclasses.replace(
            config, feeds=tuple(dataclasses.replace(f, allow_private=True) for f in config.feeds)
        )
    return config
