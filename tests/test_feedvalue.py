"""Feed value on a hand-built store (a real SQLite file): every figure checked by hand, in the
CLI (`aggregator feeds value`) and on the site's outlets page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from aggregator import pipeline
from aggregator.cli import main
from aggregator.config import load_config
from aggregator.digest import digest_to_dict, make_digest
from aggregator.feedvalue import JSON_KEYS, feed_values
from aggregator.models import (
    ParsedEntry,
    Story,
    StoryItemRecord,
    StoryMember,
)
from aggregator.store import Store
from tests.support.stored import failed, polled, record

# the CLI looks back from the real clock, so the store is built around it
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
FEEDS = {
    "https://a.example/feed": "Alpha",
    "https://b.example/feed": "Bravo",
    "https://c.example/feed": "Charlie",
    "https://d.example/feed": "Delta",  # never posts
    "https://e.example/feed": "Echo",  # fails
}
A, B, C, D, E = FEEDS


def minutes(n: int) -> datetime:
    return NOW - timedelta(hours=6) + timedelta(minutes=n)


# (feed, key, minutes after the start, story, the key of the item it copies)
ITEMS = [
    (A, "a-old", -40 * 24 * 60, "s0", None),  # 40 days ago: outside the 30 days
    (A, "a1", 60, "s1", None),  # first on s1
    (B, "b1", 90, "s1", "a1"),  # copies A's report, 30 min behind
    (C, "c1", 180, "s1", None),  # 120 min behind
    (C, "c1-again", 185, "s1", "c1"),  # repeats its own report: no copy of another outlet
    (B, "b2", 120, "s2", None),  # first on s2
    (A, "a2", 130, "s2", None),  # 10 min behind
    (C, "c3", 0, "s3", None),  # alone on s3
    (A, "a4", 240, "s4", None),  # alone on s4
]


def build_store(path: Path) -> list[Story]:
    with Store.open(path) as store:
        for url, name in FEEDS.items():
            if url == E:
                record(store, failed(url, NOW, in_a_row=2), name)
                continue
            entries = tuple(
                ParsedEntry(
                    guid=key,
                    link=f"https://{name.lower()}.example/news/{key}",
                    title=f"Report {key}",
                    summary="",
                    published=minutes(at),
                )
                for feed, key, at, _story, _copy in ITEMS
                if feed == url
            )
            record(store, polled(url, entries, NOW), name)
        items = {i.title.removeprefix("Report "): i for i in store.items_since(minutes(-(10**6)))}
        stories = []
        for story_id in sorted({row[3] for row in ITEMS}):
            rows = [row for row in ITEMS if row[3] == story_id]
            members = tuple(
                StoryMember(items[key], items[copy].id if copy else None)
                for _feed, key, _at, _story, copy in rows
            )
            stories.append(Story(story_id, members[0].item.id, members))
        store.save_stories(stories)
    return stories


@pytest.fixture
def config(tmp_path: Path) -> Path:
    lines = ["database: news.db", "output: site", "feeds:"]
    for url, name in FEEDS.items():
        lines += [f"  - url: {url}", f"    name: {name}"]
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n")
    build_store(tmp_path / "news.db")
    return path


EXPECTED = [  # the feeds that add least first
    {"name": "Delta", "items": 0, "stories": 0, "first_reports": 0, "exclusives": 0,
     "copies": 0, "median_delay_minutes": None, "errors": 0},
    {"name": "Echo", "items": 0, "stories": 0, "first_reports": 0, "exclusives": 0,
     "copies": 0, "median_delay_minutes": None, "errors": 2},
    {"name": "Bravo", "items": 2, "stories": 2, "first_reports": 1, "exclusives": 0,
     "copies": 1, "median_delay_minutes": 15.0, "errors": 0},
    {"name": "Charlie", "items": 3, "stories": 2, "first_reports": 0, "exclusives": 1,
     "copies": 0, "median_delay_minutes": 120.0, "errors": 0},
    {"name": "Alpha", "items": 3, "stories": 3, "first_reports": 1, "exclusives": 1,
     "copies": 0, "median_delay_minutes": 5.0, "errors": 0},
]  # fmt: skip


def test_value_figures_from_a_hand_built_store(config: Path) -> None:
    loaded = load_config(config)
    with Store.open(loaded.database) as store:
        values = pipeline.feed_values(loaded, store, as_of=NOW, days=30)
    found = [{k: v for k, v in value.as_dict().items() if k != "url"} for value in values]
    assert found == EXPECTED
    assert [v.url for v in values] == [D, E, B, C, A]


def test_a_shorter_window_drops_older_items(config: Path) -> None:
    loaded = load_config(config)
    with Store.open(loaded.database) as store:
        values = pipeline.feed_values(loaded, store, as_of=NOW, days=4.5 / 24)
    charlie = next(v for v in values if v.name == "Charlie")
    assert (charlie.items, charlie.stories, charlie.exclusives) == (2, 1, 0)  # c3 at 6 h ago: out


def test_a_feed_without_a_name_is_named_as_its_items_were_stored_with_none_in_the_period(
    config: Path,
) -> None:
    """feeds.yaml gives Alpha no name: with no item of Alpha's in the last hour, `feeds value
    --days` named it by its URL, where `feeds status` and the store say "Alpha"."""
    config.write_text(config.read_text().replace("    name: Alpha\n", ""))
    loaded = load_config(config)
    with Store.open(loaded.database) as store:
        hour = pipeline.feed_values(loaded, store, as_of=NOW, days=1 / 24)
        month = pipeline.feed_values(loaded, store, as_of=NOW, days=30)
    assert {v.url: v.name for v in hour}[A] == {v.url: v.name for v in month}[A] == "Alpha"


def test_a_story_broken_before_the_window_is_no_first_report_of_a_feed_that_went_on(
    config: Path,
) -> None:
    """The window starts after Alpha broke s1 (minute 60) and before Bravo's copy (90) and
    Charlie's report (180): Charlie's is no first report, and it came 120 minutes behind;
    Alpha's report counts for Alpha no more (it is not in the window)."""
    loaded = load_config(config)
    with Store.open(loaded.database) as store:
        values = {
            v.name: v for v in pipeline.feed_values(loaded, store, as_of=NOW, days=285 / 1440)
        }
    charlie, alpha = values["Charlie"], values["Alpha"]
    assert (charlie.first_reports, charlie.exclusives, charlie.median_delay_minutes) == (
        0,
        0,
        120.0,
    )
    assert (alpha.items, alpha.stories, alpha.first_reports, alpha.exclusives) == (2, 2, 0, 1)


def test_feeds_value_json_has_exactly_the_documented_keys(config: Path) -> None:
    result = CliRunner().invoke(main, ["feeds", "value", "--json", "-c", str(config)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert all(tuple(row) == JSON_KEYS for row in data)
    assert JSON_KEYS == (
        "url", "name", "items", "stories", "first_reports", "exclusives", "copies",
        "median_delay_minutes", "errors",
    )  # fmt: skip
    assert [{k: v for k, v in row.items() if k != "url"} for row in data] == EXPECTED


def test_feeds_value_table_lists_least_adding_first(config: Path) -> None:
    result = CliRunner().invoke(main, ["feeds", "value", "--days", "30", "-c", str(config)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ITEMS", "STORIES", "FIRST", "EXCLUSIVE", "COPIES", "DELAY", "ERRORS", "FEED",
    ]  # fmt: skip
    assert [line.split()[-1] for line in lines[1:6]] == [
        "Delta",
        "Echo",
        "Bravo",
        "Charlie",
        "Alpha",
    ]
    assert lines[3].split() == ["2", "2", "1", "0", "1", "15", "min", "0", "Bravo"]
    assert "least come first" in lines[-1]


def test_two_feeds_of_one_name_are_told_apart_in_the_tables(config: Path) -> None:
    """Two feeds of one outlet, both named "Metro": `feeds value` and `feeds status` showed
    two rows "Metro" and no way to tell which was which (only --json has the URLs)."""
    text = config.read_text().replace("name: Bravo", "name: Metro")
    config.write_text(text.replace("name: Charlie", "name: METRO"))
    for command in ("value", "status"):
        result = CliRunner().invoke(main, ["feeds", command, "-c", str(config)])
        assert result.exit_code == 0, result.output
        assert "Metro (https://b.example/feed)" in result.stdout, result.stdout
        assert "METRO (https://c.example/feed)" in result.stdout
        assert "Alpha (" not in result.stdout


def test_feeds_value_without_a_database_lists_every_feed_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("database: none.db\nfeeds:\n  - url: https://a.example/feed\n")
    result = CliRunner().invoke(main, ["feeds", "value", "--json", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["items"] == 0
    assert not (tmp_path / "none.db").exists()


def test_the_outlets_page_shows_each_feeds_value(config: Path) -> None:
    loaded = load_config(config)
    with Store.open(loaded.database) as store:
        stories = build_store_stories(store)
        digest = make_digest(stories, NOW.date(), NOW)
        store.save_digest(NOW.date().isoformat(), NOW, digest_to_dict(digest))
        pipeline.build(loaded, store)
    doc = lxml.html.parse(str(loaded.output / "outlets/index.html")).getroot()
    rows = doc.xpath("//ol[@class='values']/li")
    assert [r.xpath("string(p[@class='value-name'])").split()[0] for r in rows] == [
        "Delta", "Echo", "Bravo", "Charlie", "Alpha",
    ]  # fmt: skip
    assert "failing" in rows[1].text_content()  # the count is in `feeds value`
    bravo = " ".join(rows[2].xpath("string(p[contains(@class, 'value-figures')])").split())
    assert bravo == (
        "2 items · 2 stories · 1 first · 0 exclusives · 1 copy · "
        "median 15 min behind the first report"
    )
    alpha = rows[4].xpath(".//svg")[0]
    assert alpha.get("aria-label") == "Alpha: 1 first, 1 exclusive, 1 joined later"
    widths = [r.get("width") for r in alpha.xpath("rect[not(@class='track')]")]
    assert widths == ["33.33", "33.33", "33.33"]  # Alpha's 3 stories fill the shared scale
    assert rows[2].xpath("p/a")[0].get("href") == "../outlets/bravo.html"  # its outlet page


def build_store_stories(store: Store) -> list[Story]:
    """The stories as saved, read back through the store's items (for a digest)."""
    items = {i.id: i for i in store.items_since(minutes(-(10**6)))}
    assignments = store.story_assignments(list(items))
    by_story: dict[str, list] = {}
    for item_id, story_id in sorted(assignments.items()):
        by_story.setdefault(story_id, []).append(StoryMember(items[item_id]))
    return [Story(sid, members[0].item.id, tuple(members)) for sid, members in by_story.items()]


def test_feed_values_are_pure_over_records() -> None:
    assert feed_values([], [("https://x/", None)])[0].name == "https://x/"


def test_a_syndicated_copy_with_the_originals_timestamp_is_no_first_report() -> None:
    """Wire copies often carry the original's exact time: only the original is first."""
    at = minutes(0)
    records = [
        StoryItemRecord(1, A, "Alpha", at, "s1"),
        StoryItemRecord(2, B, "Bravo", at, "s1", copy_of_outlet="Alpha"),  # same second
        StoryItemRecord(3, C, "Charlie", at + timedelta(minutes=30), "s1"),
        # a copy stamped before its original still takes no first-report credit
        StoryItemRecord(4, B, "Bravo", at - timedelta(minutes=5), "s2", copy_of_outlet="Alpha"),
        StoryItemRecord(5, A, "Alpha", at, "s2"),
    ]
    values = {v.name: v for v in feed_values(records, [(A, "Alpha"), (B, "Bravo"), (C, "Charlie")])}
    assert (values["Alpha"].first_reports, values["Alpha"].median_delay_minutes) == (2, 0.0)
    assert (values["Bravo"].first_reports, values["Bravo"].copies) == (0, 2)
    assert values["Bravo"].median_delay_minutes == 0.0
    assert (values["Charlie"].first_reports, values["Charlie"].median_delay_minutes) == (0, 30.0)


@pytest.mark.parametrize("days", ["nan", "inf", "-inf", "1e9", "800000", "0", "-2", "ten"])
def test_feeds_value_refuses_days_out_of_range_in_one_line(config: Path, days: str) -> None:
    result = CliRunner().invoke(main, ["feeds", "value", "--days", days, "-c", str(config)])
    assert result.exit_code == 2, result.output  # a usage error, not a crash
    assert "Traceback" not in result.output
    assert "Invalid value for '--days'" in result.output
    assert "up to 3650" in result.output or "not a number of days" in result.output


def test_feeds_value_accepts_up_to_ten_years(config: Path) -> None:
    result = CliRunner().invoke(main, ["feeds", "value", "--days", "3650", "-c", str(config)])
    assert result.exit_code == 0, result.output


def test_the_email_names_the_feeds_that_added_least(config: Path, tmp_path: Path) -> None:
    """`aggregator email` ends with a plain-text "Your feeds" footer: the three feeds that
    added least over the site's 30 days, with their figures (issue 15: figures as text)."""
    import email
    from email import policy

    from aggregator.models import Digest, DigestItem, DigestStory

    item = DigestItem("Report a1", "https://alpha.example/news/a1", "Alpha", minutes(60), False)
    story = DigestStory(
        "s1", "Report a1", item.link, (), (item,), item.published, item.published, "new"
    )
    digest = Digest(day=NOW.date(), generated_at=NOW, stories=(story,))
    with Store.open(tmp_path / "news.db") as store:
        store.save_digest(NOW.date().isoformat(), NOW, digest_to_dict(digest))
    target = tmp_path / "day.eml"
    result = CliRunner().invoke(main, ["email", "--to-file", str(target), "-c", str(config)])
    assert result.exit_code == 0, result.output
    message = email.message_from_bytes(target.read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    assert (
        "Your feeds (last 30 days), the 3 of 5 that added least:\n"
        " - Delta: 0 items in 0 stories\n"
        " - Echo: 0 items in 0 stories, 2 failed fetches in a row\n"
        " - Bravo: 2 items in 2 stories, 1 first, 1 copy, 15 min behind\n"
    ) in text
    html = lxml.html.fromstring(message.get_body(("html",)).get_content()).text_content()
    assert "Your feeds" in html and "Bravo: 2 items in 2 stories, 1 first, 1 copy" in html


def test_the_outlets_page_and_email_never_show_a_feeds_query_string(
    config: Path, tmp_path: Path
) -> None:
    """An unnamed feed that never delivered is named by its URL on the public outlets page
    and in the email's "Your feeds" (where the feeds that added least, such a feed first, are
    listed; it showed the whole URL there): scheme, host and path only, never the query
    (private tokens) or user info."""
    secret = "https://reader:pw@private.example/feed.xml?token=SECRET123#frag"
    config.write_text(config.read_text() + f"  - url: '{secret}'\n")
    loaded = load_config(config)
    url = loaded.feeds[-1].url
    with Store.open(loaded.database) as store:
        record(store, failed(url, NOW, in_a_row=2), None)
        digest = make_digest(build_store_stories(store), NOW.date(), NOW)
        store.save_digest(NOW.date().isoformat(), NOW, digest_to_dict(digest))
        pipeline.build(loaded, store)
    page = (loaded.output / "outlets/index.html").read_text()
    assert "https://private.example/feed.xml" in page
    assert "SECRET123" not in page and "reader" not in page and "frag" not in page
    target = tmp_path / "day.eml"
    result = CliRunner().invoke(main, ["email", "--to-file", str(target), "-c", str(config)])
    assert result.exit_code == 0, result.output
    message = target.read_text()
    assert "https://private.example/feed.xml: 0 items" in message
    assert "SECRET123" not in message and "reader:" not in message and "frag" not in message


# ---------------------------------------------------------------- how delays and long lists read


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (0.0, "0 min"),
        (0.3, "under 1 min"),
        (7.5, "8 min"),
        (45, "45 min"),
        (59.6, "1 h"),  # never "60 min"
        (89, "1.5 h"),
        (120.5, "2 h"),
        (427.2, "7.1 h"),
        (1039.7, "17 h"),
        (1082, "18 h"),
        (2851, "2 days"),  # never "48 h"
        (3600, "2.5 days"),
        (20000, "14 days"),
    ],
)
def test_delays_read_in_minutes_hours_or_days(minutes: float, text: str) -> None:
    from aggregator.feedvalue import delay_text

    assert delay_text(minutes) == text


def test_the_outlets_page_and_the_email_say_long_delays_in_hours_and_days(tmp_path: Path) -> None:
    """ "median 1082 min behind" made the reader do the sum: the site and the email's "Your
    feeds" lines say "18 h", through the same function."""
    from aggregator.emailer import feed_value_text
    from aggregator.feedvalue import FeedValue
    from aggregator.site import build_site
    from tests.support.digests import realistic_digests, site_settings

    values = [
        FeedValue("https://slow.example/feed", "Slow Post", 1, 1, 0, 0, 1, 1082.0, 0),
        FeedValue("https://late.example/feed", "Late Times", 2, 2, 0, 0, 0, 3600.0, 0),
    ]
    build_site(tmp_path / "out", realistic_digests(1), site_settings(), feed_values=values)
    doc = lxml.html.parse(str(tmp_path / "out" / "outlets" / "index.html")).getroot()
    figures = [
        " ".join(p.text_content().split())
        for p in doc.xpath("//p[contains(@class, 'value-figures')]")
    ]
    assert figures[0].endswith("· median 18 h behind the first report")
    assert figures[1].endswith("· median 2.5 days behind the first report")
    assert feed_value_text(values[0]) == "Slow Post: 1 item in 1 story, 1 copy, 18 h behind"


def test_the_outlets_page_shows_the_15_weakest_feeds_and_folds_the_rest(tmp_path: Path) -> None:
    """268 feed rows came before the list of outlets: the 15 that add least are shown, the
    others wait in a <details>, and "All outlets" follows."""
    from aggregator.feedvalue import FeedValue
    from aggregator.site import build_site
    from tests.support.digests import realistic_digests, site_settings

    values = [
        FeedValue(f"https://f{n:02d}.example/feed", f"Feed {n:02d}", n, n, 0, 0, 0, None, 0)
        for n in range(20)
    ]
    build_site(tmp_path / "out", realistic_digests(1), site_settings(), feed_values=values)
    doc = lxml.html.parse(str(tmp_path / "out" / "outlets" / "index.html")).getroot()
    section = doc.xpath("//section[@class='feed-value']")[0]

    def names(rows: list) -> list[str]:
        return [r.xpath("string(p[@class='value-name'])") for r in rows]

    assert names(section.xpath("ol[@class='values']/li")) == [f"Feed {n:02d}" for n in range(15)]
    folded = section.xpath("details")
    assert len(folded) == 1 and folded[0].get("open") is None
    assert " ".join(folded[0].xpath("string(summary)").split()) == "The other 5 feeds"
    assert names(folded[0].xpath("ol[@class='values']/li")) == [
        f"Feed {n:02d}" for n in range(15, 20)
    ]
    after = section.getnext()
    assert after.tag == "h2" and after.text_content() == "All outlets"
    assert after.getnext().get("class") == "outlet-list"
