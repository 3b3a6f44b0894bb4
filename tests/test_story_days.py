"""A story that runs for three days, through the real pipeline: a SQLite file, the real model,
clustering every four hours over a 24-hour window. It keeps its id, and its page shows day 3
and a timeline of the three days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest

from aggregator.config import Config, FeedConfig
from aggregator.digest import digests_from_dicts
from aggregator.models import FetchOutcome, ParsedEntry, ParsedFeed
from aggregator.pipeline import _load_embedder, build, cluster
from aggregator.site import day_page, story_slug
from aggregator.store import Store
from tests.support.stored import record

pytestmark = pytest.mark.model

START = datetime(2026, 11, 26, tzinfo=UTC)
FEEDS = {f"https://outlet{n}.example/feed": f"Outlet {n}" for n in range(5)}
URLS = list(FEEDS)

# (hours after START, outlet, title, summary): the bridge story, once or twice a day
BRIDGE = [
    (9, 0, "Harbour bridge closed after engineers find crack in main span",
     "The city's harbour bridge was closed to all traffic on Thursday after inspectors found a "
     "crack in a steel girder of the main span."),
    (15, 1, "Cracked girder shuts harbour bridge, traffic diverted",
     "Engineers closed the harbour bridge after discovering a crack in a main span girder; "
     "drivers face long diversions around the harbour."),
    (34, 2, "Harbour bridge to stay closed for weeks as crack repairs begin",
     "The cracked girder on the harbour bridge will take weeks to repair, the city's engineers "
     "said on Friday, keeping the bridge closed to traffic."),
    (42, 0, "Repair crews start work on the harbour bridge's cracked girder",
     "Crews began repairs on the cracked steel girder of the closed harbour bridge on Friday "
     "evening, the city said."),
    (57, 3, "Harbour bridge crack: city says repairs will take a month",
     "The harbour bridge, closed since Thursday after a crack was found in a main span girder, "
     "will reopen in about a month, the city said."),
    (62, 1, "Month of diversions ahead as harbour bridge crack repairs go on",
     "Drivers face a month of diversions while the harbour bridge stays closed for repairs to "
     "its cracked main span girder."),
]  # fmt: skip
OTHERS = [
    (10, 2, "Central bank holds interest rates at 4 percent",
     "The central bank kept its main rate unchanged, citing slowing inflation."),
    (20, 3, "Local team wins the cup final on penalties",
     "The home side lifted the trophy after a 2-2 draw and a penalty shoot-out."),
    (30, 4, "Museum opens new dinosaur gallery",
     "A 20-metre skeleton is the centrepiece of the natural history museum's new hall."),
    (46, 3, "Wildfire forces evacuations in the hills",
     "Hundreds of residents left their homes as a wildfire spread through dry forest."),
    (55, 2, "Tech firm unveils foldable laptop",
     "The laptop folds into a tablet and goes on sale next spring."),
    (66, 4, "Orchestra announces free concerts in the park",
     "Four summer concerts will be free to attend, the orchestra said."),
]  # fmt: skip


def recorded(store: Store, hours: int, outlet: int, title: str, summary: str) -> None:
    at = START + timedelta(hours=hours)
    entry = ParsedEntry(
        guid=f"{hours}-{outlet}",
        link=f"https://outlet{outlet}.example/news/{hours}",
        title=title,
        summary=summary,
        published=at,
    )
    url = URLS[outlet]
    record(
        store,
        FetchOutcome(
            url=url,
            status="ok",
            checked_at=at,
            next_due=at + timedelta(hours=1),
            fetch_url=url,
            feed=ParsedFeed(title=None, link=None, entries=(entry,)),
        ),
        FEEDS[url],
    )


def test_a_three_day_story_keeps_its_id_and_page(tmp_path: Path) -> None:
    config = Config(
        path=tmp_path / "feeds.yaml",
        feeds=tuple(FeedConfig(url=url, name=name) for url, name in FEEDS.items()),
        database=tmp_path / "news.db",
        output=tmp_path / "site",
    )
    embedder = _load_embedder(config)
    pending = sorted(BRIDGE + OTHERS)
    bridge_ids: list[set[str]] = []
    with Store.open(config.database) as store:
        for hours in range(4, 72, 4):  # a run every four hours, as cron would
            while pending and pending[0][0] <= hours:
                recorded(store, *pending.pop(0))
            now = START + timedelta(hours=hours)
            cluster(config, store, now=now, embedder=embedder)
            items = store.items_since(START)
            ids = store.story_assignments([i.id for i in items if "harbour bridge" in _text(i)])
            bridge_ids.append(set(ids.values()))
        build(config, store)
        digests = digests_from_dicts(store.digests())

    # from the first run that grouped the story to the last, every report carries one id
    story_id = next(iter(next(found for found in bridge_ids if found)))
    assert all(found == {story_id} for found in bridge_ids if found)
    assert len(bridge_ids[-1]) == 1 and sum(1 for found in bridge_ids if found) >= 14
    assert [d.day.day for d in digests] == [28, 27, 26]
    assert all(any(s.id == story_id for s in d.stories) for d in digests)

    page = lxml.html.parse(str(config.output / "stories" / f"{story_slug(story_id)}.html"))
    doc = page.getroot()
    assert "Day 3" in doc.xpath("string(//p[@class='eyebrow'])")
    assert len(doc.xpath("//ol[@class='items']/li")) == len(BRIDGE)  # all three days' reports
    columns = doc.xpath("//figure[@class='timeline']/svg/rect[contains(@class, 'col')]")
    assert len(columns) == 3  # one per day: 9:00 on the 26th to 14:00 on the 28th
    joined = [[a.text for a in li.xpath(".//a")] for li in doc.xpath("//ol[@class='joins']/li")]
    assert joined == [["Outlet 0", "Outlet 1"], ["Outlet 2"], ["Outlet 3"]]

    today = lxml.html.parse(str(config.output / day_page(digests[0].day))).getroot()
    # the bridge, and the museum report of the 27th that the 28th's first runs published too
    # (a day's digest keeps what it published)
    marks = {a.get("href"): a.text_content() for a in today.xpath("//a[@class='developing']")}
    assert len(marks) == 2
    assert "Day 3" in marks[f"../../../stories/{story_slug(story_id)}.html"]
    museum = next(s for s in digests[0].stories if "dinosaur" in s.headline)
    assert "Day 2" in marks[f"../../../stories/{story_slug(museum.id)}.html"]


def _text(item) -> str:
    return f"{item.title} {item.summary}".lower()
