"""Poll results into a store the way pipeline.poll does: intake's decision, then the store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from aggregator.intake import decide
from aggregator.models import FetchOutcome, ParsedEntry, ParsedFeed
from aggregator.store import Recorded, Store


def polled(url: str, entries: Iterable[ParsedEntry], at: datetime, **changes) -> FetchOutcome:
    """A successful poll of ``url`` at ``at`` that found ``entries`` (the feed titled by its URL);
    ``changes``: other fields of the result (an ``etag``, say)."""
    result = FetchOutcome(
        url=url,
        status="ok",
        checked_at=at,
        next_due=at + timedelta(hours=1),
        http_status=200,
        fetch_url=url,
        feed=ParsedFeed(title=url, link=None, entries=tuple(entries)),
    )
    return replace(result, **changes)


def failed(url: str, at: datetime, error: str = "HTTP 500", in_a_row: int = 1) -> FetchOutcome:
    """A poll of ``url`` at ``at`` that failed with ``error``, the ``in_a_row``-th failure running."""
    return FetchOutcome(
        url=url,
        status="error",
        checked_at=at,
        next_due=at + timedelta(hours=1),
        fetch_url=url,
        error=error,
        consecutive_errors=in_a_row,
    )


def record(store: Store, result: FetchOutcome, outlet: str | None) -> int:
    """Store one poll result; how many of its items were new."""
    return record_all(store, [(result, outlet)])[0]


def record_all(store: Store, results: list[tuple[FetchOutcome, str | None]]) -> list[int]:
    """Several poll results in one transaction; new items per result (0 for one not polled)."""
    return [r.new for r in record_changes(store, results)]


def record_changes(store: Store, results: list[tuple[FetchOutcome, str | None]]) -> list[Recorded]:
    """record_all, with what changed among stored items too (Recorded() for one not polled)."""
    updates = [decide(result, outlet) for result, outlet in results]
    recorded = iter(store.record_updates([u for u in updates if u is not None]))
    return [next(recorded) if u is not None else Recorded() for u in updates]


def poll_from_cli(path: str, config: Path, database: Path | str) -> str:
    """Poll once through the CLI as `path` says, "poll" (`aggregator poll --force`) or a
    worker (`worker --role poll --once`, every feed made due first); returns what it printed."""
    from click.testing import CliRunner

    from aggregator.cli import main

    if path == "poll":
        args = ["poll", "--force", "-c", str(config)]
    else:
        with Store.open(database) as store:  # due again: as an hour later
            store.db.execute("UPDATE feeds SET next_due = NULL")
        args = ["worker", "--role", "poll", "--once", "-c", str(config)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output
