"""Pages built from hostile feeds, opened in real Chromium: no dialog, no script, no request out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.chromium import launch_chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


def test_no_payload_runs_in_the_browser(browser: Browser, hostile_site: tuple[Path, bytes]) -> None:
    site, _ = hostile_site
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 5
    events: list[str] = []
    context = browser.new_context(java_script_enabled=True)
    context.on("dialog", lambda d: events.append(f"dialog: {d.message}"))
    # A payload that ran would also show as a request to the outside (127.0.0.1:9 in the corpus).
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file://")
            else (events.append(f"request: {route.request.url}"), route.abort())
        ),
    )
    page = context.new_page()
    page.on("pageerror", lambda e: events.append(f"page error: {e}"))
    for path in pages:
        page.goto(path.as_uri())
        page.mouse.move(10, 10)
        page.mouse.move(300, 300)  # would fire injected onmouseover handlers
        ran = page.evaluate("() => document.scripts.length")
        assert ran == 0, f"{path}: {ran} script elements"
    context.close()
    assert events == []
