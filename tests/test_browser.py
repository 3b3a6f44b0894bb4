"""The site in real Chromium, opened from file://, on a phone and a desktop viewport."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage

from aggregator.serve import make_server
from aggregator.site import build_site, story_slug
from tests.support.chromium import chromium_path
from tests.support.digests import (
    HOSTILE_STORY_ID,
    RTL_HEADLINE,
    TODAY,
    realistic_digests,
    site_settings,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="Chromium is not installed"),
]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
VIEWPORTS = {"phone": (360, 740), "desktop": (1280, 800)}
PAGES = {
    "index": "index.html",
    "day": "2026/11/27/index.html",
    "story": "stories/rail-strike-2026.html",
    "hostile-story": f"stories/{story_slug(HOSTILE_STORY_ID)}.html",
    "archive": "archive/index.html",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("browser") / "site"
    build_site(output, realistic_digests(), site_settings())
    return output


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    from tests.support.chromium import launch_chromium

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


# Every page in light mode on both viewports; dark mode on the two main page types; and the
# home page once more over HTTP from the preview server, whose Content-Security-Policy would
# report anything inline.
CASES = [
    *[(name, viewport, "light", "file") for name in PAGES for viewport in VIEWPORTS],
    *[(name, viewport, "dark", "file") for name in ("index", "story") for viewport in VIEWPORTS],
    ("index", "desktop", "light", "http"),
]


@pytest.fixture(scope="module")
def server_url(site: Path) -> Iterator[str]:
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def is_error(message: ConsoleMessage) -> bool:
    # Browsers ask any HTTP host for /favicon.ico on their own; the site does not link one.
    return message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico")


@pytest.mark.parametrize(("name", "viewport", "scheme", "via"), CASES)
def test_page_renders_cleanly(
    browser, site: Path, server_url: str, name: str, viewport: str, scheme: str, via: str
) -> None:
    url = (site / PAGES[name]).as_uri() if via == "file" else server_url + PAGES[name]
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme=scheme,
        java_script_enabled=True,  # so a successful injection would be noticed
    )
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"console: {m.text}") if is_error(m) else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on(
        "request",
        lambda r: None if r.url.startswith(("file://", server_url)) else problems.append(r.url),
    )
    try:
        page.goto(url)
        page.hover("h1")  # would fire an injected onmouseover nearby
        layout = page.evaluate(
            """() => ({
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: window.innerWidth,
                font: getComputedStyle(document.body).fontFamily,
                scripts: document.scripts.length,
            })"""
        )
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"{name}-{viewport}-{scheme}-{via}.png"
        page.screenshot(path=shot, full_page=True)
    finally:
        context.close()
    assert not problems, problems
    assert layout["scrollWidth"] <= layout["innerWidth"], f"horizontal overflow: {layout}"
    assert "system-ui" in layout["font"], "the stylesheet did not load"
    assert layout["scripts"] == 0


RTL_BLOCKS = {
    "day": ("h3.headline", "section.section .compact li"),
    "story": ("p.item-title",),
    "outlet": ("p.item-title",),
}


@pytest.mark.parametrize("name", list(RTL_BLOCKS))
def test_a_right_to_left_headline_stands_at_the_right(browser, site: Path, name: str) -> None:
    """dir="auto" sat on the link inside a headline's block: an Arabic headline ran right to
    left but stood at the left edge. The block takes its direction from its text."""
    import lxml.html

    story = f"stories/{story_slug(f'rtl-{TODAY.isoformat()}')}.html"
    outlet = lxml.html.parse(str(site / story)).getroot().xpath("//a[@class='outlet']/@href")[0]
    page_name = {"day": "index.html", "story": story, "outlet": outlet.removeprefix("../")}[name]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto((site / page_name).as_uri())
        found = page.evaluate(
            """([selectors, headline]) => [...document.querySelectorAll(selectors.join(','))]
                .filter(block => block.textContent.includes(headline))
                .map(block => {
                    const link = block.querySelector('a'), box = block.getBoundingClientRect();
                    return {
                        tag: block.tagName, direction: getComputedStyle(block).direction,
                        gap: box.right - link.getBoundingClientRect().right,
                        width: link.getBoundingClientRect().width, room: box.width,
                    };
                })""",
            [list(RTL_BLOCKS[name]), RTL_HEADLINE],
        )
    finally:
        context.close()
    assert len(found) == len(RTL_BLOCKS[name]), (page_name, found)
    for block in found:
        assert block["direction"] == "rtl", block
        assert block["width"] < block["room"] - 50 and abs(block["gap"]) < 1, block


# ---------------------------------------------------------------- coverage charts (inline SVG)

CHART_PAGES = {
    "coverage-day": "index.html",
    "three-day-story": "stories/bridge-2026.html",
    "one-day-story": "stories/flood.html",
    "outlets-value": "outlets/index.html",
}


@pytest.fixture(scope="module")
def chart_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aggregator.feedvalue import FeedValue
    from tests.support.coverage import coverage_digests, spec
    from tests.support.digests import LONG_WORD

    values = [
        FeedValue("https://x.example/", LONG_WORD, 0, 0, 0, 0, 0, None, 7),
        FeedValue("https://right-uk.example/feed", "Right UK", 3, 2, 0, 0, 1, 120.5, 0),
        FeedValue("https://left-uk.example/feed", "Left UK", 5, 4, 2, 1, 0, 0.0, 0),
    ]
    output = tmp_path_factory.mktemp("charts") / "site"
    build_site(output, coverage_digests(), site_settings(), coverage=spec(), feed_values=values)
    return output


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("name", list(CHART_PAGES))
def test_charts_render_without_errors_or_overflow(
    browser, chart_site: Path, name: str, viewport: str, scheme: str
) -> None:
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"console: {m.text}") if is_error(m) else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        page.goto((chart_site / CHART_PAGES[name]).as_uri())
        found = page.evaluate(
            """() => ({
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: window.innerWidth,
                background: getComputedStyle(document.body).backgroundColor,
                charts: [...document.querySelectorAll('svg')].map(svg => {
                    const box = svg.getBoundingClientRect();
                    const shape = svg.querySelector('rect:not(.track):not(.axis)');
                    return {
                        left: box.left, right: box.right, width: box.width, height: box.height,
                        label: svg.getAttribute('aria-label'),
                        title: svg.querySelector('title')?.textContent,
                        fill: shape ? getComputedStyle(shape).fill : null,
                    };
                }),
            })"""
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{name}-{viewport}-{scheme}.png", full_page=True)
    finally:
        context.close()
    assert not problems, problems
    assert found["scrollWidth"] <= found["innerWidth"], f"horizontal overflow: {found}"
    assert found["charts"], "no chart on the page"
    for chart in found["charts"]:
        assert chart["label"] and chart["title"] == chart["label"], chart
        assert chart["width"] > 0 and chart["height"] > 0, chart
        assert chart["left"] >= 0 and chart["right"] <= found["innerWidth"], chart
    # coloured by the stylesheet (an empty bar has no shape), never in the page's background
    fills = [chart["fill"] for chart in found["charts"] if chart["fill"] is not None]
    assert fills, found["charts"]
    assert not {"none", "rgb(0, 0, 0)", found["background"]} & set(fills), fills


@pytest.mark.parametrize("name", ["coverage-day", "three-day-story", "outlets-value"])
def test_charts_pass_the_content_security_policy_over_http(
    browser, chart_site: Path, name: str
) -> None:
    """The preview server sends the site's CSP as a header: inline SVG styled from style.css
    must not trip it (a violation is a console error)."""
    server = make_server(chart_site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    context = browser.new_context(viewport={"width": 360, "height": 740})
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if is_error(m) else None)
        response = page.goto(f"http://127.0.0.1:{server.server_address[1]}/{CHART_PAGES[name]}")
        assert response is not None
        assert "default-src 'none'" in response.headers["content-security-policy"]
        charts = page.evaluate("() => document.querySelectorAll('svg[role=img]').length")
    finally:
        context.close()
        server.shutdown()
        server.server_close()
    assert not problems, problems
    assert charts > 0


def test_a_screen_reader_hears_a_coverage_bar_once(browser, chart_site: Path) -> None:
    """The bar's label ("Coverage by lean: left 2 outlets, ...") and the name and legend shown
    beside it were both read: the same figures twice in a row."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto((chart_site / CHART_PAGES["coverage-day"]).as_uri())
        rows = page.locator(".coverage-row")
        heard = [rows.nth(n).aria_snapshot() for n in range(rows.count())]
        shown = [rows.nth(n).text_content() for n in range(rows.count())]
    finally:
        context.close()
    assert heard, "no coverage bar"
    for said, seen in zip(heard, shown, strict=True):
        assert said.startswith("- 'img \"Coverage by ") and said.count("\n") == 0, said
        dimension, first_value = seen.split()[:2]
        assert said.count(first_value) == 1 and f"by {dimension}:" in said, (said, seen)


# ---------------------------------------------------------------- long tag names at 360 px

LONG_DIMENSIONS = (
    ("ownership", ("public-broadcaster", "private-conglomerate", "independent-nonprofit")),
    ("geographical-focus", ("international-affairs", "national-politics")),
)
LONG_TAGS = {
    "Left UK": ("public-broadcaster", "international-affairs"),
    "Left US": ("public-broadcaster", "international-affairs"),
    "Right UK": ("private-conglomerate", "national-politics"),
    "Right US": ("independent-nonprofit", "national-politics"),
    "Centre World": ("private-conglomerate", "independent-nonprofit", "international-affairs"),
}


@pytest.fixture(scope="module")
def long_tag_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real users name tags like `public-broadcaster`: legends, the coverage label and the
    blind-spot note must wrap on a phone rather than push the page sideways."""
    from aggregator.config import CoverageDimension, FeedConfig
    from aggregator.coverage import coverage_spec
    from tests.support.coverage import FEEDS, coverage_digests

    feeds = [FeedConfig(f.url, f.name, LONG_TAGS.get(f.name or "", ())) for f in FEEDS]
    dimensions = [CoverageDimension(name, values) for name, values in LONG_DIMENSIONS]
    output = tmp_path_factory.mktemp("long-tags") / "site"
    build_site(
        output, coverage_digests(), site_settings(), coverage=coverage_spec(dimensions, feeds)
    )
    return output


@pytest.mark.parametrize("name", ["coverage-day", "three-day-story", "one-day-story"])
def test_long_tag_names_wrap_on_a_phone(browser, long_tag_site: Path, name: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        page.goto((long_tag_site / CHART_PAGES[name]).as_uri())
        found = page.evaluate(
            """() => ({
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: window.innerWidth,
                text: document.body.innerText,
                outside: [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                    .map(e => `${e.tagName}.${e.className.baseVal ?? e.className}`),
            })"""
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"long-tags-{name}-phone.png", full_page=True)
    finally:
        context.close()
    assert "independent-nonprofit" in found["text"]  # the long names are on the page
    assert found["scrollWidth"] <= found["innerWidth"], f"horizontal overflow: {found}"
    assert not found["outside"], found["outside"]


# ---------------------------------------------------------------- reading and accessibility

# WCAG 2.2 2.5.8: a target under 24 x 24 px passes when a 24 px circle on its centre touches no
# other target, nor another small target's circle.
TARGET_SPACING = """(selector) => {
    const boxes = [...document.querySelectorAll(selector)]
        .map(e => ({text: e.textContent.trim().slice(0, 30), box: e.getBoundingClientRect()}))
        .filter(t => t.box.width > 0 && t.box.height > 0);
    const centre = b => [b.left + b.width / 2, b.top + b.height / 2];
    const small = b => b.width < 24 || b.height < 24;
    const gap = ([x, y], b) => Math.hypot(
        Math.max(b.left - x, 0, x - b.right), Math.max(b.top - y, 0, y - b.bottom));
    const problems = [];
    for (const a of boxes) {
        if (!small(a.box)) continue;
        const c = centre(a.box);
        for (const b of boxes) {
            if (a === b) continue;
            const [x, y] = centre(b.box);
            const apart = Math.min(gap(c, b.box) + 12, small(b.box) ? Math.hypot(c[0] - x, c[1] - y) : 99);
            if (apart < 24 - 0.01) problems.push(`${a.text} / ${b.text}: ${apart.toFixed(1)} px`);
        }
    }
    return {targets: boxes.length, problems};
}"""


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize(
    ("name", "selector"),
    [("index", ".sources a"), ("story", ".item-source .outlet, .item-title a")],
)
def test_outlet_links_have_24px_target_spacing(
    browser, site: Path, name: str, selector: str, viewport: str
) -> None:
    """Cards' outlet links were 16 px tall in rows 22.7 px apart, and a story page's outlet link
    sat 12 px from its item's title link."""
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto((site / PAGES[name]).as_uri())
        found = page.evaluate(TARGET_SPACING, selector)
    finally:
        context.close()
    assert found["targets"] > 10, found
    assert not found["problems"], found["problems"][:10]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_link_to_all_outlets_says_which_story(browser, site: Path, viewport: str) -> None:
    """ "all 14 →" was all a screen reader heard of it, on every card: its name says whose
    outlets, while the page shows what it did."""
    import re

    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto((site / "index.html").as_uri())
        links = page.locator(".sources .more a")
        found = [
            {
                "heard": links.nth(n).aria_snapshot(),
                **links.nth(n).evaluate(
                    """a => {
                        const span = a.querySelector('.visually-hidden');
                        const hidden = span && span.getBoundingClientRect();
                        return {
                            shown: [...a.childNodes].filter(n => n.className !== 'visually-hidden')
                                .map(n => n.textContent).join(''),
                            hidden: hidden && [hidden.width, hidden.height],
                            headline: a.closest('li.story').querySelector('h3').textContent,
                        };
                    }"""
                ),
            }
            for n in range(links.count())
        ]
        scroll = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    finally:
        context.close()
    assert len(found) > 3, found
    for link in found:
        assert re.fullmatch(r"all \d+ →", link["shown"]) and link["hidden"] == [1, 1], link
        number = link["shown"].split()[1]
        name = f"all {number} outlets reporting: {link['headline']}"
        assert f"link {json.dumps(name)}" in link["heard"], link
    assert scroll <= 0


@pytest.mark.parametrize("name", ["index", "story"])
def test_a_page_printed_from_dark_mode_has_dark_text_on_white(
    browser, site: Path, name: str
) -> None:
    """Printed from dark mode, a page kept its light grey text (#e6e8eb): faint on paper, where
    its dark background is not printed."""
    from tests.support.contrast import contrast, rgb_hex

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto((site / PAGES[name]).as_uri())
        page.emulate_media(media="print", color_scheme="dark")
        found = page.evaluate(
            """() => ({
                page: getComputedStyle(document.body).backgroundColor,
                texts: [...document.querySelectorAll('h1, h3, p, li, a, time, span')]
                    .filter(e => e.getClientRects().length && e.textContent.trim())
                    .map(e => [e.tagName + '.' + e.className, getComputedStyle(e).color]),
            })"""
        )
    finally:
        context.close()
    assert rgb_hex(found["page"]) == "#ffffff", found["page"]
    assert len(found["texts"]) > 20
    faint = [(e, c) for e, c in found["texts"] if contrast(rgb_hex(c), "#ffffff") < 4.5]
    assert not faint, faint[:10]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_keyword_chips_keep_apart_from_the_next_line(browser, site: Path, viewport: str) -> None:
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto((site / "index.html").as_uri())
        gaps = page.evaluate(
            """() => [...document.querySelectorAll('.story-body .keywords')].map(k =>
                k.nextElementSibling.getBoundingClientRect().top - k.getBoundingClientRect().bottom)"""
        )
    finally:
        context.close()
    assert gaps and min(gaps) >= 4, gaps  # 0 px before


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_skip_links_focus_ring_is_whole_and_has_contrast(
    browser, site: Path, scheme: str
) -> None:
    """The first Tab shows "Skip to content" with its focus ring inside the window (its top edge
    was cut off) in a colour with 3:1 on the page (the amber had 1.9:1 in light mode)."""
    from tests.support.contrast import contrast, rgb_hex

    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto((site / "index.html").as_uri())
        page.keyboard.press("Tab")
        found = page.evaluate(
            """() => {
                const link = document.activeElement, style = getComputedStyle(link);
                const ring = parseFloat(style.outlineWidth) + parseFloat(style.outlineOffset);
                const box = link.getBoundingClientRect();
                return {
                    text: link.textContent, top: box.top - ring, left: box.left - ring,
                    outline: style.outlineStyle, ring: style.outlineColor,
                    page: getComputedStyle(document.body).backgroundColor,
                };
            }"""
        )
    finally:
        context.close()
    assert found["text"] == "Skip to content" and found["outline"] == "solid", found
    assert found["top"] >= 0 and found["left"] >= 0, found
    assert contrast(rgb_hex(found["ring"]), rgb_hex(found["page"])) >= 3, found


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_email_fits_a_phone_with_a_very_long_headline(browser, scheme: str) -> None:
    """A 120-character URL-like headline and a long outlet name widened the email past a
    390 px window; phones also get 16 px of padding instead of 28. A copy's outlet keeps its grey
    in dark mode."""
    import dataclasses

    from aggregator.emailer import render_email
    from tests.support.contrast import contrast, rgb_hex
    from tests.support.digests import email_settings, long_word_story

    digest = realistic_digests()[0]
    digest = dataclasses.replace(digest, stories=(long_word_story(digest.day), *digest.stories))
    html = render_email(digest, email_settings(), site_settings()).get_body(("html",)).get_content()
    found = {}
    for width in (390, 640):
        context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme)
        try:
            page = context.new_page()
            page.set_content(html)
            found[width] = page.evaluate(
                """() => ({
                    scrollWidth: document.documentElement.scrollWidth,
                    innerWidth: window.innerWidth,
                    padding: getComputedStyle(document.querySelector('td.story')).paddingLeft,
                    card: getComputedStyle(document.querySelector('.container')).backgroundColor,
                    badges: [...document.querySelectorAll('.badge-new, .badge-growing')]
                        .map(b => getComputedStyle(b).color),
                    copy: getComputedStyle(document.querySelector('.sources a.copy')).color,
                    link: getComputedStyle(document.querySelector('.sources a:not(.copy)')).color,
                })"""
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / f"email-{width}-{scheme}.png", full_page=True)
        finally:
            context.close()
    phone, wide = found[390], found[640]
    assert phone["scrollWidth"] <= phone["innerWidth"], phone
    assert (phone["padding"], wide["padding"]) == ("16px", "28px")
    assert phone["badges"], phone
    for colour in phone["badges"]:
        assert contrast(rgb_hex(colour), rgb_hex(phone["card"])) >= 4.5, (colour, phone["card"])
    # a copy's grey stays apart from the other outlets' links (dark mode made it their blue)
    assert phone["copy"] != phone["link"], phone
    assert contrast(rgb_hex(phone["copy"]), rgb_hex(phone["card"])) >= 4.5, phone


@pytest.mark.parametrize("styles", ["kept", "stripped"])
def test_the_email_fits_a_360px_phone_with_a_long_keyword(browser, styles: str) -> None:
    """A 40-character URL-like keyword on the meta line scrolled the email sideways at 360 px:
    the line breaks anywhere, also in a client that strips <style> (the inlined styles)."""
    import dataclasses
    import re

    from aggregator.emailer import render_email
    from tests.support.digests import LONG_KEYWORD, email_settings, long_word_story

    digest = realistic_digests()[0]
    digest = dataclasses.replace(digest, stories=(long_word_story(digest.day), *digest.stories))
    html = render_email(digest, email_settings(), site_settings()).get_body(("html",)).get_content()
    if styles == "stripped":
        html, found = re.subn(r"<style>.*?</style>", "", html, flags=re.S)
        assert found == 1
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        page.set_content(html)
        found = page.evaluate(
            """() => ({
                scrollWidth: document.documentElement.scrollWidth,
                innerWidth: window.innerWidth,
                meta: [...document.querySelectorAll('.meta')].map(m => m.textContent),
            })"""
        )
    finally:
        context.close()
    assert any(LONG_KEYWORD in meta for meta in found["meta"]), found["meta"]
    assert found["scrollWidth"] <= found["innerWidth"], found
