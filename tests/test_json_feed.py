"""JSON Feed 1.0 and 1.1 (jsonfeed.org): read like RSS and Atom, with the same limits and safety."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.models import FeedState
from aggregator.parse import (
    SUMMARY_MAX_CHARS,
    FeedParseError,
    NotAFeedError,
    parse_feed,
)
from aggregator.poller import PollOptions, discover, poll
from tests.support import feedserver
from tests.support.feedserver import FeedServer

feed_server = feedserver.feed_server

URL = "https://blog.example/feed.json"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FAST = PollOptions(parse_processes=0, trust_env=False)


def feed_11(**overrides: object) -> dict:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "A &amp; B <i>Blog</i>",
        "home_page_url": "https://blog.example/",
        "feed_url": URL,
        "authors": [{"name": "Ada"}],
        "items": [
            {
                "id": "post-1",
                "url": "/2026/11/bridge",
                "title": "Council votes on the bridge",
                "content_html": "<p>The council <b>approved</b> it.</p><script>alert(1)</script>",
                "summary": "A short summary.",
                "date_published": "2026-11-28T10:00:00+01:00",
                "authors": [{"name": "Ada", "url": "https://blog.example/ada"}],
            },
            {
                "id": "post-2",
                "external_url": "https://news.example/storm",
                "content_text": "  Storm   closes\nthe port.  ",
                "date_modified": "2026-11-27T08:30:00Z",
            },
            {
                "id": "post-3",
                "url": "javascript:alert(1)",
                "title": "Only a title",
                "content_html": "<p>Para one.</p><p>Para two.</p>",
            },
        ],
    }
    document.update(overrides)
    return document


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def test_json_feed_1_1_is_read_like_rss() -> None:
    parsed = parse_feed(body(feed_11()), url=URL, content_type="application/feed+json")

    assert parsed.title == "A &amp; B <i>Blog</i>"  # plain text by the spec: shown escaped
    assert parsed.link == "https://blog.example/"
    first, second, third = parsed.entries
    assert first.guid == "post-1"
    assert first.link == "https://blog.example/2026/11/bridge"  # resolved against feed_url
    assert first.summary == "A short summary."  # summary wins over the content
    assert first.published == datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert second.link == "https://news.example/storm"  # external_url when there is no url
    assert second.title == ""
    assert second.summary == "Storm closes the port."
    assert second.published == datetime(2026, 11, 27, 8, 30, tzinfo=UTC)  # date_modified
    assert third.link is None  # only http(s) links
    assert third.summary == "Para one. Para two."  # HTML reduced to text, blocks kept apart


def test_content_html_is_plain_texted_and_capped() -> None:
    long_html = "<p>" + "word " * 2_000 + "</p><script>steal()</script><style>x{}</style>"
    document = feed_11(items=[{"id": "1", "title": "t", "content_html": long_html}])
    (entry,) = parse_feed(body(document), url=URL).entries
    assert "<" not in entry.summary and "steal" not in entry.summary
    assert len(entry.summary) <= SUMMARY_MAX_CHARS and entry.summary.endswith("…")


def test_json_feed_1_0_with_numeric_ids_and_author() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1",
        "title": "Old",
        "author": {"name": "Bob"},
        "items": [{"id": 42, "url": "https://old.example/42", "content_text": "Hello"}],
    }
    (entry,) = parse_feed(body(document), url=URL).entries
    assert (entry.guid, entry.link, entry.summary) == ("42", "https://old.example/42", "Hello")


@pytest.mark.parametrize(
    "content_type", ["application/feed+json", "application/json", "text/plain", "text/html", None]
)
def test_found_by_content_type_or_by_sniffing(content_type: str | None) -> None:
    raw = b"\xef\xbb\xbf\n  " + body(feed_11())  # a BOM and blank lines first
    assert len(parse_feed(raw, url=URL, content_type=content_type).entries) == 3


def test_wrong_field_types_are_ignored_not_fatal() -> None:
    items = [
        {"id": ["x"], "url": 5, "title": {"a": 1}, "summary": None, "content_text": "kept"},
        "not an item",
        {"id": "empty"},
        {"id": "d", "title": "bad date", "date_published": "yesterday-ish" * 10},
    ]
    parsed = parse_feed(body(feed_11(items=items, title=7, home_page_url=[])), url=URL)
    assert [(e.guid, e.summary) for e in parsed.entries] == [(None, "kept"), ("d", "")]
    assert parsed.entries[1].published is None
    assert (parsed.title, parsed.link) == (None, None)


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', None, "invalid JSON at"),
        (b'{"title": "no version", "items": []}', None, "JSON, but not a JSON Feed"),
        (b"[1, 2, 3]", None, "top level is not an object"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', None, '"items" is missing'),
        (b"[" * 100_000 + b"]" * 100_000, None, "not a valid JSON Feed: arrays or objects nested"),
        (b'{"n": ' + b"9" * 5_000 + b"}", None, "not a valid JSON Feed: a number too long to read"),
        (b"plain words, no feed", "application/json", "invalid JSON at"),
        (b"plain words, no feed", "text/plain", "neither an XML feed (RSS, Atom) nor a JSON Feed"),
        (b"\x00\x01 binary", None, "neither an XML feed"),
    ],
)
def test_what_is_wrong_is_said(raw: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(FeedParseError, match=None) as error:
        parse_feed(raw, url=URL, content_type=content_type)
    assert message in str(error.value)
    assert "not well-formed" not in str(error.value)


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["id", "url", "title", "items", "summary", "content_html", "x"]),
                children,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_any_json_is_a_feed_or_a_feed_parse_error(items: object) -> None:
    document = {"version": "https://jsonfeed.org/version/1.1", "items": items}
    try:
        parsed = parse_feed(json.dumps(document).encode(), url=URL)
    except FeedParseError:
        return
    for entry in parsed.entries:
        assert entry.link is None or entry.link.startswith(("http://", "https://"))


# ---------------------------------------------------------------- discovery and polling


def test_an_html_page_links_to_its_json_feed() -> None:
    page = (
        b"<html><head><link rel='alternate' type='application/feed+json' href='/feed.json'>"
        b"</head><body>hi</body></html>"
    )
    with pytest.raises(NotAFeedError) as found:
        parse_feed(page, url="https://blog.example/", content_type="text/html")
    assert found.value.discovered_url == "https://blog.example/feed.json"


def test_polled_and_discovered_from_a_real_server(feed_server: FeedServer) -> None:
    feed_server.route(
        "/feed.json", body=body(feed_11()), headers={"Content-Type": "application/feed+json"}
    )
    feed_server.route(
        "/",
        body="<html><head><link rel=alternate type='application/feed+json' href='/feed.json'>",
        headers={"Content-Type": "text/html"},
    )
    url = feed_server.url("/feed.json")
    (outcome,) = poll(
        [FeedState(url=url, fetch_url=url, allow_private=True)], now=NOW, options=FAST
    )
    assert outcome.status == "ok" and outcome.feed is not None
    assert len(outcome.feed.entries) == 3
    assert "application/feed+json" in feed_server.requests[0].headers["Accept"]

    found = asyncio.run(discover(feed_server.url("/"), allow_private=True, options=FAST))
    assert (found.url, found.title) == (url, "A &amp; B <i>Blog</i>")
