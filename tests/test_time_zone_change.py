"""The user moves `site.timezone` west: the local date goes back some hours, to a day whose
digest is over (its page published, its email sent). Through the real pipeline: feeds on a
loopback server, a SQLite file, the real model, feeds.yaml written and read as the user's is.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

import lxml.html
import pytest

from aggregator import pipeline
from aggregator.config import load_config
from aggregator.site import day_page
from aggregator.store import Store
from tests.support.feedserver import FeedServer, Reply

pytestmark = pytest.mark.model

NOV_3 = datetime(2026, 11, 3, tzinfo=UTC)
# (when, outlet, title, summary)
POSTS = [
    (NOV_3 + timedelta(hours=9), "a", "Museum opens new dinosaur gallery",
     "A 20-metre skeleton is the centrepiece of the natural history museum's new hall."),
    (NOV_3 + timedelta(hours=15), "b", "Central bank holds interest rates at 4 percent",
     "The central bank kept its main rate unchanged, citing slowing inflation."),
    (NOV_3 + timedelta(hours=25), "a", "Local team wins the cup final on penalties",
     "The home side lifted the trophy after a 2-2 draw and a penalty shoot-out."),
    (NOV_3 + timedelta(hours=26, minutes=40), "b", "Storm warning issued for the northern coast",
     "Gusts of up to 110 km/h are expected overnight; ferry crossings have been suspended."),
]  # fmt: skip
CUP, STORM = POSTS[2][2], POSTS[3][2]


def rss(outlet: str, clock: datetime) -> Reply:
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>https://{outlet}.example/{n}</link>"
        f"<guid isPermaLink='false'>{outlet}-{n}</guid><pubDate>{format_datetime(at)}</pubDate>"
        f"<description>{escape(summary)}</description></item>"
        for n, (at, source, title, summary) in enumerate(POSTS)
        if source == outlet and at <= clock
    )
    body = f"<?xml version='1.0'?><rss version='2.0'><channel><title>{outlet}</title>{entries}"
    return Reply(
        200, body=body + "</channel></rss>", headers={"Content-Type": "application/rss+xml"}
    )


def write_config(root: Path, server: FeedServer, timezone: str) -> None:
    lines = ["allow_private: true", "database: news.db", "output: site", "site:"]
    lines += [f"  timezone: {timezone}", "feeds:"]
    for outlet in "ab":
        lines += [f"  - url: {server.url(f'/{outlet}.xml')}", f"    name: Outlet {outlet}"]
    (root / "feeds.yaml").write_text("\n".join(lines) + "\n")


def headlines(page: Path) -> set[str]:
    doc = lxml.html.parse(str(page)).getroot()
    return {a.text_content().strip() for a in doc.xpath("//main//h3[@class='headline']/a")}


def test_a_time_zone_moved_west_keeps_past_days_and_shows_the_news_today(
    tmp_path: Path,
) -> None:
    clock = NOV_3
    embedder = None
    site = tmp_path / "site"
    shown_when_over: set[str] = set()
    with FeedServer() as server:
        for outlet in "ab":
            server.route(f"/{outlet}.xml", handler=lambda _r, o=outlet: rss(o, clock))
        # (hours after 3 November 00:00 UTC, time zone): 20:07 and 02:07 UTC, then New York,
        # five hours behind: 22:07 and 23:07 on the 3rd there, then 01:07 on the 4th
        runs = [(20, "UTC"), (26, "UTC"), (27, "America/New_York"), (28, "America/New_York"),
                (30, "America/New_York")]  # fmt: skip
        for hours, timezone in runs:
            clock = NOV_3 + timedelta(hours=hours, minutes=7)
            write_config(tmp_path, server, timezone)
            config = load_config(tmp_path / "feeds.yaml")
            embedder = embedder or pipeline._load_embedder(config)
            with Store.open(config.database) as store:
                pipeline.poll(config, store, now=clock, force=True)  # every feed, every run
                pipeline.cluster(config, store, now=clock, embedder=embedder)
                pipeline.build(config, store)
                stored = {row["day"]: row for row in store.digests()}
            if hours == 26:  # the 3rd is over (UTC): its digest and page are final
                final_3rd = stored["2026-11-03"]
                shown_when_over = headlines(site / day_page(date(2026, 11, 3)))
                assert CUP in headlines(site / "index.html")
            if hours >= 27:
                # The 3rd keeps what it showed when it was over: no later report rewrites it.
                assert stored["2026-11-03"] == final_3rd, f"the 3rd rewritten at {clock}"
                assert headlines(site / day_page(date(2026, 11, 3))) == shown_when_over
                # Today's page is the newest digest, made again by this run: it has the storm.
                assert sorted(stored) == ["2026-11-03", "2026-11-04"]
                assert {CUP, STORM} <= headlines(site / "index.html")
                assert {CUP, STORM} <= headlines(site / day_page(date(2026, 11, 4)))
    assert shown_when_over and CUP not in shown_when_over and STORM not in shown_when_over
