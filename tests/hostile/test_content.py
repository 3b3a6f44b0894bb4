"""Hostile feed text (titles, summaries, links, outlet and feed names) never becomes markup.

The `hostile_site` fixture (conftest.py) serves tests/hostile/payloads/*.txt as RSS and Atom,
runs the real pipeline, and these tests check the outputs statically.
"""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

import feedparser

from tests.hostile.conftest import SAFE_SCHEMES, assert_inert_html


def test_site_pages_carry_no_markup_from_feeds(hostile_site: tuple[Path, bytes]) -> None:
    site, _ = hostile_site
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 5
    for page in pages:
        assert_inert_html(page.read_text(encoding="utf-8"), str(page.relative_to(site)))
    # The payload text is shown as text: a story headline with '<script>' appears escaped.
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "&lt;" in index


def test_machine_outputs_keep_links_http_only(hostile_site: tuple[Path, bytes]) -> None:
    site, _ = hostile_site
    parsed = feedparser.parse((site / "feed.xml").read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    for entry in parsed.entries:
        for link in entry.get("links", []):
            assert link["href"].startswith(SAFE_SCHEMES), link["href"]
    stories = json.loads((site / "stories.json").read_text(encoding="utf-8"))
    text = json.dumps(stories)
    for bad in ("javascript:", "vbscript:", "data:text", "file:///"):
        assert f'"link": "{bad}' not in text.lower()


def test_files_stay_inside_the_output_folder(hostile_site: tuple[Path, bytes]) -> None:
    site, _ = hostile_site
    for path in site.rglob("*"):
        assert path.resolve().is_relative_to(site.resolve())
        assert all(part.isascii() for part in path.relative_to(site).parts)
    outside = [
        p
        for p in site.parent.iterdir()
        if p.name
        not in {
            "site",
            "news.db",
            "news.db-wal",
            "news.db-shm",
            "news.db.lock",
            "feeds.yaml",
            "digest.eml",
        }
    ]
    assert outside == [], outside


def test_email_is_inert_and_has_no_injected_headers(hostile_site: tuple[Path, bytes]) -> None:
    _, eml = hostile_site
    message = message_from_bytes(eml, policy=policy.default)
    headers = {name.lower() for name in message}
    assert headers <= {
        "subject",
        "from",
        "to",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "x-mailer",
        "auto-submitted",
    }
    assert message.get_all("Bcc") is None and message.get_all("Cc") is None
    html = message.get_body(("html",)).get_content()
    assert_inert_html(html, "email")
    # Plain text cannot run anything, but it must not carry raw control characters either.
    text = message.get_body(("plain",)).get_content()
    assert not any(ord(ch) < 0x20 and ch not in "\n\t" for ch in text.replace("\r\n", "\n"))
