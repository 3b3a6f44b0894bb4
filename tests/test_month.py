"""A user's first weeks, run by run: the real model, a SQLite file, loopback feeds that change
from day to day, the site and a daily email. What per-run tests miss shows over many runs: a
link published in the morning must still work in the evening and a week later.

The world: outlets posting every day, a developing story reported twice a day, a feed that
answers 404 for three days, one that moves (301), one that is gone (410), a feed removed and
one added, an outlet renamed, `window_hours`, `site.timezone`, the embedding (`max_tokens`)
and a template override changed on the way, and two corrections: one makes a report a copy of
another story's (two stories merge), one takes a copy out of its story."""

from __future__ import annotations

import email
import json
import re
import time
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html
import pytest

from aggregator import pipeline
from aggregator.config import load_config
from aggregator.demo import load_demo_items
from aggregator.feeds_cli import _health
from aggregator.site import MARKER_FILE, builtin_templates_dir, day_page
from aggregator.store import Store
from tests.support.feedserver import FeedServer, Reply

pytestmark = pytest.mark.model

START = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 8
RUNS = (6, 12, 20)  # hours of the day (UTC) cron runs at, :07 past; the email goes at 06:07
OUTLETS = "abcdefg"
BASE = "https://news.example/"
ATOM = "{http://www.w3.org/2005/Atom}"
BRIDGE = [
    "Harbour bridge closed after engineers find crack in main span",
    "Cracked girder shuts harbour bridge, traffic diverted",
    "Harbour bridge to stay closed for weeks as crack repairs begin",
    "Repair crews start work on the harbour bridge's cracked girder",
    "Harbour bridge crack: city says repairs will take a month",
    "Month of diversions ahead as harbour bridge crack repairs go on",
    "Second crack found in the harbour bridge's main span girder",
    "Harbour bridge crack repairs fall behind schedule, city admits",
    "Council questions engineers over the harbour bridge crack",
    "Harbour bridge to reopen to buses first after crack repairs",
    "Harbour bridge crack repairs finished ahead of reopening",
]
BRIDGE_SUMMARY = (
    "The city's harbour bridge, closed since a crack was found in a steel girder of its main "
    "span, is under repair, its engineers said."
)
MUSEUM = ("Museum opens new dinosaur gallery", "A 20-metre skeleton is the centrepiece.")
LAPTOP = ("Tech firm unveils foldable laptop", "It folds into a tablet and ships in spring.")
WIRE = ("Central bank holds interest rates at 4 percent", "It cited slowing inflation.")
TALKS = ("Local team wins the cup final on penalties", "A 2-2 draw, then a shoot-out.")


class World:
    """What each outlet has posted by the simulated clock, served as RSS on 127.0.0.1."""

    def __init__(self) -> None:
        self.clock = START
        self.posts: dict[str, list[dict]] = {o: [] for o in OUTLETS}
        self.corrections: dict[str, tuple[datetime, tuple[str, str]]] = {}  # guid -> (from, text)
        self.down: dict[str, Reply] = {}

    def post(self, outlet: str, at: datetime, guid: str, title: str, summary: str) -> None:
        link = f"https://{outlet}.example/{guid}"
        self.posts[outlet].append(dict(at=at, guid=guid, title=title, summary=summary, link=link))

    def rss(self, outlet: str, moved: bool = False) -> Reply:
        if outlet in self.down and not moved:
            return self.down[outlet]
        entries = []
        for post in [p for p in self.posts[outlet] if p["at"] <= self.clock][-20:]:
            title, summary = post["title"], post["summary"]
            since, text = self.corrections.get(post["guid"], (None, None))
            if since is not None and since <= self.clock:
                title, summary = text
            entries.append(
                f"<item><title>{escape(title)}</title><link>{escape(post['link'])}</link>"
                f"<guid isPermaLink='false'>{post['guid']}</guid>"
                f"<pubDate>{format_datetime(post['at'])}</pubDate>"
                f"<description>{escape(summary)}</description></item>"
            )
        body = (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Feed {outlet}</title>{''.join(reversed(entries))}</channel></rss>"
        )
        return Reply(200, body=body, headers={"Content-Type": "application/rss+xml"})


def the_world() -> World:
    world = World()
    filler = iter(sorted(load_demo_items(), key=lambda i: (i["story"], i["id"])))
    for day in range(DAYS):
        midnight = START + timedelta(days=day)
        for n in range(6):  # the news of the day, spread over the outlets
            item = next(filler)
            outlet = OUTLETS[(day + n) % 7]
            at = midnight + timedelta(hours=1 + 3 * n, minutes=13)
            world.post(outlet, at, f"{item['id']}-{day}", item["title"], item["summary"])
        for n, hour in enumerate((9, 17)):  # the bridge, twice a day
            outlet = "ab"[n]  # feeds that never fail: no report of it is missed
            title = BRIDGE[(2 * day + n) % len(BRIDGE)]
            world.post(outlet, midnight + timedelta(hours=hour), f"bridge-{day}-{n}", title,
                       BRIDGE_SUMMARY)  # fmt: skip
    # Day 1: two lone stories before the email; by noon a correction makes one a copy of the other.
    day1 = START + timedelta(days=1)
    world.post("a", day1 + timedelta(hours=4), "museum", *MUSEUM)
    world.post("e", day1 + timedelta(hours=5), "laptop", *LAPTOP)
    world.corrections["laptop"] = (day1 + timedelta(hours=10), MUSEUM)
    # Day 2: a wire copy in two feeds, the earlier one corrected into another story by noon.
    day2 = START + timedelta(days=2)
    world.post("a", day2 + timedelta(hours=3), "wire-a", *WIRE)
    world.post("b", day2 + timedelta(hours=5), "wire-b", *WIRE)
    world.corrections["wire-a"] = (day2 + timedelta(hours=10), TALKS)
    return world


def write_config(root: Path, server: FeedServer, day: int, hour: int) -> None:
    lines = ["allow_private: true", "database: news.db", "output: site"]
    lines += [f"window_hours: {36 if day >= 5 else 24}", "site:", f"  base_url: {BASE}"]
    if (day, hour) >= (4, 12):
        lines += ["  timezone: Asia/Tokyo"]  # 20:07 UTC is tomorrow there
    if day in (2, 3):
        lines += ["templates: mine"]
    if day >= 6:
        lines += ["embedding:", "  max_tokens: 64"]  # another model key: every vector anew
    lines += ["feeds:"]
    for outlet in OUTLETS:
        if (outlet == "c" and day >= 5) or (outlet == "g" and day < 3):
            continue  # c removed on day 5, g added on day 3
        name = ("Beta Daily" if day >= 4 else "Beta News") if outlet == "b" else f"Outlet {outlet}"
        lines += [f"  - url: {server.url(f'/{outlet}.xml')}", f'    name: "{name}"']
    (root / "feeds.yaml").write_text("\n".join(lines) + "\n")


def site_links(site: Path) -> set[str]:
    """Story pages the home page, the current day's page and the Atom feed link to."""
    found = set()
    for page in ("index.html", *(p.relative_to(site).as_posix() for p in site.glob("20*/*/*/*"))):
        doc = lxml.html.parse(str(site / page)).getroot()
        for href in doc.xpath("//a/@href"):
            path = urlsplit(urljoin(f"{BASE}{page}", href)).path.lstrip("/")
            if path.startswith("stories/"):
                found.add(path)
    feed = lxml.etree.parse(str(site / "feed.xml")).getroot()
    found.update(h.removeprefix(BASE) for h in feed.xpath("//*[local-name()='link']/@href"))
    return {link for link in found if link.startswith("stories/")}


def day_stories(site: Path, page: str) -> set[str]:
    doc = lxml.html.parse(str(site / page)).getroot()
    return set(doc.xpath("//main//a[starts-with(@href, '../../../stories/')]/@href"))


def test_a_month_of_runs_keeps_every_link_and_promise(tmp_path: Path) -> None:
    world = the_world()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "day.html").write_text(
        (builtin_templates_dir() / "day.html")
        .read_text()
        .replace("{% block content %}", "{% block content %}<p>MINE</p>", 1)
    )
    site = tmp_path / "site"
    site.mkdir()
    (site / "CNAME").write_text("news.example\n")  # the user's file
    embedders: dict = {}
    linked: set[str] = set()  # every story page a page or the feed ever linked to
    published: dict[str, str] = {}  # Atom entry id -> <published>
    last_seen_page: dict[str, set[str]] = {}  # day page -> its stories when last current
    bridge_ids: list[set[str]] = []
    timings: list[float] = []
    with FeedServer() as server:
        for outlet in OUTLETS:
            server.route(f"/{outlet}.xml", handler=lambda _r, o=outlet: world.rss(o))
        server.route("/e-new.xml", handler=lambda _r: world.rss("e", moved=True))
        for day in range(DAYS):
            world.down = {}
            if 1 <= day <= 3:
                world.down["d"] = Reply(404)
            if day >= 3:
                world.down["e"] = Reply(301, headers={"Location": "/e-new.xml"})
            if day >= 4:
                world.down["f"] = Reply(410)
            for hour in RUNS:
                now = world.clock = START + timedelta(days=day, hours=hour, minutes=7)
                write_config(tmp_path, server, day, hour)
                config = load_config(tmp_path / "feeds.yaml")
                key = repr(config.embedding)
                embedder = embedders.setdefault(key, pipeline._load_embedder(config))
                started = time.perf_counter()
                with Store.open(config.database) as store:
                    pipeline.poll(config, store, now=now)
                    if (day, hour) == (5, 12):
                        continue  # killed between poll and build: the next run repairs it
                    pipeline.cluster(config, store, now=now, embedder=embedder)
                    pipeline.build(config, store)
                    if hour == 6:
                        eml = tmp_path / "mail" / f"{day}.eml"
                        assert pipeline.email(config, store, to_file=eml, now=now).sent
                    ids = store.db.execute(
                        "SELECT DISTINCT story_id FROM story_items JOIN items ON id = item_id "
                        "WHERE key LIKE 'guid:bridge-%'"
                    ).fetchall()
                    bridge_ids.append({r[0] for r in ids})
                    page = day_page(date.fromisoformat(store.digests(limit=1)[0]["day"]))
                timings.append(time.perf_counter() - started)
                linked |= site_links(site)
                feed = lxml.etree.parse(str(site / "feed.xml")).getroot()
                for entry in feed.iter(f"{ATOM}entry"):
                    now_first = entry.findtext(f"{ATOM}published")
                    first = published.setdefault(entry.findtext(f"{ATOM}id"), now_first)
                    assert now_first == first, "an entry's <published> moved"
                last_seen_page[page] = day_stories(site, page)

            # Running again within the hour changes nothing.
            with Store.open(config.database) as store:
                before = {p: p.stat().st_mtime_ns for p in site.rglob("*")}
                assert pipeline.poll(config, store, now=now).new_items == 0
                assert pipeline.cluster(config, store, now=now, embedder=embedder).skipped
                assert pipeline.build(config, store).skipped
                assert {p: p.stat().st_mtime_ns for p in site.rglob("*")} == before

        status = {h["url"].rsplit("/", 1)[1]: h for h in _health(config, now)}

    files = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    # Every story page ever linked, from the site, the feed or an email, still exists.
    for eml in sorted((tmp_path / "mail").glob("*.eml")):
        message = email.message_from_bytes(eml.read_bytes())
        html = next(p for p in message.walk() if p.get_content_type() == "text/html")
        text = html.get_payload(decode=True).decode()
        linked |= {m.removeprefix(BASE) for m in re.findall(rf'{BASE}stories/[^"]+', text)}
    assert linked and not sorted(linked - files)
    # Each day's page still shows what it showed when that day was over.
    for page, stories in last_seen_page.items():
        assert day_stories(site, page) == stories, page
    archive = lxml.html.parse(str(site / "archive/index.html")).getroot()
    days = archive.xpath("//main//a[contains(@href, '/index.html')]/@href")
    assert len(days) == len(set(days)) == len(last_seen_page)
    # The developing story kept one id from its first grouping on.
    assert all(len(found) == 1 for found in bridge_ids[1:]), [
        (n, f) for n, f in enumerate(bridge_ids) if len(f) != 1
    ]
    assert len(set.union(*bridge_ids)) == 1
    # The manifest lists what the site wrote; the user's file stayed; the override is gone.
    manifest = json.loads((site / MARKER_FILE).read_text())
    assert set(manifest["files"]) == files - {MARKER_FILE, "CNAME"}
    assert manifest["kept"] == ["CNAME"] and (site / "CNAME").read_text() == "news.example\n"
    assert not any("MINE" in (site / f).read_text() for f in files if f.endswith(".html"))
    json.loads((site / "stories.json").read_text())
    # Outlets keep their pages: the removed one's and the renamed one's old name too.
    for name in ("outlet-c", "beta-news", "beta-daily", "outlet-f", "outlet-g"):
        assert f"outlets/{name}.html" in files
    # feeds status says what happened to each feed.
    assert status["f.xml"]["gone"] and status["e.xml"]["fetch_url"].endswith("/e-new.xml")
    assert status["d.xml"]["last_status"] == "ok" and status["d.xml"]["consecutive_errors"] == 0
    with Store.open(config.database) as store:
        count = lambda table: store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: E731
        assert count("digests") == len(last_seen_page)
        assert count("story_items") <= count("items") <= 8 * DAYS + 6
    # No run costs much more late than early (the first loads the model).
    assert max(timings[-3:]) < 4 * max(timings[1:4]) + 1.0
