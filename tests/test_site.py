"""The static site: links, safety, determinism, machine outputs and template overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import posixpath
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import feedparser
import lxml.etree
import lxml.html
import pytest

from aggregator.models import Digest
from aggregator.site import (
    MARKER_FILE,
    SiteConflictError,
    SiteError,
    UnsafePathError,
    build_site,
    clean_text,
    http_url,
    safe_path,
    story_slug,
    write_site,
)
from tests.support.digests import (
    ATTRIBUTE_BREAKOUT,
    HOSTILE_STORY_ID,
    SCRIPT,
    SVG_ONLOAD,
    TODAY,
    day_digest,
    realistic_digests,
    site_settings,
)

BASE_URL = "https://news.example.org/digest/"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("site") / "output"
    build_site(output, realistic_digests(), site_settings(base_url=BASE_URL))
    return output


def html_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def select(element: lxml.html.HtmlElement, selector: str) -> list[lxml.html.HtmlElement]:
    """A tiny CSS subset (`tag.class`, `#id`, descendant and `>`), as cssselect is not installed."""
    xpath, axis = ".", "//"
    for token in selector.split():
        if token == ">":
            axis = "/"
            continue
        tag, _, cls = token.partition(".")
        step = tag or "*"
        if tag.startswith("#"):
            step = f"*[@id='{tag[1:]}']"
        if cls:
            step += f"[contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')]"
        xpath, axis = f"{xpath}{axis}{step}", "//"
    return element.xpath(xpath)


def links(page: Path) -> list[str]:
    doc = lxml.html.parse(str(page)).getroot()
    return [el.get(attr) for el in doc.iter() for attr in ("href", "src") if el.get(attr)]


# ---------------------------------------------------------------- structure and links


def test_expected_pages_exist(site: Path) -> None:
    for path in (
        "index.html",
        "style.css",
        "feed.xml",
        "stories.json",
        "sitemap.xml",
        "archive/index.html",
        "outlets/index.html",
        "2026/11/28/index.html",
        "2026/11/27/index.html",
        "2026/11/26/index.html",
        "stories/rail-strike-2026.html",
        "outlets/harbour-times.html",
    ):
        assert (site / path).is_file(), path


def test_every_internal_link_resolves(site: Path) -> None:
    checked = 0
    for page in html_files(site):
        ids_here = set(lxml.html.parse(str(page)).getroot().xpath("//@id"))
        for link in links(page):
            parts = urlsplit(link)
            if parts.scheme:
                continue  # external: checked separately
            assert not link.startswith("/"), f"root-relative link {link!r} in {page}"
            if not parts.path:
                assert parts.fragment in ids_here, f"{link!r} has no target in {page}"
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_relative_to(site.resolve()), f"{link!r} leaves the site"
            assert target.is_file(), f"{link!r} in {page.relative_to(site)} is broken"
            checked += 1
    assert checked > 500


def test_every_page_is_valid_html(site: Path) -> None:
    """No markup a browser must repair: a list inside a paragraph, say, which it closes early,
    leaving the paragraph's styles behind and an empty one after it."""
    for page in html_files(site):
        parser = lxml.etree.HTMLParser(recover=True)
        lxml.etree.fromstring(page.read_bytes(), parser)
        # libxml2 knows no HTML5 tags ("Tag svg invalid"): those are the only errors allowed
        errors = [
            f"line {e.line}: {e.message.strip()}"
            for e in parser.error_log
            if not e.message.startswith("Tag ")
        ]
        assert not errors, (page.relative_to(site), errors[:3])


def test_external_links_are_only_http(site: Path) -> None:
    external = [link for page in html_files(site) for link in links(page) if urlsplit(link).scheme]
    assert external, "fixture should produce article links"
    for link in external:
        assert urlsplit(link).scheme in ("http", "https"), link
        assert http_url(link) == link


def test_the_home_page_shows_todays_ranked_stories(site: Path) -> None:
    doc = lxml.html.parse(str(site / "index.html")).getroot()
    headlines = [h.text_content() for h in select(doc, "ol.stories h3.headline")]
    expected = [clean_text(s.headline, 300) for s in realistic_digests()[0].stories]
    assert headlines == expected
    first = select(doc, "ol.stories > li")[0]
    assert select(first, "div.count strong")[0].text == "14"
    assert select(first, "span.badge-new")
    assert select(first, "h3.headline a")[0].get("href") == "stories/rail-strike-2026.html"
    assert [s.get("id") for s in select(doc, "section.section")] == [
        "section-svg-onload-alert-1",
        "section-business",
        "section-health",
        "section-local",
        "section-science",
        "section-sport",
        "section-tech",
        "section-transport",
        "section-weather",
        "section-world",
    ]


def test_story_page_lists_every_item_with_copy_markers(site: Path) -> None:
    doc = lxml.html.parse(str(site / "stories/rail-strike-2026.html")).getroot()
    # the story ran on three days, 14 reports (2 of them copies) each: its page keeps them all
    assert len(select(doc, "ol.items > li")) == 3 * 14
    assert len(select(doc, "ol.items span.badge-copy")) == 3 * 2
    days = [a.get("href") for a in select(doc, "section ul.inline-list a")]
    assert days == [f"../2026/11/{d}/index.html" for d in (28, 27, 26)]


# ---------------------------------------------------------------- hostile input


def test_no_script_anywhere(site: Path) -> None:
    for path in site.rglob("*"):
        if path.is_file():
            text = path.read_text("utf-8").lower()
            assert "<script" not in text, path
            assert "<svg onload" not in text, path
            assert "javascript:" not in text or path.suffix != ".html", path
            if path.suffix != ".html":
                assert "<svg" not in text, path


def test_the_only_svgs_are_the_sites_own_charts(site: Path) -> None:
    charts = 0
    for page in html_files(site):
        doc = lxml.html.parse(str(page)).getroot()
        for svg in doc.iter("svg"):
            charts += 1
            assert "chart" in svg.get("class", "").split(), page
            assert svg.get("role") == "img" and svg.get("aria-label"), page
            assert svg.get("width") == "100%" and svg.get("viewbox"), page
            assert {el.tag for el in svg.iter()} <= {"svg", "title", "rect", "line"}, page
            assert not any(el.get("style") for el in svg.iter()), 'the CSP forbids style=""'
    assert charts > 0


def test_no_event_handler_attributes_or_odd_urls(site: Path) -> None:
    for page in html_files(site):
        for element in lxml.html.parse(str(page)).getroot().iter():
            for name, value in element.attrib.items():
                assert not name.lower().startswith("on"), (page, name)
                if name in ("href", "src"):
                    assert not value.lower().startswith(("javascript:", "data:", "vbscript:"))


def test_hostile_text_is_shown_as_text(site: Path) -> None:
    page = site / "stories" / f"{story_slug(HOSTILE_STORY_ID)}.html"
    doc = lxml.html.parse(str(page)).getroot()
    assert select(doc, "h1")[0].text_content() == SCRIPT + SVG_ONLOAD + ATTRIBUTE_BREAKOUT
    # The javascript: and data: links are rendered as plain text, not links.
    titles = {el.text_content(): el.tag for el in select(doc, "p.item-title > *")}
    assert titles[SCRIPT] == "span"
    assert titles[ATTRIBUTE_BREAKOUT] == "span"
    assert titles["No link at all"] == "span"
    assert titles["Protocol-relative"] == "span"


def test_control_characters_and_crlf_are_removed(site: Path) -> None:
    for path in site.rglob("*"):
        if path.is_file():
            text = path.read_text("utf-8")
            assert "\r" not in text and "\x00" not in text and "\x07" not in text, path
            # bidi embedding, override and isolate controls from feeds would reorder the page
            assert not any(c in text for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2069")


def test_rtl_text_gets_isolated(site: Path) -> None:
    """On the block that holds a headline, not on the link inside: an Arabic headline stood at
    the left (a block's dir="auto" also skips a child with a dir of its own)."""
    doc = lxml.html.parse(str(site / "index.html")).getroot()
    story = lxml.html.parse(str(site / "stories/rtl-2026-11-28.html")).getroot()
    for page, selector in (
        (doc, "h3.headline"),
        (doc, "section.section li"),
        (story, "p.item-title"),
    ):
        rtl = [e for e in select(page, selector) if "الحكومة" in e.text_content()]
        assert rtl and rtl[0].get("dir") == "auto", selector
        assert rtl[0].find("a").get("dir") is None, selector


def test_hostile_story_ids_stay_inside_output(tmp_path: Path) -> None:
    output = tmp_path / "deep" / "output"
    bad = day_digest(TODAY, stories=1)
    evil = dataclasses.replace(bad.stories[0], id="../../../../tmp/owned")
    dotted = dataclasses.replace(bad.stories[0], id="..")
    digest = dataclasses.replace(bad, stories=(evil, dotted, *bad.stories))
    files = build_site(output, [digest], site_settings())
    assert all(f.resolve().is_relative_to(output.resolve()) for f in files)
    stories = sorted(p.name for p in (output / "stories").iterdir())
    assert len(stories) == 3
    assert f"{story_slug(evil.id)}.html" in stories
    assert story_slug(evil.id).startswith("tmp-owned-")
    assert story_slug("..").startswith("story-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["output"]


def test_long_text_is_cut_at_a_word_or_else_between_characters_as_a_reader_sees_them() -> None:
    words = "Storm " * 60
    assert clean_text(words, 40) == "Storm Storm Storm Storm Storm Storm…"
    family, flags = "\U0001f469\u200d\U0001f469\u200d\U0001f467", "\U0001f1ec\U0001f1e7" * 3
    for text, limit, kept in (
        ("a" * 20 + family + "b" * 20, 24, "a" * 20),  # the family whole or not at all
        ("a" * 20 + family + "b" * 20, 26, "a" * 20 + family),
        ("a" * 20 + flags + "b" * 20, 24, "a" * 20 + flags[:2]),  # one flag, not half of one
        ("a" * 20 + "e\u0301\u0301" + "b" * 20, 23, "a" * 20),  # the letter with its accents
    ):
        assert clean_text(text, limit) == kept + "…", (text, limit)


def test_safe_path_refuses_escapes(tmp_path: Path) -> None:
    assert safe_path(tmp_path, "a/b.html") == (tmp_path / "a" / "b.html").resolve()
    for bad in ("../x.html", "a/../../x.html", "/etc/passwd", ".", ""):
        with pytest.raises(UnsafePathError):
            safe_path(tmp_path, bad)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/a?b=c#d", True),
        ("HTTP://EXAMPLE.COM/", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,<script>", False),
        ("//example.com/x", False),
        ("/relative", False),
        ("https://", False),
        (" https://example.com/", False),
        ("https://exa\nmple.com/", False),
        ("https:\\\\example.com", False),
        ("https://[::1", False),
        (None, False),
    ],
)
def test_http_url(url: str | None, ok: bool) -> None:
    assert http_url(url) == (url if ok else None)


# ---------------------------------------------------------------- determinism and swapping


def test_rebuild_is_byte_identical(site: Path, tmp_path: Path) -> None:
    before = snapshot(site)
    other = tmp_path / "again"
    build_site(other, realistic_digests(), site_settings(base_url=BASE_URL))
    assert snapshot(other) == before
    build_site(other, realistic_digests(), site_settings(base_url=BASE_URL))
    assert snapshot(other) == before


def test_rebuild_replaces_whole_site_and_leaves_no_temporaries(tmp_path: Path) -> None:
    output = tmp_path / "output"
    build_site(output, realistic_digests(3), site_settings())
    build_site(output, realistic_digests(2), site_settings())
    assert not (output / "2026/11/26").exists()
    assert (output / MARKER_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output"]


def test_a_rebuild_leaves_files_whose_bytes_did_not_change_untouched(tmp_path: Path) -> None:
    """Only changed files are swapped in: the others keep their mtime, so a sync to the web
    host or a reader's cache sees only what changed."""
    output = tmp_path / "output"
    digests = realistic_digests()
    build_site(output, digests, site_settings())
    long_ago = 1_000_000_000  # an mtime no build of this test can give a file
    files = [p for p in output.rglob("*") if p.is_file()]
    for path in files:
        os.utime(path, (long_ago, long_ago))
    before = {path: path.read_bytes() for path in files}
    later = dataclasses.replace(
        digests[0], generated_at=digests[0].generated_at + timedelta(hours=1)
    )
    build_site(output, [later, *digests[1:]], site_settings())
    changed = {path for path in files if path.read_bytes() != before[path]}
    assert output / "index.html" in changed  # "updated 19:30"
    unchanged = set(files) - changed
    assert {
        output / "style.css",
        output / MARKER_FILE,
        output / "2026/11/27/index.html",
    } <= unchanged
    assert [p for p in unchanged if p.stat().st_mtime != long_ago] == []
    assert all(p.stat().st_mtime != long_ago for p in changed)


def test_failed_build_keeps_previous_site(tmp_path: Path) -> None:
    output = tmp_path / "output"
    build_site(output, realistic_digests(1), site_settings())
    before = snapshot(output)
    broken = tmp_path / "templates"
    broken.mkdir()
    (broken / "story.html").write_text("{{ no_such_variable.attribute }}")
    with pytest.raises(Exception, match="no_such_variable"):
        build_site(output, realistic_digests(), site_settings(), templates_dir=broken)
    assert snapshot(output) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output", "templates"]


def test_a_folder_of_the_users_keeps_every_file_of_theirs(tmp_path: Path) -> None:
    output = tmp_path / "home"
    (output / "notes").mkdir(parents=True)
    (output / "thesis.tex").write_text("precious")
    (output / "notes" / "a.txt").write_text("mine")
    build_site(output, realistic_digests(3), site_settings())
    build_site(output, realistic_digests(1), site_settings())  # removes two days of pages
    assert (output / "thesis.tex").read_text() == "precious"
    assert (output / "notes" / "a.txt").read_text() == "mine"
    assert (output / "index.html").is_file()
    assert not (output / "2026/11/26").exists()


def test_refuses_to_overwrite_a_file_it_did_not_write(tmp_path: Path) -> None:
    output = tmp_path / "home"
    output.mkdir()
    (output / "index.html").write_text("my own home page")
    with pytest.raises(SiteConflictError, match=r"index\.html"):
        build_site(output, realistic_digests(1), site_settings())
    assert sorted(p.name for p in output.iterdir()) == ["index.html"]
    assert (output / "index.html").read_text() == "my own home page"


def test_files_added_to_the_output_folder_survive_rebuilds(tmp_path: Path) -> None:
    output = tmp_path / "output"
    first = write_site(output, realistic_digests(2), site_settings())
    assert first.newly_kept == ()
    (output / "CNAME").write_text("news.example.org\n")
    (output / "stories" / "extra.html").write_text("an extra page")
    second = write_site(output, realistic_digests(1), site_settings())
    assert second.newly_kept == ("CNAME", "stories/extra.html")
    third = write_site(output, realistic_digests(1), site_settings())
    assert third.kept == ("CNAME", "stories/extra.html") and third.newly_kept == ()
    assert (output / "CNAME").read_text() == "news.example.org\n"
    assert (output / "stories" / "extra.html").read_text() == "an extra page"


def test_a_site_from_before_manifests_keeps_the_users_files(tmp_path: Path) -> None:
    output = tmp_path / "output"
    build_site(output, realistic_digests(3), site_settings())
    (output / MARKER_FILE).write_text("Built by aggregator. This folder is replaced as a whole.\n")
    (output / "CNAME").write_text("news.example.org\n")
    build_site(output, realistic_digests(1), site_settings())
    assert (output / "CNAME").is_file()
    assert not (output / "2026/11/26").exists()  # the old site's own pages still go


def test_static_folder_is_copied_into_every_build(tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / ".well-known").mkdir(parents=True)
    (static / "robots.txt").write_text("User-agent: *\n")
    (static / ".well-known" / "security.txt").write_text("Contact: me\n")
    output = tmp_path / "output"
    files = build_site(output, realistic_digests(1), site_settings(), static_dir=static)
    assert output / "robots.txt" in files
    assert (output / ".well-known" / "security.txt").read_text() == "Contact: me\n"
    (static / "robots.txt").unlink()
    build_site(output, realistic_digests(1), site_settings(), static_dir=static)
    assert not (output / "robots.txt").exists()  # it was the build's, not the user's
    (static / "index.html").write_text("clash")
    with pytest.raises(SiteConflictError, match=r"index\.html"):
        build_site(output, realistic_digests(1), site_settings(), static_dir=static)


def test_a_static_link_to_a_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    """site.static is checked to hold neither feeds.yaml nor the database, but a link in it
    to either published a copy of it (a 212 KB database on the public site); a link within
    the folder is its own file."""
    (tmp_path / "aggregator.db").write_bytes(b"SQLite format 3\x00")
    static = tmp_path / "static"
    (static / "img").mkdir(parents=True)
    (static / "img" / "logo.svg").write_text("<svg/>")
    (static / "logo.svg").symlink_to(static / "img" / "logo.svg")
    output = tmp_path / "output"
    build_site(output, realistic_digests(1), site_settings(), static_dir=static)
    assert (output / "logo.svg").read_text() == "<svg/>"
    (static / "db.sqlite").symlink_to(tmp_path / "aggregator.db")
    with pytest.raises(SiteConflictError, match=r"db\.sqlite links to .*outside") as caught:
        build_site(output, realistic_digests(1), site_settings(), static_dir=static)
    assert caught.value.setting == "site.static"
    assert not (output / "db.sqlite").exists()


def test_unwritable_output_is_a_site_error_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(SiteError, match="cannot write the site"):
        build_site(tmp_path / "blocker" / "out", realistic_digests(1), site_settings())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_empty_archive_still_builds(tmp_path: Path) -> None:
    files = build_site(tmp_path / "output", [], site_settings())
    assert tmp_path / "output" / "index.html" in files
    assert feedparser.parse((tmp_path / "output" / "feed.xml").read_bytes()).bozo == 0


# ---------------------------------------------------------------- machine outputs


def test_feed_is_valid_atom_with_stable_ids(site: Path, tmp_path: Path) -> None:
    feed = feedparser.parse((site / "feed.xml").read_bytes())
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    today = realistic_digests()[0]
    assert len(feed.entries) == len(today.stories)
    first = feed.entries[0]
    assert first.link == BASE_URL + "stories/rail-strike-2026.html"
    assert first.updated == f"{today.stories[0].last_updated:%Y-%m-%dT%H:%M:%SZ}"
    # The same story on another day (and in a smaller build) keeps its entry id.
    other = tmp_path / "other"
    build_site(other, realistic_digests(3)[1:], site_settings(base_url=BASE_URL))
    later = feedparser.parse((other / "feed.xml").read_bytes())
    assert later.entries[0].id == first.id
    assert len({e.id for e in feed.entries}) == len(feed.entries)


def test_a_feed_entry_ends_with_one_full_stop_after_an_outlet_ending_in_one(
    tmp_path: Path,
) -> None:
    """ "2 outlets: Bravo, Evening Gazette Ltd.." doubled the name's own full stop."""
    from tests.support.digests import at, item, story

    reports = (
        item("Bravo", "Pier reopens", at(TODAY, 8)),
        item("Evening Gazette Ltd.", "Pier open again", at(TODAY, 9)),
    )
    plain = (item("Bravo", "Fair opens", at(TODAY, 8)), item("Alpha", "Fair", at(TODAY, 9)))
    stories = (story("pier", "Pier reopens", reports), story("fair", "Fair opens", plain))
    build_site(tmp_path / "out", [Digest(TODAY, at(TODAY, 18), stories)], site_settings())
    entries = _atom_entries(tmp_path / "out")
    assert entries["pier.html"].summary == "2 outlets: Bravo, Evening Gazette Ltd."
    assert entries["fair.html"].summary == "2 outlets: Alpha, Bravo."


def _okafor_digests(regenerated_at: datetime) -> list[Digest]:
    """The reviewer's story: on 2 Dec the day's digest is made again at `regenerated_at`; by
    11:00 the 1 Dec reports have left the 24-hour window and a new headline was chosen."""
    from tests.support.digests import at, item, story

    dec1, dec2 = TODAY, TODAY + timedelta(days=1)
    wins = item("Alpha", "Mayor Okafor wins Riverside election", at(dec1, 7, 30))
    recount = item("Bravo", "Okafor holds Riverside after recount", at(dec1, 8, 30))
    sworn = item("Charlie", "Okafor sworn in for second term", at(dec2, 0, 30))
    in_window = [i for i in (wins, recount, sworn) if i.published > regenerated_at - timedelta(1)]
    headline = in_window[0].title
    bakery = story("bakery", "Bakery wins pasty award", (item("Delta", "Pasty", at(dec2, 5)),))
    return [
        Digest(dec2, regenerated_at, (story("okafor", headline, tuple(in_window)), bakery)),
        Digest(dec1, at(dec1, 14), (story("okafor", wins.title, (wins, recount)),)),
    ]


def _atom_entries(output: Path) -> dict[str, feedparser.FeedParserDict]:
    entries = feedparser.parse((output / "feed.xml").read_bytes()).entries
    return {e.link.rsplit("/", 1)[1]: e for e in entries}


def test_feed_entry_keeps_its_published_time_and_is_updated_when_its_headline_changes(
    tmp_path: Path,
) -> None:
    from tests.support.digests import at

    dec2 = TODAY + timedelta(days=1)
    morning, noon = tmp_path / "morning", tmp_path / "noon"
    build_site(morning, _okafor_digests(at(dec2, 7)), site_settings())
    build_site(noon, _okafor_digests(at(dec2, 11)), site_settings())
    before, after = _atom_entries(morning)["okafor.html"], _atom_entries(noon)["okafor.html"]
    assert (before.title, after.title) == (
        "Mayor Okafor wins Riverside election",
        "Okafor sworn in for second term",
    )
    # published: when the story was first seen, though that report has left the window
    assert before.published == after.published == "2026-11-28T07:30:00Z"
    # updated: later than the old entry's, or readers keep showing the old headline
    assert after.updated > before.updated
    assert after.updated == "2026-11-29T11:00:00Z"  # the first digest showing the new one
    # a story whose entry did not change keeps its <updated>, however often the day is rebuilt
    assert _atom_entries(morning)["bakery.html"].updated == "2026-11-29T05:00:00Z"
    assert _atom_entries(noon)["bakery.html"].updated == "2026-11-29T05:00:00Z"


def test_the_home_page_card_and_the_story_page_agree_on_first_seen(tmp_path: Path) -> None:
    from tests.support.digests import at

    build_site(
        tmp_path / "out", _okafor_digests(at(TODAY + timedelta(days=1), 11)), site_settings()
    )
    home = lxml.html.parse(str(tmp_path / "out" / "index.html")).getroot()
    card = select(home, "#story-okafor p.meta time")[0]
    page = lxml.html.parse(str(tmp_path / "out" / "stories" / "okafor.html")).getroot()
    lede = select(page, "p.lede time")[0]
    assert card.get("datetime") == lede.get("datetime") == "2026-11-28T07:30+00:00"
    assert card.text == lede.text == "28 Nov, 07:30"


def test_feed_without_base_url_uses_relative_links(tmp_path: Path) -> None:
    build_site(tmp_path / "out", realistic_digests(1), site_settings())
    raw = (tmp_path / "out" / "feed.xml").read_bytes()
    assert feedparser.parse(raw).bozo == 0
    assert b'href="stories/rail-strike-2026.html"' in raw
    assert not (tmp_path / "out" / "sitemap.xml").exists()


def test_stories_json(site: Path) -> None:
    raw = (site / "stories.json").read_text("utf-8")
    assert "<" not in raw
    data = json.loads(raw)
    assert data["day"] == "2026-11-28"
    assert [s["id"] for s in data["stories"]] == [s.id for s in realistic_digests()[0].stories]
    first = data["stories"][0]
    assert first["url"] == BASE_URL + "stories/rail-strike-2026.html"
    assert len(first["outlets"]) == 14
    hostile = next(s for s in data["stories"] if s["id"] == HOSTILE_STORY_ID)
    assert hostile["link"] is None
    assert hostile["headline"].startswith(SCRIPT)


def test_sitemap_lists_absolute_urls(site: Path) -> None:
    tree = lxml.etree.parse(str(site / "sitemap.xml"))
    locs = tree.xpath(
        "//s:loc/text()", namespaces={"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    )
    assert BASE_URL + "index.html" in locs
    assert BASE_URL + "2026/11/27/index.html" in locs
    assert all(loc.startswith(BASE_URL) for loc in locs)
    assert len(locs) == len(set(locs))
    for loc in locs:
        assert (site / posixpath.relpath(urlsplit(loc).path, "/digest")).is_file()


def test_a_sitemap_past_the_protocols_limit_becomes_an_index_of_sitemaps(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The protocol allows 50,000 URLs a file (a year of a 300-feed site lists 127,000 pages,
    and search engines refused the file): past it, sitemap.xml indexes files of that many,
    which list the same pages; the files a larger site needed go once it is smaller."""
    from aggregator import site as site_module

    namespaces = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    whole = lxml.etree.parse(str(site / "sitemap.xml")).xpath(
        "//s:loc/text()", namespaces=namespaces
    )
    monkeypatch.setattr(site_module, "SITEMAP_URLS", 10)
    output = tmp_path / "out"
    build_site(output, realistic_digests(), site_settings(base_url=BASE_URL))
    index = lxml.etree.parse(str(output / "sitemap.xml")).getroot()
    assert index.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}sitemapindex"
    parts = index.xpath("//s:sitemap/s:loc/text()", namespaces=namespaces)
    assert len(parts) == -(-len(whole) // 10) and all(p.startswith(BASE_URL) for p in parts)
    listed = []
    for part in parts:
        tree = lxml.etree.parse(str(output / urlsplit(part).path.removeprefix("/digest/")))
        found = tree.xpath("//s:url/s:loc/text()", namespaces=namespaces)
        assert 0 < len(found) <= 10
        listed += found
    assert listed == whole
    monkeypatch.setattr(site_module, "SITEMAP_URLS", 50_000)
    build_site(output, realistic_digests(), site_settings(base_url=BASE_URL))
    assert not list(output.glob("sitemap-*.xml"))
    assert (
        lxml.etree.parse(str(output / "sitemap.xml")).xpath("//s:loc/text()", namespaces=namespaces)
        == whole
    )


def test_bad_base_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SiteError):
        build_site(tmp_path / "o", [], site_settings(base_url="javascript:alert(1)//"))


# ---------------------------------------------------------------- templates


def test_user_templates_override_builtins_file_by_file(tmp_path: Path) -> None:
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "base.html").write_text(
        "<!doctype html><title>{{ site.title }}</title>"
        "<main>{% block content %}{% endblock %}</main><footer>My own footer</footer>\n"
    )
    (mine / "style.css").write_text("body { color: rebeccapurple; }\n")
    build_site(tmp_path / "out", realistic_digests(1), site_settings(), templates_dir=mine)
    index = (tmp_path / "out" / "index.html").read_text()
    assert "My own footer" in index
    assert "Top stories" in index  # index.html itself still comes from the built-ins
    assert (tmp_path / "out" / "style.css").read_text() == "body { color: rebeccapurple; }\n"


def test_user_templates_are_autoescaped_too(tmp_path: Path) -> None:
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "story.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>{{ story.headline }}</h1>{% endblock %}'
    )
    build_site(tmp_path / "out", realistic_digests(1), site_settings(), templates_dir=mine)
    page = tmp_path / "out" / "stories" / f"{story_slug(HOSTILE_STORY_ID)}.html"
    assert "<script" not in page.read_text()


# ---------------------------------------------------------------- preview server


def test_preview_server_serves_the_site(site: Path) -> None:
    import threading
    import urllib.request

    from aggregator.serve import make_server

    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stories.json") as response:
            assert response.headers["Content-Type"] == "application/json"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert json.loads(response.read())["day"] == "2026-11-28"
    finally:
        server.shutdown()
        server.server_close()


def test_times_are_shown_in_the_configured_timezone(tmp_path: Path) -> None:
    digest = realistic_digests(1, hostile=False)[0]
    build_site(tmp_path / "out", [digest], site_settings(timezone="Asia/Kolkata"))
    doc = lxml.html.parse(str(tmp_path / "out" / "index.html")).getroot()
    first_seen = select(doc, "ol.stories > li")[0].xpath(".//time")[0]
    expected = digest.stories[0].first_seen.astimezone(ZoneInfo("Asia/Kolkata"))
    assert first_seen.text == f"{expected:%H:%M}"
    assert first_seen.get("datetime") == expected.isoformat(timespec="minutes")
    assert "Asia/Kolkata" in doc.text_content()


def test_an_outlet_named_index_keeps_the_outlets_overview(tmp_path: Path) -> None:
    """`outlets/index.html` is the overview: an outlet called "Index" gets a page of its own."""
    from tests.support.digests import at, item, story

    digest = dataclasses.replace(
        day_digest(TODAY, stories=2),
        stories=(
            story(
                "index-story",
                "Markets slip",
                (
                    item("Index", "Markets slip", at(TODAY, 9)),
                    item("Other Post", "Slip", at(TODAY, 10)),
                ),
            ),
        ),
    )
    output = tmp_path / "out"
    build_site(output, [digest], site_settings())
    overview = lxml.html.parse(str(output / "outlets" / "index.html")).getroot()
    assert select(overview, "ul.outlet-list"), "outlets/index.html is not the overview any more"
    pages = sorted(p.name for p in (output / "outlets").glob("*.html"))
    assert len(pages) == 3, pages  # the overview and one page per outlet
    for name in ("Index", "Other Post"):
        found = [
            p for p in pages if p != "index.html" and name in (output / "outlets" / p).read_text()
        ]
        assert found, name


def test_an_outlet_page_keeps_its_address_when_a_newcomer_takes_the_same_slug(
    tmp_path: Path,
) -> None:
    """ "ALPHA" added beside "Alpha": Alpha, reported first, keeps outlets/alpha.html (links to
    it keep working); only the newcomer gets a suffixed address."""
    from tests.support.digests import at, item, story

    yesterday, today = TODAY - timedelta(days=1), TODAY
    first = Digest(
        yesterday,
        at(yesterday, 18),
        (story("quake", "Quake", (item("Alpha", "Quake", at(yesterday, 9)),)),),
    )
    newcomer = story("fire", "Fire", (item("ALPHA", "Fire", at(today, 8)),))
    second = Digest(today, at(today, 18), (newcomer, *first.stories))
    output = tmp_path / "out"
    build_site(output, [first], site_settings())
    assert "Quake" in (output / "outlets" / "alpha.html").read_text()
    build_site(output, [second, first], site_settings())
    assert "Quake" in (output / "outlets" / "alpha.html").read_text()
    suffixed = f"alpha-{hashlib.sha256(b'ALPHA').hexdigest()[:10]}.html"
    assert {p.name for p in (output / "outlets").glob("alpha*.html")} == {"alpha.html", suffixed}
    assert "Fire" in (output / "outlets" / suffixed).read_text()


def test_no_outlet_page_is_named_as_a_windows_device(tmp_path: Path) -> None:
    """A feed titled "CON" (or NUL, COM1, LPT9) got outlets/con.html, a file Windows cannot
    create or copy whatever its extension: publishing the site to such a disk failed."""
    from tests.support.digests import at, item, story

    names = ("CON", "nul", "Com1", "LPT9", "Console")
    reports = tuple(item(name, f"Report {name}", at(TODAY, 9)) for name in names)
    digest = Digest(TODAY, at(TODAY, 18), (story("one", "One", reports),))
    output = tmp_path / "out"
    build_site(output, [digest], site_settings())
    stems = {p.stem for p in (output / "outlets").glob("*.html")}
    assert not stems & {"con", "nul", "com1", "lpt9"}, stems
    assert "console" in stems and len(stems) == len(names) + 1  # the overview


def test_a_report_that_left_its_storys_window_keeps_its_outlet_page_and_entry(
    tmp_path: Path,
) -> None:
    """Day 2's digest no longer holds a continuing story's first report (it left the window),
    but the story page still shows it and links its outlet: that outlet's page stays, and it
    lists the report with the story, as every outlet's page lists all its reports."""
    from tests.support.digests import at, item, slug_of, story

    yesterday, today = TODAY - timedelta(days=1), TODAY
    first_report = item("Early Wire", "Quake hits Leeds", at(yesterday, 6))
    follow_up = item("Gazette", "Leeds counts the damage", at(yesterday, 20))
    later = item("Herald", "Leeds rebuilds", at(today, 9))
    first = Digest(
        yesterday, at(yesterday, 22), (story("quake", "Quake", (first_report, follow_up)),)
    )
    second = Digest(
        today, at(today, 22), (story("quake", "Quake", (follow_up, later), status="growing"),)
    )
    output = tmp_path / "out"
    build_site(output, [first], site_settings())
    build_site(output, [second, first], site_settings())
    early_page = output / "outlets" / f"{slug_of('Early Wire')}.html"
    assert early_page.is_file()
    assert "Quake hits Leeds" in early_page.read_text()
    story_page = next((output / "stories").glob("*.html"))
    for link in links(story_page):
        if "outlets/" in link:
            assert (story_page.parent / unquote(urlsplit(link).path)).is_file(), link


def test_an_outlet_page_counts_a_storys_outlets_on_all_its_days(tmp_path: Path) -> None:
    """The story's page says 3 outlets over its two days; its line on the outlet page of the
    report that left the window said "1 outlet" (the newest day's count), not even its own."""
    from tests.support.digests import at, item, slug_of, story

    yesterday, today = TODAY - timedelta(days=1), TODAY
    first_report = item("Early Wire", "Quake hits Leeds", at(yesterday, 6))
    follow_up = item("Gazette", "Leeds counts the damage", at(yesterday, 20))
    later = item("Gazette", "Leeds rebuilds", at(today, 9))
    days = [
        Digest(today, at(today, 22), (story("quake", "Quake", (later,), status="growing"),)),
        Digest(yesterday, at(yesterday, 22), (story("quake", "Quake", (first_report, follow_up)),)),
    ]
    output = tmp_path / "out"
    build_site(output, days, site_settings())
    story_text = (output / "stories" / f"{story_slug('quake')}.html").read_text()
    assert "2 outlets" in story_text
    for outlet in ("Early Wire", "Gazette"):
        page = lxml.html.parse(str(output / "outlets" / f"{slug_of(outlet)}.html")).getroot()
        lines = [" ".join(p.text_content().split()) for p in page.xpath("//p[@class='item-story']")]
        assert lines and all(line.endswith("· 2 outlets") for line in lines), (outlet, lines)


def test_a_report_whose_title_was_corrected_the_next_day_is_one_report(tmp_path: Path) -> None:
    """Day 2's digest holds a report under the title its feed corrected (same link, same
    time): the story page lists it once, under the new title, and counts three reports."""
    from tests.support.digests import at, item, story

    yesterday, today = TODAY - timedelta(days=1), TODAY
    link = "https://alpha.example.com/bridge"
    first = item("Alpha", "Bridge closes", at(yesterday, 20), link=link)
    corrected = item("Alpha", "Harbour bridge closes for repairs", at(yesterday, 20), link=link)
    other = item("Bravo", "Bridge shut", at(yesterday, 21))
    later = item("Charlie", "Bridge repairs begin", at(today, 9))
    days = [
        Digest(today, at(today, 22), (story("bridge", "Bridge", (corrected, other, later)),)),
        Digest(yesterday, at(yesterday, 22), (story("bridge", "Bridge", (first, other)),)),
    ]
    text = _bridge_page_text(tmp_path, days)
    assert "Harbour bridge closes for repairs" in text and "Bridge closes" not in text
    assert "3 reports" in text and "4 reports" not in text


def _bridge_page_text(tmp_path: Path, days: list[Digest]) -> str:
    """The text of story "bridge"'s page in a site of ``days``."""
    output = tmp_path / "out"
    build_site(output, days, site_settings())
    page = lxml.html.parse(str(output / "stories" / f"{story_slug('bridge')}.html")).getroot()
    return page.text_content()


def test_a_report_whose_title_and_link_were_corrected_the_next_day_is_one_report(
    tmp_path: Path,
) -> None:
    """The feed corrected both the title and the link of a report (a slug fixed with the
    headline): the store keeps it as one item, and the story page lists it once, under its
    new form. Keyed by link, it was listed twice (4 reports)."""
    from tests.support.digests import at, item, story

    yesterday, today = TODAY - timedelta(days=1), TODAY
    first = replace(
        item("Alpha", "Bridge closes", at(yesterday, 20), link="https://alpha.example.com/brige"),
        item_id=7,
    )
    corrected = replace(
        item(
            "Alpha",
            "Harbour bridge closes",
            at(yesterday, 20),
            link="https://alpha.example.com/bridge",
        ),
        item_id=7,
    )
    other = replace(item("Bravo", "Bridge shut", at(yesterday, 21)), item_id=8)
    later = replace(item("Charlie", "Bridge repairs begin", at(today, 9)), item_id=9)
    days = [
        Digest(today, at(today, 22), (story("bridge", "Bridge", (corrected, other, later)),)),
        Digest(yesterday, at(yesterday, 22), (story("bridge", "Bridge", (first, other)),)),
    ]
    text = _bridge_page_text(tmp_path, days)
    assert "Harbour bridge closes" in text and "Bridge closes" not in text
    assert "3 reports" in text and "4 reports" not in text


def test_headlines_and_summaries_carry_their_feeds_language(tmp_path: Path) -> None:
    """A feed declaring Arabic: its headline and summary say lang="ar" on the day page, the
    story page and in the Atom feed, so a screen reader reads them with an Arabic voice, not
    the page's English one; a report without a declared language takes the page's."""
    from tests.support.digests import RTL_HEADLINE, at, item, story

    arabic = replace(item("Al Jazeera", RTL_HEADLINE, at(TODAY, 8), summary="ملخص"), lang="ar")
    plain = item("Gazette", "Energy plan unveiled", at(TODAY, 9), summary="A plan.")
    first = replace(story("energy", RTL_HEADLINE, (arabic, plain)), lang="ar")
    digest = Digest(TODAY, at(TODAY, 18), (first,))
    output = tmp_path / "out"
    build_site(output, [digest], site_settings())
    index = lxml.html.parse(str(output / "index.html")).getroot()
    (headline,) = index.xpath("//h3[contains(@class, 'headline')]")
    assert headline.get("lang") == "ar"
    page = lxml.html.parse(str(output / "stories" / f"{story_slug('energy')}.html")).getroot()
    assert page.xpath("//h1")[0].get("lang") == "ar"
    titles = {
        p.text_content().strip(): p.get("lang") for p in page.xpath("//p[@class='item-title']")
    }
    assert titles == {RTL_HEADLINE: "ar", "Energy plan unveiled": None}
    atom = lxml.etree.parse(str(output / "feed.xml")).getroot()
    (title,) = atom.xpath("//a:entry/a:title", namespaces={"a": "http://www.w3.org/2005/Atom"})
    assert title.get("{http://www.w3.org/XML/1998/namespace}lang") == "ar"


def test_a_newcomer_whose_first_report_is_dated_earlier_leaves_the_page_where_it_is(
    tmp_path: Path,
) -> None:
    """A feed "ALPHA" added today whose first poll brings a report dated before any of Alpha's:
    Alpha's page existed first and keeps outlets/alpha.html. By first report, ALPHA took it."""
    from tests.support.digests import at, item, story

    yesterday, today = TODAY - timedelta(days=1), TODAY
    first = Digest(
        yesterday,
        at(yesterday, 18),
        (story("quake", "Quake", (item("Alpha", "Quake", at(yesterday, 9)),)),),
    )
    dated_earlier = item("ALPHA", "Fire", at(yesterday - timedelta(days=1), 8))
    second = Digest(today, at(today, 18), (story("fire", "Fire", (dated_earlier,)),))
    output = tmp_path / "out"
    build_site(output, [first], site_settings())
    build_site(output, [second, first], site_settings())
    assert "Quake" in (output / "outlets" / "alpha.html").read_text()
    suffixed = f"alpha-{hashlib.sha256(b'ALPHA').hexdigest()[:10]}.html"
    assert "Fire" in (output / "outlets" / suffixed).read_text()


# ---------------------------------------------------------------- reading and accessibility


def _resolved(value: str, colours: dict[str, str]) -> str:
    """`var(--tone-1)` -> that variable's colour in `colours`."""
    while value.startswith("var("):
        value = colours[value[4:].split(")")[0].split(",")[0].strip()]
    return value


def test_the_focus_ring_has_3_to_1_on_the_page_in_both_schemes() -> None:
    """WCAG 1.4.11: the amber ring had 1.9:1 on the light background."""
    from aggregator.site import builtin_templates_dir
    from tests.support.contrast import contrast, rules, scheme_colours

    css = (builtin_templates_dir() / "style.css").read_text()
    ring = rules(css)["a:focus-visible"]["outline"].split()[-1]
    for colours in scheme_colours(css):
        assert contrast(_resolved(ring, colours), colours["--bg"]) >= 3, colours["--bg"]


def test_chart_neighbours_differ_in_lightness_not_only_in_hue() -> None:
    """Bar segments side by side (.tone-N, .tone-N+1) and a timeline's plain and "joined"
    columns were told apart by hue alone (1.02 to 1.04:1): now 3:1 between neighbours, and each
    3:1 on the page, in light and dark."""
    from aggregator.site import builtin_templates_dir
    from tests.support.contrast import contrast, rules, scheme_colours

    css = (builtin_templates_dir() / "style.css").read_text()
    found = rules(css)
    for colours in scheme_colours(css):
        tones = [_resolved(found[f".tone-{n}"]["fill"], colours) for n in range(6)]
        for left, right in itertools.pairwise(tones):
            assert contrast(left, right) >= 3, (colours["--bg"], left, right)
        plain = _resolved(found[".timeline-chart .col"]["fill"], colours)
        joined = _resolved(found[".timeline-chart .col.joined"]["fill"], colours)
        assert contrast(plain, joined) >= 3, (colours["--bg"], plain, joined)
        for colour in (*tones, plain, joined):
            assert contrast(colour, colours["--bg"]) >= 3, (colours["--bg"], colour)


def test_an_outlet_count_reads_as_a_number_of_outlets(site: Path) -> None:
    """Screen readers said "14" (the label sat on a role-less div, which ARIA ignores there,
    and "outlets" was hidden): the count is plain text, "14 outlets"."""
    doc = lxml.html.parse(str(site / "index.html")).getroot()
    counts = select(doc, "div.count")
    assert counts
    for count in counts:
        assert count.get("aria-label") is None
        assert not count.xpath(".//*[@aria-hidden]")
        words = count.text_content().split()
        assert words[1:] == ["outlets" if words[0] != "1" else "outlet"], words
    assert counts[0].text_content().split() == ["14", "outlets"]


def test_only_the_page_itself_is_the_current_page_in_the_menu(site: Path) -> None:
    """A story or day page is not the Archive: the menu marks its section (aria-current="true"),
    and aria-current="page" goes only to the page the link opens."""

    def current(page: str) -> dict[str, str]:
        doc = lxml.html.parse(str(site / page)).getroot()
        return {
            a.text_content(): a.get("aria-current") for a in doc.xpath("//nav//a[@aria-current]")
        }

    assert current("index.html") == {"Today": "page"}
    assert current("archive/index.html") == {"Archive": "page"}
    assert current("outlets/index.html") == {"Outlets": "page"}
    assert current("stories/rail-strike-2026.html") == {"Archive": "true"}
    assert current("2026/11/27/index.html") == {"Archive": "true"}
    outlet = next(p for p in (site / "outlets").glob("*.html") if p.name != "index.html")
    assert current(f"outlets/{outlet.name}") == {"Outlets": "true"}


def test_a_one_report_story_page_says_each_thing_once(tmp_path: Path) -> None:
    """One report: its summary is the story's (shown once), first seen and last update are the
    same minute (one time), and "original" means nothing without others."""
    from tests.support.digests import at, item, story

    text = "Floodwater closed the harbour road overnight; crews expect to reopen it by noon."
    single = story(
        "flood-road",
        "Harbour road closed by floodwater",
        (item("Harbour Times", "Harbour road closed by floodwater", at(TODAY, 9), summary=text),),
        summary=text,
    )
    both = story(
        "two-reports",
        "Council approves budget",
        (
            item("Harbour Times", "Council approves budget", at(TODAY, 8), summary="Same."),
            item("Metro Morning", "Budget passes", at(TODAY, 9, 30), summary="Other words."),
        ),
        summary="Same.",
    )
    copied = story(
        "copied",
        "Ferry strike called off",
        (
            item("Harbour Times", "Ferry strike called off", at(TODAY, 8), summary="Same."),
            item("Metro Morning", "Ferry strike called off", at(TODAY, 9), is_copy=True),
            item("Coast Post", "Ferries to sail after all", at(TODAY, 10), summary="Other."),
        ),
        summary="Same.",
    )
    days = [Digest(TODAY, at(TODAY, 18), (single, both, copied))]
    build_site(tmp_path / "out", days, site_settings())
    page = lxml.html.parse(str(tmp_path / "out" / "stories" / "flood-road.html")).getroot()
    assert [p.text_content() for p in select(page, "p.story-summary")] == [text]
    assert not select(page, "p.item-summary")
    lede = " ".join(select(page, "header p.lede")[0].text_content().split())
    assert lede.startswith("First seen 28 Nov, 09:00 ·") and "last update" not in lede
    assert len(select(page, "header p.lede time")) == 1
    assert not select(page, "span.original")
    # with two reports: the times differ, and only the headline item's summary (the story's)
    # is left out below; "original" tells an outlet's own report from copies, so only where
    # there are copies (it was on every report of a story with none)
    page = lxml.html.parse(str(tmp_path / "out" / "stories" / "two-reports.html")).getroot()
    assert "last update 28 Nov, 09:30" in " ".join(select(page, "p.lede")[0].text_content().split())
    assert not select(page, "span.original")
    assert [p.text_content() for p in select(page, "p.item-summary")] == ["Other words."]
    page = lxml.html.parse(str(tmp_path / "out" / "stories" / "copied.html")).getroot()
    assert len(select(page, "span.original")) == 2 and len(select(page, "span.badge-copy")) == 1


def test_outlet_names_from_earlier_digests_lose_their_invisible_characters(
    tmp_path: Path,
) -> None:
    """A digest stored before names were cleaned has "Reu\u200bters" beside Reuters: once the
    store is opened (schema 8 cleans the names stored), one outlet with one page; a name of
    invisible characters only is the unknown outlet."""
    from aggregator.digest import digest_to_dict, digests_from_dicts
    from aggregator.store import Store
    from tests.support.digests import at, item, story

    reports = (
        item("Reuters", "Port shut by storm", at(TODAY, 8)),
        item("Reu\u200bters\u200f", "Storm shuts port", at(TODAY, 9)),
        item("\u200b\u2060\u202e", "Port closed", at(TODAY, 10)),
    )
    digest = Digest(TODAY, at(TODAY, 11), (story("storm", "Port shut by storm", reports),))
    database = tmp_path / "news.db"
    with Store.open(database) as store:  # as a schema 7 store kept it
        store.save_digest(TODAY.isoformat(), digest.generated_at, digest_to_dict(digest))
        store.set_meta("schema_version", "7")
    with Store.open(database) as store:
        digests = digests_from_dicts(store.digests())
    output = tmp_path / "out"
    build_site(output, digests, site_settings())
    (shown,) = json.loads((output / "stories.json").read_text())["stories"]
    assert shown["outlets"] == ["Reuters", "Unknown outlet"]
    pages = {p.name for p in (output / "outlets").glob("*.html")} - {"index.html"}
    assert pages == {"reuters.html", "unknown-outlet.html"}
    assert "\u200b" not in (output / "stories" / "storm.html").read_text(encoding="utf-8")
