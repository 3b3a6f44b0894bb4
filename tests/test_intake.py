"""aggregator.intake: what a poll result means for the store, decided without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.intake import FUTURE_SLACK, PAST_FLOOR, decide
from aggregator.models import ParsedFeed
from tests.test_store import NOW, entry, outcome


def test_a_future_date_is_replaced_by_the_time_the_item_was_first_seen() -> None:
    soon, later = NOW + FUTURE_SLACK, NOW + FUTURE_SLACK + timedelta(seconds=1)
    update = decide(outcome("https://a.example/f", [entry(1, published=soon),
                                                    entry(2, published=later)]), "A")  # fmt: skip
    assert update is not None
    first, second = update.items
    assert (first.published, first.sort_time) == (soon, soon)  # within the slack: kept
    assert (second.published, second.sort_time) == (None, NOW)


def test_a_placeholder_date_older_than_the_web_is_replaced_by_the_time_first_seen() -> None:
    """Go's zero time (year 1), Unix time 0 and a template's year 999 mean "no date"."""
    placeholders = [datetime(1, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
                    datetime(999, 1, 1, tzinfo=UTC)]  # fmt: skip
    entries = [entry(k, published=p) for k, p in enumerate([*placeholders, PAST_FLOOR])]
    update = decide(outcome("https://a.example/f", entries), "A")
    assert update is not None
    assert [i.published for i in update.items] == [None, None, None, PAST_FLOOR]
    assert [i.sort_time for i in update.items[:3]] == [NOW] * 3


def test_a_day_without_a_time_seen_that_day_is_dated_when_seen() -> None:
    """A feed that gives "2026-11-28" (read as its midnight) would come before every timed
    report of the day, as its first report: seen that day, it is dated when it was seen; a
    day long past keeps its date."""
    midnight = NOW.replace(hour=0)
    old_day = midnight - timedelta(days=30)
    entries = [
        entry(1, published=midnight, date_only=True),
        entry(2, published=old_day, date_only=True),
        entry(3, published=midnight),  # a time of day given: midnight it is
    ]
    update = decide(outcome("https://a.example/f", entries), "A")
    assert update is not None
    assert [(i.published, i.sort_time) for i in update.items] == [
        (None, NOW),
        (old_day, old_day),
        (midnight, midnight),
    ]


def test_page_junk_is_stripped_and_links_are_canonical() -> None:
    junk = entry(1, summary="Talks began on Sunday as planned. - Advertisement - Buy now")
    (item,) = decide(outcome("https://a.example/f", [junk]), "A").items  # type: ignore[union-attr]
    assert item.summary == "Talks began on Sunday as planned."
    assert item.canonical_link == "https://news.example/1"
    assert item.key == "guid:guid-1"


@pytest.mark.parametrize(
    ("configured", "feed_title", "expected"),
    [("Configured", "Feed title", "Configured"), (None, "Feed title", "Feed title"),
     (None, None, "a.example")],
)  # fmt: skip
def test_the_outlet_is_the_configured_name_else_the_feed_title_else_the_host(
    configured: str | None, feed_title: str | None, expected: str
) -> None:
    result = outcome("https://a.example/f", [entry(1)])
    result = replace(result, feed=replace(result.feed, title=feed_title))
    update = decide(result, configured)
    assert update is not None and {i.outlet for i in update.items} == {expected}


def test_only_a_fetched_feed_brings_items_and_a_skipped_one_changes_nothing() -> None:
    feed = ParsedFeed(title="T", link=None, entries=(entry(1),))
    failed = outcome("https://a.example/f", [], status="error", feed=feed, error="HTTP 500")
    update = decide(failed, "A")
    assert update is not None and update.items == () and update.error == "HTTP 500"
    assert update.host == "a.example" and not update.succeeded
    assert decide(outcome("https://a.example/f", [], status="skipped", feed=None), "A") is None


def test_a_host_named_with_an_invisible_character_is_cleaned_as_any_name() -> None:
    """A feed without a name or title is named by its host, which may hold a soft hyphen
    ("news\\xadwire.example" passes as a host): cleaned as names are, since the store keeps
    names as intake gives them."""
    result = outcome("https://news\xadwire.example/f", [entry(1)])
    result = replace(result, feed=replace(result.feed, title=None))
    update = decide(result, None)
    assert update is not None and {i.outlet for i in update.items} == {"newswire.example"}


@pytest.mark.parametrize(
    "raw",
    ["\u0647\u0645\u200c\u200b", "a\u200c\u200c\u0628", "\u0628\u200c\u200c\u0628",
     "\u0628\u200c\u200b\u200c\u0628", "Reu\u200bters\u200f", "\u0645\u06cc\u200c\u0631\u0648"],
)  # fmt: skip
def test_a_name_cleaned_once_is_clean(raw: str) -> None:
    """Intake stores a name cleaned once and schema 8 cleaned stored names again: a joiner
    next to another invisible character went only the second time, and one outlet had two
    names across the upgrade."""
    from aggregator.text import outlet_name

    once = outlet_name(raw)
    assert outlet_name(once) == once


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://rss.cnn.com/rss/edition.rss", "cnn.com"),
        ("https://www.cnn.com/2026/world/x", "cnn.com"),
        ("https://feeds.bbci.co.uk/news/rss.xml", "bbci.co.uk"),
        ("https://www.abc.net.au/news", "abc.net.au"),
        ("https://example.org/feed", "example.org"),
        ("http://127.0.0.1:8000/feed.xml", "127.0.0.1"),
        ("https://localhost/feed", "localhost"),
    ],
)
def test_the_site_of_a_url(url: str, site: str) -> None:
    from aggregator.intake import site_of

    assert site_of(url) == site
