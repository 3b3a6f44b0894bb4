"""Edit the `feeds:` list of feeds.yaml in place, keeping the user's comments and layout.

ruamel.yaml's round-trip mode keeps comments, key order and quoting; we also keep the file's
list indentation (`- url:` or `  - url:`) and replace the file atomically, so a crash or a full
disk never leaves half a feeds.yaml behind.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from aggregator.config import FeedConfig, feed_key, yaml_syntax_error
from aggregator.text import name_key

NEW_FILE_HEADER = """\
# Feeds to poll. Each entry: url (required), name, tags, allow_private.
# Settings (database, output, window_hours, site, model, grouping, email) may follow.
"""


class FeedsFileError(ValueError):
    """feeds.yaml cannot be edited as asked; str() is one line for the user."""


class FeedExistsError(FeedsFileError):
    pass


def add_feed(
    path: Path | str,
    url: str,
    name: str | None = None,
    tags: Sequence[str] = (),
    *,
    allow_private: bool = False,
) -> None:
    """Append one feed; FeedExistsError if its URL is already listed. Creates the file if
    it does not exist."""
    added = add_feeds(path, [FeedConfig(url, name, tuple(tags), allow_private)])
    if not added:
        raise FeedExistsError(f"{path}: {url} is already in the feeds list")


def add_feeds(path: Path | str, feeds: Iterable[FeedConfig]) -> list[FeedConfig]:
    """Append the feeds whose URL is not listed yet (one write); returns those added."""
    path = Path(path)
    text, document, yaml, newline = _load(path)
    entries = _feed_list(document, path)
    present = {feed_key(_entry_url(e)) for e in entries}
    added: list[FeedConfig] = []
    for feed in feeds:
        if feed_key(feed.url) not in present:
            present.add(feed_key(feed.url))
            added.append(feed)
    if not added:
        return []
    for feed in added:
        if blank := next((t for t in feed.tags if not t.strip()), None):
            raise FeedsFileError(f"{path}: tag {blank!r} of {feed.url} is blank: give it a word")
    before = len(entries)
    if _editable_as_text(entries):
        # Insert the new lines right after the last entry: every other byte stays as it was.
        rendered = _render([_entry(f) for f in added], _dash_column(text, entries, 0))
        text = _insert_lines(text, _entry_end(text, entries, len(entries) - 1) + 1, rendered)
    else:  # an empty or flow-style list: only its value is written again, as a block list
        entries.extend(_entry(f) for f in added)
        text = _with_feeds_value(text, document, entries) or _dump(document, yaml, keep=text)
    _save(path, text, expected=before + len(added), added=added, newline=newline)
    return added


def remove_feed(path: Path | str, url_or_name: str) -> bool:
    """Remove the feed with this URL (or, failing that, this name, ignoring case). False if
    none matches; FeedsFileError if a name matches several feeds."""
    path = Path(path)
    text, document, yaml, newline = _load(path)
    entries = _feed_list(document, path)
    index = _find(entries, url_or_name, path)
    if index is None:
        return False
    before = len(entries)
    if _editable_as_text(entries):
        first, last = _entry_start(text, entries, index), _entry_end(text, entries, index)
        defined_at = entries.lc.item(index)[0]
        anchors = _anchors_used_elsewhere(document, entries[index], defined_at, (first, last))
        if anchors:
            raise FeedsFileError(
                f"{path}:{first + 1}: this feed's entry defines the YAML anchor "
                f"{', '.join('&' + a for a in anchors)} that other entries use as "
                f"{', '.join('*' + a for a in anchors)}: write the value into those entries, "
                "then remove this one (the file is unchanged)"
            )
    if _editable_as_text(entries):
        # Cut the entry's own lines; comments and blank lines around it stay.
        lines = text.splitlines(keepends=True)
        del lines[_entry_start(text, entries, index) : _entry_end(text, entries, index) + 1]
        text = "".join(lines)
    else:
        del entries[index]
        text = _with_feeds_value(text, document, entries) or _dump(document, yaml)
    _save(path, text, expected=before - 1, newline=newline)
    return True


# ---------------------------------------------------------------- helpers


def _anchors_used_elsewhere(
    document: Any, entry: Any, entry_line: int, lines: tuple[int, int]
) -> list[str]:
    """The YAML anchors that ``entry`` (its first key on ``entry_line``, its text on
    ``lines``, first and last) defines (``&world``) and the rest of the document uses
    (``*world``). ruamel gives an alias the anchored node itself, and the place of its
    definition: a node defined within the entry and met more often in the document than in
    the entry is used elsewhere (an alias in the entry, or "&world" in a comment, is not)."""
    inside: dict[int, str] = {}
    for node, line in _placed_nodes(entry, entry_line):
        anchor = getattr(getattr(node, "anchor", None), "value", None)
        if anchor and lines[0] <= line <= lines[1]:
            inside[id(node)] = anchor
    if not inside:
        return []
    in_entry = Counter(id(n) for n in _nodes(entry) if id(n) in inside)
    in_document = Counter(id(n) for n in _nodes(document) if id(n) in inside)
    return sorted({name for key, name in inside.items() if in_document[key] > in_entry[key]})


def _placed_nodes(node: Any, line: int, depth: int = 0) -> Iterable[tuple[Any, int]]:
    """``node`` (at ``line``) and the values inside it, each with the line where it is
    written: where it is defined, for a value an alias points at."""
    yield node, line
    if depth > 32:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            # a key a merge (`<<: *base`) brings has no place of its own here
            place = getattr(node, "lc", None) and node.lc.data.get(key)
            yield from _placed_nodes(value, place[2] if place else line, depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            at = node.lc.item(index)[0] if hasattr(node, "lc") else line
            yield from _placed_nodes(value, at, depth + 1)


def _nodes(node: Any, depth: int = 0) -> Iterable[Any]:
    """``node`` and every value inside it (an alias's node again where it is used); a
    recursive alias is read to a depth no feeds.yaml needs."""
    yield node
    if depth > 32:
        return
    if isinstance(node, dict):
        for value in node.values():
            yield from _nodes(value, depth + 1)
        for merged in getattr(node, "merge", ()):  # `<<: *base`: the map it takes keys from
            yield from _nodes(merged[1] if isinstance(merged, tuple) else merged, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value, depth + 1)


def _find(entries: list[Any], url_or_name: str, path: Path) -> int | None:
    wanted = url_or_name.strip()
    by_url = [i for i, e in enumerate(entries) if _same_url(_entry_url(e), wanted)]
    if by_url:
        return by_url[0]
    name = name_key(wanted)  # as the config reads names: the name shown is the one found
    by_name = [
        i
        for i, e in enumerate(entries)
        if isinstance(e, dict) and name and name_key(str(e.get("name") or "")) == name
    ]
    if len(by_name) > 1:
        urls = ", ".join(_entry_url(entries[i]) for i in by_name)
        raise FeedsFileError(f"{path}: several feeds are named {wanted!r} ({urls}): give the URL")
    return by_name[0] if by_name else None


def _same_url(a: str, b: str) -> bool:
    return a == b or a.rstrip("/") == b.rstrip("/") or feed_key(a) == feed_key(b)


def _entry_url(entry: Any) -> str:
    if isinstance(entry, str):  # `- https://...` shorthand
        return entry.strip()
    if isinstance(entry, dict):
        return str(entry.get("url") or "").strip()
    return ""


# A tag written as it is: letters, digits and a few marks that no YAML reader takes for syntax
# in a flow list ("?later", "x: ", "a, b" or a line separator are quoted).
_PLAIN_TAG = re.compile(r"[^\W_][\w.+&'/-]*(?: [\w.+&'/-]+)*")


def _entry(feed: FeedConfig) -> CommentedMap:
    entry = CommentedMap(url=feed.url)
    if feed.name:
        entry["name"] = feed.name
    if feed.tags:
        tags = CommentedSeq(
            tag if _PLAIN_TAG.fullmatch(tag) else DoubleQuotedScalarString(tag) for tag in feed.tags
        )
        tags.fa.set_flow_style()  # tags: [world, europe]
        entry["tags"] = tags
    if feed.allow_private:
        entry["allow_private"] = True
    return entry


def _read_back(entries: Sequence[Any], feeds: Sequence[FeedConfig]) -> bool:
    """Whether the entries as parsed are the feeds as written."""
    return all(
        isinstance(entry, dict)
        and entry.get("url") == feed.url
        and entry.get("name") == (feed.name or None)
        and list(entry.get("tags") or ()) == list(feed.tags)
        for entry, feed in zip(entries, feeds, strict=True)
    )


def _load(path: Path) -> tuple[str, CommentedMap, YAML, str]:
    """The file's text (lines ending in "\\n"), as parsed, the YAML that writes it, and the
    line ending the file uses (written back so: a Windows file stays one)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = (NEW_FILE_HEADER + "feeds: []\n").encode()
    except OSError as exc:
        raise FeedsFileError(f"{path}: cannot read: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FeedsFileError(f"{path}: not UTF-8 text: save it as UTF-8") from None
    newline = "\r\n" if "\r\n" in text else "\n"
    text = text.replace("\r\n", "\n")
    yaml = _yaml(_list_offset(text))
    document = _parse(yaml, text, path)
    return text, document, yaml, newline


def _yaml(offset: int) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long URLs or comments
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    return yaml


def _parse(yaml: YAML, text: str, path: Path) -> CommentedMap:
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:  # where, and what, as loading the configuration says it
        hint = "; indent with spaces, not tabs" if "\t" in _line(text, exc.problem_mark) else ""
        raise FeedsFileError(yaml_syntax_error(path, exc) + hint) from None
    except YAMLError as exc:
        raise FeedsFileError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap):
        raise FeedsFileError(f"{path}: must be a mapping with a `feeds:` list")
    return document


def _line(text: str, mark: Any) -> str:
    lines = text.splitlines()
    return lines[mark.line] if mark is not None and 0 <= mark.line < len(lines) else ""


def _feed_list(document: CommentedMap, path: Path) -> CommentedSeq:
    feeds = document.get("feeds")
    if feeds is None or feeds == []:
        fresh = CommentedSeq(feeds or [])
        document["feeds"] = fresh
        return fresh
    if not isinstance(feeds, list):
        raise FeedsFileError(f"{path}: `feeds:` must be a list of `- url: https://...` entries")
    return feeds


_LIST_ITEM = re.compile(r"^( *)- ", re.MULTILINE)


def _list_offset(text: str) -> int:
    """How far this file indents list dashes under their key (0 or usually 2)."""
    match = _LIST_ITEM.search(text)
    return len(match.group(1)) if match else 2


def _editable_as_text(entries: CommentedSeq) -> bool:
    """A non-empty block list whose line numbers ruamel recorded."""
    return len(entries) > 0 and not entries.fa.flow_style() and hasattr(entries, "lc")


def _entry_start(text: str, entries: CommentedSeq, index: int) -> int:
    """The line of the entry's dash: ruamel records its first key's, which is a line below
    when the dash stands alone or with a comment (`- # Reuters` then `  url: ...`)."""
    lines = text.splitlines()
    line, column = entries.lc.item(index)
    if lines[line][:column].strip().startswith("-"):
        return line
    for above in range(line - 1, -1, -1):
        stripped = lines[above].strip()
        if stripped == "-" or stripped.startswith(("- #", "-\t#")):
            return above
        if stripped and not stripped.startswith("#"):
            break
    return line


def _dash_column(text: str, entries: CommentedSeq, index: int) -> int:
    start = _entry_start(text, entries, index)
    line, column = entries.lc.item(index)
    row = text.splitlines()[start]
    if start != line:  # the dash alone on its line (a comment after it may hold a "-")
        return len(row) - len(row.lstrip())
    return max(row.rfind("-", 0, column), 0)


def _entry_end(text: str, entries: CommentedSeq, index: int) -> int:
    """Last line holding content of the entry (its trailing comments and blank lines belong
    to what follows)."""
    lines = text.splitlines()
    first = _entry_start(text, entries, index)
    if index + 1 < len(entries):
        stop = _entry_start(text, entries, index + 1)
    else:
        dash = _dash_column(text, entries, index)
        stop = next(
            (
                n
                for n in range(first + 1, len(lines))
                if lines[n].strip()
                and not lines[n].lstrip().startswith("#")
                and len(lines[n]) - len(lines[n].lstrip()) <= dash
            ),
            len(lines),
        )
    last = first
    for n in range(first + 1, stop):
        stripped = lines[n].strip()
        if stripped and not stripped.startswith("#"):
            last = n
    # comments indented under the entry, right after it, are its own
    dash = _dash_column(text, entries, index)
    while last + 1 < stop and _is_indented_comment(lines[last + 1], dash):
        last += 1
    return last


def _is_indented_comment(line: str, dash_column: int) -> bool:
    return line.lstrip().startswith("#") and len(line) - len(line.lstrip()) > dash_column


_FLOW_ON_ONE_LINE = re.compile(r"(\[[^#\n]*\])?\s*(#.*)?")


def _with_feeds_value(text: str, document: CommentedMap, entries: Sequence[Any]) -> str | None:
    """The text with only the `feeds:` key's value written again, as a block list (`[]`
    when empty): the rest of the file, its indentation and comments, stays as it was. None
    when the file has no `feeds:` key to write at."""
    try:
        line, column = document.lc.key("feeds")
    except (AttributeError, KeyError, TypeError):  # a key this edit added: no place in the text
        return None
    lines = text.splitlines(keepends=True)
    end = line + 1  # the value's last line + 1: a flow list may go on over several lines
    closing = _flow_end(text, line, column)
    while closing is None and end < len(lines):
        row = lines[end]
        if (
            row.strip()
            and not row.lstrip().startswith("#")
            and len(row) - len(row.lstrip()) <= column
        ):
            break
        end += 1
    while (
        closing is None
        and end - 1 > line
        and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#"))
    ):
        end -= 1  # comments and blank lines after the value belong to what follows
    if closing is not None:  # a flow list ends at its "]", wherever that stands
        end = closing + 1
    key_text = lines[line]
    after = key_text[key_text.index(":", column) + 1 :].strip()
    one_line = _FLOW_ON_ONE_LINE.fullmatch(after) if end == line + 1 else None
    comment = f"  {one_line.group(2)}" if one_line and one_line.group(2) else ""
    head = key_text[: key_text.index(":", column) + 1]
    if not entries:
        block = f"{head} []{comment}\n"
    else:
        for entry in entries:
            if isinstance(entry, CommentedMap):
                entry.fa.set_block_style()
        block = f"{head}{comment}\n" + _render(list(entries), column + 2)
    return "".join(lines[:line]) + block + "".join(lines[end:])


def _flow_end(text: str, line: int, column: int) -> int | None:
    """The line of the `]` closing the flow list the key at (line, column) holds; None when
    its value is no flow list. Quoted text and comments are skipped."""
    lines = text.splitlines()
    row = lines[line]
    start = row.index(":", column) + 1
    if not row[start:].lstrip().startswith("["):
        return None
    depth, quote = 0, ""
    for number in range(line, len(lines)):
        chars = lines[number][start:] if number == line else lines[number]
        previous = " "
        for k, char in enumerate(chars):
            if quote:
                if char == quote and not (quote == '"' and chars[k - 1 : k] == "\\"):
                    quote = ""
            elif char in "'\"":
                quote = char
            elif char == "#" and previous in " \t":
                break  # a comment: the rest of the line
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return number
            previous = char
    return None


def _render(entries: list[CommentedMap], dash_column: int) -> str:
    yaml = _yaml(0)
    buffer = io.StringIO()
    yaml.dump(CommentedSeq(entries), buffer)
    pad = " " * dash_column
    return "".join(pad + line for line in buffer.getvalue().splitlines(keepends=True))


def _insert_lines(text: str, at_line: int, block: str) -> str:
    lines = text.splitlines(keepends=True)
    if at_line > 0 and not lines[at_line - 1].endswith("\n"):
        lines[at_line - 1] += "\n"
    lines[at_line:at_line] = [block]
    return "".join(lines)


def _dump(document: CommentedMap, yaml: YAML, keep: str = "") -> str:
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    if len(document) == 1 and keep.strip() and yaml.load(keep) is None:
        # The file held only comments: they stay, above the new list.
        return keep.rstrip("\n") + "\n" + buffer.getvalue()
    return buffer.getvalue()


def _save(
    path: Path,
    text: str,
    *,
    expected: int,
    added: Sequence[FeedConfig] = (),
    newline: str = "\n",
) -> None:
    """Check the edited text still parses to the expected number of feeds, the feeds
    ``added`` last as they were given, then replace the file atomically (same directory, same
    permissions; a symbolic link's target, the link kept)."""
    unsafe = FeedsFileError(f"{path}: could not edit the feeds list safely; edit it by hand")
    try:
        document = _parse(_yaml(_list_offset(text)), text, path)
    except FeedsFileError:  # the edit, not the user's file: its line would point at nothing
        raise unsafe from None
    feeds = document.get("feeds") or []
    if len(feeds) != expected or (added and not _read_back(feeds[-len(added) :], added)):
        # a layout we misread, or a value written as other YAML: refuse, the file unchanged
        raise unsafe
    path = Path(os.path.realpath(path))
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text.replace("\n", newline))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
