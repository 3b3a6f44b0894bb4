"""A small news list tagged across two dimensions (lean and region), with stories covered
one-sidedly, and one story that runs for three days. Deterministic, like digests.py."""

from __future__ import annotations

from datetime import date, timedelta

from aggregator.config import CoverageDimension, FeedConfig
from aggregator.coverage import CoverageSpec, coverage_spec
from aggregator.models import Digest, DigestItem, DigestStory
from tests.support.digests import TODAY, at, slug_of

FEEDS = (
    FeedConfig("https://left-uk.example/feed", "Left UK", ("left", "uk")),
    FeedConfig("https://left-us.example/feed", "Left US", ("Left", "us")),  # tags ignore case
    FeedConfig("https://right-uk.example/feed", "Right UK", ("right", "uk")),
    FeedConfig("https://right-us.example/feed", "Right US", ("right", "us")),
    FeedConfig("https://centre.example/feed", "Centre World", ("center", "world", "wire")),
    FeedConfig("https://plain.example/feed", "Plain Post"),
    FeedConfig("https://plain2.example/feed", "Plain Daily"),
)
URL = {f.name: f.url for f in FEEDS}
DIMENSIONS = (
    CoverageDimension("lean", ("left", "center", "right")),
    CoverageDimension("region", ("uk", "us", "world")),
    CoverageDimension("format", ("video", "podcast")),  # no feed carries it: left out quietly
)
BRIDGE_ID = "bridge-2026"
FIRST_DAY = TODAY - timedelta(days=2)


def spec() -> CoverageSpec:
    return coverage_spec(DIMENSIONS, FEEDS)


def report(outlet: str, title: str, day: date, hour: int, minute: int = 0) -> DigestItem:
    return DigestItem(
        title=title,
        link=f"https://{slug_of(outlet)}.example/{day:%Y%m%d}/{slug_of(title)[:30]}",
        outlet=outlet,
        published=at(day, hour, minute),
        is_copy=False,
        feed_url=URL[outlet],
    )


def news_story(story_id: str, headline: str, items: tuple[DigestItem, ...]) -> DigestStory:
    return DigestStory(
        id=story_id,
        headline=headline,
        link=items[0].link,
        keywords=(),
        items=items,
        first_seen=min(i.published for i in items),
        last_updated=max(i.published for i in items),
        status="growing",
    )


def bridge_reports(day: date) -> tuple[DigestItem, ...]:
    """The three-day story: who reported it on each of its days."""
    title = "Harbour bridge closed after crack found"
    by_day = {
        0: (("Left UK", 9),),
        1: (("Right UK", 10), ("Centre World", 14)),
        2: (("Right US", 8), ("Left UK", 12)),
    }
    n = (day - FIRST_DAY).days
    return tuple(report(o, f"{title} ({o}, day {n + 1})", day, h) for o, h in by_day[n])


def coverage_digests() -> list[Digest]:
    """Three days, newest first; today's stories are covered one-sidedly in several ways."""
    digests = []
    for n in range(3):
        day = FIRST_DAY + timedelta(days=n)
        # each day's window still holds the previous day's last report (as a 24 h window does)
        earlier = bridge_reports(day - timedelta(days=1))[-1:] if n else ()
        stories = [news_story(BRIDGE_ID, "Harbour bridge closed", (*earlier, *bridge_reports(day)))]
        if day == TODAY:
            stories += [
                news_story(
                    "tax-cut",
                    "Tax cut passes first vote",
                    (report("Left UK", "Tax cut vote", day, 7), report("Left US", "Tax", day, 8)),
                ),
                news_story(
                    "flood",
                    "River floods town centre",
                    (report("Right UK", "Floods", day, 6), report("Left UK", "Flood", day, 9)),
                ),
                news_story("lone", "Lone report", (report("Right US", "Lone", day, 11),)),
                news_story(
                    "untagged",
                    "Fair opens",
                    (report("Plain Post", "Fair", day, 5), report("Plain Daily", "Fair", day, 6)),
                ),
            ]
        digests.append(Digest(day=day, generated_at=at(day, 18), stories=tuple(stories)))
    return digests[::-1]
