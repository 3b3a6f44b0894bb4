"""`aggregator store copy`: a SQLite store moves into PostgreSQL with every id intact."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.models import FetchOutcome, ParsedFeed, Story, StoryMember
from aggregator.store import COPIED_FROM, Recorded, Store
from tests.support.databases import fresh_postgres
from tests.support.stored import polled, record, record_changes
from tests.test_store import NOW, entry, outcome


def filled_sqlite(path: Path) -> None:
    with Store.open(path) as store:
        record(store, outcome("https://a.example/feed", [entry(n) for n in range(1, 6)]), "A")
        daily = ParsedFeed(title="B", link=None, entries=tuple(entry(n) for n in range(6, 9)))
        record(
            store, outcome("https://b.example/feed", [], feed=replace(daily, ttl_minutes=90)), "B"
        )
        items = store.items_since(NOW - timedelta(days=2))
        ids = [i.id for i in items]
        store.save_vectors(ids, np.random.default_rng(1).random((len(ids), 8), np.float32), "m")
        halves = (items[:4], items[4:])
        store.save_stories(
            [
                Story(
                    id=f"story-{n}",
                    headline_item_id=part[0].id,
                    members=tuple(StoryMember(i) for i in part),
                )
                for n, part in enumerate(halves)
            ]
        )
        store.save_digest("2026-11-28", NOW, {"day": "2026-11-28", "stories": []})
        store.mark_email_sent("2026-11-28", "a@b.example", NOW)
        store.set_meta("cluster_fingerprint", "abc")


def snapshot(target: Path | str) -> dict[str, list]:
    queries = {
        "items": "SELECT id, feed_url, key, title, summary, link, edits, sort_time, full_text, "
        "full_text_status FROM items ORDER BY id",
        "stories": "SELECT item_id, story_id FROM story_items ORDER BY item_id",
        "story_rows": "SELECT id, headline_item_id, size FROM stories ORDER BY id",
        "feeds": "SELECT url, etag, next_due, ttl_minutes FROM feeds ORDER BY url",
        "digests": "SELECT day, payload FROM digests",
        "emails": "SELECT day, destination FROM emails",
        "meta": "SELECT key, value FROM meta WHERE key NOT IN "
        "('schema_version', 'store_id', 'copied_from') ORDER BY key",
    }
    with Store.open(target) as store:
        found = {name: [tuple(r) for r in store.db.execute(sql)] for name, sql in queries.items()}
        ids = [row[0] for row in found["items"]]
        found["vectors"] = {k: v.tolist() for k, v in sorted(store.vectors(ids, "m").items())}
    return found


def target_state(target: str) -> tuple:
    """What a refused copy must leave as it was: the rows, the feeds, whose copy it is."""
    with Store.open(target) as store:
        feeds = store.db.execute("SELECT * FROM feeds ORDER BY url").fetchall()
        return snapshot(target), feeds, store.meta(COPIED_FROM)


def test_copy_keeps_every_id_and_a_rerun_changes_nothing(tmp_path: Path, postgres_database) -> None:
    source = tmp_path / "news.db"
    filled_sqlite(source)
    config = tmp_path / "feeds.yaml"
    config.write_text(f"database: {source}\nfeeds: []\n")
    target = fresh_postgres(postgres_database)

    result = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", target])
    assert result.exit_code == 0, result.output
    assert "copied items: 8 rows" in result.output
    before = snapshot(source)
    assert snapshot(target) == before
    assert len(before["items"]) == 8 and len(before["vectors"]) == 8
    assert [feed[-1] for feed in before["feeds"]] == [None, 90]  # each feed's <ttl> too

    # Interrupted half way (some rows missing) and run again: completed, nothing doubled.
    with Store.open(target) as store, store.transaction() as db:
        db.execute("DELETE FROM embeddings WHERE item_id > 3")
        db.execute("DELETE FROM story_items WHERE item_id > 5")
        db.execute("DELETE FROM items WHERE id > 5")
    again = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", target])
    assert again.exit_code == 0, again.output
    assert "copied items: 3 rows" in again.output
    assert snapshot(target) == before

    # A rerun with nothing left to copy says so.
    third = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", target])
    assert third.exit_code == 0, third.output
    assert "copied items: 0 rows" in third.output and "copied embeddings: 0 rows" in third.output
    assert snapshot(target) == before

    # New items in the copy get ids after the copied ones.
    with Store.open(target) as store:
        record(store, outcome("https://c.example/feed", [entry(20)]), "C")
        (new_id,) = [
            r[0] for r in store.db.execute("SELECT id FROM items WHERE feed_url LIKE '%c.example%'")
        ]
    assert new_id > max(row[0] for row in before["items"])


def test_copy_refuses_a_password_in_the_url(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("database: news.db\nfeeds: []\n")
    result = CliRunner().invoke(
        main, ["store", "copy", "-c", str(config), "--to", "postgresql://u:secret@127.0.0.1/db"]
    )
    assert result.exit_code == 2
    assert "PGPASSWORD" in result.output and "secret" not in result.output


def copy_config(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "news.db"
    filled_sqlite(source)
    config = tmp_path / "feeds.yaml"
    config.write_text(f"database: {source}\nfeeds: []\n")
    return source, config


def test_copy_refuses_a_target_that_holds_items_of_its_own(
    tmp_path: Path, postgres_database
) -> None:
    _source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    with Store.open(target) as store:
        record(store, outcome("https://z.example/feed", [entry(30), entry(31)]), "Z")

    result = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", target])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "already holds items" in result.output and "empty database" in result.output
    with Store.open(target) as store:
        assert store.count_items() == 2
        assert store.db.execute("SELECT count(*) FROM embeddings").fetchone() == (0,)
        assert store.db.execute("SELECT count(*) FROM story_items").fetchone() == (0,)


def test_a_target_that_cannot_take_the_copy_is_named_as_the_target(
    tmp_path: Path, postgres_database
) -> None:
    """A target holding another program's `items` table (or refusing the user its schema)
    said "feeds.yaml:1: database: news.db: column "sort_time" does not exist ... set
    `database:` to another database", blaming the source; and a target nobody answers at."""
    import psycopg

    _source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("CREATE TABLE items (id integer PRIMARY KEY, body text)")
    result = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", target])
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("aggregator: --to postgresql://"), line
    assert "an empty database" in line and "database:" not in line.split(" (")[-1], line

    closed = "postgresql://postgres@127.0.0.1:1/nowhere"
    result = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", closed])
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"aggregator: --to {closed}: cannot connect"), line


def test_copy_refuses_when_the_copy_has_new_items_under_the_sources_ids(
    tmp_path: Path, postgres_database
) -> None:
    source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    first = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", target])
    assert first.exit_code == 0, first.output
    # Both went on separately: each stored a different item 9.
    with Store.open(target) as store:
        record(store, outcome("https://c.example/feed", [entry(40)]), "C")
    with Store.open(source) as store:
        record(store, outcome("https://d.example/feed", [entry(50)]), "D")
        (new_id,) = [
            r[0] for r in store.db.execute("SELECT id FROM items WHERE feed_url LIKE '%d.example%'")
        ]
        store.save_vectors([new_id], np.ones((1, 8), np.float32), "m")

    result = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", target])
    assert result.exit_code == 2, result.output
    assert f"item {new_id} there is another item" in result.output
    with Store.open(target) as store:
        vectors = store.vectors([new_id], "m")
    assert new_id not in vectors  # the source's vector never went to the target's own item


def test_a_rerun_is_refused_once_workers_stored_items_in_the_copy(
    tmp_path: Path, postgres_database
) -> None:
    """Workers went on with the copy (an item of their own, after the source's, and newer
    feed validators) while the source stayed as it was: the rerun found no clash among the
    source's items and put the source's older feed rows over the workers' newer ones."""
    source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    assert copy_into(config, target).exit_code == 0
    with Store.open(target) as store:
        record(store, outcome("https://c.example/feed", [entry(40)], etag='"c2"'), "C")
        record(store, outcome("https://a.example/feed", [entry(1)], etag='"a2"'), "A")
        (own,) = store.db.execute("SELECT id FROM items WHERE key = 'guid:guid-40'").fetchone()

    def feeds() -> list[tuple]:
        with Store.open(target) as store:
            return store.db.execute("SELECT * FROM feeds ORDER BY url").fetchall()

    before = snapshot(target), feeds()
    refused = copy_into(config, target)
    assert refused.exit_code == 2, refused.output
    assert f"item {own} there is not in {source}" in refused.output
    assert (snapshot(target), feeds()) == before

    # A copy the source has grown since (and nothing of its own): the rerun brings the rest.
    grown = fresh_postgres(postgres_database)
    assert copy_into(config, grown).exit_code == 0
    with Store.open(source) as store:
        record(store, outcome("https://d.example/feed", [entry(50)]), "D")
    assert copy_into(config, grown).exit_code == 0
    assert snapshot(grown) == snapshot(source)


def test_a_rerun_is_refused_once_workers_polled_the_copy_without_new_items(
    tmp_path: Path, postgres_database
) -> None:
    """Workers on the copy only polled (a 304 with a new ETag, a later schedule) and stored no
    item: with no item of its own to tell, the rerun put the source's older validators and
    schedule back over the workers' newer ones."""
    source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    assert copy_into(config, target).exit_code == 0
    url, later = "https://a.example/feed", NOW + timedelta(hours=2)

    def not_modified(at: datetime, etag: str) -> FetchOutcome:
        return polled(url, [], at, status="not_modified", http_status=304, feed=None, etag=etag)

    with Store.open(target) as store:
        record(store, not_modified(later, '"a2"'), "A")

    before = target_state(target)
    refused = copy_into(config, target)
    assert refused.exit_code == 2, refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert f"polled {url} at 2026-11-28T14:00" in refused.output
    assert "empty database" in refused.output
    assert target_state(target) == before

    # Polled later still in the source, the feed's row there is the newer one: the rerun takes it.
    with Store.open(source) as store:
        record(store, not_modified(later + timedelta(hours=1), '"a3"'), "A")
    again = copy_into(config, target)
    assert again.exit_code == 0, again.output
    assert snapshot(target) == snapshot(source)
    assert (url, '"a3"') in [feed[:2] for feed in snapshot(target)["feeds"]]


def test_copy_into_sqlite_of_another_source_is_refused(tmp_path: Path) -> None:
    _source, config = copy_config(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _other_source, other_config = copy_config(other)
    target = tmp_path / "copy.db"
    ok = CliRunner().invoke(main, ["store", "copy", "-c", str(other_config), "--to", str(target)])
    assert ok.exit_code == 0, ok.output
    result = CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", str(target)])
    assert result.exit_code == 2, result.output
    assert "not from a copy of" in result.output


def copy_into(config: Path, target: str):
    return CliRunner().invoke(main, ["store", "copy", "-c", str(config), "--to", target])


def test_a_rerun_brings_the_sources_new_texts_and_regrouping(
    tmp_path: Path, postgres_database
) -> None:
    source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    assert copy_into(config, target).exit_code == 0
    with Store.open(source) as store:  # cron went on there: article texts, a regrouping
        items = store.items_since(NOW - timedelta(days=2))
        first, second = items[0].id, items[1].id
        store.save_full_texts([(first, "The article's own text.", "ok")])  # its vector: gone
        store.save_full_texts([(second, None, "failed: HTTP 404")])
        assert items[1].title == "Title 7"  # the feed corrects it, moving its link
        fixed = entry(7, title="Title 7, corrected", link="https://news.example/7b")
        assert record_changes(store, [(outcome("https://b.example/feed", [fixed]), "B")]) == [
            Recorded(updated=1)
        ]  # its vector: gone too
        one = Story(id="story-0", headline_item_id=first, members=tuple(map(StoryMember, items)))
        store.save_stories([one])  # story-1 lost its items: gone

    again = copy_into(config, target)
    assert again.exit_code == 0, again.output
    assert snapshot(target) == snapshot(source)
    with Store.open(target) as store:
        assert set(store.vectors([first, second], "m")) == set()
        assert store.db.execute(
            "SELECT title, edits FROM items WHERE id = ?", (second,)
        ).fetchone() == ("Title 7, corrected", 1)
        assert [r[0] for r in store.db.execute("SELECT id FROM stories")] == ["story-0"]


def test_a_rerun_brings_the_new_ids_a_feed_gave_its_entries(
    tmp_path: Path, postgres_database
) -> None:
    """A feed that gave its entries new ids keeps its stored items (Store._rekeyed): a rerun
    took the copy's items under the old keys for "items of its own" and refused."""
    source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    assert copy_into(config, target).exit_code == 0
    with Store.open(source) as store:
        moved = [entry(n, guid=f"v2-{n}") for n in range(1, 6)]
        assert record_changes(store, [(outcome("https://a.example/feed", moved), "A")]) == [
            Recorded()
        ]
    again = copy_into(config, target)
    assert again.exit_code == 0, again.output
    assert snapshot(target) == snapshot(source)


def test_a_rerun_brings_an_item_its_own_sites_feed_took_over(
    tmp_path: Path, postgres_database
) -> None:
    """The article's own site's feed took over an item an aggregator's feed brought first
    (Store._take_over): its feed and key changed, and a rerun refused the copy's item as
    another item than the source's."""
    source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    assert copy_into(config, target).exit_code == 0
    with Store.open(source) as store:
        own = [entry(1, guid="own-1")]  # entry()'s link is on news.example
        assert record(store, outcome("https://news.example/rss", own), "News") == 0
        (taken,) = [i for i in store.items_since(NOW - timedelta(days=2)) if i.outlet == "News"]
        assert taken.feed_url == "https://news.example/rss"
    again = copy_into(config, target)
    assert again.exit_code == 0, again.output
    assert snapshot(target) == snapshot(source)


def test_a_rerun_still_refuses_an_item_the_copy_stored_under_a_source_id(
    tmp_path: Path, postgres_database
) -> None:
    """Items are the same by id and feed once their key may change (a re-key): the copy's own
    item of the same feed, under an id the source used since for another, was overwritten."""
    source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    assert copy_into(config, target).exit_code == 0
    feed = "https://a.example/feed"
    with Store.open(target) as store:
        record(store, polled(feed, [entry(70, guid="copy-only")], NOW + timedelta(hours=1)), "A")
    with Store.open(source) as store:
        record(store, polled(feed, [entry(71, guid="source-only")], NOW + timedelta(hours=2)), "A")
    again = copy_into(config, target)
    assert again.exit_code == 2, again.output
    assert "there is another item" in again.output


def test_a_refused_copy_has_written_nothing(tmp_path: Path, postgres_database) -> None:
    """Refused at its items, the copy had already put the source's older feeds and meta over
    the target's (the workers' validators, schedule and leases)."""
    source, config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    assert copy_into(config, target).exit_code == 0
    with Store.open(target) as store:  # the workers went on there
        record(store, outcome("https://c.example/feed", [entry(40)], etag='"c2"'), "C")
        record(store, outcome("https://a.example/feed", [entry(1)], etag='"a2"'), "A")
        store.set_meta("cluster_fingerprint", "the target's own")
        store.db.execute("UPDATE feeds SET leased_by = 'worker-1', lease_until = '9999'")
    with Store.open(source) as store:  # and so did cron on the old machine
        record(store, outcome("https://d.example/feed", [entry(50)]), "D")

    before = target_state(target)
    refused = copy_into(config, target)
    assert refused.exit_code == 2 and "holds items of its own" in refused.output
    assert target_state(target) == before

    # The same where the source's new item is free by id but its feed and key are taken.
    with Store.open(target) as store:
        store.db.execute("DELETE FROM items WHERE id = 9")
        record(store, outcome("https://a.example/feed", [entry(51)]), "A")
        (taken_by,) = store.db.execute("SELECT id FROM items WHERE key = 'guid:guid-51'").fetchone()
    with Store.open(source) as store:
        store.db.execute("UPDATE items SET feed_url = 'https://a.example/feed', "
                         "key = 'guid:guid-51' WHERE id = 9")  # fmt: skip
    before = target_state(target)
    refused = copy_into(config, target)
    assert refused.exit_code == 2 and "item 9 of" in refused.output, refused.output
    assert f"is item {taken_by} there" in refused.output
    assert target_state(target) == before


def test_nul_characters_sqlite_kept_are_copied_into_postgresql(
    tmp_path: Path, postgres_database
) -> None:
    """PostgreSQL refuses NUL in text: the copy stopped at the first such row, blaming the
    database user's rights. A feed stored the same guid with NUL (an older parser) and without."""
    source = tmp_path / "news.db"
    with Store.open(source) as store:
        record(store, outcome("https://a.example/feed", [entry(1, guid="item-1\x00"),
                                                        entry(2, guid="item-1"),
                                                        entry(3, title="A\x00B")]), "A")  # fmt: skip
    config = tmp_path / "feeds.yaml"
    config.write_text(f"database: {source}\nfeeds: []\n")
    target = fresh_postgres(postgres_database)

    result = copy_into(config, target)
    assert result.exit_code == 0, result.output
    with Store.open(target) as store:
        rows = store.db.execute("SELECT key, title FROM items ORDER BY id").fetchall()
    assert rows == [("guid:item-1\ufffd", "Title 1"), ("guid:item-1", "Title 2"),
                    ("guid:guid-3", "AB")]  # fmt: skip
    again = copy_into(config, target)
    assert again.exit_code == 0 and "copied items: 0 rows" in again.output, again.output


def test_a_copy_stopped_halfway_leaves_no_item_id_to_reuse(
    tmp_path: Path, postgres_database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's item ids followed the copied ones only after the last chunk: a copy
    stopped halfway left the counter at 1, and the next poll's item collided with item 1
    ("duplicate key value violates unique constraint items_pkey")."""
    import aggregator.store as store_module

    source, _config = copy_config(tmp_path)
    target = fresh_postgres(postgres_database)
    monkeypatch.setattr(store_module, "COPY_CHUNK", 3)
    real_check, calls = store_module._check_same_items, []

    def stop_at_the_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C
        return real_check(*args, **kwargs)

    monkeypatch.setattr(store_module, "_check_same_items", stop_at_the_second_chunk)
    with pytest.raises(KeyboardInterrupt), Store.open(source) as src, Store.open(target) as dst:
        store_module.copy_store(src, dst)
    with Store.open(target) as store:
        assert store.count_items() == 3
        assert record(store, outcome("https://c.example/feed", [entry(60)]), "C") == 1
        assert store.count_items() == 4
