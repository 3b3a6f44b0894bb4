"""The shortcuts a site build takes give what the long way gives.

A year's archive cleans and checks the text and links of every report at each build: the
common case (printable text in single spaces, a plain http(s) link) skips the full work, and
must say what the full work says. A build's fingerprints of the digests' records must change
with every field."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aggregator import site, text
from aggregator.models import DigestItem, DigestStory


def slow_clean_text(value: object, limit: int = 1000) -> str:
    """clean_text as it was: the pattern, then whitespace collapsed, then the cap."""
    cleaned = " ".join(site._FORBIDDEN_CHARS.sub("", "" if value is None else str(value)).split())
    return text.shortened(cleaned, limit)


def slow_safe_http_url(url: object) -> str | None:
    """safe_http_url as it was: urlsplit on every link."""
    if not isinstance(url, str) or not url or len(url) > 2048 or text._URL_FORBIDDEN.search(url):
        return None
    if text.http_url_problem(url):
        return None
    parts = urlsplit(url)
    return None if parts.username or parts.password else url


def test_clean_text_takes_the_short_way_only_where_the_long_way_changes_nothing() -> None:
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        for sample in (char, f"a{char}b", f"{char}{char}", f"ab {char}"):
            assert site.clean_text(sample) == slow_clean_text(sample), hex(code)
    for sample in ("", " ", "a  b", " a", "a ", "a\tb", "a\xa0b", "x" * 10, "Ünïcode ✓ 日本"):
        for limit in (1, 5, 10, 1000):
            assert site.clean_text(sample, limit) == slow_clean_text(sample, limit)
    assert site.clean_text(None) == "" and site.clean_text(42) == "42"


def test_safe_http_url_takes_the_short_way_only_for_what_urlsplit_accepts() -> None:
    schemes = (
        "http://",
        "https://",
        "HtTpS://",
        "http:/",
        "http:",
        "http:///",
        "ftp://",
        "httpſ://",
        "HTTPſ://",
        "",
    )
    hosts = ("a", "A.b", "-", ".", "a..b", "0", "1.2.3.4", "[::1]", "[::1", "a_b", "é.com")
    hosts += ("a%41", "", "user@a", "u:p@a", "a:b@c", "a b")
    ports = ("", ":", ":0", ":1", ":80", ":9999", ":65535", ":65536", ":99999", ":a", ":-1")
    rests = ("", "/", "/x@y", "?a@b", "#@", "/p:q", "\\x", "/ä", "/\u200b", "/%00", "@", "/\n")
    for parts in itertools.product(schemes, hosts, ports, rests):
        url = "".join(parts)
        assert text.safe_http_url(url) == slow_safe_http_url(url), url
    assert text.safe_http_url(None) is None and text.safe_http_url("x" * 3000) is None


def test_a_records_fingerprint_changes_with_every_field() -> None:
    when = datetime(2026, 11, 28, 9, tzinfo=UTC)
    report = DigestItem("Title", "https://a.example/1", "Outlet", when, False, "Summary")
    story = DigestStory("s-1", "Headline", report.link, ("kw",), (report,), when, when, "new")
    changed_report = {
        "title": "Other",
        "link": None,
        "outlet": "Another",
        "published": when.replace(hour=10),
        "is_copy": True,
        "summary": "",
        "feed_url": "https://a.example/feed",
        "why": "because",
        "item_id": 7,
        "lang": "ar",
    }
    changed_story = {
        "id": "s-2",
        "headline": "Other",
        "link": None,
        "keywords": ("kw", "more"),
        "items": (report, report),
        "first_seen": when.replace(hour=8),
        "last_updated": when.replace(hour=11),
        "status": "growing",
        "summary": "A summary",
        "tags": ("tag",),
        "why_not": "different",
        "why_not_story": "s-3",
        "why_not_headline": "Other",
        "revised": when,
        "lang": "he",
    }
    assert set(changed_report) == {f.name for f in dataclasses.fields(DigestItem)}
    assert set(changed_story) == {f.name for f in dataclasses.fields(DigestStory)}
    records = site._Records()
    seen = {records.text(report), records.text(story)}
    for name, value in changed_report.items():
        other = dataclasses.replace(report, **{name: value})
        seen.add(records.text(other))
        seen.add(records.text(dataclasses.replace(story, items=(other,))))
    for name, value in changed_story.items():
        seen.add(records.text(dataclasses.replace(story, **{name: value})))
    assert len(seen) == 2 + 2 * len(changed_report) + len(changed_story)
    # the same values in another object: the same fingerprint
    assert records.text(dataclasses.replace(story)) == records.text(story)
