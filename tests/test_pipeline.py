"""The cluster stage's use of the embedder: each distinct text once, vectors cached per item."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from aggregator.config import Config, FeedConfig
from aggregator.grouping.text import embedding_text
from aggregator.models import FetchOutcome, ParsedEntry
from aggregator.pipeline import build, cluster, explain_story, text_to_embed
from aggregator.store import Store
from tests.support.stored import poll_from_cli, polled, record

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WIRE_TITLE = "Storm closes port of Rotterdam"
WIRE_SUMMARY = "Shipping halted on Tuesday as winds reached 120 km/h, the port authority said."


def stable_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class CountingEmbedder:
    """A deterministic stand-in that records every text it is asked to embed: one text, one
    random direction, seeded by a stable hash (Python's `hash` changes from run to run), in
    enough dimensions that two different texts are never close by chance."""

    model_key = "counting|test"
    dim = 64

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str], progress=None) -> np.ndarray:
        self.seen.extend(texts)
        rows = [np.random.default_rng(stable_seed(t)).normal(size=self.dim) for t in texts]
        matrix = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def config_of(tmp_path: Path, urls: Sequence[str], database: Path | str | None = None) -> Config:
    """A configuration of `urls` (no names) with its database and site in `tmp_path`."""
    return Config(
        path=tmp_path / "feeds.yaml",
        feeds=tuple(FeedConfig(url=url) for url in urls),
        database=database or tmp_path / "news.db",
        output=tmp_path / "site",
    )


def outcome(url: str, entries: list[ParsedEntry]) -> FetchOutcome:
    return polled(url, entries, NOW)


def report(link: str, title: str, summary: str) -> ParsedEntry:
    """An outlet's own report, two hours old, its link its guid."""
    return ParsedEntry(
        guid=link, link=link, title=title, summary=summary, published=NOW - timedelta(hours=2)
    )


def wire_copy(outlet: int) -> ParsedEntry:
    return ParsedEntry(
        guid=f"wire-{outlet}",
        link=f"https://outlet{outlet}.example/storm",
        title=WIRE_TITLE,
        summary=WIRE_SUMMARY,
        published=NOW - timedelta(hours=1),
    )


def test_vectors_of_items_a_week_past_the_window_are_dropped(tmp_path: Path) -> None:
    """Grouping reads only the window's vectors; older ones were kept forever (2.1 KB an item).
    An item dated within a week before the window keeps its vector, and one in the window is
    not embedded again."""
    url = "https://outlet.example/feed"
    config = config_of(tmp_path, [url])
    ages = {"old": timedelta(days=10), "recent": timedelta(days=3), "new": timedelta(hours=1)}
    entries = {
        name: ParsedEntry(
            guid=name,
            link=f"https://outlet.example/{name}",
            title=f"Report number {name}",
            summary=f"What happened, as the {name} report says.",
            published=NOW - age,
        )
        for name, age in ages.items()
    }
    embedder = CountingEmbedder()
    with Store.open(config.database) as store:
        for name, age in ages.items():  # each clustered in its own window
            record(store, polled(url, [entries[name]], NOW - age), "Outlet")
            cluster(config, store, now=NOW - age, embedder=embedder)
        ids = {i.title.rsplit(" ", 1)[1]: i.id for i in store.items_since(NOW - timedelta(days=30))}
        kept = store.vectors(list(ids.values()), embedder.model_key)
        assert set(kept) == {ids["recent"], ids["new"]}
        seen = len(embedder.seen)
        assert cluster(config, store, now=NOW, embedder=embedder, force=True).embedded == 0
        assert len(embedder.seen) == seen


def test_article_texts_older_than_kept_go_and_their_days_stay_in_the_archive(
    tmp_path: Path, store_target
) -> None:
    """keep_full_text_days: each grouping forgets the article text of items dated before it
    (20,000 characters an item at most, kept for good before); the window's items keep theirs,
    and an old item stays in its day's digest and on the site."""
    url = "https://outlet.example/feed"
    config = replace(config_of(tmp_path, [url], store_target("news")), keep_full_text_days=7.0)
    embedder = CountingEmbedder()
    with Store.open(config.database) as store:
        for name, age in (("old", timedelta(days=10)), ("new", timedelta(hours=1))):
            entry = ParsedEntry(
                guid=name,
                link=f"https://outlet.example/{name}",
                title=f"Report number {name}",
                summary=f"What happened, as the {name} report says.",
                published=NOW - age,
            )
            record(store, polled(url, [entry], NOW - age), "Outlet")
            (item,) = store.items_since(NOW - age - timedelta(hours=1))
            store.save_full_texts([(item.id, f"The {name} article's own text.", "ok")])
            cluster(config, store, now=NOW - age, embedder=embedder)
        texts = dict(store.db.execute("SELECT title, full_text FROM items").fetchall())
        assert texts == {
            "Report number old": None,
            "Report number new": "The new article's own text.",
        }
        # an old item's page fetched again (fetch-text): the next grouping has nothing new to
        # group, and forgets its text all the same
        (old,) = store.items_since(NOW - timedelta(days=11))[:1]
        store.save_full_texts([(old.id, "The old article's own text.", "ok")])
        assert cluster(config, store, now=NOW, embedder=embedder).skipped
        assert store.db.execute("SELECT count(full_text) FROM items").fetchone() == (1,)
        build(config, store)
    old_day = (NOW - timedelta(days=10)).strftime("%Y/%m/%d")
    page = (config.output / old_day / "index.html").read_text(encoding="utf-8")
    assert "Report number old" in page


def test_a_vector_of_text_that_changed_while_it_was_embedded_is_not_stored(
    tmp_path: Path, store_target
) -> None:
    """Another worker stores a corrected title (or an article's text) while `cluster` embeds
    the old one: this run groups with the vector it made, but none is stored for the new text,
    so the next run embeds it (a stored one would stay for good: nothing replaces it)."""
    url = "https://outlet0.example/feed"
    config = config_of(tmp_path, [url], store_target("news"))

    class EditingEmbedder(CountingEmbedder):
        def embed(self, texts, progress=None):
            with Store.open(config.database) as other:  # a poll worker's connection
                other.db.execute(
                    "UPDATE items SET title = ? WHERE key = ?", ("Storm upgraded", "guid:wire-0")
                )
            return super().embed(texts, progress)

    with Store.open(config.database) as store:
        record(store, outcome(url, [wire_copy(0)]), "Outlet 0")
        assert cluster(config, store, now=NOW, embedder=EditingEmbedder()).embedded == 1
        (item,) = store.items_since(NOW - timedelta(days=1))
        assert item.title == "Storm upgraded"
        assert store.vectors([item.id], CountingEmbedder.model_key) == {}
        again = CountingEmbedder()
        cluster(config, store, now=NOW, embedder=again, force=True)
        assert again.seen == [text_to_embed(item)]  # the new text, stored this time
        assert list(store.vectors([item.id], CountingEmbedder.model_key)) == [item.id]


def test_syndicated_copies_are_embedded_once_and_share_the_vector(tmp_path: Path) -> None:
    urls = [f"https://outlet{n}.example/feed" for n in range(4)]
    config = config_of(tmp_path, urls)
    own_report = report(
        "https://outlet0.example/own", "Council approves new tram line", "The vote passed 31 to 4."
    )
    embedder = CountingEmbedder()
    with Store.open(config.database) as store:
        record(store, outcome(urls[0], [wire_copy(0), own_report]), "Outlet 0")
        for n in range(1, 4):
            record(store, outcome(urls[n], [wire_copy(n)]), f"Outlet {n}")

        summary = cluster(config, store, now=NOW, embedder=embedder)

        assert summary.items == 5 and summary.embedded == 5
        assert len(embedder.seen) == 2  # the wire text once, the own report once
        items = store.items_since(NOW - timedelta(days=1))
        cached = store.vectors([item.id for item in items], embedder.model_key)
        vectors_by_title: dict[str, set[bytes]] = {}
        for item in items:
            vectors_by_title.setdefault(item.title, set()).add(cached[item.id].tobytes())
        assert {title: len(v) for title, v in vectors_by_title.items()} == {
            WIRE_TITLE: 1,
            own_report.title: 1,
        }

        # A second run finds every vector cached and embeds nothing.
        again = cluster(config, store, now=NOW, embedder=embedder, force=True)
        assert again.embedded == 0 and len(embedder.seen) == 2

        # A late copy takes the vector its original got in an earlier run.
        late_url = "https://late.example/feed"
        record(store, outcome(late_url, [wire_copy(9)]), "Late outlet")
        config = replace(config, feeds=(*config.feeds, FeedConfig(url=late_url)))
        reported: list[tuple[int, int]] = []
        late = cluster(
            config, store, now=NOW, embedder=embedder, progress=lambda *p: reported.append(p)
        )
        assert late.embedded == 1 and len(embedder.seen) == 2
        assert reported == [(1, 1)]  # the progress bar completes though nothing was embedded
        items = store.items_since(NOW - timedelta(days=1))
        cached = store.vectors([item.id for item in items], embedder.model_key)
        assert len({cached[i.id].tobytes() for i in items if i.title == WIRE_TITLE}) == 1


def test_a_story_whose_reports_leave_the_window_stays_in_that_days_digest(tmp_path: Path) -> None:
    """An hourly run later the same day must not drop a story the day's digest (and an email
    already sent) published: its page and links stay. The next day starts afresh."""
    url = "https://outlet.example/feed"
    config = config_of(tmp_path, [url])
    morning = NOW.replace(hour=1)
    ferry = ParsedEntry(
        guid="ferry",
        link="https://outlet.example/ferry",
        title="Ferry workers walk out over pay",
        summary="Crossings were cancelled.",
        published=morning - timedelta(hours=20),
    )
    tram = replace(ferry, guid="tram", link="https://outlet.example/tram", title="Tram line opens")
    tram = replace(tram, published=morning - timedelta(hours=1))
    embedder = CountingEmbedder()
    with Store.open(config.database) as store:
        record(store, polled(url, [ferry, tram], morning), "Outlet")
        cluster(config, store, now=morning, embedder=embedder)
        published = {s["headline"] for s in store.digest_of(morning.date().isoformat())["stories"]}
        assert published == {ferry.title, tram.title}

        later = morning + timedelta(hours=10)  # the ferry report is 30 hours old now
        summary = cluster(config, store, now=later, embedder=embedder)
        assert summary.stories == 1
        day = store.digest_of(later.date().isoformat())
        assert {s["headline"] for s in day["stories"]} == published
        build(config, store)
        ferry_story = next(s for s in day["stories"] if s["headline"] == ferry.title)
        page = config.output / "stories" / f"{ferry_story['id']}.html"
        assert ferry.title in page.read_text(encoding="utf-8")

        next_day = morning + timedelta(days=1)
        cluster(config, store, now=next_day, embedder=embedder)
        assert store.digest_of(next_day.date().isoformat())["stories"] == []
        assert store.digest_of(later.date().isoformat()) == day  # the earlier day is kept


def test_an_atom_entry_is_updated_when_its_text_changes_not_at_every_run(
    tmp_path: Path, store_target
) -> None:
    """The store keeps one digest a day, which every run rewrites: an entry whose headline
    differed from the day before's got that day's latest run as its <updated>, a new one at
    every hourly run all day, and feed readers announced it again each time. The runs record
    when a story's text changed; <updated> stays there until it changes again."""
    import feedparser

    url = "https://outlet.example/feed"
    config = config_of(tmp_path, [url], store_target("news"))
    day1 = NOW.replace(hour=20) - timedelta(days=1)
    report = ParsedEntry(
        guid="storm",
        link="https://outlet.example/storm",
        title="Storm closes port of Rotterdam",
        summary=WIRE_SUMMARY,
        published=day1 - timedelta(minutes=30),
    )
    embedder = CountingEmbedder()

    def run(at: datetime, corrected: str | None = None) -> tuple[str, str]:
        """An hourly run at `at` (the feed corrected its headline to `corrected`): the title and
        <updated> of the site's Atom entry."""
        if corrected:
            record(store, polled(url, [replace(report, title=corrected)], at), "Outlet")
        # forced: as when other stories' reports arrive, the day's digest is made again
        cluster(config, store, now=at, embedder=embedder, force=True)
        build(config, store)
        (entry,) = feedparser.parse((config.output / "feed.xml").read_bytes()).entries
        return entry.title, entry.updated

    def hour(h: int) -> datetime:
        return NOW.replace(hour=h)

    with Store.open(config.database) as store:
        record(store, polled(url, [report], day1), "Outlet")
        assert run(day1) == (report.title, "2026-11-27T19:30:00Z")  # as of its report
        antwerp = "Storm closes port of Antwerp"
        assert run(hour(10), antwerp) == (antwerp, "2026-11-28T10:00:00Z")
        for h in (11, 12, 13):  # the same text: the same <updated>
            assert run(hour(h)) == (antwerp, "2026-11-28T10:00:00Z"), h
        both = "Storm closes ports of Antwerp and Rotterdam"
        assert run(hour(14), both) == (both, "2026-11-28T14:00:00Z")
        assert run(hour(15)) == (both, "2026-11-28T14:00:00Z")


def test_an_atom_entrys_published_never_moves_when_an_earlier_report_joins(
    tmp_path: Path, store_target
) -> None:
    """A report dated before a story's first one, joining it later (a feed polled late or
    added since), moved the entry's <published> earlier: the same run of the day (the day's
    digest took the earlier time) and the next day (the site took the earliest of every
    digest). Feed readers take an entry whose <published> changed for a new one. It stays as
    first published; the story's "first seen" is its earliest report."""
    import feedparser

    urls = [f"https://outlet{n}.example/feed" for n in range(4)]
    config = replace(config_of(tmp_path, urls, store_target("news")), window_hours=48)
    embedder = CountingEmbedder()
    morning = NOW.replace(hour=10)

    def copy_dated(outlet: int, at: datetime) -> ParsedEntry:
        return replace(wire_copy(outlet), published=at)

    def run(at: datetime, *reports: tuple[int, datetime]) -> tuple[str, str, str]:
        """Record each outlet's report, group and build at `at`: the one entry's id and
        <published>, and the story's first_seen in stories.json."""
        for outlet, dated in reports:
            record(store, polled(urls[outlet], [copy_dated(outlet, dated)], at), f"O{outlet}")
        cluster(config, store, now=at, embedder=embedder)
        build(config, store)
        (entry,) = feedparser.parse((config.output / "feed.xml").read_bytes()).entries
        (story,) = json.loads((config.output / "stories.json").read_text())["stories"]
        return entry.id, entry.published, story["first_seen"]

    with Store.open(config.database) as store:
        first = run(morning, (0, NOW.replace(hour=9)), (1, NOW.replace(hour=9, minute=30)))
        entry_id = first[0]
        assert first == (entry_id, "2026-11-28T09:00:00Z", "2026-11-28T09:00:00Z")
        # the same day, a feed polled late brings a copy dated 07:00
        assert run(NOW.replace(hour=14), (2, NOW.replace(hour=7))) == (
            entry_id,
            "2026-11-28T09:00:00Z",
            "2026-11-28T07:00:00Z",
        )
        # the next day, one dated 05:00 the day before
        assert run(morning + timedelta(days=1), (3, NOW.replace(hour=5))) == (
            entry_id,
            "2026-11-28T09:00:00Z",
            "2026-11-28T05:00:00Z",
        )


def test_digests_made_before_revisions_were_recorded() -> None:
    """A stored digest without `revised` reads as unknown, and a story whose text is that of
    such a digest keeps the site's earlier rule: no entry's <updated> jumps on the upgrade. On
    the day its text changed, the text's first digest is its time from then on."""
    from aggregator.digest import digest_from_dict, digest_to_dict, mark_revisions
    from aggregator.models import Digest
    from tests.support.digests import at, item, story

    day1, day2 = NOW.date() - timedelta(days=1), NOW.date()

    def old(digest: Digest) -> Digest:  # as an earlier version stored it
        payload = digest_to_dict(digest)
        for found in payload["stories"]:
            del found["revised"]
        return digest_from_dict(payload)

    calm = story("calm", "Calm day", (item("Alpha", "Calm day", at(day1, 9)),))
    storm = story("storm", "Storm nears", (item("Alpha", "Storm nears", at(day1, 10)),))
    hit = replace(storm, headline="Storm hits")
    yesterday = old(Digest(day1, at(day1, 20), (calm, storm)))
    this_morning = old(Digest(day2, at(day2, 9), (calm, hit)))
    assert {s.revised for s in yesterday.stories} == {None}

    noon = mark_revisions(Digest(day2, at(day2, 12), (calm, hit)), this_morning, yesterday)
    revised = {s.id: s.revised for s in digest_from_dict(digest_to_dict(noon)).stories}
    assert revised == {"calm": None, "storm": at(day2, 9)}
    later = mark_revisions(Digest(day2, at(day2, 13), (calm, hit)), noon, yesterday)
    assert {s.id: s.revised for s in later.stories} == revised


def test_an_entry_is_not_revised_when_only_its_outlets_order_changes() -> None:
    """Reports A 08:00, B 09:00, A 10:00: when A's first report left the window the outlets
    went from (A, B) to (B, A), and the entry's <updated> moved to the run's time with nothing
    new (132 of 522 updates in a review's hourly simulation)."""
    from aggregator.digest import mark_revisions
    from aggregator.models import Digest
    from tests.support.digests import at, item, story

    day = NOW.date()
    early = story(
        "s",
        "Storm nears",
        (
            item("Alpha", "Storm nears", at(day, 8)),
            item("Bravo", "Storm nears coast", at(day, 9)),
            item("Alpha", "Storm nears land", at(day, 10)),
        ),
    )
    first = mark_revisions(Digest(day, at(day, 11), (early,)), None, None)
    later = replace(early, items=early.items[1:])
    assert later.outlets == ("Bravo", "Alpha") != early.outlets
    second = mark_revisions(Digest(day, at(day, 12), (later,)), first, None)
    assert second.stories[0].revised == first.stories[0].revised


def test_a_story_keeps_the_reports_it_showed_earlier_that_day() -> None:
    """A day's digest is its last run's: a story still there lost the reports that left the
    window during the day, and no digest held them any more (a 6-hour window lost 34 of 84
    reports the site had shown). It keeps them; a report that went to another story stays
    there."""
    from aggregator.digest import keep_published
    from aggregator.models import Digest
    from tests.support.digests import at, item, story

    day = NOW.date()
    early = item("Alpha", "Storm nears", at(day, 2))
    moved = item("Bravo", "Storm nears coast", at(day, 3))
    late = item("Alpha", "Storm hits", at(day, 9))
    morning = Digest(day, at(day, 7), (story("storm", "Storm nears", (early, moved)),))
    noon = Digest(
        day,
        at(day, 12),
        (
            story("storm", "Storm hits", (late,)),  # the early reports left the window
            story("coast", "Coast braces", (moved,)),  # the Bravo report went here
        ),
        window_hours=6,
    )
    kept = {s.id: s for s in keep_published(noon, morning).stories}
    assert [i.title for i in kept["storm"].items] == ["Storm nears", "Storm hits"]
    assert [i.title for i in kept["coast"].items] == ["Storm nears coast"]
    tomorrow = replace(noon, day=day + timedelta(days=1))
    assert keep_published(tomorrow, morning) == tomorrow  # another day: its own window only
    # a report its feed corrected since (new title and link) is in the window: not twice
    fixed = item("Alpha", "Storm hits harder", at(day, 9), link="https://alpha.example/2")
    evening = Digest(day, at(day, 14), (story("storm", "Storm hits", (fixed,)),), window_hours=8)
    noon_again = replace(noon, window_hours=8)
    assert [i.title for i in keep_published(evening, noon_again).stories[0].items] == [
        "Storm hits harder"
    ]


def test_a_digest_knows_each_report_by_its_item_id() -> None:
    """A digest records each report's item id (kept in its JSON form): a report whose feed
    corrected its title and link is one report to the day's later runs (not kept twice, its
    story not "growing"); a digest stored before ids were is read as before."""
    from aggregator.digest import (
        digest_from_dict,
        digest_to_dict,
        keep_published,
        mark_status,
        to_digest_story,
    )
    from aggregator.models import Digest, Item, Story, StoryMember
    from tests.support.digests import at, story

    day = NOW.date()
    report = Item(7, "Storm nears", "", "Alpha", "https://alpha.example/1", at(day, 2))
    report = replace(report, language="pt-BR")
    digest_story = to_digest_story(Story("storm", 7, (StoryMember(report),)))
    assert digest_story.items[0].item_id == 7
    assert digest_story.items[0].lang == digest_story.lang == "pt-BR"  # the pages' lang
    morning = Digest(day, at(day, 7), (digest_story,))
    assert digest_from_dict(digest_to_dict(morning)) == morning
    legacy = digest_to_dict(morning)
    del legacy["stories"][0]["items"][0]["item_id"]
    assert digest_from_dict(legacy).stories[0].items[0].item_id is None
    fixed = replace(
        digest_story.items[0], title="Storm nears coast", link="https://alpha.example/2"
    )
    evening = Digest(day, at(day, 14), (story("storm", "Storm", (fixed,)),), window_hours=6)
    kept = keep_published(evening, morning)
    assert [i.title for i in kept.stories[0].items] == ["Storm nears coast"]
    assert mark_status(evening, morning).stories[0].status == "unchanged"


def test_an_outlet_added_later_the_same_day_leaves_the_page_where_it_is(
    tmp_path: Path, store_target
) -> None:
    """Alpha's page is built at 10:00; a feed "ALPHA" added at 10:30 brings at its first poll a
    report dated 08:00, before Alpha's. The 11:00 run makes the day's digest again (the store
    keeps that one only): Alpha's page keeps outlets/alpha.html, as it was first in the day's
    digest. By first report ALPHA took it and Alpha's page moved."""
    import hashlib

    alpha, newcomer = "https://alpha.example/feed", "https://newcomer.example/feed"
    before = Config(
        path=tmp_path / "feeds.yaml",
        feeds=(FeedConfig(url=alpha),),
        database=store_target("news"),
        output=tmp_path / "site",
    )
    after = replace(before, feeds=(*before.feeds, FeedConfig(url=newcomer)))
    quake = ParsedEntry(
        guid="quake",
        link="https://alpha.example/quake",
        title="Quake shakes the coast",
        summary="Buildings swayed for a minute.",
        published=NOW.replace(hour=9),
    )
    fire = ParsedEntry(
        guid="fire",
        link="https://newcomer.example/fire",
        title="Fire at the docks",
        summary="Crews fought it all morning.",
        published=NOW.replace(hour=8),
    )
    outlets = before.output / "outlets"
    embedder = CountingEmbedder()
    with Store.open(before.database) as store:
        record(store, polled(alpha, [quake], NOW.replace(hour=10)), "Alpha")
        cluster(before, store, now=NOW.replace(hour=10), embedder=embedder)
        build(before, store)
        assert quake.title in (outlets / "alpha.html").read_text(encoding="utf-8")

        record(store, polled(newcomer, [fire], NOW.replace(hour=10, minute=30)), "ALPHA")
        cluster(after, store, now=NOW.replace(hour=11), embedder=embedder)
        build(after, store)
    assert quake.title in (outlets / "alpha.html").read_text(encoding="utf-8")
    suffixed = f"alpha-{hashlib.sha256(b'ALPHA').hexdigest()[:10]}.html"
    assert fire.title in (outlets / suffixed).read_text(encoding="utf-8")


def test_a_removed_feeds_story_the_day_published_leaves_though_its_items_left_the_window(
    tmp_path: Path, store_target
) -> None:
    """A story the day's digest published stays in it when its reports leave the window
    (keep_published); of a feed removed since, it stayed until midnight, and the grouping,
    its window unchanged, was skipped as "nothing new". A feed's tags follow it under
    another spelling of its URL."""
    urls = ["https://a.example/feed", "http://127.0.0.1:8000/feed"]
    config = config_of(tmp_path, urls, store_target("news"))
    config = replace(config, feeds=(config.feeds[0], replace(config.feeds[1], tags=("sport",))))
    embedder = CountingEmbedder()
    early, late = NOW.replace(hour=1), NOW.replace(hour=11)
    ferry = report("https://a.example/ferry", "Ferry workers walk out over pay", "A strike.")
    cup = report("http://127.0.0.1:8000/cup", "Harbour win the cup final", "A match.")
    with Store.open(config.database) as store:
        record(store, polled(urls[0], [replace(ferry, published=early - timedelta(hours=20))],
                             early), "Alpha")  # fmt: skip
        record(store, polled(urls[1], [replace(cup, published=late - timedelta(hours=1))],
                             early), "Beta")  # fmt: skip
        cluster(config, store, now=early, embedder=embedder)
        respelt = replace(config.feeds[1], url="http://localhost:8000/feed")
        cluster(replace(config, feeds=(respelt,)), store, now=late, embedder=embedder)
        stories = store.digest_of(NOW.date().isoformat())["stories"]
    assert [(s["headline"], s["tags"]) for s in stories] == [
        ("Harbour win the cup final", ["sport"])
    ]


@pytest.mark.parametrize("path", ["poll", "worker"])
def test_an_article_of_a_removed_feed_stays_with_a_feed_that_lists_it(
    path: str, feed_server, tmp_path: Path, store_target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two feeds list one article, stored as the first's (one item an article). The first
    is removed from feeds.yaml: its items leave the digest, and the article with them, for
    good, since the second's entry is a copy of a stored article. Now the second takes it."""
    from aggregator.pipeline import utcnow

    database = store_target("news")
    monkeypatch.setenv("AGGREGATOR_DATABASE", str(database))
    paths = ["/a.xml", "/b.xml"]
    urls = [feed_server.url(path) for path in paths]
    for path in paths:
        feed_server.route(path, body=one_story_feed(WIRE_TITLE, WIRE_SUMMARY, utcnow()))
    config_path = tmp_path / "feeds.yaml"

    def configure(*feeds: str) -> None:
        listed = "".join(f"  - url: {url}\n" for url in feeds)
        config_path.write_text(f"allow_private: true\noutput: site\nfeeds:\n{listed}")

    configure(*urls)
    assert "new items: 2\n" in poll_from_cli(path, config_path, database)
    assert "new items: 0\n" in poll_from_cli(path, config_path, database)  # b: copies
    configure(urls[1])
    poll_from_cli(path, config_path, database)
    with Store.open(database) as store:
        feeds = {i.feed_url for i in store.items_since(utcnow() - timedelta(days=1))}
    assert feeds == {urls[1]}


# ------------------------------------------------------------------ a feed's corrections


def one_story_feed(title: str, summary: str, at: datetime) -> str:
    """An outlet's feed whose one report (guid ``storm``) says ``title`` and ``summary``."""
    from email.utils import format_datetime

    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Outlet</title>'
        "<link>https://outlet.example/</link><item><guid>storm</guid>"
        f"<link>https://outlet.example/storm</link><title>{title}</title>"
        f"<description>{summary}</description><pubDate>{format_datetime(at)}</pubDate>"
        "</item><item><guid>tram</guid><link>https://outlet.example/tram</link>"
        "<title>Council approves new tram line</title><description>The vote passed 31 to 4."
        f"</description><pubDate>{format_datetime(at)}</pubDate></item></channel></rss>"
    )


@pytest.mark.parametrize("path", ["poll", "worker"])
def test_a_corrected_headline_is_stored_embedded_again_and_published(
    path: str, feed_server, tmp_path: Path, store_target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed fixes a headline it had already sent (same guid): `aggregator poll` and a poll
    worker store it, counted apart from new items; the next cluster embeds that item again
    (only it) and the day's digest carries the fixed headline. The old one was kept for good
    and the regrouping skipped as "nothing new"."""

    from aggregator.config import load_config
    from aggregator.pipeline import local_day, utcnow

    database = store_target("news")
    monkeypatch.setenv("AGGREGATOR_DATABASE", str(database))
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(
        f"allow_private: true\noutput: site\nfeeds:\n  - url: {feed_server.url('/feed.xml')}\n"
    )
    config = load_config(config_path)
    published = utcnow() - timedelta(hours=1)
    wrong, fixed = "Storm closes port of Rotterdam", "Storm closes port of Antwerp"

    def polled(title: str) -> str:
        feed_server.route("/feed.xml", body=one_story_feed(title, WIRE_SUMMARY, published))
        return poll_from_cli(path, config_path, database)

    def headlines(store: Store) -> set[str]:
        day = local_day(config, utcnow()).isoformat()
        return {s["headline"] for s in store.digest_of(day)["stories"]}

    embedder = CountingEmbedder()
    assert "new items: 2\n" in polled(wrong)
    with Store.open(database) as store:
        assert cluster(config, store, now=utcnow(), embedder=embedder).embedded == 2
        assert wrong in headlines(store)

    output = polled(wrong)  # unchanged: nothing to store, nothing to regroup
    assert "new items: 0\n" in output and "updated" not in output
    with Store.open(database) as store:
        assert len(store.vectors([1, 2], embedder.model_key)) == 2
        assert cluster(config, store, now=utcnow(), embedder=embedder).skipped

    assert "new items: 0; updated items: 1\n" in polled(fixed)
    with Store.open(database) as store:
        assert store.count_items() == 2
        (item_id,) = [
            r[0] for r in store.db.execute("SELECT id FROM items WHERE title = ?", (fixed,))
        ]
        assert item_id not in store.vectors([item_id], embedder.model_key)
        seen = len(embedder.seen)
        summary = cluster(config, store, now=utcnow(), embedder=embedder)
        assert not summary.skipped and summary.embedded == 1
        assert embedder.seen[seen:] == [embedding_text(fixed, WIRE_SUMMARY)]
        assert fixed in headlines(store) and wrong not in headlines(store)
        assert cluster(config, store, now=utcnow(), embedder=embedder).skipped
        build(config, store)
    home = (config.output / "index.html").read_text(encoding="utf-8")
    assert fixed in home and wrong not in home


def test_an_article_text_stored_after_a_grouping_regroups_the_window(
    tmp_path: Path, store_target
) -> None:
    """A poll worker stores its items, then their article pages: a publisher grouping in
    between saw only the summaries, and the next grouping, over the same item ids, was skipped
    as "nothing new" (only `fetch-text` asked for it again)."""
    url = "https://outlet.example/feed"
    config = config_of(tmp_path, [url], store_target("news"))
    embedder = CountingEmbedder()
    with Store.open(config.database) as store:
        record(store, outcome(url, [wire_copy(0)]), "Outlet")
        assert not cluster(config, store, now=NOW, embedder=embedder).skipped
        assert cluster(config, store, now=NOW, embedder=embedder).skipped
        (item,) = store.items_since(NOW - timedelta(days=1))
        store.save_full_texts([(item.id, "Rotterdam's port stayed shut all Tuesday.", "ok")])
        again = cluster(config, store, now=NOW, embedder=embedder)
        assert not again.skipped and again.embedded == 1


def test_a_feed_removed_from_feeds_yaml_leaves_the_digest_and_one_named_later_is_one_outlet(
    tmp_path: Path, store_target
) -> None:
    """A feed named in feeds.yaml after it was polled showed its old title on the stories it
    was in and its new name on its next items: one story listed both as two outlets. A feed
    removed from feeds.yaml stayed in the digest ("nothing new") until its items left the
    window, and a story the day had shown of it alone, until midnight."""
    urls = [f"https://{host}.example/feed" for host in ("a", "b")]
    config = config_of(tmp_path, urls, store_target("news"))
    embedder = CountingEmbedder()
    alone = report(
        "https://b.example/own",
        "Library reopens after a year of repairs",
        "The town library opened its doors again on Friday.",
    )

    def outlets(store: Store) -> list[list[str]]:
        return sorted(s["outlets"] for s in store.digest_of(NOW.date().isoformat())["stories"])

    with Store.open(config.database) as store:
        record(store, outcome(urls[0], [wire_copy(0)]), "Old Title")
        record(store, outcome(urls[1], [wire_copy(1), alone]), "Bee News")
        cluster(config, store, now=NOW, embedder=embedder)
        assert outlets(store) == [["Bee News"], ["Old Title", "Bee News"]]
        named = (replace(config.feeds[0], name="Harbour Times"), config.feeds[1])
        config = replace(config, feeds=named)
        assert not cluster(config, store, now=NOW, embedder=embedder).skipped
        assert outlets(store) == [["Bee News"], ["Harbour Times", "Bee News"]]
        # the same feed spelt another way: the same window, nothing new
        respelt = replace(named[1], url="https://B.example:443/feed")
        assert cluster(replace(config, feeds=(named[0], respelt)), store, now=NOW).skipped
        assert outlets(store) == [["Bee News"], ["Harbour Times", "Bee News"]]
        config = replace(config, feeds=named[:1])
        assert not cluster(config, store, now=NOW, embedder=embedder).skipped
        assert outlets(store) == [["Harbour Times"]]
        # explain shows the story as cluster made it: the removed feed's items are in no story
        (story,) = store.digest_of(NOW.date().isoformat())["stories"]
        explained = explain_story(config, store, story["id"], now=NOW, embedder=embedder)
        assert [m.item.outlet for m in explained.members] == ["Harbour Times"]
        build(config, store)
    assert "Bee News" not in (config.output / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------ invisible characters in names


def titled(url: str, title: str, entries: list[ParsedEntry]) -> FetchOutcome:
    """A poll of a feed whose own title (its outlet name without `name:`) is `title`."""
    result = outcome(url, entries)
    return replace(result, feed=replace(result.feed, title=title))


def outlet_pages(config: Config) -> set[str]:
    return {p.name for p in (config.output / "outlets").glob("*.html")} - {"index.html"}


def test_a_name_differing_by_invisible_characters_is_the_same_outlet(
    tmp_path: Path, store_target
) -> None:
    """A feed titled "Reu\u200bters" (a zero-width space) is Reuters, not a second outlet with
    a page of its own beside Reuters'; a title of invisible characters only is no title (the
    feed is named by its host); the bidi override of a name given elsewhere is dropped."""
    urls = [f"https://{host}.example/feed" for host in ("a", "b", "c", "d")]
    config = config_of(tmp_path, urls, store_target("news"))
    with Store.open(config.database) as store:
        record(store, titled(urls[0], "Reuters", [wire_copy(0)]), None)
        record(store, titled(urls[1], "Reu\u200bters\ufeff", [wire_copy(1)]), None)
        record(store, titled(urls[2], "\u200b\u2060\ufeff\u200d", [wire_copy(2)]), None)
        record(store, titled(urls[3], "Daily", [wire_copy(3)]), "\u202eAP\u200c")
        names = ["Reuters", "Reuters", "c.example", "AP"]
        assert store.outlet_names() == dict(zip(urls, names, strict=True))
        cluster(config, store, now=NOW, embedder=CountingEmbedder())
        build(config, store)
        (digest,) = store.digests()
    assert [story["outlets"] for story in digest["stories"]] == [["Reuters", "c.example", "AP"]]
    assert outlet_pages(config) == {"reuters.html", "c-example.html", "ap.html"}


def test_items_stored_with_invisible_characters_in_their_outlet_join_it(
    tmp_path: Path, store_target
) -> None:
    """Items an earlier version (schema 7) stored under "Reu\u2060ters" count as Reuters' once
    the store is opened (schema 8 cleans the names stored): one outlet, one page."""
    urls = ["https://a.example/feed", "https://b.example/feed"]
    config = config_of(tmp_path, urls, store_target("news"))
    with Store.open(config.database) as store:
        record(store, outcome(urls[0], [wire_copy(0)]), "Reuters")
        record(store, outcome(urls[1], [wire_copy(1)]), "Reuters")
        store.db.execute(
            "UPDATE items SET outlet = ? WHERE feed_url = ?", ("Reu\u2060ters", urls[1])
        )
        store.set_meta("schema_version", "7")
    with Store.open(config.database) as store:
        assert store.outlet_names() == {url: "Reuters" for url in urls}
        cluster(config, store, now=NOW, embedder=CountingEmbedder())
        build(config, store)
        (digest,) = store.digests()
    assert [story["outlets"] for story in digest["stories"]] == [["Reuters"]]
    assert outlet_pages(config) == {"reuters.html"}


# ------------------------------------------------------------------ story ids

STORM = (WIRE_TITLE, WIRE_SUMMARY)
TRAM = ("Council approves new tram line", "The vote passed 31 to 4 after a long debate on costs.")
FIRE = ("Fire destroys warehouse at the docks", "Crews fought the blaze all night.")
QUAKE = ("Quake shakes the coast at dawn", "Buildings swayed for a minute; no damage was reported.")


class Newsroom:
    """Outlets each with one report (guid `report`), which a later poll may correct to another
    subject (the same item, another text), grouped and built hour by hour on one store."""

    def __init__(self, tmp_path: Path, database: Path | str, outlets: int) -> None:
        self.urls = [f"https://outlet{n}.example/feed" for n in range(outlets)]
        self.config = config_of(tmp_path, self.urls, database)
        self.embedder = CountingEmbedder()
        self.hour = 8

    def run(self, store: Store, reports: dict[int, tuple[str, str]]) -> dict[int, str]:
        """Outlet -> subject for the reports posted or corrected this hour; then group and
        build. Returns each outlet's story id."""
        self.hour += 1
        at = NOW.replace(hour=self.hour)
        for outlet, (title, summary) in reports.items():
            entry = ParsedEntry(
                guid="report",
                link=f"https://outlet{outlet}.example/report",
                title=title,
                summary=summary,
                published=NOW.replace(hour=8, minute=outlet),
            )
            record(store, polled(self.urls[outlet], [entry], at), f"Outlet {outlet}")
        cluster(self.config, store, now=at, embedder=self.embedder)
        build(self.config, store)
        items = store.items_since(NOW - timedelta(days=1))
        assigned = store.story_assignments([i.id for i in items])
        return {int(i.outlet.split()[1]): assigned[i.id] for i in items}

    def page_headline(self, story_id: str) -> str:
        import lxml.html

        page = lxml.html.parse(str(self.config.output / "stories" / f"{story_id}.html"))
        return page.getroot().find(".//h1").text_content().strip()


def test_a_clustering_is_stored_whole_or_not_at_all(
    tmp_path: Path, store_target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after storing its stories but before its digest left the next run seeing
    the stories as they were: every new story was "unchanged" in the day's digest."""
    import aggregator.store

    url = "https://outlet0.example/feed"
    config = config_of(tmp_path, [url], store_target("news"))
    storm = ParsedEntry("storm", "https://outlet0.example/storm", *STORM, NOW - timedelta(hours=2))
    tram = ParsedEntry("tram", "https://outlet0.example/tram", *TRAM, NOW - timedelta(hours=1))
    with Store.open(config.database) as store:
        record(store, outcome(url, [storm]), "Outlet 0")
        assert cluster(config, store, now=NOW, embedder=CountingEmbedder()).new == 1
        record(store, outcome(url, [storm, tram]), "Outlet 0")

        def killed(*args: object) -> None:
            raise KeyboardInterrupt  # as a kill between the stories and the digest

        with monkeypatch.context() as patch:
            patch.setattr(aggregator.store, "_write_digest", killed)
            with pytest.raises(KeyboardInterrupt):
                cluster(config, store, now=NOW, embedder=CountingEmbedder())
        again = cluster(config, store, now=NOW, embedder=CountingEmbedder())
        assert (again.new, again.unchanged) == (1, 1)
        (digest,) = store.digests()
    # the day's digest says what is new since the day before: the day's first, both new
    assert sorted(s["status"] for s in digest["stories"]) == ["new", "new"]


def test_a_days_digest_marks_stories_new_or_growing_since_the_day_before(
    tmp_path: Path, store_target
) -> None:
    """Run every hour, the day's digest said "new" and "growing" of the last hour only: a story
    new at 9:00 was "unchanged" at 11:00 in the day's email and site. Against the digest of
    the day before: the storm, which gained a report today, is growing all day; today's tram
    and fire are new; the day before's digest, its first, called the storm new."""
    urls = [f"https://outlet{n}.example/feed" for n in range(5)]
    config = config_of(tmp_path, urls, store_target("news"))
    yesterday, today = NOW - timedelta(hours=16), NOW - timedelta(hours=3)  # 20:00, 9:00

    def report(outlet: int, text: tuple[str, str], at: datetime) -> None:
        entry = ParsedEntry(f"r{outlet}", f"https://outlet{outlet}.example/r", *text, at)
        record(store, polled(urls[outlet], [entry], at), f"Outlet {outlet}")

    with Store.open(config.database) as store:
        report(0, STORM, yesterday)
        report(1, STORM, yesterday + timedelta(minutes=5))
        cluster(config, store, now=yesterday + timedelta(hours=1), embedder=CountingEmbedder())
        report(2, STORM, today)
        report(3, TRAM, today)
        cluster(config, store, now=today + timedelta(minutes=30), embedder=CountingEmbedder())
        report(4, FIRE, today + timedelta(hours=1))
        cluster(config, store, now=today + timedelta(hours=2), embedder=CountingEmbedder())
        newest, before = store.digests()[:2]
    headlines = {s["headline"]: s["status"] for s in newest["stories"]}
    assert headlines == {STORM[0]: "growing", TRAM[0]: "new", FIRE[0]: "new"}
    assert [s["status"] for s in before["stories"]] == ["new"]


def test_a_story_id_stays_with_most_of_its_reports_when_the_story_splits(
    tmp_path: Path, store_target
) -> None:
    """Three outlets report the storm; one corrects its report into a tram story that three
    more outlets report. The larger group (the tram, 4 reports, 1 of the storm's) took the
    storm's id, and the storm's two remaining reports got a new one: the storm's page, its
    feed entry and the links to them went over to the tram. The id stays with the storm."""
    newsroom = Newsroom(tmp_path, store_target("news"), outlets=6)
    with Store.open(newsroom.config.database) as store:
        first = newsroom.run(store, {0: STORM, 1: STORM, 2: STORM})
        storm = first[0]
        assert set(first.values()) == {storm}
        ids = newsroom.run(store, {0: TRAM, 3: TRAM, 4: TRAM, 5: TRAM})
    assert ids[1] == ids[2] == storm
    assert len({ids[n] for n in (0, 3, 4, 5)}) == 1 and ids[0] != storm
    assert newsroom.page_headline(storm) == WIRE_TITLE
    assert newsroom.page_headline(ids[0]) == TRAM[0]


def test_a_group_sharing_little_with_an_old_story_gets_a_new_id(
    tmp_path: Path, store_target
) -> None:
    """The storm's three reports go three ways (two corrected into other subjects, each joined
    by a new report). The largest group took the storm's id with one of its three reports; no
    group holds half of them now, so none carries the id on."""
    newsroom = Newsroom(tmp_path, store_target("news"), outlets=5)
    with Store.open(newsroom.config.database) as store:
        storm = newsroom.run(store, {0: STORM, 1: STORM, 2: STORM})[0]
        ids = newsroom.run(store, {0: TRAM, 3: TRAM, 1: FIRE, 4: FIRE})
    assert ids[0] == ids[3] and ids[1] == ids[4]
    assert len({ids[0], ids[1], ids[2]}) == 3 and storm not in ids.values()
    assert newsroom.page_headline(ids[0]) == TRAM[0]
    assert newsroom.page_headline(ids[1]) == FIRE[0]


def test_a_new_id_never_brings_back_a_retired_story_for_another_subject(
    tmp_path: Path, store_target
) -> None:
    """A new id was derived from a group's earliest report alone. The storm (first reported by
    outlet 0) went three ways and its id out of use; when outlet 0's report later left its
    group for a subject of its own, that group got the storm's old id back: the storm's page
    and feed entry showed the quake."""
    newsroom = Newsroom(tmp_path, store_target("news"), outlets=6)
    with Store.open(newsroom.config.database) as store:
        storm = newsroom.run(store, {0: STORM, 1: STORM, 2: STORM})[0]
        ids = newsroom.run(store, {0: TRAM, 3: TRAM, 4: TRAM, 1: FIRE, 5: FIRE})
        assert storm not in ids.values()
        ids = newsroom.run(store, {0: QUAKE})
    assert ids[3] == ids[4] != ids[0]
    assert storm not in ids.values()
    assert newsroom.page_headline(ids[0]) == QUAKE[0]
    assert newsroom.page_headline(storm) != QUAKE[0]  # it sends readers on to the tram or fire


def test_the_windows_fingerprint_changes_when_another_feed_takes_an_item_over(
    tmp_path: Path,
) -> None:
    """A take-over (Store._take_over) leaves an item's id and text and changes its feed,
    outlet and time: the fingerprint read only ids and texts, so `cluster` skipped the
    window and the digest went on crediting the aggregator."""
    from aggregator.models import Item
    from aggregator.pipeline import _window_fingerprint

    config = config_of(tmp_path, ["https://a.example/feed"])
    item = Item(1, "Quake", "A quake.", "Aggregator", "https://o.example/1", NOW,
                "https://aggregator.example/feed")  # fmt: skip
    day = NOW.date()
    before = _window_fingerprint(config, [item], day)
    assert _window_fingerprint(config, [replace(item)], day) == before
    for change in (
        {"outlet": "Origin"},
        {"feed_url": "https://o.example/rss"},
        {"published": NOW - timedelta(hours=1)},
        {"language": "en"},
    ):
        assert _window_fingerprint(config, [replace(item, **change)], day) != before, change
