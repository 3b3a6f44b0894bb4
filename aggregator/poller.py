"""Fetch many feeds concurrently, politely, and safely; never raise for a feed.

Every feed ends as one `FetchOutcome`. Politeness: conditional GET with the stored validators,
at most `max_per_host` requests per host at a time, server hints honoured (Retry-After,
Cache-Control, Expires, RSS <ttl>) and exponential backoff after errors (schedule.py).
Our own floors keep the pace polite: `min_interval` between two polls of a feed, and the
longer `unconditional_interval` for a feed whose server sends neither ETag nor Last-Modified
(every poll of it is a full download). A feed refused by our own policy (private address,
invalid URL) is not a server failure: it gets no backoff and waits for its configuration to
change. No cookies are kept and no Referer is sent; validators go back exactly as received.
Safety: redirects are followed by hand (to track permanent moves and re-check every hop
against private addresses), bodies are streamed and decompressed here with a hard cap so a
gzip bomb stops at `max_body_bytes`, and a per-feed deadline stops servers that trickle.
Bodies are parsed as they arrive (in a process pool for large polls), so they are never all
in memory at once.
"""

from __future__ import annotations

import asyncio
import copy
import ctypes
import functools
import multiprocessing
import os
import random
import signal
import ssl
import sys
import urllib.request
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit

import certifi
import httpcore
import httpx

from aggregator import USER_AGENT
from aggregator.models import FeedState, FetchOutcome, ParsedFeed
from aggregator.netguard import (
    SETTING_HINT,
    GuardedBackend,
    PrivateAddressError,
    ResolveError,
    Resolver,
    check_public_url,
    ip_literal,
    system_resolver,
)
from aggregator.parse import FeedParseError, NotAFeedError, newest_entries, parse_feed
from aggregator.schedule import (
    BACKOFF_BASE,
    CONFIG,
    MAX_INTERVAL,
    MIN_INTERVAL,
    NEVER,
    UNCONDITIONAL,
    WAIT_FOR_CONFIG,
    Schedule,
    cache_lifetime,
    floor_jitter,
    is_due,
    retry_after,
    schedule_after_error,
    schedule_after_success,
    ttl_interval,
)
from aggregator.text import http_url_problem, shortened

PR_SET_PDEATHSIG = 1  # linux/prctl.h

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.8, */*;q=0.1"
)
SUCCESS = (200, 203, 226)  # 226: "A-IM: feed" delta answer, a feed with only the new entries
PERMANENT_REDIRECTS = (301, 308)
TEMPORARY_REDIRECTS = (302, 303, 307)
KEEPALIVE_CONNECTIONS = 128  # idle connections kept for reuse, across all hosts
PROCESS_POOL_MIN_FEEDS = 40  # below this, starting worker processes costs more than it saves

OnResult = Callable[[FetchOutcome], None]


@dataclass(frozen=True)
class PollOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # longest silence between two reads
    total_timeout: float = 90.0  # whole fetch of one feed, all hops and the body
    max_body_bytes: int = 10 * 1024 * 1024  # after decompression
    max_items: int = 500  # entries taken from one feed body, the newest (newest_entries)
    max_connections: int = 32  # requests in flight overall
    max_per_host: int = 2
    max_redirects: int = 5
    user_agent: str = USER_AGENT
    min_interval: timedelta = timedelta(0)  # shortest time between two polls of a feed
    unconditional_interval: timedelta = timedelta(0)  # the same without ETag or Last-Modified
    backoff_base: timedelta = BACKOFF_BASE
    rng: random.Random = field(default_factory=random.Random)  # backoff jitter
    resolver: Resolver = system_resolver  # for the private-address check
    parse_processes: int | None = None  # None: auto; 0: parse in a thread
    trust_env: bool = True  # HTTP(S)_PROXY and friends


class FetchError(Exception):
    def __init__(
        self,
        message: str,
        http_status: int | None = None,
        *,
        retry_at: datetime | None = None,
        discovered_url: str | None = None,
        local: bool = False,
        fixable: bool = True,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_at = retry_at
        self.discovered_url = discovered_url
        self.local = local  # our own policy refused it: a config change, not time, fixes it
        self.fixable = fixable  # (local) allow_private would allow it


@dataclass(frozen=True)
class _Response:
    """The last hop of a fetch."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes | None
    url: str  # where the body came from: the base for relative links
    permanent_url: str  # where to fetch next time if this fetch counts as a success


class _FeedFetch:
    """One feed's fetch in progress: its overall slot and its clock. The overall slot is held
    for each request and, after the last one, until its body is parsed (which bounds the
    bodies in memory); the clock runs from the first request that holds both its slots."""

    def __init__(
        self, state: FeedState, overall: asyncio.Semaphore, started: asyncio.Event | None = None
    ) -> None:
        self.state = state
        self.overall = overall
        self.holding = False
        self.clock: asyncio.Timeout | None = None  # set by _Poller._fetch
        self.started = started

    @property
    def under_way(self) -> bool:
        """Its first request has held its slots: every wait from here on uses its time."""
        return self.clock is not None and self.clock.when() is not None

    def start_clock(self, seconds: float) -> None:
        """Start the feed's deadline, once (queueing for the first request is not counted)."""
        if self.clock is not None and not self.under_way:
            self.clock.reschedule(asyncio.get_running_loop().time() + seconds)

    async def hold_overall_slot(self) -> None:
        if not self.holding:
            await self.overall.acquire()
            self.holding = True
            if self.started is not None:  # from here on the feed's requests are under way
                self.started.set()

    def release(self) -> None:
        if self.holding:
            self.overall.release()
            self.holding = False


# ---------------------------------------------------------------- public API


async def poll_feeds(
    states: Sequence[FeedState],
    *,
    now: datetime,
    force: bool = False,
    options: PollOptions = PollOptions(),  # frozen, shared safely
    transport: httpx.AsyncBaseTransport | None = None,
    on_result: OnResult | None = None,
    collect: bool = True,
) -> list[FetchOutcome]:
    """Poll every feed that is due (all of them with `force`, except gone ones) and return
    one outcome per state, in order. `on_result` sees each outcome as soon as it is ready;
    with `collect=False` nothing is returned, so each outcome (and its parsed entries) can be
    freed once `on_result` has stored it, instead of the whole poll staying in memory."""
    due = sum(1 for s in states if not s.gone and (force or is_due(s.next_due, now)))
    async with http_clients(options, transport) as clients, worker_pool(options, due) as workers:
        poller = _Poller(clients, workers, options, now=now, force=force)

        failed = False  # once on_result raised, it sees no more outcomes

        async def poll_one(state: FeedState) -> FetchOutcome | None:
            nonlocal failed
            outcome = await poller.poll_one(state)
            if on_result is not None and not failed:
                try:
                    on_result(outcome)
                except BaseException:
                    failed = True
                    raise
            return outcome if collect else None

        tasks = [asyncio.create_task(poll_one(state)) for state in states]
        try:
            outcomes = await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return [o for o in outcomes if o is not None]


def poll(
    states: Sequence[FeedState],
    *,
    now: datetime,
    force: bool = False,
    options: PollOptions = PollOptions(),  # frozen, shared safely
    transport: httpx.AsyncBaseTransport | None = None,
    on_result: OnResult | None = None,
    collect: bool = True,
) -> list[FetchOutcome]:
    """Synchronous poll_feeds, for callers without an event loop."""
    return asyncio.run(
        poll_feeds(
            states,
            now=now,
            force=force,
            options=options,
            transport=transport,
            on_result=on_result,
            collect=collect,
        )
    )


class FetchSession:
    """One HTTP client and parser pool kept across many fetches (a long-running worker
    fetching the feeds it claims, batch after batch); politeness limits hold across them."""

    def __init__(self, poller: _Poller) -> None:
        self._poller = poller

    async def fetch(
        self, state: FeedState, now: datetime, started: asyncio.Event | None = None
    ) -> FetchOutcome:
        """Fetch one feed now, due or not (the caller decided); never raises for the feed.
        `started` is set once the fetch holds its slots (until then it is only queued)."""
        # Outcome times and next due dates count from this fetch's `now`: a poller of its own
        # (sharing clients, slots and limits), since other fetches run at the same time.
        poller = copy.copy(self._poller)
        poller.now = now
        return await poller.poll_one(state, started)


@asynccontextmanager
async def fetch_session(
    options: PollOptions = PollOptions(),  # frozen, shared safely
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[FetchSession]:
    async with (
        http_clients(options, transport) as clients,
        worker_pool(options, PROCESS_POOL_MIN_FEEDS) as workers,
    ):
        yield FetchSession(_Poller(clients, workers, options, now=datetime.now(UTC), force=True))


# ---------------------------------------------------------------- one feed


@dataclass(frozen=True)
class Clients:
    """Two HTTP clients: `guarded` connects only to public addresses (checked when each
    connection opens, see netguard.GuardedBackend); `open` is for allow_private feeds (any
    address but link-local ones). Two pools, so a connection opened for an allowed feed is never
    reused for another."""

    guarded: httpx.AsyncClient
    open: httpx.AsyncClient

    def for_private(self, allow_private: bool) -> httpx.AsyncClient:
        return self.open if allow_private else self.guarded


class _Poller:
    def __init__(
        self,
        clients: Clients,
        workers: Workers,
        options: PollOptions,
        *,
        now: datetime,
        force: bool,
    ) -> None:
        self.clients = clients
        self.workers = workers
        self.options = options
        self.now = now
        self.force = force
        self.slots = asyncio.Semaphore(options.max_connections)
        self.host_slots = HostSlots(options.max_per_host)
        self.guard = AddressGuard(options.resolver)

    async def poll_one(
        self, state: FeedState, started: asyncio.Event | None = None
    ) -> FetchOutcome:
        if state.gone:  # removed for good (410): no request, and its stored record stays as is
            return self._skipped(state)
        if not self.force and not is_due(state.next_due, self.now):
            return self._skipped(state)
        fetch = _FeedFetch(state, self.slots, started)
        try:
            return await self._fetch_and_parse(fetch)
        except FetchError as failure:
            return self._error(state, failure)
        except Exception as bug:  # never raise for a feed, even on our own mistakes
            message = f"unexpected error: {type(bug).__name__}: {bug}"
            return self._error(state, FetchError(message))
        finally:
            fetch.release()

    async def _fetch_and_parse(self, fetch: _FeedFetch) -> FetchOutcome:
        state = fetch.state
        response = await self._fetch(fetch)
        if response.status == 304:
            return self._not_modified(state, response)
        if response.status == 410 and response.url == response.permanent_url:
            return self._gone(state)
        if response.status in SUCCESS and response.body is not None:
            feed = await self._parse(response)
            return self._ok(state, response, feed)
        raise _status_error(response, self.now)

    # ------------------------------------------------------------ HTTP

    async def _fetch(self, fetch: _FeedFetch) -> _Response:
        """GET fetch_url, following up to max_redirects redirects by hand, within the feed's
        deadline: once its first request holds its slots, every later wait (the next hop's
        address check and slots) counts against total_timeout, so a fetch always ends."""
        with fetch_errors("fetch", self.options.total_timeout):
            async with asyncio.timeout(None) as fetch.clock:
                last, url, permanent_url = await follow_redirects(
                    fetch.state.fetch_url,
                    max_redirects=self.options.max_redirects,
                    guard=self.guard,
                    allow_private=fetch.state.allow_private,
                    request=lambda url: self._request(url, fetch),
                )
        return _Response(last.status, last.reason, last.headers, last.body, url, permanent_url)

    async def _request(self, url: str, fetch: _FeedFetch) -> Hop:
        """One hop, holding its host's slot, then an overall slot; a hop without a body (a
        redirect) gives both back, so no feed holds a slot while it waits for another (holding
        the overall slot across hops deadlocked: feeds waiting for the next hop's host slot
        held the overall slots that the feeds holding that host's slots waited for). The host
        slot first, so feeds queued behind a busy host hold no overall slot other hosts could
        use; a later hop goes before the host's feeds still queued (its clock is running)."""
        async with self.host_slots.of(url).held(first=not fetch.under_way):
            await fetch.hold_overall_slot()
            fetch.start_clock(self.options.total_timeout)
            with fetch_errors("fetch", self.options.total_timeout):
                hop = await self._send(url, fetch.state)
        if hop.body is None:  # only a body still to be parsed keeps its overall slot
            fetch.release()
        return hop

    async def _send(self, url: str, state: FeedState) -> Hop:
        client = self.clients.for_private(state.allow_private)
        request = client.build_request("GET", url, headers=_validators(state))
        response = await client.send(request, stream=True)
        try:
            body = None
            if response.status_code in SUCCESS:
                body = await read_capped(response, self.options.max_body_bytes)
            return Hop(response.status_code, response.reason_phrase, response.headers, body)
        finally:
            await response.aclose()

    # ------------------------------------------------------------ parsing

    async def _parse(self, response: _Response) -> ParsedFeed:
        content_type = response.headers.get("Content-Type")
        try:
            result = await self.workers.run(
                _parse_job, response.body, response.url, content_type, self.options.max_items
            )
        except BrokenExecutor as broken:  # its worker died (killed: out of memory, say)
            message = f"parser crashed: {type(broken).__name__}: {broken}"
            raise FetchError(message, response.status) from None
        if isinstance(result, ParsedFeed):
            return result
        message, discovered = result
        raise FetchError(message, response.status, discovered_url=discovered)

    # ------------------------------------------------------------ outcomes

    def _ok(self, state: FeedState, response: _Response, feed: ParsedFeed) -> FetchOutcome:
        etag = validator(response.headers, b"etag")
        last_modified = validator(response.headers, b"last-modified")
        lifetime = self._lifetime(response)
        schedule = self._due_after_success(state, lifetime, feed.ttl_minutes, etag, last_modified)
        return FetchOutcome(
            url=state.url,
            status="ok",
            checked_at=self.now,
            next_due=schedule.next_due,
            http_status=response.status,
            fetch_url=response.permanent_url,
            etag=etag,
            last_modified=last_modified,
            feed=feed,
            due_reason=schedule.reason,
            cache_seconds=_seconds(lifetime),
        )

    def _not_modified(self, state: FeedState, response: _Response) -> FetchOutcome:
        # a 304 may refresh the validators; otherwise the stored ones stay valid, and so
        # does the feed's <ttl> of its last 200
        etag = validator(response.headers, b"etag") or state.etag
        last_modified = validator(response.headers, b"last-modified") or state.last_modified
        # a 304 without freshness of its own is as fresh as the last response that gave one
        # (RFC 9111 4.3.4): its max-age stands, as the <ttl> of the last 200 does
        own = self._lifetime(response)
        lifetime = own
        if own is None and state.cache_seconds is not None:
            lifetime = timedelta(seconds=state.cache_seconds)
        schedule = self._due_after_success(state, lifetime, state.ttl_minutes, etag, last_modified)
        return FetchOutcome(
            url=state.url,
            status="not_modified",
            checked_at=self.now,
            next_due=schedule.next_due,
            http_status=304,
            fetch_url=response.permanent_url,
            etag=etag,
            last_modified=last_modified,
            due_reason=schedule.reason,
            cache_seconds=_seconds(own),
        )

    def _error(self, state: FeedState, failure: FetchError) -> FetchOutcome:
        if failure.local:  # our refusal: no backoff, the next change of feeds.yaml retries it
            errors = state.consecutive_errors
            next_due, reason = self.now + WAIT_FOR_CONFIG, CONFIG
        else:
            errors = state.consecutive_errors + 1
            # the feed's own interval: an error downloads nothing, so the longer interval of
            # feeds without validators (whose every poll is a full download) does not apply
            floor, _ = self._floor(state, conditional=True)
            if state.ttl_minutes:  # the feed's <ttl> of its last 200, as after a 304
                floor = max(floor, ttl_interval(state.ttl_minutes))
            schedule = schedule_after_error(
                self.now,
                errors,
                self.options.rng,
                retry_at=failure.retry_at,
                base=self.options.backoff_base,
                floor=min(floor, MAX_INTERVAL),
            )
            next_due, reason = schedule.next_due, schedule.reason
        return FetchOutcome(
            url=state.url,
            status="error",
            checked_at=self.now,
            next_due=next_due,
            http_status=failure.http_status,
            fetch_url=state.fetch_url,
            etag=state.etag,
            last_modified=state.last_modified,
            error=shortened(str(failure), MAX_ERROR_TEXT),
            discovered_feed_url=failure.discovered_url,
            consecutive_errors=errors,
            due_reason=reason,
            retry_at=failure.retry_at,
            refused=failure.local,
        )

    def _gone(self, state: FeedState) -> FetchOutcome:
        return FetchOutcome(
            url=state.url,
            status="gone",
            checked_at=self.now,
            next_due=NEVER,
            http_status=410,
            fetch_url=state.fetch_url,
            error="HTTP 410 Gone: the feed was removed and will not be polled again",
            consecutive_errors=state.consecutive_errors,
        )

    def _skipped(self, state: FeedState) -> FetchOutcome:
        """Not fetched: not due yet, or gone (due never, `poll --force` or not)."""
        return FetchOutcome(
            url=state.url,
            status="skipped",
            checked_at=self.now,
            next_due=NEVER if state.gone else state.next_due or self.now,
            fetch_url=state.fetch_url,
            etag=state.etag,
            last_modified=state.last_modified,
            consecutive_errors=state.consecutive_errors,
        )

    def _lifetime(self, response: _Response) -> timedelta | None:
        """How long the response stays fresh by its own caching headers, or None."""
        return cache_lifetime(
            response.headers.get("Cache-Control"),
            response.headers.get("Expires"),
            response.headers.get("Date"),
            self.now,
            response.headers.get("Age"),
        )

    def _due_after_success(
        self,
        state: FeedState,
        lifetime: timedelta | None,
        ttl_minutes: int | None,
        etag: str | None,
        last_modified: str | None,
    ) -> Schedule:
        floor, reason = self._floor(state, conditional=bool(etag or last_modified))
        return schedule_after_success(
            self.now,
            cache_lifetime=lifetime,
            ttl_minutes=ttl_minutes,
            floor=floor,
            floor_reason=reason,
            jitter=floor_jitter(self.options.rng) if floor else 1.0,
        )

    def _floor(self, state: FeedState, *, conditional: bool) -> tuple[timedelta, str]:
        """Our own shortest interval for this feed: its own min_interval (else the poll-wide
        one), but at least the unconditional interval when the server gives no validators
        (each poll is a full download): a feed's own floor may raise that one, not lower it."""
        own = self.options.min_interval if state.min_interval is None else state.min_interval
        if not conditional and self.options.unconditional_interval > own:
            return self.options.unconditional_interval, UNCONDITIONAL
        return own, MIN_INTERVAL


# ---------------------------------------------------------------- helpers


def _seconds(lifetime: timedelta | None) -> int | None:
    return None if lifetime is None else int(lifetime.total_seconds())


@asynccontextmanager
async def http_clients(
    options: PollOptions, transport: httpx.AsyncBaseTransport | None
) -> AsyncIterator[Clients]:
    """The guarded and the open client (a test's `transport` serves both). With trust_env,
    the proxies of HTTP_PROXY/HTTPS_PROXY/ALL_PROXY (minus NO_PROXY) are mounted on both: httpx
    reads them only when it builds its own transport, and ours is guarded. Through a proxy the
    proxy resolves and connects, so only the pre-request check (`refusal`) applies there."""
    async with AsyncExitStack() as stack:
        guarded_transport = transport or _guarded_transport(options, allow_private=False)
        open_transport = transport or _guarded_transport(options, allow_private=True)
        use_env = options.trust_env and transport is None
        guarded = await stack.enter_async_context(
            _client(options, guarded_transport, _proxy_mounts(options) if use_env else None)
        )
        opened = await stack.enter_async_context(
            _client(options, open_transport, _proxy_mounts(options) if use_env else None)
        )
        yield Clients(guarded=guarded, open=opened)


def environment_proxies() -> dict[str, str | None]:
    """httpx mount patterns for the proxy environment variables: a proxy URL per scheme
    ("http://", "https://", "all://"), and None (go direct) for each NO_PROXY entry, read as
    curl does (".example.com" matches subdomains, "example.com" the name and subdomains;
    "*" turns proxies off)."""
    found = urllib.request.getproxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        proxy = found.get(scheme)
        if proxy:
            mounts[f"{scheme}://"] = proxy if "://" in proxy else f"http://{proxy}"
    if not mounts:
        return {}
    for host in (h.strip() for h in found.get("no", "").split(",")):
        if host == "*":
            return {}
        if not host:
            continue
        if "://" in host:
            mounts[host] = None
        elif ":" in host and ip_literal(host) is not None:  # an IPv6 address
            mounts[f"all://[{host.strip('[]')}]"] = None
        elif ip_literal(host) is not None or host.lower() == "localhost":
            mounts[f"all://{host}"] = None
        else:
            mounts[f"all://*{host}"] = None
    return mounts


def _proxy_mounts(options: PollOptions) -> dict[str, httpx.AsyncBaseTransport | None]:
    """One proxy transport per proxied pattern; None mounts send those hosts direct (through
    the client's own, guarded transport)."""
    limits = _limits(options)
    return {
        pattern: None
        if proxy is None
        else httpx.AsyncHTTPTransport(proxy=proxy, verify=_tls_context(), limits=limits)
        for pattern, proxy in environment_proxies().items()
    }


def _guarded_transport(options: PollOptions, *, allow_private: bool) -> httpx.AsyncHTTPTransport:
    """httpx's own transport whose connection pool opens connections through GuardedBackend.
    httpx has no public hook for a network backend, so its pool is replaced;
    tests/test_poller.py fails if that ever stops taking effect."""
    limits = _limits(options)
    transport = httpx.AsyncHTTPTransport(
        verify=_tls_context(), limits=limits, trust_env=options.trust_env
    )
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_tls_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(options.resolver, allow_private=allow_private),
    )
    return transport


def _limits(options: PollOptions) -> httpx.Limits:
    # Requests in flight are bounded by our own semaphores; the pool may also keep idle
    # connections to many hosts (1,000 feeds on 50 hosts x 2 need ~100) so that the next feed
    # on a host reuses one instead of opening (and, over TLS, negotiating) a new one.
    keepalive = max(options.max_connections, KEEPALIVE_CONNECTIONS)
    return httpx.Limits(
        max_connections=options.max_connections + keepalive,
        max_keepalive_connections=keepalive,
        keepalive_expiry=30.0,
    )


def _no_cookies() -> CookieJar:
    """A jar that accepts nothing: a reader sends no cookies back (no tracking across feeds)."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


@asynccontextmanager
async def _client(
    options: PollOptions,
    transport: httpx.AsyncBaseTransport | None,
    mounts: dict[str, httpx.AsyncBaseTransport | None] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    timeout = httpx.Timeout(
        connect=options.connect_timeout,
        read=options.read_timeout,
        write=options.read_timeout,
        pool=None,  # waiting for a pooled connection is bounded by our own semaphores
    )
    limits = _limits(options)
    headers = {
        "User-Agent": options.user_agent,
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip, deflate",  # the only codings _Decoder handles
        "A-IM": "feed",  # RFC 3229: servers may answer 226 with just the new entries
    }
    async with httpx.AsyncClient(
        verify=_tls_context(),
        transport=transport,
        mounts=mounts,
        timeout=timeout,
        limits=limits,
        headers=headers,
        follow_redirects=False,
        trust_env=options.trust_env,
        cookies=_no_cookies(),
    ) as client:
        yield client


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle takes ~40 ms, more than a feed fetch."""
    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


class Workers:
    """Runs jobs in worker processes (or, without a pool, the event loop's default threads).
    A pool a job broke (its worker killed: out of memory, a crash in C) is replaced for the
    jobs still to come: the job that broke it, and those running beside it, raise
    BrokenExecutor, and each is only its own feed's or page's failure."""

    def __init__(self, pool: ProcessPoolExecutor | None, processes: int) -> None:
        self.pool = pool
        self.processes = processes

    async def run(self, job: Callable[..., Any], *args: Any) -> Any:
        pool = self.pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, job, *args)
        except BrokenExecutor:
            self._replace(pool)
            raise

    def _replace(self, broken: ProcessPoolExecutor | None) -> None:
        if broken is None or broken is not self.pool:
            return  # already replaced by another job that saw the same crash
        broken.shutdown(wait=False, cancel_futures=True)
        self.pool = process_pool(self.processes)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


@asynccontextmanager
async def worker_pool(options: PollOptions, feeds: int) -> AsyncIterator[Workers]:
    """Worker processes for big polls on multi-core machines (feedparser is pure Python and
    holds the GIL); without them, the event loop's default thread pool."""
    processes = pool_size(options, feeds)
    workers = Workers(process_pool(processes) if processes > 0 else None, processes)
    try:
        yield workers
    finally:
        workers.close()


def pool_size(options: PollOptions, jobs: int) -> int:
    """Worker processes for `jobs` parse or extraction jobs; 0: threads instead."""
    processes = options.parse_processes
    if processes is None:
        cores = os.cpu_count() or 1
        processes = min(cores, 8) if cores > 1 and jobs >= PROCESS_POOL_MIN_FEEDS else 0
    return processes


def process_pool(processes: int) -> ProcessPoolExecutor:
    """`processes` forked workers, all started now. fork: workers inherit the imported parser,
    and nothing re-imports the caller's __main__ (spawn/forkserver would run a script without
    a main guard, like `python -m aggregator`, again in every worker). worker_pool forks before
    the event loop starts any helper thread; a replacement for a broken pool cannot."""
    pool = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
    for warm_up in [pool.submit(os.getpid) for _ in range(processes)]:
        warm_up.result()
    return pool


def _exit_with_parent(parent_pid: int) -> None:
    """A run killed with -9 must not leave parser workers behind (cron runs every hour)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _parse_job(
    body: bytes, url: str, content_type: str | None, max_items: int
) -> ParsedFeed | tuple[str, str | None]:
    """Runs in a worker: returns the feed (its newest ``max_items`` entries), or (error
    message, discovered feed URL)."""
    try:
        return newest_entries(parse_feed(body, url=url, content_type=content_type), max_items)
    except NotAFeedError as not_a_feed:
        return str(not_a_feed), not_a_feed.discovered_url
    except FeedParseError as error:
        return str(error), None
    except Exception as bug:  # a parser crash is this feed's error, not the run's
        return f"parser crashed: {type(bug).__name__}: {bug}"[:300], None


@dataclass(frozen=True)
class Hop:
    """One response of a fetch that may redirect."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes | None


class HostSlot:
    """At most `size` requests to one host at a time, granted in order of arrival, except that
    a fetch's later hop (a redirect followed, the feed's deadline running) goes before the
    first requests still queued: a feed under way never waits for the host's whole queue."""

    def __init__(self, size: int) -> None:
        self.free = size  # > 0 only while nobody waits
        self.later_hops: deque[asyncio.Future[None]] = deque()
        self.first_requests: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> None:
        await self.acquire(first=True)

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    @asynccontextmanager
    async def held(self, *, first: bool) -> AsyncIterator[None]:
        await self.acquire(first=first)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, *, first: bool) -> None:
        if self.free:
            self.free -= 1
            return
        granted = asyncio.get_running_loop().create_future()
        queue = self.first_requests if first else self.later_hops
        queue.append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.cancelled():
                if granted in queue:
                    queue.remove(granted)
            else:  # granted just as it was cancelled: the slot goes to the next
                self.release()
            raise

    def release(self) -> None:
        """Hand the slot to the next waiter, later hops first; else it is free."""
        for queue in (self.later_hops, self.first_requests):
            while queue:
                granted = queue.popleft()
                if not granted.done():  # not cancelled meanwhile
                    granted.set_result(None)
                    return
        self.free += 1


class HostSlots:
    """At most `per_host` requests in flight per host name."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self.slots: dict[str, HostSlot] = {}

    def of(self, url: str) -> HostSlot:
        host = (urlsplit(url).hostname or "").lower()
        return self.slots.setdefault(host, HostSlot(self.per_host))


async def follow_redirects(
    url: str,
    *,
    max_redirects: int,
    guard: AddressGuard,
    allow_private: bool,
    request: Callable[[str], Awaitable[Hop]],
    before: Callable[[str], Awaitable[None]] | None = None,
) -> tuple[Hop, str, str]:
    """GET `url` through `request`, following redirects by hand so that every hop is checked:
    its URL (check_url), its address (guard), then `before` (e.g. robots.txt). Returns the
    last hop, its URL, and the URL to use next time (the last of an unbroken chain of
    permanent redirects from the start)."""
    permanent_url, still_permanent = url, True
    seen = {url}
    for hop in range(max_redirects + 1):
        check_url(url)
        try:
            await guard.check(url, allow_private)
            if before is not None:
                await before(url)
            last = await request(url)
        except FetchError as failure:
            if hop and failure.local and not failure.fixable:
                # The server sent us to a link-local or metadata address: no entry in
                # feeds.yaml can fix that, so it is the server's failure (normal backoff).
                failure.local = False
            raise
        if last.status not in PERMANENT_REDIRECTS + TEMPORARY_REDIRECTS:
            return last, url, permanent_url
        target = redirect_target(url, last.headers, last.status)
        if target in seen:
            raise FetchError(f"redirect loop: {url} redirects back to {target}", last.status)
        if hop == max_redirects:
            raise FetchError(f"too many redirects (more than {max_redirects})", last.status)
        seen.add(target)
        if still_permanent and last.status in PERMANENT_REDIRECTS:
            permanent_url = target
        else:  # a temporary hop: whatever follows may change again
            still_permanent = False
        url = target
    raise AssertionError("unreachable")


@contextmanager
def fetch_errors(what: str, limit: float) -> Iterator[None]:
    """A request's failures as FetchError, with words for the user (`what` timed out)."""
    try:
        yield
    except TimeoutError:
        raise FetchError(f"timed out: the {what} took longer than {limit:g} s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # InvalidURL also comes from an unparsable Location header (httpx reads it)
        raise FetchError(http_error_message(exc)) from None
    except PrivateAddressError as refused:  # the connect-time check (GuardedBackend)
        raise FetchError(str(refused), local=True, fixable=refused.fixable) from None
    except ResolveError as unresolved:
        raise FetchError(str(unresolved)) from None


class AddressGuard:
    """The pre-request private-address check, resolved once per host, port and allow_private
    in a run (hundreds of feeds, or one outlet's article pages, share a handful of hosts); the
    connection itself is checked again by GuardedBackend."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.checks: dict[tuple[str, int | None, bool], asyncio.Task[FetchError | None]] = {}

    async def check(self, url: str, allow_private: bool) -> None:
        """Raise the FetchError that refuses `url` (a valid http(s) URL: see check_url)."""
        parts = urlsplit(url)
        key = ((parts.hostname or "").lower(), parts.port, allow_private)
        if key not in self.checks:
            self.checks[key] = asyncio.create_task(
                refusal(url, self.resolver, allow_private=allow_private)
            )
        refused = await asyncio.shield(self.checks[key])
        if refused:
            raise refused


async def refusal(
    url: str, resolver: Resolver, *, allow_private: bool = False
) -> FetchError | None:
    """Why fetching `url` is refused (private address: our policy; unresolvable), or None."""
    try:
        await check_public_url(url, resolver, allow_private=allow_private)
    except PrivateAddressError as refused:
        return FetchError(str(refused), local=True, fixable=refused.fixable)
    except ResolveError as unresolved:
        return FetchError(str(unresolved))
    return None


def check_url(url: str) -> None:
    """An absolute http(s) URL with a host and a valid port, or a FetchError."""
    if http_url_problem(url):
        raise FetchError(
            f"invalid URL: {url[:200]} (an http:// or https:// URL is needed)", local=True
        )


def validator(headers: httpx.Headers, name: bytes) -> str | None:
    """An ETag or Last-Modified as the server's bytes, one character per byte (Latin-1), so
    that it goes back as the same bytes: httpx reads a value with bytes past ASCII as UTF-8
    (a French server's "déc."), which it then cannot send. None when the header is absent."""
    values = [value for key, value in headers.raw if key.lower() == name]
    return b", ".join(values).decode("latin-1") if values else None


def _validators(state: FeedState) -> dict[str, bytes]:
    """Conditional-GET headers, exactly as the server sent them last time. One that cannot be
    sent as bytes (stored by an older version as text past Latin-1) is left out: the fetch is
    unconditional, and its answer's validators are stored instead."""
    headers = {}
    for name, value in (("If-None-Match", state.etag), ("If-Modified-Since", state.last_modified)):
        if value:
            with suppress(UnicodeEncodeError):
                headers[name] = value.encode("latin-1")
    return headers


def redirect_target(url: str, headers: httpx.Headers, status: int) -> str:
    location = (headers.get("Location") or "").strip()
    if not location:
        raise FetchError(f"HTTP {status} redirect without a Location header", status)
    try:
        target = urljoin(url, location)
        parts = urlsplit(target)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. "http://[broken"
        valid = False
    if not valid:
        raise FetchError(f"redirect to an unsupported URL: {location[:200]}", status)
    return parts._replace(fragment="").geturl()


def _status_error(response: _Response, now: datetime) -> FetchError:
    message = f"HTTP {response.status} {response.reason}".strip()
    if response.status == 410:  # at the end of a temporary redirect: says nothing lasting
        message += f" at {response.url}, where a temporary redirect led"
    retry_at = None
    if response.status in (429, 503):
        retry_at = retry_after(response.headers.get("Retry-After"), now)
        if retry_at:
            message += f" (the server's Retry-After: not before {retry_at:%Y-%m-%d %H:%M:%S} UTC)"
    return FetchError(message, response.status, retry_at=retry_at)


# An error as stored and shown: what a server wrote into one (httpx quotes a bad status line,
# body bytes and all) is cut, not kept whole in every poll's record.
MAX_ERROR_TEXT = 500


def http_error_message(exc: httpx.HTTPError | httpx.InvalidURL) -> str:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection timed out: {detail}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out waiting for the server: {detail}"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {detail}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"invalid HTTP response: {detail}"
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return f"invalid URL: {detail}"
    return f"{type(exc).__name__}: {detail}"


# ---------------------------------------------------------------- bodies


class _TooLarge(Exception):
    pass


async def read_capped(response: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """The decoded body, refusing more than `cap` bytes after decompression (or, with
    `truncate`, keeping the first `cap` bytes). We decompress ourselves with zlib's max_length
    so a bomb never expands past the cap in memory."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap and not truncate:
        raise FetchError(f"body too large: {int(declared):,} bytes (limit {cap:,})")
    if response.is_stream_consumed:  # an in-memory response (httpx.MockTransport): decoded
        if len(response.content) > cap:
            if truncate:
                return response.content[:cap]
            raise FetchError(f"body too large: more than {cap:,} bytes (decompressed)")
        return response.content
    decoder = _Decoder(response.headers.get("Content-Encoding"))
    body = bytearray()
    try:
        async for raw in response.aiter_raw():
            body += decoder.decode(raw, room=cap - len(body))
            if len(body) > cap:
                raise _TooLarge
        body += decoder.flush(room=cap - len(body))
        if len(body) > cap:
            raise _TooLarge
    except _TooLarge:
        if truncate:
            return bytes(body[:cap])
        raise FetchError(f"body too large: more than {cap:,} bytes (decompressed)") from None
    except zlib.error as exc:
        raise FetchError(f"corrupt compressed body: {exc}") from None
    return bytes(body)


GZIP_MAGIC = b"\x1f\x8b"


class _Decoder:
    """Incremental Content-Encoding decoder with bounded output per call. A gzip body may hold
    several members, one after another (RFC 1952 2.2): all are decoded, as gzip -d does."""

    def __init__(self, content_encoding: str | None) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise FetchError(f"unsupported Content-Encoding: {content_encoding}")
        self.coding = codings[0] if codings else None
        self.gzip = self.coding in ("gzip", "x-gzip")
        self.inflater = self._inflater()
        self.started = False
        self.between_members = b""  # bytes after a gzip member, too few to tell what follows
        self.ignoring = False  # after the last member: what follows is not one (as before)

    def _inflater(self) -> zlib._Decompress:
        return zlib.decompressobj(zlib.MAX_WBITS | (16 if self.gzip else 0))

    def decode(self, data: bytes, room: int) -> bytes:
        if self.coding is None or not data:
            return data
        if self.coding == "deflate" and not self.started:
            data = self._sniff_raw_deflate(data)
        self.started = True
        out = bytearray()
        while data and len(out) <= room and not self.ignoring:
            if self.inflater.eof:
                data = self._next_member(data)
                continue
            out += self.inflater.decompress(data, room + 1 - len(out))
            data = self.inflater.unconsumed_tail
            if self.inflater.eof:  # the bytes after the end: another member, or nothing
                data = self.inflater.unused_data + data
        return bytes(out)

    def _next_member(self, data: bytes) -> bytes:
        """After a gzip member: the next member's bytes, decoded from a fresh inflater. Only a
        gzip body has more than one; anything else that follows (zero padding, junk) is left
        alone, as it was before."""
        data = self.between_members + data
        self.between_members = b""
        if not self.gzip:
            self.ignoring = True
            return b""
        if len(data) < len(GZIP_MAGIC):
            self.between_members = data
            return b""
        if not data.startswith(GZIP_MAGIC):
            self.ignoring = True
            return b""
        self.inflater = self._inflater()
        return data

    def flush(self, room: int) -> bytes:
        """The rest of the body; a FetchError if the stream stopped before its end marker (a
        connection cut short would otherwise store the entry it cut as if it were whole)."""
        if self.coding is None or not self.started:
            return b""
        out = self.inflater.flush()[: room + 1]
        if not self.inflater.eof:
            raise FetchError(
                f"compressed body cut short: the {self.coding} stream ends before its end marker"
            )
        return out

    def _sniff_raw_deflate(self, data: bytes) -> bytes:
        """ "deflate" should be zlib-wrapped, but many servers send raw deflate."""
        try:
            zlib.decompressobj().decompress(data[:2])
        except zlib.error:
            self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        return data


# ---------------------------------------------------------------- discovery

DISCOVERY_PATHS = ("feed", "rss", "rss.xml", "atom.xml", "feed.xml", "index.xml", "feed.json")


class DiscoveryError(Exception):
    """No feed found at or linked from a URL; str() says what was tried. `as_is_may_work`:
    the URL answered but is no feed and links to none (adding it unchecked may be what the
    user wants); `private`: refused as a private address (allow_private would allow it)."""

    def __init__(self, message: str, *, as_is_may_work: bool = False, private: bool = False):
        super().__init__(message)
        self.as_is_may_work = as_is_may_work
        self.private = private


@dataclass(frozen=True)
class Discovered:
    url: str
    title: str | None


async def discover_feed(
    url: str,
    *,
    allow_private: bool = False,
    options: PollOptions = PollOptions(),  # frozen, shared safely
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """The feed URL for `url`: itself if it is a feed, else the feed its page links to, else
    the first of the usual paths (/feed, /rss.xml, /atom.xml, ...) that is a feed."""
    found = await discover(url, allow_private=allow_private, options=options, transport=transport)
    return found.url


async def discover(
    url: str,
    *,
    allow_private: bool = False,
    options: PollOptions = PollOptions(),  # frozen, shared safely
    transport: httpx.AsyncBaseTransport | None = None,
) -> Discovered:
    """discover_feed, also returning the feed's title. Raises DiscoveryError."""
    options = replace(options, parse_processes=0)

    async def fetch(*urls: str) -> list[FetchOutcome]:
        states = [FeedState(url=u, fetch_url=u, allow_private=allow_private) for u in urls]
        now = datetime.now(UTC)
        return await poll_feeds(states, now=now, force=True, options=options, transport=transport)

    (first,) = await fetch(url)
    if first.status == "ok":
        return _discovered(first)
    if first.discovered_feed_url:
        (linked,) = await fetch(first.discovered_feed_url)
        if linked.status == "ok":
            return _discovered(linked)
    if first.http_status is None:  # unreachable or refused: other paths will not do better
        error = first.error or first.status
        private = first.refused and SETTING_HINT in error
        # the caller says how to allow it: the feed is not in feeds.yaml yet
        error = error.replace(f"; {SETTING_HINT}", "")
        raise DiscoveryError(f"no feed found for {url}: {error}", private=private)
    if first.http_status >= 400:  # the address itself is wrong: a feed found elsewhere misleads
        raise DiscoveryError(f"{url} answered {first.error or first.http_status}: check the URL")
    candidates = _candidate_urls(url)
    for outcome in await fetch(*candidates):
        if outcome.status == "ok":
            return _discovered(outcome)
    raise DiscoveryError(
        f"no feed found for {url}: {first.error or first.status}; also tried "
        + ", ".join(candidates),
        as_is_may_work=True,
    )


def _discovered(outcome: FetchOutcome) -> Discovered:
    title = outcome.feed.title if outcome.feed else None
    return Discovered(outcome.fetch_url or outcome.url, title)


def _candidate_urls(url: str) -> list[str]:
    """The usual feed locations, under the page's folder first, then under the site root."""
    parts = urlsplit(url)
    folder = url if parts.path.endswith("/") else urljoin(url, ".")
    root = f"{parts.scheme}://{parts.netloc}/"
    bases = list(dict.fromkeys([folder, root]))
    return list(dict.fromkeys(urljoin(base, path) for base in bases for path in DISCOVERY_PATHS))
