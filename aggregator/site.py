"""Static site: renders the daily digests into a folder of plain HTML, Atom, JSON and CSS.

Every link between pages is relative, so the folder works from any host path or file://.
All feed text is untrusted: it is cleaned here, escaped by Jinja, and only http(s) URLs
ever become hrefs. The site is built in a staging folder and renamed into place file by file
(a file whose bytes did not change stays as it was), so a crash mid-build leaves the previous
site untouched; files the user put in the output folder are never touched (see write_site).
Builds of one folder take turns (output_lock).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import importlib.metadata
import importlib.resources
import itertools
import json
import logging
import operator
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import traceback
import unicodedata
import uuid
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Protocol
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import jinja2

import aggregator
from aggregator.charts import (
    Column,
    Segment,
    capped,
    columns,
    columns_width,
    stacked_bar,
    tone_of,
)
from aggregator.coverage import Coverage, CoverageSpec, blind_spots, story_coverage
from aggregator.feedvalue import FeedValue, delay_text
from aggregator.models import Digest, DigestItem, DigestStory
from aggregator.text import hours_text, language_tag, plural, safe_http_url, shortened
from aggregator.timeline import story_timeline

log = logging.getLogger("aggregator")

MARKER_FILE = ".aggregator-site"  # the manifest of the files a build wrote (see write_site)
LOCK_FILE = ".aggregator-lock"  # held by the build writing into the folder (see output_lock)
# How long a build waits for another build of the same folder to finish (a year's archive
# takes about a minute on a slow host) before it gives up with SiteBusyError.
BUILD_LOCK_WAIT_SECONDS = 600.0
_ATOM_NS = "http://www.w3.org/2005/Atom"
_SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_STATUSES = frozenset({"new", "growing", "unchanged"})
# A story of one day with fewer reports gets no timeline: two bars say no more than the
# coverage list below them (a story over several days keeps it: its heading says which day).
TIMELINE_MIN_REPORTS = 3

# Characters XML 1.0 forbids, plus DEL, the C1 controls and the bidi embedding, override and
# isolate controls (a feed's U+202E would reverse the rest of the line it is shown in): feed
# text loses them everywhere.
_FORBIDDEN_CHARS = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u202a-\u202e\u2066-\u2069]"
)


class SiteSettingsLike(Protocol):
    """What the site needs from `aggregator.config.SiteSettings` (any object with these works)."""

    @property
    def title(self) -> str: ...

    @property
    def base_url(self) -> str | None: ...

    @property
    def timezone(self) -> str: ...


class UnsafePathError(ValueError):
    """A computed output path would land outside the output folder."""


class SiteError(RuntimeError):
    """The site cannot be built into the requested folder."""


class SiteBusyError(SiteError):
    """Another build held the output folder's lock for longer than this one would wait."""


class BuildStopped(SiteBusyError):
    """The caller's stop event was set while this build waited for another build's lock (a
    worker told to stop by SIGTERM): nothing was built."""


class TemplateProblem(Exception):
    """A template of the user's `templates:` folder does not compile or render (a syntax
    error, an undefined name, a missing include): str() is one line naming the template file,
    its line and the error."""

    setting = "templates"


# ---------------------------------------------------------------- text, links and paths


def clean_text(value: object, limit: int = 1000) -> str:
    """Feed text as one line: control characters removed, whitespace collapsed, length capped."""
    text = "" if value is None else str(value)
    # Most text needs nothing: printable characters (no control, format, surrogate or
    # separator but the space, so nothing the pattern removes and no whitespace but the
    # space) without a double, leading or trailing space.
    if (
        len(text) <= limit
        and text.isprintable()
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    ):
        return text
    # split() takes the whitespace that `\s` does (str.isspace), four times as fast
    text = " ".join(_FORBIDDEN_CHARS.sub("", text).split())
    return shortened(text, limit)


def http_url(value: object) -> str | None:
    """The URL itself when it is a plain absolute http(s) URL, else None (never trust the input)."""
    return safe_http_url(value)


def slugify(value: str, max_length: int = 60) -> str:
    """Lowercase ASCII letters, digits and single hyphens; may be empty."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].strip("-")


def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:10]


# File names Windows reserves for devices whatever the extension ("con.html"): a site is
# copied to, or served from, such disks too.
_DEVICE_NAMES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{port}{n}" for port in ("com", "lpt") for n in range(10)]
)


def unique_slugs(
    names: Iterable[str],
    fallback: str,
    reserved: Iterable[str] = (),
    seniority: Mapping[str, tuple] | None = None,
) -> dict[str, str]:
    """Map each distinct name to a distinct file-name slug, independent of input order.

    Names whose slugs collide (or are empty, e.g. all non-Latin), or whose slug is `reserved`
    (a name the site itself uses in that folder) or a Windows device name, get a hash suffix.
    With `seniority` (when each name was first seen, as a sort key), the earliest of the
    colliding names keeps the plain slug (of equally old ones the first by name): a newcomer never moves the page of a
    name that already had one. A name may also be spelt as another's slug with its suffix (a
    feed titled "outlet-2d281522ac", the slug of "日本経済新聞"): the older of the two keeps
    that slug and the other gets one more suffix, so no name can take another's page or stop
    the build.
    """
    off_limits = frozenset(reserved) | _DEVICE_NAMES
    distinct = sorted(set(names))
    base = {name: slugify(name) for name in distinct}
    oldest_first = distinct if seniority is None else sorted(distinct, key=lambda n: seniority[n])
    claims: dict[str, list[str]] = {}
    for name in oldest_first:  # sorted is stable: equally old names in name order
        claims.setdefault(base[name], []).append(name)
    keeper = {
        slug: found[0]
        for slug, found in claims.items()
        if slug and slug not in off_limits and (len(found) == 1 or seniority is not None)
    }
    slugs: dict[str, str] = {}
    taken = set(off_limits)
    for name in oldest_first:
        slug = base[name]
        chosen = slug if keeper.get(slug) == name else f"{slug or fallback}-{_short_hash(name)}"
        suffixed, count = chosen, 1
        while suffixed in taken:
            count += 1
            suffixed = f"{chosen}-{count}"
        taken.add(suffixed)
        slugs[name] = suffixed
    return slugs


def story_slug(story_id: str) -> str:
    """File name for a story: the id itself when already safe, else a slug plus a hash.

    A pure function of the id, so the email can link to story pages without building the site.
    """
    slug = slugify(story_id, 80)
    if slug == story_id:
        return slug
    return f"{slug[:40].strip('-') or 'story'}-{_short_hash(story_id)}"


def safe_path(root: Path, relative: str) -> Path:
    """`root / relative`, refusing anything that resolves outside `root`."""
    root = root.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or path == root:
        raise UnsafePathError(f"refusing to write outside {root}: {relative!r}")
    return path


def as_utc(moment: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# ---------------------------------------------------------------- view models (cleaned data)


@dataclass(frozen=True, slots=True)
class OutletRef:
    name: str
    page: str  # path from the site root


@dataclass(frozen=True, slots=True)
class ItemView:
    title: str
    href: str | None  # checked http(s) or None
    outlet: OutletRef
    published: datetime
    is_copy: bool
    summary: str
    why: str = ""  # why the grouping put it in this story
    lang: str | None = None  # its feed's language (BCP 47): the lang of its title and summary


@dataclass(frozen=True, slots=True)
class SourceView:
    """One outlet's contribution to a story: its name and the link to its (first) article."""

    outlet: OutletRef
    href: str | None
    is_copy: bool  # every item from this outlet looks copied


@dataclass(frozen=True, slots=True)
class CoverageView:
    """A story's outlets per value of one `coverage:` dimension, and its bar."""

    dimension: str
    counts: tuple[tuple[str, int], ...]  # (value, outlets) in the user's order
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " · ".join(f"{value} {count}" for value, count in self.counts)

    @property
    def label(self) -> str:
        counts = ", ".join(f"{value} {plural(n, 'outlet')}" for value, n in self.counts)
        return f"Coverage by {self.dimension}: {counts}"

    @property
    def legend(self) -> tuple[tuple[str, int, int], ...]:
        """(value, outlets, tone): past six values they share the "other" colour of the bar."""
        return tuple(
            (value, n, tone_of(i, len(self.counts))) for i, (value, n) in enumerate(self.counts)
        )


@dataclass(frozen=True, slots=True)
class StoryView:
    id: str
    slug: str
    page: str
    headline: str
    href: str | None
    summary: str
    keywords: tuple[str, ...]
    tags: tuple[str, ...]
    status: str
    first_seen: datetime
    last_updated: datetime
    items: tuple[ItemView, ...]  # oldest first: who reported it first
    sources: tuple[SourceView, ...]  # one per outlet, in the digest's order
    coverage: tuple[CoverageView, ...] = ()  # dimensions its outlets are tagged in
    day_number: int = 1  # 1 on the day of its first report (site time zone), 3 two days later
    developing_since: date | None = None  # that first day, when it is before this one
    why_not: str = ""  # why the closest other story stayed apart
    why_not_story: str = ""  # that story's id
    why_not_headline: str = ""  # its headline
    why_not_page: str | None = None  # its page, when the site has one
    lang: str | None = None  # the headline's language (BCP 47): its headline's and summary's lang

    @property
    def outlet_count(self) -> int:
        return len(self.sources)


@dataclass(frozen=True, slots=True)
class BlindSpotView:
    story: StoryView
    covered_by: str
    missing: tuple[str, ...]
    outlets: int  # the story's outlets tagged in this dimension


@dataclass(frozen=True, slots=True)
class BlindSpotSection:
    """Multi-outlet stories one value of a dimension covered alone."""

    dimension: str
    anchor: str
    spots: tuple[BlindSpotView, ...]


@dataclass(frozen=True, slots=True)
class JoinView:
    start: datetime
    outlets: tuple[OutletRef, ...]


@dataclass(frozen=True, slots=True)
class TimelineView:
    unit: str  # "hour" or "day"
    start: datetime  # the first period's start
    end: datetime  # the last period's start
    reports: int
    peak: int
    width: float  # viewBox width
    columns: tuple[Column, ...]
    joins: tuple[JoinView, ...]  # periods in which outlets joined, oldest first


@dataclass(frozen=True, slots=True)
class StoryHistory:
    """A story over every day it appeared: all its reports, its timeline and its coverage."""

    items: tuple[ItemView, ...]  # every day's reports, oldest first, each once
    first_day: date
    last_day: date
    coverage: tuple[CoverageView, ...]
    timeline: TimelineView | None  # None for a single report
    revised: datetime  # when its headline or summary last changed (the Atom entry's <updated>)
    # The Atom entry's <published>: its first sighting as the first digest showing it said.
    # Never moved, not even by a report dated earlier that joined it since (feed readers take
    # an entry whose <published> changed for a new one).
    published: datetime
    developing: bool = False  # it was in more than one digest

    @property
    def day_number(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def outlet_count(self) -> int:
        return len({item.outlet.name for item in self.items})


@dataclass(frozen=True, slots=True)
class SectionView:
    tag: str
    anchor: str
    stories: tuple[StoryView, ...]


@dataclass(frozen=True, slots=True)
class DayView:
    day: date
    page: str
    generated_at: datetime
    stories: tuple[StoryView, ...]
    sections: tuple[SectionView, ...]
    outlet_count: int
    blind_spots: tuple[BlindSpotSection, ...] = ()
    older_items: int = 0  # with no stories: items older than the window (explains the gap)
    window_hours: float = 24.0


@dataclass(frozen=True, slots=True)
class OutletEntry:
    item: ItemView
    story: StoryView
    outlet_count: int  # the story's outlets on all its days, as its page counts them


@dataclass(frozen=True, slots=True)
class OutletPage:
    outlet: OutletRef
    entries: tuple[OutletEntry, ...]  # newest first

    @property
    def story_count(self) -> int:
        return len({entry.story.slug for entry in self.entries})


@dataclass(frozen=True, slots=True)
class FeedValueView:
    """One feed's figures on the outlets page, with its bar of stories."""

    value: FeedValue
    name: str
    outlet: OutletRef | None  # its outlet page, when its name has one
    segments: tuple[Segment, ...]  # first reports, exclusives, joined: over the largest feed


class _Histories(Mapping[str, StoryHistory]):
    """Each story's history (by slug), made when first asked for: a build renders few story
    pages, and a history's fingerprint needs none (see _ModelBuilder._view_keys)."""

    def __init__(
        self, builder: _ModelBuilder, shown: Mapping[str, Sequence[tuple[DayView, StoryView]]]
    ) -> None:
        self._builder = builder
        self._shown = shown
        self._made: dict[str, StoryHistory] = {}

    def __getitem__(self, slug: str) -> StoryHistory:
        made = self._made.get(slug)
        if made is None:
            made = self._made[slug] = self._builder._history(slug, self._shown[slug])
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._shown)

    def __len__(self) -> int:
        return len(self._shown)


@dataclass(frozen=True, slots=True)
class _ViewKeys:
    """What views were made from (see _ModelBuilder._view_keys): id -> (fingerprint, view),
    and the fingerprint of each history by its story's slug."""

    views: dict[int, tuple[str, object]]
    histories: dict[str, str]


@dataclass(frozen=True, slots=True)
class SiteModel:
    days: tuple[DayView, ...]  # newest first, one per distinct day
    stories: tuple[StoryView, ...]  # newest version of every story, sorted by slug
    appearances: dict[str, tuple[DayView, ...]]  # story slug -> days it appeared on
    outlets: tuple[OutletPage, ...]  # sorted by name
    histories: Mapping[str, StoryHistory] = dataclasses.field(default_factory=dict)  # by slug
    feed_values: tuple[FeedValueView, ...] = ()  # least adding first
    # (slug, story): the page of a story that merged into another the day it was shown, and
    # the story that carries its reports now
    moved: tuple[tuple[str, StoryView], ...] = ()
    # id -> (fingerprint, view) of views whose fingerprint is one of what they were made from,
    # not of their fields (see _ModelBuilder._view_keys); taken when asked for
    view_keys: Callable[[], _ViewKeys] = lambda: _ViewKeys({}, {})


# Pages the site writes in outlets/ besides one per outlet: no outlet's slug may take them.
_OUTLETS_FOLDER_PAGES = frozenset({"index"})


def day_page(day: date) -> str:
    return f"{day:%Y/%m/%d}/index.html"


def day_view(
    digest: Digest,
    earlier: Sequence[Digest] = (),
    coverage: CoverageSpec | None = None,
    timezone: str = "UTC",
) -> DayView:
    """One digest's cleaned view model, linked exactly as on the site (used by the email).

    `earlier` digests only add the story's earlier reports (for "day N" and its timeline)."""
    return _ModelBuilder([digest, *earlier], coverage, timezone).build().days[0]


@dataclass(frozen=True, slots=True)
class ReportDay:
    """One calendar day of a story's reports (site time zone), for the email's timeline."""

    day: date
    reports: int
    joined: tuple[str, ...]  # outlets whose first report came that day


def email_view(
    digest: Digest,
    earlier: Sequence[Digest] = (),
    coverage: CoverageSpec | None = None,
    timezone: str = "UTC",
) -> tuple[DayView, dict[str, tuple[ReportDay, ...]]]:
    """`day_view`, plus each developing story's reports per day over every digest it was in
    (keyed by story slug)."""
    builder = _ModelBuilder([digest, *earlier], coverage, timezone)
    day = builder.build().days[0]
    return day, {s.slug: builder.report_days(s.slug) for s in day.stories if s.developing_since}


def _outlet_name(raw: str) -> str:
    # as stored: clean since intake cleaned names (schema 8 cleaned the digests kept before)
    return clean_text(raw, 120) or "Unknown outlet"


class _ModelBuilder:
    """Turns raw digests into cleaned, linked view models."""

    def __init__(
        self,
        digests: Sequence[Digest],
        coverage: CoverageSpec | None = None,
        timezone: str = "UTC",
    ) -> None:
        by_day: dict[date, Digest] = {}
        for digest in digests:
            by_day.setdefault(digest.day, digest)  # the first (newest) one of a day wins
        self.digests = sorted(by_day.values(), key=lambda d: d.day, reverse=True)
        # Outlet pages: of two names with one slug ("Alpha", "ALPHA") the one whose page came
        # first keeps the plain address, so a newcomer never moves a page that readers link to
        # (not even one whose first report is dated earlier): the first digest showing the name
        # (its day, then when in the day), then its first report, then the name.
        first_shown: dict[str, tuple[date, datetime]] = {}
        first_report: dict[str, datetime] = {}
        for digest in self.digests:
            for story in digest.stories:
                for item in story.items:
                    name, published = _outlet_name(item.outlet), as_utc(item.published)
                    since = digest.outlets_since.get(item.outlet, digest.generated_at)
                    shown = (digest.day, as_utc(since))
                    first_shown[name] = min(shown, first_shown.get(name, shown))
                    first_report[name] = min(published, first_report.get(name, published))
        seniority = {name: (shown, first_report[name]) for name, shown in first_shown.items()}
        slugs = unique_slugs(seniority, "outlet", _OUTLETS_FOLDER_PAGES, seniority)
        self.outlets = {
            name: OutletRef(name, f"outlets/{slug}.html") for name, slug in slugs.items()
        }
        self.coverage = coverage or CoverageSpec()
        self.timezone = timezone
        # each story's versions, newest first: a story keeps its id from day to day
        self.versions: dict[str, list[tuple[date, DigestStory]]] = {}
        for digest in self.digests:
            for story in digest.stories:
                self.versions.setdefault(story_slug(story.id), []).append((digest.day, story))
        # a story is "developing" once it was in an earlier digest; "day N" counts from the
        # calendar day of its first report
        self.first_digest_day = {slug: found[-1][0] for slug, found in self.versions.items()}
        self.first_seen = {slug: _first_seen(found) for slug, found in self.versions.items()}
        self.first_day = {slug: self._first_report_day(slug) for slug in self.versions}
        # One view per distinct report: a report shown on several days, and again in its
        # story's history, is cleaned once and is one object (its fingerprint is taken once).
        self.item_views: dict[DigestItem, ItemView] = {}

    def _first_report_day(self, slug: str) -> date:
        """The calendar day (in the site's time zone) of a story's first report, which "day N"
        counts from; never after the first digest that shows it."""
        first_report = self.first_seen[slug].astimezone(ZoneInfo(self.timezone)).date()
        return min(first_report, self.first_digest_day[slug])

    def build(self, feed_values: Sequence[FeedValue] = ()) -> SiteModel:
        days = tuple(self._day(d) for d in self.digests)
        shown: dict[str, list[tuple[DayView, StoryView]]] = {}  # by slug, newest day first
        for day in days:
            for story in day.stories:
                shown.setdefault(story.slug, []).append((day, story))
        newest = {slug: found[0][1] for slug, found in shown.items()}
        histories = _Histories(self, shown)
        return SiteModel(
            days=days,
            stories=tuple(newest[slug] for slug in sorted(newest)),
            appearances={slug: tuple(day for day, _ in found) for slug, found in shown.items()},
            outlets=self._outlet_pages(shown),
            histories=histories,
            feed_values=self._feed_values(feed_values),
            moved=self._moved(newest),
            view_keys=partial(self._view_keys, days, histories),
        )

    # ------------------------------------------------ what each view was made from

    # A story's view is made from its digest story, the day it is shown on and what the other
    # digests decide about it: its first report and first day, its outlets' pages, whether the
    # story it was kept apart from has a page (see _story); a report's view from the report
    # and its outlet's page; a day's from its digest's own fields and its stories' views; a
    # story's history from its stories of every day it is in and those days. A fingerprint of
    # these inputs stands for the view's own: the same inputs make the same view. The digests
    # hold far less than the views made of them (a year of digests is fingerprinted in about
    # a second, its views took several), and the pages that show every day (the archive, the
    # outlets) need no walk through every view.

    def _view_keys(self, days: Sequence[DayView], histories: Mapping[str, object]) -> _ViewKeys:
        """Fingerprints of what the views of each day and each history were made from."""
        raw = _Records()
        shared = repr((self.timezone, self.coverage.key()))
        keys: dict[int, tuple[str, object]] = {}

        def add(view: object, *inputs: object) -> str:
            known = keys.get(id(view))
            if known is None:  # a report shown on several days has one view: keyed once
                known = keys[id(view)] = ("@" + _hash_text(repr(inputs)), view)
            return known[0]

        day_keys: dict[date, str] = {}
        for digest, day in zip(self.digests, days, strict=True):
            story_keys = []
            for story, view in zip(digest.stories, day.stories, strict=True):
                slug = view.slug
                outlets = []
                for item in story.items:
                    outlet = self.outlets[_outlet_name(item.outlet)]
                    add(self.item_views[item], "item", raw.text(item), outlet)
                    outlets.append(outlet)
                why_not = bool(story.why_not and story.why_not_story) and (
                    story_slug(story.why_not_story) in self.first_day
                )
                facts = (self.first_seen[slug], self.first_day[slug], self.first_digest_day[slug])
                inputs = ("story", shared, digest.day, raw.text(story), facts, outlets, why_not)
                story_keys.append(add(view, *inputs))
            own = (digest.day, digest.generated_at, digest.older_items, digest.window_hours)
            day_keys[digest.day] = add(day, "day", shared, own, story_keys)
        history_keys = {}
        for slug in histories:
            versions = [(day_keys[d], raw.text(story)) for d, story in self.versions[slug]]
            history_keys[slug] = "@" + _hash_text(repr(("history", shared, slug, versions)))
        return _ViewKeys(keys, history_keys)

    def _moved(self, newest: Mapping[str, StoryView]) -> tuple[tuple[str, StoryView], ...]:
        """The stories that merged into another the day a digest showed them and that no
        digest shows now, each with the story carrying its reports (followed through later
        merges): a link to its page, in an email or a feed reader, leads there."""
        targets: dict[str, str] = {}  # slug -> the slug it went to, the newest digest's word
        for digest in self.digests:  # newest first
            for old, new in digest.moved.items():
                targets.setdefault(story_slug(old), story_slug(new))
        found = []
        for slug, target in sorted(targets.items()):
            seen = {slug}
            while target not in newest and target in targets and target not in seen:
                seen.add(target)
                target = targets[target]
            if slug not in newest and target in newest:
                found.append((slug, newest[target]))
        return tuple(found)

    def _feed_values(self, values: Sequence[FeedValue]) -> tuple[FeedValueView, ...]:
        scale = max((v.stories for v in values), default=0)  # one scale: bars compare
        views = []
        for value in values:
            name = _outlet_name(value.name)
            parts = (
                ("first", value.first_reports),
                ("exclusive", value.exclusives),
                ("joined", value.joined),
            )
            views.append(
                FeedValueView(value, name, self.outlets.get(name), stacked_bar(parts, scale))
            )
        return tuple(views)

    def _day(self, digest: Digest) -> DayView:
        coverage = [self._coverage(s.items) for s in digest.stories]
        stories = tuple(
            self._story(s, digest.day, c) for s, c in zip(digest.stories, coverage, strict=True)
        )
        return DayView(
            day=digest.day,
            page=day_page(digest.day),
            generated_at=as_utc(digest.generated_at),
            stories=stories,
            sections=_sections(stories),
            outlet_count=len({src.outlet.name for s in stories for src in s.sources}),
            blind_spots=self._blind_spots(stories, coverage),
            older_items=digest.older_items,
            window_hours=digest.window_hours,
        )

    # ------------------------------------------------ coverage, blind spots and history

    def _coverage(self, items: Iterable[DigestItem]) -> Coverage:
        return story_coverage(((_outlet_name(i.outlet), i.feed_url) for i in items), self.coverage)

    def _blind_spots(
        self, stories: Sequence[StoryView], coverage: Sequence[Coverage]
    ) -> tuple[BlindSpotSection, ...]:
        found = blind_spots(coverage, self.coverage)
        anchors = unique_slugs(found, "dimension")
        return tuple(
            BlindSpotSection(
                clean_text(dimension, 40),
                f"blind-spots-{anchors[dimension]}",
                tuple(
                    BlindSpotView(
                        stories[spot.story],
                        clean_text(spot.covered_by, 40),
                        tuple(clean_text(v, 40) for v in spot.missing),
                        spot.outlets,
                    )
                    for spot in spots
                ),
            )
            for dimension, spots in found.items()
        )

    def _history(self, slug: str, found: Sequence[tuple[DayView, StoryView]]) -> StoryHistory:
        """A story's reports over all the days it appeared (`found`, newest first), each
        report once."""
        last_day, story = found[0]
        items, coverage = story.items, story.coverage
        if len(found) > 1:
            items, coverage = self._merged_reports(slug)
        # the oldest digest showing it: a day's digest carries its first run's (keep_published)
        published = as_utc(self.versions[slug][-1][1].first_seen)
        return StoryHistory(
            items=items,
            first_day=self.first_day[slug],
            last_day=last_day.day,
            coverage=coverage,
            timeline=self._timeline(items, developing=len(found) > 1),
            revised=max(_revised(found, self.versions[slug][0][1].revised), published),
            published=published,
            developing=len(found) > 1,
        )

    def _reports(self, slug: str) -> list[DigestItem]:
        """A story's reports from every digest it is in (the windows overlap: each once)."""
        reports: list[DigestItem] = []
        seen: set[object] = set()
        for _day, story in self.versions[slug]:  # newest first: the newest copy of a report wins
            for item in story.items:
                keys = _report_keys(item)
                if seen.isdisjoint(keys):
                    reports.append(item)
                seen.update(keys)
        return reports

    def _merged_reports(self, slug: str) -> tuple[tuple[ItemView, ...], tuple[CoverageView, ...]]:
        reports = self._reports(slug)
        items = sorted(
            (self._item(i) for i in reports), key=lambda i: (i.published, i.outlet.name, i.title)
        )
        return tuple(items), _coverage_views(self._coverage(reports))

    def report_days(self, slug: str) -> tuple[ReportDay, ...]:
        """The story's reports per calendar day, days without any left out."""
        items, _ = self._merged_reports(slug)
        timeline = story_timeline(
            ((i.published, i.outlet.name) for i in items), self.timezone, "day"
        )
        return tuple(
            ReportDay(b.start.date(), b.reports, b.joined) for b in timeline.buckets if b.reports
        )

    def _timeline(self, items: Sequence[ItemView], developing: bool) -> TimelineView | None:
        """A story's chart and joins; none for a story of one day with too few reports."""
        if len(items) < 2 or (len(items) < TIMELINE_MIN_REPORTS and not developing):
            return None
        timeline = story_timeline(((i.published, i.outlet.name) for i in items), self.timezone)
        buckets = timeline.buckets
        return TimelineView(
            unit=timeline.unit,
            start=buckets[0].start,
            end=buckets[-1].start,
            reports=timeline.reports,
            peak=timeline.peak,
            width=columns_width(len(buckets)),
            columns=columns([b.reports for b in buckets], [bool(b.joined) for b in buckets]),
            joins=tuple(
                JoinView(b.start, tuple(self.outlets[name] for name in b.joined))
                for b in buckets
                if b.joined
            ),
        )

    def _item(self, item: DigestItem) -> ItemView:
        view = self.item_views.get(item)
        if view is None:
            view = self.item_views[item] = ItemView(
                title=clean_text(item.title, 300) or "(untitled)",
                href=http_url(item.link),
                outlet=self.outlets[_outlet_name(item.outlet)],
                published=as_utc(item.published),
                is_copy=bool(item.is_copy),
                summary=clean_text(item.summary, 600),
                why=clean_text(item.why, 300),
                lang=language_tag(item.lang),
            )
        return view

    def _story(self, story: DigestStory, day: date, coverage: Coverage) -> StoryView:
        slug = story_slug(story.id)  # from the raw id, so distinct ids never share a page
        first_day = self.first_day[slug]
        in_given_order = [self._item(i) for i in story.items]
        items = sorted(in_given_order, key=lambda i: (i.published, i.outlet.name, i.title))
        return StoryView(
            id=clean_text(story.id, 200),
            slug=slug,
            page=f"stories/{slug}.html",
            headline=clean_text(story.headline, 300) or "(untitled)",
            href=http_url(story.link),
            summary=clean_text(story.summary, 600),
            keywords=tuple(k for k in (clean_text(k, 40) for k in story.keywords) if k),
            tags=tuple(dict.fromkeys(t for t in (clean_text(t, 40) for t in story.tags) if t)),
            status=story.status if story.status in _STATUSES else "unchanged",
            first_seen=self.first_seen[slug],  # over every digest: as on the story page
            last_updated=as_utc(story.last_updated),
            items=tuple(items),
            sources=_sources(in_given_order),
            coverage=_coverage_views(coverage),
            day_number=(day - first_day).days + 1,
            developing_since=first_day if self.first_digest_day[slug] < day else None,
            why_not=clean_text(story.why_not, 300),
            **self._why_not_story(story),
            lang=language_tag(story.lang),
        )

    def _why_not_story(self, story: DigestStory) -> dict[str, object]:
        """The closest other story, linked to its page when the site has one."""
        if not story.why_not or not story.why_not_story:
            return {}
        slug = story_slug(story.why_not_story)
        return {
            "why_not_story": clean_text(story.why_not_story, 200),
            "why_not_headline": clean_text(story.why_not_headline, 300) or "(untitled)",
            "why_not_page": f"stories/{slug}.html" if slug in self.first_day else None,
        }

    def _outlet_pages(
        self, shown: Mapping[str, Sequence[tuple[DayView, StoryView]]]
    ) -> tuple[OutletPage, ...]:
        """Each outlet's reports in every story, on every day the story was shown: a report
        that left a continuing story's window is still on the story's page, which links its
        outlet's page (and the newest digest may no longer show that outlet at all)."""
        entries: dict[str, list[OutletEntry]] = {name: [] for name in self.outlets}
        for slug, found in shown.items():  # newest day first
            story = found[0][1]  # the story as its page shows it now
            items = story.items if len(found) == 1 else tuple(map(self._item, self._reports(slug)))
            outlets = len({item.outlet.name for item in items})
            for item in items:
                entries[item.outlet.name].append(OutletEntry(item, story, outlets))
        pages = []
        for name in sorted(entries, key=lambda n: (n.casefold(), n)):
            found = sorted(
                entries[name],
                key=lambda e: (e.item.published, e.story.slug, e.item.title),
                reverse=True,
            )
            if found:
                pages.append(OutletPage(self.outlets[name], tuple(found)))
        return tuple(pages)


def _report_keys(item: DigestItem) -> tuple[object, ...]:
    """One report in a story's versions of several days: by its item's id in the store (a
    title and link the feed corrected since), and by its outlet, link and time, so a title
    corrected in a digest stored before ids were is the same report (no link: by title)."""
    by_link = (item.outlet, item.link or item.title, item.link is None, as_utc(item.published))
    return (by_link,) if item.item_id is None else (item.item_id, by_link)


def _first_seen(versions: Sequence[tuple[date, DigestStory]]) -> datetime:
    """When a story was first seen: its earliest report in any digest. A report that has left
    the window since is still in the digest of its day, so this never moves later."""
    return min(
        as_utc(moment)
        for _, story in versions
        for moment in (story.first_seen, *(item.published for item in story.items))
    )


def _revised(
    shown: Sequence[tuple[DayView, StoryView]], recorded: datetime | None = None
) -> datetime:
    """When a story's feed entry (title and summary) last changed, from its versions, newest
    first: its last report, or later, when its text changed since (the text also changes with
    no new report: the reports that chose the headline left the window, and readers keep an
    entry's old title unless its <updated> moves). The runs record when (`recorded`, the newest
    digest's `revised`). A digest made before they did: the first digest showing the text it
    has now, when an earlier one showed other text; the store keeps only a day's last digest,
    so on the day of a change this moves with every run until the next day's digest exists."""
    newest = shown[0][1]
    revised = max(newest.last_updated, newest.first_seen)
    if recorded is not None:
        return max(revised, as_utc(recorded))
    current = _entry_text(newest)
    unchanged = list(itertools.takewhile(lambda found: _entry_text(found[1]) == current, shown))
    if len(unchanged) < len(shown):
        revised = max(revised, unchanged[-1][0].generated_at)
    return revised


def _coverage_views(coverage: Coverage) -> tuple[CoverageView, ...]:
    views = []
    for dimension, counts in coverage.items():
        pairs = tuple((clean_text(value, 40), n) for value, n in counts.items())
        bar = stacked_bar(capped(pairs))  # the seventh value on would repeat a colour
        views.append(CoverageView(clean_text(dimension, 40), pairs, bar))
    return tuple(views)


def _sources(items: Sequence[ItemView]) -> tuple[SourceView, ...]:
    by_outlet: dict[str, list[ItemView]] = {}
    for item in items:
        by_outlet.setdefault(item.outlet.name, []).append(item)
    sources = []
    for group in by_outlet.values():
        originals = [i for i in group if not i.is_copy] or group
        href = next((i.href for i in originals if i.href), None)
        sources.append(SourceView(group[0].outlet, href, all(i.is_copy for i in group)))
    return tuple(sources)


def _sections(stories: Sequence[StoryView]) -> tuple[SectionView, ...]:
    by_tag: dict[str, list[StoryView]] = {}
    for story in stories:
        for tag in story.tags:
            by_tag.setdefault(tag, []).append(story)
    anchors = unique_slugs(by_tag, "section")
    return tuple(
        SectionView(tag, f"section-{anchors[tag]}", tuple(by_tag[tag]))
        for tag in sorted(by_tag, key=str.casefold)
    )


# ---------------------------------------------------------------- templates


def builtin_templates_dir() -> Path:
    """Templates shipped in the wheel, else the repository's `templates/` folder."""
    packaged = Path(aggregator.__file__).parent / "_templates"
    if packaged.is_dir():
        return packaged
    return Path(aggregator.__file__).resolve().parent.parent / "templates"


_MONTHS = (
    *("January", "February", "March", "April", "May", "June", "July"),
    *("August", "September", "October", "November", "December"),
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def long_date(day: date) -> str:
    # Fixed English names: output must not depend on the build machine's locale.
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def short_date(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1][:3]} {day.year}"


@contextlib.contextmanager
def template_problems(env: jinja2.Environment, templates_dir: Path | None) -> Iterator[None]:
    """A failure of the user's templates as TemplateProblem. The built-in templates are tested:
    with no user folder, or with a failure no template of the user's made, the error is ours
    and goes on as it is (a traceback)."""
    folder = Path(templates_dir).resolve() if templates_dir is not None else None
    try:
        yield
    except jinja2.TemplateSyntaxError as exc:  # compiling: jinja knows the file and line
        if not _in_folder(exc.filename, folder):
            raise
        message = _one_line(exc.message or str(exc))
        raise TemplateProblem(
            f"{exc.filename}:{exc.lineno}: syntax error: {message}{_FIX}"
        ) from None
    except Exception as exc:
        problem = _render_problem(exc, env, folder) if folder is not None else None
        if problem is None:
            raise
        raise problem from None


def _render_problem(
    exc: Exception, env: jinja2.Environment, folder: Path
) -> TemplateProblem | None:
    """The user's part in a failed render, or None where the failure is ours."""
    # (frame, line) outermost first; jinja rewrites its frames to the templates' files and lines
    frames = list(traceback.walk_tb(exc.__traceback__))
    at = [i for i, frame in enumerate(frames) if _is_template(_file(frame))]
    if not at:
        return None
    if isinstance(exc, jinja2.TemplateError):
        return _template_error(exc, [frames[i] for i in at], folder)
    return _call_error(exc, env, frames[at[-1] :], folder)


def _template_error(
    exc: jinja2.TemplateError, templates: list[tuple[FrameType, int]], folder: Path
) -> TemplateProblem:
    """An undefined name or a missing include: said at the innermost template of the user's,
    else at the built-in one that failed with the user's folder in use."""
    user = [frame for frame in templates if _in_folder(_file(frame), folder)]
    if isinstance(exc, jinja2.TemplateNotFound):
        error = f"no template named {exc.name!r}"
    else:
        error = _one_line(str(exc))
    fix = (
        _FIX
        if user
        else f" (a built-in template, failing with yours from {folder} (`templates:`): fix "
        "or remove the one it names)"
    )
    return TemplateProblem(f"{_where((user or templates)[-1])}: {error}{fix}")


def _call_error(
    exc: Exception, env: jinja2.Environment, frames: list[tuple[FrameType, int]], folder: Path
) -> TemplateProblem | None:
    """Python code failed: an expression, or a filter given a value it cannot take. The template
    that made the call (`frames[0]`, the innermost) is to blame; a built-in one is our bug, even
    with a template of the user's further out (a base.html whose blocks ours fill)."""
    if not _in_folder(_file(frames[0]), folder):
        return None
    error = f"{type(exc).__name__}: {_one_line(str(exc))}"
    if called := _callee(frames[1:], env):
        error = f"{called} failed on the value given it: {error}"
    return TemplateProblem(f"{_where(frames[0])}: {error}{_FIX}")


def _callee(frames: list[tuple[FrameType, int]], env: jinja2.Environment) -> str | None:
    """The filter or global function a template called, found by the code its frame runs
    (a filter may be a lambda, whose own name says nothing)."""
    calls = [(f, f"`{name}()`") for name, f in env.globals.items()]
    calls += [(f, f"the `{name}` filter") for name, f in env.filters.items()]
    named = {f.__code__: label for f, label in calls if hasattr(f, "__code__")}
    return next((named[f.f_code] for f, _ in frames if f.f_code in named), None)


def _file(frame: tuple[FrameType, int]) -> str:
    return frame[0].f_code.co_filename


def _where(frame: tuple[FrameType, int]) -> str:
    return f"{_file(frame)}:{frame[1]}"


def _in_folder(filename: str | None, folder: Path | None) -> bool:
    return folder is not None and bool(filename) and Path(filename).resolve().is_relative_to(folder)


_FIX = " (fix the template, or remove it from the `templates:` folder to use the built-in one)"


def _is_template(filename: str) -> bool:
    """A traceback frame of a template (jinja names them by the template's file)."""
    return not filename.endswith(".py") and not filename.startswith("<")


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "error"


def make_environment(templates_dir: Path | None, timezone: str = "UTC") -> jinja2.Environment:
    """Jinja environment: the user's folder first, then the built-in templates (file by file).

    Autoescaping is on for every template except plain-text ones (`.txt`), where HTML
    entities would be wrong; their data is cleaned of control characters instead.
    """
    folders = [templates_dir] if templates_dir is not None else []
    folders.append(builtin_templates_dir())
    zone = ZoneInfo(timezone)

    def local(moment: datetime) -> datetime:
        return as_utc(moment).astimezone(zone)

    def when(moment: datetime, day: date | None = None) -> str:
        """'14:05' on the digest's own day, else '27 Nov, 14:05'."""
        here = local(moment)
        if day is not None and here.date() == day:
            return f"{here:%H:%M}"
        return f"{here.day} {_MONTHS[here.month - 1][:3]}, {here:%H:%M}"

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(f)) for f in folders]),
        autoescape=lambda name: name is None or not name.endswith(".txt"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(
        clock=lambda m: f"{local(m):%H:%M}",
        when=when,
        isotime=lambda m: local(m).isoformat(timespec="minutes"),
        longdate=long_date,
        shortdate=short_date,
        monthyear=lambda day: f"{_MONTHS[day.month - 1]} {day.year}",
        plural=plural,
        hours=hours_text,
        delay=delay_text,
    )
    env.globals.update(timezone=timezone)
    return env


# ---------------------------------------------------------------- machine outputs


def _rfc3339(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def checked_base_url(base_url: str | None) -> str | None:
    """The site's public address ending in "/", or None; anything but http(s) is refused."""
    if not base_url:
        return None
    if http_url(base_url) is None:
        raise SiteError(f"base_url must be an absolute http(s) URL, not {base_url!r}")
    return base_url.rstrip("/") + "/"


class _Urls:
    """Turns site-root paths into links: absolute with a base URL, else relative to the root."""

    def __init__(self, base_url: str | None) -> None:
        self.base = checked_base_url(base_url)

    def __call__(self, path: str) -> str:
        return (self.base or "") + path


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _atom_feed(
    day: DayView | None, histories: Mapping[str, StoryHistory], title: str, urls: _Urls
) -> bytes:
    """Atom feed of today's stories. Entry ids depend only on the site and the story id; an
    entry is published when the first digest showing the story first saw it (never moved) and
    updated when its text last changed."""
    ET.register_namespace("", _ATOM_NS)
    identity = urls.base or f"aggregator:{title}"
    a = f"{{{_ATOM_NS}}}"
    feed = ET.Element(f"{a}feed")
    _sub(feed, f"{a}id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, identity)}")
    _sub(feed, f"{a}title", title)
    updated = day.generated_at if day else datetime(1970, 1, 1, tzinfo=UTC)
    _sub(feed, f"{a}updated", _rfc3339(updated))
    _sub(feed, f"{a}link", rel="alternate", type="text/html", href=urls("index.html"))
    if urls.base:
        _sub(feed, f"{a}link", rel="self", type="application/atom+xml", href=urls("feed.xml"))
    _sub(_sub(feed, f"{a}author"), f"{a}name", title)
    _sub(feed, f"{a}generator", "aggregator", version=aggregator.__version__)
    for story in day.stories if day else ():
        entry = _sub(feed, f"{a}entry")
        story_key = f"{identity}/stories/{story.id}"
        _sub(entry, f"{a}id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, story_key)}")
        language = {_XML_LANG: story.lang} if story.lang else {}  # the headline's, not ours
        _sub(entry, f"{a}title", story.headline, type="text", **language)
        _sub(entry, f"{a}link", rel="alternate", type="text/html", href=urls(story.page))
        if story.href:
            _sub(entry, f"{a}link", rel="related", type="text/html", href=story.href)
        _sub(entry, f"{a}published", _rfc3339(histories[story.slug].published))
        _sub(entry, f"{a}updated", _rfc3339(histories[story.slug].revised))
        for keyword in story.keywords:
            _sub(entry, f"{a}category", term=keyword)
        _sub(entry, f"{a}summary", _entry_text(story)[1], type="text")
    return _xml_bytes(feed)


def _entry_text(story: StoryView) -> tuple[str, str]:
    """A story's Atom entry title and summary: what a feed reader shows of it."""
    # by name, as digest.entry_text compares them: a reader's entry changes with its outlets
    outlets = ", ".join(sorted({s.outlet.name for s in story.sources}, key=str.casefold))
    end = "" if outlets.endswith((".", "!", "?", "…")) else "."  # "Gazette Ltd.", no second
    summary = f"{plural(story.outlet_count, 'outlet')}: {outlets}{end}"
    return story.headline, f"{story.summary}\n\n{summary}".strip()


def _json_bytes(data: object) -> bytes:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    # Keep markup characters out of the raw bytes so the file is inert wherever it is pasted.
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return (text + "\n").encode("utf-8")


def _stories_json(day: DayView | None, urls: _Urls) -> bytes:
    def item(i: ItemView) -> dict[str, object]:
        return {
            "title": i.title,
            "link": i.href,
            "outlet": i.outlet.name,
            "published": _rfc3339(i.published),
            "is_copy": i.is_copy,
            "why": i.why,
            **({"lang": i.lang} if i.lang else {}),
        }

    def story(s: StoryView) -> dict[str, object]:
        return {
            "id": s.id,
            "url": urls(s.page),
            "headline": s.headline,
            "link": s.href,
            "summary": s.summary,
            "keywords": list(s.keywords),
            "tags": list(s.tags),
            "status": s.status,
            "outlets": [src.outlet.name for src in s.sources],
            "first_seen": _rfc3339(s.first_seen),
            "last_updated": _rfc3339(s.last_updated),
            "why_not": s.why_not,
            "why_not_story": s.why_not_story,
            "why_not_headline": s.why_not_headline,
            "items": [item(i) for i in s.items],
            "coverage": {c.dimension: dict(c.counts) for c in s.coverage},
            **({"lang": s.lang} if s.lang else {}),
        }

    return _json_bytes(
        {
            "day": day.day.isoformat() if day else None,
            "generated_at": _rfc3339(day.generated_at) if day else None,
            "stories": [story(s) for s in day.stories] if day else [],
        }
    )


# The sitemap protocol's most URLs in one file: past it, sitemap.xml is an index of files of
# that many each (sitemap-1.xml, ...), which search engines read as one sitemap. At the top, as
# the protocol has a sitemap list only the pages in and below its own folder.
SITEMAP_URLS = 50_000


def _sitemaps(model: SiteModel, urls: _Urls) -> Iterator[tuple[str, bytes]]:
    """sitemap.xml, and past SITEMAP_URLS pages the files it indexes, as (path, bytes)."""
    entries: list[tuple[str, date | None]] = []
    latest = model.days[0].day if model.days else None
    entries += [("index.html", latest), ("archive/index.html", latest)]
    entries.append(("outlets/index.html", latest))
    entries += [(day.page, day.day) for day in model.days]
    entries += [(story.page, story.last_updated.date()) for story in model.stories]
    entries += [
        (outlet.outlet.page, outlet.entries[0].item.published.date()) for outlet in model.outlets
    ]
    if len(entries) <= SITEMAP_URLS:
        yield "sitemap.xml", _urlset(entries, urls)
        return
    ET.register_namespace("", _SITEMAP_NS)
    s = f"{{{_SITEMAP_NS}}}"
    index = ET.Element(f"{s}sitemapindex")
    for number, start in enumerate(range(0, len(entries), SITEMAP_URLS), 1):
        part = entries[start : start + SITEMAP_URLS]
        path = f"sitemap-{number}.xml"
        yield path, _urlset(part, urls)
        entry = _sub(index, f"{s}sitemap")
        _sub(entry, f"{s}loc", urls(path))
        modified = [m for _, m in part if m is not None]
        if modified:
            _sub(entry, f"{s}lastmod", max(modified).isoformat())
    yield "sitemap.xml", _xml_bytes(index)


def _urlset(entries: Sequence[tuple[str, date | None]], urls: _Urls) -> bytes:
    ET.register_namespace("", _SITEMAP_NS)
    s = f"{{{_SITEMAP_NS}}}"
    root = ET.Element(f"{s}urlset")
    for path, modified in entries:
        entry = _sub(root, f"{s}url")
        _sub(entry, f"{s}loc", urls(path))
        if modified is not None:
            _sub(entry, f"{s}lastmod", modified.isoformat())
    return _xml_bytes(root)


# ---------------------------------------------------------------- pages


def _root_prefix(page: str) -> str:
    return "../" * page.count("/")


def _pages(model: SiteModel, value_days: int = 30) -> Iterator[tuple[str, str, dict[str, object]]]:
    """(output path, template, context) for every HTML page.

    `nav` names the page's section in the site menu; `nav_page` is true on the section's own
    page (aria-current="page" there, "true" on a day, story or outlet page under it)."""
    today = model.days[0] if model.days else None
    yield "index.html", "index.html", {"digest": today, "nav": "today", "nav_page": True}
    months: dict[tuple[int, int], list[DayView]] = {}
    for day in model.days:
        months.setdefault((day.day.year, day.day.month), []).append(day)
    yield (
        "archive/index.html",
        "archive.html",
        {"months": months, "nav": "archive", "nav_page": True},
    )
    for index, day in enumerate(model.days):
        newer = model.days[index - 1] if index > 0 else None
        older = model.days[index + 1] if index + 1 < len(model.days) else None
        context = {"digest": day, "newer": newer, "older": older, "nav": "archive"}
        yield day.page, "day.html", context
    for story in model.stories:
        context = {
            "story": story,
            "days": model.appearances[story.slug],
            "history": _Later(("history", story.slug), partial(model.histories.get, story.slug)),
            "nav": "archive",
        }
        yield story.page, "story.html", context
    for slug, story in model.moved:
        yield f"stories/{slug}.html", "moved.html", {"story": story, "nav": "archive"}
    outlets = {"outlets": model.outlets, "values": model.feed_values, "value_days": value_days}
    yield "outlets/index.html", "outlets.html", {**outlets, "nav": "outlets", "nav_page": True}
    for outlet in model.outlets:
        yield outlet.outlet.page, "outlet.html", {"outlet": outlet, "nav": "outlets"}


@dataclass(frozen=True, slots=True)
class _Later:
    """A page's value made only when the page is rendered; its fingerprint is the one known
    for `tag` (see _Fingerprints), else that of the value."""

    tag: tuple[str, str]
    make: Callable[[], object]


def _made(page: Mapping[str, object]) -> dict[str, object]:
    return {k: v.make() if type(v) is _Later else v for k, v in page.items()}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _Output:
    """One file of the site, as a build makes it."""

    path: str
    data: bytes | None  # None: the page's file in the output folder holds these bytes already
    fingerprint: str | None = None  # a page's: what it was rendered from (see _page_fingerprint)


def _render_site(
    model: SiteModel,
    settings: SiteSettingsLike,
    env: jinja2.Environment,
    value_days: int = 30,
    environment: str = "",
    reusable: Callable[[str, str], bool] = lambda _path, _fingerprint: False,
) -> Iterator[_Output]:
    """Every file of the site. A page whose fingerprint `reusable` knows, with its file
    untouched since, is not rendered again: it comes as `data=None`."""
    urls = _Urls(settings.base_url)
    site = {"title": clean_text(settings.title, 200) or "Daily digest", "base_url": urls.base}
    keys = model.view_keys()
    tagged = {("history", slug): key for slug, key in keys.histories.items()}
    fingerprints = _Fingerprints(keys.views, tagged)
    for path, template, context in _pages(model, value_days):
        page = {"path": path, "root": _root_prefix(path), "site": site, **context}
        fingerprint = _page_fingerprint(environment, template, fingerprints.of(page))
        if reusable(path, fingerprint):
            yield _Output(path, None, fingerprint)
        else:
            data = env.get_template(template).render(_made(page)).encode("utf-8")
            yield _Output(path, data, fingerprint)
    # The stylesheet is a template too, so a user folder can replace it like any page.
    style_source = env.loader.get_source(env, "style.css")[0]  # type: ignore[union-attr]
    yield _Output("style.css", style_source.encode("utf-8"))
    today = model.days[0] if model.days else None
    yield _Output("feed.xml", _atom_feed(today, model.histories, site["title"], urls))
    yield _Output("stories.json", _stories_json(today, urls))
    if urls.base:
        for path, data in _sitemaps(model, urls):
            yield _Output(path, data)


# ---------------------------------------------------------------- incremental builds

# A page is rendered again only when something its bytes depend on changed: the values its
# template is given (every view, its neighbours' and the site's settings included) or the
# environment (the templates, the time zone, the code and libraries that render). A view made
# from a day's digest, and a story's history, is taken by what it was made from (see
# _ModelBuilder._view_keys), any other value field by field. A past day's page is the same
# from build to build, so its file stays; what an unchanged fingerprint keeps is what a full
# build would write again, byte for byte.

_LEAF_TYPES = frozenset({str, int, float, bool, type(None), date, datetime})
_SHORT_FINGERPRINT = 40  # longer fingerprint texts are hashed


class _Fingerprints:
    """Fingerprints of template contexts: text that differs whenever a value differs.

    The views are frozen and live as long as the model: each one's fingerprint is taken once
    (by id; the value is kept, so its id is never reused) however many pages show it.
    `known` gives some views' fingerprints (SiteModel.view_keys): those are not taken again."""

    def __init__(
        self,
        known: Mapping[int, tuple[str, object]] | None = None,
        tagged: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self._known: dict[int, tuple[str, object]] = dict(known or {})
        self._tagged = tagged or {}
        self._fields: dict[type, tuple[str, Callable[[object], tuple]]] = {}

    def of(self, value: object) -> str:
        kind = type(value)
        if kind in _LEAF_TYPES:  # exact types: a subclass (Markup) renders otherwise
            return repr(value)
        known = self._known.get(id(value))
        if known is not None:
            return known[0]
        if kind is _Later:  # type: ignore[comparison-overlap]
            return self._tagged.get(value.tag) or self.of(value.make())  # type: ignore[attr-defined]
        leaves, of = _LEAF_TYPES, self.of
        if kind is dict:
            pairs = [
                f"{repr(k) if type(k) in leaves else of(k)}:{repr(v) if type(v) in leaves else of(v)}"
                for k, v in value.items()  # type: ignore[attr-defined]
            ]
            text = "{" + ",".join(pairs) + "}"
        else:
            if kind is tuple or kind is list:
                parts, text = value, "("
            else:
                text, values = self._fields.get(kind) or self._field_values(kind)
                parts = values(value)
            text += ",".join([repr(v) if type(v) in leaves else of(v) for v in parts]) + ")"  # type: ignore[attr-defined]
        if len(text) > _SHORT_FINGERPRINT:
            text = "#" + _hash_text(text)
        if kind is tuple or _is_frozen_dataclass(kind):  # a list or a dict may change later
            self._known[id(value)] = (text, value)
        return text

    def _field_values(self, kind: type) -> tuple[str, Callable[[object], tuple]]:
        """The start of a `kind`'s fingerprint, and a function giving its fields' values."""
        if not dataclasses.is_dataclass(kind) or not hasattr(kind, "__slots__"):
            # a value whose whole state its fields may not hold: no fingerprint is sure
            raise TypeError(f"a page's context holds a {kind.__qualname__}: no fingerprint")
        self._fields[kind] = (f"{kind.__module__}.{kind.__qualname__}(", _field_getter(kind))
        return self._fields[kind]


def _field_getter(kind: type) -> Callable[[object], tuple]:
    """A function giving a dataclass's field values, as a tuple, in field order."""
    names = [f.name for f in dataclasses.fields(kind)]
    if len(names) > 1:
        return operator.attrgetter(*names)
    return lambda value: tuple(getattr(value, n) for n in names)  # attrgetter of one: no tuple


class _Records:
    """The fingerprint of a digest's record (a DigestStory, a DigestItem): a hash of every
    field's value, a tuple of plain values as its repr and a record within as its own
    fingerprint. As exact as _Fingerprints, at a fraction of the cost; a record holding
    anything else is left to _Fingerprints."""

    def __init__(self) -> None:
        self._fields: dict[type, Callable[[object], tuple]] = {}
        self._texts: dict[int, tuple[str, object]] = {}  # by id: a story's on every day it is in
        self._fallback = _Fingerprints()

    def text(self, record: object) -> str:
        known = self._texts.get(id(record))
        if known is not None:
            return known[0]
        kind = type(record)
        values = (self._fields.get(kind) or self._getter(kind))(record)
        if set(map(type, values)) <= _LEAF_TYPES:
            text = "#" + _hash_text(f"{kind.__qualname__}{values!r}")
        else:
            parts: list[object] = []
            for value in values:
                plain = type(value) is tuple and set(map(type, value)) <= _LEAF_TYPES
                if plain or type(value) in _LEAF_TYPES:
                    parts.append(value)
                elif type(value) is tuple and all(_is_record(type(v)) for v in value):
                    parts.append(tuple([self.text(v) for v in value]))
                else:
                    return self._fallback.of(record)
            text = "#" + _hash_text(f"{kind.__qualname__}{tuple(parts)!r}")
        self._texts[id(record)] = (text, record)
        return text

    def _getter(self, kind: type) -> Callable[[object], tuple]:
        if not _is_record(kind):
            raise TypeError(f"not a frozen dataclass with slots: {kind.__qualname__}")
        self._fields[kind] = getter = _field_getter(kind)
        return getter


def _is_record(kind: type) -> bool:
    return _is_frozen_dataclass(kind) and hasattr(kind, "__slots__")


def _hash_text(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _is_frozen_dataclass(kind: type) -> bool:
    params = getattr(kind, "__dataclass_params__", None)
    return params is not None and params.frozen


def _page_fingerprint(environment: str, template: str, context: str) -> str:
    return hashlib.sha256(f"{environment}\0{template}\0{context}".encode()).hexdigest()


def environment_fingerprint(templates_dir: Path | None, timezone: str) -> str:
    """What decides a page's bytes besides its context: the templates (the user's folder, then
    the built-in one), the time zone times are shown in with its rules, and the code and
    libraries that render (the package's source, not only its version: a checkout changes
    without one)."""
    versions = [aggregator.__version__, sys.version_info[:2], timezone, _zone_rules(timezone)]
    for library in ("jinja2", "markupsafe"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(importlib.metadata.version(library))
    digest = hashlib.sha256(repr(versions).encode())
    package = Path(aggregator.__file__).resolve().parent
    code = [(p.relative_to(package).as_posix(), p) for p in sorted(package.rglob("*.py"))]
    folders = [("code", code), ("built-in", _template_files(builtin_templates_dir()))]
    if templates_dir is not None:
        folders.insert(0, ("user", _template_files(Path(templates_dir))))
    for label, files in folders:
        digest.update(f"\0{label}\0".encode())
        for name, path in files:
            if path.is_file():
                digest.update(f"{name}\0{path.stat().st_size}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def _zone_rules(timezone: str) -> str:
    """A digest of the time zone's rules as zoneinfo reads them (the system's database first,
    then the tzdata package): an update that moves a country's clocks changes the times pages
    show, so it is an input of every page."""
    for root in zoneinfo.TZPATH:
        path = Path(root, timezone)
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    with contextlib.suppress(ImportError, OSError, ValueError):
        rules = importlib.resources.files("tzdata.zoneinfo").joinpath(*timezone.split("/"))
        return hashlib.sha256(rules.read_bytes()).hexdigest()
    return ""  # UTC without a database: zoneinfo's built-in rules, which never change


def _template_files(folder: Path) -> list[tuple[str, Path]]:
    """(name, path) of each file in a templates folder, sorted by name: every file jinja may
    load from it, in folders it links to as well (pathlib's rglob does not enter a linked
    folder; jinja reads through it). A real folder is entered once, so a link loop ends."""
    found: list[tuple[str, Path]] = []
    entered: set[str] = set()
    for top, folders, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in entered:
            folders.clear()
            continue
        entered.add(real)
        for name in files:
            path = Path(top, name)
            found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


# ---------------------------------------------------------------- writing

# The manifest: which files in the output folder the last build wrote. A build replaces and
# removes only those; every other file there is the user's (a CNAME, robots.txt, or the whole
# project folder with `output: .`) and stays. Its name is also the old marker's.
_MANIFEST_NOTE = (
    "Written by aggregator: the files its last build put here. The next build replaces or "
    "removes only these; every other file in this folder is yours and stays."
)
_STAGING_PREFIX = ".aggregator-build-"
_LEGACY_TOP = frozenset({"index.html", "style.css", "feed.xml", "stories.json", "sitemap.xml"})
_LEGACY_DIRS = frozenset({"archive", "stories", "outlets"})
_SKIPPED_STATIC = frozenset({".git", ".hg", ".svn", "__pycache__"})


class SiteConflictError(SiteError):
    """The build would overwrite a file it did not write (the user's): nothing was changed.
    `setting` names the feeds.yaml setting to look at."""

    def __init__(self, message: str, setting: str = "output") -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class SiteWrite:
    files: list[Path]  # the site's files, inside the output folder, sorted
    kept: tuple[str, ...]  # the user's files and folders in output/, left as they were
    newly_kept: tuple[str, ...]  # those not kept by the previous build (to say so once)
    # page -> "<fingerprint> <file signature>": what each page was rendered from, and its file
    # as this build left it; given to the next build, which renders only the pages whose
    # inputs or files changed
    pages: dict[str, str] = dataclasses.field(default_factory=dict)
    rendered: tuple[str, ...] = ()  # the pages this build rendered (the others had not changed)


@dataclass(frozen=True, slots=True)
class _Manifest:
    files: frozenset[str]
    kept: frozenset[str]


def _read_manifest(output: Path) -> _Manifest:
    path = output / MARKER_FILE
    if not path.is_file():
        return _Manifest(frozenset(), frozenset())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Manifest(frozenset(data["files"]), frozenset(data.get("kept", ())))
    except (ValueError, KeyError, TypeError):
        # A site from before manifests (the marker said "replaced as a whole"): its files are
        # the ones in the site's own layout.
        return _Manifest(frozenset(_legacy_site_files(output)), frozenset())


def built_file(output: Path, relative: str) -> bool:
    """Whether ``relative`` (a POSIX path in ``output``) is a file the last build wrote there,
    or the folder's own marker or lock: a command writing a file the user names must not put
    it in a page's place (the next build would only put the page back)."""
    return relative in (MARKER_FILE, LOCK_FILE) or relative in _read_manifest(output).files


def _signature(path: Path) -> str:
    """A plain file's size, times and inode: any write or replacement changes it ("" for
    anything else)."""
    try:
        found = path.lstat()
    except OSError:
        return ""
    if not stat.S_ISREG(found.st_mode):
        return ""
    return f"{found.st_size}:{found.st_mtime_ns}:{found.st_ctime_ns}:{found.st_ino}"


def _file_as_recorded(record: str, file: Path) -> bool:
    """Whether `file` is the one a page's record ("<fingerprint> <signature>") was taken of,
    unchanged since: a plain file with that signature (a record whose file was gone when it
    was taken has none, and matches no file)."""
    signature = record.rpartition(" ")[2]
    return bool(signature) and signature == _signature(file)


def story_pages_built(output: Path) -> int:
    """How many story pages the last build left in `output` (by its manifest)."""
    return sum(1 for path in _read_manifest(output).files if path.startswith("stories/"))


def site_as_recorded(output: Path, pages: Mapping[str, str]) -> bool:
    """Whether `output` holds the site as the build that recorded `pages` (its
    `SiteWrite.pages`) left it: every file of its manifest in place, and each page's file
    unchanged since. Not when a file was deleted or edited by hand, nor when the folder is
    another one at the same path (a publishing worker on another machine shares the store,
    not the output folder)."""
    files = _read_manifest(output).files
    if not pages or not pages.keys() <= files:
        return False
    for path in files:
        record = pages.get(path)
        if record is None:  # feed.xml, style.css, a static file: made anew by every build
            if not _signature(output / path):  # not skipped, so only there to be checked
                return False
        elif not _file_as_recorded(record, output / path):
            return False
    return True


def _legacy_site_files(output: Path) -> Iterator[str]:
    for path in output.rglob("*"):
        relative = path.relative_to(output).as_posix()
        top = relative.split("/")[0]
        legacy = top in _LEGACY_TOP or top in _LEGACY_DIRS or re.fullmatch(r"\d{4}", top)
        if legacy and path.is_file() and not path.is_symlink():
            yield relative


def _manifest_bytes(files: Iterable[str], kept: Iterable[str]) -> bytes:
    data = {"about": _MANIFEST_NOTE, "files": sorted(files), "kept": sorted(kept)}
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _write_manifest(staging: Path, output: Path, files: Iterable[str], kept: Iterable[str]) -> None:
    # Written in the staging folder and renamed: a kill leaves the old manifest or the new one.
    temporary = staging / MARKER_FILE
    temporary.write_bytes(_manifest_bytes(files, kept))
    if not _same_bytes(temporary, output / MARKER_FILE):
        os.replace(temporary, output / MARKER_FILE)


def _static_files(static: Path, output: Path) -> Iterator[tuple[str, Path]]:
    """(path in the site, source) for every file of the `site.static` folder. A link to a
    file outside it is refused: the folder was checked to hold neither feeds.yaml nor the
    database, and a link to either published it."""
    static = static.resolve()
    output = output.resolve()
    for source in sorted(static.rglob("*")):
        parts = source.relative_to(static).parts
        # os.path.realpath: Path.resolve raises on a link to itself
        target = Path(os.path.realpath(source))
        if _SKIPPED_STATIC.intersection(parts) or target.is_relative_to(output):
            continue
        if source.is_symlink() and not target.is_relative_to(static):
            raise SiteConflictError(
                f"{source} links to {target}, outside the site.static folder: a build "
                "publishes the folder's own files only; copy the file in if it is to be "
                "published",
                setting="site.static",
            )
        if source.is_file():  # not a link to itself, nor one to nothing
            yield "/".join(parts), source


_NOT_THERE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


def _conflicts(output: Path, paths: Iterable[str], ours: frozenset[str]) -> list[str]:
    """Paths the build must write where a file or folder of the user's stands."""
    found = []
    folders: dict[str, bool | None] = {}  # each folder looked at once: None, not there
    for relative in sorted(paths):
        parts = relative.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            last = depth == len(parts)
            if last or prefix not in folders:
                try:
                    mode: int | None = os.lstat(output / prefix).st_mode
                except OSError as exc:  # as Path.exists: only "not there" is taken as such
                    if exc.errno not in _NOT_THERE:
                        raise
                    mode = None
                except ValueError:
                    mode = None
                blocked = (
                    None
                    if mode is None
                    else stat.S_ISLNK(mode)
                    or not (stat.S_ISREG(mode) and prefix in ours if last else stat.S_ISDIR(mode))
                )
                if not last:
                    folders[prefix] = blocked
            else:
                blocked = folders[prefix]
            if blocked is None:  # not there
                break
            if blocked:
                found.append(prefix)
                break
    return list(dict.fromkeys(found))


def _user_entries(output: Path, site: set[str]) -> list[str]:
    """The user's files in output/, a folder holding none of the site's named once as `name/`."""
    folders = {"/".join(p.split("/")[:n]) for p in site for n in range(1, p.count("/") + 1)}
    found: list[str] = []
    pending = [output]
    while pending:
        folder = pending.pop()
        for path in sorted(folder.iterdir()):
            relative = path.relative_to(output).as_posix()
            if relative in (MARKER_FILE, LOCK_FILE) or relative.startswith(_STAGING_PREFIX):
                continue
            if path.is_dir() and not path.is_symlink():
                if relative in folders:
                    pending.append(path)
                else:
                    found.append(relative + "/")
            elif relative not in site:
                found.append(relative)
    return sorted(found)


def _same_bytes(new: Path, old: Path) -> bool:
    """Whether `old` is a plain file already holding exactly `new`'s bytes."""
    if old.is_symlink() or not old.is_file() or old.stat().st_size != new.stat().st_size:
        return False
    return old.read_bytes() == new.read_bytes()


def _install(staging: Path, output: Path, paths: Iterable[str]) -> dict[str, str]:
    """Each staged file into place; returns each one's signature as it holds this build's
    bytes ("" where that cannot be told: another build replaced it meanwhile)."""
    # Deepest first and the home page last: a reader never follows a link to a page not yet
    # in place. Each file is swapped in with a rename, so none is ever half written. A file
    # whose bytes did not change is left as it is: its mtime (and a sync tool's or a cache's
    # idea of it) stays.
    order = sorted(paths, key=lambda p: (-p.count("/"), p == "index.html", p))
    root = output.resolve()
    checked: set[str] = set()
    installed: dict[str, str] = {}
    for relative in order:
        folder, _, name = relative.rpartition("/")
        if folder not in checked:  # once per folder: a symlink must not lead outside
            safe_path(root, relative).parent.mkdir(parents=True, exist_ok=True)
            checked.add(folder)
        target, staged = root / folder / name, staging / relative
        # Taken here, not once all are in place: a build into the same folder at once may
        # rename its own file over this one, which must not pass for this build's.
        found = _signature(target)
        if _same_bytes(staged, target):
            installed[relative] = found if _signature(target) == found else ""
        else:
            inode = staged.stat().st_ino
            os.replace(staged, target)
            found = _signature(target)
            installed[relative] = found if found.endswith(f":{inode}") else ""
    return installed


def _remove_stale(output: Path, stale: Iterable[str]) -> None:
    """Remove files an earlier build wrote and this one did not, and folders left empty."""
    folders: set[Path] = set()
    for relative in stale:
        try:
            target = safe_path(output, relative)
        except UnsafePathError:
            continue
        if target.is_file() and not target.is_symlink():
            target.unlink()
        folders.update(p for p in target.parents if p.is_relative_to(output) and p != output)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty: a file of the user's keeps its folder


def _remove_leftover_staging(output: Path) -> None:
    """Remove the staging folders of builds killed mid-way. Called under the folder's lock
    (output_lock): no other build of this folder is running, so every one here is a dead one's."""
    for leftover in output.glob(f"{_STAGING_PREFIX}*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


# Builds of one output folder, one at a time (a publishing worker beside `aggregator build`
# by hand, two cron jobs overlapping): each holds an exclusive flock on output/LOCK_FILE while
# it reads the last build's manifest, stages and installs its files and (pipeline.build)
# stores its record of them. Without it, a build removed the staging folder another was
# installing from, and two builds' manifests and records of the pages mixed. flock, not the
# run lock's lockf: it belongs to the open file, so two threads of one process exclude each
# other too; a build forks no process that could inherit it. The holder removes the file as
# it lets go (the folder at rest holds none, and a refused build changes nothing), so a build
# that gets the lock checks that its file is still the one at that path, else tries again.
_held = threading.local()  # (device, inode) of the lock files this thread holds


@contextlib.contextmanager
def output_lock(
    output: Path, wait_seconds: float | None = None, stop: threading.Event | None = None
) -> Iterator[None]:
    """Hold `output`'s build lock (creating the folder). While another build holds it, wait,
    for up to `wait_seconds` (BUILD_LOCK_WAIT_SECONDS), then raise SiteBusyError naming the
    folder and the process holding it; raise BuildStopped as soon as `stop` is set while
    waiting. A thread holding it already just goes on."""
    output = Path(output).absolute()
    if output.exists() and not output.is_dir():
        raise SiteError(f"{output} exists and is not a folder")
    held: set[tuple[int, int]] = _held.__dict__.setdefault("keys", set())
    path = output / LOCK_FILE
    try:
        found: os.stat_result | None = path.lstat()
    except OSError:
        found = None
    if found is not None and (found.st_dev, found.st_ino) in held:
        yield  # (outside any handler: an error of the build is the build's)
        return
    locked = _lock(path, BUILD_LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds, stop)
    if locked is None:  # a folder this build cannot write in: a build with nothing new still runs
        yield
        return
    fd, key = locked
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        with contextlib.suppress(OSError):
            # a build writes nothing in it: a file with text is not ours
            if os.fstat(fd).st_size == 0:
                path.unlink()  # while still holding it: see above
        os.close(fd)  # and with it the lock


def _lock(
    path: Path, wait: float, stop: threading.Event | None = None
) -> tuple[int, tuple[int, int]] | None:
    """An open file descriptor of `path`, flocked, and (device, inode) of that file; None
    where the folder is read-only (a build with nothing new writes nothing: it need not lock,
    and one that writes fails as it did before)."""
    output = path.parent
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            output.mkdir(parents=True, exist_ok=True)
            fd = _open_lock_file(path)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and output.is_dir():
                return None
            if exc.errno in (errno.ELOOP, errno.EISDIR):  # a link or a folder put there
                raise _not_a_lock_file(path) from None
            raise _unwritable(output, exc) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device put there
            os.close(fd)
            raise _not_a_lock_file(path)
        try:
            while not _flocked(fd, path):
                if time.monotonic() >= deadline:
                    raise SiteBusyError(
                        f"another build is writing into {output} ({_lock_holder(fd)}; lock "
                        f"{path}) and did not finish within {wait:g} s: run this one again "
                        "once it is done"
                    )
                if not said:
                    holder = _lock_holder(fd)
                    log.warning("waiting for another build of %s to finish (%s)", output, holder)
                    said = True
                if stop is None:
                    time.sleep(0.1)
                elif stop.wait(0.1):  # a worker's SIGTERM: it stops now, not after two builds
                    raise BuildStopped(
                        f"stopped while waiting for another build of {output} to finish"
                    )
        except BaseException:
            os.close(fd)
            raise
        opened = os.fstat(fd)
        key = (opened.st_dev, opened.st_ino)
        with contextlib.suppress(OSError):
            found = path.lstat()
            if (found.st_dev, found.st_ino) == key:
                return fd, key
        os.close(fd)  # its holder removed it as this build waited: lock the one there now


def _not_a_lock_file(path: Path) -> SiteError:
    return SiteError(f"{path} is not a regular file: remove it (a build creates it while it runs)")


def _open_lock_file(path: Path) -> int:
    """Opened for writing where it can be (an exclusive flock over NFS needs it), without
    following a link and without waiting on a FIFO someone put there."""
    flags = os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        return os.open(path, os.O_RDWR | flags, 0o644)
    except PermissionError:
        return os.open(path, os.O_RDONLY | flags, 0o644)


def _flocked(fd: int, path: Path) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in _NO_LOCKS:  # a file system that cannot lock files: build as before
            if path.parent not in _warned_no_locks:  # once per folder and process
                _warned_no_locks.add(path.parent)
                log.warning(
                    "%s cannot lock files (%s): building without the lock, so two builds of "
                    "this folder at once may break each other",
                    path.parent,
                    exc.strerror or exc,
                )
            return True
        exc.filename = exc.filename or str(path)
        raise _unwritable(path.parent, exc) from None
    return True


# flock's answers on a file system without locks (some network and FUSE file systems; EBADF:
# NFS refusing an exclusive lock on a file opened read-only)
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EBADF})
_warned_no_locks: set[Path] = set()


def _lock_holder(fd: int) -> str:
    """The process holding the flock on the file `fd` is open on, as Linux lists it in
    /proc/locks ("1: FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF"), with its
    command line; "another process" where that cannot be told. (Nothing is written into the
    lock file: a sync of the folder might copy it.)"""
    lock = os.fstat(fd)
    device = f"{os.major(lock.st_dev):02x}:{os.minor(lock.st_dev):02x}:{lock.st_ino}"
    try:
        listed = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        listed = ""
    pids = sorted(  # the lock on this device's file first (an overlay may show another)
        (fields[5] != device, fields[4])
        for fields in map(str.split, listed.splitlines())
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].endswith(f":{lock.st_ino}")
    )
    if not pids:
        return "another process"
    pid = pids[0][1]
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return f"process {pid}"
    return f"process {pid}: {clean_text(command.decode(errors='replace'), 100)}"


def _unwritable(output: Path, exc: OSError) -> SiteError:
    where = exc.filename or output
    return SiteError(
        f"cannot write the site into {output}: {exc.strerror or exc} ({where}); "
        "make the folder writable or choose another one"
    )


def write_site(
    output: Path,
    digests: Sequence[Digest],
    settings: SiteSettingsLike,
    templates_dir: Path | None = None,
    coverage: CoverageSpec | None = None,
    feed_values: Sequence[FeedValue] = (),
    value_days: int = 30,
    static_dir: Path | None = None,
    *,
    before_swap: Callable[[], None] | None = None,
    rendered_before: Mapping[str, str] | None = None,
) -> SiteWrite:
    """Build the whole site from all `digests` (newest first) and swap it into `output`.

    `coverage` gives the stories' coverage by the user's tags; `feed_values` (least adding
    first, over the last `value_days` days) fill the outlets page; the files of `static_dir`
    are copied in as they are. `before_swap` runs once the new site is staged; if it raises,
    the site on disk stays as it was (a publisher that lost its lease).

    The site is rendered into a staging folder first (a failure changes nothing), then each
    file whose bytes changed is renamed into place. Only files an earlier build wrote (the
    manifest) are replaced or removed; a file of the user's where the site needs one stops the
    build unchanged. `rendered_before` is the last build's `SiteWrite.pages`: a page whose
    inputs are those it was rendered from then, its file as that build left it, is not
    rendered again (see _Fingerprints); without them every page is rendered.
    """
    output = Path(output).absolute()
    if output.exists() and not output.is_dir():
        raise SiteError(f"{output} exists and is not a folder")
    try:
        # the zone's rules as its file gives them now, as the fingerprint reads them: a process
        # that runs for long (a worker) would go on rendering by the rules it first read
        ZoneInfo.clear_cache(only_keys=[settings.timezone])
        env = make_environment(templates_dir, settings.timezone)
        environment = environment_fingerprint(templates_dir, settings.timezone)
        with output_lock(output), template_problems(env, templates_dir):
            model = _ModelBuilder(digests, coverage, settings.timezone).build(feed_values)
            return _write_site(
                output,
                lambda reusable: _render_site(
                    model, settings, env, value_days, environment, reusable
                ),
                static_dir,
                before_swap,
                rendered_before,
            )
    except (SiteError, UnsafePathError):
        raise
    except OSError as exc:
        raise _unwritable(output, exc) from None


def _write_site(
    output: Path,
    render: Callable[[Callable[[str, str], bool]], Iterable[_Output]],
    static_dir: Path | None,
    before_swap: Callable[[], None] | None = None,
    rendered_before: Mapping[str, str] | None = None,
) -> SiteWrite:
    output.mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(output)
    before = {p: r for p, r in (rendered_before or {}).items() if p in previous.files}
    _remove_leftover_staging(output)  # dead builds' only: write_site holds the folder's lock
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=output))

    def reusable(path: str, fingerprint: str) -> bool:
        record = before.get(path)
        if record is None or not record.startswith(f"{fingerprint} "):
            return False
        return _file_as_recorded(record, output / path)

    site: set[str] = set()
    staged: set[str] = set()
    pages: dict[str, str] = {}  # page -> its fingerprint, then its record (with its signature)
    try:
        for found in render(reusable):  # pages are written as they are rendered, never all held
            site.add(found.path)
            if found.fingerprint is not None:
                pages[found.path] = found.fingerprint
            if found.data is None:
                pages[found.path] = before[found.path]
            else:
                _write(staging, found.path, found.data)
                staged.add(found.path)
        for path, source in _static_files(static_dir, output) if static_dir else ():
            if path in site or path in (MARKER_FILE, LOCK_FILE):
                raise SiteConflictError(
                    f"{static_dir / path} has the name of a page the site generates "
                    f"({path}): rename it in the site.static folder",
                    setting="site.static",
                )
            target = safe_path(staging, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            site.add(path)
            staged.add(path)
        conflicts = _conflicts(output, site, previous.files)
        if conflicts:
            shown = ", ".join(conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
            raise SiteConflictError(
                f"{output} holds files of yours where the site goes ({shown}); nothing was "
                "changed: move them, or build the site into another folder"
            )
        if before_swap is not None:
            before_swap()
        # The union first: a build killed while installing still knows every file it wrote.
        _write_manifest(staging, output, previous.files | site, previous.kept)
        installed = _install(staging, output, staged)
        _remove_stale(output, previous.files - site - {MARKER_FILE})
        kept = _user_entries(output, site)
        for path in staged & pages.keys():
            pages[path] = f"{pages[path]} {installed[path]}"
        _write_manifest(staging, output, site, kept)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    newly_kept = tuple(k for k in kept if k not in previous.kept)
    rendered = tuple(sorted(staged & pages.keys()))
    files = [output / p for p in sorted(site, key=lambda p: p.split("/"))]  # as paths sort
    return SiteWrite(files, tuple(kept), newly_kept, pages, rendered)


def build_site(
    output: Path,
    digests: Sequence[Digest],
    settings: SiteSettingsLike,
    templates_dir: Path | None = None,
    coverage: CoverageSpec | None = None,
    feed_values: Sequence[FeedValue] = (),
    value_days: int = 30,
    static_dir: Path | None = None,
    before_swap: Callable[[], None] | None = None,
) -> list[Path]:
    """`write_site`, returning the site's files as paths inside `output`, sorted."""
    return write_site(
        output,
        digests,
        settings,
        templates_dir,
        coverage,
        feed_values,
        value_days,
        static_dir,
        before_swap=before_swap,
    ).files


def _write(root: Path, relative: str, data: bytes) -> Path:
    path = safe_path(root, relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


__all__ = [
    "BUILD_LOCK_WAIT_SECONDS",
    "LOCK_FILE",
    "MARKER_FILE",
    "BuildStopped",
    "SiteBusyError",
    "SiteConflictError",
    "SiteError",
    "SiteSettingsLike",
    "SiteWrite",
    "UnsafePathError",
    "build_site",
    "built_file",
    "builtin_templates_dir",
    "checked_base_url",
    "clean_text",
    "environment_fingerprint",
    "http_url",
    "make_environment",
    "output_lock",
    "safe_path",
    "site_as_recorded",
    "slugify",
    "story_slug",
    "write_site",
]
