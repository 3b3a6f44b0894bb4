"""Between poll and store: what one poll of one feed should change, decided without I/O.

The poller says what happened (a `FetchOutcome`); this module decides what it means for the
store (a `FeedUpdate`: the feed's new state and the items to add, each already cleaned,
dated and named); the store only writes it. Keeping the decisions here keeps them testable
without a database and the same on every backend.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from aggregator.boilerplate import strip_boilerplate
from aggregator.models import FetchOutcome, FetchStatus, ParsedEntry
from aggregator.text import canonical_url, outlet_name, text_digest

# A date further ahead than this is a feed bug: the item is dated when we first saw it.
FUTURE_SLACK = timedelta(hours=1)
# So is one before this, older than the web: a placeholder for no date (Go's zero time, year 1;
# Unix time 0, 1970; a template's year 999), dated when first seen too.
PAST_FLOOR = datetime(1990, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NewItem:
    """An entry as it is to be stored. If its (feed, key) is known, the stored item only
    takes its title, summary and link when the feed changed its title or summary (a
    correction, see Store._record_edits)."""

    key: str  # identity within the feed (item_key)
    canonical_link: str | None  # identity across feeds: the same article through two feeds
    link: str | None
    title: str
    summary: str  # page junk already stripped (the feed's template by the parser)
    outlet: str
    published: datetime | None  # None when missing or implausible
    first_seen: datetime
    language: str | None = None  # the feed's declared language (BCP 47)

    @property
    def sort_time(self) -> datetime:
        return self.published or self.first_seen


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """One feed's poll as the store records it: its row, and (after a 200) its entries."""

    url: str
    status: FetchStatus
    checked_at: datetime
    next_due: datetime
    fetch_url: str | None  # a new permanent URL, the same as before, or None: unchanged
    host: str  # politeness unit of `aggregator worker`
    title: str | None = None
    http_status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    discovered_url: str | None = None
    consecutive_errors: int = 0
    due_reason: str | None = None  # which rule sets next_due (see schedule.py)
    retry_after: datetime | None = None  # the server's Retry-After, kept apart from backoff
    ttl_minutes: int | None = None  # the feed's RSS <ttl>, stored after a 200
    cache_seconds: int | None = None  # the response's own freshness (see FeedState)
    items: tuple[NewItem, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.status in ("ok", "not_modified")


# PostgreSQL's btree indexes hold at most 2704 bytes a row: a feed's URL (at most 2,048 bytes,
# see text.http_url_problem) with an item's key, and a canonical link on its own. A longer key
# or link is kept as a hash of itself: one entry's 3,000-character guid stopped every poll.
KEY_BYTES = 400
LINK_BYTES = 2000


def item_key(entry: ParsedEntry) -> str:
    """The identity of an entry within its feed: guid, else canonical link, else its text."""
    if entry.guid:
        return bounded_key_of("guid", entry.guid.strip())
    if entry.link:
        return bounded_key_of("link", canonical_url(entry.link))
    return "text:" + (entry.text_digest or text_digest(entry.title, entry.summary))


def link_identity(link: str) -> str:
    """An item's identity across feeds: its canonical link (a hash of it, past LINK_BYTES)."""
    canonical = canonical_url(link)
    if len(canonical.encode()) <= LINK_BYTES:
        return canonical
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def bounded_key_of(kind: str, value: str) -> str:
    """``kind:value``, or past ``KEY_BYTES`` bytes ``kind#`` and the value's hash."""
    key = f"{kind}:{value}"
    if len(key.encode()) <= KEY_BYTES:
        return key
    return f"{kind}#" + hashlib.sha256(value.encode()).hexdigest()


def host_of(url: str) -> str:
    return urlsplit(url).hostname or url


# Second-level labels under a country's code that a site's name sits below (bbc.co.uk).
_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gob", "gov", "net", "org", "ne", "or"})


def site_of(url: str) -> str:
    """The site a URL is on, its host's last two labels (three under ``co.uk``, ``com.au``):
    ``rss.cnn.com`` and ``www.cnn.com`` are one site. An approximation of the public suffix
    list: hosting platforms (``a.substack.com``, ``b.substack.com``) read as one site."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    labels = host.split(".")
    if len(labels) < 3 or all(label.isdigit() for label in labels):
        return host
    under_country = len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL
    return ".".join(labels[-3:] if under_country else labels[-2:])


def decide(outcome: FetchOutcome, outlet: str | None) -> FeedUpdate | None:
    """The store's update for one poll result; None when nothing was polled (not due).

    `outlet` is the name from feeds.yaml; without one the feed's own title, else its host.
    """
    if outcome.status == "skipped":
        return None
    feed = outcome.feed if outcome.status == "ok" else None
    items: tuple[NewItem, ...] = ()
    if feed is not None:
        # a name or title of invisible characters only names nothing: the next one does
        name = outlet_name(outlet or "") or outlet_name(feed.title or "")
        name = name or outlet_name(host_of(outcome.url))  # a host may hold a soft hyphen
        items = tuple(
            _new_item(entry, name, outcome.checked_at, feed.language) for entry in feed.entries
        )
    return FeedUpdate(
        url=outcome.url,
        status=outcome.status,
        checked_at=outcome.checked_at,
        next_due=outcome.next_due,
        fetch_url=outcome.fetch_url,
        host=host_of(outcome.fetch_url or outcome.url),
        title=outcome.feed.title if outcome.feed else None,
        http_status=outcome.http_status,
        etag=outcome.etag,
        last_modified=outcome.last_modified,
        error=outcome.error,
        discovered_url=outcome.discovered_feed_url,
        consecutive_errors=outcome.consecutive_errors,
        due_reason=outcome.due_reason,
        retry_after=outcome.retry_at,
        ttl_minutes=feed.ttl_minutes if feed is not None else None,
        cache_seconds=outcome.cache_seconds,
        items=items,
    )


_DAY_ANYWHERE = timedelta(days=2)  # a day's midnight UTC to its end in any time zone


def _new_item(
    entry: ParsedEntry, outlet: str, seen_at: datetime, language: str | None = None
) -> NewItem:
    published = entry.published
    if published is not None and not PAST_FLOOR <= published <= seen_at + FUTURE_SLACK:
        published = None
    if entry.date_only and published is not None and abs(seen_at - published) < _DAY_ANYWHERE:
        # "2026-12-07" reads as its midnight UTC: seen on that day (in some time zone), when it
        # was seen says more (it would otherwise come before every timed report of the day)
        published = None
    return NewItem(
        key=item_key(entry),
        canonical_link=link_identity(entry.link) if entry.link else None,
        link=entry.link,
        title=entry.title,
        summary=strip_boilerplate(entry.summary),
        outlet=outlet,
        published=published,
        first_seen=seen_at,
        language=language,
    )
