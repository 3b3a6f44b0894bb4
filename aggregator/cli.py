"""The `aggregator` command: a thin layer over aggregator.pipeline.

Exit codes: 0 done (failed feeds are recorded and listed, not fatal), 1 a step failed or every
feed failed, 2 bad configuration or usage, 75 another run holds the database (cron overlap).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import logging
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator import __version__
from aggregator.config import DEFAULT_CONFIG, DEFAULT_MODEL, Config, ConfigError, load_config
from aggregator.db import (
    is_connection_lost,
    is_database_error,
    is_passing,
    is_permission_denied,
    is_sqlite_busy,
    one_line,
    redact,
    sqlite_busy_text,
)
from aggregator.feeds_cli import Days, feeds
from aggregator.store import HeldLock, LockedError, Store, StoreError, StoreUnavailable, run_lock
from aggregator.text import hours_text, plural, safe_terminal_text

if TYPE_CHECKING:
    import threading

    from aggregator.grouping.explain import PairEvidence
    from aggregator.pipeline import PairExplanation, StoryExplanation

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 75
# From this many items in other writing systems (grouping.script_of), `cluster` suggests a
# multilingual model: fewer are worth no change of model.
OTHER_SCRIPTS_NOTE = 10

log = logging.getLogger("aggregator")


def _config_option(func: Callable) -> Callable:
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_CONFIG,
        show_default=True,
        help="The feeds.yaml to use.",
    )(func)


def _wait_option(func: Callable) -> Callable:
    return click.option(
        "--wait",
        type=float,
        default=0.0,
        show_default=True,
        help="Seconds to wait for another run on the same database to finish.",
    )(func)


def _fail(message: str, code: int) -> None:
    click.echo(f"aggregator: {message}", err=True)
    sys.exit(code)


def load_or_exit(config_path: Path) -> Config:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
        raise  # unreachable; keeps type checkers content
    for warning in config.warnings:  # e.g. a coverage tag no feed carries; once per command
        click.echo(f"aggregator: warning: {warning}", err=True)
    return config


@contextlib.contextmanager
def database_failures(config: Config) -> Iterator[None]:
    """A failing database ends the command with one line that says what to do, not a
    traceback: held by another run (EXIT_LOCKED), unreachable or refusing (EXIT_FAILED)."""
    try:
        yield
    except LockedError as exc:
        _fail(str(exc), EXIT_LOCKED)
    except StoreUnavailable as exc:
        _fail(f"{config.where('database')}: {exc}{_unavailable_hint(config, exc)}", EXIT_FAILED)
    except StoreError as exc:  # newer schema
        _fail(str(exc), EXIT_FAILED)
    except sqlite3.OperationalError as exc:  # e.g. a read-only database file
        _fail(_database_problem(config, exc), EXIT_FAILED)
    except Exception as exc:  # e.g. PostgreSQL: no rights on the schema
        if not is_database_error(exc):
            raise
        _fail(_database_failure(config, exc), EXIT_FAILED)


def _unavailable_hint(config: Config, exc: StoreUnavailable) -> str:
    """What to do about a database that could not be opened, by what the server said."""
    text, setting = str(exc), _database_setting(config)
    if exc.unreachable:
        if "Is the server running" in text:  # libpq asked it already
            return " (a looping `worker` waits for it)"
        return " (is the server up at that host and port? a looping `worker` waits for it)"
    if re.search(r'FATAL:\s+database "[^"]*" does not exist', text):
        return f" (create it, e.g. `createdb -h HOST -U USER NAME`, or set {setting} to another)"
    if re.search(r'FATAL:\s+(?:role "[^"]*" does not exist|password authentication failed)', text):
        return " (check the user in the URL, and its password in PGPASSWORD or ~/.pgpass)"
    return ""


@contextlib.contextmanager
def setting_failures(config: Config | None) -> Iterator[None]:
    """An embedding model that cannot be loaded, or a template of the user's that does not
    compile or render, ends the command with one line naming the setting and its line (or the
    template file and line) and the fix, exit 2: the configuration is what needs changing."""
    try:
        yield
    except Exception as exc:
        from aggregator.embed import ModelLoadError
        from aggregator.site import TemplateProblem

        if isinstance(exc, ModelLoadError):
            where = f"{config.where(exc.setting)}: " if config else ""
            _fail(f"{where}{exc}", EXIT_CONFIG)
        if isinstance(exc, TemplateProblem):
            _fail(str(exc), EXIT_CONFIG)
        raise


def with_store(func: Callable) -> Callable:
    """Loads the config, takes the run lock and opens the store for a command."""
    return _with_store(func, pass_lock=False)


def with_store_and_lock(func: Callable) -> Callable:
    """with_store for a command of several steps: it also gets the run lock, to make sure
    it still holds it before each step (HeldLock.ensure_held)."""
    return _with_store(func, pass_lock=True)


def _with_store(func: Callable, *, pass_lock: bool, must_exist: bool = False) -> Callable:
    @functools.wraps(func)
    def wrapper(config_path: Path, wait: float, **kwargs: Any) -> None:
        config = load_or_exit(config_path)
        with database_failures(config), contextlib.ExitStack() as opened:
            try:
                lock = opened.enter_context(run_lock(config.database, wait))
                if must_exist:  # after the lock: a run that holds it may be creating the file
                    _require_database(config)
                store = opened.enter_context(Store.open(config.database))
            except (OSError, sqlite3.Error) as exc:
                _fail(_database_problem(config, exc), EXIT_FAILED)
            if pass_lock:
                kwargs["lock"] = lock
            with setting_failures(config):
                func(config, store, **kwargs)

    return wrapper


def _require_database(config: Config) -> None:
    from aggregator.store import database_exists

    if not database_exists(config.database):
        if isinstance(config.database, Path) and _file_in_the_way(config.database):
            _fail(_database_problem(config, FileNotFoundError()), EXIT_FAILED)
        _fail(
            f"{config.where('database')}: {config.database} does not exist: nothing was stored "
            "there yet (run `aggregator poll` or `aggregator run` first, or set `database:` to "
            "the file earlier runs used)",
            EXIT_FAILED,
        )


@contextlib.contextmanager
def open_store(
    config: Config, *, lock: bool = False, must_exist: bool = False, wait: float = 0.0
) -> Iterator[Store]:
    """The configured store (with the run lock first, if asked); a database that cannot be
    opened or created is one line naming `database:`, exit 1, as is one that is not there
    where it `must_exist`."""
    with contextlib.ExitStack() as opened:
        try:
            if lock:
                opened.enter_context(run_lock(config.database, wait))
            if must_exist:  # after the lock: a run that holds it may be creating the file
                _require_database(config)
            store = opened.enter_context(Store.open(config.database))
        except (OSError, sqlite3.Error) as exc:
            _fail(_database_problem(config, exc), EXIT_FAILED)
        yield store


def _database_problem(config: Config, exc: Exception, waited: float | None = None) -> str:
    if is_sqlite_busy(exc):  # not the file's fault: another process had it too long
        return (
            f"{config.where('database')}: {config.database} {sqlite_busy_text(waited)} (run the "
            "command again once that process is done)"
        )
    if isinstance(config.database, Path) and (file := _file_in_the_way(config.database)):
        return (
            f"{config.where('database')}: cannot create {config.database}: its folder {file} is a "
            f"file (rename or remove that file, or set {_database_setting(config)} to another "
            "path)"
        )
    if isinstance(config.database, Path) and config.database.is_dir():
        return (
            f"{config.where('database')}: {config.database} is a folder: set "
            f"{_database_setting(config)} to a file in it, e.g. {config.database / 'aggregator.db'}"
        )
    reason = getattr(exc, "strerror", None) or str(exc)
    return (
        f"{config.where('database')}: cannot open or write {config.database}: {reason} "
        f"(make the file and its folder writable, or set {_database_setting(config)} to another "
        "path)"
    )


def _database_setting(config: Config) -> str:
    """Where the database was given: `database:`, or the variable that overrides it."""
    source = config.database_source
    return source if source and source.isupper() else "`database:`"


def _file_in_the_way(path: Path) -> Path | None:
    """The file where one of `path`'s folders should be (`afile/news.db` with `afile` a file)."""
    return next((p for p in path.parents if p.exists() and not p.is_dir()), None)


def _interactive() -> bool:
    return sys.stderr.isatty()


# ------------------------------------------------------------------ the group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aggregator")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Poll news feeds, group items into stories across outlets, publish a daily digest.

    \b
    Typical use, hourly from cron:
      aggregator run -c /path/to/feeds.yaml
    Try it offline on bundled demo feeds:
      aggregator demo
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(message)s")
    if not verbose:  # its reconnect attempts, two lines each: a worker says once what it lost
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


# ------------------------------------------------------------------ poll


def _do_poll(config: Config, store: Store, force: bool, urls: tuple[str, ...] = ()):
    from aggregator import pipeline
    from aggregator.cli_report import progress

    if not config.feeds:  # cron must notice a list emptied by mistake, not publish nothing
        _fail(
            f"{config.where('feeds', default_noted=False)}: no feeds listed: add one "
            "(`- url: https://...`) or run `aggregator feeds add URL`",
            EXIT_CONFIG,
        )
    try:
        selected = pipeline.select_feeds(config, urls, store.outlet_names)
    except pipeline.UnknownFeedError as exc:
        _fail(str(exc), EXIT_CONFIG)
    # A progress bar on a terminal, one line per feed otherwise (cron mail, logs).
    with progress(len(selected)) as report:
        summary = pipeline.poll(
            config,
            store,
            force=force,
            only=urls,
            on_result=lambda outcome, new: report(outcome),
        )
    if _interactive():  # the bar showed no errors; otherwise each feed's line already did
        for url, error in summary.errors:
            click.echo(f"failed: {safe_terminal_text(url)}: {safe_terminal_text(error)}", err=True)
    click.echo(
        f"feeds: {summary.feeds_ok} ok, {summary.feeds_not_modified} not modified, "
        f"{summary.feeds_failed} failed; new items: {summary.new_items}"
        + (f"; updated items: {summary.updated_items}" if summary.updated_items else "")
    )
    if summary.full_texts or summary.full_text_failures:
        click.echo(
            f"full text: {plural(summary.full_texts, 'article')} extracted, "
            f"{plural(summary.full_text_failures, 'item')} failed "
            "(see `aggregator fetch-text --help`)"
        )
    return summary


def _poll_failed(summary) -> bool:
    """Every feed polled failed, and none waits with a good last poll: the network or the
    machine, for cron to notice; one broken feed due alone between the others' polls is not."""
    working = summary.feeds_ok + summary.feeds_not_modified + summary.feeds_resting
    return summary.feeds_failed > 0 and working == 0


@main.command()
@_config_option
@_wait_option
@click.option(
    "--force",
    is_flag=True,
    help="Fetch the feeds now, even those not yet due (a server's Retry-After too, for the "
    "feeds named; without names, a server that asked to wait is left alone).",
)
@click.argument("urls", nargs=-1, metavar="[URL_OR_NAME]...")
@with_store
def poll(config: Config, store: Store, force: bool, urls: tuple[str, ...]) -> None:
    """Fetch the feeds that are due (or only those named: by URL, by name, or by the title
    `feeds list` shows for a feed without one) and store their new items.

    An item a feed corrects (the same entry with a new title or summary) is updated and
    grouped again; the summary line counts it apart from new ones.

    A feed is due when its server's caching hints, its own minimum interval
    (poll.min_interval_minutes) and any error backoff allow; `feeds status` says why one is not.

    \b
    Examples:
      aggregator poll -c feeds.yaml
      aggregator poll --force https://example.com/rss.xml
    """
    summary = _do_poll(config, store, force, urls)
    if _poll_failed(summary):
        sys.exit(EXIT_FAILED)


# ------------------------------------------------------------------ fetch-text


@main.command("fetch-text")
@_config_option
@_wait_option
@click.option(
    "--feed",
    "feed_names",
    multiple=True,
    metavar="URL_OR_NAME",
    help="Only this feed (repeat for several; default: every feed with full_text: true).",
)
@click.option(
    "--since",
    "days",
    type=Days(),
    metavar="DAYS",
    default=1.0,
    show_default=True,
    help="Items dated in the last DAYS days (their feed's date, else when first seen).",
)
@with_store
def fetch_text(config: Config, store: Store, feed_names: tuple[str, ...], days: float) -> None:
    """Fetch the article pages of recent items again and store their main text.

    New items of feeds with `full_text: true` get theirs when polled; this re-extracts, e.g.
    after turning the option on. One request per item, robots.txt honoured.

    \b
    Examples:
      aggregator fetch-text --since 2
      aggregator fetch-text --feed https://example.com/rss.xml
    """
    from aggregator import pipeline

    try:
        summary = pipeline.fetch_text(config, store, feeds=feed_names, days=days)
    except pipeline.UnknownFeedError as exc:
        _fail(str(exc), EXIT_CONFIG)
        return
    click.echo(
        f"full text: {plural(summary.items, 'item')}, {plural(summary.pages, 'page')} fetched, "
        f"{plural(summary.extracted, 'article')} extracted, "
        f"{summary.kept_summary} kept the feed's summary, {summary.failed} failed"
        + (f"; {plural(summary.left, 'page')} left for a later run" if summary.left else "")
    )
    for link, reason in summary.failures:  # as `poll` names a failed feed
        where = f"{safe_terminal_text(link)}: " if link else ""  # "the item has no link"
        click.echo(f"failed: {where}{safe_terminal_text(reason)}", err=True)
    if summary.failed > len(summary.failures):
        click.echo(f"failed: {summary.failed - len(summary.failures)} more", err=True)
    if summary.items and summary.failed == summary.items:  # failed counts items, not pages
        sys.exit(EXIT_FAILED)


# ------------------------------------------------------------------ cluster


def _do_cluster(config: Config, store: Store, force: bool = False):
    from aggregator import pipeline

    bar = None
    if _interactive():
        bar = click.progressbar(length=1, label="Embedding", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.length = total
            bar.update(done - bar.pos)

    try:
        summary = pipeline.cluster(config, store, progress=progress, force=force)
    finally:
        if bar is not None:
            bar.render_finish()
    if summary.skipped:
        items = plural(summary.items, "item")
        click.echo(f"stories: unchanged ({items} in the window, nothing new)")
    else:
        click.echo(
            f"stories: {plural(summary.stories, 'story', 'stories')} from "
            f"{plural(summary.items, 'item')} ({summary.multi_outlet} with several outlets; "
            f"{summary.new} new, {summary.growing} growing, {summary.unchanged} unchanged; "
            f"{summary.embedded} embedded)"
        )
    other = sum(count for _, count in summary.other_scripts)
    if other >= OTHER_SCRIPTS_NOTE and config.model == DEFAULT_MODEL and not summary.skipped:
        scripts = ", ".join(f"{name} {count}" for name, count in summary.other_scripts)
        click.echo(
            f"note: {plural(other, 'item')} in the window {'is' if other == 1 else 'are'} in "
            f"other writing systems ({scripts}) than the default model reads (English): set "
            f"`model:` in {config.path} to a multilingual model (e.g. "
            "paraphrase-multilingual-MiniLM-L12-v2) to group them better"
        )
    if summary.older_items and not summary.items:
        click.echo(
            f"note: no items in the last {hours_text(config.window_hours)}: the "
            f"{plural(summary.older_items, 'stored item')} "
            f"{'is' if summary.older_items == 1 else 'are'} older (raise `window_hours` in "
            f"{config.path} to include them)"
        )
    return summary


@main.command()
@_config_option
@_wait_option
@click.option("--force", is_flag=True, help="Regroup even when nothing changed since the last run.")
@with_store
def cluster(config: Config, store: Store, force: bool) -> None:
    """Embed new items in the window and group them into stories.

    \b
    Example:
      aggregator cluster -c feeds.yaml
    """
    _do_cluster(config, store, force)


# ------------------------------------------------------------------ build


def _do_build(config: Config, store: Store, force: bool = False, full: bool = False):
    from aggregator import pipeline
    from aggregator.site import SiteBusyError, SiteConflictError, SiteError

    try:
        summary = pipeline.build(config, store, force=force, full=full)
    except SiteConflictError as exc:
        _fail(f"{config.where(exc.setting)}: {exc}", EXIT_CONFIG)
    except SiteBusyError as exc:  # another build of the folder ran all the time it waited
        _fail(f"{config.where('output')}: {exc}", EXIT_LOCKED)
    except SiteError as exc:
        _fail(f"{config.where('output')}: {exc}", EXIT_FAILED)
    days = plural(summary.days, "day")
    rendered = f"{plural(len(summary.rendered), 'page')} rendered"  # the others had not changed
    stories = plural(summary.stories, "story", "stories")
    state = "unchanged" if summary.skipped else f"{stories}, {days}, {rendered}"
    click.echo(f"site: {summary.output / 'index.html'} ({state})")
    if summary.newly_kept:
        shown = ", ".join(summary.newly_kept[:10])
        more = f" and {len(summary.newly_kept) - 10} more" if len(summary.newly_kept) > 10 else ""
        folders = sum(1 for entry in summary.newly_kept if entry.endswith("/"))
        counts = [
            plural(n, word)
            for n, word in ((len(summary.newly_kept) - folders, "file"), (folders, "folder"))
            if n
        ]
        click.echo(
            f"site: kept {' and '.join(counts)} you added to "
            f"{_shown_folder(summary.output)}: {shown}{more}"
        )
    return summary


def _shown_folder(folder: Path) -> str:
    with contextlib.suppress(ValueError):
        relative = folder.relative_to(Path.cwd())
        return "./" if relative == Path() else f"{relative}/"
    return f"{folder}/"


@main.command()
@_config_option
@_wait_option
@click.option(
    "--force", is_flag=True, help="Rebuild even when nothing changed since the last build."
)
@click.option(
    "--full",
    is_flag=True,
    help="Render every page again, not only those whose inputs changed (implies --force).",
)
@with_store
def build(config: Config, store: Store, force: bool, full: bool) -> None:
    """Render the static site (today, archive, story pages, feed.xml) into the output folder.

    Only the pages whose inputs changed since the last build are rendered again: a past
    day's page stays as it is until its digest, its neighbours, the templates, the settings
    or the aggregator's code change, or its file is edited or deleted by hand.

    \b
    Example:
      aggregator build -c feeds.yaml && ls output/
    """
    _do_build(config, store, force, full)


# ------------------------------------------------------------------ run


@main.command()
@_config_option
@_wait_option
@click.option(
    "--force",
    is_flag=True,
    help="Fetch every feed now, even those not yet due (not one whose server asked to wait).",
)
@click.option("--email/--no-email", "send", default=False, help="Also send the day's email.")
@with_store_and_lock
def run(config: Config, store: Store, lock: HeldLock, force: bool, send: bool) -> None:
    """Poll, cluster and build in order: the command to run from cron.

    \b
    Example (crontab, every hour):
      7 * * * *  cd /srv/news && aggregator run --wait 600 >> run.log 2>&1
    """
    if send:  # before the work: the hint of `email` itself does not apply to `run`
        _require_recipients(
            config, "or leave out --email and write the message with `aggregator email --to-file`"
        )
    summary = _do_poll(config, store, force)
    lock.ensure_held()  # a run that lost its lock stops: two runs never go on at once
    _do_cluster(config, store)
    lock.ensure_held()
    _do_build(config, store)
    if send:
        lock.ensure_held()
        _do_email(config, store, None, False)
    if _poll_failed(summary):
        sys.exit(EXIT_FAILED)


# ------------------------------------------------------------------ email


def _require_recipients(config: Config, alternative: str) -> None:
    """Exit 2 when the email would go nowhere: cron must notice, not read "not sent" daily."""
    if not config.email.to:
        _fail(
            f"{config.where('email.to', default_noted=False)}: no recipients: add "
            f"`to: [you@example.com]` under `email:`, {alternative}",
            EXIT_CONFIG,
        )


def _folder_problem(path: Path) -> str | None:
    """Why no file can be written at ``path`` for want of its folder (None: the folder is
    there): a mistyped folder is said, not made."""
    folder = path.expanduser().parent
    if folder.is_dir():
        return None
    if folder.exists():
        return f"{folder} is not a folder"
    return f"there is no folder {folder}"


def _do_email(config: Config, store: Store, to_file: Path | None, force: bool) -> None:
    from aggregator import pipeline
    from aggregator.emailer import EmailError

    if to_file is not None and (own := config.own_file(to_file)):
        _fail(
            f"--to-file {to_file} is {own}: write the message to a file of its own, "
            "e.g. --to-file digest.eml",
            EXIT_CONFIG,
        )
    if to_file is not None and (problem := _folder_problem(to_file)):
        _fail(f"--to-file {to_file}: {problem}: choose a path in a folder that exists", EXIT_CONFIG)
    if to_file is None:
        _require_recipients(config, "or write the message to a file with --to-file")
    try:
        result = pipeline.email(config, store, to_file=to_file, force=force)
    except (OSError, EmailError) as exc:
        _fail(f"email not sent: {exc}", EXIT_FAILED)
        return
    if result.failed:  # cron must notice an email that could not go out
        _fail(f"email: not sent: {result.reason}", EXIT_FAILED)
    elif result.sent:
        # a file is written, not sent
        done = "written to" if to_file is not None else "sent to"
        click.echo(f"email: {done} {result.destination}")
        if result.refused:
            click.echo(
                f"aggregator: warning: email: the server refused {result.refused}: check "
                "those addresses in email.to",
                err=True,
            )
        if result.deferred:
            click.echo(
                f"aggregator: warning: email: not sent yet to {result.deferred}: the next "
                "`aggregator email` (or `run --email`) sends it to them",
                err=True,
            )
    else:
        click.echo(f"email: not sent: {result.reason}")


@main.command()
@_config_option
@_wait_option
@click.option(
    "--to-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the message as an .eml file instead of sending it.",
)
@click.option("--force", is_flag=True, help="Send even if today's digest was already sent.")
@with_store
def email(config: Config, store: Store, to_file: Path | None, force: bool) -> None:
    """Send today's digest by email (SMTP settings in feeds.yaml), once a day.

    \b
    Examples:
      aggregator email -c feeds.yaml
      aggregator email --to-file digest.eml
    """
    _do_email(config, store, to_file, force)


# ------------------------------------------------------------------ serve


@main.command()
@_config_option
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
def serve(config_path: Path, port: int) -> None:
    """Preview the output folder on http://127.0.0.1:PORT/.

    Only regular files inside the folder are served: no folder listings, nothing a symlink
    leads to outside it, no hidden file.

    \b
    Example:
      aggregator serve --port 8000
    """
    config = load_or_exit(config_path)
    if not (config.output / "index.html").exists():
        _fail(f"{config.output} has no site yet: run `aggregator build` first", EXIT_FAILED)
    _serve(config.output, port)


def _serve(folder: Path, port: int) -> None:
    """Preview `folder` until Ctrl-C; a port in use is one line, not a traceback."""
    from aggregator.serve import make_server

    try:
        with make_server(folder, port=port) as server:
            click.echo(f"Serving {folder} on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        reason = "is in use by another program" if busy else f"cannot be used ({exc.strerror})"
        _fail(f"port {port} {reason}: pick another one with --port {_free_port(port)}", EXIT_FAILED)


def _free_port(after: int) -> int:
    """A port on 127.0.0.1 free now: the next few after ``after`` first, else one the system
    picks (suggesting the next one alone named a port as busy as the first)."""
    import socket

    for port in [*range(after + 1, min(after + 20, 65535) + 1), 0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    return 8000


# ------------------------------------------------------------------ eval


@main.command("eval")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--predictions",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write one {"id", "story"} JSON line per item here ("file" too, for several FILES).',
)
@click.option(
    "--all",
    "combined",
    is_flag=True,
    help="Also group all FILES together as one busy day and check no story mixes two files.",
)
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Take the model and grouping settings from this feeds.yaml (default: built-in defaults).",
)
def evaluate(
    files: tuple[Path, ...], predictions: Path | None, combined: bool, config_path: Path | None
) -> None:
    """Group the items of .jsonl FILES and print B-cubed P/R/F1, pairwise F1 and ARI.

    Each line is one item: {"id", "title", "summary", "outlet", "published", "story"?}. Files
    without `story` labels are grouped (and written with --predictions) but not scored.
    Without FILES, the labelled demo items that ship with aggregator are scored.

    \b
    Examples:
      aggregator eval                      # the bundled demo items (labelled)
      aggregator eval my-day.jsonl --predictions out.jsonl
      aggregator eval --all monday.jsonl tuesday.jsonl
    """
    import json

    from aggregator import evaluate as ev
    from aggregator.config import EmbeddingSettings
    from aggregator.demo import DEMO_ITEMS
    from aggregator.embed import load_embedder

    files = files or (DEMO_ITEMS,)
    try:  # the files first: a bad line is one message before the model loads
        datasets = [ev.load_dataset(path) for path in files]
    except ValueError as exc:
        _fail(f"eval: {exc}", EXIT_CONFIG)
    repeated = [data.repeated_ids() for data in datasets]  # ids several lines share, per file
    for path, shared in zip(files, repeated, strict=True):
        for item_id, lines in list(shared.items())[:3]:
            click.echo(
                f"eval: warning: {path}: lines {', '.join(map(str, lines[:5]))} share the id "
                f"{item_id!r}"
                + ("; --predictions gives each item's line too" if predictions else ""),
                err=True,
            )
    if predictions and not os.access(predictions.parent, os.W_OK):
        _fail(f"--predictions {predictions}: its folder is missing or not writable", EXIT_CONFIG)
    if predictions and any(predictions.resolve() == path.resolve() for path in files):
        _fail(
            f"--predictions {predictions} is one of the FILES: writing it would replace the "
            "items (and their labels) with the predictions; name another file",
            EXIT_CONFIG,
        )

    config = load_or_exit(config_path) if config_path else None
    params = config.grouping_params() if config else _default_grouping()
    embedding = config.embedding if config else EmbeddingSettings()
    with setting_failures(config):
        embedder = load_embedder(
            config.model if config else DEFAULT_MODEL,
            backend=embedding.backend,
            max_tokens=embedding.max_tokens,
            threads=embedding.threads,
        )
    reports = [
        ev.evaluate_dataset(path.name, data, params, embedder.embed)
        for path, data in zip(files, datasets, strict=True)
    ]
    mixed = None
    if combined and len(files) > 1:
        together = ev.concat_datasets(datasets)
        reports.append(ev.evaluate_dataset("all files", together, params, embedder.embed))
        sources = [str(i) for i, data in enumerate(datasets) for _ in data.items]
        mixed = ev.mixed_stories(reports[-1].labels, sources)
    click.echo(ev.format_table(reports))
    if mixed is not None:
        click.echo(f"stories mixing items of two files: {mixed}")
    if predictions:
        rows = (
            reports[-1].predictions()
            if mixed is not None or len(reports) == 1
            else [
                {"id": row["id"], "story": f"{index}-{row['story']}"}
                for index, report in enumerate(reports)
                for row in report.predictions()
            ]
        )
        # two files may each have an item "1", and real files repeat ids ("basil-empty"):
        # the file, and the line where its ids repeat, say which item a row is
        several = len(files) > 1
        extras = [
            ({"file": str(path)} if several else {}) | ({"line": line} if shared else {})
            for path, data, shared in zip(files, datasets, repeated, strict=True)
            for line in data.lines
        ]
        rows = [extra | row for extra, row in zip(extras, rows, strict=True)]
        try:
            with open(predictions, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        except OSError as exc:
            _fail(f"--predictions {predictions}: {exc.strerror or exc}", EXIT_FAILED)
        click.echo(f"predictions: {predictions} ({plural(len(rows), 'item')})")


# ------------------------------------------------------------------ explain


def _explain_targets(
    context: click.Context, parameter: click.Parameter, targets: tuple[str, ...]
) -> tuple[str, ...]:
    """Usage mistakes said before any database is opened."""
    if len(targets) > 2:
        _fail("explain takes one STORY_ID or two item URLs", EXIT_CONFIG)
    urls = [t.lower().startswith(("http://", "https://")) for t in targets]
    if len(targets) == 1 and urls[0]:
        _fail(
            "explain needs two item URLs to compare (or one STORY_ID from stories.json)",
            EXIT_CONFIG,
        )
    if len(targets) == 2 and not all(urls):
        story = next(t for t, url in zip(targets, urls, strict=True) if not url)
        _fail(
            f"explain compares two item URLs; {story!r} is no URL (a STORY_ID is explained "
            "on its own: aggregator explain STORY_ID)",
            EXIT_CONFIG,
        )
    if len(targets) == 2:
        from aggregator import pipeline

        try:
            pipeline.check_two_links(*targets)
        except pipeline.ExplainError as exc:
            _fail(str(exc), EXIT_CONFIG)
    return targets


@main.command()
@_config_option
@_wait_option
@click.argument(
    "targets",
    nargs=-1,
    required=True,
    metavar="STORY_ID | URL_A URL_B",
    callback=_explain_targets,
)
@functools.partial(_with_store, pass_lock=False, must_exist=True)  # reads: never makes one
def explain(config: Config, store: Store, targets: tuple[str, ...]) -> None:
    """Show the evidence for and against a story's items, or two items, being one story.

    \b
    Examples:
      aggregator explain s-1a2b3c4d5e -c feeds.yaml
      aggregator explain https://a.example/quake https://b.example/quake-hits
    """
    from aggregator import pipeline

    try:
        if len(targets) == 1:
            _print_story(pipeline.explain_story(config, store, targets[0]))
        else:
            _print_pair(pipeline.explain_pair(config, store, *targets))
    except pipeline.ExplainError as exc:
        _fail(str(exc), EXIT_CONFIG)


def _safe(text: str) -> str:
    """Feed text (titles, outlets, reasons quoting them) made harmless for the terminal."""
    return safe_terminal_text(text)


def _print_pair(pair: PairExplanation) -> None:
    for label, item, story, count in zip(
        "AB", (pair.first, pair.second), pair.stories, pair.duplicates, strict=True
    ):
        click.echo(f"{label}: {_safe(item.title)} ({_safe(item.outlet)})")
        click.echo(f"   story: {_safe(story) if story else 'not clustered yet'}")
        if count > 1:
            click.echo(
                f"   {count} items in the window carry this link: using the earliest, "
                f"from {_safe(item.feed_url)}"
            )
    if pair.copy_note:
        click.echo(pair.copy_note)
    first, second = pair.stories
    _print_evidence(pair.evidence, None if first is None or second is None else first == second)


def _print_story(story: StoryExplanation) -> None:
    shown, total = len(story.members), story.total
    if story.merged_from is not None:
        click.echo(
            f"story {_safe(story.merged_from)} merged into {_safe(story.story_id)}, "
            "which has its items now"
        )
    if shown == 0:
        click.echo(
            f"story {_safe(story.story_id)}: {plural(total, 'item')}, all older than "
            f"window_hours ({hours_text(story.window_hours)}): their stored reasons below"
        )
    elif shown < total:
        click.echo(
            f"story {_safe(story.story_id)}: showing {shown} of {plural(total, 'item')} "
            f"(the rest are older than window_hours, {hours_text(story.window_hours)})"
        )
    else:
        click.echo(f"story {_safe(story.story_id)}: {plural(total, 'item')}")
    for member in story.members:
        click.echo(f"- {_safe(member.item.title)} ({_safe(member.item.outlet)})")
        if member.why:
            click.echo(f"  why: {_safe(member.why)}")
        if member.evidence is not None:
            # weighed alone against the rest now: an item that came in with others of a group
            # (a dense fragment, a merge of groups) may not clear the bar on its own
            under = "" if member.evidence.joins else " (under the bar alone: it joined with others)"
            click.echo(f"  fit with the story's other items: {_score(member.evidence)}{under}")
    in_window = {(m.item.title, m.item.outlet) for m in story.members}
    ids = {m.item.id for m in story.members}
    older = [
        s for s in story.stored if (s.title, s.outlet) not in in_window and s.item_id not in ids
    ]
    if older:
        click.echo("stored reasons of the items outside the window:")
        for stored in older:
            outlet = f" ({_safe(stored.outlet)})" if stored.outlet else ""
            click.echo(f"- {_safe(stored.title)}{outlet}")
            if stored.why:
                click.echo(f"  why: {_safe(stored.why)}")
    if story.neighbour_id is not None and story.neighbour_evidence is not None:
        # the words stories.json and the page give (a neighbour the evidence would join was
        # never weighed: "nothing against" would misread it)
        from aggregator.grouping.explain import why_not_text

        click.echo(
            f"closest other story: {_safe(story.neighbour_headline)} ({_safe(story.neighbour_id)})"
        )
        click.echo(f"  why not: {_safe(why_not_text(story.neighbour_evidence))}")
        _print_evidence(story.neighbour_evidence)
    elif story.stored_why_not:
        headline = story.stored_why_not_headline or "the closest other story"
        click.echo(f"kept apart from {_safe(headline)} (as stored): {_safe(story.stored_why_not)}")


def _score(evidence: PairEvidence) -> str:
    """E.g. ``p=0.12, joins from 0.80`` (and the lower bar of an item left alone)."""
    text = f"p={evidence.probability:.2f}, joins from {evidence.merge_probability:.2f}"
    if evidence.lone_probability is not None:
        text += f" (left alone, from {evidence.lone_probability:.2f})"
    return text


def _print_evidence(evidence: PairEvidence, stored_together: bool | None = None) -> None:
    """The evidence, and what it decides; `stored_together`: whether the two items are in one
    stored story, said where it differs (grouping weighs groups, not every pair alone)."""
    verdict = "the evidence joins them" if evidence.joins else "the evidence keeps them apart"
    if stored_together is not None and stored_together != evidence.joins:
        verdict += (
            "; yet stored in one story: each joined it through its other items"
            if stored_together
            else "; yet stored in two stories: grouping compares each item with its nearest "
            "neighbours and whole groups, not every pair"
        )
    click.echo(f"score: {_score(evidence)}: {verdict}")
    speaks_for = evidence.alike or evidence.shared_names
    click.echo(f"  for: {_safe(evidence.reason_for()) if speaks_for else 'nothing'}")
    click.echo(f"  against: {_safe(evidence.reason_against())}")
    click.echo(f"  {'signal':<20} {'value':>8}  {'log-odds':>8}")
    for signal in sorted(evidence.signals, key=lambda s: -abs(s.contribution)):
        click.echo(f"  {signal.name:<20} {signal.value:8.3f}  {signal.contribution:+8.2f}")
    click.echo(f"  {'bias (intercept)':<20} {'':>8}  {evidence.bias:+8.2f}")
    if evidence.lone_pair_offset:
        # the headline shift is for joining a group; two lone items clear the full bar
        click.echo(f"  {'two items alone':<20} {'':>8}  {evidence.lone_pair_offset:+8.2f}")
    click.echo(
        f"  {'total':<20} {'':>8}  {evidence.log_odds:+8.2f}  "
        f"= p {evidence.probability:.3f} (1 / (1 + e^-total))"
    )


def _default_grouping():
    from aggregator.grouping import GroupingParams

    return GroupingParams()


# ------------------------------------------------------------------ demo


@main.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Where the demo's feeds.yaml, database and site go.",
)
@click.option("--serve/--no-serve", default=False, help="Keep serving the site afterwards.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="The port --serve uses.",
)
def demo(workdir: Path, serve: bool, port: int) -> None:
    """Run the whole pipeline on bundled offline demo feeds served on 127.0.0.1.

    \b
    Example:
      aggregator demo && xdg-open demo/output/index.html
    """
    from aggregator.demo import DemoFolderError, run_demo

    try:
        with setting_failures(None):  # the demo's own feeds.yaml: only the default model
            site = run_demo(workdir, echo=click.echo)
    except DemoFolderError as exc:
        _fail(str(exc), EXIT_CONFIG)
    click.echo(f"Open the digest: {site}")
    if serve:
        _serve(site.parent, port)


# ------------------------------------------------------------------ worker


@main.command()
@_config_option
@click.option(
    "--role",
    type=click.Choice(["poll", "embed", "publish", "all"]),
    default="all",
    show_default=True,
    help="The work this process takes: poll feeds, embed items, publish (group, site, "
    "email: one worker at a time), or all three in turn.",
)
@click.option("--once", is_flag=True, help="Do what is due now, then exit (cron, tests).")
@click.option(
    "--email/--no-email", "send", default=False, help="Publishing also sends the day's email."
)
def worker(config_path: Path, role: str, once: bool, send: bool) -> None:
    """Share polling, embedding and publishing with any number of other workers.

    Run it as many times as you like, on as many machines as share the database (best on
    PostgreSQL; on SQLite the workers must share one machine). Without --once it loops
    until SIGTERM or Ctrl-C, then finishes the feeds in flight and exits.

    \b
    Examples:
      aggregator worker -c feeds.yaml --role poll
      aggregator worker -c feeds.yaml --role publish --email
      aggregator worker -c feeds.yaml --once   # every role once, for cron
    """
    import signal
    import threading

    from aggregator import workers

    config = load_or_exit(config_path)
    roles = workers.ROLES if role == "all" else (role,)
    if send and "publish" in roles:
        _require_recipients(config, "or leave out --email")
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    me = workers.new_worker_id()
    try:
        with setting_failures(config), database_failures(config), contextlib.ExitStack() as opened:
            store = _open_worker_store(config, opened, stop, once, WORKER_START_WAIT_SECONDS)
            if store is None:  # stopped while waiting for the database
                return
            prepared = "poll" not in roles
            embedder = workers.LazyEmbedder(config)
            all_failed = False
            failures = 0  # database errors in a row, each waited out longer
            stamp = _file_stamp(config.path)
            try:
                while not stop.is_set():
                    if not once and (now := _file_stamp(config.path)) != stamp:
                        stamp, config = now, _reloaded(config)
                        prepared = "poll" not in roles  # feeds added or removed
                    try:
                        if not prepared:  # in the loop: a connection lost here is retried too
                            workers.prepare_poll(config, store)
                            prepared = True
                        for name in roles:
                            if not stop.is_set():
                                done = _work(name, config, store, me, stop, embedder, send, once)
                                all_failed = all_failed or done is False
                    except Exception as exc:
                        if once or not is_passing(exc):
                            raise  # one line, exit 1 (database_failures)
                        # A server restart or a dropped connection: the pool reconnects. A
                        # deadlock, a resource that ran out: tried again, ever later, so a
                        # failure that lasts costs little. A SQLite file another process
                        # held too long: tried again soon. Leases make whatever this cycle
                        # held claimable again meanwhile.
                        failures += 1
                        click.echo(
                            f"aggregator: warning: {_retrying(config, exc, failures)}", err=True
                        )
                        if stop.wait(_retry_seconds(exc, failures)):
                            break
                        if is_connection_lost(exc):
                            # a new pool: the old one's reconnect attempts back off (1, 2, 4 ...
                            # s), and came half a minute after the server was back
                            opened.close()
                            store = _open_worker_store(config, opened, stop, once, None)
                            if store is None:
                                return
                        continue
                    failures = 0
                    if once:
                        break
                    stop.wait(config.workers.idle_seconds)
            finally:
                if "publish" in roles:
                    with contextlib.suppress(Exception):  # the lease runs out anyway
                        workers.release_publish(store, me)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if once and all_failed:  # as `aggregator poll`: every feed polled failed (or the email)
        sys.exit(EXIT_FAILED)


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _reloaded(config: Config) -> Config:
    """A looping worker's feeds.yaml after it changed (`feeds add`, an edit): its feeds and
    settings from the next cycle on. The database and the model stay the process's own; a
    file that no longer loads leaves the last good configuration in use, with a warning."""
    try:
        fresh = load_config(config.path)
    except ConfigError as exc:
        click.echo(
            f"aggregator: warning: {exc} (the worker goes on with the last good one)", err=True
        )
        return config
    for warning in fresh.warnings:
        click.echo(f"aggregator: warning: {warning}", err=True)
    same = ("database", "database_source", "model", "embedding")
    kept = dataclasses.replace(fresh, **{name: getattr(config, name) for name in same})
    if kept != fresh:
        click.echo(
            f"aggregator: warning: {config.path}: a new database or embedding model takes a "
            "restart of the worker; its other changes apply now",
            err=True,
        )
    click.echo(f"worker: {config.path} changed: {plural(len(kept.feeds), 'feed')} now")
    return kept


WORKER_RETRY_SECONDS = 2.0  # a looping worker that lost the database tries again after this
WORKER_RETRY_MAX_SECONDS = 300.0  # the longest wait after other passing database errors
# How long a starting worker keeps trying to open a database that fails with a passing error
# (a SQLite file another process holds locked, e.g. a worker migrating it after an upgrade).
WORKER_START_WAIT_SECONDS = 600.0


def _open_worker_store(
    config: Config,
    opened: contextlib.ExitStack,
    stop: threading.Event,
    once: bool,
    give_up_after: float | None,
) -> Store | None:
    """The store, opened into `opened`. A looping worker waits out a passing failure (a
    server down or busy; its schema check or migration, or the WAL pragma, waited on another
    process's lock for longer than the busy timeout) as its loop does, warning at each try,
    for up to `give_up_after` seconds (None: as long as it lasts, as its loop does); then, or
    at once with --once, it fails in one line. None when `stop` was set while waiting."""
    started = time.monotonic()
    failures = 0
    while True:
        try:
            return opened.enter_context(Store.open(config.database))
        except Exception as exc:
            waited = time.monotonic() - started
            waited_out = give_up_after is not None and waited >= give_up_after
            if once or not is_passing(exc) or waited_out:
                if isinstance(exc, (OSError, sqlite3.Error)):  # as open_store says it
                    gave_up = give_up_after if failures else None
                    _fail(_database_problem(config, exc, gave_up), EXIT_FAILED)
                raise  # one line (database_failures)
            failures += 1
            click.echo(f"aggregator: warning: {_retrying(config, exc, failures)}", err=True)
            if stop.wait(_retry_seconds(exc, failures)):
                return None


def _retry_seconds(exc: Exception, failures: int) -> float:
    """A lost connection: WORKER_RETRY_SECONDS (back as soon as the server is); a busy SQLite
    file: the same (the next try waits on the lock itself, and takes it once it is free);
    another passing error: that, doubled at each failure in a row up to
    WORKER_RETRY_MAX_SECONDS."""
    if is_connection_lost(exc) or is_sqlite_busy(exc):
        return WORKER_RETRY_SECONDS
    return min(WORKER_RETRY_SECONDS * 2 ** min(failures - 1, 20), WORKER_RETRY_MAX_SECONDS)


def _retrying(config: Config, exc: Exception, failures: int) -> str:
    wait = f"retrying in {_retry_seconds(exc, failures):g} s"
    if getattr(exc, "unreachable", False):
        return f"cannot reach the database ({one_line(exc)}); {wait}"
    if is_connection_lost(exc):
        return f"lost the database ({one_line(exc)}); {wait}"
    if is_sqlite_busy(exc):
        return f"database {config.database} {sqlite_busy_text()}; {wait}"
    return f"database {redact(str(config.database))}: {one_line(exc)}; {wait}"


def _database_failure(config: Config, exc: Exception) -> str:
    failure = f"{config.where('database')}: {redact(str(config.database))}: {one_line(exc)}"
    if is_connection_lost(exc):
        return f"{failure} (lost the connection to the database: run the command again)"
    if is_permission_denied(exc):
        return (
            f"{failure} (give the database user the rights it needs, or set `database:` to "
            "another database)"
        )
    return failure


def _work(
    name: str, config: Config, store: Store, me: str, stop, embedder, send: bool, once: bool
) -> bool | None:
    """One cycle of one role; a looping worker says only what it did (an idle one is
    quiet). False when a step failed: every feed it polled, or the email it sent."""
    from aggregator import workers
    from aggregator.cli_report import describe

    if name == "poll":

        def report(outcome) -> None:
            if outcome.status in ("error", "gone"):
                click.echo(f"failed: {describe(outcome)}", err=True)

        cycle = workers.poll_cycle(config, store, me, stop, on_result=report)
        failed = cycle.failed > 0 and cycle.ok + cycle.not_modified == 0
        if not once and not cycle.feeds and not cycle.full_texts:
            return None
        click.echo(
            f"poll: {plural(cycle.feeds, 'feed')} ({cycle.ok} ok, "
            f"{cycle.not_modified} not modified, {cycle.failed} failed); "
            f"new items: {cycle.new_items}"
            + (f"; updated items: {cycle.updated_items}" if cycle.updated_items else "")
            + (f"; {cycle.taken_over} taken over by other workers" if cycle.taken_over else "")
            + (f"; full text: {cycle.full_texts} articles" if cycle.full_texts else "")
        )
        return not failed
    elif name == "embed":
        done = workers.embed_cycle(config, store, stop, embedder)
        if once or done.items:
            click.echo(f"embed: {done.items} items")
    else:
        from aggregator.site import BuildStopped, SiteBusyError

        try:
            published = workers.publish_cycle(
                config, store, me, email=send, embedder=embedder, stop=stop
            )
        except BuildStopped:  # SIGTERM while another build held the folder: the next run builds
            click.echo("publish: stopped while waiting for another build; site not rebuilt")
            return None
        except SiteBusyError as exc:  # another build held the output folder all that time
            if once:
                _fail(f"{config.where('output')}: {exc}", EXIT_LOCKED)
            click.echo(f"aggregator: warning: {config.where('output')}: {exc}", err=True)
            return None  # the next cycle builds the site
        if not published.leader:
            if once:
                click.echo("publish: another worker holds the publish lease")
        elif (
            once or published.site_changed or (published.email and not published.email_no_news)
        ):  # a loop prints only cycles that did something
            site = "site rebuilt" if published.site_changed else "site unchanged"
            email = f"; email {published.email}" if published.email else ""
            if published.email_failed:  # the reason on its own line, where cron mail shows it
                email = "; email not sent"
                click.echo(f"aggregator: email {published.email}", err=True)
            click.echo(f"publish: {published.stories} stories, {site}{email}")
            if published.email_failed and not once:  # as before: the worker stops, exit 1
                sys.exit(EXIT_FAILED)
            return not published.email_failed


# ------------------------------------------------------------------ store


@main.group("store")
def store_group() -> None:
    """Manage the database: copy a SQLite store into PostgreSQL.

    \b
    Example:
      aggregator store copy -c feeds.yaml --to postgresql://news@db.example:5432/news
    """


@store_group.command("copy")
@_config_option
@_wait_option
@click.option(
    "--to",
    "target",
    required=True,
    help="The database to copy into: a postgresql://user@host:5432/db URL (password from "
    "PGPASSWORD or ~/.pgpass) or a SQLite file.",
)
def store_copy(config_path: Path, wait: float, target: str) -> None:
    """Copy every item, vector, story and digest of the configured database into another,
    keeping item and story ids. Safe to rerun: an interrupted copy resumes, a repeated one
    changes nothing. Stop cron and workers first, then point `database:` at the copy.

    \b
    Example:
      aggregator store copy -c feeds.yaml --to postgresql://news@db.example:5432/news
    """
    from aggregator.config import database_target
    from aggregator.store import CopyRefused, copy_store

    config = load_or_exit(config_path)
    try:
        destination = database_target(target, Path.cwd(), "--to")
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
        return
    if str(destination) == str(config.database):
        _fail("--to names the configured database itself: give another database", EXIT_CONFIG)
    if isinstance(destination, Path) and (problem := _sqlite_target_problem(destination)):
        _fail(f"--to {target}: {problem}", EXIT_CONFIG)
    with (
        database_failures(config),
        open_store(config, lock=True, must_exist=True, wait=wait) as source,
    ):
        try:
            with Store.open(destination) as copy:
                copy_store(
                    source, copy, lambda t: click.echo(f"copied {t.table}: {plural(t.rows, 'row')}")
                )
                items = copy.count_items()
        except CopyRefused as exc:  # a StoreError, but the fix is in the command line
            _fail(str(exc), EXIT_CONFIG)
            return
        except Exception as exc:  # the source opened: what fails now is the copy's side
            if not (isinstance(exc, StoreError) or is_database_error(exc)):
                raise
            _fail(f"--to {redact(target)}: {one_line(exc)}{_copy_hint(exc)}", EXIT_FAILED)
            return
    click.echo(f"done: {items} items in {copy.label}; set `database:` to it in {config_path}")


def _copy_hint(exc: Exception) -> str:
    """What to do about a database `store copy` could not copy into."""
    if isinstance(exc, StoreUnavailable) and exc.unreachable:
        return " (is the server up at that host and port?)"
    if is_permission_denied(exc):
        return " (give the database user the rights it needs there, or name another database)"
    if isinstance(exc, StoreError):
        return ""
    return " (name an empty database, or an earlier copy of this one)"


def _sqlite_target_problem(path: Path) -> str | None:
    """Why a SQLite file cannot be copied into, named before the source is opened (a failure
    there would read as the configured database's)."""
    if path.is_dir():
        return "is a folder: name a file, e.g. --to news-copy.db"
    if path.exists():
        with path.open("rb") as handle:
            head = handle.read(16)
        if head and head != b"SQLite format 3\x00":
            return "is not a SQLite database: name a new file or an earlier copy"
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"its folder cannot be made ({exc.strerror or exc}): choose a writable path"
    return None


main.add_command(feeds)


if __name__ == "__main__":  # pragma: no cover
    main()
