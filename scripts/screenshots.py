"""Regenerates docs/screenshot-site.png and docs/screenshot-email.png for the README.

Usage: .venv/bin/python scripts/screenshots.py   (needs Debian's chromium)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from aggregator.emailer import render_email  # noqa: E402
from aggregator.site import build_site  # noqa: E402
from tests.support.chromium import launch_chromium  # noqa: E402
from tests.support.digests import email_settings, realistic_digests, site_settings  # noqa: E402


def main() -> None:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    digests = realistic_digests(hostile=False)
    settings = site_settings(base_url="https://news.example.org/")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        work = Path(tmp)
        build_site(work / "site", digests, settings)
        html = render_email(digests[0], email_settings(max_stories=6), settings).get_body(("html",))
        (work / "email.html").write_text(html.get_content(), encoding="utf-8")
        browser = launch_chromium(playwright)
        for source, target in (
            ("site/index.html", "screenshot-site.png"),
            ("email.html", "screenshot-email.png"),
        ):
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, color_scheme="light")
            page.goto((work / source).as_uri())
            page.screenshot(path=docs / target)
            page.close()
            print(docs / target)
        browser.close()


if __name__ == "__main__":
    main()
