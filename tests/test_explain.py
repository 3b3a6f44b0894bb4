"""Why items share a story: reasons stored with the story, shown in stories.json and on the story
page (as text), and the `aggregator explain` command, with the real embedding model."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import numpy as np
import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.grouping.evidence import FEATURES, shipped_model
from aggregator.grouping.explain import (
    PairEvidence,
    Signal,
    closest_stories,
    explain_stories,
    features,
    pair_evidence,
    the_item,
)
from aggregator.grouping.text import batch_text
from aggregator.models import Digest, FetchOutcome, Item, ParsedEntry
from aggregator.site import build_site, story_slug
from aggregator.store import Store
from tests.support.digests import item, site_settings, story
from tests.support.stored import polled, record

SHIPPED_P = shipped_model().merge_probability  # the threshold the CLI prints

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
    """A poll of ``url``; a feed whose texts repeat lists the repeats under the first's link."""
    entries = tuple(
        ParsedEntry(
            guid=f"{url}#{k}",
            link=f"{url.removesuffix('/feed')}/news/{n}-{texts.index((title, summary))}",
            title=title,
            summary=summary,
            published=NOW - timedelta(hours=10 - n),  # feeds listed later publish later
        )
        for k, (title, summary) in enumerate(texts)
    )
    return polled(url, entries, NOW)


def _cluster(tmp_path: Path, feeds: dict[str, tuple[str, list[tuple[str, str]]]]) -> Path:
    """A feeds.yaml whose database holds ``feeds``' items, clustered by the CLI."""
    lines = ["database: news.db", "output: site", "window_hours: 100000", "feeds:"]
    lines += [f"  - url: {url}" for url in feeds]
    config = tmp_path / "feeds.yaml"
    config.write_text("\n".join(lines) + "\n")
    with Store.open(tmp_path / "news.db") as store:
        for n, (url, (outlet, texts)) in enumerate(feeds.items()):
            record(store, _outcome(url, texts, n), outlet)
    result = CliRunner().invoke(main, ["cluster", "-c", str(config)])
    assert result.exit_code == 0, result.output
    return config


@pytest.fixture
def clustered(tmp_path: Path) -> Path:
    """A feeds.yaml whose database holds the quake reports, clustered by the CLI."""
    return _cluster(tmp_path, FEEDS)


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
    assert "the evidence keeps them apart" in result.output  # the verdict on the Chile story

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
    assert "the evidence keeps them apart" in pair.output and "yet stored" not in pair.output
    assert "against:" in pair.output and "cosine" in pair.output


def test_explain_reports_an_unknown_story_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("database: news.db\nfeeds:\n  - url: https://a.example/feed\n")
    with Store.open(tmp_path / "news.db"):
        pass  # a database with no such story
    result = CliRunner().invoke(main, ["explain", "s-nope", "-c", str(config)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "no story 's-nope'" in result.output


@pytest.mark.model
def test_explain_a_story_that_merged_into_another_explains_that_one(clustered: Path) -> None:
    """A link to a merged story's page leads to the story that carries its reports; so does
    ``explain`` with its id."""
    story_id = _story_rows(clustered.parent / "news.db")[f"{PERTH[0]} | Coastline Times"][0]
    with sqlite3.connect(clustered.parent / "news.db") as connection:
        day, payload = connection.execute("SELECT day, payload FROM digests").fetchone()
        digest = json.loads(payload)
        digest["moved"] = {"s-0000000000": story_id}
        connection.execute(
            "UPDATE digests SET payload = ? WHERE day = ?", (json.dumps(digest), day)
        )
    result = CliRunner().invoke(main, ["explain", "s-0000000000", "-c", str(clustered)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"story s-0000000000 merged into {story_id}, which has")
    assert "why: copy of the Coastline Times item" in result.output
    unknown = CliRunner().invoke(main, ["explain", "s-1111111111", "-c", str(clustered)])
    assert unknown.exit_code == 2 and "no story 's-1111111111'" in unknown.output


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


# ---------------------------------------------------------------- the closest other story


def _digest_story(config: Path, story_id: str) -> dict:
    with Store.open(config.parent / "news.db") as store:
        return next(s for s in store.digests()[0]["stories"] if s["id"] == story_id)


@pytest.mark.model
def test_the_cli_names_the_closest_story_that_stories_json_and_the_page_name(
    clustered: Path,
) -> None:
    rows = _story_rows(clustered.parent / "news.db")
    perth, chile = rows[f"{PERTH[0]} | Coastline Times"][0], rows[f"{CHILE[0]} | Wire Service"][0]
    stored = _digest_story(clustered, chile)
    assert stored["why_not_story"] == perth and stored["why_not_headline"] in (
        PERTH[0],
        PERTH_AGAIN[0],
    )
    assert "p=" not in stored["why_not"]  # a reader has no threshold to read p against
    result = CliRunner().invoke(main, ["explain", chile, "-c", str(clustered)])
    assert result.exit_code == 0, result.output
    assert f"closest other story: {stored['why_not_headline']} ({perth})" in result.output
    assert f"  why not: {stored['why_not']}\n" in result.output
    assert f"joins from {SHIPPED_P:.2f}" in result.output  # the CLI keeps p, with its threshold

    assert CliRunner().invoke(main, ["build", "-c", str(clustered)]).exit_code == 0
    site = clustered.parent / "site"
    page = lxml.html.parse(str(site / "stories" / f"{story_slug(chile)}.html")).getroot()
    line = page.xpath('//p[@class="story-why-not"]')[0]
    assert line.text_content() == (
        f"Kept apart from {stored['why_not_headline']}: {stored['why_not']}"
    )
    assert line.xpath("a/@href") == [f"../stories/{story_slug(perth)}.html"]
    data = json.loads((site / "stories.json").read_text("utf-8"))
    listed = next(s for s in data["stories"] if s["id"] == chile)
    assert (listed["why_not"], listed["why_not_story"]) == (stored["why_not"], perth)


def test_a_story_with_no_other_story_near_enough_has_no_closest_story() -> None:
    unit = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0]])
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    far = np.vstack([unit, [[0.0, 0.0, 1.0]]])
    closest = closest_stories({"a": [0, 1], "b": [2], "c": [3], "far": [4]}, far)
    assert closest["a"] == "c" and closest["b"] == "c" and "far" not in closest


def test_the_closest_story_is_the_most_similar_on_average_the_measure_its_reason_shows() -> None:
    """A story of two items either side of a lone item has the nearest centre (cosine 1) but
    is only 0.5 similar to it on average; a single item 0.7 similar is closer by the measure
    "only 0.70 similar" shows."""
    spread = [[0.5, 0.866, 0.0], [0.5, -0.866, 0.0]]
    unit = np.array([[1.0, 0.0, 0.0], *spread, [0.7, 0.0, 0.714]])
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    assert closest_stories({"lone": [0], "spread": [1, 2], "near": [3]}, unit)["lone"] == "near"


# ---------------------------------------------------------------- reasons against


def _evidence(probability: float, *signals: tuple[str, float, float], **fields) -> PairEvidence:
    base = {name: (1.0 if name == "cosine" else 0.0, 0.0) for name in FEATURES}
    base.update({name: (value, c) for name, value, c in signals})
    contributions = sum(c for _, c in base.values())
    logit = math.log(probability / (1 - probability)) if 0 < probability < 1 else 20.0
    values = dict(
        shared_names=(),
        names_only_a=(),
        names_only_b=(),
        numbers_only_a=(),
        numbers_only_b=(),
        days_apart=None,
    )
    values.update(fields)
    return PairEvidence(
        probability=probability,
        merge_probability=0.3,
        bias=logit - contributions,
        signals=tuple(Signal(name, v, c) for name, (v, c) in base.items()),
        **values,
    )


def test_a_pair_that_joins_has_nothing_against_it_even_a_real_copy() -> None:
    copy = _evidence(1.0, ("cosine", 0.97, 8.0), ("same_outlet", 0.0, -0.0))
    assert copy.reason_against() == "nothing against"
    slight = _evidence(0.9, ("cosine", 0.9, 6.0), ("days_apart", 0.7, -0.01), days_apart=2.0)
    assert slight.reason_against() == "nothing against"  # -0.01 is no reason
    outweighed = _evidence(0.8, ("cosine", 0.9, 6.0), ("same_outlet", 1.0, -0.5))
    assert outweighed.reason_against() == "same outlet (outweighed)"


def test_a_closest_story_that_would_join_says_it_was_never_compared() -> None:
    """Two tight stories with no nearest-neighbour edge between them stay apart whatever their
    evidence: the reason says so instead of "nothing against"."""
    from aggregator.grouping.explain import why_not_text

    assert why_not_text(_evidence(0.9, ("cosine", 0.9, 6.0))) == (
        "would join on this evidence; the grouping compares only nearest neighbours"
    )
    assert why_not_text(_evidence(0.1, ("cosine", 0.3, 1.0))).startswith("only 0.30 similar")


def test_only_similar_is_said_only_when_low_similarity_is_the_gap() -> None:
    # p=0.05 with the name conflict taking 3.0 logits: without it, it would join (0.3)
    names = _evidence(
        0.05,
        ("cosine", 0.8, 3.0),
        ("name_conflict", 1.0, -3.0),
        names_only_a=("Perth",),
        names_only_b=("Leeds",),
    )
    assert names.reason_against() == "different names: Perth / Leeds"
    # p=0.05 with a small conflict: still far below the threshold without it
    weak = _evidence(
        0.05,
        ("cosine", 0.31, 1.0),
        ("name_conflict", 0.2, -0.3),
        names_only_a=("Perth",),
        names_only_b=("Leeds",),
    )
    assert weak.reason_against() == "only 0.31 similar; different names: Perth / Leeds"
    assert _evidence(0.05, ("cosine", 0.2, 0.5)).reason_against() == "only 0.20 similar"
    # a conflict the model weighs but no two numbers of one kind show is named all the same
    unshown = _evidence(0.05, ("cosine", 0.8, 3.0), ("number_conflict", 1.0, -3.0))
    assert unshown.reason_against() == "different numbers"


def test_two_items_not_alike_at_all_say_so_and_nothing_speaks_for_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cosine of -0.001 read "for: -0.00 similar" and "against: only -0.00 similar"."""
    from aggregator.cli import _print_evidence

    unlike = _evidence(0.01, ("cosine", -0.001, 0.0))
    assert unlike.reason_against() == "not alike at all"
    _print_evidence(unlike)
    printed = capsys.readouterr().out
    assert "  for: nothing\n" in printed and "  against: not alike at all\n" in printed
    assert "-0.00" not in printed.split("signal")[0]
    _print_evidence(_evidence(0.01, ("cosine", 0.2, 0.5)))
    assert "  for: 0.20 similar\n" in capsys.readouterr().out


def test_two_lone_headlines_kept_apart_only_by_the_full_bar_say_so() -> None:
    """Two lone headlines as similar as a headline joining a story may be: the headline shift
    they give back is all that keeps them apart, and the reason says what the bar is for."""
    from aggregator.grouping.explain import why_not_text

    cosine = 0.45
    vectors = np.zeros((2, 4), dtype=np.float32)
    vectors[0, 0] = 1.0
    vectors[1, :2] = cosine, math.sqrt(1 - cosine**2)
    items = [_item(0, "Phone gets a bigger screen", ""), _item(1, "Tablet review", "", "Courier")]
    apart = pair_evidence([0], [1], features(items, vectors), shipped_model())
    assert not apart.joins
    assert apart.log_odds - apart.lone_pair_offset >= shipped_model().threshold
    assert why_not_text(apart) == "only 0.45 similar for two items alone"
    # less similar: too little even with the shift, so no mention of the pair's bar
    vectors[1, :2] = 0.2, math.sqrt(1 - 0.2**2)
    far = pair_evidence([0], [1], features(items, vectors), shipped_model())
    assert far.lone_pair_offset < 0 and why_not_text(far) == "only 0.20 similar"


def test_two_lone_reports_kept_apart_by_their_conflicts_do_not_blame_the_pairs_bar() -> None:
    """Two quakes in different places: their names and numbers keep them apart with or without
    the full bar of two lone items, so the reason does not say "for two items alone"."""
    from aggregator.grouping.explain import why_not_text

    cosine = 0.55
    vectors = np.zeros((2, 4), dtype=np.float32)
    vectors[0, 0] = 1.0
    vectors[1, :2] = cosine, math.sqrt(1 - cosine**2)
    items = [
        _item(0, "Magnitude 5.1 earthquake rattles Perth", "A magnitude 5.1 earthquake shook "
              "Perth on Tuesday morning, cracking walls in older homes."),
        _item(1, "Strong 6.8 quake strikes off northern Chile", "A strong magnitude 6.8 "
              "earthquake struck off the coast of northern Chile near Antofagasta on Tuesday.",
              "Wire"),
    ]  # fmt: skip
    apart = pair_evidence([0], [1], features(items, vectors), shipped_model())
    assert apart.lone_pair_offset < 0 and not apart.joins
    assert apart.log_odds - apart.lone_pair_offset < shipped_model().threshold
    reason = why_not_text(apart)
    assert "for two items alone" not in reason
    assert "different names" in reason or "different numbers" in reason


def test_a_name_the_texts_never_capitalise_is_not_shown() -> None:
    # "bush" is a name of the batch (George Bush), but the two fire reports write "bush fire"
    fire = "A bush fire spread near Leeds on Monday, and crews in Leeds fought the bush fire."
    bush = "President George Bush met Laura Bush in Texas, where George Bush thanked Jeb Bush."
    evidence = _pair(
        _item(0, "Fire", fire), _item(1, "Fire", fire + " Roads closed.", "Courier"),
        *(_item(k, "Visit", bush, f"Post {k}") for k in (2, 3, 4)),
    )  # fmt: skip
    batch = batch_text([_item(0, "Fire", fire), *(_item(k, "Visit", bush) for k in (2, 3, 4))])
    assert "bush" in batch.items[0].names  # the evidence counts it
    assert "Leeds" in evidence.shared_names
    assert all(name[0].isupper() for name in evidence.shared_names), evidence.shared_names


def test_days_apart_reads_in_words() -> None:
    one = _evidence(0.1, ("cosine", 0.9, 1.0), ("days_apart", 0.7, -2.0), days_apart=1.2)
    assert one.reason_against() == "1 day apart"
    assert (
        _evidence(
            0.1, ("cosine", 0.9, 1.0), ("days_apart", 1.1, -2.0), days_apart=3.0
        ).reason_against()
        == "3 days apart"
    )


def test_one_item_against_a_story_of_three_shows_the_lone_bar_for_its_richness() -> None:
    from aggregator.grouping.text import FULL_SUMMARY_WORDS

    full = " ".join(f"word{k}" for k in range(FULL_SUMMARY_WORDS))
    items = [Item(i, f"t{i}", full if i < 4 else "", "o", None, NOW) for i in range(6)]
    prepared = features(items, np.eye(6, dtype=np.float32))
    model = shipped_model().with_lone_discount(2.0)
    reports = pair_evidence([0], [1, 2, 3], prepared, model)
    # two full texts: the whole discount below the merge bar
    expected = 1 / (1 + math.exp(-(model.threshold - 2.0)))
    assert reports.lone_probability == pytest.approx(expected)
    headlines = pair_evidence([4], [5, 1, 2], prepared, model)  # a third of the richness
    assert headlines.lone_probability == pytest.approx(
        1 / (1 + math.exp(-(model.threshold - 2.0 / 3)))
    )
    assert pair_evidence([0], [1, 2], prepared, model).lone_probability is None  # no story of 3
    # headlines only: no discount, so no bar below the merge bar to show
    bare = [Item(i, f"t{i}", "", "o", None, NOW) for i in range(4)]
    only_headlines = features(bare, np.eye(4, dtype=np.float32))
    assert pair_evidence([0], [1, 2, 3], only_headlines, model).lone_probability is None
    assert pair_evidence([0, 1], [2, 3, 4], prepared, model).lone_probability is None
    assert (
        pair_evidence(
            [0], [1, 2, 3], prepared, shipped_model().with_lone_discount(0.0)
        ).lone_probability
        is None
    )


def test_two_lone_headlines_show_the_headline_shift_given_back_in_a_table_that_adds_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aggregator.cli import _print_evidence

    headlines = _pair(_item(0, "Phone gets a bigger screen", ""), _item(1, "Tablet review", ""))
    assert headlines.lone_pair_offset == pytest.approx(-shipped_model().headline_shift)
    _print_evidence(headlines)
    out = capsys.readouterr().out
    assert "two items alone" in out
    _table_total(out)
    texts = _pair(_item(0, "Quake", "Houses fell. " * 30), _item(1, "Quake", "Walls fell. " * 30))
    assert texts.lone_pair_offset == 0.0  # two full texts got no shift to give back
    _print_evidence(texts)
    assert "two items alone" not in capsys.readouterr().out


def test_the_cli_score_gives_the_lone_bar_where_there_is_one() -> None:
    from aggregator.cli import _score

    assert _score(_evidence(0.4)) == "p=0.40, joins from 0.30"
    lone = _evidence(0.4, lone_probability=0.125)
    assert _score(lone) == "p=0.40, joins from 0.30 (left alone, from 0.12)"


# ---------------------------------------------------------------- names and numbers as written


def _item(i: int, title: str, summary: str, outlet: str = "Herald") -> Item:
    return Item(i, title, summary, outlet, f"https://x.example/{i}", NOW)


def _pair(a: Item, b: Item, *others: Item) -> PairEvidence:
    items = [a, b, *others]
    vectors = np.eye(len(items), dtype=np.float32)
    return pair_evidence([0], [1], features(items, vectors), shipped_model())


def test_names_keep_their_written_form_and_stay_together() -> None:
    a = _item(
        1,
        "Riverside budget",
        "On Monday Mayor Okafor told Riverside that NASA and McDonald's would fund the plan. "
        "The council backed Mayor Okafor's plan.",
    )
    b = _item(
        2,
        "Riverside plan backed",
        "Residents said Mayor Okafor had won over NASA and McDonald's for Riverside.",
        "Gazette",
    )
    evidence = _pair(a, b)
    assert set(evidence.shared_names) == {"Mayor Okafor", "Riverside", "NASA", "McDonald's"}
    assert "shares Mayor Okafor" in evidence.reason_for() or "Mayor Okafor" in evidence.reason_for()


def test_a_us_time_zone_is_not_shown_as_a_shared_name() -> None:
    a = _item(1, "Okafor to speak", "Mayor Okafor will speak at 10am ET in Riverside.")
    b = _item(2, "Okafor speech", "Okafor speaks at 10am ET, aides in Riverside said.", "Gazette")
    shared = _pair(a, b).shared_names
    assert "ET" not in shared and {"Okafor", "Riverside"} <= {w.split()[-1] for w in shared}


def test_a_pages_time_stamp_and_a_wire_credit_are_not_shown_as_shared_names() -> None:
    a = _item(
        1,
        "Okafor opens library",
        "Posted 9:10 am ET Updated 11:40 am ET Mayor Okafor opened the Riverside library, "
        "the Associated Press reported.",
    )
    b = _item(
        2,
        "Library opens",
        "Published 10:02 am ET Updated 12:15 pm ET Mayor Okafor told the Associated Press "
        "that Riverside needed it.",
        "Gazette",
    )
    # "press" written in lower case elsewhere in the batch is no name: "Associated" alone was
    press = _item(3, "Briefing", "At the press conference the press office said little.", "Post")
    for shared in (_pair(a, b).shared_names, _pair(a, b, press).shared_names):
        assert {"Mayor Okafor", "Riverside"} <= set(shared)
        assert not {"Updated", "Associated Press", "Associated", "Press"} & set(shared), shared


def test_an_accented_name_is_shown_as_written_and_matches_its_plain_spelling() -> None:
    a = _item(
        1, "Talks in Ankara", "On Monday President Erdoğan told reporters in Ankara he would go."
    )
    b = _item(
        2, "Erdogan to travel", "Officials said President Erdogan would leave Ankara.", "Gazette"
    )
    assert {"President Erdoğan", "Ankara"} <= set(_pair(a, b).shared_names)


def test_a_hyphenated_name_is_shown_whole_and_two_names_joined_by_a_hyphen_apart() -> None:
    a = _item(
        1,
        "Store plan for Riverside",
        "On Monday Wal-Mart said it would open in Riverside, backing the Okafor-Singh plan. "
        "Mayor Okafor and Councillor Priya Singh welcomed Wal-Mart.",
    )
    b = _item(
        2,
        "Riverside store",
        "Shoppers said Wal-Mart would hire in Riverside, as Mayor Okafor and Priya Singh hoped.",
        "Gazette",
    )
    shared = _pair(a, b).shared_names
    assert "Wal-Mart" in shared and "Wal" not in shared and "Mart" not in shared
    assert "Okafor-Singh" not in shared and {"Mayor Okafor", "Priya Singh"} <= set(shared)


def test_a_name_with_of_in_it_is_shown_whole() -> None:
    """ "shares Texas Department, Transportation" read as two names, the first a fragment: a
    name written "X of Y" is one ("Bank of England"); "of" between a name and a lower-case
    word joins nothing."""
    a = _item(
        1,
        "Roads closed in Austin",
        "The Texas Department of Transportation closed roads in Austin, the Bank of England "
        "said nothing.",
    )
    b = _item(
        2,
        "Austin roads shut",
        "Roads in Austin were shut by the Texas Department of Transportation on Monday.",
        "Gazette",
    )
    shared = _pair(a, b).shared_names
    assert "Texas Department of Transportation" in shared and "Austin" in shared, shared
    assert "Texas Department" not in shared and "Transportation" not in shared


def test_a_name_in_a_datelines_capitals_is_shown_as_the_texts_write_it_elsewhere() -> None:
    a = _item(
        1,
        "Okafor opens library",
        "RIVERSIDE, Calif. (AP) — On Monday Mayor Okafor opened a library with NASA staff.",
    )
    b = _item(
        2,
        "Library opens",
        "Residents of Riverside watched Mayor Okafor and NASA open the library.",
        "Gazette",
    )
    shared = _pair(a, b).shared_names
    assert "Riverside" in shared and "RIVERSIDE" not in shared
    assert "NASA" in shared  # no other form: an acronym stays as it is


def test_two_days_of_one_outlets_series_never_join_and_say_why() -> None:
    today = _item(1, "Open thread", "Talk about anything you like.")
    yesterday = dataclasses.replace(
        _item(2, "Open thread", "Talk about anything you like."), published=NOW - timedelta(days=1)
    )
    evidence = _pair(today, yesterday)
    assert not evidence.joins
    assert evidence.reason_against().startswith(
        'another day\'s post of one series ("Open thread", Herald)'
    )
    hours_later = dataclasses.replace(yesterday, published=NOW - timedelta(hours=3))
    assert _pair(today, hours_later).series is None  # a re-post the same day may be one story


def test_different_numbers_show_the_numbers_that_conflict() -> None:
    perth = _item(
        1,
        "Magnitude 5.2 quake shakes Perth",
        "A magnitude 5.2 earthquake struck 10 km from Perth at 0 depth, with 00 reported hurt.",
    )
    leeds = _item(
        2,
        "Magnitude 3.1 quake felt in Leeds",
        "A magnitude 3.1 earthquake struck near Leeds, 12 km deep, and 0 people were hurt.",
        "Gazette",
    )
    evidence = _pair(perth, leeds)
    assert evidence.numbers_only_a[0] == "5.2" and evidence.numbers_only_b[0] == "3.1"
    assert "0" not in evidence.numbers_only_a + evidence.numbers_only_b
    assert "00" not in evidence.numbers_only_a + evidence.numbers_only_b


def test_conflicting_numbers_are_shown_as_the_texts_write_them() -> None:
    """Numbers are compared in one form (1,200 is 1200) but shown as each side writes them."""
    flood = _item(1, "Floods force 1,200 from homes", "Floods forced 1,200 people from Leeds.")
    other = _item(
        2, "Floods force 3,400 from homes", "Floods forced 3,400 people from Perth.", "Gazette"
    )
    evidence = _pair(flood, other)
    assert evidence.numbers_only_a == ("1,200",) and evidence.numbers_only_b == ("3,400",)
    assert "1,200 / 3,400" in evidence.reason_against()


def test_numbers_past_the_lead_are_shown_as_no_conflict() -> None:
    filler = "Residents described the shaking as long and strong. " * 4
    perth = _item(1, "Magnitude 5.2 quake shakes Perth", f"A 5.2 quake hit Perth. {filler}41 hurt.")
    again = _item(
        2,
        "Perth shaken by 5.2 quake",
        f"A 5.2 quake hit Perth. {filler}The 60th since 1900.",
        "Gazette",
    )
    evidence = _pair(perth, again)
    assert evidence.numbers_only_a == evidence.numbers_only_b == ()


def test_numbers_of_different_kinds_never_conflict() -> None:
    score = _item(1, "City win 2-1", "City beat United 2-1 on Saturday.")
    year = _item(2, "City founded", "City was founded in 1894.", "Gazette")
    evidence = _pair(score, year)
    assert evidence.numbers_only_a == evidence.numbers_only_b == ()


def _conflict(a: Item, b: Item) -> tuple[tuple[str, ...], tuple[str, ...]]:
    evidence = _pair(a, b)
    return evidence.numbers_only_a, evidence.numbers_only_b


def test_a_number_written_another_way_is_of_its_kind_in_the_reasons() -> None:
    """A decimal comma ("5,1") or Arabic-Indic digits ("٥٫١") read as a count, no magnitude:
    the conflict with "6.2" counted against the pair but the reasons named no number."""
    from aggregator.grouping.explain import _kind

    assert _kind("5,1") == _kind("٥٫١") == _kind("6.2") == "decimal"
    assert _kind("٢٠٢٤") == "year" and _kind("1,800") == "count" and _kind("2:1") == "score"
    german = _item(1, "Beben in Basel", "Ein Erdbeben der Stärke 5,1 erschütterte Basel.")
    english = _item(2, "Basel quake", "A magnitude 6.2 quake shook Basel.", "Gazette")
    assert _conflict(german, english) == (("5,1",), ("6.2",))


def test_explaining_reads_the_vectors_as_grouping_does() -> None:
    """With 10 or more items of a non-Latin writing system, grouping takes their shared
    component away (graph.centred_by_script); explaining compared the raw vectors, so it could
    call a pair one story (0.96) that grouping kept apart."""
    import numpy as np

    from aggregator.grouping import GroupingParams, prepare
    from aggregator.grouping.explain import features

    items = [
        _item(k, f"عنوان الخبر رقم {k}", f"نص الخبر {k} في المدينة", f"o{k}") for k in range(12)
    ]
    rng = np.random.default_rng(3)
    vectors = (np.ones((12, 16)) + 0.25 * rng.standard_normal((12, 16))).astype(np.float32)
    grouped = prepare(items, vectors, GroupingParams()).unit
    np.testing.assert_allclose(features(items, vectors).unit, grouped, atol=1e-6)
    raw = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert float(raw[0] @ raw[1]) > 0.9 and float(grouped[0] @ grouped[1]) < 0.5


def test_a_numbers_kind_is_read_as_written() -> None:
    """ "6.0" is compared as 6 but is a magnitude like 5.8; "1,800" is compared as 1800 but is
    a count, no year; a draw's 0-0 is a score like 3-1."""
    chile = _item(1, "Quake hits Chile", "A magnitude 6.0 quake shook Antofagasta, Chile.")
    peru = _item(2, "Quake hits Peru", "A magnitude 5.8 quake shook Arequipa, Peru.", "Gazette")
    assert _conflict(chile, peru) == (("6.0",), ("5.8",))
    cuts = _item(1, "Bank to cut jobs", "Northbank will cut 1,800 jobs, it said on Monday.")
    loss = _item(2, "Bank reports loss", "Northbank reported its first loss since 2013.", "Gazette")
    assert _conflict(cuts, loss) == ((), ())
    more = _item(2, "Bank to cut jobs", "Northbank will cut 2,400 jobs, it said.", "Gazette")
    assert _conflict(cuts, more) == (("1,800",), ("2,400",))
    draw = _item(1, "City held", "City drew 0-0 with United on Saturday.")
    win = _item(2, "City win", "City beat United 3-1 on Saturday.", "Gazette")
    assert "different numbers: 0-0 / 3-1" in _pair(draw, win).reason_against()


def test_an_outlet_named_the_something_gets_no_second_the() -> None:
    assert the_item("The Borneo Post") == "The Borneo Post item"
    assert the_item("the Examiner") == "the Examiner item"
    assert the_item("Herald") == "the Herald item"
    # an outlet written "unknown" (as labelled sources do) is none, as grouping reads it
    assert the_item("unknown") == the_item("Unknown") == the_item("") == ""


def test_a_partner_of_the_items_own_outlet_is_another_item_of_it() -> None:
    assert the_item("Herald", "Herald") == "another Herald item"
    assert the_item("The Borneo Post", "The Borneo Post") == "another item of The Borneo Post"
    assert the_item("Herald", "Gazette") == "the Herald item"
    items = [
        _item(
            1, "Flood closes Kuching roads", "Floods closed roads in Kuching.", "The Borneo Post"
        ),
        _item(2, "Flood closes Kuching roads", "Floods closed roads in Kuching.", "Herald"),
    ]
    reasons = explain_stories(
        features(items, np.ones((2, 3), dtype=np.float32)), [0, 0], shipped_model(), {2: 1}
    )
    assert reasons.why[1] == "copy of The Borneo Post item"
    assert reasons.why[0].startswith("1.00 similar to the Herald item")
    plain = explain_stories(
        features(items, np.ones((2, 3), dtype=np.float32)), [0, 0], shipped_model()
    )
    assert plain.why[1].startswith("1.00 similar to The Borneo Post item")


# ---------------------------------------------------------------- the CLI's story and pair output


def test_explain_output_keeps_feed_text_from_driving_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aggregator.cli import _print_story
    from aggregator.pipeline import MemberReason, StoredReason, StoryExplanation

    hostile = "Quake \u202eevil\u202c \x1b[2J\x1b]0;owned\x07 hits"
    member = _item(1, hostile, "", outlet="Herald\x1b[31m")
    against = _evidence(
        0.05,
        ("cosine", 0.8, 3.0),
        ("name_conflict", 1.0, -3.0),
        names_only_a=("Perth\u202e",),
        names_only_b=("Leeds\x1b[1m",),
    )
    story = StoryExplanation(
        "s-1",
        [MemberReason(member, f"shares {hostile}", against)],
        [StoredReason(hostile, "Gazette\u202e", f"copy of the {hostile} item")],
        24,
        "s-2",
        hostile,
        against,
    )
    _print_story(story)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "Quake" in out and "different names: Perth" in out


def test_the_cli_gives_the_why_not_that_stories_json_gives_for_a_neighbour_it_would_join(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A closest story whose evidence would join was never weighed: stories.json and the page
    say so, and so must ``explain STORY_ID`` (not "nothing against")."""
    from aggregator.cli import _print_story
    from aggregator.grouping.explain import why_not_text
    from aggregator.pipeline import StoryExplanation

    joins = _evidence(0.9, ("cosine", 0.9, 6.0))
    _print_story(StoryExplanation("s-1", [], [], 24, "s-2", "Ferry resumes", joins))
    out = capsys.readouterr().out
    assert f"  why not: {why_not_text(joins)}\n" in out
    assert "why not: nothing against" not in out


def _table_total(output: str) -> None:
    """The signal table's contributions and bias add up to the total and the p shown."""
    lines = output.splitlines()
    start = next(
        k for k, line in enumerate(lines) if line.split() == ["signal", "value", "log-odds"]
    )
    rows = lines[start + 1 :]
    contributions = [float(line.split()[-1]) for line in rows if line.split()[0] in FEATURES]
    assert len(contributions) == len(FEATURES)
    bias = next(float(line.split()[-1]) for line in rows if "bias (intercept)" in line)
    bias += sum(float(line.split()[-1]) for line in rows if "two items alone" in line)
    total_line = next(line for line in rows if line.split()[0] == "total")
    total = float(total_line.split()[1])
    assert abs(sum(contributions) + bias - total) < 0.01 * len(contributions) + 0.01
    p = float(total_line.split("= p ")[1].split()[0])
    assert abs(1 / (1 + math.exp(-total)) - p) < 0.005


@pytest.mark.model
def test_story_output_gives_one_similarity_per_member_and_a_table_that_adds_up(
    clustered: Path,
) -> None:
    story_id = _story_rows(clustered.parent / "news.db")[f"{PERTH[0]} | Coastline Times"][0]
    result = CliRunner().invoke(main, ["explain", story_id, "-c", str(clustered)])
    assert result.exit_code == 0, result.output
    assert "against the rest" not in result.output
    members = result.output.split("closest other story")[0].split("\n- ")[1:]
    assert len(members) == 3
    for member in members:
        assert member.count(" similar") <= 1  # the stored why's figure, no second one
        assert "fit with the story's other items: p=" in member
        assert f"joins from {SHIPPED_P:.2f}" in member
    _table_total(result.output)


def _within(hours_before_now: float) -> int:
    """window_hours that keep items published after NOW - ``hours_before_now`` hours."""
    from aggregator.pipeline import utcnow

    return int((utcnow() - (NOW - timedelta(hours=hours_before_now))).total_seconds() // 3600)


@pytest.mark.model
def test_a_story_partly_out_of_the_window_says_so_and_keeps_every_stored_reason(
    clustered: Path,
) -> None:
    story_id = _story_rows(clustered.parent / "news.db")[f"{PERTH[0]} | Coastline Times"][0]
    # the Perth reports came at NOW-10h, -9h (Ledger) and -7h (the copy): keep only the copy
    text = clustered.read_text().replace("window_hours: 100000", f"window_hours: {_within(8.5)}")
    clustered.write_text(text)
    result = CliRunner().invoke(main, ["explain", story_id, "-c", str(clustered)])
    assert result.exit_code == 0, result.output
    assert f"story {story_id}: showing 1 of 3 items (the rest are older than window_hours" in (
        result.output
    )
    assert "why: copy of the Coastline Times item" in result.output
    assert result.output.count("  why: ") == 3  # the stored reasons of all three

    clustered.write_text(text.replace(f"window_hours: {_within(8.5)}", "window_hours: 1"))
    aged = CliRunner().invoke(main, ["explain", story_id, "-c", str(clustered)])
    assert aged.exit_code == 0, aged.output
    assert f"story {story_id}: 3 items, all older than window_hours" in aged.output
    assert "why: copy of the Coastline Times item" in aged.output
    assert "kept apart from" in aged.output  # the stored why-not, too
    links = ["https://coast.example/news/0-0", "https://wire.example/news/2-0"]
    old_pair = CliRunner().invoke(main, ["explain", *links, "-c", str(clustered)])
    assert old_pair.exit_code == 2, old_pair.output  # was "no item with link ... in the window"
    assert f"the item with link {links[0]} is dated " in old_pair.output
    assert "before the window (window_hours: 1): only items in it are compared" in old_pair.output
    unknown = CliRunner().invoke(
        main, ["explain", "https://nowhere.example/x", links[0], "-c", str(clustered)]
    )
    assert "no item with link https://nowhere.example/x is stored" in unknown.output

    with sqlite3.connect(clustered.parent / "news.db") as connection:
        connection.execute("DELETE FROM digests")  # no digest: the reasons stored per item
    bare = CliRunner().invoke(main, ["explain", story_id, "-c", str(clustered)])
    assert bare.exit_code == 0, bare.output
    assert f"story {story_id}: 3 items, all older than window_hours" in bare.output
    assert bare.output.count("  why: ") == 3 and "copy of the Coastline Times item" in bare.output


def test_explain_with_one_url_or_the_same_url_twice_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("database: news.db\nfeeds:\n  - url: https://a.example/feed\n")
    one = CliRunner().invoke(main, ["explain", "https://a.example/1", "-c", str(config)])
    assert one.exit_code == 2 and "needs two item URLs" in one.output
    same = CliRunner().invoke(
        main,
        ["explain", "https://a.example/1?utm_source=x", "https://a.example/1", "-c", str(config)],
    )
    assert same.exit_code == 2 and "two different item URLs" in same.output
    assert same.output.strip().count("\n") == 0
    story_and_url = CliRunner().invoke(
        main, ["explain", "s-1a2b3c4d5e", "https://a.example/1", "-c", str(config)]
    )
    assert story_and_url.exit_code == 2, story_and_url.output
    assert "'s-1a2b3c4d5e' is no URL" in story_and_url.output
    assert not (tmp_path / "news.db").exists()  # usage said before any database is opened
    missing = CliRunner().invoke(main, ["explain", "s-1a2b3c4d5e", "-c", str(config)])
    assert missing.exit_code == 1 and "news.db does not exist" in missing.output
    assert not (tmp_path / "news.db").exists()  # explain reads: it made an empty one


@pytest.mark.model
def test_pair_output_shows_stories_the_stored_copy_and_which_item_a_shared_link_meant(
    tmp_path: Path,
) -> None:
    feeds = dict(FEEDS)
    # one feed lists the Ledger's link twice (an updated entry with a new guid)
    feeds["https://ledger.example/feed"] = ("Daily Ledger", [PERTH_AGAIN, PERTH_AGAIN])
    config = _cluster(tmp_path, feeds)
    rows = _story_rows(tmp_path / "news.db")
    perth = rows[f"{PERTH[0]} | Coastline Times"][0]
    with Store.open(tmp_path / "news.db") as store:
        items = store.items_since(NOW - timedelta(days=30))
    ledger = {i.link for i in items if i.outlet == "Daily Ledger"}
    coast = next(i.link for i in items if i.outlet == "Coastline Times")
    copy = next(i.link for i in items if i.outlet == "Copy Desk")
    pair = CliRunner().invoke(main, ["explain", coast, copy, "-c", str(config)])
    assert pair.exit_code == 0, pair.output
    assert "B is stored as a copy of A" in pair.output
    assert pair.output.count(f"   story: {perth}") == 2
    assert "the evidence joins them" in pair.output and "against: nothing against" in pair.output
    assert len(ledger) == 1  # both entries kept, with one link: say which item stands for it
    shared = CliRunner().invoke(main, ["explain", coast, ledger.pop(), "-c", str(config)])
    assert shared.exit_code == 0, shared.output
    assert "2 items in the window carry this link: using the earliest" in shared.output


@pytest.mark.model
def test_cluster_and_explain_compute_the_text_features_once(
    clustered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aggregator.grouping
    import aggregator.grouping.explain

    calls: list[int] = []

    def counted(items):
        calls.append(len(items))
        return batch_text(items)

    monkeypatch.setattr(aggregator.grouping, "batch_text", counted)
    monkeypatch.setattr(aggregator.grouping.explain, "batch_text", counted)
    result = CliRunner().invoke(main, ["cluster", "--force", "-c", str(clustered)])
    assert result.exit_code == 0, result.output
    assert calls == [4]  # grouping's, reused for the reasons
    story_id = _story_rows(clustered.parent / "news.db")[f"{PERTH[0]} | Coastline Times"][0]
    calls.clear()
    result = CliRunner().invoke(main, ["explain", story_id, "-c", str(clustered)])
    assert result.exit_code == 0, result.output
    assert calls == [4]  # once, however many members and neighbours are compared


def test_the_page_links_the_closest_story_and_names_one_it_has_no_page_for(tmp_path: Path) -> None:
    bridge = (item("Herald", "Bridge reopens", NOW),)
    ferry = (item("Gazette", "Ferry <b>resumes</b>", NOW),)
    stories = (
        dataclasses.replace(
            story("s-bridge", "Bridge reopens", bridge),
            why_not="different names: Perth / Leeds",
            why_not_story="s-ferry",
            why_not_headline="Ferry <b>resumes</b>",
        ),
        dataclasses.replace(
            story("s-ferry", "Ferry <b>resumes</b>", ferry),
            why_not="only 0.31 similar",
            why_not_story="s-gone",
            why_not_headline="An older story",
        ),
    )
    build_site(
        tmp_path, [Digest(day=NOW.date(), generated_at=NOW, stories=stories)], site_settings()
    )
    page = lxml.html.parse(str(tmp_path / "stories" / f"{story_slug('s-bridge')}.html")).getroot()
    line = page.xpath('//p[@class="story-why-not"]')[0]
    assert line.text_content() == (
        "Kept apart from Ferry <b>resumes</b>: different names: Perth / Leeds"
    )
    assert line.xpath("a/@href") == [f"../stories/{story_slug('s-ferry')}.html"]
    other = lxml.html.parse(str(tmp_path / "stories" / f"{story_slug('s-ferry')}.html")).getroot()
    line = other.xpath('//p[@class="story-why-not"]')[0]
    assert line.text_content() == "Kept apart from “An older story”: only 0.31 similar"
    assert not line.xpath("a")
    data = json.loads((tmp_path / "stories.json").read_text("utf-8"))
    listed = {s["id"]: s for s in data["stories"]}
    assert listed["s-bridge"]["why_not_story"] == "s-ferry"
    assert listed["s-bridge"]["why_not_headline"] == "Ferry <b>resumes</b>"


def test_names_take_the_summary_form_over_a_shouting_title() -> None:
    a = _item(
        1,
        "LIONSGATE SHOWS JENNIFER LAWRENCE FILM",
        "On Friday the studio Lionsgate showed the film with Jennifer Lawrence.",
    )
    b = _item(
        2,
        "Jennifer Lawrence film shown",
        "Fans cheered as Lionsgate screened the Jennifer Lawrence film.",
        "Gazette",
    )
    assert set(_pair(a, b).shared_names) == {"Lionsgate", "Jennifer Lawrence"}


def test_a_conflicting_name_is_shown_whole_and_a_month_is_no_name() -> None:
    """Only the words of a name that the other side lacks conflict, but the reason shows the
    whole name they belong to ("Access Hollywood", not "Access"); a month's abbreviation
    ("Jun 3") is shown as no name."""
    a = _item(
        1,
        "Lohan leaves rehab",
        "On Jun 3 the show Access Hollywood said Lindsay Lohan had left a clinic in Malibu. "
        "A source told Access Hollywood that Lohan was well.",
    )
    b = _item(
        2,
        "Lohan seen in Malibu",
        "Reporters for Entertainment Tonight saw Lindsay Lohan in Malibu. "
        "Her Hollywood agents told Entertainment Tonight that she was well.",
        "Gazette",
    )
    evidence = _pair(a, b)
    assert "Access Hollywood" in evidence.names_only_a
    assert "Access" not in evidence.names_only_a
    assert not any(name == "Jun" for name in evidence.names_only_a)
    assert "Entertainment Tonight" in evidence.names_only_b


def test_a_pair_verdict_says_where_the_stored_stories_differ(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`explain URL URL` printed "same story" under two different story ids (and "different
    stories" under one): the verdict is the evidence's, and where the stored stories differ
    the output says so and why."""
    from aggregator import cli

    apart = _pair(
        _item(1, "Quake hits Perth", "A quake shook Perth on Monday."),
        _item(2, "Leeds wins cup final", "Leeds beat York 2-1 in the cup final.", "Gazette"),
    )
    assert not apart.joins
    cli._print_evidence(apart, stored_together=True)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("the evidence keeps them apart; yet stored in one story: each joined "
                          "it through its other items")  # fmt: skip
    cli._print_evidence(apart, stored_together=False)
    assert capsys.readouterr().out.splitlines()[0].endswith("the evidence keeps them apart")


def test_a_member_under_the_bar_alone_is_said_to_have_joined_with_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`explain STORY_ID` printed a member's fit "p=0.20, joins from 0.70" with nothing to say
    how an item under the bar is in the story."""
    from aggregator import cli
    from aggregator.pipeline import MemberReason, StoryExplanation

    item = _item(1, "Quake hits Perth", "A quake shook Perth on Monday.")
    apart = _pair(item, _item(2, "Leeds wins cup", "Leeds beat York 2-1.", "Gazette"))
    story = StoryExplanation(
        "s-1", [MemberReason(item, "0.6 similar", apart)], [], 24, None, "", None
    )
    cli._print_story(story)
    fit = next(line for line in capsys.readouterr().out.splitlines() if "fit with" in line)
    assert fit.endswith("(under the bar alone: it joined with others)")
