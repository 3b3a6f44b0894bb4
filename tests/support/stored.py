"""Poll results into a store the way pipeline.poll does: intake's decision, then the store."""

from __future__ import annotations

from aggregator.intake import decide
from aggregator.models import FetchOutcome
from aggregator.store import Store


def record(store: Store, result: FetchOutcome, outlet: str | None) -> int:
    """Store one poll result; how many of its items were new."""
    return record_all(store, [(result, outlet)])[0]


def record_all(store: Store, results: list[tuple[FetchOutcome, str | None]]) -> list[int]:
    """Several poll results in one transaction; new items per result (0 for one not polled)."""
    updates = [decide(result, outlet) for result, outlet in results]
    news = iter(store.record_updates([u for u in updates if u is not None]))
    return [next(news) if u is not None else 0 for u in updates]
