"""`aggregator worker`: polling, embedding and publishing shared by any number of processes.

Workers coordinate through the database only, the way job queues built on PostgreSQL do:
each takes work in a short transaction that stamps rows with a lease (`FOR UPDATE SKIP
LOCKED` on PostgreSQL; on SQLite the write lock already runs claims one at a time), does the
slow part (HTTP, the model) holding no lock, and stores the result only if its lease still
holds (leases are measured by the database server's clock on PostgreSQL, so workers on
machines whose clocks disagree still agree). A worker that dies leaves leases that run out
after `workers.lease_seconds`; then another worker takes the same rows again, so nothing is
lost, and items stay unique by their (feed, key), so nothing is stored twice.

- poll: a worker claims hosts (one row each) and a few due feeds of each; holding the host
  keeps every other worker off it, so `poll.per_host` holds across machines. Then it claims
  full_text feeds with items whose article page was never tried, and fetches those pages.
- embed: claims items of the window that have no vector yet.
- publish: grouping, stories, site and email, on one worker at a time under a leader lease;
  the lease is checked again just before the new site is swapped in.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from aggregator.config import Config
from aggregator.intake import decide
from aggregator.models import FetchOutcome
from aggregator.pipeline import (
    RECORD_BATCH,
    RECORD_SECONDS,
    FullTextSummary,
    _apply_config_changes,
    fetch_item_pages,
    poll_options,
    text_to_embed,
    utcnow,
)
from aggregator.store import ClaimedFeed, Recorded, Store

ROLES = ("poll", "embed", "publish")
PUBLISH_ROLE = "publish"
EMBED_CLAIM = 256
FULL_TEXT_CLAIM = 256  # article pages a poll cycle claims (see fetch_untried_pages)


class LeaseLost(Exception):
    """Another worker took over the publish lease; this one stops publishing."""


def new_worker_id() -> str:
    """Unique among all workers on all machines, and telling where a lease holder runs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class PollCycle:
    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    new_items: int = 0
    updated_items: int = 0  # stored items that took the feed's corrected title or summary
    taken_over: int = 0  # results dropped: their lease ran out and another worker took it
    full_texts: int = 0  # items whose article text was extracted (full_text feeds)


@dataclass(frozen=True, slots=True)
class EmbedCycle:
    items: int = 0


@dataclass(frozen=True, slots=True)
class PublishCycle:
    leader: bool  # False: another worker holds the publish lease
    stories: int = 0  # in the site (grouped now, or unchanged since the last publish)
    site_changed: bool = False
    email: str = ""  # what happened to the email, when asked for
    email_failed: bool = False  # the server refused it or could not be reached: `email` says why
    email_no_news: bool = False  # sent in an earlier cycle, or not due yet: nothing to say


def database_clock(store: Store) -> Callable[[], datetime]:
    """This machine's clock set by the database's (see Store.clock_offset): what a worker
    stores and compares with stored times. Read once per cycle: clocks drift slowly."""
    offset = store.clock_offset(utcnow)
    return lambda: utcnow() + offset


# ------------------------------------------------------------------ poll


def prepare_poll(config: Config, store: Store) -> None:
    """Before a worker polls: the configured feeds as claimable rows, and those whose entry
    in feeds.yaml changed due now (as `aggregator poll` does)."""
    store.sync_feeds(config.feeds)
    _apply_config_changes(config, store, database_clock(store)())


def poll_cycle(
    config: Config,
    store: Store,
    worker: str,
    stop: threading.Event,
    on_result: Callable[[FetchOutcome], None] | None = None,
    transport=None,
) -> PollCycle:
    """Fetch due feeds claimed from the store until none is left (or `stop` is set, after the
    feeds in flight); every due feed is fetched once, by one worker. Then a batch of article
    pages of full_text feeds (see fetch_untried_pages)."""
    clock = database_clock(store)
    run = _PollRun(config, store, worker, stop, on_result, clock)
    cycle = asyncio.run(run.run(transport))
    if not stop.is_set():
        texts = fetch_untried_pages(config, store, worker, clock(), stop)
        cycle = replace(cycle, full_texts=texts.extracted)
    return cycle


def fetch_untried_pages(
    config: Config, store: Store, worker: str, now: datetime, stop: threading.Event | None = None
) -> FullTextSummary:
    """The article pages of the window's items of full_text feeds that were never tried, up to
    FULL_TEXT_CLAIM: the items this cycle stored, and those a worker stopped or killed after
    storing them left behind (the next cycles fetch the rest). Their feeds are held
    meanwhile, so no other worker fetches the same pages (nor polls those feeds). The pages
    not fetched within half the lease are left to the next cycles too: a backlog on a slow
    site (256 pages, two at a time, 30 s each would take an hour) neither outlasts the feeds'
    lease, letting another worker fetch the same pages, nor holds up this worker's polling
    longer than that. Once `stop` is set (SIGTERM), the pages not done are left too: the
    texts fetched are stored and the feeds given back before systemd's stop timeout."""
    feeds = {f.url: f.allow_private for f in config.feeds if config.wants_full_text(f)}
    if not feeds:
        return FullTextSummary()
    lease = timedelta(seconds=config.workers.lease_seconds)
    since = now - timedelta(hours=config.window_hours)
    claim = store.claim_full_texts(worker, list(feeds), since, None, lease, FULL_TEXT_CLAIM)
    if not claim.items:
        return FullTextSummary()
    try:
        return fetch_item_pages(
            config, store, claim.items, feeds, within=lease.total_seconds() / 2, stop=stop
        )
    finally:
        store.release_feeds(worker, claim.feeds)


class _PollRun:
    def __init__(
        self,
        config: Config,
        store: Store,
        worker: str,
        stop: threading.Event,
        on_result: Callable[[FetchOutcome], None] | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.clock = clock  # outcomes are timed by it: next due times compare with the claim's
        self.worker = worker
        self.stop = stop
        self.on_result = on_result
        self.options = poll_options(config)
        self.lease = timedelta(seconds=config.workers.lease_seconds)
        self.feeds = {f.url: f for f in config.feeds}
        self.names = {f.url: f.name for f in config.feeds}
        self.counts: Counter[str] = Counter()
        self.in_flight: dict[str, int] = {}  # host -> its claimed feeds not yet fetched
        self.finished_hosts: list[str] = []
        self.results: list[FetchOutcome] = []
        self.oldest = 0.0
        # Claimed feeds whose fetch has not begun (queued behind politeness limits), with
        # the event their fetch sets once it starts: on SIGTERM they go back at once.
        self.queued: dict[asyncio.Task, tuple[ClaimedFeed, asyncio.Event]] = {}

    async def run(self, transport) -> PollCycle:
        from aggregator.poller import fetch_session

        limit = self.options.max_connections
        hosts = max(1, limit // self.options.max_per_host)
        per_host = self.options.max_per_host * 4  # a host's other feeds: next claim, any worker
        tasks: set[asyncio.Task] = set()
        claim_more = True
        async with fetch_session(self.options, transport) as session:
            while True:
                if claim_more and not self.stop.is_set() and len(tasks) <= limit // 2:
                    claimed = self.store.claim_feeds(self.worker, None, self.lease, hosts, per_host)
                    tasks.update(self._start(session, c) for c in claimed)
                    claim_more = bool(claimed)
                    if claimed:
                        continue
                if self.stop.is_set():
                    tasks -= await self._give_back_queued()
                if not tasks:
                    break
                done, _ = await asyncio.wait(
                    tasks, timeout=RECORD_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    tasks.discard(task)
                    self.queued.pop(task, None)
                    self._fetched(*task.result())
                if self._flush_due():
                    claim_more = self._flush() or claim_more
            self._flush()
        return PollCycle(
            feeds=sum(self.counts[k] for k in ("ok", "not_modified", "failed", "taken_over")),
            ok=self.counts["ok"],
            not_modified=self.counts["not_modified"],
            failed=self.counts["failed"],
            new_items=self.counts["new"],
            updated_items=self.counts["updated"],
            taken_over=self.counts["taken_over"],
        )

    def _start(self, session, claimed: ClaimedFeed) -> asyncio.Task:
        self.in_flight[claimed.host] = self.in_flight.get(claimed.host, 0) + 1
        feed = self.feeds.get(claimed.state.url)
        minutes = feed.min_interval_minutes if feed else None
        state = replace(
            claimed.state,
            allow_private=feed.allow_private if feed else False,
            min_interval=timedelta(minutes=minutes) if minutes else None,
        )

        started = asyncio.Event()

        async def fetch() -> tuple[str, FetchOutcome]:
            return claimed.host, await session.fetch(state, self.clock(), started)

        task = asyncio.create_task(fetch())
        self.queued[task] = (claimed, started)
        return task

    async def _give_back_queued(self) -> set[asyncio.Task]:
        """Stopping: cancel the claimed fetches that have not begun and release their feeds'
        leases, so another worker takes them now rather than after the lease runs out."""
        waiting = {t: c for t, (c, started) in self.queued.items() if not started.is_set()}
        self.queued = {t: q for t, q in self.queued.items() if t not in waiting}
        if not waiting:
            return set()
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        self.store.release_feeds(self.worker, [c.state.url for c in waiting.values()])
        for claimed in waiting.values():
            self._settled(claimed.host)
        return set(waiting)

    def _fetched(self, host: str, outcome: FetchOutcome) -> None:
        if not self.results:
            self.oldest = time.monotonic()
        self.results.append(outcome)
        self._settled(host)

    def _settled(self, host: str) -> None:
        self.in_flight[host] -= 1
        if not self.in_flight[host]:
            del self.in_flight[host]
            self.finished_hosts.append(host)

    def _flush_due(self) -> bool:
        return (
            len(self.results) >= RECORD_BATCH
            or bool(self.finished_hosts)
            or (bool(self.results) and time.monotonic() - self.oldest >= RECORD_SECONDS)
        )

    def _flush(self) -> bool:
        """Store the results, then let go of the hosts whose feeds are all stored; True when
        hosts were released (their next feeds may be claimable now)."""
        batch, self.results = self.results, []
        updates = [decide(o, self.names.get(o.url)) for o in batch]  # never None: all due
        if batch:
            recorded = self.store.record_claimed(self.worker, updates)  # type: ignore[arg-type]
            for outcome, result in zip(batch, recorded, strict=True):
                self._account(outcome, result)
        released, self.finished_hosts = self.finished_hosts, []
        if released:
            self.store.release_hosts(self.worker, released)
        return bool(released)

    def _account(self, outcome: FetchOutcome, recorded: Recorded | None) -> None:
        if recorded is None:
            self.counts["taken_over"] += 1
            return
        self.counts["new"] += recorded.new
        self.counts["updated"] += recorded.updated
        kind = {"ok": "ok", "not_modified": "not_modified"}.get(outcome.status, "failed")
        self.counts[kind] += 1
        if self.on_result:
            self.on_result(outcome)


# ------------------------------------------------------------------ embed


class LazyEmbedder:
    """The configured embedder, loaded on first use and then kept (a looping worker loads
    the model once, and not at all while nothing needs a vector)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._loaded = None

    def _get(self):
        if self._loaded is None:
            from aggregator.pipeline import _load_embedder

            self._loaded = _load_embedder(self.config)
        return self._loaded

    @property
    def model_key(self) -> str:
        return self._get().model_key

    def embed(self, texts):
        return self._get().embed(texts)


def embed_cycle(config: Config, store: Store, stop: threading.Event, embedder=None) -> EmbedCycle:
    """Give vectors to the window's items that have none, a claimed batch at a time, from
    the text cluster() would embed (an article's lede once its text arrived)."""
    lease = timedelta(seconds=config.workers.lease_seconds)
    clock = database_clock(store)  # the window as items' times are stored
    done = 0
    while not stop.is_set():
        now = clock()
        since = now - timedelta(hours=config.window_hours)
        claim = store.claim_unembedded(embedder.model_key, since, None, lease, EMBED_CLAIM)
        if not claim.items:
            break
        vectors = embedder.embed([text_to_embed(i) for i in claim.items])
        # Items whose article text arrived meanwhile are not stored: claimable again now.
        done += store.save_claimed_vectors(claim, vectors, embedder.model_key)
    return EmbedCycle(done)


# ------------------------------------------------------------------ publish


def publish_cycle(
    config: Config,
    store: Store,
    worker: str,
    *,
    email: bool = False,
    embedder=None,
    stop: threading.Event | None = None,
) -> PublishCycle:
    """Group, build and (if asked) email, if this worker holds or can take the publish
    lease; the lease is renewed before the stories are stored and before each later step,
    and checked before the site is swapped in. `stop` set while the build waits for another
    build of the folder ends the cycle there (site.BuildStopped): a worker told to stop."""
    from aggregator import pipeline
    from aggregator.emailer import EmailError

    lease = timedelta(seconds=config.workers.lease_seconds)

    def renew() -> None:
        if not store.renew_leader(PUBLISH_ROLE, worker, None, lease):
            raise LeaseLost

    def still_leader() -> None:
        if not store.leader_held(PUBLISH_ROLE, worker, None):
            raise LeaseLost

    if not store.hold_leader(PUBLISH_ROLE, worker, None, lease):
        return PublishCycle(leader=False)
    now = database_clock(store)()  # the window and the day as the poll workers stored them
    try:
        # Renewed (or found lost) after grouping, before anything is stored: a publisher
        # that lost its lease meanwhile stores no stories and no digest.
        pipeline.cluster(config, store, now=now, embedder=embedder, before_save=renew)
        renew()
        # No run lock (that of `aggregator run` and the other commands): the lease keeps
        # publishers apart, and pipeline.build holds the output folder's lock, which is what
        # a build by hand beside this one needs (one waits for the other). The run lock
        # would make every command by hand fail (exit 75) while a worker publishes. It waits
        # for that build for half its lease at most: waiting longer, it would lose the lease
        # and throw its build away at the swap; the next cycle builds.
        built = pipeline.build(
            config, store, before_swap=still_leader, lock_wait=lease.total_seconds() / 2, stop=stop
        )
        sent, failed, before = "", False, False
        if email:
            renew()
            try:
                result = pipeline.email(config, store, now=now)
                sent = (
                    f"sent to {result.destination}" if result.sent else f"not sent: {result.reason}"
                )
                if result.refused:
                    sent += f"; the server refused {result.refused}: check email.to"
                if result.deferred:
                    sent += f"; not yet to {result.deferred}: the next cycle tries again"
                before = result.already_sent or result.waiting
            except EmailError as exc:  # the site is published; the next cycle tries again
                sent, failed = f"not sent: {exc}", True
    except LeaseLost:
        return PublishCycle(leader=False)
    # The stories the site shows (the latest digest's): the count a skipped grouping (nothing
    # new since the last) has none of.
    return PublishCycle(
        leader=True,
        stories=built.stories,
        site_changed=not built.skipped,
        email=sent,
        email_failed=failed,
        email_no_news=before,
    )


def release_publish(store: Store, worker: str) -> None:
    store.release_leader(PUBLISH_ROLE, worker)
