"""The store's worker claims and leases on both backends (see aggregator.workers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.config import FeedConfig
from aggregator.intake import FeedUpdate
from aggregator.store import Store

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def polled(url: str, at: datetime, fetch_url: str | None, host: str) -> FeedUpdate:
    return FeedUpdate(
        url=url,
        status="ok",
        checked_at=at,
        next_due=at + timedelta(minutes=1),
        fetch_url=fetch_url,
        host=host,
    )


def test_a_feed_moved_to_a_new_host_is_claimed_there(store_target) -> None:
    url = "https://old.example/feed"
    with Store.open(store_target()) as store:
        store.sync_feeds([FeedConfig(url)])  # a worker's start: the only sync it does
        (claimed,) = store.claim_feeds("w1", NOW, LEASE, 4, 4)
        assert claimed.host == "old.example"
        moved = polled(url, NOW, "https://new.example/feed", "new.example")  # a 301
        assert store.record_claimed("w1", [moved]) == [0]
        store.release_hosts("w1", ["old.example"])

        later = NOW + timedelta(minutes=2)
        again = store.claim_feeds("w1", later, LEASE, 4, 4)
        assert [(c.host, c.state.fetch_url) for c in again] == [
            ("new.example", "https://new.example/feed")
        ]
