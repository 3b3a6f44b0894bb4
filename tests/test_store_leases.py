"""What workers share on both backends: claims, leases and a fetch session (aggregator.workers)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from aggregator.config import FeedConfig, parse_config
from aggregator.intake import FeedUpdate
from aggregator.store import Recorded, Store
from tests.support.databases import fresh_postgres
from tests.support.stored import record
from tests.test_store import entry, outcome

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
        assert store.record_claimed("w1", [moved]) == [Recorded(new=0)]
        store.release_hosts("w1", ["old.example"])

        later = NOW + timedelta(minutes=2)
        again = store.claim_feeds("w1", later, LEASE, 4, 4)
        assert [(c.host, c.state.fetch_url) for c in again] == [
            ("new.example", "https://new.example/feed")
        ]


class Embedder:
    """Vectors of zeros; `during` runs while a batch is being embedded (its lease held)."""

    model_key = "m"

    def __init__(self, during) -> None:
        self.during = during

    def embed(self, texts):
        self.during()
        return np.zeros((len(texts), 4), np.float32)


def test_a_worker_whose_clock_is_behind_still_holds_its_claims(
    postgres_database: str, monkeypatch
) -> None:
    from aggregator import workers

    config = parse_config("window_hours: 100000\nworkers: {lease_seconds: 600}\nfeeds: []\n",
                          Path("feeds.yaml"))  # fmt: skip
    behind = datetime.now(UTC) - timedelta(hours=1)  # this machine's clock: an hour slow
    monkeypatch.setattr(workers, "utcnow", lambda: behind)
    taken_by_peer = []
    with Store.open(fresh_postgres(postgres_database)) as store:
        record(store, outcome("https://a.example/feed", [entry(1), entry(2)]), "A")

        def peer_claims() -> None:  # a worker on a machine with the right time
            since = datetime(2000, 1, 1, tzinfo=UTC)
            right = datetime.now(UTC)
            taken_by_peer.extend(store.claim_unembedded("m", since, right, LEASE, 100).items)

        done = workers.embed_cycle(config, store, threading.Event(), Embedder(peer_claims))
    assert done.items == 2 and taken_by_peer == []


ARTICLE = "The mayor of Springfield resigned on Tuesday after a two-year inquiry into the port."


class Recorder:
    """Records what it embeds; a vector tells its text's length (which text it came from)."""

    model_key = "m"

    def __init__(self, during=lambda: None) -> None:
        self.texts: list[str] = []
        self.during = during

    def embed(self, texts):
        self.texts += texts
        self.during()
        return np.array([[len(t), 0, 0, 0] for t in texts], np.float32)


def grouping_text(store: Store, item_id: int) -> str:
    """What cluster() embeds for the item."""
    from aggregator.grouping import embedding_text
    from aggregator.pipeline import with_full_text

    (item,) = [i for i in store.items_since(NOW - timedelta(days=3)) if i.id == item_id]
    seen = with_full_text(item)
    return embedding_text(seen.title, seen.summary)


def test_the_embed_worker_embeds_what_grouping_embeds(store_target) -> None:
    """The article's lede once its text is stored, as cluster() does; a vector dropped when the
    text arrives later is computed again at the next cycle, not once the lease runs out."""
    from aggregator import workers

    config = parse_config("window_hours: 100000\nfeeds: []\n", Path("feeds.yaml"))
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/feed", [entry(1), entry(2)]), "A")
        first, second = sorted(i.id for i in store.items_since(NOW - timedelta(days=3)))
        store.save_full_texts([(first, ARTICLE, "ok")])
        embedder = Recorder()
        assert workers.embed_cycle(config, store, threading.Event(), embedder).items == 2
        assert sorted(embedder.texts) == sorted(grouping_text(store, i) for i in (first, second))
        assert ARTICLE[:40] in grouping_text(store, first)

        store.save_full_texts([(second, ARTICLE + " Again.", "ok")])  # drops its vector
        again = Recorder()
        assert workers.embed_cycle(config, store, threading.Event(), again).items == 1
        assert again.texts == [grouping_text(store, second)]


def test_a_text_arriving_while_the_embed_worker_embeds_keeps_no_old_vector(store_target) -> None:
    from aggregator import workers

    config = parse_config("window_hours: 100000\nfeeds: []\n", Path("feeds.yaml"))
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/feed", [entry(1)]), "A")
        (item_id,) = [i.id for i in store.items_since(NOW - timedelta(days=3))]
        arrives = [lambda: store.save_full_texts([(item_id, ARTICLE, "ok")])]
        embedder = Recorder(during=lambda: arrives and arrives.pop()())
        assert workers.embed_cycle(config, store, threading.Event(), embedder).items == 1
        wanted = grouping_text(store, item_id)
        assert embedder.texts[-1] == wanted
        assert store.vectors([item_id], "m")[item_id][0] == len(wanted)


def test_a_correction_arriving_while_the_embed_worker_embeds_keeps_no_old_vector(
    store_target,
) -> None:
    """The feed corrects the item's title while an embed worker computes its vector from the
    old one: that vector is not stored, and the item is embedded again from the new title."""
    from aggregator import workers
    from aggregator.grouping import embedding_text

    config = parse_config("window_hours: 100000\nfeeds: []\n", Path("feeds.yaml"))
    url = "https://a.example/feed"
    with Store.open(store_target()) as store:
        record(store, outcome(url, [entry(1)]), "A")
        (item_id,) = [i.id for i in store.items_since(NOW - timedelta(days=3))]
        fixed = outcome(url, [entry(1, title="Title 1, corrected at last")])
        arrives = [lambda: record(store, fixed, "A")]
        embedder = Recorder(during=lambda: arrives and arrives.pop()())
        assert workers.embed_cycle(config, store, threading.Event(), embedder).items == 1
        wanted = grouping_text(store, item_id)
        assert embedder.texts == [embedding_text("Title 1", "Summary 1"), wanted]
        assert "corrected at last" in wanted
        assert store.vectors([item_id], "m")[item_id][0] == len(wanted)


def test_a_poll_worker_whose_clock_is_behind_fetches_a_due_feed_once(
    postgres_database: str, monkeypatch
) -> None:
    """Leases and due times are compared by the server's clock: a next due time reckoned by
    a clock five hours slow was already past there, so the worker fetched the feed again and
    again in one cycle."""
    from aggregator import workers
    from tests.support.hosts import many_hosts

    behind = timedelta(hours=-5)  # more than any floor: 4 h for a feed without an ETag
    monkeypatch.setattr(workers, "utcnow", lambda: datetime.now(UTC) + behind)
    database = fresh_postgres(postgres_database)
    fetched = []
    stop = threading.Event()

    def count(outcome) -> None:
        fetched.append(outcome.url)
        if len(fetched) >= 3:  # the old loop: stop it
            stop.set()

    with many_hosts(hosts=1, feeds=1, items=2) as server, Store.open(database) as store:
        text = f"feeds:\n  - {{url: '{server.urls[0]}', allow_private: true}}\n"
        config = parse_config(text, Path("feeds.yaml"))
        workers.prepare_poll(config, store)
        cycle = workers.poll_cycle(config, store, "slow-clock", stop, on_result=count)
        assert (cycle.feeds, cycle.new_items) == (1, 2)
        assert sum(server.requests.values()) == 1
        next_due, server_now = store.db.execute(
            "SELECT next_due, clock_timestamp() FROM feeds"
        ).fetchone()
        assert datetime.fromisoformat(next_due) > server_now + timedelta(minutes=30)
        first_seen = store.db.execute("SELECT min(first_seen) FROM items").fetchone()[0]
        assert abs(datetime.fromisoformat(first_seen) - server_now) < timedelta(minutes=5)


def test_article_pages_are_claimed_by_one_worker_holding_their_feed(store_target) -> None:
    feed = "https://a.example/feed"
    since = NOW - timedelta(days=3)
    with Store.open(store_target()) as store:
        record(store, outcome(feed, [entry(1), entry(2), entry(3)], next_due=NOW), "A")
        first = store.claim_full_texts("w1", [feed], since, NOW, LEASE, 2)
        assert first.feeds == [feed] and len(first.items) == 2
        # Meanwhile no other worker fetches the feed's pages, nor polls it.
        assert store.claim_full_texts("w2", [feed], since, NOW, LEASE, 10).items == []
        store.sync_feeds([FeedConfig(feed)])  # due now, but held
        assert store.claim_feeds("w2", NOW, LEASE, 4, 4) == []

        store.save_full_texts([(item_id, None, "failed: HTTP 404") for item_id, *_ in first.items])
        store.release_feeds("w1", first.feeds)
        rest = store.claim_full_texts("w2", [feed], since, NOW, LEASE, 10)
        assert [i[0] for i in rest.items] == sorted(
            set(r[0] for r in store.db.execute("SELECT id FROM items"))
            - {i[0] for i in first.items}
        )
        # A worker killed while holding the feed: another takes the pages once its lease ran out.
        later = NOW + LEASE + timedelta(seconds=1)
        assert store.claim_full_texts("w3", [feed], since, later, LEASE, 10).items == rest.items
        store.release_feeds("w3", [feed])
        assert [c.state.url for c in store.claim_feeds("w2", later, LEASE, 4, 4)] == [feed]


def test_a_never_held_host_is_claimed_before_one_whose_lease_ran_out(store_target) -> None:
    with Store.open(store_target()) as store:
        store.sync_feeds([FeedConfig("https://a.example/feed"), FeedConfig("https://b.example/f")])
        with store.transaction() as db:  # a.example: left by a worker that died long ago
            db.execute("UPDATE hosts SET lease_until = '2000-01-01T00:00:00.000000Z' "
                       "WHERE host = 'a.example'")  # fmt: skip
        (first,) = store.claim_feeds("w", NOW, LEASE, 1, 4)
        assert first.host == "b.example"


def test_feed_states_and_health_in_code_point_order(store_target) -> None:
    urls = ["https://b.example/x", "https://B.example/y", "https://a.example/_z"]
    with Store.open(store_target()) as store:
        if store.db.kind == "postgresql":  # as on a server created with a linguistic locale
            store.db.execute('ALTER TABLE feeds ALTER COLUMN url TYPE TEXT COLLATE "en-US-x-icu"')
        store.sync_feeds([FeedConfig(u) for u in urls])
        assert [s.url for s in store.feed_states([FeedConfig(u) for u in urls])] == urls
        assert [h.url for h in store.feed_health(NOW)] == sorted(urls)


def test_concurrent_fetches_of_one_session_keep_their_own_time() -> None:
    import asyncio

    from aggregator.models import FeedState
    from aggregator.poller import PollOptions, fetch_session
    from tests.support.hosts import many_hosts

    first, second = NOW, NOW + timedelta(minutes=5)
    with many_hosts(hosts=1, feeds=2, items=1, delay=0.3) as server:
        a, b = (FeedState(url=u, fetch_url=u, allow_private=True) for u in server.urls)

        async def both():
            async with fetch_session(PollOptions()) as session:
                early = asyncio.create_task(session.fetch(a, first))
                await asyncio.sleep(0.1)  # in flight when the next one starts
                late = asyncio.create_task(session.fetch(b, second))
                return await early, await late

        outcomes = asyncio.run(both())
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert [o.checked_at for o in outcomes] == [first, second]


def waiting_on_a_lock(database_url: str) -> bool:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        return bool(
            connection.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchall()
        )


def test_two_workers_recording_one_article_through_two_feeds_store_it_once(
    postgres_database: str, monkeypatch
) -> None:
    """Worker 1 has read that no other feed holds the article's link and not yet inserted
    it when worker 2 records the same article through another feed: worker 2 must wait for
    worker 1's commit and then find the link taken, not insert it too."""
    from aggregator.intake import decide
    from tests.support.stored import polled as polled_feed

    database = fresh_postgres(postgres_database)
    feeds = ["https://wire-a.example/rss", "https://wire-b.example/rss"]
    article = entry(1, guid=None)  # one link through both feeds
    first_update, second_update = (decide(polled_feed(f, [article], NOW), "W") for f in feeds)
    real = Store._linked_elsewhere
    second_news: list = []

    with Store.open(database) as first, Store.open(database) as second:
        first.sync_feeds([FeedConfig(f) for f in feeds])
        assert [c.state.url for c in first.claim_feeds("w1", NOW, LEASE, 1, 1)] == feeds[:1]
        assert [c.state.url for c in second.claim_feeds("w2", NOW, LEASE, 1, 1)] == feeds[1:]
        worker_2 = threading.Thread(
            target=lambda: second_news.extend(second.record_claimed("w2", [second_update]))
        )

        def checked_then_overlapped(db, feed_url, links):
            found = real(db, feed_url, links)
            if feed_url == feeds[0]:  # worker 1, between its check and its insert
                worker_2.start()
                deadline = time.monotonic() + 10
                while worker_2.is_alive() and not waiting_on_a_lock(postgres_database):
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            return found

        monkeypatch.setattr(Store, "_linked_elsewhere", staticmethod(checked_then_overlapped))
        first_news = first.record_claimed("w1", [first_update])
        worker_2.join(10)
        rows = first.db.execute("SELECT feed_url FROM items").fetchall()
    assert rows == [(feeds[0],)]
    assert (first_news, second_news) == ([Recorded(new=1)], [Recorded(new=0)])


def test_advisory_locks_are_taken_for_new_links_only_and_bounded(
    postgres_database: str, monkeypatch
) -> None:
    """Every poll held one advisory lock per link of every entry of its feeds, stored ones
    too: a few workers re-polling big feeds ran the server's shared lock table out ("out of
    shared memory") and their batches failed for good. Only entries new to their feed take
    one, and a transaction holds at most KEY_BUCKETS however many links it brings."""
    from aggregator.db import KEY_BUCKETS, PostgresDatabase
    from aggregator.intake import NewItem

    held: list[int] = []  # advisory locks held by the recording transaction, once it took them
    real = PostgresDatabase.lock_keys

    def lock_keys(self, db, keys) -> None:
        real(self, db, keys)
        held.append(
            db.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid()"
            ).fetchone()[0]
        )

    monkeypatch.setattr(PostgresDatabase, "lock_keys", lock_keys)

    def update(feed: int, entries: range) -> FeedUpdate:
        items = tuple(
            NewItem(key=f"guid:{feed}-{n}", canonical_link=f"https://ex{feed}.org/a/{n}",
                    link=f"https://ex{feed}.org/a/{n}", title=f"t{n}", summary="s", outlet="o",
                    published=NOW, first_seen=NOW)
            for n in entries
        )  # fmt: skip
        return FeedUpdate(url=f"https://ex{feed}.org/feed", status="ok", checked_at=NOW,
                          next_due=NOW + LEASE, fetch_url=None, host=f"ex{feed}.org",
                          items=items)  # fmt: skip

    links = 3 * 450
    assert links > KEY_BUCKETS
    with Store.open(fresh_postgres(postgres_database)) as store:
        first = store.record_updates([update(f, range(450)) for f in range(3)])
        assert sum(r.new for r in first) == links
        assert 0 < held[-1] <= KEY_BUCKETS
        again = store.record_updates([update(f, range(450)) for f in range(3)])
        assert (sum(r.new for r in again), held[-1]) == (0, 0)  # all stored: no lock
        one_more = store.record_updates([update(f, range(451)) for f in range(3)])
        assert (sum(r.new for r in one_more), held[-1]) == (3, 3)


def test_a_host_that_got_no_feeds_is_not_left_held(postgres_database: str) -> None:
    """PostgreSQL: the host is taken on the first statement's snapshot; its due feeds, locked
    meanwhile by another transaction (another worker's claim of article pages, a sync), are
    skipped. The host stayed held by a worker with nothing to fetch: every worker left its
    feeds alone for the whole lease."""
    import psycopg

    target = fresh_postgres(postgres_database)
    urls = ["https://a.example/one", "https://a.example/two"]
    with Store.open(target) as store:
        store.sync_feeds([FeedConfig(u) for u in urls])
        with psycopg.connect(target) as other:
            other.execute("SELECT url FROM feeds FOR UPDATE")  # held until this block ends
            assert store.claim_feeds("w1", NOW, LEASE, 4, 4) == []
        held = store.db.execute("SELECT leased_by FROM hosts WHERE host = 'a.example'")
        assert held.fetchone() == (None,)
        claimed = store.claim_feeds("w2", NOW, LEASE, 4, 4)
        assert sorted(c.state.url for c in claimed) == urls
