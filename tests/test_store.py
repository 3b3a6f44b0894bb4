"""The store on both backends (a SQLite file, a real PostgreSQL server): idempotent inserts,
dedup keys, transactions, locking, migrations."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config import FeedConfig
from aggregator.intake import item_key
from aggregator.models import FetchOutcome, ParsedEntry, ParsedFeed, Story, StoryMember
from aggregator.store import (
    RUN_LOCK_KEY,
    SCHEMA_VERSION,
    LockedError,
    Store,
    StoreError,
    run_lock,
)
from aggregator.text import canonical_url
from tests.support.databases import older_database
from tests.support.stored import failed, polled, record, record_all, record_changes

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def entry(n: int, **overrides) -> ParsedEntry:
    values = {
        "guid": f"guid-{n}",
        "link": f"https://news.example/{n}?utm_source=rss",
        "title": f"Title {n}",
        "summary": f"Summary {n}",
        "published": NOW - timedelta(hours=n),
    }
    values.update(overrides)
    return ParsedEntry(**values)


def outcome(url: str, entries: list[ParsedEntry], **changes) -> FetchOutcome:
    """A successful poll at ``NOW`` that got an ETag."""
    return polled(url, entries, NOW, **{"etag": '"v1"', **changes})


def test_recording_the_same_feed_twice_adds_nothing(store_target) -> None:
    with Store.open(store_target()) as store:
        first = record(store, outcome("https://a.example/feed", [entry(1), entry(2)]), "A")
        again = record(store, outcome("https://a.example/feed", [entry(1), entry(2)]), "A")
        assert (first, again) == (2, 0)
        assert store.count_items() == 2


def test_a_feed_that_changes_its_entries_ids_stores_nothing_twice(store_target) -> None:
    """A CMS migration (or a guid with a version stamp, or a guid where there was none) gave
    every entry a new id under the same link: the whole feed was stored again, and the digest
    showed each report twice. An entry whose link is that of an item of the feed its document
    no longer lists is that item (its correction too); entries sharing one link do not match."""
    feed = "https://a.example/feed"
    with Store.open(store_target()) as store:
        assert record(store, outcome(feed, [entry(1), entry(2), entry(3, guid=None)]), "A") == 3
        moved = [
            entry(1, guid="new-1"),
            entry(2, guid="new-2", title="Title 2, corrected"),
            entry(3),  # now with a guid
        ]
        changes = record_changes(store, [(outcome(feed, moved), "A")])
        assert [(c.new, c.updated) for c in changes] == [(0, 1)]
        titles = [r[0] for r in store.db.execute("SELECT title FROM items ORDER BY id")]
        assert titles == ["Title 1", "Title 2, corrected", "Title 3"]
        assert record(store, outcome(feed, moved), "A") == 0  # stored under the new ids now
        home = "https://a.example/"
        posts = [entry(n, link=home) for n in (7, 8)]
        assert record(store, outcome(feed, posts), "A") == 2
        assert record(store, outcome(feed, [entry(9, link=home)]), "A") == 1  # not one of them
        status = "https://status.example/"  # one entry at a time, under one link
        assert record(store, outcome(feed, [entry(10, link=status)]), "A") == 1
        assert record(store, outcome(feed, [entry(11, link=status)]), "A") == 1  # a new one
        letter = "https://a.example/newsletter"  # one title, one link, an issue a week
        week = [entry(20, guid="issue-1", link=letter, title="Weekly newsletter")]
        assert record(store, outcome(feed, week), "A") == 1
        next_week = week[0].published + timedelta(days=7)
        later = replace(week[0], guid="issue-2", published=next_week)
        assert record(store, polled(feed, [later], NOW + timedelta(days=7)), "A") == 1
        assert store.count_items() == 10


def test_a_reopened_store_keeps_items_and_schema_version(store_target) -> None:
    path = store_target()
    with Store.open(path) as store:
        record(store, outcome("https://a.example/feed", [entry(1)]), "A")
    with Store.open(path) as store:
        assert store.count_items() == 1
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert store.integrity_ok()
        if store.db.kind == "sqlite":
            assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_newest_digest_day_is_the_latest_day_not_the_latest_write(store_target) -> None:
    with Store.open(store_target()) as store:
        assert store.newest_digest_day() is None
        store.save_digest("2026-11-28", NOW, {"day": "2026-11-28"})
        store.save_digest("2026-11-27", NOW + timedelta(hours=1), {"day": "2026-11-27"})
        assert store.newest_digest_day() == "2026-11-28"


def test_the_digests_come_as_stored_newest_first(store_target) -> None:
    """The build hashes each digest as stored (pipeline.build): the text is the one saved."""
    with Store.open(store_target()) as store:
        store.save_digest("2026-11-27", NOW, {"day": "2026-11-27", "title": "Café «x»"})
        store.save_digest("2026-11-28", NOW, {"day": "2026-11-28", "stories": [1]})
        payloads = store.digest_payloads()
        assert [json.loads(payload) for payload in payloads] == store.digests()
        assert [json.loads(payload)["day"] for payload in payloads] == ["2026-11-28", "2026-11-27"]
        assert payloads[1] == json.dumps(
            {"day": "2026-11-27", "title": "Café «x»"}, sort_keys=True, ensure_ascii=False
        )
        assert store.digest_payloads(1) == payloads[:1]


def test_a_newer_schema_is_refused(store_target) -> None:
    path = store_target()
    with Store.open(path) as store:
        store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(StoreError, match="upgrade"), Store.open(path):
        pass


def test_items_without_guid_are_keyed_by_canonical_link() -> None:
    a = entry(1, guid=None, link="https://news.example/story?utm_source=rss&id=5#top")
    b = entry(1, guid=None, link="https://NEWS.example:443/story?id=5&utm_medium=email")
    assert item_key(a) == item_key(b)
    assert canonical_url(a.link) == "https://news.example/story?id=5"


def test_the_same_article_through_two_feeds_is_stored_once(store_target) -> None:
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/world", [entry(1)]), "A")
        added = record(store, outcome("https://a.example/top", [entry(1, guid="other")]), "A")
        assert added == 0


@pytest.mark.parametrize("origin_first", [False, True])
def test_an_article_through_two_feeds_is_its_own_sites_whichever_is_polled_first(
    store_target, origin_first: bool
) -> None:
    """An aggregator's feed links the outlet's article 30 minutes after the outlet's own feed
    has it. Polled first, the aggregator's entry was stored and the outlet's dropped: the
    report was the aggregator's, at its later time, and the outlet had none. The article is
    the outlet's either way, stored once, with the outlet's title and time; the aggregator's
    later polls change nothing."""
    link = "https://www.origin.example/news/tokyo"
    own = entry(2, guid="o-1", link=link, title="Tokyo quake", summary="A strong quake.")
    relayed = entry(1, guid="agg-9", link=link + "?utm_source=agg", title="Quake (origin)")
    origin = outcome("https://feeds.origin.example/rss", [own])
    relay = outcome("https://aggregator.example/feed", [relayed])
    with Store.open(store_target()) as store:
        for result, name in [(relay, "Aggregator"), (origin, "Origin")][
            :: -1 if origin_first else 1
        ]:
            record(store, result, name)
        record(store, relay, "Aggregator")  # polled again
        (item,) = store.items_since(NOW - timedelta(days=1))
        assert (item.outlet, item.feed_url, item.title) == ("Origin", origin.url, "Tokyo quake")
        assert item.published == NOW - timedelta(hours=2)
        assert record(store, origin, "Origin") == 0  # its own entry, known


def test_a_feed_giving_two_entries_one_guid_takes_over_one_item_and_stops_nothing(
    store_target,
) -> None:
    """The outlet's feed repeats a guid over two of its articles that an aggregator brought
    first: both take-overs set one (feed, key), which failed the whole batch (another feed's
    poll beside it too) on every run. One item takes it; the other stays the aggregator's."""
    links = ["https://origin.example/a", "https://origin.example/b"]
    relayed = [entry(n, guid=f"agg-{n}", link=link) for n, link in enumerate(links, 1)]
    own = [entry(n, guid="dup", link=link) for n, link in enumerate(links, 1)]
    with Store.open(store_target()) as store:
        record(store, outcome("https://aggregator.example/feed", relayed), "Aggregator")
        record_all(
            store,
            [
                (outcome("https://origin.example/rss", own), "Origin"),
                (
                    outcome(
                        "https://other.example/rss", [entry(9, link="https://other.example/9")]
                    ),
                    "Other",
                ),
            ],
        )
        outlets = sorted(i.outlet for i in store.items_since(NOW - timedelta(days=1)))
        assert outlets == ["Aggregator", "Origin", "Other"]


def test_an_article_two_feeds_of_its_site_carry_stays_with_the_first(store_target) -> None:
    """Two feeds of one site (or of one hosting platform) carrying one article: nothing tells
    whose it is, and it stays the first's."""
    link = "https://origin.example/news/tokyo"
    with Store.open(store_target()) as store:
        record(store, outcome("https://origin.example/world", [entry(1, link=link)]), "World")
        record(store, outcome("https://origin.example/asia", [entry(2, link=link)]), "Asia")
        (item,) = store.items_since(NOW - timedelta(days=1))
        assert item.outlet == "World"


def test_an_article_of_a_feed_no_longer_configured_is_taken_by_a_feed_that_lists_it(
    store_target,
) -> None:
    """Two feeds carry one article, stored as the first's; the first is removed from
    feeds.yaml: its items leave the digest, and the second's entry, a copy of a stored
    article, was never stored either. The item becomes the second's (its id, and so its
    story, kept); while both feeds are configured it stays the first's."""
    link = "https://wire.example/genoa"
    feeds = [FeedConfig(url="https://a.example/feed"), FeedConfig(url="https://b.example/feed")]
    with Store.open(store_target()) as store:
        store.sync_feeds(feeds)
        record(store, outcome(feeds[0].url, [entry(1, link=link)]), "Alpha")
        record(store, outcome(feeds[1].url, [entry(2, link=link)]), "Beta")
        (item,) = store.items_since(NOW - timedelta(days=1))
        assert (item.feed_url, item.outlet) == (feeds[0].url, "Alpha")
        store.sync_feeds(feeds[1:])
        record(store, outcome(feeds[1].url, [entry(2, link=link)]), "Beta")
        (taken,) = store.items_since(NOW - timedelta(days=1))
        assert (taken.id, taken.feed_url, taken.outlet) == (item.id, feeds[1].url, "Beta")


def test_an_entry_whose_long_link_parsing_now_drops_is_the_item_stored_with_it(
    store_target,
) -> None:
    """An entry without guid whose link is over 2,048 bytes was stored under that link (its
    key hashed by schema 10); parsing drops such a link since, so the entry came back keyed
    by its text and was stored again, a second report of the same title in its story."""
    long_link = "https://news.example/c1?q=" + "x" * 2100
    before = entry(1, guid=None, link=long_link)
    now = entry(1, guid=None, link=None)  # the same entry as parse_feed gives it now
    url = "https://news.example/feed"
    with Store.open(store_target()) as store:
        assert record(store, outcome(url, [before]), "A") == 1
        assert record(store, outcome(url, [now]), "A") == 0
        assert record(store, outcome(url, [now]), "A") == 0
        assert store.count_items() == 1


def test_an_item_keeps_its_feeds_declared_language(store_target) -> None:
    """The feed's language goes with each of its items (a feed that changes it later does
    not relabel what it sent before), and with an item a feed of its own site takes over."""
    url = "https://arabic.example/feed"
    result = outcome(url, [entry(1)])
    result = replace(result, feed=replace(result.feed, language="ar"))
    with Store.open(store_target()) as store:
        record(store, result, "A")
        record(store, outcome("https://plain.example/feed", [entry(2)]), "B")
        found = {i.outlet: i.language for i in store.items_since(NOW - timedelta(days=1))}
        assert found == {"A": "ar", "B": None}


def test_control_characters_in_a_feeds_ids_and_links_never_reach_the_database(store_target) -> None:
    """JSON allows "\\u0000" in an item's id and url; PostgreSQL refuses NUL in text, which
    rolled back a worker's whole batch (good feeds beside it too) on every try."""
    import json

    from aggregator.parse import parse_feed

    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {"id": "item-1\u0000", "title": "Bridge", "url": "https://news.example/a\u0000b"},
            {"id": "\u0000\u0007", "title": "Storm", "url": "https://news.example/storm"},
        ],
    }
    parsed = parse_feed(json.dumps(document).encode(), url="https://news.example/feed.json")
    first, second = parsed.entries
    assert (first.guid, first.link) == ("item-1", None)  # a link no request could carry: dropped
    assert (second.guid, second.link) == (None, "https://news.example/storm")
    with Store.open(store_target()) as store:
        assert (
            record(store, outcome("https://news.example/feed.json", list(parsed.entries)), "A") == 2
        )
        assert (
            record(store, outcome("https://news.example/feed.json", list(parsed.entries)), "A") == 0
        )


def test_future_dates_fall_back_to_first_seen(store_target) -> None:
    with Store.open(store_target()) as store:
        record(
            store,
            outcome("https://a.example/f", [entry(1, published=NOW + timedelta(days=3))]),
            "A",
        )
        (item,) = store.items_since(NOW - timedelta(days=1))
        assert item.published == NOW


def test_timestamps_are_fixed_width_text_that_sorts_as_time() -> None:
    from aggregator.store import _dt, _ts

    times = [datetime(999, 1, 1, tzinfo=UTC), datetime(2026, 12, 7, 5, 4, 3, 21, tzinfo=UTC)]
    assert [_ts(t) for t in times] == ["0999-01-01T00:00:00.000000Z", "2026-12-07T05:04:03.000021Z"]
    assert sorted(_ts(t) for t in reversed(times)) == [_ts(t) for t in times]
    assert [_dt(_ts(t)) for t in times] == times


def test_an_item_stored_with_a_placeholder_date_is_dated_when_first_seen(store_target) -> None:
    from aggregator.store import _ts

    """An earlier version (schema 8) stored year 999 as "999-01-01...", which sorted after every
    real date (in every window, and unreadable), and year 1990 and before as they came."""
    target = store_target()
    with Store.open(target) as store:
        record(store, outcome("https://a.example/f", [entry(1), entry(2), entry(3)]), "A")
        for key, published in (
            (1, "999-01-01T00:00:00.000000Z"),
            (2, "0001-01-01T00:00:00.000000Z"),
        ):
            store.db.execute(
                "UPDATE items SET published = ?, sort_time = ? WHERE key = ?",
                (published, published, f"guid:guid-{key}"),
            )
        store.set_meta("schema_version", "8")
    with Store.open(target) as store:
        rows = store.db.execute("SELECT key, published, sort_time FROM items ORDER BY key")
        assert [tuple(row) for row in rows] == [
            ("guid:guid-1", None, "2026-11-28T12:00:00.000000Z"),
            ("guid:guid-2", None, "2026-11-28T12:00:00.000000Z"),
            ("guid:guid-3", _ts(entry(3).published), _ts(entry(3).published)),
        ]
        assert len(store.items_since(NOW - timedelta(days=30))) == 3  # all readable


def test_a_guid_or_link_too_long_for_an_index_is_stored_by_its_hash(store_target) -> None:
    """PostgreSQL's indexes hold at most 2704 bytes a row: one entry's 3,000-character guid (or
    a 2,800-character link) stopped every poll there, healthy feeds' items and all."""
    from aggregator.intake import KEY_BYTES, LINK_BYTES

    long_guid = entry(1, guid="g" * 3000)
    long_link = entry(2, guid=None, link="https://news.example/" + "x" * 2000)
    feeds = [
        ("https://a.example/feed", [long_guid, long_link]),
        ("https://b.example/f", [entry(3)]),
    ]
    with Store.open(store_target()) as store:
        assert [record(store, outcome(url, entries), "A") for url, entries in feeds] == [2, 1]
        assert [record(store, outcome(url, entries), "A") for url, entries in feeds] == [0, 0]
        rows = store.db.execute("SELECT key, canonical_link, link FROM items ORDER BY id")
        (guid_key, _, _), (link_key, identity, link), _ = (tuple(row) for row in rows)
    assert guid_key.startswith("guid#") and len(guid_key) <= KEY_BYTES
    assert link_key.startswith("link#") and identity.startswith("sha256:")
    assert len(identity) <= LINK_BYTES and link == long_link.link  # the link itself is kept


def test_keys_stored_before_they_were_bounded_are_bounded_by_the_upgrade(tmp_path: Path) -> None:
    """A SQLite file of schema 9 may hold long keys (SQLite's indexes take them): the upgrade
    keeps them as intake does now, so the next poll finds the item and `store copy` to
    PostgreSQL can hold it."""
    database = tmp_path / "news.db"
    long_guid = entry(1, guid="g" * 3000)
    with Store.open(database) as store:
        record(store, outcome("https://a.example/feed", [entry(2)]), "A")
        store.db.execute(
            "UPDATE items SET key = ?, canonical_link = ?",
            ("guid:" + "g" * 3000, "https://news.example/" + "x" * 2500),
        )
        store.set_meta("schema_version", "9")
    with Store.open(database) as store:
        ((key, identity),) = (
            tuple(r) for r in store.db.execute("SELECT key, canonical_link FROM items")
        )
        assert key.startswith("guid#") and identity.startswith("sha256:")
        assert record(store, outcome("https://a.example/feed", [long_guid]), "A") == 0


def test_errors_keep_validators_and_count_up(store_target) -> None:
    url = "https://a.example/feed"
    with Store.open(store_target()) as store:
        record(store, outcome(url, [entry(1)]), "A")
        record(store, failed(url, NOW), "A")
        (state,) = store.feed_states([FeedConfig(url=url)])
        assert state.etag == '"v1"'
        assert state.consecutive_errors == 1
        (health,) = store.feed_health(NOW)
        assert health.last_status == "error" and health.last_error == "HTTP 500"
        assert health.last_success == NOW
        assert health.items_7d == 1


def test_a_304_refreshes_the_validators_it_carries_and_keeps_the_others(
    store_target, feed_server
) -> None:
    """RFC 9111 4.3.4: a 304 updates the stored response's headers. Dropped, the next poll
    sent the old ETag, which a server that rotated it answers with the whole feed. (The poller
    merges them; the store keeps what it is given.)"""
    from aggregator.poller import PollOptions, poll
    from tests.support.feedserver import Reply

    modified = "Mon, 01 Jan 2024 00:00:00 GMT"
    rss = "<rss version='2.0'><channel><title>A</title><item><guid>g</guid></item></channel></rss>"
    replies = iter(
        [
            Reply(200, body=rss, headers={"ETag": '"v1"', "Last-Modified": modified}),
            Reply(304, headers={"ETag": '"v2"'}),  # a new ETag, no Last-Modified
            Reply(304),  # no validators: changes nothing
        ]
    )
    feed_server.route("/rss", handler=lambda request: next(replies))
    feed = FeedConfig(url=feed_server.url("/rss"), allow_private=True)
    options = PollOptions(total_timeout=5, parse_processes=0, trust_env=False)
    seen = []
    with Store.open(store_target()) as store:
        for day in range(3):
            (result,) = poll(
                store.feed_states([feed]), now=NOW + timedelta(days=day), options=options
            )
            record(store, result, "A")
            (state,) = store.feed_states([feed])
            seen.append((result.status, state.etag, state.last_modified))
    assert seen == [
        ("ok", '"v1"', modified),
        ("not_modified", '"v2"', modified),
        ("not_modified", '"v2"', modified),
    ]


def test_vectors_round_trip_per_model_key(store_target) -> None:
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/feed", [entry(1), entry(2)]), "A")
        vectors = np.random.default_rng(0).random((2, 4), dtype=np.float32)
        store.save_vectors([1, 2], vectors, "model-a")
        found = store.vectors([1, 2, 3], "model-a")
        assert set(found) == {1, 2}
        np.testing.assert_array_equal(found[2], vectors[1])
        assert store.vectors([1, 2], "model-b") == {}


def test_saving_stories_moves_items_and_drops_empty_stories(store_target) -> None:
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/feed", [entry(1), entry(2)]), "A")
        items = store.items_since(NOW - timedelta(days=1))
        one, two = (
            Story(id=f"s-{i.id}", headline_item_id=i.id, members=(StoryMember(i),)) for i in items
        )
        store.save_stories([one, two])
        merged = Story(
            id="s-1", headline_item_id=items[0].id, members=tuple(StoryMember(i) for i in items)
        )
        store.save_stories([merged])
        assert set(store.story_assignments([i.id for i in items]).values()) == {"s-1"}
        assert [r[0] for r in store.db.execute("SELECT id FROM stories")] == ["s-1"]


def test_a_feeds_share_counts_the_other_outlets_its_stories_had_before_the_window(
    store_target,
) -> None:
    """`feeds status` SHARED: the share of a feed's items in stories with other outlets. A
    story's other outlet whose report left the window at the last clustering still shared it
    (it read the story's outlets in the window: B's one item in a two-outlet story was 0%)."""
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/feed", [entry(30)]), "A")
        record(store, outcome("https://b.example/feed", [entry(2), entry(3)]), "B")
        early, late, alone = sorted(store.items_since(NOW - timedelta(days=2)), key=lambda i: i.id)
        both = Story(
            id="s-1", headline_item_id=early.id, members=(StoryMember(early), StoryMember(late))
        )
        own = Story(id="s-2", headline_item_id=alone.id, members=(StoryMember(alone),))
        store.save_stories([both, own])
        # the next clustering's window no longer holds A's report: the story has B's alone
        store.save_stories([replace(both, members=(StoryMember(late),)), own])
        shares = {h.url: h.multi_outlet_share for h in store.feed_health(NOW)}
        assert shares == {"https://a.example/feed": 1.0, "https://b.example/feed": 0.5}


def _hold_lock(database: str, ready, release) -> None:
    with run_lock(database if "://" in database else Path(database)):
        ready.set()
        release.wait(10)


def test_a_second_run_on_the_same_database_is_refused(store_target, tmp_path: Path) -> None:
    database = store_target()
    config = tmp_path / "feeds.yaml"
    config.write_text(f"database: {database}\nfeeds: []\n", encoding="utf-8")
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(database), ready, release))
    holder.start()
    try:
        assert ready.wait(20)
        with pytest.raises(LockedError, match="--wait"), run_lock(database, wait_seconds=0.3):
            pass
        # the CLI says so in one line and exits with EX_TEMPFAIL, whatever the command
        for command in (
            ["poll", "--wait", "0.3"],
            ["store", "copy", "--wait", "0.3", "--to", str(tmp_path / "copy.db")],
        ):
            result = CliRunner().invoke(main, [*command, "-c", str(config)])
            assert result.exit_code == 75, (command, result.output)
            assert "--wait" in result.output and "Traceback" not in result.output
            assert len(result.output.strip().splitlines()) == 1, result.output
    finally:
        release.set()
        holder.join(10)
    with run_lock(database, wait_seconds=1):
        pass


def test_stores_in_two_schemas_of_one_database_do_not_lock_each_other(
    postgres_database: str,
) -> None:
    """Advisory locks are the database's: a run on the store in schema `a` refused every run
    on the one in schema `b` ("another aggregator run is using ..."), though the copy errors
    suggest a new schema for a second store. The store in `public` keeps the old key."""
    import psycopg

    from tests.support.databases import fresh_postgres

    database = fresh_postgres(postgres_database).split("?")[0]  # its own database, public
    schemas = [f"{name}_{uuid.uuid4().hex[:8]}" for name in "ab"]
    with psycopg.connect(database, autocommit=True) as admin:
        for schema in schemas:
            admin.execute(f"CREATE SCHEMA {schema}")
    in_a, in_b = (f"{database}?options=-csearch_path%3D{schema}" for schema in schemas)
    with run_lock(in_a):
        with run_lock(in_b, wait_seconds=0.3), run_lock(database, wait_seconds=0.3):
            pass
        with pytest.raises(LockedError), run_lock(in_a, wait_seconds=0.3):
            pass
    with run_lock(database), psycopg.connect(database, autocommit=True) as other:
        taken = other.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)).fetchone()
        assert taken == (False,)  # the key an older version takes: the two exclude each other


def test_a_run_that_lost_its_run_lock_stops(
    tmp_path: Path, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock of `run` on PostgreSQL is a session lock: a server restart or a dropped
    connection frees it, and the next cron run takes it. The first must not go on."""
    import psycopg

    from aggregator import cli
    from tests.support.databases import fresh_postgres

    config = tmp_path / "feeds.yaml"
    config.write_text(
        f"database: '{fresh_postgres(postgres_database)}'\n"
        "feeds:\n  - url: http://127.0.0.1:9/closed.xml\n    allow_private: true\n"
    )
    polled = cli._do_poll

    def poll_then_lose_the_lock(*args, **kwargs):
        summary = polled(*args, **kwargs)
        with psycopg.connect(postgres_database, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        return summary

    monkeypatch.setattr(cli, "_do_poll", poll_then_lose_the_lock)
    result = CliRunner().invoke(main, ["run", "-c", str(config)])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1].startswith("aggregator: lost the run lock")
    assert "Traceback" not in result.output and "stories:" not in result.output
    assert not (tmp_path / "output").exists()  # neither clustered nor built


def test_a_failed_transaction_leaves_nothing(store_target) -> None:
    with Store.open(store_target()) as store:
        with pytest.raises(store.db.IntegrityError), store.transaction() as db:
            db.execute("INSERT INTO emails (day, sent_at, destination) VALUES ('d', 't', 'x')")
            db.execute("INSERT INTO emails (day, sent_at, destination) VALUES ('d', 't', 'x')")
        assert not store.email_sent("d")


def test_a_batch_of_outcomes_matches_recording_them_one_by_one(store_target) -> None:
    shared = "https://news.example/shared"
    batch = [
        outcome("https://a.example/feed", [entry(1), entry(2), entry(9, link=shared)]),
        outcome("https://b.example/feed", [entry(3), entry(4, link=shared + "?utm_medium=x")]),
        failed("https://c.example/feed", NOW),
        outcome("https://d.example/feed", [], status="skipped", feed=None),
        outcome("https://a.example/feed", [entry(1), entry(5)]),
    ]
    with Store.open(store_target("one")) as store:
        one_by_one = [record(store, o, "Outlet") for o in batch]
        rows_one = store.db.execute(
            "SELECT feed_url, key, canonical_link, sort_time FROM items ORDER BY id"
        ).fetchall()
    with Store.open(store_target("many")) as store:
        batched = record_all(store, [(o, "Outlet") for o in batch])
        rows_many = store.db.execute(
            "SELECT feed_url, key, canonical_link, sort_time FROM items ORDER BY id"
        ).fetchall()
        feeds = store.db.execute("SELECT url, last_status FROM feeds ORDER BY url").fetchall()
    assert batched == one_by_one == [3, 1, 0, 0, 1]  # b's copy of the shared link is skipped
    assert rows_many == rows_one
    assert feeds == [
        ("https://a.example/feed", "ok"),
        ("https://b.example/feed", "ok"),
        ("https://c.example/feed", "error"),
    ]


def test_a_failed_batch_leaves_nothing(store_target) -> None:
    good = outcome("https://a.example/feed", [entry(1)])
    broken = outcome("https://b.example/feed", [entry(2, title=object())])  # cannot be bound
    with Store.open(store_target()) as store:
        with pytest.raises(store.db.Error):
            record_all(store, [(good, "A"), (broken, "B")])
        assert store.count_items() == 0
        assert store.db.execute("SELECT count(*) FROM feeds").fetchone()[0] == 0


def test_page_junk_is_stripped_from_stored_summaries(store_target) -> None:
    junk = entry(
        1, summary="Talks began on Sunday in the capital as planned. - Advertisement - Buy now"
    )
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/feed", [junk]), "A")
        (item,) = store.items_since(NOW - timedelta(days=1))
    assert item.summary == "Talks began on Sunday in the capital as planned."


def test_a_version_1_database_gains_story_reasons(store_target) -> None:
    path = store_target("old")
    with older_database(path, 1) as db:
        db.execute("INSERT INTO story_items (item_id, story_id, copy_of) VALUES (7, 's-old', NULL)")
    with Store.open(path) as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert store.story_reasons("s-old") == {7: ""}  # kept, with an empty reason
        record(store, outcome("https://a.example/feed", [entry(1)]), "A")
        (only,) = store.items_since(NOW - timedelta(days=1))
        member = StoryMember(only, why="0.82 similar, shares Okafor")
        store.save_stories([Story(id="s-new", headline_item_id=only.id, members=(member,))])
        assert store.story_reasons("s-new") == {only.id: "0.82 similar, shares Okafor"}


def test_a_version_4_database_gains_the_feeds_ttl(store_target) -> None:
    """Schema 5 adds feeds.ttl_minutes as NULL (no <ttl> known until the next 200)."""
    url = "https://a.example/feed"
    target = store_target()
    with older_database(target, 4) as db:
        db.execute(
            "INSERT INTO feeds (url, fetch_url, etag, consecutive_errors) VALUES (?, ?, ?, 2)",
            (url, url, '"old"'),
        )
    with Store.open(target) as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        (state,) = store.feed_states([FeedConfig(url=url)])
        assert (state.etag, state.consecutive_errors, state.ttl_minutes) == ('"old"', 2, None)
        daily = ParsedFeed(title="A", link=None, entries=(entry(1),), ttl_minutes=1440)
        record(store, outcome(url, [], feed=daily), "A")
        record(store, outcome(url, [], status="not_modified", http_status=304, feed=None), "A")
        record(store, failed(url, NOW), "A")
        (state,) = store.feed_states([FeedConfig(url=url)])
        assert state.ttl_minutes == 1440  # kept through the 304 and the error
        record(store, outcome(url, [entry(2)]), "A")  # a 200 without <ttl> forgets it
        (state,) = store.feed_states([FeedConfig(url=url)])
        assert state.ttl_minutes is None


def test_a_version_5_database_gains_item_edits(store_target) -> None:
    """Schema 6 adds items.edits as 0 (no correction stored yet): stored items take them."""
    url = "https://a.example/feed"
    target = store_target()
    with older_database(target, 5) as db:
        db.execute(
            "INSERT INTO items (feed_url, key, canonical_link, link, title, summary, outlet, "
            "first_seen, sort_time) VALUES (?, 'guid:guid-1', ?, ?, 'Title 1', 'Summary 1', "
            "'A', '2026-11-28T11:00:00.000000Z', '2026-11-28T11:00:00.000000Z')",
            (url, canonical_url(entry(1).link), entry(1).link),
        )
    with Store.open(target) as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert store.db.execute("SELECT title, edits FROM items").fetchall() == [("Title 1", 0)]
        (changes,) = record_changes(
            store, [(outcome(url, [entry(1, title="Title 1, fixed")]), "A")]
        )
        assert (changes.new, changes.updated) == (0, 1)
        rows = store.db.execute("SELECT title, edits FROM items").fetchall()
        assert rows == [("Title 1, fixed", 1)]


def test_an_older_schema_is_migrated_keeping_its_rows(store_target) -> None:
    target = store_target()
    with older_database(target, 1) as db:
        db.execute("INSERT INTO feeds (url, fetch_url) VALUES ('https://a.example/feed', 'x')")
    with Store.open(target) as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert store.db.execute("SELECT url, host, lease_until FROM feeds").fetchall() == [
            ("https://a.example/feed", None, None)
        ]
        store.sync_feeds([FeedConfig(url="https://a.example/feed")])
        assert store.db.execute("SELECT host FROM feeds").fetchone() == ("x",)


# ------------------------------------------------------------------ a feed's corrections


def item_rows(store: Store) -> dict[str, tuple]:
    """key -> (id, title, summary, link, canonical_link, first_seen, published, sort_time,
    full_text, full_text_status, edits) of every stored item."""
    rows = store.db.execute(
        "SELECT key, id, title, summary, link, canonical_link, first_seen, published, "
        "sort_time, full_text, full_text_status, edits FROM items"
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def corrected(store: Store, url: str, entries: list[ParsedEntry], at: datetime):
    """Poll ``url`` at ``at`` finding ``entries``: what changed."""
    (changes,) = record_changes(store, [(polled(url, entries, at), "A")])
    return changes


def test_a_corrected_entry_updates_the_stored_item_and_drops_its_vectors(store_target) -> None:
    """The same guid with a new title and summary: the stored item takes them (it was kept as
    first seen for good) and loses its vectors; it is no new item, and keeps its identity,
    dates and article text."""
    url = "https://a.example/feed"
    later = NOW + timedelta(hours=2)
    with Store.open(store_target()) as store:
        record(store, outcome(url, [entry(1), entry(2)]), "A")
        ids = [item_rows(store)[f"guid:guid-{n}"][0] for n in (1, 2)]
        store.save_vectors(ids, np.ones((2, 4), np.float32), "m")
        store.save_full_texts([(ids[0], "The article's own text.", "ok")])
        store.save_vectors(ids[:1], np.ones((1, 4), np.float32), "m")
        before = item_rows(store)

        fixed = entry(1, title="Title 1, corrected", summary="Summary 1, updated",
                      link="https://news.example/1?utm_source=other", published=later)  # fmt: skip
        changes = corrected(store, url, [fixed, entry(2)], later)
        assert (changes.new, changes.updated) == (0, 1)
        after = item_rows(store)
        assert after["guid:guid-1"][1:4] == (
            "Title 1, corrected", "Summary 1, updated", "https://news.example/1?utm_source=other",
        )  # fmt: skip
        # the same article (its canonical link), first seen and dated as before, its text kept
        assert after["guid:guid-1"][4:10] == before["guid:guid-1"][4:10]
        assert after["guid:guid-1"][10] == 1
        assert after["guid:guid-2"] == before["guid:guid-2"]
        assert set(store.vectors(ids, "m")) == {ids[1]}  # embedded again at the next cluster
        assert store.count_items() == 2

        # Moved to another page too: the old page's text goes, to be fetched again.
        moved = replace(fixed, title="Title 1, corrected again", link="https://news.example/1b")
        changes = corrected(store, url, [moved, entry(2)], later)
        assert (changes.new, changes.updated) == (0, 1)
        row = item_rows(store)["guid:guid-1"]
        assert row[1:5] == ("Title 1, corrected again", "Summary 1, updated",
                            "https://news.example/1b", before["guid:guid-1"][4])  # fmt: skip
        assert row[8:] == (None, None, 2)
        untried = store.items_for_full_text([url], NOW - timedelta(days=1), untried_only=True)
        assert (ids[0], "https://news.example/1b", "Summary 1, updated", url) in untried


def test_an_unchanged_repoll_changes_nothing(store_target) -> None:
    """Nothing new, nothing updated, every vector kept; nor does an entry the feed repeats
    with another text churn (its first one counts, as when it was stored)."""
    url = "https://a.example/feed"
    twice = [entry(1), entry(2), entry(1, title="Title 1 (repeated)")]
    with Store.open(store_target()) as store:
        assert corrected(store, url, twice, NOW).new == 2
        ids = [row[0] for row in item_rows(store).values()]
        store.save_vectors(ids, np.ones((2, 4), np.float32), "m")
        before = item_rows(store)
        for hours in (1, 2):
            changes = corrected(store, url, twice, NOW + timedelta(hours=hours))
            assert (changes.new, changes.updated) == (0, 0)
        assert item_rows(store) == before
        assert before["guid:guid-1"][1] == "Title 1" and before["guid:guid-1"][10] == 0
        assert set(store.vectors(ids, "m")) == set(ids)


def test_an_item_whose_text_keeps_changing_is_left_alone_after_the_limit(store_target) -> None:
    """A feed that rewrites an entry on every fetch (a counter, "5 minutes ago") has it
    updated and embedded again EDIT_LIMIT times, then no more."""
    from aggregator.store import EDIT_LIMIT

    url = "https://a.example/feed"
    with Store.open(store_target()) as store:
        record(store, outcome(url, [entry(1)]), "A")
        (item_id,) = [row[0] for row in item_rows(store).values()]
        updated = 0
        for n in range(1, EDIT_LIMIT + 4):
            store.save_vectors([item_id], np.ones((1, 4), np.float32), "m")
            at = NOW + timedelta(hours=n)
            changes = corrected(store, url, [entry(1, summary=f"Read {n} times")], at)
            updated += changes.updated
            dropped = item_id not in store.vectors([item_id], "m")
            assert dropped == (n <= EDIT_LIMIT), n
        assert updated == EDIT_LIMIT
        row = item_rows(store)["guid:guid-1"]
        assert (row[2], row[10]) == (f"Read {EDIT_LIMIT} times", EDIT_LIMIT)


def test_outlet_names_are_those_of_each_feeds_latest_item(store_target) -> None:
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/feed", [entry(1)]), "Old Title")
        record(store, outcome("https://a.example/feed", [entry(2)]), "New Title")
        record(store, outcome("https://b.example/feed", [entry(3, guid="b")]), "B News")
        assert store.outlet_names() == {
            "https://a.example/feed": "New Title",
            "https://b.example/feed": "B News",
        }


def test_a_version_6_sqlite_database_keeps_its_vectors_in_a_rowid_table(tmp_path: Path) -> None:
    """Schema 7 moves SQLite's vectors out of a WITHOUT ROWID table, where each 1.5 KB vector
    took an overflow page of its own (4.7 KB a vector on disk, 2.1 KB in rows)."""
    path = tmp_path / "old.db"
    vectors = np.random.default_rng(3).normal(size=(1000, 384)).astype(np.float32)
    with older_database(path, 6) as db:
        db.executemany(
            "INSERT INTO embeddings (item_id, model_key, vector) VALUES (?, 'm', ?)",
            [(i, v.tobytes()) for i, v in enumerate(vectors)],
        )
    with sqlite3.connect(path) as old:
        (layout,) = old.execute("SELECT sql FROM sqlite_master WHERE name='embeddings'").fetchone()
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert "WITHOUT ROWID" in layout
    before = path.stat().st_size
    with Store.open(path) as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        # the old table's pages are given back: the file is about half as big
        assert path.stat().st_size < 0.6 * before
        kept = store.vectors(list(range(1000)), "m")
        assert all(np.array_equal(kept[i], vectors[i]) for i in range(1000))
        store.save_vectors([0], vectors[1:2], "m")  # one vector per item and model, as before
        assert np.array_equal(store.vectors([0], "m")[0], vectors[1])
    with sqlite3.connect(path) as new:
        (layout,) = new.execute("SELECT sql FROM sqlite_master WHERE name='embeddings'").fetchone()
        assert "WITHOUT ROWID" not in layout
        assert new.execute("SELECT count(*) FROM embeddings").fetchone() == (1000,)


# Names as an aggregator stored them before intake cleaned them: a zero-width space and a
# right-to-left mark, a control character, invisible characters only, a zero-width non-joiner
# that spells a Persian name (kept), a clean name. Feed URL -> (stored, as read from schema 8).
DIRTY_OUTLETS = {
    "https://a.example/feed": ("Reu\u200bters\u200f", "Reuters"),
    "https://b.example/feed": ("AP\x07 News\x1b", "AP News"),
    "https://c.example/feed": ("\u200b\u2060\ufeff", ""),
    "https://d.example/feed": ("\u0647\u0645\u200c\u0634\u0647\u0631\u06cc", None),
    "https://e.example/feed": ("Reuters", None),
}


def old_item(db, n: int, feed_url: str, outlet: str) -> None:
    at = f"2026-11-28T{n:02d}:00:00.000000Z"
    db.execute(
        "INSERT INTO items (id, feed_url, key, link, title, summary, outlet, first_seen, "
        "sort_time) VALUES (?, ?, ?, ?, ?, 'Summary', ?, ?, ?)",
        (n, feed_url, f"guid:{n}", f"{feed_url}/{n}", f"Title {n}", outlet, at, at),
    )


def old_digest(db, day: str, outlets: list[str], since: dict[str, str]) -> str:
    payload = {
        "day": day,
        "stories": [
            {"id": "s1", "outlets": outlets, "items": [{"outlet": o, "title": o} for o in outlets]}
        ],
        "outlets_since": since,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    db.execute(
        "INSERT INTO digests (day, generated_at, payload) VALUES (?, ?, ?)",
        (day, f"{day}T12:00:00.000000Z", text),
    )
    return text


def test_a_version_7_database_has_its_outlet_names_cleaned_once(store_target, monkeypatch) -> None:
    """Schema 8 cleans the outlet names stored before intake cleaned them (text.outlet_name),
    in items and in the digests kept, a few names and digests at a time: the store reads them
    as stored, each as reading it gave before. Run again, it changes nothing."""
    import aggregator.store

    monkeypatch.setattr(aggregator.store, "_NAMES_AT_ONCE", 2)  # 3 names to change: 2 UPDATEs
    monkeypatch.setattr(aggregator.store, "_DIGESTS_AT_ONCE", 1)
    read_as = {
        url: stored if clean is None else clean for url, (stored, clean) in DIRTY_OUTLETS.items()
    }
    target = store_target()
    with older_database(target, 7) as db:
        for n, (url, (stored, _clean)) in enumerate(DIRTY_OUTLETS.items(), start=1):
            old_item(db, n, url, stored)
            old_item(db, n + 10, url, stored)
        # item 11 (a's) is a copy of item 5 (e's: Reuters), item 12 (b's) of item 1 (a's)
        db.execute("INSERT INTO story_items (item_id, story_id, copy_of) VALUES (11, 's', 5)")
        db.execute("INSERT INTO story_items (item_id, story_id, copy_of) VALUES (12, 's', 1)")
        dirty = ["Reuters", "Reu\u200bters\u200f", "AP\x07 News\x1b"]
        since = {
            "Reuters": "2026-11-27T09:00:00+00:00",
            "Reu\u200bters\u200f": "2026-11-27T08:00:00+00:00",  # the earlier: kept
            "AP\x07 News\x1b": "2026-11-27T10:00:00+00:00",
        }
        old_digest(db, "2026-11-27", dirty, since)
        clean_payload = old_digest(db, "2026-11-28", ["Reuters"], {"Reuters": "2026-11-28T08:00"})
    with Store.open(target) as store:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        rows = store.db.execute("SELECT feed_url, outlet FROM items ORDER BY id").fetchall()
        assert rows == [(url, read_as[url]) for url in [*DIRTY_OUTLETS] * 2]
        assert store.outlet_names() == read_as
        items = store.items_since(NOW - timedelta(days=2))
        assert {(i.feed_url, i.outlet) for i in items} == set(read_as.items())
        copies = {r.item_id: r.copy_of_outlet for r in store.story_item_records(NOW - timedelta(2))}
        assert (copies[11], copies[12], copies[1]) == ("Reuters", "Reuters", None)
        digest = store.digest_of("2026-11-27")
        assert digest["stories"][0]["outlets"] == ["Reuters", "AP News"]
        assert [i["outlet"] for i in digest["stories"][0]["items"]] == [
            "Reuters", "Reuters", "AP News"
        ]  # fmt: skip
        assert digest["outlets_since"] == {
            "Reuters": "2026-11-27T08:00:00+00:00",
            "AP News": "2026-11-27T10:00:00+00:00",
        }
        payloads = dict(store.db.execute("SELECT day, payload FROM digests").fetchall())
        assert payloads["2026-11-28"] == clean_payload  # a clean digest is not written again
        before = store.db.execute("SELECT * FROM items ORDER BY id").fetchall()
        store.set_meta("schema_version", "7")
    with Store.open(target) as store:  # the migration once more: nothing changes
        assert store.db.execute("SELECT * FROM items ORDER BY id").fetchall() == before
        assert dict(store.db.execute("SELECT day, payload FROM digests").fetchall()) == payloads


def test_vectors_dated_before_a_time_are_dropped_at_most_a_limit_at_a_time(
    store_target,
) -> None:
    with Store.open(store_target()) as store:
        # entry(n) is dated n hours before NOW; two models' vectors for each
        record(store, outcome("https://a.example/feed", [entry(n) for n in (1, 30, 40, 50)]), "A")
        ids = {i.title: i.id for i in store.items_since(NOW - timedelta(days=3))}
        for model in ("m1", "m2"):
            store.save_vectors(list(ids.values()), np.ones((4, 3), np.float32), model)
        assert store.drop_vectors_before(NOW - timedelta(hours=24), limit=2) == 2
        assert store.drop_vectors_before(NOW - timedelta(hours=24)) == 1
        assert store.drop_vectors_before(NOW - timedelta(hours=24)) == 0
        for model in ("m1", "m2"):
            assert set(store.vectors(list(ids.values()), model)) == {ids["Title 1"]}


def test_the_pages_to_fetch_are_the_windows_by_date_not_a_new_feeds_backlog(store_target) -> None:
    """A feed polled for the first time gives its entries of months back, all first seen now:
    every page was fetched, and grouping reads only the window's (by date)."""
    url = "https://a.example/feed"
    with Store.open(store_target()) as store:
        record(store, outcome(url, [entry(n) for n in (1, 5, 50, 2000)]), "A")
        rows = store.items_for_full_text([url], NOW - timedelta(hours=24), untried_only=True)
        titles = dict(store.db.execute("SELECT id, title FROM items").fetchall())
        assert [titles[row[0]] for row in rows] == ["Title 5", "Title 1"]  # oldest first


def test_article_texts_dated_before_a_time_are_dropped_and_the_items_stay(store_target) -> None:
    """keep_full_text_days: an old item's article text goes, at most a limit at a time, and
    says so; its headline, summary and link stay, as do newer items' texts; an item that
    lost its text is not read again."""
    with Store.open(store_target()) as store:
        record(store, outcome("https://a.example/feed", [entry(n) for n in (1, 30, 40, 50)]), "A")
        ids = {i.title: i.id for i in store.items_since(NOW - timedelta(days=3))}
        store.save_full_texts([(item_id, f"Text of {t}.", "ok") for t, item_id in ids.items()])
        before = item_rows(store)
        assert store.drop_full_texts_before(NOW - timedelta(hours=24), limit=2) == 2
        assert store.drop_full_texts_before(NOW - timedelta(hours=24)) == 1
        assert store.drop_full_texts_before(NOW - timedelta(hours=24)) == 0
        texts = dict(store.db.execute("SELECT title, full_text FROM items").fetchall())
        assert texts == {
            "Title 1": "Text of Title 1.", "Title 30": None, "Title 40": None, "Title 50": None
        }  # fmt: skip
        statuses = dict(store.db.execute("SELECT title, full_text_status FROM items").fetchall())
        assert statuses["Title 1"] == "ok" and statuses["Title 50"] == "dropped"
        after = item_rows(store)
        for key, row in after.items():  # (id, title, summary, link, ...) as before
            assert row[:4] == before[key][:4]


def test_a_digest_edited_by_hand_does_not_stop_the_names_being_cleaned() -> None:
    """Schema 8 cleans the names in each digest kept as the store opens: an `outlets_since`
    time it cannot compare (not text, or naive beside aware) keeps the first, not a traceback
    that leaves the store unopenable."""
    import json

    from aggregator.store import _digest_names_cleaned

    payload = json.dumps(
        {
            "stories": [],
            "outlets_since": {
                "Reu\u200bters": 5,
                "Reuters": "2026-12-01T10:00:00+00:00",
                "A\u200bP": "2026-12-01T09:00:00",
                "AP": "2026-12-01T08:00:00+00:00",
            },
        }
    )
    cleaned = json.loads(_digest_names_cleaned(payload) or "{}")
    assert cleaned["outlets_since"] == {"Reuters": 5, "AP": "2026-12-01T09:00:00"}


def test_a_role_that_only_reads_and_writes_data_opens_an_up_to_date_store(
    postgres_database: str,
) -> None:
    """Every open ran CREATE TABLE IF NOT EXISTS meta, and PostgreSQL checks the schema's
    CREATE right even for a table that exists: workers could not run as a role with no rights
    but to its tables' rows. A store that needs migrating still needs them."""
    import psycopg

    from tests.support.databases import fresh_postgres

    database = fresh_postgres(postgres_database)
    with Store.open(database) as store:  # migrated by the owner
        schema = store.db.execute("SELECT current_schema()").fetchone()[0]
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
        )
        admin.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    try:
        as_app = database.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
        assert as_app != database
        with Store.open(as_app) as store:
            store.set_meta("probe", "1")
            assert store.meta("probe") == "1"
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        with pytest.raises(Exception, match="permission denied"), Store.open(as_app):
            pass
    finally:
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
