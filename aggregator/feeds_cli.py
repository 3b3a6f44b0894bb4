"""`aggregator feeds ...`: list, add, remove, import, export, check and status of feeds.

Edits keep the comments and layout of feeds.yaml (feedsfile.py). Exit codes: 0 done, 1 a
network step failed (no feed found, a checked feed failed), 2 bad input (bad URL, unknown
feed, invalid feeds.yaml or OPML).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click

from aggregator.cli_report import describe
from aggregator.config import (
    DEFAULT_CONFIG,
    Config,
    ConfigError,
    FeedConfig,
    feed_key,
    has_no_settings,
    load_config,
    normalise_url,
    parse_config,
)
from aggregator.feedsfile import FeedExistsError, FeedsFileError, add_feed, add_feeds
from aggregator.feedsfile import remove_feed as remove_from_file
from aggregator.models import FeedState, FetchOutcome
from aggregator.netguard import SETTING_HINT
from aggregator.opml import OpmlError, read_opml, to_opml
from aggregator.pipeline import (
    UnknownFeedError,
    feed_config_changes,
    feeds_shown_as,
    poll_options,
    select_feeds,
)
from aggregator.poller import DiscoveryError, PollOptions, discover, poll
from aggregator.text import (
    http_url_problem,
    name_key,
    outlet_name,
    plural,
    public_url,
    safe_terminal_text,
)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
_CONFIG_KEY = "aggregator.feeds.config"
_CHECK_HINT = "check it with --allow-private if that is intended"


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    # a message may quote what a server sent (a feed URL a page links to, a redirect's target)
    text = "\n".join(safe_terminal_text(line, 1_000) for line in message.split("\n"))
    click.echo(f"aggregator feeds: {text}", err=True)
    sys.exit(code)


def _config_option(func: Callable) -> Callable:
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"The feeds.yaml to use (default: ./{DEFAULT_CONFIG}).",
    )(func)


def _config_path(config_path: Path | None) -> Path:
    """The command's own --config, else the group's, else ./feeds.yaml."""
    context = click.get_current_context()
    return config_path or context.meta.get(_CONFIG_KEY) or DEFAULT_CONFIG


def _load(config_path: Path | None) -> Config:
    try:
        config = load_config(_config_path(config_path))
    except ConfigError as exc:
        _fail(str(exc))
    for warning in config.warnings:  # once per command: each loads its config once
        click.echo(f"aggregator feeds: warning: {warning}", err=True)
    return config


def _load_for_edit(path: Path) -> Config | None:
    """The config about to be edited; None when there is none yet (no file, or an empty or
    comments-only one: adding a feed is how it gets its `feeds:` list)."""
    if not path.exists():
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        if has_no_settings(path):
            return None
        _fail(str(exc))


def _say(text: str) -> None:
    click.echo(safe_terminal_text(text, max_length=1_000))


# ---------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_config_option
@click.pass_context
def feeds(context: click.Context, config_path: Path | None) -> None:
    """Manage the feeds listed in feeds.yaml.

    \b
    Examples:
      aggregator feeds add https://www.example.com/ --tag world
      aggregator feeds -c ~/news/feeds.yaml status
    """
    if config_path is not None:
        context.meta[_CONFIG_KEY] = config_path


@feeds.command("list")
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_feeds(config_path: Path | None, as_json: bool) -> None:
    """List the configured feeds: name, URL and tags.

    \b
    Example:
      aggregator feeds list -c feeds.yaml
    """
    config = _load(config_path)
    if as_json:
        click.echo(json.dumps([asdict(f) for f in config.feeds], indent=2))
        return
    shown = _shown_names(config)
    rows = [(shown.get(f.url, "-"), f.url, ", ".join(f.tags)) for f in config.feeds]
    _table(("NAME", "URL", "TAGS"), rows)
    click.echo(f"{plural(len(rows), 'feed')} in {config.path}")


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Display name (default: the feed's own title).")
@click.option("--tag", "tags", multiple=True, help="A tag for the feed; repeat for several.")
@click.option(
    "--discover/--no-discover",
    default=True,
    show_default=True,
    help="Find the feed if URL is a web page (its <link rel=alternate>, /feed, /rss.xml ...).",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow a feed on a private or loopback address (writes allow_private: true).",
)
@_config_option
def add(
    url: str,
    name: str | None,
    tags: Sequence[str],
    discover: bool,
    allow_private: bool,
    config_path: Path | None,
) -> None:
    """Add a feed, given its URL or the URL of a site that links to one.

    \b
    Examples:
      aggregator feeds add https://www.theguardian.com/world --tag world
      aggregator feeds add https://example.com/rss.xml --name "Example" --no-discover
    """
    url = normalise_url(_http_url(url))
    path = _config_path(config_path)
    config = _load_for_edit(path)
    allowed = allow_private or bool(config and config.allow_private)
    feed_url, title = url, None
    if discover:
        click.echo(f"Looking for a feed at {url} ...", err=True)
        try:
            found = asyncio.run(_discover(url, allowed))
        except DiscoveryError as exc:
            if exc.private:  # not in feeds.yaml yet: allow_private there cannot be set
                _fail(f"{exc}: add it with --allow-private if that is intended", EXIT_FAILED)
            if exc.as_is_may_work:  # it answered, and is no feed: the user may know better
                _fail(f"{exc} (use --no-discover to add the URL as it is)", EXIT_FAILED)
            _fail(str(exc), EXIT_FAILED)  # an HTTP error or no answer: adding it would not help
        # the server's title, as the outlet shown (no bidi override to disguise feeds.yaml)
        feed_url, title = found.url, outlet_name(found.title or "") or None
    # the feed found at a page is named as such: the user typed the page's URL, not this one
    already = f"{feed_url} is already in {path}"
    if feed_url != url:
        already = f"{url} leads to the feed {feed_url}, which is already in {path}"
    if config and config.feed(feed_url):
        _fail(already)
    # tags ignore case: one spelling each ("world" and "World" are one tag)
    first_spelling: dict[str, str] = {}
    for tag in tags:
        first_spelling.setdefault(tag.casefold(), tag)
    tags = list(first_spelling.values())
    try:
        add_feed(path, feed_url, name or title, tags, allow_private=allow_private)
    except FeedExistsError:
        _fail(already)
    except FeedsFileError as exc:
        _fail(str(exc))
    _say(f"Added {name or title or feed_url} ({feed_url}) to {path}")


async def _discover(url: str, allow_private: bool) -> Any:
    options = PollOptions(total_timeout=30)
    return await discover(url, allow_private=allow_private, options=options)


@feeds.command("remove")
@click.argument("url_or_name")
@_config_option
def remove(url_or_name: str, config_path: Path | None) -> None:
    """Remove a feed, by URL or by name (for a feed without one: the title `feeds list`
    shows). Its stored items stay in the database.

    \b
    Example:
      aggregator feeds remove "Example News"
    """
    path = _config_path(config_path)
    if not path.exists():
        _fail(f"{path}: not found")
    named_url = _named_feed_url(path, url_or_name)
    try:
        removed = remove_from_file(path, url_or_name)
        if removed and named_url:
            url_or_name = f"{url_or_name} ({named_url})"
        if not removed and (web := _as_web_url(url_or_name)) != url_or_name.strip():
            removed = remove_from_file(path, web)  # "example.com/x" as `add` reads it
        if not removed and (url := _unnamed_feed_shown_as(path, url_or_name)):
            removed = remove_from_file(path, url)
            url_or_name = f"{url_or_name} ({url})"
    except FeedsFileError as exc:
        _fail(str(exc))
    if not removed:
        _fail(f"no feed with the URL or name {url_or_name!r} in {path}")
    _say(f"Removed {url_or_name} from {path}")


def _named_feed_url(path: Path, name: str) -> str | None:
    """The URL of the feed whose `name` is ``name`` (None for a URL, or no such feed). A feed
    without `name` that `feeds list` shows under the same title makes the name ambiguous: an
    error naming both, not the named one removed in silence."""
    config = _load_for_edit(path)
    if config is None or any(feed_key(f.url) == feed_key(name) for f in config.feeds):
        return None
    named = [f.url for f in config.feeds if f.name and name_key(f.name) == name_key(name)]
    if len(named) != 1:
        return None  # none, or several (`remove_feed` names them)
    shown = [f.url for f in feeds_shown_as(config, name, _stored_titles(config))]
    if shown:
        _fail(
            f"{1 + len(shown)} feeds in {path} are shown as {name!r}: remove one by its URL "
            f"({', '.join([*named, *shown])})"
        )
    return named[0]


def _unnamed_feed_shown_as(path: Path, title: str) -> str | None:
    """The URL of the feed without `name` that `feeds list` shows as `title` (its polled
    title); two such feeds are an error naming both: which one to remove is the user's call."""
    config = _load_for_edit(path)
    if config is None:
        return None
    urls = [f.url for f in feeds_shown_as(config, title, _stored_titles(config))]
    if len(urls) > 1:
        _fail(
            f"{len(urls)} feeds in {path} are shown as {title!r}: remove one by its URL "
            f"({', '.join(urls)})"
        )
    return urls[0] if urls else None


@feeds.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_config_option
def import_opml(opml_file: Path, config_path: Path | None) -> None:
    """Add the feeds of an OPML file (another reader's export); folders become tags.

    \b
    Example:
      aggregator feeds import subscriptions.opml
    """
    path = _config_path(config_path)
    _load_for_edit(path)  # refuse to edit a feeds.yaml that does not load
    try:
        listing = read_opml(opml_file.read_bytes())
    except OpmlError as exc:
        _fail(f"{opml_file}:{exc.line}: {exc}" if exc.line else f"{opml_file}: {exc}")
    listed, unusable = listing.feeds, listing.unusable
    if unusable:
        shown = ", ".join(safe_terminal_text(url, 80) for url in unusable[:3])
        more = f" and {len(unusable) - 3} more" if len(unusable) > 3 else ""
        click.echo(
            f"{opml_file}: left out {plural(len(unusable), 'feed')} without an http(s) URL: "
            f"{shown}{more}",
            err=True,
        )
    if not listed:
        _fail(f"{opml_file}: no feeds (outlines with an http(s) xmlUrl) found")
    try:
        added = add_feeds(path, listed)
    except FeedsFileError as exc:
        _fail(str(exc))
    skipped = len(listed) - len(added)
    click.echo(f"Imported {plural(len(added), 'feed')} into {path} ({skipped} already there)")


@feeds.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@_config_option
def export(output: Path | None, config_path: Path | None) -> None:
    """Write the feeds as OPML 2.0, for other feed readers.

    \b
    Example:
      aggregator feeds export -o subscriptions.opml
    """
    config = _load(config_path)
    shown = _shown_names(config)  # another reader lists a feed by the name this one shows
    named = [replace(f, name=shown.get(f.url)) for f in config.feeds]
    document = to_opml(named, title=config.site.title)
    if output is None:
        click.echo(document, nl=False)  # bytes go to the binary stream as they are
        return
    if own := config.own_file(output):
        _fail(f"-o {output} is {own}: export to a file of its own, e.g. -o subscriptions.opml")
    try:
        output.write_bytes(document)
    except OSError as exc:
        _fail(f"could not write {output}: {exc.strerror or exc}: choose a writable path")
    click.echo(f"Wrote {plural(len(config.feeds), 'feed')} to {output}", err=True)


@feeds.command("check")
@click.argument("url_or_name", required=False)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per feed.")
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow a URL not in feeds.yaml on a private or loopback address (feeds in it keep "
    "their allow_private).",
)
@_config_option
def check(
    url_or_name: str | None, timeout: float, allow_private: bool, config_path: Path | None
) -> None:
    """Fetch feeds once now and report on each; nothing is stored.

    Without an argument every configured feed is checked; a feed in feeds.yaml may be named by
    its URL, its name, or the title `feeds list` shows for it. Exit status 1 if any failed.

    \b
    Examples:
      aggregator feeds check
      aggregator feeds check https://example.com/rss.xml
      aggregator feeds check http://192.168.1.20/feed.xml --allow-private
    """
    path = _config_path(config_path)
    if url_or_name and _is_url(url_or_name) and path == DEFAULT_CONFIG and not path.exists():
        config = parse_config("feeds: []\n", path)  # a URL is checked before any feeds.yaml
    else:
        config = _load(config_path)
    selected = _select(config, url_or_name, allow_private)
    states = [
        FeedState(url=f.url, fetch_url=f.url, allow_private=f.allow_private) for f in selected
    ]
    listed = {f.url for f in config.feeds}
    options = poll_options(config, timeout_seconds=timeout)
    outcomes = poll(
        states,
        now=datetime.now(UTC),
        force=True,
        options=options,
        on_result=lambda outcome: _say(_report_line(outcome, outcome.url in listed)),
    )
    failed = [o for o in outcomes if o.status in ("error", "gone")]
    click.echo(f"{len(outcomes) - len(failed)} ok, {len(failed)} failed")
    if failed:
        sys.exit(EXIT_FAILED)


def _is_url(text: str) -> bool:
    """A URL ("https://host/x", or "host/path"), not a feed's name."""
    text = text.strip()
    return "://" in text or "." in text.split("/")[0]


def _select(config: Config, url_or_name: str | None, allow_private: bool) -> list[FeedConfig]:
    """The feeds to check; a URL not in feeds.yaml is allowed a private address by
    `allow_private` or the top-level setting."""
    if url_or_name is None:
        if not config.feeds:
            _fail(f"{config.path} lists no feeds")
        return list(config.feeds)
    try:
        # the same matching as `poll --force`, titles of feeds without name included
        return list(select_feeds(config, [url_or_name], lambda: _stored_titles(config)))
    except UnknownFeedError:
        text = url_or_name.strip()
        if not _is_url(text):
            _fail(
                f"{text!r} is not a feed in {config.path} (see `aggregator feeds list`; a feed "
                "not in it can be checked by its http(s) URL)"
            )
        url = _http_url(text)  # "host/path" may still be a configured feed
        allowed = allow_private or config.allow_private
        return [config.feed(url) or FeedConfig(url=url, allow_private=allowed)]


def _report_line(outcome: FetchOutcome, listed: bool) -> str:
    if not listed:  # not in feeds.yaml: the flag allows it, and no poll will try it again
        error = outcome.error and outcome.error.replace(SETTING_HINT, _CHECK_HINT)
        outcome = replace(outcome, error=error, refused=False)
    line = describe(outcome)
    if outcome.status == "ok" and outcome.feed and outcome.feed.title:
        line += f' — "{outcome.feed.title}"'
    return line


@feeds.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_config_option
def status(as_json: bool, config_path: Path | None) -> None:
    """Health of each feed: last status and success, errors in a row, next poll and why it is
    not due yet, items in the last 7 days and the share of them in stories covered by several
    outlets.

    \b
    Examples:
      aggregator feeds status
      aggregator feeds status --json | jq '.[] | select(.consecutive_errors > 3)'
    """
    config = _load(config_path)
    now = datetime.now(UTC)
    health = _health(config, now)
    for h in health:
        if h["entry_changed"]:
            _as_after_config_change(h, now)
        h["not_due_because"] = _why_not_due(h, now)
    if as_json:
        click.echo(json.dumps(health, indent=2, default=_json_default))
        return
    rows = [
        (
            "gone" if h["gone"] else (h["last_status"] or "never polled"),
            str(h["consecutive_errors"]),
            _ago(h["last_success"], now),
            _until(h["next_due"], now, gone=h["gone"]),
            str(h["items_7d"]),
            "-" if h["multi_outlet_share"] is None else f"{h['multi_outlet_share']:.0%}",
            label,
            h["not_due_because"] or "-",
        )
        for h, label in zip(
            health,
            _told_apart([(h["url"], h["shown_as"] or h["url"]) for h in health]),
            strict=True,
        )
    ]
    header = ("STATUS", "ERRORS", "LAST OK", "NEXT", "ITEMS 7D", "SHARED", "FEED", "NOT DUE")
    _table(header, rows)
    for h in health:
        if h["last_error"] and h["last_status"] in ("error", "gone"):
            _say(f"  {h['shown_as'] or h['url']}: {h['last_error']}")
        if h["fetch_url"] and h["fetch_url"] != h["url"] and not h["gone"]:
            _say(
                f"  {h['shown_as'] or h['url']}: moved permanently to {h['fetch_url']}: polled "
                f"there (feeds.yaml keeps {h['url']})"
            )
    _say_polled_twice(health)


def _say_polled_twice(health: Sequence[dict[str, Any]]) -> None:
    """Feeds that a permanent redirect took to one address: each poll fetches it once for each,
    and stores the items that have no link once for each."""
    polled_at: dict[str, list[str]] = {}
    for h in health:
        if not h["gone"]:
            polled_at.setdefault(h["fetch_url"] or h["url"], []).append(h["shown_as"] or h["url"])
    for address, shown in polled_at.items():
        if len(shown) > 1:
            _say(
                f"  {' and '.join(shown)}: polled at one address, {address}, since a permanent "
                "redirect: remove all but one of them from feeds.yaml"
            )


def _as_after_config_change(h: dict[str, Any], now: datetime) -> None:
    """The feed as the next poll will see it once its changed entry is noted
    (Store.note_feed_configs): our own schedule and errors cleared, a Retry-After kept."""
    from aggregator.schedule import RETRY_AFTER

    retry = h["retry_after"]
    waiting = retry is not None and retry > now
    h.update(
        next_due=retry if waiting else None,
        due_reason=RETRY_AFTER if waiting else None,
        consecutive_errors=0,
    )


def _why_not_due(h: dict[str, Any], now: datetime) -> str | None:
    """Why a feed will not be fetched by the next run, and until when; None if it will."""
    from aggregator.schedule import explain

    if h["gone"]:
        return "gone (HTTP 410): never polled again"
    due = h["next_due"]
    if due is None or due <= now:
        return "due at next run (entry changed)" if h.get("entry_changed") else None
    return f"{explain(h.get('due_reason'), h['consecutive_errors'])} until {due:%Y-%m-%d %H:%M} UTC"


def _shown_names(config: Config) -> dict[str, str]:
    """Feed URL -> the name the site and the email show: its name in feeds.yaml, else the
    feed's own title as stored with its items (none for a feed never polled)."""
    titles = _stored_titles(config)
    return {f.url: name for f in config.feeds if (name := f.name or titles.get(f.url)) is not None}


def _stored_titles(config: Config) -> dict[str, str]:
    """`Store.outlet_names()`: feed URL -> the outlet name its items were stored under. The
    database is only read, never created."""
    from aggregator.cli import database_failures
    from aggregator.store import Store, database_exists

    if not database_exists(config.database):
        return {}
    with database_failures(config), Store.open(config.database) as store:
        return store.outlet_names()


def _health(config: Config, now: datetime) -> list[dict[str, Any]]:
    """One record per configured feed, in feeds.yaml order; never-polled feeds included."""
    from aggregator.cli import database_failures
    from aggregator.store import Store, database_exists

    names = {f.url: f.name for f in config.feeds}
    known: dict[str, Any] = {}
    changed: dict[str, str] = {}
    titles: dict[str, str] = {}
    if database_exists(config.database):
        with database_failures(config), Store.open(config.database) as store:
            known = {h.url: h for h in store.feed_health(now, names)}
            changed = feed_config_changes(config, store).changed  # as the next poll sees it
            titles = store.outlet_names()
    records = []
    for feed in config.feeds:
        record = known.get(feed.url)
        if record is not None:
            entry_changed = feed.url in changed
            records.append({**asdict(record), "name": feed.name, "entry_changed": entry_changed})
        else:
            records.append(_never_polled(feed))
        records[-1]["shown_as"] = feed.name or titles.get(feed.url)  # as the site names it
    return records


def _never_polled(feed: FeedConfig) -> dict[str, Any]:
    return {
        "url": feed.url,
        "name": feed.name,
        "fetch_url": feed.url,
        "last_status": None,
        "last_error": None,
        "last_checked": None,
        "last_success": None,
        "consecutive_errors": 0,
        "next_due": None,
        "gone": False,
        "items_7d": 0,
        "multi_outlet_share": None,
        "due_reason": None,
        "retry_after": None,
        "entry_changed": False,
    }


MAX_DAYS = 3650.0


class Days(click.ParamType):
    """A number of days: finite, above 0 and at most ten years (nan, inf and 1e9 are refused:
    the window's start would fall before year 1)."""

    name = "days"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            days = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of days", param, ctx)
        if not math.isfinite(days) or not 0 < days <= MAX_DAYS:
            self.fail(f"{value} is not a number of days above 0 and up to {MAX_DAYS:g}", param, ctx)
        return days


@feeds.command("value")
@click.option(
    "--days",
    type=Days(),
    default=30,
    show_default=True,
    help="Look at the items of this many past days.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_config_option
def value(days: float, as_json: bool, config_path: Path | None) -> None:
    """What each feed adds: items, stories it took part in, first reports, exclusives (the
    only feed on a story), copies of other outlets' items, median delay behind the first report,
    and failed fetches in a row. The feeds that add least come first.

    \b
    Examples:
      aggregator feeds value
      aggregator feeds value --days 7 --json | jq '.[] | select(.first_reports == 0)'
    """
    from aggregator.cli import database_failures
    from aggregator.feedvalue import delay_text
    from aggregator.pipeline import feed_values
    from aggregator.store import Store, database_exists

    config = _load(config_path)
    values = []
    if database_exists(config.database):
        with database_failures(config), Store.open(config.database) as store:
            values = feed_values(config, store, as_of=datetime.now(UTC), days=days)
    else:
        from aggregator.feedvalue import feed_values as compute

        values = compute([], [(f.url, f.name) for f in config.feeds])
    if as_json:
        click.echo(json.dumps([v.as_dict() for v in values], indent=2))
        return
    rows = [
        (
            str(v.items),
            str(v.stories),
            str(v.first_reports),
            str(v.exclusives),
            str(v.copies),
            "-" if v.median_delay_minutes is None else delay_text(v.median_delay_minutes),
            str(v.errors),
            label,
        )
        for v, label in zip(values, _told_apart([(v.url, v.name) for v in values]), strict=True)
    ]
    header = ("ITEMS", "STORIES", "FIRST", "EXCLUSIVE", "COPIES", "DELAY", "ERRORS", "FEED")
    _table(header, rows)
    last = f"{days:g} day" + ("" if days == 1 else "s")  # a fraction of a day reads "0.5 days"
    click.echo(f"{plural(len(rows), 'feed')}, last {last}; the feeds that add least come first")


# ---------------------------------------------------------------- formatting


def _told_apart(feeds: Sequence[tuple[str, str]]) -> list[str]:
    """Each feed's name (url, name), with its URL after a name that two feeds share (two feeds
    of one outlet): a table row must say which feed it is."""
    shared = Counter(name.casefold() for _, name in feeds)
    return [
        f"{name} ({public_url(url)})" if shared[name.casefold()] > 1 and name != url else name
        for url, name in feeds
    ]


def _as_web_url(text: str) -> str:
    """ "example.com/news" means the web site, https://example.com/news; other text as it is."""
    url = text.strip()
    return url if "://" in url or not _is_url(url) else "https://" + url


def _http_url(text: str) -> str:
    url = _as_web_url(text)
    problem = http_url_problem(url)
    if problem:
        _fail(f"{text!r} {problem}")
    return url


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    cells = [list(header)] + [[safe_terminal_text(c, 120) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _ago(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{_span(now - moment)} ago"


def _until(moment: datetime | None, now: datetime, *, gone: bool) -> str:
    if gone:
        return "never"
    if moment is None or moment <= now:
        return "next run"
    return f"in {_span(moment - now)}"


def _span(delta: timedelta) -> str:
    """'45m', '1h59m', '2d3h', '30s': the largest unit and the next (only '1h' said 1h59m)."""
    seconds = max(int(delta.total_seconds()), 0)
    units = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
    for index, (unit, size) in enumerate(units[:-1]):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            smaller, small_size = units[index + 1]
            part = rest // small_size
            return f"{whole}{unit}{part}{smaller}" if part and unit != "m" else f"{whole}{unit}"
    return f"{seconds}s"


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")
