"""Regenerates docs/screenshot-site.png and docs/screenshot-email.png from a demo run.

Usage: .venv/bin/python scripts/screenshots.py   (needs Debian's chromium)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from aggregator.config import load_config  # noqa: E402
from aggregator.demo import run_demo  # noqa: E402
from aggregator.digest import digests_from_dicts  # noqa: E402
from aggregator.emailer import render_email  # noqa: E402
from aggregator.store import Store  # noqa: E402
from tests.support.chromium import launch_chromium  # noqa: E402


def main() -> None:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        index = run_demo(work / "demo")
        config = load_config(work / "demo" / "feeds.yaml")
        with Store.open(config.database) as store:
            digest = digests_from_dicts(store.digests(limit=1))[0]
        message = render_email(digest, config.email, config.site)
        email_html = work / "email.html"
        email_html.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")
        # playwright's sync API runs its own event loop: start it only after the demo's polling.
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            for source, target in (
                (index, "screenshot-site.png"),
                (email_html, "screenshot-email.png"),
            ):
                page = browser.new_page(
                    viewport={"width": 1280, "height": 1000}, color_scheme="light"
                )
                page.goto(source.as_uri())
                page.screenshot(path=docs / target)
                page.close()
                print(docs / target)
            browser.close()


if __name__ == "__main__":
    main()
