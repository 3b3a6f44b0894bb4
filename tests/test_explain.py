"""Why items share a story: reasons stored with the story, shown in stories.json and on the story
page (as text), and the `aggregator explain` command, with the real embedding model."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.models import Digest, FetchOutcome, ParsedEntry, ParsedFeed
from aggregator.site import build_site, story_slug
from aggregator.store import Store
from tests.support.digests import item, site_settings, story
from tests.support.stored import record

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

PERTH = (
    "Magnitude 5.1 earthquake rattles Perth",
    "A magnitude 5.1 earthquake shook Perth on Tuesday morning, cracking walls in older homes in "
    "the city's eastern suburbs. Western Australia's emergency service said no one was hurt.",
)
PERTH_AGAIN = (
    "Perth shaken by rare 5.1 quake",
    "Residents of Perth were woken by a rare magnitude 5.1 tremor on Tuesday. Geoscience "
    "Australia said the quake was centred 40 km east of the city; minor damage was reported.",
)
CHILE = (
    "Strong 6.8 quake strikes off northern Chile",
    "A strong magnitude 6.8 earthquake struck off the coast of northern Chile near Antofagasta "
    "on Tuesday, swaying buildings and prompting a brief tsunami alert that was later lifted.",
)
FEEDS = {
    "https://coast.example/feed": ("Coastline Times", [PERTH]),
    "https://ledger.example/feed": ("Daily Ledger", [PERTH_AGAIN]),
    "https://wire.example/feed": ("Wire Service", [CHILE]),
    "https://copies.example/feed": ("Copy Desk", [PERTH]),  # the Coastline Times text, copied
}


def _outcome(url: str, texts: list[tuple[str, str]], n: int) -> FetchOutcome:
    entries = tuple(
        ParsedEntry(
            guid=f"{url}#{k}",
            link=f"{url.removesuffix('/feed')}/news/{n}-{k}",
            title=title,
            summary=summary,
            published=NOW - timedelta(hours=10 - n),  # feeds listed later publish later
        )
        for k, (title, summary) in enumerate(texts)
    )
    return FetchOutcome(
        url=url,
        status="ok",
        checked_at=NOW,
        next_due=NOW + timedelta(hours=1),
        http_status=200,
        fetch_url=url,
        feed=ParsedFeed(title=url, link=None, entries=entries),
    )


@pytest.fixture
def clustered(tmp_path: Path) -> Path:
    """A feeds.yaml whose database holds the quake reports, clustered by the CLI."""
    lines = ["database: news.db", "output: site", "window_hours: 100000", "feeds:"]
    lines += [f"  - url: {url}" for url in FEEDS]
    config = tmp_path / "feeds.yaml"
    config.write_text("\n".join(lines) + "\n")
    with Store.open(tmp_path / "news.db") as store:
        for n, (url, (outlet, texts)) in enumerate(FEEDS.items()):
            record(store, _outcome(url, texts, n), outlet)
    result = CliRunner().invoke(main, ["cluster", "-c", str(config)])
    assert result.exit_code == 0, result.output
    return config


def _story_rows(db: Path) -> dict[str, tuple[str, str]]:
    """Item title + outlet -> (story id, why)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT i.title, i.outlet, s.story_id, s.why FROM items i "
            "JOIN story_items s ON s.item_id = i.id"
        ).fetchall()
    return {f"{title} | {outlet}": (story_id, why) for title, outlet, story_id, why in rows}


@pytest.mark.model
def test_each_member_says_why_and_the_digest_carries_it(clustered: Path) -> None:
    rows = _story_rows(clustered.parent / "news.db")
    perth = rows[f"{PERTH[0]} | Coastline Times"]
    again = rows[f"{PERTH_AGAIN[0]} | Daily Ledger"]
    copy = rows[f"{PERTH[0]} | Copy Desk"]
    chile = rows[f"{CHILE[0]} | Wire Service"]
    assert perth[0] == again[0] == copy[0] != chile[0]
    assert copy[1] == "copy of the Coastline Times item"
    assert again[1].startswith("0.") and "similar to the" in again[1] and "Perth" in again[1]
    assert chile[1] == ""  # a story of one item needs no reason
    with Store.open(clustered.parent / "news.db") as store:
        payload = store.digests()[0]
    quake = next(s for s in payload["stories"] if s["id"] == perth[0])
    assert {i["why"] for i in quake["items"]} >= {"copy of the Coastline Times item"}
    alone = next(s for s in payload["stories"] if s["id"] == chile[0])
    assert alone["why_not"]  # the Perth story is its closest neighbour, and stayed apart


@pytest.mark.model
def test_explain_a_story_and_two_items_from_the_cli(clustered: Path) -> None:
    rows = _story_rows(clustered.parent / "news.db")
    story_id = rows[f"{PERTH[0]} | Coastline Times"][0]
    result = CliRunner().invoke(main, ["explain", story_id, "-c", str(clustered)])
    assert result.exit_code == 0, result.output
    assert f"story {story_id}: 3 items" in result.output
    assert "why: copy of the Coastline Times item" in result.output
    assert "closest other story: " + CHILE[0] in result.output
    assert "different stories" in result.output  # the verdict on the Chile story

    pair = CliRunner().invoke(
        main,
        [
            "explain",
            "https://coast.example/news/0-0",
            "https://wire.example/news/2-0",
            "-c",
            str(clustered),
        ],
    )
    assert pair.exit_code == 0, pair.output
    assert "different stories" in pair.output
    assert "against:" in pair.output and "cosine" in pair.output


def test_explain_reports_an_unknown_story_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("database: news.db\nfeeds:\n  - url: https://a.example/feed\n")
    result = CliRunner().invoke(main, ["explain", "s-nope", "-c", str(config)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "no story 's-nope'" in result.output


def test_reasons_are_shown_as_quiet_text_on_the_story_page_and_in_stories_json(
    tmp_path: Path,
) -> None:
    hostile = 'shares <script>alert(1)</script> "x" onload=1'
    day = NOW.date()
    items = (
        dataclasses.replace(item("Herald", "Bridge reopens", NOW), why=hostile),
        dataclasses.replace(
            item("Gazette", "Bridge open again", NOW), why="0.81 similar to the Herald item"
        ),
    )
    digest = Digest(
        day=day,
        generated_at=NOW,
        stories=(
            dataclasses.replace(story("s-bridge", "Bridge reopens", items), why_not="only 0.3"),
        ),
    )
    output = tmp_path / "out"
    build_site(output, [digest], site_settings())
    page = lxml.html.parse(str(output / "stories" / f"{story_slug('s-bridge')}.html")).getroot()
    whys = [p.text_content() for p in page.xpath('//p[@class="item-why"]')]
    # items show oldest first, then by outlet: the Gazette's item comes first
    assert whys == [
        "Grouped because: 0.81 similar to the Herald item",
        f"Grouped because: {hostile}",
    ]
    assert not page.xpath("//script")
    assert page.xpath('//p[@class="story-why-not"]')[0].text_content().endswith("only 0.3")
    data = json.loads((output / "stories.json").read_text("utf-8"))
    assert [i["why"] for i in data["stories"][0]["items"]] == [
        "0.81 similar to the Herald item",
        hostile,
    ]
    assert data["stories"][0]["why_not"] == "only 0.3"
