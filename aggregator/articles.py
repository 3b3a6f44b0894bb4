"""Fetch article pages for full text, as politely and safely as feeds are fetched.

Politeness: robots.txt is read once per site and run and honoured for our User-Agent (RFC 9309:
a missing robots.txt allows everything, an unreachable one nothing), at most `max_per_host`
requests per host at a time, the same timeouts and body cap as feeds, an honest User-Agent, no
cookies. Safety: article links come from feed authors, so every hop of every redirect is
checked against private addresses before the request and again when the connection is opened
(netguard.GuardedBackend: the address checked is the address connected to). A page never
raises: each request ends as one `ArticlePage`, with the HTML or an error.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from protego import Protego

from aggregator.poller import (
    AddressGuard,
    Clients,
    FetchError,
    Hop,
    HostSlots,
    PollOptions,
    Workers,
    fetch_errors,
    follow_redirects,
    http_clients,
    read_capped,
    worker_pool,
)
from aggregator.schedule import retry_after

PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml")
ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309: crawlers read at least 500 KiB and may ignore more


@dataclass(frozen=True, slots=True)
class ArticleRequest:
    item_id: int
    url: str
    allow_private: bool = False
    summary: str = ""  # the feed's summary of the item, handed on to whoever processes the page


@dataclass(frozen=True, slots=True)
class ArticlePage:
    item_id: int
    url: str  # the article link as requested
    html: bytes | None  # None when `error` says why
    final_url: str | None = None  # after redirects: the base for relative links
    error: str | None = None
    summary: str = ""  # ArticleRequest.summary


Process = Callable[[ArticlePage], Any]  # module-level, so worker processes can run it


async def fetch_articles(
    requests: Sequence[ArticleRequest],
    *,
    options: PollOptions | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    process: Process | None = None,
    within: float | None = None,
    on_result: Callable[[Any], None] | None = None,
    stop: threading.Event | None = None,
    paused: SitePauses | None = None,
) -> list[Any]:
    """Fetch every article page and return, in order, each page or what `process` makes of
    it. `paused`: the sites (scheme://host) that asked for a pause in an earlier run, and
    until when; a page of one is left for later, and a site that asks now is added (with its
    Retry-After, else SITE_PAUSE) for the caller to keep. `process` (extraction: CPU-bound)
    runs in worker processes for big batches, as feed parsing does, else in a thread, never
    on the event loop; a page's HTML is freed once it is processed. `within`: seconds after which the pages not done yet are given up, each None
    (as is a page left for another run); so are they once `stop` is set (a worker's SIGTERM).
    `on_result` is given each other result as it comes, on the event loop's thread (to store
    it then: a run killed later keeps it)."""
    options = options or PollOptions()
    async with (
        http_clients(options, transport) as clients,
        worker_pool(options, len(requests) if process else 0) as workers,
    ):
        fetcher = _Fetcher(clients, options, paused if paused is not None else {})

        async def one(request: ArticleRequest) -> Any:
            page = await fetcher.page(request)
            result = (
                page
                if process is None or page is None
                else await _processed(workers, process, page)
            )
            if on_result is not None and result is not None:
                on_result(result)
            return result

        tasks = [asyncio.ensure_future(one(r)) for r in requests]
        try:
            if tasks:
                late = await _until_done(tasks, within, stop)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            return [None if task.cancelled() else task.result() for task in tasks]
        finally:
            for task in tasks:
                task.cancel()


STOP_CHECK_SECONDS = 0.2  # how often a batch of pages looks at its stop event


async def _until_done(
    tasks: Sequence[asyncio.Future], within: float | None, stop: threading.Event | None
) -> set[asyncio.Future]:
    """Wait for `tasks` until `within` seconds have passed or `stop` is set; the tasks not
    done then."""
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    pending = set(tasks)
    while pending and not (stop is not None and stop.is_set()):
        timeout = None if stop is None else STOP_CHECK_SECONDS
        if deadline is not None:
            left = deadline - loop.time()
            if left <= 0:
                break
            timeout = left if timeout is None else min(timeout, left)
        _done, pending = await asyncio.wait(pending, timeout=timeout)
    return pending


def fetch_articles_sync(
    requests: Sequence[ArticleRequest],
    *,
    options: PollOptions | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    process: Process | None = None,
    within: float | None = None,
    on_result: Callable[[Any], None] | None = None,
    stop: threading.Event | None = None,
    paused: SitePauses | None = None,
) -> list[Any]:
    return asyncio.run(
        fetch_articles(
            requests,
            options=options,
            transport=transport,
            process=process,
            within=within,
            on_result=on_result,
            stop=stop,
            paused=paused,
        )
    )


async def _processed(workers: Workers, process: Process, page: ArticlePage) -> Any:
    """``process`` of a page in the workers. A page whose processing raises (a crash,
    MemoryError, a worker killed: BrokenProcessPool) is that page's failure: it is handed to
    ``process`` again without its HTML, which makes the per-item failure record cheaply, on the
    loop."""
    try:
        return await workers.run(process, page)
    except Exception as failure:
        reason = f"extraction failed: {type(failure).__name__}: {failure}"[:300]
        return process(replace(page, html=None, error=reason))


class _Fetcher:
    def __init__(self, clients: Clients, options: PollOptions, paused: SitePauses) -> None:
        self.clients = clients
        self.options = options
        self.paused = paused  # site -> not before: kept from run to run by the caller
        self.slots = asyncio.Semaphore(options.max_connections)
        self.host_slots = HostSlots(options.max_per_host)
        self.guard = AddressGuard(options.resolver)
        self.robots: dict[tuple[str, bool], asyncio.Task[Protego | FetchError | None]] = {}
        self.resting: set[str] = set()  # sites that asked for a pause: left for another run

    async def page(self, request: ArticleRequest) -> ArticlePage | None:
        """The page, or a failed one; None for a page left for another run (its site asked
        for a pause, or its robots.txt could not be read now)."""
        failed = functools.partial(ArticlePage, request.item_id, request.url, None)
        if self._resting(_origin(request.url)):
            return None
        try:
            body, final_url = await self._get(request.url, request.allow_private, robots=True)
        except _LeftForLater:
            return None
        except FetchError as failure:
            return failed(error=str(failure), summary=request.summary)
        except Exception as bug:  # never raise for a page, even on our own mistakes
            message = f"unexpected error: {type(bug).__name__}: {bug}"[:300]
            return failed(error=message, summary=request.summary)
        return ArticlePage(
            request.item_id, request.url, body, final_url=final_url, summary=request.summary
        )

    async def _get(self, url: str, allow_private: bool, *, robots: bool) -> tuple[bytes, str]:
        """GET `url` (an HTML page, or robots.txt when robots=False), following redirects by
        hand so every hop is checked: its scheme, its address and (for pages) robots.txt."""

        deadline: list[float] = []  # the whole fetch's, from its first request on

        async def robots_allow(hop_url: str) -> None:
            if not await self._allowed(hop_url, allow_private):
                raise FetchError(f"robots.txt of {_origin(hop_url)} disallows {hop_url[:200]}")

        last, final_url, _ = await follow_redirects(
            url,
            max_redirects=self.options.max_redirects,
            guard=self.guard,
            allow_private=allow_private,
            request=lambda hop_url: self._request(hop_url, allow_private, deadline, robots=robots),
            before=robots_allow if robots else None,
        )
        if last.status in _PAUSE:  # Too Many Requests, Service Unavailable
            self._pause({_origin(url), _origin(final_url)}, last.headers.get("Retry-After"))
            if robots:
                raise _LeftForLater
        if last.status != 200 or last.body is None:
            raise FetchError(f"HTTP {last.status}", last.status)
        return last.body, final_url

    async def _request(
        self, url: str, allow_private: bool, deadline: list[float], *, robots: bool
    ) -> Hop:
        """One hop, within what is left of the fetch's `total_timeout` (which starts when its
        first hop holds its slots: waiting behind a busy host costs a page none of it)."""
        cap = self.options.max_body_bytes if robots else ROBOTS_MAX_BYTES
        client = self.clients.for_private(allow_private)
        accept = PAGE_ACCEPT if robots else "text/plain"
        async with self.host_slots.of(url), self.slots:
            if robots and self._resting(_origin(url)):  # it asked while this one waited
                raise _LeftForLater
            if not deadline:
                deadline.append(asyncio.get_running_loop().time() + self.options.total_timeout)
            with fetch_errors("page", self.options.total_timeout):
                async with asyncio.timeout_at(deadline[0]):
                    request = client.build_request("GET", url, headers={"Accept": accept})
                    response = await client.send(request, stream=True)
                    try:
                        body = None
                        if response.is_success and robots:
                            _check_html(response.headers)  # before its body: a video is long
                        if response.is_success:  # a longer robots.txt: its first 500 KiB
                            body = await read_capped(response, cap, truncate=not robots)
                        return Hop(
                            response.status_code, response.reason_phrase, response.headers, body
                        )
                    finally:
                        await response.aclose()

    def _resting(self, origin: str) -> bool:
        until = self.paused.get(origin)
        return origin in self.resting or (until is not None and until > _now())

    def _pause(self, origins: set[str], header: str | None) -> None:
        """Sites that answered 429 or 503: no more requests this run, nor before their
        Retry-After (else SITE_PAUSE) in later ones."""
        now = _now()
        until = retry_after(header, now) or now + SITE_PAUSE
        self.resting.update(origins)
        for origin in origins:
            self.paused[origin] = max(until, self.paused.get(origin, until))

    async def _allowed(self, url: str, allow_private: bool) -> bool:
        key = (_origin(url), allow_private)
        if key not in self.robots:
            self.robots[key] = asyncio.create_task(self._robots(key[0], allow_private))
        rules = await asyncio.shield(self.robots[key])
        if isinstance(rules, FetchError):
            raise rules  # our own guard refused the site: say so, not "robots.txt"
        if rules is None:
            raise _LeftForLater
        return rules.can_fetch(url, self.options.user_agent)

    async def _robots(self, origin: str, allow_private: bool) -> Protego | FetchError | None:
        """The site's rules, read as RFC 9309 says (wildcards, the longest match wins: Protego;
        the standard library's parser reads neither). 4xx means no rules (allow all); a server
        error, a 429 or an unreachable robots.txt means disallow all, for this run: None, and
        the site's pages are left for another run, not failed."""
        try:
            body, _ = await self._get(origin + "/robots.txt", allow_private, robots=False)
        except FetchError as failure:
            if failure.local:
                return failure
            status = failure.http_status
            if status is not None and 400 <= status < 500 and status not in _PAUSE:
                return Protego.parse("")
            self.resting.add(origin)
            return None
        lines = body.decode("utf-8", "replace").splitlines()
        if len(body) >= ROBOTS_MAX_BYTES and lines:
            lines.pop()  # cut off at the limit: the last line may be half a rule
        return Protego.parse("\n".join(lines))


_PAUSE = frozenset({429, 503})  # a site's "not now": its pages wait for another run
# How long a site that said "not now" without Retry-After is left alone: a cron's next runs,
# every few minutes, would each ask again at once.
SITE_PAUSE = timedelta(hours=1)

SitePauses = dict[str, datetime]  # scheme://host -> not before


def _now() -> datetime:
    return datetime.now(UTC)


class _LeftForLater(Exception):
    """A page not fetched this run, for its site's sake: its item stays untried."""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _check_html(headers: httpx.Headers) -> None:
    kind = (headers.get("Content-Type") or "text/html").split(";")[0].strip().lower()
    if kind not in HTML_TYPES:
        raise FetchError(f"not an HTML page ({kind[:60]})")
