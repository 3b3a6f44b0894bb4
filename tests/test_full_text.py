"""Full text for headline-only feeds: article pages fetched politely and safely on loopback,
their main text extracted without the site around it, stored beside the summary."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from aggregator.articles import ArticleRequest, fetch_articles_sync
from aggregator.cli import main
from aggregator.config import load_config
from aggregator.extract import extract_article, lede
from aggregator.models import Item
from aggregator.pipeline import fetch_item_pages, fetch_text, poll, with_full_text
from aggregator.poller import PollOptions
from aggregator.store import Store
from tests.support.articles import JUNK, article_page
from tests.support.feedserver import FeedServer, RecordedRequest, Reply
from tests.support.stored import poll_from_cli

NOW = datetime.now(UTC).replace(microsecond=0)
FLOOD = [
    "Rescue teams reached the village of Arden late on Tuesday after the river burst its banks, "
    "the regional fire service said.",
    "About 40 homes were flooded and 120 people spent the night in the school gym, according to "
    "the mayor, Ines Halvorsen.",
    "Forecasters expect more rain on Thursday. The road to the valley stays closed until "
    "engineers have checked the bridge.",
]
STRIKE = [
    "Train drivers at the northern rail operator will strike for 48 hours from Monday, their "
    "union announced, after pay talks collapsed in Lisbon.",
    "The operator said it would run a reduced timetable. Commuters were advised to work from "
    "home where they could & to check the <website> before travelling.",
]
SHORT_SUMMARY = (
    "The summary in the feed is long: it tells the whole story of the council meeting, who "
    "voted, what was decided about the bridge and when the works will start next spring."
)


def junk_in(text: str) -> list[str]:
    return [j for j in JUNK if re.search(rf"(?<!\w){re.escape(j)}(?!\w)", text, re.IGNORECASE)]


# ---------------------------------------------------------------- extraction


def test_only_the_article_text_is_extracted() -> None:
    page = article_page("River bursts its banks in Arden", FLOOD).encode()
    found = extract_article(page, url="https://news.example/a", summary="")
    assert found.status == "ok" and found.text is not None
    assert all(paragraph in found.text for paragraph in FLOOD)
    assert junk_in(found.text) == []
    assert "<" not in found.text.replace("<website>", "")


def test_the_feed_summary_stays_when_the_page_says_less() -> None:
    page = article_page("Council meeting", ["The council met on Monday."]).encode()
    found = extract_article(page, url=None, summary=SHORT_SUMMARY)
    assert (found.text, found.status) == (None, "short")


@pytest.mark.parametrize(
    "page", [b"", b"\x00\xff\xfe binary", b"<html><body><nav>Home</nav></body></html>"]
)
def test_pages_without_an_article_are_empty_not_errors(page: bytes) -> None:
    assert extract_article(page, url=None, summary="x").status == "empty"


def test_the_lede_is_the_start_cut_at_a_word() -> None:
    text = " ".join(FLOOD * 5)
    start = lede(text, 300)
    assert 250 < len(start) <= 300 and text.startswith(start) and text[len(start)] == " "
    assert lede("short  text\n") == "short text"


def test_grouping_and_excerpts_read_the_lede_of_the_full_text() -> None:
    item = Item(1, "Flood", "feed summary", "Outlet", None, NOW, full_text=" ".join(FLOOD * 10))
    seen = with_full_text(item)
    assert seen.summary.startswith(FLOOD[0]) and len(seen.summary) <= 600
    assert with_full_text(Item(2, "t", "feed summary", "o", None, NOW)).summary == "feed summary"


# ---------------------------------------------------------------- fetching on loopback


def serve_site(server: FeedServer, *, cap_bytes: int) -> dict[str, str]:
    """A summary-only feed whose items link to article pages; returns path -> purpose."""
    pages = {
        "/news/flood": ("River bursts its banks in Arden", FLOOD),
        "/news/strike": ("Rail strike called for Monday", STRIKE),
        "/news/council": ("Council meeting", ["The council met on Monday."]),
    }
    for path, (title, paragraphs) in pages.items():
        server.route(
            path,
            body=article_page(title, paragraphs),
            headers={"Content-Type": "text/html; charset=utf-8", "Set-Cookie": "uid=7"},
        )
    server.route("/private/memo", body=article_page("Internal memo", FLOOD))
    server.route("/robots.txt", body="User-agent: *\nDisallow: /private/\n")
    big = article_page("Huge page", FLOOD).encode()
    server.route("/news/huge", body=iter([big, b"<!-- padding -->" * (cap_bytes // 16 + 10)]))
    server.redirect("/news/moved", "http://169.254.169.254/latest/meta-data/", status=302)
    links = {
        "/news/flood": "",
        "/news/strike": "",
        "/news/council": SHORT_SUMMARY,
        "/private/memo": "",
        "/news/huge": "",
        "/news/moved": "",
        "/news/gone": "",
    }
    items = "".join(
        f"<item><title>Headline {i}</title><link>{server.url(path)}</link><guid>g{i}</guid>"
        f"<description>{summary}</description></item>"
        for i, (path, summary) in enumerate(links.items())
    )
    server.route(
        "/feed.xml",
        body=f"<rss version='2.0'><channel><title>Wire Copy</title>{items}</channel></rss>",
        headers={"Content-Type": "application/rss+xml", "ETag": '"1"'},
    )
    return {path: str(i) for i, path in enumerate(links)}


def write_config(tmp_path: Path, server: FeedServer, *, full_text: str = "    full_text: true\n"):
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "allow_private: true\ndatabase: agg.db\npoll:\n  max_body_mb: 0.05\n  per_host: 2\n"
        f"feeds:\n  - url: {server.url('/feed.xml')}\n{full_text}",
        encoding="utf-8",
    )
    return path


def statuses(db: Path) -> dict[str, tuple[str | None, str | None]]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT link, full_text_status, full_text FROM items")
        return {
            link.rsplit(":", 1)[1].split("/", 1)[1]: (status, text) for link, status, text in rows
        }


def test_new_items_get_their_article_text_politely(feed_server: FeedServer, tmp_path: Path) -> None:
    serve_site(feed_server, cap_bytes=int(0.05 * 1024 * 1024))
    config = load_config(write_config(tmp_path, feed_server))
    with Store.open(config.database) as store:
        summary = poll(config, store, now=NOW)
    assert (summary.new_items, summary.full_texts, summary.full_text_failures) == (7, 2, 4)

    found = statuses(config.database)
    for path in ("news/flood", "news/strike"):
        status, text = found[path]
        assert status == "ok" and text
        assert junk_in(text) == []
    assert "& to check the <website>" in found["news/strike"][1]  # plain text, not markup
    assert found["news/council"] == ("kept the feed's summary: the page's text is not longer", None)
    assert "robots.txt" in found["private/memo"][0] and "disallows" in found["private/memo"][0]
    assert "body too large" in found["news/huge"][0]
    assert "link-local" in found["news/moved"][0] and "169.254.169.254" in found["news/moved"][0]
    assert found["news/gone"][0] == "failed: HTTP 404"

    assert feed_server.requests_for("/private/memo") == []  # robots.txt honoured
    assert len(feed_server.requests_for("/robots.txt")) == 1  # read once per site
    pages = [r for r in feed_server.requests if r.route.startswith("/news/")]
    assert len(pages) == 6
    for request in pages:
        assert request.headers["User-Agent"].startswith("aggregator/")
        assert "Cookie" not in request.headers and "Referer" not in request.headers
    assert feed_server.max_in_flight("127.0.0.1") <= 2

    with Store.open(config.database) as store:  # polled again: no new item, no page fetched
        again = poll(config, store, now=NOW + timedelta(hours=2), force=True)
    assert again.new_items == 0
    assert len([r for r in feed_server.requests if r.route.startswith("/news/")]) == 6


def _fetch_pages_of(config, entries, **options) -> tuple[object, float]:
    """Store the feed's `entries`, fetch their untried pages; the summary and the seconds."""
    from tests.support.stored import polled, record

    url = config.feeds[0].url
    with Store.open(config.database) as store:
        record(store, polled(url, entries, NOW), "Herald")
        started = time.monotonic()
        untried = store.items_for_full_text([url], NOW - timedelta(days=1), untried_only=True)
        summary = fetch_item_pages(config, store, untried, {url: True}, **options)
    return summary, time.monotonic() - started


def test_article_texts_are_stored_as_they_come_not_after_the_last_page(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Texts are stored 20 at a time while the others download: when the 22nd page is asked
    for, the first 20 are on disk (a run killed then keeps them); a page still hanging when the
    poll's time for pages is spent is left untried, and the poll goes on."""
    from aggregator.models import ParsedEntry

    config = load_config(write_config(tmp_path, feed_server))
    entries = tuple(
        ParsedEntry(f"g{n}", feed_server.url(f"/page/{n}"), f"Flood {n}", "Short.", NOW)
        for n in range(23)
    )
    for n in range(21):
        feed_server.route(f"/page/{n}", body=article_page("Flood", FLOOD))
    seen_stored: list[int] = []

    def count_stored(request: RecordedRequest) -> Reply:
        # waits (up to 5 s) for the first 20 texts to be on disk: stored only after the last
        # page, they never are while this page is in flight
        query = "SELECT count(*) FROM items WHERE full_text_status IS NOT NULL"
        deadline = time.monotonic() + 5
        while True:
            with sqlite3.connect(config.database) as connection:
                stored = connection.execute(query).fetchone()[0]
            if stored >= 20 or time.monotonic() > deadline:
                seen_stored.append(stored)
                return Reply(200, body=article_page("Flood", FLOOD))
            time.sleep(0.05)

    feed_server.route("/page/21", handler=count_stored)
    feed_server.route("/page/22", body=article_page("Flood", FLOOD), delay=30)
    summary, seconds = _fetch_pages_of(config, entries, within=8)
    assert seconds < 15
    assert seen_stored and seen_stored[0] >= 20
    assert summary.extracted == 22 and statuses(config.database)["page/22"][0] is None


def test_a_stopped_worker_leaves_the_pages_not_yet_done_untried(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """SIGTERM reached a poll worker's article pages only when they were all done (up to half
    the lease, 300 s): systemd killed it meanwhile, losing the unsaved texts and leaving its
    feeds leased. Once told to stop, the pages not done are left untried (the next cycle
    fetches them) and the texts fetched are stored."""
    import threading

    from aggregator.models import ParsedEntry

    config = load_config(write_config(tmp_path, feed_server))
    entries = tuple(
        ParsedEntry(f"g{n}", feed_server.url(f"/page/{n}"), f"Flood {n}", "Short.", NOW)
        for n in range(6)
    )
    stop = threading.Event()

    def first_then_stop(request: RecordedRequest) -> Reply:
        stop.set()  # SIGTERM while this page downloads
        return Reply(200, body=article_page("Flood", FLOOD))

    feed_server.route("/page/0", handler=first_then_stop)
    for n in range(1, 6):
        feed_server.route(f"/page/{n}", body=article_page("Flood", FLOOD), delay=20)
    summary, seconds = _fetch_pages_of(config, entries, within=300, stop=stop)
    assert seconds < 15  # not the 20 s the other pages take
    found = statuses(config.database)
    assert summary.items <= 1 and all(found[f"page/{n}"][0] is None for n in range(1, 6))
    # the summary counts the pages fetched, not those asked for ("6 pages fetched")
    assert summary.pages == summary.items and summary.pages + summary.left == 6


def test_pages_a_run_left_untried_are_fetched_by_the_next_run(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A run killed after storing its items (here: items stored while full_text was off) left
    them without their page; the next run fetches the window's untried pages, though its
    feed brings nothing new, and a page is never fetched twice."""
    serve_site(feed_server, cap_bytes=int(0.05 * 1024 * 1024))
    path = write_config(tmp_path, feed_server, full_text="")
    with Store.open(tmp_path / "agg.db") as store:
        assert poll(load_config(path), store, now=NOW).new_items == 7
    assert not [r for r in feed_server.requests if r.route.startswith("/news/")]

    path.write_text(path.read_text() + "    full_text: true\n")
    with Store.open(tmp_path / "agg.db") as store:
        later = poll(load_config(path), store, now=NOW + timedelta(hours=2), force=True)
    assert (later.new_items, later.full_texts) == (0, 2)
    assert statuses(tmp_path / "agg.db")["news/flood"][0] == "ok"
    pages = len([r for r in feed_server.requests if r.route.startswith("/news/")])
    with Store.open(tmp_path / "agg.db") as store:
        poll(load_config(path), store, now=NOW + timedelta(hours=3), force=True)
    assert len([r for r in feed_server.requests if r.route.startswith("/news/")]) == pages


def test_fetch_text_extracts_after_the_option_is_turned_on(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    serve_site(feed_server, cap_bytes=int(0.05 * 1024 * 1024))
    path = write_config(tmp_path, feed_server, full_text="")
    runner = CliRunner()
    assert runner.invoke(main, ["poll", "-c", str(path)]).exit_code == 0
    assert not [r for r in feed_server.requests if r.route.startswith("/news/")]

    none_on = runner.invoke(main, ["fetch-text", "-c", str(path)])
    assert none_on.exit_code == 2 and "full_text: true" in none_on.output
    unknown = runner.invoke(main, ["fetch-text", "-c", str(path), "--feed", "nope"])
    assert unknown.exit_code == 2 and "is not a feed in" in unknown.output

    path.write_text(path.read_text() + "full_text: true\n")
    result = runner.invoke(main, ["fetch-text", "-c", str(path), "--since", "1"])
    assert result.exit_code == 0, result.output
    assert "2 articles extracted, 1 kept the feed's summary, 4 failed" in result.output
    assert statuses(tmp_path / "agg.db")["news/flood"][0] == "ok"
    with Store.open(tmp_path / "agg.db") as store:
        assert store.meta("cluster_fingerprint") == ""  # new texts: the next cluster regroups

    with Store.open(tmp_path / "agg.db") as store:
        again = fetch_text(load_config(path), store, days=1)
    assert (again.pages, again.extracted, again.changed) == (7, 2, 0)  # the same texts again


def test_an_article_host_that_rebinds_to_loopback_is_refused(feed_server: FeedServer) -> None:
    """The page's name is public when checked, loopback when connected: refused, and nothing
    reaches the server (robots.txt included)."""
    feed_server.route("/news/flood", body=article_page("Flood", FLOOD))
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["93.184.216.34"] if len(calls) == 1 else ["127.0.0.1"]

    url = f"http://rebind.example:{feed_server.port}/news/flood"
    options = PollOptions(resolver=rebinding, trust_env=False, total_timeout=5)
    (page,) = fetch_articles_sync([ArticleRequest(1, url)], options=options)

    assert page.html is None
    assert "private address (127.0.0.1)" in (page.error or "")
    assert feed_server.requests == []
    assert len(calls) == 2  # the host's check (once per run), the robots.txt connection


def test_a_page_that_is_not_html_is_not_extracted(feed_server: FeedServer) -> None:
    feed_server.route("/doc.pdf", body=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})
    request = ArticleRequest(1, feed_server.url("/doc.pdf"), allow_private=True)
    (page,) = fetch_articles_sync([request], options=PollOptions(trust_env=False))
    assert page.html is None and "not an HTML page (application/pdf)" in (page.error or "")


def test_a_page_that_is_not_html_is_refused_before_its_body_is_read(
    feed_server: FeedServer,
) -> None:
    """A video sent slowly (20 s for all of it) is refused on its Content-Type at once."""
    feed_server.route(
        "/clip",
        body=b"\0" * 128_000,
        headers={"Content-Type": "video/mp4"},
        chunk_size=64,
        chunk_delay=0.01,
    )
    request = ArticleRequest(1, feed_server.url("/clip"), allow_private=True)
    started = time.monotonic()
    (page,) = fetch_articles_sync([request], options=PollOptions(trust_env=False))
    assert "not an HTML page (video/mp4)" in (page.error or "")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("status", [503, 429])
def test_an_unreachable_robots_txt_leaves_the_sites_pages_for_another_run(
    feed_server: FeedServer, status: int
) -> None:
    """RFC 9309: a robots.txt that cannot be read now (a server error; a 429, as crawlers
    read it) disallows the site for this run: its pages are left untried (None), not failed."""
    feed_server.route("/robots.txt", handler=lambda request: Reply(status))
    feed_server.route("/news/flood", body=article_page("Flood", FLOOD))
    request = ArticleRequest(1, feed_server.url("/news/flood"), allow_private=True)
    assert fetch_articles_sync([request], options=PollOptions(trust_env=False)) == [None]
    assert feed_server.requests_for("/news/flood") == []


@pytest.mark.parametrize("status", [429, 503])
def test_a_site_that_asks_for_a_pause_gets_no_more_requests_this_run(
    feed_server: FeedServer, status: int
) -> None:
    """The first page answers "Too Many Requests" (or 503): that page and the site's others
    are left for another run (None: their items stay untried), none of them requested."""
    feed_server.route("/robots.txt", body=b"User-agent: *\nAllow: /\n")
    feed_server.route(
        "/news/0", handler=lambda request: Reply(status, headers={"Retry-After": "3600"})
    )
    for n in range(1, 6):
        feed_server.route(f"/news/{n}", body=article_page("Flood", FLOOD), delay=0.2)
    requests = [
        ArticleRequest(n, feed_server.url(f"/news/{n}"), allow_private=True) for n in range(6)
    ]
    options = PollOptions(trust_env=False, max_per_host=1)
    pages = fetch_articles_sync(requests, options=options)
    assert pages[0] is None and all(page is None for page in pages[1:])
    assert sum(len(feed_server.requests_for(f"/news/{n}")) for n in range(1, 6)) == 0


@pytest.mark.parametrize("where", ["page", "robots"])
def test_a_site_that_asked_for_a_pause_is_left_alone_by_later_runs_until_its_retry_after(
    feed_server: FeedServer, tmp_path: Path, where: str
) -> None:
    """A site's 429 (or its robots.txt's 503) with "Retry-After: 3600" held for one run only:
    each `poll` from cron asked robots.txt and the page again, every few minutes, for the day
    the items stayed in the window. Later runs leave it alone until the hour is over."""

    pause = Reply(429 if where == "page" else 503, headers={"Retry-After": "3600"})
    if where == "robots":
        feed_server.route("/robots.txt", handler=lambda request: pause)
    else:
        feed_server.route("/robots.txt", body=b"User-agent: *\nAllow: /\n")
    feed_server.route("/news/flood", handler=lambda request: pause)
    items = f"<item><title>Flood</title><link>{feed_server.url('/news/flood')}</link></item>"
    feed_server.route(
        "/feed.xml",
        body=f"<rss version='2.0'><channel><title>Wire</title>{items}</channel></rss>",
        headers={"Content-Type": "application/rss+xml"},
    )
    path = write_config(tmp_path, feed_server)
    runner = CliRunner()
    asked = {"page": "/news/flood", "robots": "/robots.txt"}[where]
    assert runner.invoke(main, ["poll", "-c", str(path)]).exit_code == 0
    assert len(feed_server.requests_for(asked)) == 1
    for _ in range(2):  # cron's next runs: the feed is forced, the site's pause stands
        assert runner.invoke(main, ["poll", "--force", "-c", str(path)]).exit_code == 0
    assert len(feed_server.requests_for(asked)) == 1
    assert feed_server.requests_for("/news/flood" if where == "robots" else asked)[1:] == []
    with Store.open(tmp_path / "agg.db") as store:
        [until] = store.site_pauses(datetime.now(UTC)).values()
        assert timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
        # an hour on, the site is asked again
        assert store.site_pauses(datetime.now(UTC) + timedelta(hours=1, seconds=1)) == {}
    assert statuses(tmp_path / "agg.db")["news/flood"][0] is None  # untried, not failed


def test_a_pages_redirects_share_one_time_limit(feed_server: FeedServer) -> None:
    """Four slow redirects (0.6 s each) and a slow page under a 1.5 s limit: the fetch ends
    when the limit is spent, as a feed's does; each hop had a limit of its own before."""
    for n in range(4):
        feed_server.route(f"/hop/{n}", status=302, headers={"Location": f"/hop/{n + 1}"}, delay=0.6)
    feed_server.route("/hop/4", body=article_page("Flood", FLOOD), delay=0.6)
    request = ArticleRequest(1, feed_server.url("/hop/0"), allow_private=True)
    options = PollOptions(trust_env=False, total_timeout=1.5)
    started = time.monotonic()
    (page,) = fetch_articles_sync([request], options=options)
    assert "timed out" in (page.error or "")
    assert time.monotonic() - started < 2.5


def test_a_page_that_fails_later_keeps_the_text_stored_from_it(tmp_path: Path) -> None:
    from aggregator.models import ParsedEntry
    from tests.support.stored import polled, record

    text = " ".join(FLOOD)
    with Store.open(tmp_path / "news.db") as store:
        entry = ParsedEntry("g1", "https://a.example/news/1", "Flood", "Short.", NOW)
        record(store, polled("https://a.example/feed", (entry,), NOW), "A")
        [item] = store.items_since(NOW - timedelta(days=1))
        assert store.save_full_texts([(item.id, text, "ok")]) == 1
        assert store.save_full_texts([(item.id, None, "failed: HTTP 502")]) == 0
        [item] = store.items_since(NOW - timedelta(days=1))
        assert item.full_text == text


def _crashing_extract(page):  # module level: worker processes run it
    if page.html is None:
        return page.item_id, f"failed: {page.error}"
    if b"KILL-WORKER" in page.html:
        os._exit(3)  # the worker dies: the pool breaks (BrokenProcessPool)
    if b"OUT-OF-MEMORY" in page.html:
        raise MemoryError("page too big to extract")
    return page.item_id, "ok"


def test_a_crashing_extraction_fails_its_item_and_the_batch_goes_on(
    feed_server: FeedServer,
) -> None:
    feed_server.route("/p/kill", body="<html><body>KILL-WORKER</body></html>")
    oom = Reply(200, body="<html><body>OUT-OF-MEMORY</body></html>", delay=0.8)
    feed_server.route("/p/oom", handler=lambda _request: oom)  # after the pool broke
    late = Reply(200, body="<html><body>fine</body></html>", delay=1.5)
    feed_server.route("/p/late1", handler=lambda _request: late)
    feed_server.route("/p/late2", handler=lambda _request: late)
    paths = ["/p/kill", "/p/oom", "/p/late1", "/p/late2"]
    requests = [
        ArticleRequest(i, feed_server.url(p), allow_private=True) for i, p in enumerate(paths)
    ]
    options = PollOptions(trust_env=False, parse_processes=2, max_per_host=4, total_timeout=10)

    results = dict(fetch_articles_sync(requests, options=options, process=_crashing_extract))

    assert results[0].startswith("failed: extraction failed: BrokenProcessPool")
    assert results[1] == "failed: extraction failed: MemoryError: page too big to extract"
    assert results[2] == results[3] == "ok"  # extracted by the replacement pool


@pytest.mark.parametrize(
    ("article", "exit_code", "words"),
    [
        ("/news/flood", 0, "full text: 2 items, 1 page fetched, 1 article extracted"),
        ("/news/missing", 1, "full text: 2 items, 1 page fetched, 0 articles extracted"),
    ],
)
def test_fetch_text_fails_only_when_every_item_failed(
    feed_server: FeedServer, tmp_path: Path, article: str, exit_code: int, words: str
) -> None:
    """An item without a link counts as a failed item, not as a page: one extracted page
    beside it is a partial success (exit 0), not "all failed"."""
    feed_server.route("/news/flood", body=article_page("River bursts its banks in Arden", FLOOD))
    items = (
        "<item><title>No link here</title><guid isPermaLink='false'>nolink</guid></item>"
        f"<item><title>Flood</title><link>{feed_server.url(article)}</link><guid>a</guid></item>"
    )
    feed_server.route(
        "/feed.xml",
        body=f"<rss version='2.0'><channel><title>Wire</title>{items}</channel></rss>",
        headers={"Content-Type": "application/rss+xml"},
    )
    path = write_config(tmp_path, feed_server, full_text="")
    runner = CliRunner()
    assert runner.invoke(main, ["poll", "-c", str(path)]).exit_code == 0
    result = runner.invoke(
        main, ["fetch-text", "-c", str(path), "--feed", feed_server.url("/feed.xml")]
    )
    assert result.exit_code == exit_code, result.output
    assert words in result.output
    # each failed item is named with why, as `poll` names a failed feed
    assert "failed: the item has no link" in result.output
    missing = f"failed: {feed_server.url('/news/missing')}: HTTP 404"
    assert (missing in result.output) == (article == "/news/missing"), result.output


@pytest.mark.parametrize("days", ["1e9", "inf", "nan", "1000000", "-inf", "0"])
def test_fetch_text_since_out_of_range_is_a_usage_error(tmp_path: Path, days: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("database: agg.db\nfull_text: true\nfeeds:\n  - https://news.example/rss\n")
    result = CliRunner().invoke(main, ["fetch-text", "-c", str(path), "--since", days])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--since'" in result.output
    assert isinstance(result.exception, SystemExit)  # a usage error, not a crash


def test_an_article_host_is_resolved_once_per_run_not_per_page() -> None:
    lookups: list[str] = []

    async def counting(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["93.184.216.34"]  # only checked: the mock transport answers, nothing connects

    def site(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        if request.url.path == "/old":
            return httpx.Response(301, headers={"Location": "/news/1"})
        return httpx.Response(200, html=article_page("Flood", FLOOD))

    urls = ["http://news.example/old"] + [f"http://news.example/news/{n}" for n in range(4)]
    requests = [ArticleRequest(i, url) for i, url in enumerate(urls)]
    options = PollOptions(resolver=counting, trust_env=False)
    pages = fetch_articles_sync(requests, options=options, transport=httpx.MockTransport(site))
    assert all(page.html for page in pages)
    assert lookups == ["news.example"]


def test_robots_txt_wildcards_and_the_longest_rule_are_honoured(feed_server: FeedServer) -> None:
    """RFC 9309: `*` matches any characters, `$` ends the path, and the longest matching rule
    decides (an Allow inside a disallowed folder wins); the standard library's parser read
    neither, and fetched /news/print pages the site had disallowed."""
    feed_server.route(
        "/robots.txt",
        body=b"User-agent: *\nDisallow: /*/print\nDisallow: /*?share=\nDisallow: /news/\n"
        b"Allow: /news/public\nDisallow: /*.json$\n",
    )
    paths = ["/a/print", "/a?share=tw", "/news/b", "/news/public/c", "/d.json", "/d.json.html"]
    for path in paths:
        feed_server.route(path.split("?")[0], body=article_page("Flood", FLOOD))
    requests = [
        ArticleRequest(n, feed_server.url(path), allow_private=True) for n, path in enumerate(paths)
    ]
    pages = fetch_articles_sync(requests, options=PollOptions(trust_env=False))
    fetched = [path for path, page in zip(paths, pages, strict=True) if page.html is not None]
    assert fetched == ["/news/public/c", "/d.json.html"]
    refused = [page.error for page in pages if page.html is None]
    assert all("robots.txt" in (error or "") and "disallows" in (error or "") for error in refused)


def test_a_robots_txt_over_500_kib_is_read_up_to_the_limit(feed_server: FeedServer) -> None:
    """RFC 9309 lets a crawler stop reading at 500 KiB: the rules there still count, instead
    of the whole site being disallowed."""
    rules = "User-agent: *\nDisallow: /private/\n"
    feed_server.route("/robots.txt", body=rules + "# padding line\n" * 50_000)  # ~730 KiB
    feed_server.route("/news/flood", body=article_page("Flood", FLOOD))
    feed_server.route("/private/memo", body=article_page("Memo", FLOOD))
    requests = [
        ArticleRequest(1, feed_server.url("/news/flood"), allow_private=True),
        ArticleRequest(2, feed_server.url("/private/memo"), allow_private=True),
    ]
    flood, memo = fetch_articles_sync(requests, options=PollOptions(trust_env=False))
    assert flood.html is not None, flood.error
    assert memo.html is None and "disallows" in (memo.error or "")
    assert feed_server.requests_for("/private/memo") == []


@pytest.mark.parametrize("path", ["poll", "worker"])
def test_a_correction_keeps_the_article_text_unless_its_link_moves(
    path: str, feed_server: FeedServer, tmp_path: Path, store_target, monkeypatch
) -> None:
    """A corrected title keeps the page's text (the same page); a correction that moves the
    link to another page drops the old page's text and fetches the new page once, in
    `aggregator poll` as in a poll worker."""
    feed_server.route("/robots.txt", body="User-agent: *\nAllow: /\n")
    for name, (title, paragraphs) in {
        "strike": ("Strike", STRIKE),
        "flood": ("Flood", FLOOD),
    }.items():
        feed_server.route(
            f"/news/{name}",
            body=article_page(title, paragraphs),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )
    database = store_target("news")
    monkeypatch.setenv("AGGREGATOR_DATABASE", str(database))
    config = write_config(tmp_path, feed_server)

    def polled(title: str, page: str) -> str:
        feed_server.route(
            "/feed.xml",
            body=f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
            f"<item><title>{title}</title><link>{feed_server.url(page)}</link><guid>g1</guid>"
            "<description>Short.</description></item></channel></rss>",
        )
        return poll_from_cli(path, config, database)

    def stored() -> tuple:
        with Store.open(database) as store:
            return store.db.execute("SELECT title, link, full_text FROM items").fetchone()

    def pages() -> list[str]:
        return [r.route for r in feed_server.requests if r.route.startswith("/news/")]

    polled("Rail strike called", "/news/strike")
    title, link, text = stored()
    assert STRIKE[0] in text and pages() == ["/news/strike"]

    assert "updated items: 1" in polled("Rail strike called for Monday", "/news/strike")
    assert stored() == ("Rail strike called for Monday", link, text)  # the same page's text
    assert pages() == ["/news/strike"]

    assert "updated items: 1" in polled("River bursts its banks", "/news/flood")
    title, link, text = stored()
    assert (title, link) == ("River bursts its banks", feed_server.url("/news/flood"))
    assert FLOOD[0] in text and STRIKE[0] not in text
    assert pages() == ["/news/strike", "/news/flood"]


def test_a_huge_page_is_cut_for_extraction_after_its_scripts_go() -> None:
    """trafilatura's time grows faster than the page (10 MB of paragraphs took over four
    minutes in a thread no time limit stops): what it reads is at most 1 MB, and a big page's
    scripts, styles, inline SVG and comments go first, so an article after them is kept."""
    from aggregator.extract import EXTRACT_MAX_BYTES, _bounded

    article = "".join(
        f"<p>Paragraph {n}: the quake struck the city at dawn, officials said.</p>"
        for n in range(30)
    )
    page = (
        "<html><head><script>var state = '" + "x" * 3_000_000 + "';</script>"
        "<STYLE>" + "p{}" * 100_000 + "</style><!-- " + "c" * 100_000 + " --></head><body>"
        "<svg><path d='"
        + "1" * 100_000
        + "'/></svg><article>"
        + article
        + "</article>"
        + "<p>filler words here</p>" * 400_000
        + "</body></html>"
    ).encode()
    bounded = _bounded(page)
    assert len(bounded) == EXTRACT_MAX_BYTES
    assert b"Paragraph 29" in bounded and b"xxxx" not in bounded and b"p{}" not in bounded
    found = extract_article(page, url="https://news.example/a", summary="A quake.")
    assert found.status == "ok" and "Paragraph 29: the quake struck" in (found.text or "")
    unclosed = b"<html><body><p>Lead.</p><script>" + b"<script" * 2_000_000
    assert _bounded(unclosed) == b"<html><body><p>Lead.</p>"  # open to the end, as browsers read
    assert _bounded(page[:1000]) == page[:1000]  # a page of usual size is read as it is
    image = b'<html><body><header><img src="data:image/png;base64,' + b"A" * 1_200_000 + b'">'
    pictured = image + b"</header><article>" + article.encode() + b"</article></body></html>"
    found = extract_article(pictured, url="https://news.example/b", summary="A quake.")
    assert found.status == "ok" and "Paragraph 29" in (found.text or "")  # was cut in the image
