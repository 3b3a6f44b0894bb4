"""Coverage by the user's tags: the `coverage:` setting, each story's outlets per value, the
day's blind spots, stories that run for several days, and the same figures in the email."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config import ConfigError, CoverageDimension, FeedConfig, load_config
from aggregator.coverage import blind_spots, coverage_spec, story_coverage
from aggregator.emailer import render_email
from aggregator.feedvalue import FeedValue
from aggregator.models import Digest
from aggregator.site import build_site
from tests.support.coverage import (
    BRIDGE_ID,
    FIRST_DAY,
    coverage_digests,
    news_story,
    report,
    spec,
)
from tests.support.digests import TODAY, at, email_settings, site_settings

# ---------------------------------------------------------------- the `coverage:` setting

TAGGED = """\
coverage:
  lean: [left, center, right]
  region: [uk, us]
  kind: []
feeds:
  - url: https://a.example/feed
    tags: [left, uk]
  - url: https://b.example/feed
    tags: [Right, us]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_coverage_setting_loads_and_warns_about_a_tag_no_feed_carries(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TAGGED))
    assert config.coverage == (
        CoverageDimension("lean", ("left", "center", "right")),
        CoverageDimension("region", ("uk", "us")),
    )
    # "right" matches the feed's "Right": tags compare ignoring case; only "center" is missing
    assert len(config.warnings) == 1
    warning = config.warnings[0]
    assert f"{tmp_path / 'feeds.yaml'}:2: coverage.lean: no feed carries the tag 'center'" in (
        warning
    )
    assert "add the tag to a feed's `tags:`" in warning and "\n" not in warning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("coverage: [lean]\nfeeds: []\n", "coverage: must be a mapping of dimension to tags"),
        ("coverage:\n  lean: left\nfeeds: []\n", "coverage.lean: must be a list of feed tags"),
        ("coverage:\n  lean: [left, 3]\nfeeds: []\n", "coverage.lean: must be a list"),
        ("coverage:\n  lean: [left, Left]\nfeeds: []\n", "coverage.lean: lists 'Left' twice"),
        ("coverage:\n  5: [a, b]\nfeeds: []\n", "is not a dimension name"),
    ],
)
def test_bad_coverage_names_file_entry_and_fix(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert expected in message and str(path) in message and "\n" not in message


@pytest.mark.parametrize("command", [["feeds", "list"], ["feeds", "value"], ["build"]])
def test_the_cli_prints_the_warning_once_and_carries_on(tmp_path: Path, command) -> None:
    path = write(tmp_path, TAGGED)
    result = CliRunner().invoke(main, [*command, "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning:") == 1
    assert "coverage.lean: no feed carries the tag 'center'" in result.stderr


# ---------------------------------------------------------------- the pure functions


def test_story_coverage_counts_outlets_per_value_and_leaves_out_untagged_dimensions() -> None:
    feeds = [
        FeedConfig("https://a/", tags=("left", "uk")),
        FeedConfig("https://a2/", tags=("left",)),
        FeedConfig("https://b/", tags=("right",)),
        FeedConfig("https://c/"),
    ]
    dimensions = [
        CoverageDimension("lean", ("left", "right")),
        CoverageDimension("region", ("uk", "us")),
        CoverageDimension("kind", ("wire",)),  # no feed carries it: dropped
    ]
    found = coverage_spec(dimensions, feeds)
    assert [d.name for d in found.dimensions] == ["lean", "region"]
    assert found.dimensions[1].values == ("uk",)  # "us": no feed has it, so no empty slot
    # Outlet A through two feeds counts once; C is untagged; region shows for A only
    members = [("A", "https://a/"), ("A", "https://a2/"), ("B", "https://b/"), ("C", "https://c/")]
    assert story_coverage(members, found) == {"lean": {"left": 1, "right": 1}, "region": {"uk": 1}}
    assert story_coverage([("C", "https://c/"), ("D", "https://d/")], found) == {}


def test_blind_spots_need_several_outlets_and_feeds_on_the_other_side() -> None:
    found = spec()
    stories = [
        {"lean": {"left": 2, "center": 0, "right": 0}},  # blind spot
        {"lean": {"left": 1, "center": 0, "right": 0}},  # one outlet: no
        {"lean": {"left": 1, "center": 0, "right": 2}},  # two sides: no
        {},  # untagged: no
    ]
    spots = blind_spots(stories, found)
    assert list(spots) == ["lean"]
    assert [(s.story, s.covered_by, s.missing, s.outlets) for s in spots["lean"]] == [
        (0, "left", ("center", "right"), 2)
    ]


def test_untagged_outlets_do_not_make_a_story_one_sided(tmp_path: Path) -> None:
    """One tagged outlet and any number of untagged ones is no blind spot: nothing is known
    about the others' side. Two tagged outlets on one side are."""
    day = coverage_digests()[0].day
    lone_tagged = news_story(
        "fair-tagged",
        "Fair opens with one tagged outlet",
        (
            report("Left UK", "Fair", day, 5),
            report("Plain Post", "Fair", day, 6),
            report("Plain Daily", "Fair", day, 7),
        ),
    )
    two_tagged = news_story(
        "tax-two",
        "Tax vote with two tagged outlets",
        (
            report("Left UK", "Tax", day, 5),
            report("Left US", "Tax", day, 6),
            report("Plain Post", "Tax", day, 7),
        ),
    )
    digest = Digest(day=day, generated_at=at(day, 18), stories=(lone_tagged, two_tagged))
    output = tmp_path / "out"
    build_site(output, [digest], site_settings(), coverage=spec())
    spots = page(output, "index.html").xpath("//section[@class='blind-spots']//li")
    texts = [" ".join(li.text_content().split()) for li in spots]
    assert not [t for t in texts if "one tagged outlet" in t], texts
    assert any("two tagged outlets only left (2 outlets)" in t for t in texts), texts


# ---------------------------------------------------------------- on the site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("coverage") / "output"
    build_site(output, coverage_digests(), site_settings(), coverage=spec())
    return output


def page(site: Path, path: str) -> lxml.html.HtmlElement:
    return lxml.html.parse(str(site / path)).getroot()


def test_stories_json_carries_coverage_per_dimension(site: Path) -> None:
    stories = {s["id"]: s for s in json.loads((site / "stories.json").read_text())["stories"]}
    assert stories["tax-cut"]["coverage"] == {
        "lean": {"left": 2, "center": 0, "right": 0},
        "region": {"uk": 1, "us": 1, "world": 0},
    }
    assert stories["flood"]["coverage"]["region"] == {"uk": 2, "us": 0, "world": 0}
    assert stories["untagged"]["coverage"] == {}  # untagged outlets: left out quietly
    assert "format" not in json.dumps(stories)  # a dimension no feed carries never shows


def test_story_cards_show_a_bar_per_dimension(site: Path) -> None:
    doc = page(site, "index.html")
    card = doc.xpath("//li[@id='story-tax-cut']")[0]
    bars = card.xpath(".//div[@class='coverage-row']")
    assert [b.xpath("string(span[@class='coverage-dim'])") for b in bars] == ["lean", "region"]
    lean = bars[0].xpath(".//svg")[0]
    assert lean.get("aria-label") == "Coverage by lean: left 2 outlets, center 0 outlets, " + (
        "right 0 outlets"
    )
    assert lean.xpath("string(title)") == lean.get("aria-label")
    # one full-width segment: only the left covered it
    assert [(r.get("x"), r.get("width")) for r in lean.xpath("rect[not(@class='track')]")] == [
        ("0.0", "100.0")
    ]
    untagged = doc.xpath("//li[@id='story-untagged']")[0]
    assert not untagged.xpath(".//div[@class='coverage']")


def test_the_day_page_lists_blind_spots_per_dimension(site: Path) -> None:
    doc = page(site, f"{TODAY:%Y/%m/%d}/index.html")
    sections = doc.xpath("//section[@class='blind-spots']/section")
    assert [s.get("id") for s in sections] == ["blind-spots-lean", "blind-spots-region"]
    lean = [" ".join(li.text_content().split()) for li in sections[0].xpath(".//li")]
    assert lean == ["Tax cut passes first vote only left (2 outlets) · none from center, right"]
    region = sections[1].xpath(".//li/a")
    assert [(a.text, a.get("href")) for a in region] == [
        ("River floods town centre", "../../../stories/flood.html")
    ]
    # the lone report (one outlet) and the untagged story are no blind spots
    text = sections[0].getparent().text_content()
    assert "Lone report" not in text and "Fair opens" not in text


def test_a_three_day_story_keeps_its_page_and_shows_day_3_and_its_timeline(site: Path) -> None:
    doc = page(site, f"stories/{BRIDGE_ID}.html")
    assert "Day 3" in doc.xpath("string(//p[@class='eyebrow'])")
    assert doc.xpath("string(//h2[@id='timeline'])") == "Timeline: day 3"
    # every day's reports, each once (the overlap between the days' windows is not doubled)
    assert len(doc.xpath("//ol[@class='items']/li")) == 5
    svg = doc.xpath("//figure[@class='timeline']/svg")[0]
    assert svg.get("role") == "img" and "Reports per day: 5 reports" in svg.get("aria-label")
    columns = svg.xpath("rect[contains(@class, 'col')]")
    assert [c.get("height") for c in columns] == ["20.0", "40.0", "40.0"]  # 1, 2, 2 reports
    joins = [
        (li.xpath("string(time)"), [a.text for a in li.xpath(".//a")])
        for li in doc.xpath("//ol[@class='joins']/li")
    ]
    assert joins == [
        ("26 Nov 2026", ["Left UK"]),
        ("27 Nov 2026", ["Right UK", "Centre World"]),
        ("28 Nov 2026", ["Right US"]),
    ]
    # the story page's coverage spans all three days
    lean = doc.xpath("//div[@class='coverage-row']//svg")[0].get("aria-label")
    assert lean == "Coverage by lean: left 1 outlet, center 1 outlet, right 2 outlets"


def test_the_day_page_marks_developing_stories_and_links_them(site: Path) -> None:
    today = page(site, f"{TODAY:%Y/%m/%d}/index.html")
    marks = today.xpath("//a[@class='developing']")
    assert [(" ".join(a.text_content().split()), a.get("href")) for a in marks] == [
        ("Day 3 developing since 26 Nov 2026", f"../../../stories/{BRIDGE_ID}.html")
    ]
    first = page(site, f"{FIRST_DAY:%Y/%m/%d}/index.html")
    assert not first.xpath("//a[@class='developing']")


def test_a_story_seen_on_one_day_only_has_no_day_count(tmp_path: Path) -> None:
    outlets = ("Right UK", "Left UK", "Plain Post")
    reports = tuple(report(o, f"Flood {n}", TODAY, 6 + n) for n, o in enumerate(outlets))
    story = news_story("flood", "River floods town centre", reports)
    digest = Digest(day=TODAY, generated_at=at(TODAY, 18), stories=(story,))
    build_site(tmp_path / "output", [digest], site_settings())
    doc = page(tmp_path / "output", "stories/flood.html")
    assert "Day" not in doc.xpath("string(//p[@class='eyebrow'])")
    assert doc.xpath("string(//h2[@id='timeline'])") == "Timeline"
    svg = doc.xpath("//figure[@class='timeline']/svg")[0]
    assert "Reports per hour" in svg.get("aria-label")


def test_two_reports_of_one_day_get_no_timeline_and_two_days_do(site: Path) -> None:
    """Two bars say no more than the coverage list; a story of several days keeps its chart
    (and the day it is on), however few its reports."""
    flood = page(site, "stories/flood.html")
    assert len(flood.xpath("//ol[@class='items']/li")) == 2
    assert not flood.xpath("//h2[@id='timeline']") and not flood.xpath("//figure")
    assert page(site, f"stories/{BRIDGE_ID}.html").xpath("//figure[@class='timeline']/svg")


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_rebuilds_with_coverage_are_byte_identical(site: Path, tmp_path: Path) -> None:
    build_site(tmp_path / "again", coverage_digests(), site_settings(), coverage=spec())
    assert snapshot(tmp_path / "again") == snapshot(site)
    # and with feed value on the outlets page
    values = [
        FeedValue("https://left-uk.example/feed", "Left UK", 5, 4, 2, 1, 0, 7.5, 0),
        FeedValue("https://plain.example/feed", "Plain Post", 1, 1, 0, 0, 1, 30.0, 3),
    ]
    for folder in ("first", "second"):
        build_site(
            tmp_path / folder,
            coverage_digests(),
            site_settings(),
            coverage=spec(),
            feed_values=values,
        )
    assert snapshot(tmp_path / "first") == snapshot(tmp_path / "second")
    assert b"median 8 min behind" in (tmp_path / "first" / "outlets" / "index.html").read_bytes()


# ---------------------------------------------------------------- in the email


def test_the_email_gives_the_same_figures_as_text() -> None:
    today, *earlier = coverage_digests()
    message = render_email(
        today, email_settings(), site_settings(), earlier=earlier, coverage=spec()
    )
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "   lean: left 2 · center 0 · right 0\n   region: uk 1 · us 1 · world 0\n" in text
    assert "   Day 3: developing since 26 Nov 2026\n" in text
    # the timeline as text: reports per day, and who joined when
    assert (
        "   Reports: 26 Nov: 1 report (Left UK) · 27 Nov: 2 (+Right UK, Centre\n"
        "   World) · 28 Nov: 2 (+Right US)\n"
    ) in text
    assert " - lean, only left: Tax cut passes first vote\n" in text
    assert " - region, only uk: River floods town centre\n" in text
    doc = lxml.html.fromstring(html)
    assert "<svg" not in html  # mail clients drop SVG: figures as text
    figures = [" ".join(p.text_content().split()) for p in doc.xpath("//p[@class='coverage']")]
    assert "lean left 2 · center 0 · right 0" in figures
    assert "Day 3" in doc.text_content() and "Blind spots" in doc.text_content()
    timelines = [
        " ".join(p.text_content().split()) for p in doc.xpath("//p[contains(@class, 'timeline')]")
    ]
    assert timelines == [
        "Reports: 26 Nov: 1 report (Left UK) · 27 Nov: 2 (+Right UK, Centre World) · 28 Nov: 2 (+Right US)"
    ]


def test_a_users_own_macros_from_before_coverage_still_build(tmp_path: Path) -> None:
    """The new fragments live in insights.html, so an overridden macros.html without them
    keeps working: the story page still shows its timeline, the cards just lack the bars."""
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "macros.html").write_text(
        "{% macro external(href, text, class='') %}{{ text }}{% endmacro %}"
        "{% macro status_badge(status) %}{% endmacro %}"
        "{% macro keywords(words) %}{% endmacro %}"
        "{% macro digest_body(digest, root) %}{% for s in digest.stories %}"
        "<h3>{{ s.headline }}</h3>{% endfor %}{% endmacro %}"
        "{% macro digest_summary(digest) %}{% endmacro %}"
    )
    output = tmp_path / "out"
    build_site(output, coverage_digests(), site_settings(), templates_dir=mine, coverage=spec())
    story = (output / "stories" / f"{BRIDGE_ID}.html").read_text()
    assert 'class="chart timeline-chart"' in story
    assert "coverage-row" not in (output / "index.html").read_text()


# ---------------------------------------------------------------- "day N"


def late_found_story() -> list[Digest]:
    """A story in the digests of 27 and 28 Nov whose first report is from 26 Nov, 23:30 UTC
    (already 27 Nov in Berlin); newest first."""
    first = report("Left UK", "Bridge crack found", FIRST_DAY, 23, 30)
    later = report("Right UK", "Bridge closed", TODAY, 9)
    yesterday = TODAY - timedelta(days=1)
    return [
        Digest(TODAY, at(TODAY, 18), (news_story("late", "Bridge", (first, later)),)),
        Digest(yesterday, at(yesterday, 18), (news_story("late", "Bridge", (first,)),)),
    ]


@pytest.mark.parametrize(
    ("timezone", "day_number", "since"),
    [("UTC", 3, "26 Nov 2026"), ("Europe/Berlin", 2, "27 Nov 2026")],
)
def test_day_n_counts_from_the_first_report_in_the_sites_time_zone(
    tmp_path: Path, timezone: str, day_number: int, since: str
) -> None:
    settings = site_settings(timezone=timezone)
    output = tmp_path / "out"
    build_site(output, late_found_story(), settings)
    mark = page(output, "index.html").xpath("//a[@class='developing']")[0]
    assert " ".join(mark.text_content().split()) == f"Day {day_number} developing since {since}"
    story = " ".join(page(output, "stories/late.html").text_content().split())
    assert f"Day {day_number}" in story and f"developing since {since}" in story
    today, *earlier = late_found_story()
    text = render_email(today, email_settings(), settings, earlier=earlier).get_body(("plain",))
    assert f"   Day {day_number}: developing since {since}\n" in text.get_content()


def test_a_story_in_one_digest_only_is_not_developing(tmp_path: Path) -> None:
    """Reports from last night in today's first digest of a story: no "day 2" mark."""
    today, _ = late_found_story()
    output = tmp_path / "out"
    build_site(output, [today], site_settings())
    assert not page(output, "index.html").xpath("//a[@class='developing']")
    assert "developing since" not in page(output, "stories/late.html").text_content()


def test_every_spelling_of_a_tag_becomes_one_at_config_load(tmp_path: Path) -> None:
    """Coverage matched `left`/`LEFT` while "By section" showed two sections: the config now
    gives each tag one spelling (the first in the file), so every consumer agrees."""
    path = write(
        tmp_path,
        "coverage:\n  lean: [Left, right]\nfeeds:\n"
        "  - url: https://a.example/feed\n    tags: [LEFT, uk, Uk]\n"
        "  - url: https://b.example/feed\n    tags: [left, UK]\n"
        "  - url: https://c.example/feed\n    tags: [RIGHT]\n",
    )
    config = load_config(path)
    assert [f.tags for f in config.feeds] == [("Left", "uk"), ("Left", "uk"), ("right",)]
    assert config.coverage[0].values == ("Left", "right")
    listed = CliRunner().invoke(main, ["feeds", "list", "--json", "-c", str(path)])
    assert [f["tags"] for f in json.loads(listed.output)] == [
        ["Left", "uk"],
        ["Left", "uk"],
        ["right"],
    ]


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("feeds:\n  - url: https://a.example/feed\n    tags: [2024]\n", "['2024']"),
        ("coverage:\n  year: [2024, 2025]\nfeeds: []\n", "['2024']"),
        ("feeds:\n  - url: https://a.example/feed\n    tags: [true]\n", "['true']"),
    ],
)
def test_a_numeric_tag_says_to_quote_it(tmp_path: Path, text: str, hint: str) -> None:
    result = CliRunner().invoke(main, ["feeds", "list", "-c", str(write(tmp_path, text))])
    assert result.exit_code == 2
    assert "quote numbers" in result.output and hint in result.output, result.output


def test_a_dimension_with_many_values_never_repeats_a_colour(tmp_path: Path) -> None:
    """Six tones: from the sixth value on, values share one "other" colour in bar and legend."""
    from aggregator.models import DigestItem, DigestStory

    values = tuple(f"v{n}" for n in range(8))
    feeds = [
        FeedConfig(f"https://f{n}.example/feed", f"Outlet {n}", (v,)) for n, v in enumerate(values)
    ]
    items = tuple(
        DigestItem(
            f"Report {n}",
            f"https://f{n}.example/1",
            f"Outlet {n}",
            at(TODAY, 5 + n),
            False,
            feed_url=f.url,
        )
        for n, f in enumerate(feeds)
    )
    story = DigestStory(
        "wide",
        "Wide story",
        items[0].link,
        (),
        items,
        items[0].published,
        items[-1].published,
        "new",
    )
    found = coverage_spec([CoverageDimension("many", values)], feeds)
    output = tmp_path / "out"
    build_site(output, [Digest(TODAY, at(TODAY, 18), (story,))], site_settings(), coverage=found)
    row = page(output, "index.html").xpath("//div[@class='coverage-row']")[0]
    tones = [r.get("class") for r in row.xpath(".//svg/rect[not(@class='track')]")]
    assert len(tones) == len(set(tones)) == 6, tones  # one segment per colour, "other" last
    swatches = [
        s.get("class").split()[-1] for s in row.xpath(".//span[contains(@class, 'swatch')]")
    ]
    assert swatches == [
        "tone-0",
        "tone-1",
        "tone-2",
        "tone-3",
        "tone-4",
        "tone-5",
        "tone-5",
        "tone-5",
    ]
    assert "v7 1 outlet" in row.xpath("string(.//svg/title)")  # the title still names every value
