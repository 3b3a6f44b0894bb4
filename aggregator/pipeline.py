"""The Python API behind the CLI: poll, cluster, build, email, run.

Each step reads and writes the store, so each can run alone (from cron, or by hand) and a
crash in one leaves the others' results intact.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from aggregator.config import Config, FeedConfig, feed_key
from aggregator.coverage import coverage_spec
from aggregator.digest import (
    digest_from_dict,
    digest_to_dict,
    digests_from_dicts,
    keep_published,
    make_digest,
    mark_outlets,
    mark_revisions,
    mark_status,
    without_reports,
)
from aggregator.feedvalue import FeedValue
from aggregator.intake import decide
from aggregator.models import Digest, FeedState, FetchOutcome, Item, RunSummary
from aggregator.store import Recorded, Store
from aggregator.text import canonical_url, name_key, plural

if TYPE_CHECKING:
    from aggregator.grouping.evidence import EvidenceModel
    from aggregator.grouping.explain import PairEvidence
    from aggregator.grouping.scripts import Centres

log = logging.getLogger("aggregator")

EMBED_BATCH = 256  # vectors are committed per batch, so a crash keeps what was computed
# Vectors of items dated this long before the window are dropped: grouping never reads them
# again (2.1 KB an item on SQLite, the largest part of what is stored), unless the window is
# widened by more than this.
VECTORS_KEPT_PAST_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    items: int
    embedded: int
    stories: int
    multi_outlet: int
    new: int
    growing: int
    unchanged: int
    skipped: bool = False  # nothing changed since the last clustering
    older_items: int = 0  # stored items older than the window (counted when the window is empty)
    # the window's items in writing systems other than Latin, by system (grouping.script_of)
    other_scripts: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class BuildSummary:
    output: Path
    days: int
    stories: int
    skipped: bool = False  # the site on disk was built from the same data and templates
    newly_kept: tuple[str, ...] = ()  # files of the user's in output/ first seen (and kept)
    rendered: tuple[str, ...] = ()  # the pages rendered (the others had not changed)


def utcnow() -> datetime:
    return datetime.now(UTC)


def local_time(config: Config, now: datetime) -> datetime:
    """``now`` on the site's clock (site.timezone)."""
    return now.astimezone(ZoneInfo(config.site.timezone))


def local_day(config: Config, now: datetime) -> date:
    return local_time(config, now).date()


def digest_day(config: Config, store: Store, now: datetime) -> date:
    """The day whose digest a run at `now` makes: the local date, never before the newest
    digest's day. A time zone moved west puts the local date back some hours, to a day that
    is over (its page published, its email sent): that day keeps what it showed, and the
    newest digest, the site's today, goes on taking the news until the local date reaches it."""
    day = local_day(config, now)
    newest = store.newest_digest_day()
    return max(day, date.fromisoformat(newest)) if newest else day


# ------------------------------------------------------------------ poll


def poll_options(config: Config, timeout_seconds: float | None = None):
    """The poller's limits from feeds.yaml's `poll:` settings (timeout overridable)."""
    from aggregator.poller import PollOptions

    timeout = config.poll.timeout_seconds if timeout_seconds is None else timeout_seconds
    return PollOptions(
        max_connections=config.poll.concurrency,
        max_per_host=config.poll.per_host,
        total_timeout=timeout,
        read_timeout=min(PollOptions.read_timeout, timeout),
        max_body_bytes=int(config.poll.max_body_mb * 1024 * 1024),
        max_items=config.poll.max_items,
        min_interval=timedelta(minutes=config.poll.min_interval_minutes),
        unconditional_interval=timedelta(minutes=config.poll.unconditional_interval_minutes),
    )


class UnknownFeedError(ValueError):
    """A feed named on the command line is not in feeds.yaml; str() says which."""


def select_feeds(
    config: Config,
    wanted: Sequence[str],
    stored_titles: Callable[[], Mapping[str, str]] = dict,
) -> tuple[FeedConfig, ...]:
    """The configured feeds named by URL or name (all of them when `wanted` is empty); a word
    naming none that way names the feeds without `name` that `feeds list` shows by that title
    (`feeds_shown_as`), each of them. `stored_titles`: `Store.outlet_names`, asked only then."""
    if not wanted:
        return config.feeds
    chosen: dict[str, FeedConfig] = {}
    titles: Mapping[str, str] | None = None
    for word in wanted:
        key = word.strip()
        name = name_key(key)
        matches = [f for f in config.feeds if name and name_key(f.name or "") == name]
        by_url = config.feed(key) if "://" in key else None  # however its URL is spelled
        matches += [by_url] if by_url is not None else []
        if not matches:
            titles = stored_titles() if titles is None else titles
            matches = list(feeds_shown_as(config, key, titles))
        if not matches:
            raise UnknownFeedError(
                f"{word!r} is not a feed in {config.path} (see `aggregator feeds list`)"
            )
        chosen.update((f.url, f) for f in matches)
    return tuple(chosen.values())


def feeds_shown_as(
    config: Config, title: str, stored_titles: Mapping[str, str]
) -> tuple[FeedConfig, ...]:
    """The feeds without `name` that `feeds list` (and the site) show as `title`, ignoring
    case and invisible characters: the outlet name their latest item was stored under (their
    own title, else their host; `stored_titles` is `Store.outlet_names()`). Never polled, a feed
    has none."""
    wanted = name_key(title)
    return tuple(
        f
        for f in config.feeds
        if not f.name and wanted and name_key(stored_titles.get(f.url, "")) == wanted
    )


# Poll results stored per transaction (`poll` and poll workers), or fewer once the oldest
# waited RECORD_SECONDS (a worker also stores a host's results once the host is done).
RECORD_BATCH = 16
RECORD_SECONDS = 1.0

FINGERPRINT_VERSION = "f2:"  # stored hashes of another version are read as unknown


def feed_fingerprint(config: Config, feed: FeedConfig) -> str:
    """What decides how a feed is fetched (its URL and allow_private); a change means the user
    fixed it. Settings that do not change the request (full_text, min_interval_minutes, name,
    tags) are left out: changing them must not make every feed due now and clear backoff."""
    key = (feed.url, feed.allow_private)
    return FINGERPRINT_VERSION + hashlib.sha256(repr(key).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    changed: dict[str, str]  # url -> new fingerprint: the entry changed (or is new), due now
    unknown: dict[str, str]  # url -> fingerprint: none stored yet (an upgraded database)


def config_changes(known: dict[str, str | None], current: dict[str, str]) -> ConfigChanges:
    """Compare the fingerprints stored (`known`, url -> hash or None) with those of feeds.yaml.
    A stored feed with no fingerprint of this version (NULL after the schema upgrade, or an
    older format) is "unknown, unchanged": its fingerprint is recorded, its schedule and
    backoff are kept. Poll and `feeds status` both decide with this."""
    changed: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for url, fingerprint in current.items():
        if url not in known:
            changed[url] = fingerprint  # a new feed: due now anyway
            continue
        stored = known[url]
        if stored is None or not stored.startswith(FINGERPRINT_VERSION):
            unknown[url] = fingerprint
        elif stored != fingerprint:
            changed[url] = fingerprint
    return ConfigChanges(changed, unknown)


def feed_config_changes(config: Config, store: Store) -> ConfigChanges:
    current = {f.url: feed_fingerprint(config, f) for f in config.feeds}
    return config_changes(store.feed_config_hashes(), current)


def _apply_config_changes(config: Config, store: Store, now: datetime) -> None:
    """Feeds whose entry in feeds.yaml changed are due now (their backoff cleared)."""
    changes = feed_config_changes(config, store)
    store.remember_feed_configs(changes.unknown)
    store.note_feed_configs(changes.changed, now)


def poll(
    config: Config,
    store: Store,
    *,
    now: datetime | None = None,
    force: bool = False,
    only: Sequence[str] = (),
    on_result: Callable[[FetchOutcome, int], None] | None = None,
) -> RunSummary:
    """Fetch every configured feed once (those due, or all with force) and store new items,
    and the corrections of stored ones (a new title or summary).

    `only` limits the poll to feeds named by URL or name, or by the title `feeds list` shows
    for a feed without name (UnknownFeedError otherwise), e.g. to force a few of them."""
    import time

    from aggregator.poller import poll as poll_http

    now = now or utcnow()
    names = {f.url: f.name for f in config.feeds}
    counts = {"ok": 0, "failed": 0, "not_modified": 0, "new": 0, "updated": 0, "resting": 0}
    errors: list[tuple[str, str]] = []

    # Outcomes are stored a few feeds per transaction (one commit each is most of the cost of
    # storing); a kill -9 loses at most the batch not yet committed, which the next run fetches
    # again. Each feed's row and its items always land in the same transaction.
    pending: list[FetchOutcome] = []
    oldest = 0.0

    def record(outcome: FetchOutcome) -> None:
        nonlocal oldest
        if not pending:
            oldest = time.monotonic()
        pending.append(outcome)
        if len(pending) >= RECORD_BATCH or time.monotonic() - oldest >= RECORD_SECONDS:
            flush()

    def flush() -> None:
        batch = pending[:]
        pending.clear()
        updates = [decide(o, names.get(o.url)) for o in batch]  # None: not due, nothing to store
        recorded = iter(store.record_updates([u for u in updates if u is not None]))
        for outcome, update in zip(batch, updates, strict=True):
            account(outcome, next(recorded) if update is not None else Recorded())

    def account(outcome: FetchOutcome, recorded: Recorded) -> None:
        counts["new"] += recorded.new
        counts["updated"] += recorded.updated
        if outcome.status == "ok":
            counts["ok"] += 1
        elif outcome.status == "not_modified":
            counts["not_modified"] += 1
        elif outcome.status in ("error", "gone"):
            counts["failed"] += 1
            errors.append((outcome.url, outcome.error or outcome.status))
        elif outcome.url in healthy:  # skipped: not due
            counts["resting"] += 1
        if on_result:
            on_result(outcome, recorded.new)

    selected = select_feeds(config, only, store.outlet_names)
    _apply_config_changes(config, store, now)
    store.sync_feeds(config.feeds)  # a feed removed from the file gives its articles up
    options = poll_options(config)
    states: list[FeedState] = store.feed_states(selected)
    healthy = {s.url for s in states if s.consecutive_errors == 0 and not s.gone}
    if force:  # forced feeds are due now; gone ones stay gone
        # a server's Retry-After stands, unless its feed was named: `poll --force` of all the
        # feeds asked a server that said "not before" again at once
        states = [
            replace(s, next_due=None)
            if only or s.retry_after is None or s.retry_after <= now
            else s
            for s in states
        ]
    poll_http(states, now=now, options=options, on_result=record, collect=False)
    flush()
    texts = FullTextSummary()
    full_text_feeds = [f for f in selected if config.wants_full_text(f)]
    if full_text_feeds:
        # the window's items never tried: this run's new ones, and those a run killed after
        # storing them (or before full_text was set) left without their page
        since = now - timedelta(hours=config.window_hours)
        texts = fetch_full_texts(
            config,
            store,
            full_text_feeds,
            since=since,
            untried_only=True,
            within=ARTICLE_PHASE_TIMEOUTS * options.total_timeout,
        )
    return RunSummary(
        feeds_ok=counts["ok"],
        feeds_failed=counts["failed"],
        feeds_not_modified=counts["not_modified"],
        new_items=counts["new"],
        errors=tuple(errors),
        full_texts=texts.extracted,
        full_text_failures=texts.failed,
        updated_items=counts["updated"],
        feeds_resting=counts["resting"],
    )


# ------------------------------------------------------------------ full text


@dataclass(frozen=True, slots=True)
class FullTextSummary:
    items: int = 0  # items looked at: the pages requested and the items without a link
    pages: int = 0  # article pages fetched (or failed) this time
    left: int = 0  # pages left untried for a later run (a site pausing, robots.txt unread, time)
    extracted: int = 0  # items whose stored text is now the page's
    kept_summary: int = 0  # the page said no more than the feed's summary
    failed: int = 0  # fetch or extraction failed (recorded per item)
    changed: int = 0  # items whose stored text changed
    # (the item's link, or "" for none; why), the first FAILURES_SHOWN of the failed items
    failures: tuple[tuple[str, str], ...] = ()


FAILURES_SHOWN = 10  # a run's failed pages named, the rest counted


def fetch_full_texts(
    config: Config,
    store: Store,
    feeds: Sequence[FeedConfig],
    *,
    since: datetime,
    untried_only: bool,
    transport=None,
    within: float | None = None,
) -> FullTextSummary:
    """Fetch the article page of each item of `feeds` dated since `since` (untried_only:
    only items whose page was never tried: new ones, relinked ones, those a killed run left)
    and store its main text beside the summary. One request per item; failures are recorded
    on the item and never raised. `within`: see fetch_item_pages."""
    allow = {f.url: f.allow_private for f in feeds}
    rows = store.items_for_full_text(list(allow), since, untried_only=untried_only)
    return fetch_item_pages(config, store, rows, allow, transport=transport, within=within)


def fetch_item_pages(
    config: Config,
    store: Store,
    rows: Sequence[tuple[int, str | None, str, str]],
    allow_private: dict[str, bool],
    *,
    transport=None,
    within: float | None = None,
    stop: threading.Event | None = None,
) -> FullTextSummary:
    """Fetch the article page of each (item id, link, summary, feed url) and store its main
    text (allow_private: per feed url). `within`: seconds after which the pages not fetched
    yet are left (their items stay untried: fetched another time); so are they once `stop`
    is set."""
    from aggregator.articles import ArticleRequest, fetch_articles_sync

    results: list[tuple[int, str | None, str]] = []
    unsaved: list[tuple[int, str | None, str]] = []
    changed = 0
    requests = []
    for item_id, link, summary, feed_url in rows:
        if link:
            requests.append(ArticleRequest(item_id, link, allow_private[feed_url], summary))
        else:
            unsaved.append((item_id, None, "failed: the item has no link"))

    def save() -> None:
        nonlocal changed
        changed += store.save_full_texts(unsaved)
        results.extend(unsaved)
        unsaved.clear()

    def keep(result: tuple[int, str | None, str]) -> None:
        unsaved.append(result)
        if len(unsaved) >= PAGES_PER_SAVE:  # a run killed later keeps what it fetched
            save()

    started = utcnow()
    paused = store.site_pauses(started)  # sites that asked an earlier run to wait
    fetch_articles_sync(
        requests,
        options=poll_options(config),
        transport=transport,
        process=_extract_page,
        within=within,
        on_result=keep,
        stop=stop,
        paused=paused,
    )
    save()
    store.pause_sites(paused, utcnow())
    statuses = [status for _id, _text, status in results]
    without_link = len(rows) - len(requests)
    links = {item_id: link or "" for item_id, link, _summary, _feed in rows}
    failures = [
        (links.get(item_id, ""), status.removeprefix("failed: "))
        for item_id, _text, status in results
        if status.startswith("failed")
    ]
    return FullTextSummary(
        items=len(results),
        pages=len(results) - without_link,
        left=len(requests) - (len(results) - without_link),
        extracted=statuses.count(FULL_TEXT_STATUS["ok"]),
        kept_summary=statuses.count(FULL_TEXT_STATUS["short"]),
        failed=len(failures),
        changed=changed,
        failures=tuple(failures[:FAILURES_SHOWN]),
    )


def fetch_text(
    config: Config,
    store: Store,
    *,
    feeds: Sequence[str] = (),
    days: float = 1.0,
    now: datetime | None = None,
    transport=None,
) -> FullTextSummary:
    """Fetch and extract again the article text of items dated in the last `days` days,
    of the feeds named (else of every feed with full text on). The next `cluster` regroups."""
    now = now or utcnow()
    chosen = (
        select_feeds(config, feeds, store.outlet_names)
        if feeds
        else tuple(f for f in config.feeds if config.wants_full_text(f))
    )
    if not chosen:
        raise UnknownFeedError(
            f"no feed in {config.path} has full_text: true; set it, or name feeds with --feed"
        )
    since = now - timedelta(days=days)
    summary = fetch_full_texts(
        config, store, chosen, since=since, untried_only=False, transport=transport
    )
    if summary.changed:
        store.set_meta("cluster_fingerprint", "")  # same items, new texts: group them again
    return summary


def _extract_page(page) -> tuple[int, str | None, str]:
    """(item id, article text or None, status) of a fetched page; runs in a worker."""
    from aggregator.extract import extract_article

    if page.html is None:
        return page.item_id, None, f"failed: {page.error}"[:500]
    found = extract_article(page.html, url=page.final_url, summary=page.summary)
    return page.item_id, found.text, FULL_TEXT_STATUS[found.status]


PAGES_PER_SAVE = 20  # article texts stored together, as they come
# A poll's article pages get this many times `poll.timeout_seconds` in all: the pages of a slow
# site left then are tried by the next poll, and the run goes on to grouping.
ARTICLE_PHASE_TIMEOUTS = 4

FULL_TEXT_STATUS = {
    "ok": "ok",
    "short": "kept the feed's summary: the page's text is not longer",
    "empty": "failed: no article text found on the page",
}


def as_configured(config: Config, items: Sequence[Item]) -> list[Item]:
    """The items of the feeds in feeds.yaml, each under its feed's outlet name and tags now:
    its `name`, else the title its newest item was stored under. A feed removed from the file
    leaves the next digest, and one named (or renamed) after it was polled is one outlet, not
    its old title beside its name."""
    of_url = configured_feeds(config, {item.feed_url for item in items})
    newest = {item.feed_url: item.outlet for item in sorted(items, key=lambda item: item.id)}
    kept = []
    for item in items:
        feed = of_url[item.feed_url]
        if feed is None:
            continue
        outlet = feed.name or newest[item.feed_url]
        if (outlet, feed.tags) != (item.outlet, item.tags):
            item = replace(item, outlet=outlet, tags=feed.tags)
        kept.append(item)
    return kept


def configured_feeds(config: Config, urls: Iterable[str]) -> dict[str, FeedConfig | None]:
    """Each stored feed URL's feed in feeds.yaml, if any, by feed_key: a URL spelt another way
    in the file (localhost for 127.0.0.1, an upper-case host) is the same feed, whose items
    are stored under the first spelling."""
    feeds = {feed_key(feed.url): feed for feed in config.feeds}
    return {url: feeds.get(feed_key(url)) for url in urls}


def _removed_reports(store: Store, config: Config, digest: Digest | None) -> set[int]:
    """The stored items in ``digest`` (a day's earlier version) of feeds no longer in
    feeds.yaml: ``keep_published`` would keep their stories, out of the window by now."""
    ids = (
        [i.item_id for s in digest.stories for i in s.items if i.item_id is not None]
        if digest
        else []
    )
    feeds = store.feeds_of_items(ids) if ids else {}
    of_url = configured_feeds(config, set(feeds.values()))
    return {item_id for item_id, url in feeds.items() if of_url[url] is None}


def with_full_text(item: Item) -> Item:
    """The item as grouping and the digest see it: with an article text, its lede (who,
    where, when) stands in for the feed's summary."""
    from aggregator.extract import lede

    if not item.full_text:
        return item
    return replace(item, summary=lede(item.full_text), full_text="")


def text_to_embed(item: Item) -> str:
    """What the embedder reads for an item (as stored, or as with_full_text made it): the
    one text behind every stored vector, whoever computes it (cluster, an embed worker)."""
    from aggregator.grouping.text import embedding_text

    seen = with_full_text(item)
    return embedding_text(seen.title, seen.summary)


# ------------------------------------------------------------------ cluster


def cluster(
    config: Config,
    store: Store,
    *,
    now: datetime | None = None,
    embedder=None,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    before_save: Callable[[], None] | None = None,
) -> ClusterSummary:
    """Embed new items in the window, group them into stories, snapshot today's digest.
    `before_save` may veto storing them by raising (a publisher that lost its lease)."""
    from aggregator.grouping import group_prepared
    from aggregator.grouping.explain import features
    from aggregator.stories import make_stories

    now = now or utcnow()
    window = store.items_since(now - timedelta(hours=config.window_hours))
    stored = as_configured(config, window)
    removed = {item.id for item in window} - {item.id for item in stored}
    items = [with_full_text(item) for item in stored]
    day = digest_day(config, store, now)
    fingerprint = _window_fingerprint(config, items, day)
    # An empty window is worth explaining when the feeds did bring items, only older ones.
    older = store.count_items() if not items else 0
    if config.keep_full_text_days is not None:  # older than the window: whether or not it changed
        store.drop_full_texts_before(now - timedelta(days=config.keep_full_text_days))
    if not force and store.meta("cluster_fingerprint") == fingerprint:
        return ClusterSummary(len(items), 0, 0, 0, 0, 0, 0, skipped=True, older_items=older)

    stories = []
    embedded = 0
    if items:  # an empty window needs no model
        embedder = embedder or _load_embedder(config)
        ids = [item.id for item in items]
        matrix, embedded = _vectors(store, embedder, items, progress, _as_read(stored))
        params = config.grouping_params()
        centres = script_centres_of(embedder, items)
        labels, prepared = group_prepared(items, matrix, params, centres=centres)
        previous = store.story_assignments(ids)
        stories = make_stories(
            items,
            matrix,
            labels,
            previous,
            params.evidence(),
            # the vectors and text features grouping made: explaining reuses them
            prepared=features(items, matrix, unit=prepared.unit, batch=prepared.batch)
            if prepared
            else None,
            copy_jaccard=params.duplicate_jaccard,
        )
    if before_save is not None:
        before_save()
    digest = make_digest(stories, day, now, older_items=older, window_hours=config.window_hours)
    stored, before = store.digest_of(day.isoformat()), store.digest_before(day.isoformat())
    earlier = digest_from_dict(stored) if stored else None
    previous_day = digest_from_dict(before) if before else None
    removed |= _removed_reports(store, config, earlier)
    digest = without_reports(keep_published(digest, earlier), removed)
    digest = mark_status(digest, previous_day)
    digest = mark_revisions(digest, earlier, previous_day)
    digest = mark_outlets(digest, earlier)
    store.save_clustering(stories, day.isoformat(), now, digest_to_dict(digest), fingerprint)
    store.drop_vectors_before(now - timedelta(hours=config.window_hours) - VECTORS_KEPT_PAST_WINDOW)
    return ClusterSummary(
        items=len(items),
        embedded=embedded,
        stories=len(stories),
        multi_outlet=sum(1 for s in stories if len(s.outlets) > 1),
        new=sum(1 for s in stories if s.status == "new"),
        growing=sum(1 for s in stories if s.status == "growing"),
        unchanged=sum(1 for s in stories if s.status == "unchanged"),
        older_items=older,
        other_scripts=_other_scripts(items),
    )


# the embedder's centres by model and writing system: a long-lived process (serve, workers)
# embeds each system's reference texts once
_CENTRES: dict[tuple[str, str], np.ndarray | None] = {}


def script_centres_of(embedder, items: Sequence[Item]) -> Centres:
    """What the texts of each writing system of ``items`` that ``embedder`` reads poorly
    share (``grouping.scripts``), measured once per model and system."""
    from aggregator.grouping.scripts import script_centres, scripts_of

    present = scripts_of(items)
    key = getattr(embedder, "model_key", None)
    if key is None:  # an embedder that names no model: nothing to keep its centres under
        return script_centres(embedder.embed, present)
    wanted = {s for s in present if (key, s) not in _CENTRES}
    if wanted:
        measured = script_centres(embedder.embed, wanted)
        _CENTRES.update({(key, s): measured.get(s) for s in wanted})
    return {s: centre for s in present if (centre := _CENTRES[(key, s)]) is not None}


def _other_scripts(items: Sequence[Item]) -> tuple[tuple[str, int], ...]:
    """How many of ``items`` are in each writing system other than Latin, most first."""
    from aggregator.grouping.text import item_script

    found = Counter(script for script in map(item_script, items) if script != "latin")
    return tuple(found.most_common())


# ------------------------------------------------------------------ explain


class ExplainError(Exception):
    """What was asked for is not in the window (a one-line message for the user)."""


@dataclass(frozen=True)
class MemberReason:
    item: Item
    why: str  # as stored with the story
    evidence: PairEvidence | None  # this item against the story's other items (None: alone)


@dataclass(frozen=True)
class StoredReason:
    """A member as the last digest published it (window or not)."""

    title: str
    outlet: str
    why: str
    item_id: int | None = None  # known when no digest has the story


@dataclass(frozen=True)
class StoryExplanation:
    story_id: str
    members: list[MemberReason]  # the members still in the window
    stored: list[StoredReason]  # every member's stored reason
    window_hours: float
    neighbour_id: str | None  # the closest other story (as the grouping chooses it)
    neighbour_headline: str
    neighbour_evidence: PairEvidence | None
    stored_why_not: str = ""  # as the last digest published it
    stored_why_not_headline: str = ""
    merged_from: str | None = None  # the story asked for, which merged into this one

    @property
    def total(self) -> int:
        return max(len(self.stored), len(self.members))


@dataclass(frozen=True)
class PairExplanation:
    first: Item
    second: Item
    evidence: PairEvidence
    stories: tuple[str | None, str | None]  # each item's stored story id
    copy_note: str  # "B is stored as a copy of A", or ""
    duplicates: tuple[int, int]  # how many window items carry each link (the earliest is used)


def _window_batch(
    config: Config, store: Store, now: datetime | None, embedder
) -> tuple[list[Item], np.ndarray, EvidenceModel, Centres]:
    """The window's items, their vectors (embedding what lacks one), the evidence model and
    the writing systems' centres, as grouping used them."""
    now = now or utcnow()
    # as cluster groups them: the feeds.yaml feeds' items under their names now, with the lede
    # of any fetched article text
    stored = as_configured(config, store.items_since(now - timedelta(hours=config.window_hours)))
    items = [with_full_text(i) for i in stored]
    embedder = embedder or _load_embedder(config)
    matrix, _embedded = _vectors(store, embedder, items, None, _as_read(stored))
    return items, matrix, config.grouping_params().evidence(), script_centres_of(embedder, items)


def _published_stories(store: Store) -> dict[str, dict]:
    """Story id -> the story as the newest digest holding it published it."""
    found: dict[str, dict] = {}
    for digest in store.digests():  # newest first
        for story in digest.get("stories", []):
            found.setdefault(story["id"], story)
    return found


def _merged_into(store: Store, story_id: str) -> str | None:
    """The story that carries the reports of ``story_id`` since it merged into it, as the
    newest digest that says so gives it (followed through later merges there)."""
    for digest in store.digests():  # newest first
        carrier = (digest.get("moved") or {}).get(story_id)
        if carrier is not None and store.story_reasons(str(carrier)):
            return str(carrier)
    return None


def explain_story(
    config: Config, store: Store, story_id: str, *, now: datetime | None = None, embedder=None
) -> StoryExplanation:
    """The evidence for each member of a stored story still in the window, the stored reasons
    of all its members, and the evidence against its closest other story."""
    from aggregator.grouping.explain import closest_stories, features, pair_evidence

    reasons = store.story_reasons(story_id)
    if not reasons:
        carrier = _merged_into(store, story_id)
        if carrier is not None:  # as its page on the site does, lead to the story that has it
            found = explain_story(config, store, carrier, now=now, embedder=embedder)
            return replace(found, merged_from=story_id)
        raise ExplainError(f"no story {story_id!r}; story ids are in stories.json (run cluster)")
    published = _published_stories(store)
    story = published.get(story_id, {})
    stored = [
        StoredReason(str(i.get("title", "")), str(i.get("outlet", "")), str(i.get("why", "")))
        for i in story.get("items", [])
    ] or [  # in no digest: the reasons by item id
        StoredReason(f"item {item_id}", "", why, item_id)
        for item_id, why in sorted(reasons.items())
    ]
    items, matrix, model, centres = _window_batch(config, store, now, embedder)
    story_of = store.story_assignments([i.id for i in items])
    by_story: dict[str, list[int]] = {}
    for k, item in enumerate(items):
        if item.id in story_of:
            by_story.setdefault(story_of[item.id], []).append(k)
    inside = by_story.get(story_id, [])
    explained = StoryExplanation(
        story_id,
        [],
        stored,
        config.window_hours,
        None,
        "",
        None,
        str(story.get("why_not", "")),
        str(story.get("why_not_headline", "")),
    )
    if not inside:  # aged out of the window: what was stored is all there is
        return explained
    prepared = features(items, matrix, centres=centres)  # once for every comparison below
    members = [
        MemberReason(
            items[k],
            reasons.get(items[k].id, ""),
            pair_evidence([k], [j for j in inside if j != k], prepared, model)
            if len(inside) > 1
            else None,
        )
        for k in inside
    ]
    explained = replace(explained, members=members)
    neighbour = closest_stories(by_story, prepared.unit).get(story_id)
    if neighbour is None:
        return explained
    side = by_story[neighbour]
    headline = published.get(neighbour, {}).get("headline") or items[side[0]].title
    return replace(
        explained,
        neighbour_id=neighbour,
        neighbour_headline=str(headline),
        neighbour_evidence=pair_evidence(inside, side, prepared, model),
    )


def check_two_links(url_a: str, url_b: str) -> None:
    """ExplainError unless the two URLs name two links."""
    if canonical_url(url_a) == canonical_url(url_b):
        raise ExplainError("explain needs two different item URLs (both name the same link)")


def explain_pair(
    config: Config,
    store: Store,
    url_a: str,
    url_b: str,
    *,
    now: datetime | None = None,
    embedder=None,
) -> PairExplanation:
    """The evidence that the items at two links report one story."""
    from aggregator.grouping.explain import compare

    check_two_links(url_a, url_b)
    items, matrix, model, centres = _window_batch(config, store, now, embedder)
    sides, counts = [], []
    for url in (url_a, url_b):
        wanted = canonical_url(url)
        found = [k for k, i in enumerate(items) if i.link and canonical_url(i.link) == wanted]
        if not found:
            dated = store.latest_time_of_link(url)
            if dated is not None:  # stored, but grouping no longer compares it with anything
                raise ExplainError(
                    f"the item with link {url} is dated {dated:%Y-%m-%d %H:%M} UTC, before "
                    f"the window (window_hours: {config.window_hours:g}): only items in it "
                    "are compared"
                )
            raise ExplainError(f"no item with link {url} is stored")
        # one link in several feeds: the earliest item stands for it (items_since's order)
        sides.append(min(found, key=lambda k: (items[k].published, items[k].id)))
        counts.append(len(found))
    first, second = items[sides[0]], items[sides[1]]
    evidence = compare(items, matrix, [sides[0]], [sides[1]], model, centres)
    story_of = store.story_assignments([first.id, second.id])
    copies = store.copy_sources([first.id, second.id])
    note = ""
    if copies.get(second.id) == first.id:
        note = "B is stored as a copy of A"
    elif copies.get(first.id) == second.id:
        note = "A is stored as a copy of B"
    return PairExplanation(
        first,
        second,
        evidence,
        (story_of.get(first.id), story_of.get(second.id)),
        note,
        (counts[0], counts[1]),
    )


def _as_read(items: Sequence[Item]) -> dict[int, tuple[str, str, str]]:
    """Each item's texts as the store gave them (see Store.save_vectors)."""
    return {i.id: (i.title, i.summary, i.full_text) for i in items}


def _vectors(
    store: Store,
    embedder,
    items: list[Item],
    progress: Callable[[int, int], None] | None,
    as_read: Mapping[int, tuple[str, str, str]],
) -> tuple[np.ndarray, int]:
    """The items' vectors in their order (embedding and storing any missing: only for the
    items whose stored texts are still ``as_read``), and how many items got one now."""
    vectors_by_id = store.vectors([i.id for i in items], embedder.model_key)
    embedded = _embed_missing(store, embedder, items, vectors_by_id, progress, as_read)
    if not items:
        return np.zeros((0, 1), np.float32), embedded
    return np.stack([vectors_by_id[i.id] for i in items]).astype(np.float32), embedded


def _embed_missing(
    store: Store,
    embedder,
    items: list[Item],
    vectors_by_id: dict[int, np.ndarray],
    progress: Callable[[int, int], None] | None,
    as_read: Mapping[int, tuple[str, str, str]],
) -> int:
    """Give every item not in `vectors_by_id` a vector, added to it and stored (where the
    item's texts are still `as_read`); returns how many items got one.

    Syndicated copies often carry the very same title and summary: a copy of an item embedded
    in an earlier run takes its vector, and copies arriving together are embedded once.
    """
    missing = [item for item in items if item.id not in vectors_by_id]
    if not missing:
        return 0
    known = {(i.title, i.summary): vectors_by_id[i.id] for i in items if i.id in vectors_by_id}
    ids_by_text: dict[str, list[int]] = {}
    copies: list[Item] = []
    for item in missing:
        if (item.title, item.summary) in known:
            copies.append(item)
        else:
            ids_by_text.setdefault(text_to_embed(item), []).append(item.id)
    if copies:
        vectors = np.stack([known[(i.title, i.summary)] for i in copies])
        _save(store, embedder.model_key, vectors_by_id, [i.id for i in copies], vectors, as_read)
    done = len(copies)
    if progress and copies:
        progress(done, len(missing))
    texts = list(ids_by_text)
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start : start + EMBED_BATCH]
        vectors = embedder.embed(batch)
        ids_per_text = [ids_by_text[text] for text in batch]
        rows = np.repeat(np.arange(len(batch)), [len(ids) for ids in ids_per_text])
        batch_ids = [item_id for ids in ids_per_text for item_id in ids]
        _save(store, embedder.model_key, vectors_by_id, batch_ids, vectors[rows], as_read)
        done += len(rows)
        if progress:
            progress(done, len(missing))
    return len(missing)


def _save(
    store: Store,
    model_key: str,
    vectors_by_id: dict[int, np.ndarray],
    ids: list[int],
    vectors: np.ndarray,
    as_read: Mapping[int, tuple[str, str, str]],
) -> None:
    """Store the vectors of the items whose text is still as read (this run groups with all)."""
    store.save_vectors(ids, vectors, model_key, as_read)
    vectors_by_id.update(zip(ids, vectors, strict=True))


def _window_fingerprint(config: Config, items: Sequence[Item], day: date) -> str:
    # Same items with the same texts (as grouping and the digest read them: a feed's
    # correction, an article's text arriving), same settings, same day: the stories would
    # come out the same. The texts cost ~60 ms for 50,000 items.
    digest = hashlib.sha256()
    digest.update(
        repr((config.model, config.embedding, sorted(config.grouping.items()), day)).encode()
    )
    # and the same feeds, names and tags: a feed removed whose items all left the window
    # still has a story the day published (keep_published), and a tag makes a section
    feeds = sorted((feed_key(f.url), f.name or "", f.tags) for f in config.feeds)
    digest.update(repr(feeds).encode())
    digest.update(np.asarray([i.id for i in items], dtype=np.int64).tobytes())
    # and the same feed, outlet and time per item (another feed may take an item over)
    texts = "\0".join(
        f"{i.title}\x1f{i.summary}\x1f{i.link or ''}\x1f{i.feed_url}\x1f{i.outlet}\x1f"
        f"{i.published.isoformat()}\x1f{i.language or ''}"
        for i in items
    )
    digest.update(texts.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _load_embedder(config: Config):
    from aggregator.embed import load_embedder

    return load_embedder(
        config.model,
        backend=config.embedding.backend,
        max_tokens=config.embedding.max_tokens,
        threads=config.embedding.threads,
    )


# ------------------------------------------------------------------ build and email


def _one_build_at_a_time(unlocked: Callable[..., BuildSummary]) -> Callable[..., BuildSummary]:
    """`unlocked` holding the output folder's lock (site.output_lock) from reading the store to
    storing its record of the pages: a build that waited for another reads the digests and
    the record that one stored (it may find the site up to date), and the record stored
    last is that of the files on disk, never one of an older build that finished later.
    `lock_wait`: how long to wait for another build (site.BUILD_LOCK_WAIT_SECONDS); `stop`:
    an event that ends the wait (site.BuildStopped), a worker's SIGTERM."""

    @functools.wraps(unlocked)
    def locked(
        config: Config,
        store: Store,
        *,
        lock_wait: float | None = None,
        stop: threading.Event | None = None,
        **options,
    ) -> BuildSummary:
        from aggregator.site import output_lock

        with output_lock(config.output, lock_wait, stop):
            return unlocked(config, store, **options)

    return locked


@_one_build_at_a_time
def build(
    config: Config,
    store: Store,
    *,
    force: bool = False,
    full: bool = False,
    before_swap: Callable[[], None] | None = None,
) -> BuildSummary:
    """Render the site from the stored daily digests (skipped when nothing changed).
    Only the pages whose inputs changed since the last build are rendered again, unless
    `full` (which implies `force`). `before_swap` may veto the new site by raising, after it
    is staged, before it replaces the old one (a publisher checking it still holds its lease)."""
    from aggregator.site import (
        SiteConflictError,
        environment_fingerprint,
        site_as_recorded,
        story_pages_built,
        write_site,
    )

    payloads = store.digest_payloads()  # newest first, one a day
    digests = digests_from_dicts([json.loads(payload) for payload in payloads])
    recorded = _rendered_pages(store)
    if not digests and not recorded and (built := story_pages_built(config.output)):
        # a store that never built a site and has nothing to show, beside a published one: a
        # database moved or mistyped, from which the build would take the site down
        raise SiteConflictError(
            f"{config.output} holds a site with {plural(built, 'story page')}, but "
            f"{store.label} has no digest and built no site: is `database:` the one that "
            "built it? (to start a new site there, empty the folder first)",
            setting="database",
        )
    digest_keys = [
        hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest() for payload in payloads
    ]
    stories = len(digests[0].stories) if digests else 0
    coverage = coverage_spec(config.coverage, config.feeds)
    # Feed value changes only with new items, a new clustering (a new digest) or a feed
    # starting or stopping to fail: cheap to check, so an unchanged site costs no value query.
    failing = sorted(s.url for s in store.feed_states(config.feeds) if s.consecutive_errors)
    extra = repr((coverage.key(), config.feeds, store.count_items(), failing))
    environment = environment_fingerprint(config.templates, config.site.timezone)
    fingerprint = _build_fingerprint(config, digest_keys, environment, extra)
    if (
        not (force or full)
        and store.meta("build_fingerprint") == fingerprint
        and site_as_recorded(config.output, recorded)  # not deleted or edited since
    ):
        return BuildSummary(config.output, len(digests), stories, skipped=True)
    # up to the latest digest, not to now: the same data builds the same bytes
    values = (
        feed_values(config, store, as_of=digests[0].generated_at, days=SITE_VALUE_DAYS)
        if digests
        else []
    )
    # the site says whether a feed is failing, not for how many polls in a row
    values = [replace(v, errors=min(v.errors, 1)) for v in values]
    written = write_site(
        config.output,
        digests,
        config.site,
        templates_dir=config.templates,
        coverage=coverage,
        feed_values=values,
        value_days=SITE_VALUE_DAYS,
        static_dir=config.site.static,
        before_swap=before_swap,
        rendered_before=None if full else recorded,
    )
    store.set_meta(SITE_PAGES_KEY, json.dumps(written.pages, separators=(",", ":")))
    store.set_meta("build_fingerprint", fingerprint)
    return BuildSummary(
        output=config.output,
        days=len(digests),
        stories=stories,
        newly_kept=written.newly_kept,
        rendered=written.rendered,
    )


# What the last build rendered each page from (site.SiteWrite.pages): the next build renders
# only the pages whose inputs or files changed since. Kept here, not in the output folder,
# which is published: it changes with every build.
SITE_PAGES_KEY = "site_pages"


def _rendered_pages(store: Store) -> dict[str, str]:
    try:
        pages = json.loads(store.meta(SITE_PAGES_KEY) or "{}")
    except ValueError:
        return {}  # unreadable: every page is rendered, and the record written anew
    if not isinstance(pages, dict):
        return {}
    return {path: record for path, record in pages.items() if isinstance(record, str)}


def _build_fingerprint(
    config: Config, digest_keys: list[str], environment: str, extra: str = ""
) -> str:
    """Same digests (`digest_keys`: a hash of each as stored, newest first), settings, static
    files and `environment` (site.environment_fingerprint: the templates, the code): the site
    would come out byte-identical."""
    digest = hashlib.sha256(repr((environment, config.site, str(config.output))).encode())
    digest.update(extra.encode())
    digest.update(repr(digest_keys).encode())
    static = config.site.static
    for path in sorted(static.rglob("*")) if static is not None and static.is_dir() else ():
        name = str(path.relative_to(static)).encode() + b"\0"
        if path.is_symlink():  # where it leads: a link the build refuses is refused every run
            digest.update(name + os.readlink(path).encode("utf-8", "surrogateescape") + b"\0")
        if path.is_file():
            digest.update(name + path.read_bytes())
    return digest.hexdigest()


# ------------------------------------------------------------------ feed value

SITE_VALUE_DAYS = 30  # the outlets page's window


def feed_values(config: Config, store: Store, *, as_of: datetime, days: float) -> list[FeedValue]:
    """Each configured feed's value over the `days` before `as_of`, least adding first."""
    from aggregator.feedvalue import feed_values as compute

    records = store.story_item_records(as_of - timedelta(days=days))
    records = [r for r in records if r.published <= as_of]
    errors = {h.url: h.consecutive_errors for h in store.feed_health(as_of)}
    # a feed without a name is shown as `feeds status` shows it, items in the period or none
    shown = store.outlet_names()
    return compute(records, [(f.url, f.name or shown.get(f.url)) for f in config.feeds], errors)


@dataclass(frozen=True, slots=True)
class EmailResult:
    sent: bool
    destination: str
    reason: str = ""
    failed: bool = False  # not sent for want of something (a digest), not by choice (sent today)
    already_sent: bool = False  # the day's digest went out before: nothing new to say
    waiting: bool = False  # not yet (email.send_after), or no story yet: a later run sends it
    refused: str = ""  # recipients the server refused for good, with its reasons
    deferred: str = ""  # recipients the next run sends it to (a temporary refusal), with why


def _not_yet(config: Config, digest: Digest, now: datetime) -> str:
    """Why the day's email waits for a later run ("" when it goes now): before
    email.send_after, or while the day's digest holds no story (sent empty, it would use up
    the day's email)."""
    after = config.email.send_after
    if after is not None:
        local = local_time(config, now)
        if local.strftime("%H:%M") < after:
            return (
                f"not yet: email.send_after is {after} ({config.site.timezone}), "
                f"it is {local:%H:%M}"
            )
    if not digest.stories:
        return f"the digest for {digest.day.isoformat()} has no story yet"
    return ""


def email(
    config: Config,
    store: Store,
    *,
    to_file: Path | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> EmailResult:
    """Send (or write as .eml) the latest day's digest; once a day unless force."""
    from aggregator.emailer import render_email, send_email, write_eml

    now = now or utcnow()
    # the newest digest alone decides whether to send: an hourly `run --email` or a publish
    # worker's cycle read a year of digests (1 GB, 10 s) to learn it was sent this morning
    newest = digests_from_dicts(store.digests(limit=1))
    if not newest:
        return EmailResult(False, "", "no digest yet: run `aggregator cluster` first", failed=True)
    digest = newest[0]
    day = digest.day.isoformat()
    if (
        to_file is None
        and config.email.to
        and not force
        and (wait := _not_yet(config, digest, now))
    ):
        return EmailResult(False, "", wait, waiting=True)
    recipients = config.email.to
    sent_to = store.email_destination(day) if to_file is None and not force else None
    if sent_to is not None and recipients:
        # before rendering: a publish worker asks every cycle all day
        recipients = tuple(a for a in recipients if a in store.email_pending(day))
        if not recipients:
            return EmailResult(
                False,
                "",
                f"the digest for {day} was already sent (`aggregator email --force` resends it)",
                already_sent=True,
            )
    digests = digests_from_dicts(store.digests())
    message = render_email(
        digest,
        config.email,
        config.site,
        templates_dir=config.templates,
        earlier=digests[1:],  # which stories are developing since an earlier day
        coverage=coverage_spec(config.coverage, config.feeds),
        feed_values=feed_values(config, store, as_of=digest.generated_at, days=SITE_VALUE_DAYS),
        value_days=SITE_VALUE_DAYS,
        now=now,
    )
    if to_file is not None:
        write_eml(message, to_file)
        return EmailResult(True, str(to_file))
    if not config.email.to:
        return EmailResult(
            False, "", "no recipients: set email.to in feeds.yaml or use --to-file", failed=True
        )
    delivery = send_email(message, config.email, recipients)  # a message to each recipient
    # who has it is recorded at once: a later run sends it to those it did not reach only
    earlier = [a for a in (sent_to or "").split(", ") if a and a not in delivery.delivered]
    destination = ", ".join([*earlier, *delivery.delivered])
    store.mark_email_sent(day, destination, now, pending=tuple(delivery.deferred))
    return EmailResult(
        True,
        ", ".join(delivery.delivered),
        refused="; ".join(f"{a} ({why})" for a, why in delivery.refused.items()),
        deferred="; ".join(f"{a} ({why})" for a, why in delivery.deferred.items()),
    )
