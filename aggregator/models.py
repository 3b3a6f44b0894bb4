"""Small frozen records passed between the stages.

parse -> ParsedFeed/ParsedEntry -> poll -> FetchOutcome -> store -> Item
-> grouping -> labels per item -> stories -> Story -> digest -> DigestStory -> site/email.
Each stage takes and returns these, so every stage can be tested without the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

# ---------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry of a feed, already reduced to plain text and absolute http(s) links."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    published: datetime | None  # timezone-aware UTC, or None when the feed gives no date
    # For an entry with neither guid nor link, the digest of its text as the feed gave it, set
    # where the parser cut the feed's template from its summary: whether a template is found
    # depends on the feed's other entries, so the entry's identity must not.
    text_digest: str | None = None
    date_only: bool = False  # the feed gave a day without a time ("2026-12-07")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    link: str | None
    entries: tuple[ParsedEntry, ...]
    ttl_minutes: int | None = None  # RSS <ttl>
    language: str | None = None  # the language it declares, a BCP 47 tag (text.language_tag)


# ---------------------------------------------------------------- polling


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the poller needs to know about a feed from earlier polls (from the store)."""

    url: str  # the URL as configured in feeds.yaml: the feed's identity
    fetch_url: str  # where to fetch now (differs from url after a permanent redirect)
    etag: str | None = None
    last_modified: str | None = None
    next_due: datetime | None = None
    consecutive_errors: int = 0
    gone: bool = False
    ttl_minutes: int | None = None  # RSS <ttl> of the last 200: a 304 is scheduled with it
    allow_private: bool = False
    min_interval: timedelta | None = None  # the feed's own floor, replacing poll.* floors
    retry_after: datetime | None = None  # the server's last Retry-After: not asked before it
    # the freshness (Cache-Control max-age, Expires) of the last response that gave one: a
    # 304 that gives none is fresh as long (RFC 9111 4.3.4: its stored headers stand)
    cache_seconds: int | None = None


FetchStatus = Literal["ok", "not_modified", "error", "gone", "skipped"]


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """The result of polling one feed: never an exception."""

    url: str  # FeedState.url
    status: FetchStatus
    checked_at: datetime
    next_due: datetime
    http_status: int | None = None
    fetch_url: str | None = None  # new permanent URL after a 301/308, else the same as before
    etag: str | None = None
    last_modified: str | None = None
    feed: ParsedFeed | None = None
    error: str | None = None
    discovered_feed_url: str | None = None  # the body was an HTML page linking to this feed
    consecutive_errors: int = 0
    due_reason: str | None = None  # why next_due is not the next run (schedule.py's reasons)
    retry_at: datetime | None = None  # the server's Retry-After, kept across config changes
    refused: bool = False  # refused by our own policy (private address, bad URL): no backoff
    # a response's own freshness, in seconds (None: it gave none; see FeedState.cache_seconds)
    cache_seconds: int | None = None


# ---------------------------------------------------------------- stored items and stories


@dataclass(frozen=True, slots=True)
class Item:
    """A stored entry, as the grouping and the digest see it."""

    id: int
    title: str
    summary: str
    outlet: str
    link: str | None
    published: datetime  # the feed's date, else the time it was first seen
    feed_url: str = ""
    tags: tuple[str, ...] = ()
    full_text: str = ""  # the article page's main text (its start), when fetched
    language: str | None = None  # its feed's language when it was stored (BCP 47), if declared


StoryStatus = Literal["new", "growing", "unchanged"]


@dataclass(frozen=True, slots=True)
class StoryMember:
    item: Item
    copy_of: int | None = None  # id of the item this looks copied from (near-identical text)
    why: str = ""  # why it belongs to its story, e.g. "0.82 similar, shares Okafor"

    @property
    def is_copy(self) -> bool:
        return self.copy_of is not None


@dataclass(frozen=True, slots=True)
class Story:
    id: str
    headline_item_id: int
    members: tuple[StoryMember, ...]
    keywords: tuple[str, ...] = ()
    status: StoryStatus = "new"
    why_not: str = ""  # why the closest other story stayed apart, e.g. "different names: A / B"
    why_not_story: str = ""  # that story's id
    why_not_headline: str = ""  # and its headline

    @property
    def headline(self) -> Item:
        return next(m.item for m in self.members if m.item.id == self.headline_item_id)

    @property
    def outlets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.item.outlet for m in self.members))

    @property
    def first_seen(self) -> datetime:
        return min(m.item.published for m in self.members)

    @property
    def last_updated(self) -> datetime:
        return max(m.item.published for m in self.members)


@dataclass(frozen=True, slots=True)
class StoryItemRecord:
    """One stored item with the story it is in, as feed value (feedvalue.py) reads them."""

    item_id: int
    feed_url: str
    outlet: str
    published: datetime
    story_id: str | None  # None until the item was clustered
    copy_of_outlet: str | None = None  # the outlet of the item this one nearly repeats
    # False for an item from before the window, of a story the window's items are in: it
    # decides who was first or alone, and counts for no feed
    in_window: bool = True


# ---------------------------------------------------------------- digest (what the site and email render)


@dataclass(frozen=True, slots=True)
class DigestItem:
    title: str
    link: str | None  # only http(s), else None
    outlet: str
    published: datetime
    is_copy: bool
    summary: str = ""
    feed_url: str = ""  # which configured feed it came from: its tags give the story's coverage
    why: str = ""  # why it belongs to the story (evidence, untrusted feed text inside)
    # The item's id in the store: one report across runs when its feed corrects its title and
    # link. None in digests stored before it was recorded.
    item_id: int | None = None
    lang: str | None = None  # its feed's language (BCP 47), for the pages' lang attributes


@dataclass(frozen=True, slots=True)
class DigestStory:
    id: str  # stable story id, safe for file names: [a-z0-9-]
    headline: str
    link: str | None  # the headline item's link
    keywords: tuple[str, ...]
    items: tuple[DigestItem, ...]
    first_seen: datetime
    last_updated: datetime
    status: StoryStatus
    summary: str = ""
    tags: tuple[str, ...] = ()
    why_not: str = ""  # why the closest other story stayed apart
    why_not_story: str = ""  # that story's id
    why_not_headline: str = ""  # and its headline (untrusted feed text)
    # When its feed entry's text (headline, summary, outlets) last changed, as the runs that
    # made the digests saw it (the Atom entry's <updated>); None in digests made before it was
    # recorded, and while a story's text is that of such a digest.
    revised: datetime | None = None
    lang: str | None = None  # the headline's language (its feed's, BCP 47), if declared

    @property
    def outlets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.outlet for i in self.items))


@dataclass(frozen=True, slots=True)
class Digest:
    day: date
    generated_at: datetime
    stories: tuple[DigestStory, ...]  # already ranked
    older_items: int = 0  # with no stories: stored items older than the window, if any
    window_hours: float = 24.0
    # When each outlet (by the name its items carry) was first in this day's digest: the store
    # keeps one digest a day, made again by every run. Empty in digests made before it was.
    outlets_since: dict[str, datetime] = field(default_factory=dict)
    # Stories an earlier version of this day's digest showed whose reports went to another of
    # its stories (two merged): their id -> the story that carries the reports now. Their
    # pages stay, pointing there, so an email or a feed reader's link keeps working.
    moved: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunSummary:
    feeds_ok: int = 0
    feeds_failed: int = 0
    feeds_not_modified: int = 0
    new_items: int = 0
    errors: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (feed url, error)
    full_texts: int = 0  # items of the window whose page was never tried, extracted now
    full_text_failures: int = 0  # such items whose article page could not be used
    updated_items: int = 0  # stored items that took the feed's corrected title or summary
    feeds_resting: int = 0  # not due, their last poll a success: working feeds, not polled now
