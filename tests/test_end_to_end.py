"""The whole pipeline on real parts: loopback HTTP feeds, a SQLite file or a PostgreSQL server,
the real model, the CLI."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.demo import load_demo_items, rss_feed
from aggregator.store import Store
from tests.support.feedserver import FeedServer

pytestmark = pytest.mark.model

NOW = datetime.now(UTC)


def pick_items() -> list[dict]:
    """Three real multi-outlet stories from the demo data, a few items each."""
    by_story: dict[str, list[dict]] = defaultdict(list)
    for item in load_demo_items():
        if item["source"] == "uci":
            by_story[item["story"]].append(item)
    stories = sorted(by_story)[:3]
    return [item for story in stories for item in by_story[story][:6]]


def serve_outlets(server: FeedServer, items: list[dict]) -> dict[str, str]:
    by_outlet: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        by_outlet[item["outlet"]].append(item)
    urls = {}
    for index, (outlet, outlet_items) in enumerate(sorted(by_outlet.items())):
        path = f"/feeds/{index}.xml"
        server.route(
            path,
            body=rss_feed(outlet, outlet_items, NOW),
            headers={"Content-Type": "application/rss+xml"},
        )
        urls[server.url(path)] = outlet
    return urls


def write_config(
    tmp_path: Path, urls: dict[str, str], failing: list[str], database: Path | str = "news.db"
) -> Path:
    lines = ["allow_private: true", f"database: {database}", "output: site", "feeds:"]
    for url, outlet in urls.items():
        lines += [f"  - url: {url}", f'    name: "{outlet}"']
    lines += [f"  - url: {url}" for url in failing]
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def stories_by_item(db: Path | str) -> dict[str, str]:
    with Store.open(db) as store:
        return dict(store.item_stories())


def test_run_polls_groups_and_builds_and_a_rerun_adds_nothing(
    feed_server: FeedServer, tmp_path: Path, store_target
) -> None:
    """On either backend: `database:` a SQLite file or a postgresql:// URL."""
    items = pick_items()
    hostile = dict(
        items[0],
        id="hostile-1",
        title="Market <script>alert(1)</script> update",
        url="javascript:alert(1)",
    )
    urls = serve_outlets(feed_server, [*items, hostile])
    feed_server.route("/broken.xml", status=500, body=b"oops")
    feed_server.route(
        "/garbage.xml",
        body=b"\x00\x01 this is not a feed <<<",
        headers={"Content-Type": "application/rss+xml"},
    )
    failing = [
        feed_server.url("/missing.xml"),
        feed_server.url("/broken.xml"),
        feed_server.url("/garbage.xml"),
    ]
    db = store_target("news")
    config = write_config(tmp_path, urls, failing, db)

    result = CliRunner().invoke(main, ["run", "-c", str(config)])
    assert result.exit_code == 0, result.output
    summary = result.output.strip().splitlines()
    assert any(
        re.search(rf"{len(urls)} ok, 0 not modified, 3 failed; new items: {len(items) + 1}", line)
        for line in summary
    )

    with Store.open(db) as store:
        connection = store.db
        assert connection.execute("SELECT count(*) FROM items").fetchone()[0] == len(items) + 1
        errors = dict(
            connection.execute(
                "SELECT url, last_error FROM feeds WHERE last_status = 'error'"
            ).fetchall()
        )
        assert set(errors) == set(failing)
        assert all(errors.values())
        outlets_per_story = [
            row[0]
            for row in connection.execute("SELECT outlets FROM stories ORDER BY outlets DESC")
        ]
    # Each of the three real stories was reported by several outlets and grouped across them.
    assert outlets_per_story[:3] >= [3, 3, 3]
    assigned = stories_by_item(db)
    gold: dict[str, set[str]] = defaultdict(set)
    for item in items:
        gold[item["story"]].add(assigned["guid:" + item["id"]])
    assert len({next(iter(s)) for s in gold.values()}) == 3  # three different stories

    pages = {p: p.read_text() for p in (tmp_path / "site").rglob("*.html")}
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in html for html in pages.values())
    assert not any(
        "<script>alert(1)" in html or "javascript:alert" in html for html in pages.values()
    )
    index = pages[tmp_path / "site" / "index.html"]
    story_pages = list((tmp_path / "site" / "stories").glob("*.html"))
    assert len(story_pages) == len(set(assigned.values()))
    for href in re.findall(r'href="([^"#]+)"', index):
        if not href.startswith(("http://", "https://")):
            assert (tmp_path / "site" / href).resolve().exists(), href

    # A second run: every feed is re-fetched, nothing is stored twice, stories keep their ids.
    again = CliRunner().invoke(main, ["run", "--force", "-c", str(config)])
    assert again.exit_code == 0, again.output
    assert "new items: 0" in again.output
    assert "stories: unchanged" in again.output  # same items: no regrouping, no model load
    assert "(unchanged)" in again.output  # same digest: the site is not rewritten
    # Regrouping the same items keeps every story id.
    regrouped = CliRunner().invoke(main, ["cluster", "--force", "-c", str(config)])
    assert regrouped.exit_code == 0, regrouped.output
    assert "0 new" in regrouped.output
    assert stories_by_item(db) == assigned
    with Store.open(db) as store:
        assert store.count_items() == len(items) + 1


def test_every_feed_failing_exits_1(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.route("/broken.xml", status=500)
    config = write_config(tmp_path, {}, [feed_server.url("/broken.xml")])
    result = CliRunner().invoke(main, ["poll", "-c", str(config)])
    assert result.exit_code == 1
    assert "1 failed" in result.output
