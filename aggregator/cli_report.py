"""How the CLI shows poll results: one line per feed, or a progress bar on a terminal.

The poller returns outcomes; only the CLI layer turns them into text and prints.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import click

from aggregator.models import FetchOutcome
from aggregator.schedule import NEVER
from aggregator.text import plural, safe_terminal_text

OnResult = Callable[[FetchOutcome], None]


def describe(outcome: FetchOutcome) -> str:
    """One line for logs and `feeds check`."""
    detail = {
        "ok": lambda o: plural(len(o.feed.entries) if o.feed else 0, "entry", "entries"),
        "not_modified": lambda o: "not modified",
        "error": lambda o: o.error or "error",
        "gone": lambda o: "gone (HTTP 410): no longer polled",
        "skipped": lambda o: (
            "gone (HTTP 410): no longer polled"
            if o.next_due >= NEVER
            else f"not due until {o.next_due:%Y-%m-%d %H:%M} UTC"
        ),
    }[outcome.status](outcome)
    if outcome.refused:
        detail += " (no backoff: polled again as soon as its entry in feeds.yaml changes)"
    if outcome.discovered_feed_url and outcome.discovered_feed_url not in detail:
        detail += f" (the page links to the feed {outcome.discovered_feed_url})"
    succeeded = outcome.status in ("ok", "not_modified")
    if succeeded and outcome.fetch_url and outcome.fetch_url != outcome.url:
        detail += f" (moved permanently to {outcome.fetch_url})"
    # Error texts can carry a server's words: no terminal escapes or line breaks from them.
    return safe_terminal_text(f"{outcome.status:<12} {outcome.url}  {detail}", max_length=500)


def _has_notice(outcome: FetchOutcome) -> bool:
    """A feed that worked but asks for a change in feeds.yaml: it moved permanently, or its
    page links to a feed. (Failures are listed apart, by the caller.)"""
    if outcome.status not in ("ok", "not_modified"):
        return False
    moved = bool(outcome.fetch_url) and outcome.fetch_url != outcome.url
    return moved or bool(outcome.discovered_feed_url)


@contextmanager
def progress(
    total: int, *, file: TextIO | None = None, label: str = "Polling feeds"
) -> Iterator[OnResult]:
    """An `on_result` callback: a progress bar on a terminal, else one log line per feed."""
    stream = file or sys.stderr
    if stream.isatty():
        notices: list[str] = []

        def advance(outcome: FetchOutcome) -> None:
            bar.update(1)
            if _has_notice(outcome):
                notices.append(describe(outcome))

        with click.progressbar(length=total, label=label, file=stream) as bar:
            yield advance
        for line in notices:  # the bar shows no line per feed: what needs the user's action
            click.echo(line, file=stream)
    else:
        yield lambda outcome: click.echo(describe(outcome), file=stream)
