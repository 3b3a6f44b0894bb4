"""poll_feeds against a real HTTP server on loopback: every behaviour scripted by an endpoint."""

from __future__ import annotations

import asyncio
import gzip
import io
import itertools
import os
import random
import socket
import threading
import time
import tracemalloc
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aggregator.poller
from aggregator import USER_AGENT
from aggregator.cli_report import describe, progress
from aggregator.models import FeedState, FetchOutcome
from aggregator.netguard import ResolveError, is_public
from aggregator.poller import PollOptions, poll, poll_feeds
from aggregator.schedule import NEVER
from tests.support import feedserver
from tests.support.feedserver import FeedServer, RecordedRequest, Reply

feed_server = feedserver.feed_server  # the fixture, under its own name

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FAST = PollOptions(
    connect_timeout=2,
    read_timeout=2,
    total_timeout=3,
    rng=random.Random(0),
    parse_processes=0,
    trust_env=False,
)
RSS_TYPE = {"Content-Type": "application/rss+xml"}


def rss(n: int = 2, *, ttl: int | None = None, title: str = "Feed") -> bytes:
    items = "".join(
        f"<item><title>Item {i}</title><link>/items/{i}</link><guid>g{i}</guid>"
        f"<description>&lt;p&gt;Text {i}&lt;/p&gt;</description></item>"
        for i in range(n)
    )
    ttl_element = f"<ttl>{ttl}</ttl>" if ttl else ""
    return f"<rss version='2.0'><channel><title>{title}</title>{ttl_element}{items}</channel></rss>".encode()


def feed(server: FeedServer, path: str, **fields: object) -> FeedState:
    url = server.url(path)
    return FeedState(url=url, fetch_url=url, **{"allow_private": True, **fields})  # type: ignore[arg-type]


def run(*states: FeedState, now: datetime = NOW, **kwargs: object) -> list[FetchOutcome]:
    kwargs.setdefault("options", FAST)
    return poll(states, now=now, **kwargs)  # type: ignore[arg-type]


def one(state: FeedState, **kwargs: object) -> FetchOutcome:
    return run(state, **kwargs)[0]


def stored(state: FeedState, outcome: FetchOutcome) -> FeedState:
    """What the store keeps from an outcome for the next poll."""
    if outcome.status == "skipped":
        return state
    return replace(
        state,
        fetch_url=outcome.fetch_url or state.fetch_url,
        etag=outcome.etag,
        last_modified=outcome.last_modified,
        next_due=outcome.next_due,
        consecutive_errors=outcome.consecutive_errors,
        gone=outcome.status == "gone",
        ttl_minutes=outcome.feed.ttl_minutes if outcome.feed else state.ttl_minutes,
    )


# ---------------------------------------------------------------- the basics


def test_ok_feed_is_parsed_and_request_headers_identify_us(feed_server: FeedServer) -> None:
    feed_server.route("/rss", body=rss(3), headers=RSS_TYPE)

    outcome = one(feed(feed_server, "/rss"))

    assert outcome.status == "ok"
    assert outcome.http_status == 200
    assert outcome.feed is not None
    assert [e.title for e in outcome.feed.entries] == ["Item 0", "Item 1", "Item 2"]
    assert outcome.feed.entries[0].link == feed_server.url("/items/0")
    assert outcome.consecutive_errors == 0
    assert outcome.checked_at == NOW
    (request,) = feed_server.requests
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("aggregator/") and "http" in USER_AGENT
    assert "application/rss+xml" in request.headers["Accept"]
    assert "gzip" in request.headers["Accept-Encoding"]
    assert request.headers["A-IM"] == "feed"
    assert "If-None-Match" not in request.headers


def test_a_flooding_feed_gives_its_newest_entries_up_to_max_items(feed_server: FeedServer) -> None:
    """One response of many entries is cut to the newest ``max_items`` (undated ones last),
    kept in the feed's order."""
    dated = "".join(
        f"<item><title>Item {i}</title><guid>g{i}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=30 - i))}</pubDate></item>"
        for i in range(30)
    )
    undated = "<item><title>Undated</title><guid>u</guid></item>"
    body = f"<rss version='2.0'><channel><title>F</title>{undated}{dated}</channel></rss>"
    feed_server.route("/flood", body=body.encode(), headers=RSS_TYPE)
    outcome = one(feed(feed_server, "/flood"), options=replace(FAST, max_items=4))
    assert outcome.feed is not None
    assert [e.title for e in outcome.feed.entries] == [f"Item {i}" for i in range(26, 30)]
    roomy = one(feed(feed_server, "/flood"), options=replace(FAST, max_items=31), force=True)
    assert roomy.feed is not None and len(roomy.feed.entries) == 31


def test_outcomes_come_back_in_order_and_each_is_reported_once(feed_server: FeedServer) -> None:
    feed_server.route("/slow", body=rss(), delay=0.3)
    feed_server.route("/fast", body=rss())
    seen: list[str] = []

    outcomes = run(
        feed(feed_server, "/slow"),
        feed(feed_server, "/fast"),
        feed(feed_server, "/missing"),
        on_result=lambda o: seen.append(o.url),
    )

    assert [o.url for o in outcomes] == [feed_server.url(p) for p in ("/slow", "/fast", "/missing")]
    assert sorted(seen) == sorted(o.url for o in outcomes)
    assert seen[-1] == feed_server.url("/slow")  # reported when finished, not in input order


def test_without_collecting_each_outcome_is_only_reported_and_then_let_go(
    feed_server: FeedServer,
) -> None:
    import gc

    feed_server.route("/a", body=rss(), delay=0.3)
    feed_server.route("/b", body=rss())
    reported: list[str] = []
    still_alive: list[int] = []

    def on_result(outcome: FetchOutcome) -> None:
        if reported:  # the poller must no longer hold the outcome reported before
            gc.collect()
            earlier = [o for o in gc.get_objects() if type(o) is FetchOutcome]
            still_alive.append(sum(1 for o in earlier if o.url == reported[0]))
        reported.append(outcome.url)

    outcomes = run(
        feed(feed_server, "/b"), feed(feed_server, "/a"), on_result=on_result, collect=False
    )

    assert outcomes == []
    assert reported == [feed_server.url("/b"), feed_server.url("/a")]
    assert still_alive == [0]


def test_a_failing_on_result_stops_the_poll_and_sees_no_more_outcomes(
    feed_server: FeedServer,
) -> None:
    for n in range(5):
        feed_server.route(f"/f{n}", body=rss())
    calls: list[str] = []

    def on_result(outcome: FetchOutcome) -> None:
        calls.append(outcome.url)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run(*[feed(feed_server, f"/f{n}") for n in range(5)], on_result=on_result)
    assert len(calls) == 1


def test_async_api_and_empty_input() -> None:
    assert asyncio.run(poll_feeds([], now=NOW, options=FAST)) == []


# ---------------------------------------------------------------- conditional GET


def test_conditional_get_sends_stored_validators_and_a_304_is_not_parsed(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    etag, modified = 'W/"v1-abc"', "Sat, 28 Nov 2026 10:00:00 GMT"

    def handler(request: RecordedRequest) -> Reply:
        if request.headers.get("If-None-Match") == etag:
            return Reply(304, headers={"Cache-Control": "max-age=600"})
        return Reply(200, body=rss(), headers={"ETag": etag, "Last-Modified": modified})

    feed_server.route("/rss", handler=handler)
    state = feed(feed_server, "/rss")
    first = one(state)
    assert (first.status, first.etag, first.last_modified) == ("ok", etag, modified)

    parsed: list[bytes] = []
    real_parse = aggregator.poller.parse_feed
    monkeypatch.setattr(
        aggregator.poller,
        "parse_feed",
        lambda body, **kw: parsed.append(body) or real_parse(body, **kw),
    )
    second = one(stored(state, first), now=NOW + timedelta(hours=1))

    sent = feed_server.requests[-1].headers
    assert sent["If-None-Match"] == etag  # exactly as stored, weak prefix and quotes included
    assert sent["If-Modified-Since"] == modified
    assert second.status == "not_modified"
    assert second.http_status == 304
    assert second.feed is None
    assert parsed == []
    assert (second.etag, second.last_modified) == (etag, modified)  # kept for the next poll
    assert second.next_due == NOW + timedelta(hours=1, minutes=9)  # max-age 600 less 10 %


def test_a_response_a_cache_held_is_fresh_for_what_is_left_of_its_max_age(
    feed_server: FeedServer,
) -> None:
    headers = {**RSS_TYPE, "ETag": '"v"', "Cache-Control": "max-age=7200", "Age": "3600"}
    feed_server.route("/rss", body=rss(), headers=headers)
    outcome = one(feed(feed_server, "/rss"))
    assert outcome.next_due == NOW + timedelta(minutes=55)  # the hour left, less the slack


def test_validators_past_ascii_go_back_as_the_servers_bytes(feed_server: FeedServer) -> None:
    """An ETag with a UTF-8 "é" (RFC 9110 allows such bytes) and a French server's date: each
    poll after the first sent them back byte for byte, not an error on every poll for good."""
    etag_bytes, modified_bytes = '"café-1"'.encode(), "lun., 01 déc. 2025 10:00:00 GMT".encode()
    # the test server writes header values as Latin-1: one character per byte
    etag, modified = etag_bytes.decode("latin-1"), modified_bytes.decode("latin-1")

    def handler(request: RecordedRequest) -> Reply:
        if request.headers.get("If-None-Match") == etag:
            return Reply(304)
        return Reply(200, body=rss(), headers={"ETag": etag, "Last-Modified": modified})

    feed_server.route("/rss", handler=handler)
    state = feed(feed_server, "/rss")
    first = one(state)
    assert first.status == "ok"
    for hour in (1, 2):
        again = one(stored(state, first), now=NOW + timedelta(hours=hour), force=True)
        assert again.status == "not_modified", again.error
        sent = feed_server.requests[-1].headers
        assert sent["If-None-Match"].encode("latin-1") == etag_bytes
        assert sent["If-Modified-Since"].encode("latin-1") == modified_bytes
    # a validator an older version stored as text past Latin-1 is left out, not an error
    old = replace(stored(state, first), etag='"日本"', last_modified=None)
    unconditional = one(old, now=NOW + timedelta(hours=3), force=True)
    assert unconditional.status == "ok" and unconditional.etag == etag
    assert "If-None-Match" not in feed_server.requests[-1].headers


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("value", "retry_at"),
    [
        ("100000000000000", NOW + timedelta(days=7)),
        ("\u00b2", None),
        ("99999999999999999999", NOW + timedelta(days=7)),
    ],
)
def test_an_absurd_retry_after_is_capped_not_a_crash(
    feed_server: FeedServer, value: str, retry_at: datetime | None
) -> None:
    feed_server.route("/busy", status=429, headers={"Retry-After": value})
    outcome = one(feed(feed_server, "/busy"))
    assert (outcome.status, outcome.http_status, outcome.retry_at) == ("error", 429, retry_at)
    assert (outcome.error or "").startswith("HTTP 429")


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured_until_due_and_force_overrides(
    feed_server: FeedServer, status: int, form: str
) -> None:
    value = "7200" if form == "seconds" else format_datetime(NOW + timedelta(hours=2), usegmt=True)
    feed_server.route("/busy", status=status, headers={"Retry-After": value})
    state = feed(feed_server, "/busy")

    first = one(state)
    assert first.status == "error"
    assert first.http_status == status
    assert first.next_due == NOW + timedelta(hours=2)
    assert "Retry-After: not before" in (first.error or "")

    later = one(stored(state, first), now=NOW + timedelta(minutes=90))
    assert later.status == "skipped"
    assert len(feed_server.requests) == 1  # not asked again before the server allowed it

    forced = one(stored(state, first), now=NOW + timedelta(minutes=90), force=True)
    assert forced.status == "error"
    assert len(feed_server.requests) == 2

    due = one(stored(state, first), now=NOW + timedelta(hours=2))
    assert due.status == "error"
    assert len(feed_server.requests) == 3


@pytest.mark.parametrize(
    ("headers", "ttl", "interval"),
    [
        ({"Cache-Control": "public, max-age=1800"}, None, timedelta(minutes=27)),
        (
            {
                "Expires": format_datetime(NOW + timedelta(hours=2), usegmt=True),
                "Date": format_datetime(NOW, usegmt=True),
            },
            None,
            timedelta(hours=1, minutes=55),
        ),
        ({}, 90, timedelta(minutes=85)),  # RSS <ttl>
        ({"Cache-Control": "max-age=60"}, 120, timedelta(minutes=115)),  # the longest hint wins
        ({}, 60 * 24 * 7, timedelta(hours=23, minutes=55)),  # capped at a day
        ({}, 10**13, timedelta(hours=23, minutes=55)),  # overflowed timedelta: an error
        ({}, None, timedelta(0)),  # no hint: due at the next run
    ],
)
def test_freshness_hints_schedule_the_next_poll(
    feed_server: FeedServer, headers: dict[str, str], ttl: int | None, interval: timedelta
) -> None:
    feed_server.route("/rss", body=rss(ttl=ttl), headers=headers)
    state = feed(feed_server, "/rss")

    outcome = one(state)

    assert outcome.next_due == NOW + interval
    if interval:
        assert one(stored(state, outcome), now=NOW + interval / 2).status == "skipped"
        assert len(feed_server.requests) == 1


def test_a_304_is_scheduled_with_the_feeds_last_ttl(feed_server: FeedServer) -> None:
    """A 304 has no body to read <ttl> from: the one of the last 200 still holds."""

    def daily(request: RecordedRequest) -> Reply:
        if request.headers.get("If-None-Match") == '"e"':
            return Reply(304, headers={"ETag": '"e"'})
        return Reply(200, body=rss(ttl=1440), headers={"ETag": '"e"', **RSS_TYPE})

    feed_server.route("/rss", handler=daily)
    state = feed(feed_server, "/rss")
    options = replace(FAST, min_interval=timedelta(minutes=60))
    now = NOW
    for status in ("ok", "not_modified", "not_modified"):
        outcome = one(state, now=now, options=options)
        assert (outcome.status, outcome.due_reason) == (status, "ttl")
        assert outcome.next_due == now + timedelta(hours=23, minutes=55)
        state, now = stored(state, outcome), outcome.next_due


def test_errors_back_off_exponentially_with_injected_jitter(feed_server: FeedServer) -> None:
    feed_server.route("/broken", status=500, body=b"oops")
    state = feed(feed_server, "/broken")
    delays = []
    now = NOW
    for _ in range(6):
        outcome = one(state, now=now, force=True)
        state = stored(state, outcome)
        delays.append(outcome.next_due - now)
        now = outcome.next_due

    assert state.consecutive_errors == 6
    for n, delay in enumerate(delays, start=1):
        nominal = timedelta(minutes=30) * 2 ** (n - 1)
        assert nominal * 0.75 <= delay <= nominal
    options = replace(FAST, rng=random.Random(42))
    again = [
        one(feed(feed_server, "/broken"), options=replace(options, rng=random.Random(42)))
        for _ in range(2)
    ]
    assert again[0].next_due == again[1].next_due  # same seed, same jitter


def test_success_resets_the_error_count(feed_server: FeedServer) -> None:
    feed_server.route("/rss", body=rss())
    outcome = one(feed(feed_server, "/rss", consecutive_errors=4))
    assert (outcome.status, outcome.consecutive_errors) == ("ok", 0)


def test_not_yet_due_is_skipped_without_a_request(feed_server: FeedServer) -> None:
    feed_server.route("/rss", body=rss())
    state = feed(feed_server, "/rss", next_due=NOW + timedelta(minutes=5), etag='"e"')

    skipped = one(state)

    assert skipped.status == "skipped"
    assert skipped.next_due == state.next_due
    assert skipped.etag == '"e"'
    assert feed_server.requests == []
    assert one(state, force=True).status == "ok"


# ---------------------------------------------------------------- redirects and 410


def test_permanent_redirect_chain_moves_the_feed(feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b", 301)
    feed_server.redirect("/b", feed_server.url("/c"), 308)  # absolute Location too
    feed_server.route("/c", body=rss())
    state = feed(feed_server, "/a")

    first = one(state)
    assert first.status == "ok"
    assert first.fetch_url == feed_server.url("/c")
    assert first.url == feed_server.url("/a")  # the identity stays the configured URL
    assert "moved permanently" in describe(first)

    feed_server.clear()
    second = one(stored(state, first))
    assert second.status == "ok"
    assert [r.path for r in feed_server.requests] == ["/c"]


def test_temporary_redirect_keeps_the_old_url(feed_server: FeedServer) -> None:
    feed_server.redirect("/t", "/c", 302)
    feed_server.redirect("/t7", "/c", 307)
    feed_server.route("/c", body=rss())

    for path in ("/t", "/t7"):
        outcome = one(feed(feed_server, path))
        assert (outcome.status, outcome.fetch_url) == ("ok", feed_server.url(path))


def test_permanence_ends_at_the_first_temporary_hop(feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b", 301)
    feed_server.redirect("/b", "/c", 302)
    feed_server.redirect("/c", "/d", 301)
    feed_server.route("/d", body=rss())
    assert one(feed(feed_server, "/a")).fetch_url == feed_server.url("/b")


def test_permanent_redirect_to_a_broken_url_does_not_move_the_feed(
    feed_server: FeedServer,
) -> None:
    feed_server.redirect("/old", "/new", 301)
    feed_server.route("/new", status=500)
    outcome = one(feed(feed_server, "/old"))
    assert outcome.status == "error"
    assert outcome.fetch_url == feed_server.url("/old")


def test_redirect_loop_is_an_error(feed_server: FeedServer) -> None:
    feed_server.redirect("/x", "/y", 302)
    feed_server.redirect("/y", "/x", 301)
    outcome = one(feed(feed_server, "/x"))
    assert outcome.status == "error"
    assert "redirect loop" in (outcome.error or "")
    assert len(feed_server.requests) == 2


@pytest.mark.parametrize(("hops", "ok"), [(5, True), (6, False)])
def test_at_most_five_redirects(feed_server: FeedServer, hops: int, ok: bool) -> None:
    for n in range(hops):
        feed_server.redirect(f"/r{n}", f"/r{n + 1}", 302)
    feed_server.route(f"/r{hops}", body=rss())
    outcome = one(feed(feed_server, "/r0"))
    assert (outcome.status == "ok") is ok
    if not ok:
        assert "too many redirects" in (outcome.error or "")
        assert len(feed_server.requests) == 6


@pytest.mark.parametrize("location", [None, "ftp://files.example/feed", "javascript:x"])
def test_bad_redirects_are_errors(feed_server: FeedServer, location: str | None) -> None:
    feed_server.route("/r", status=301, headers={"Location": location} if location else {})
    outcome = one(feed(feed_server, "/r"))
    assert outcome.status == "error"
    assert "redirect" in (outcome.error or "") or "invalid URL" in (outcome.error or "")


def test_410_makes_the_feed_gone_for_good(feed_server: FeedServer) -> None:
    feed_server.route("/gone", status=410)
    state = feed(feed_server, "/gone")

    outcome = one(state)
    assert outcome.status == "gone"
    assert outcome.http_status == 410

    later = [
        one(stored(state, outcome), now=NOW + timedelta(days=30), force=force)
        for force in (False, True)
    ]
    # Not "gone" again, which counted as a failure on every run and rewrote the stored record
    # as if the feed had been checked: skipped, with nothing to store.
    assert [(o.status, o.next_due) for o in later] == [("skipped", NEVER)] * 2
    assert all("gone (HTTP 410)" in describe(o) for o in later)
    assert len(feed_server.requests) == 1


@pytest.mark.parametrize("status", [302, 307])
def test_a_410_behind_a_temporary_redirect_is_an_error_not_gone(
    feed_server: FeedServer, status: int
) -> None:
    """A temporary redirect to an address that answers 410 says nothing lasting about the
    feed's own URL: it retired the feed for good (a later fix of the redirect never seen)."""
    feed_server.route("/feed", status=status, headers={"Location": "/mirror-old"})
    feed_server.route("/mirror-old", status=410)
    outcome = one(feed(feed_server, "/feed"))
    assert outcome.status == "error" and outcome.http_status == 410
    assert "where a temporary redirect led" in (outcome.error or "")
    assert outcome.next_due != NEVER
    feed_server.route("/permanent", status=301, headers={"Location": "/mirror-old"})
    assert one(feed(feed_server, "/permanent")).status == "gone"  # moved, then gone: gone


# ---------------------------------------------------------------- hostile and slow servers


def test_trickling_body_is_cut_by_the_total_time_cap(feed_server: FeedServer) -> None:
    # each chunk comes well within the read timeout, but the whole would take 10 s
    feed_server.route("/trickle", body=rss(20), chunk_delay=0.05, chunk_size=20)
    options = replace(FAST, read_timeout=1, total_timeout=0.5)

    started = time.monotonic()
    outcome = one(feed(feed_server, "/trickle"), options=options)

    assert time.monotonic() - started < 2
    assert outcome.status == "error"
    assert "timed out" in (outcome.error or "")


def test_server_that_never_answers_hits_the_read_timeout(feed_server: FeedServer) -> None:
    feed_server.route("/silent", body=rss(), delay=5)
    options = replace(FAST, read_timeout=0.3, total_timeout=3)
    started = time.monotonic()
    outcome = one(feed(feed_server, "/silent"), options=options)
    assert time.monotonic() - started < 2
    assert "timed out" in (outcome.error or "")


def test_body_over_the_cap_is_refused(feed_server: FeedServer) -> None:
    big = rss(5) + b" " * 300_000
    feed_server.route("/declared", body=big)  # Content-Length tells in advance
    feed_server.route("/streamed", body=(b"<rss>" + b" " * 65_536 for _ in range(100)))
    options = replace(FAST, max_body_bytes=200_000)

    declared, streamed = run(
        feed(feed_server, "/declared"), feed(feed_server, "/streamed"), options=options
    )

    assert declared.status == streamed.status == "error"
    assert "too large" in (declared.error or "")
    assert "too large" in (streamed.error or "")


def gzip_bomb(decompressed: int) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)  # level 1: quick
    zeros = bytes(1 << 20)
    parts = [compressor.compress(zeros) for _ in range(decompressed >> 20)]
    return b"".join(parts) + compressor.flush()


@pytest.mark.parametrize(
    "bomb",
    [
        pytest.param(lambda: gzip_bomb(128 << 20), id="one member"),  # 128 MB in ~600 kB
        # each member under the cap: decoding them all must not decode past it
        pytest.param(lambda: gzip.compress(bytes(256 << 10), 1) * 512, id="512 members"),
    ],
)
def test_gzip_bomb_stops_at_the_cap_with_bounded_memory(feed_server: FeedServer, bomb) -> None:
    bomb = bomb()
    feed_server.route("/bomb", body=bomb, headers={"Content-Encoding": "gzip", **RSS_TYPE})
    cap = 1 << 20
    options = replace(FAST, max_body_bytes=cap)

    tracemalloc.start()
    try:
        outcome = one(feed(feed_server, "/bomb"), options=options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert outcome.status == "error"
    assert "too large" in (outcome.error or "")
    assert peak < 4 * cap + len(bomb)


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
        ("identity", lambda data: data),
    ],
)
def test_compressed_bodies_are_decoded(feed_server: FeedServer, coding: str, compress) -> None:
    feed_server.route("/z", body=compress(rss(4)), headers={"Content-Encoding": coding})
    outcome = one(feed(feed_server, "/z"))
    assert outcome.status == "ok"
    assert outcome.feed is not None and len(outcome.feed.entries) == 4


@pytest.mark.parametrize(
    "padding",
    [pytest.param(b"", id="members only"), pytest.param(bytes(8), id="zeros after the last")],
)
def test_a_gzip_body_of_several_members_is_decoded_whole(
    feed_server: FeedServer, padding: bytes
) -> None:
    """RFC 1952 2.2: members one after another make one body (gzip -d, Python's gzip, Go's
    gzip.Reader read them all); only the first was read, the other items silently dropped."""
    document = rss(4)
    cuts = [0, document.index(b"Item 1") + 2, document.index(b"Item 3"), len(document)]
    body = b"".join(gzip.compress(document[a:b]) for a, b in itertools.pairwise(cuts)) + padding
    feed_server.route(  # in small pieces: a member's end and the next one's magic fall apart
        "/z",
        body=body,
        headers={"Content-Encoding": "gzip", **RSS_TYPE},
        chunk_delay=0.0,
        chunk_size=7,
    )
    outcome = one(feed(feed_server, "/z"))
    assert outcome.status == "ok", outcome.error
    assert outcome.feed is not None
    assert [e.title for e in outcome.feed.entries] == ["Item 0", "Item 1", "Item 2", "Item 3"]


def cut_short(data: bytes, wbits: int) -> bytes:
    """A compressed stream stopped mid-way, as a dropped connection leaves it: the blocks so
    far, without the final block or the trailer (a read of it is incomplete, not corrupt)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", lambda data: cut_short(data, 31)),
        ("gzip", lambda data: gzip.compress(data)[:-8]),  # no CRC and length trailer
        ("deflate", lambda data: cut_short(data, 15)),
        ("deflate", lambda data: cut_short(data, -15)),  # raw deflate
    ],
)
def test_a_compressed_body_cut_short_is_an_error_not_a_shorter_feed(
    feed_server: FeedServer, coding: str, compress
) -> None:
    """Accepted, the cut entry was stored with half its title, and kept (its guid is known)."""
    document = rss(4)
    body = compress(document[: document.index(b"Item 3") + 4])
    feed_server.route("/z", body=body, headers={"Content-Encoding": coding, **RSS_TYPE})
    outcome = one(feed(feed_server, "/z"))
    assert (outcome.status, outcome.feed) == ("error", None)
    assert "compressed body cut short" in (outcome.error or "")


@pytest.mark.parametrize(
    ("coding", "body"), [("gzip", b"not gzip at all"), ("br", b"\x00\x01"), ("gzip, br", b"")]
)
def test_corrupt_or_unknown_encodings_are_errors(
    feed_server: FeedServer, coding: str, body: bytes
) -> None:
    feed_server.route("/z", body=body, headers={"Content-Encoding": coding})
    outcome = one(feed(feed_server, "/z"))
    assert outcome.status == "error"


def test_wrong_charset_header(feed_server: FeedServer) -> None:
    body = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Zürich Zeitung</title><item><title>Grüße</title></item></channel></rss>'.encode()
    feed_server.route("/rss", body=body, headers={"Content-Type": "text/xml; charset=iso-8859-1"})
    outcome = one(feed(feed_server, "/rss"))
    assert outcome.feed is not None
    assert outcome.feed.title == "Zürich Zeitung"
    assert outcome.feed.entries[0].title == "Grüße"


def test_html_page_reports_the_feed_it_links_to(feed_server: FeedServer) -> None:
    page = b'<html><head><link rel="alternate" type="application/atom+xml" href="/atom.xml"></head><body>x</body></html>'
    feed_server.route("/", body=page, headers={"Content-Type": "text/html; charset=utf-8"})
    outcome = one(feed(feed_server, "/"))
    assert outcome.status == "error"
    assert outcome.http_status == 200
    assert outcome.discovered_feed_url == feed_server.url("/atom.xml")


@pytest.mark.parametrize(
    ("route", "error"),
    [
        (dict(status=404), "HTTP 404"),
        (dict(status=500, body=b"boom"), "HTTP 500"),
        (dict(body=b"this is not a feed"), "neither an XML feed (RSS, Atom) nor a JSON Feed"),
        (dict(body=b"<rss><channel><title>x</tit"), "cut off in transfer"),
        (dict(body=b'{"items": []}'), "JSON, but not a JSON Feed"),
        (dict(body=b""), "empty body"),
    ],
)
def test_http_and_content_failures_are_recorded(
    feed_server: FeedServer, route: dict, error: str
) -> None:
    feed_server.route("/f", **route)
    outcome = one(feed(feed_server, "/f", consecutive_errors=2))
    assert outcome.status == "error"
    assert error in (outcome.error or "")
    assert outcome.consecutive_errors == 3
    assert outcome.next_due > NOW


def test_broken_connection_is_recorded(feed_server: FeedServer) -> None:
    feed_server.route("/drop", handler=lambda _request: Reply(abort=True))
    outcome = one(feed(feed_server, "/drop"))
    assert outcome.status == "error"
    assert outcome.error


def test_connection_refused_is_recorded() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/rss"
    outcome = one(FeedState(url=url, fetch_url=url, allow_private=True))
    assert outcome.status == "error"
    assert "connection failed" in (outcome.error or "")


# ---------------------------------------------------------------- concurrency


def test_at_most_two_requests_per_host_at_once(feed_server: FeedServer) -> None:
    feed_server.route("/slow", body=rss(), delay=0.15)
    urls = [
        feed_server.url(f"/slow?n={n}", host=host)
        for n in range(6)
        for host in ("127.0.0.1", "localhost")
    ]
    states = [FeedState(url=url, fetch_url=url, allow_private=True) for url in urls]

    started = time.monotonic()
    outcomes = run(*states)

    assert all(o.status == "ok" for o in outcomes), [o.error for o in outcomes]
    assert feed_server.max_in_flight("127.0.0.1") == 2
    assert feed_server.max_in_flight("localhost") == 2
    assert time.monotonic() - started < 6 * 0.15 + 1  # both hosts were served in parallel


def test_overall_limit(feed_server: FeedServer) -> None:
    feed_server.route("/slow", body=rss(), delay=0.1)
    states = [feed(feed_server, f"/slow?n={n}") for n in range(9)]
    options = replace(FAST, max_connections=3, max_per_host=10)
    assert all(o.status == "ok" for o in run(*states, options=options))
    assert feed_server.max_in_flight() == 3


def test_a_busy_host_does_not_hold_up_other_hosts(feed_server: FeedServer) -> None:
    feed_server.route("/slow", body=rss(), delay=0.4)
    feed_server.route("/quick", body=rss())
    busy = [feed(feed_server, f"/slow?n={n}") for n in range(6)]
    other_url = feed_server.url("/quick", host="localhost")
    other = FeedState(url=other_url, fetch_url=other_url, allow_private=True)
    options = replace(FAST, max_connections=3, max_per_host=2)

    run(*busy, other, options=options)

    started = min(r.time for r in feed_server.requests)
    (quick,) = feed_server.requests_for("/quick")
    assert quick.time - started < 0.3  # not queued behind the slow host's feeds


def moved(request: RecordedRequest) -> Reply:
    """/old?n=N answers 301 to /feed?n=N (on the same host, as http:// -> https:// does)."""
    return Reply(301, headers={"Location": request.path.replace("/old", "/feed")})


@pytest.mark.parametrize("entry", ["poll_feeds", "fetch_session"])
def test_feeds_redirecting_on_a_busy_host_cannot_deadlock(
    feed_server: FeedServer, entry: str
) -> None:
    """More feeds than overall and per-host slots together, all redirected: a feed holding an
    overall slot while it waited for its next hop's host slot, and the feeds holding that
    host's slots waiting for an overall slot, hung the poll past every timeout."""
    feed_server.route("/old", handler=moved)
    feed_server.route("/feed", body=rss(), headers=RSS_TYPE, delay=0.02)
    states = [feed(feed_server, f"/old?n={n}") for n in range(12)]
    options = replace(FAST, max_connections=4, max_per_host=2)

    async def poll_all() -> list[FetchOutcome]:
        if entry == "poll_feeds":
            return await poll_feeds(states, now=NOW, options=options)
        async with aggregator.poller.fetch_session(options) as session:
            return await asyncio.gather(*(session.fetch(s, NOW) for s in states))

    async def within_bound() -> list[FetchOutcome]:
        return await asyncio.wait_for(poll_all(), timeout=10)  # a hang fails, never hangs

    outcomes = asyncio.run(within_bound())

    assert [o.status for o in outcomes] == ["ok"] * 12, [o.error for o in outcomes]
    assert len(feed_server.requests_for("/feed")) == 12
    assert feed_server.max_in_flight("127.0.0.1") <= 2  # the per-host limit still holds


def test_a_redirects_next_hop_goes_before_the_hosts_feeds_still_queued(
    feed_server: FeedServer,
) -> None:
    """The deadline runs from the first request, so the next hop must not wait for every feed
    of the host still queued (an http:// feed moved to https:// on a host with many feeds)."""
    feed_server.route("/old", handler=moved)
    feed_server.route("/feed", body=rss(), headers=RSS_TYPE)
    feed_server.route("/slow", body=rss(), delay=0.25)
    redirected = feed(feed_server, "/old?n=0")
    queued = [feed(feed_server, f"/slow?n={n}") for n in range(6)]
    # the hop waits for at most the one slow request under way (0.25 s): a wide margin on a
    # busy host, where behind all 6 (1.5 s) it would time out
    options = replace(FAST, max_per_host=1, total_timeout=1.0)

    first, *others = run(redirected, *queued, options=options)

    assert first.status == "ok", first.error
    assert all(o.status == "ok" for o in others)
    assert feed_server.max_in_flight("127.0.0.1") == 1


def test_a_host_slot_goes_to_later_hops_first_and_never_to_a_cancelled_waiter() -> None:
    taken: list[str] = []

    async def take(slot: aggregator.poller.HostSlot, name: str, *, first: bool) -> None:
        async with slot.held(first=first):
            taken.append(name)

    async def scenario() -> tuple[int, int]:
        slot = aggregator.poller.HostSlot(1)
        await slot.acquire(first=True)
        queued = [
            asyncio.create_task(take(slot, name, first=first))
            for name, first in [("first", True), ("cancelled", False), ("later hop", False)]
        ]
        await asyncio.sleep(0)  # all three wait
        queued[1].cancel()
        slot.release()
        await asyncio.gather(*queued, return_exceptions=True)
        after_a_cancelled_wait = slot.free

        await slot.acquire(first=True)
        granted, other = (asyncio.create_task(take(slot, n, first=True)) for n in ("x", "y"))
        await asyncio.sleep(0)
        slot.release()  # handed to `granted`...
        granted.cancel()  # ...cancelled before it could run: the slot goes on to `other`
        await asyncio.gather(granted, other, return_exceptions=True)
        return after_a_cancelled_wait, slot.free

    free = asyncio.run(asyncio.wait_for(scenario(), timeout=5))

    assert taken == ["later hop", "first", "y"]
    assert free == (1, 1)


def test_the_deadline_covers_the_wait_between_hops() -> None:
    """After the first request every wait counts: here the next hop's address check, which
    took as long as the resolver did (the first hop's own check is queueing, not counted)."""
    lookups: list[str] = []

    async def slow_for_the_new_host(host: str, port: int) -> list[str]:
        lookups.append(host)
        if host == "moved.example":
            await asyncio.sleep(5)  # cancelled when the poll's event loop ends
        return ["93.184.216.34"]

    def site(request: httpx.Request) -> httpx.Response:
        if request.url.host == "news.example":
            return httpx.Response(301, headers={"Location": "http://moved.example/rss"})
        return httpx.Response(200, content=rss())

    options = replace(FAST, total_timeout=0.5, resolver=slow_for_the_new_host)
    url = "http://news.example/rss"
    started = time.monotonic()

    outcome = one(
        FeedState(url=url, fetch_url=url), options=options, transport=httpx.MockTransport(site)
    )

    assert outcome.status == "error"
    assert "timed out" in (outcome.error or "")
    assert time.monotonic() - started < 2
    assert lookups == ["news.example", "moved.example"]


def test_names_are_resolved_once_per_poll() -> None:
    lookups: list[str] = []

    async def counting(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["93.184.216.34"]

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=rss()))
    urls = [f"http://news.example/feed/{n}" for n in range(5)] + ["http://other.example/"]
    states = [FeedState(url=u, fetch_url=u) for u in urls]
    outcomes = run(*states, options=replace(FAST, resolver=counting), transport=transport)
    assert all(o.status == "ok" for o in outcomes)
    assert sorted(lookups) == ["news.example", "other.example"]


def test_process_pool_parsing(feed_server: FeedServer) -> None:
    feed_server.route("/rss", body=rss(3))
    feed_server.route(
        "/html",
        body=b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss"></head></html>',
    )
    outcomes = run(
        feed(feed_server, "/rss"),
        feed(feed_server, "/html"),
        options=replace(FAST, parse_processes=2),
    )
    assert outcomes[0].feed is not None and len(outcomes[0].feed.entries) == 3
    assert outcomes[1].discovered_feed_url == feed_server.url("/rss")


def test_a_parser_worker_that_dies_fails_its_feed_and_the_poll_goes_on(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed while parsing (out of memory, say) breaks the process pool: that feed
    fails, and the feeds parsed after it are parsed by a new pool, not failed one by one."""
    real_parse = aggregator.poller.parse_feed

    def parse_or_die(body: bytes, **kwargs: object):  # inherited by the forked workers
        if b"KILL-WORKER" in body:
            os._exit(3)
        return real_parse(body, **kwargs)

    monkeypatch.setattr(aggregator.poller, "parse_feed", parse_or_die)
    feed_server.route("/kill", body=rss(title="KILL-WORKER"), headers=RSS_TYPE)
    late = Reply(200, body=rss(2), headers=RSS_TYPE, delay=1.5)
    feed_server.route("/late1", handler=lambda _request: late)
    feed_server.route("/late2", handler=lambda _request: late)
    options = replace(FAST, parse_processes=2, max_per_host=4, total_timeout=10, read_timeout=5)
    outcomes = run(*(feed(feed_server, p) for p in ("/kill", "/late1", "/late2")), options=options)
    assert outcomes[0].status == "error"
    assert (outcomes[0].error or "").startswith("parser crashed: BrokenProcessPool")
    assert [o.status for o in outcomes[1:]] == ["ok", "ok"]  # parsed by the replacement pool


def test_an_error_quoting_what_a_server_sent_is_stored_short() -> None:
    """A status line of 10,000 bytes: httpx quotes all of it in its error, the outcome keeps
    the start (every poll's record holds it, and `feeds status` shows it)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"XTTP/1.1 " + b"x" * 10_000 + b"\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/feed"
    with listener:
        outcome = one(FeedState(url=url, fetch_url=url, allow_private=True))
    thread.join(timeout=5)
    assert outcome.status == "error" and "invalid HTTP response" in (outcome.error or "")
    assert len(outcome.error or "") <= aggregator.poller.MAX_ERROR_TEXT


# ---------------------------------------------------------------- private addresses


def test_private_address_is_refused_unless_allowed(feed_server: FeedServer) -> None:
    feed_server.route("/rss", body=rss())

    refused = one(feed(feed_server, "/rss", allow_private=False))

    assert refused.status == "error"
    assert "allow_private: true" in (refused.error or "")
    assert feed_server.requests == []
    assert one(feed(feed_server, "/rss", allow_private=True)).status == "ok"


def test_localhost_name_is_resolved_and_refused(feed_server: FeedServer) -> None:
    url = feed_server.url("/rss", host="localhost")
    outcome = one(FeedState(url=url, fetch_url=url))
    assert "allow_private: true" in (outcome.error or "")
    assert feed_server.requests == []


def fake_dns(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise ResolveError(f"cannot resolve {host}: unknown host")
        return table[host]

    return resolve


def test_every_resolved_address_is_checked() -> None:
    seen: list[str] = []
    transport = httpx.MockTransport(
        lambda request: seen.append(str(request.url)) or httpx.Response(200, content=rss())
    )
    dns = fake_dns(
        {
            "mixed.example": ["93.184.216.34", "10.1.2.3"],
            "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
        }
    )
    options = replace(FAST, resolver=dns)
    states = [
        FeedState(url=u, fetch_url=u)
        for u in (
            "http://mixed.example/rss",
            "http://public.example/rss",
            "http://nowhere.example/",
        )
    ]

    mixed, public, nowhere = run(*states, options=options, transport=transport)

    assert "10.1.2.3" in (mixed.error or "") and "allow_private: true" in (mixed.error or "")
    assert public.status == "ok"
    assert "cannot resolve" in (nowhere.error or "")
    assert seen == ["http://public.example/rss"]


def test_redirect_to_a_private_address_is_refused(feed_server: FeedServer) -> None:
    """A public feed must not bounce us into the LAN: each hop is checked again."""
    feed_server.route("/secret", body=rss())
    target = feed_server.url("/secret")

    def public_site(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": target})

    options = replace(FAST, resolver=fake_dns({"news.example": ["93.184.216.34"]}))
    outcome = one(
        FeedState(url="http://news.example/rss", fetch_url="http://news.example/rss"),
        options=options,
        transport=httpx.MockTransport(public_site),
    )
    assert outcome.status == "error"
    assert "allow_private: true" in (outcome.error or "")
    assert outcome.fetch_url == "http://news.example/rss"
    assert feed_server.requests == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("127.8.9.10", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address(address)) is public


# ---------------------------------------------------------------- progress


def test_progress_without_a_terminal_logs_one_line_per_feed(feed_server: FeedServer) -> None:
    feed_server.route("/rss", body=rss())
    log = io.StringIO()
    states = [feed(feed_server, "/rss"), feed(feed_server, "/missing")]
    with progress(len(states), file=log) as on_result:
        run(*states, on_result=on_result)
    lines = log.getvalue().splitlines()
    assert len(lines) == 2
    assert any(line.startswith("ok") and "2 entries" in line for line in lines)
    assert any(line.startswith("error") and "HTTP 404" in line for line in lines)


# ---------------------------------------------------------------- properties


def scripted(status: int, headers: dict[str, str], body: bytes) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(status, headers=headers, content=body)
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.sampled_from([200, 200, 200, 203, 226, 301, 302, 304, 400, 410, 429, 500, 503, 999]),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Content-Encoding",
                "Content-Type",
                "Location",
                "Retry-After",
                "ETag",
                "Cache-Control",
                "Expires",
            ]
        ),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
        max_size=4,
    ),
    body=st.binary(max_size=3_000) | st.sampled_from([rss(2), gzip.compress(rss(2))]),
)
def test_any_response_becomes_an_outcome(status: int, headers: dict[str, str], body: bytes) -> None:
    state = FeedState(
        url="http://feeds.example/rss", fetch_url="http://feeds.example/rss", allow_private=True
    )
    (outcome,) = poll([state], now=NOW, options=FAST, transport=scripted(status, headers, body))
    assert outcome.status in ("ok", "not_modified", "error", "gone")
    assert outcome.next_due >= NOW
    if outcome.status == "error":
        assert outcome.error


def test_random_bodies_from_a_real_server_are_recorded_errors() -> None:
    with FeedServer() as server:

        @settings(max_examples=100, deadline=None)
        @given(body=st.binary(max_size=2_000), gzipped=st.booleans())
        def check(body: bytes, gzipped: bool) -> None:
            headers = {"Content-Encoding": "gzip", **RSS_TYPE} if gzipped else RSS_TYPE
            server.route("/rss", body=body, headers=headers)
            (outcome,) = run(feed(server, "/rss"))
            assert outcome.status in ("ok", "error")
            assert outcome.status == "ok" or outcome.error

        check()


def test_progress_on_a_terminal_draws_a_bar(feed_server: FeedServer) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    feed_server.route("/rss", body=rss())
    screen = Terminal()
    with progress(3, file=screen, label="Polling") as on_result:
        run(*[feed(feed_server, f"/rss?n={n}") for n in range(3)], on_result=on_result)
    assert "Polling" in screen.getvalue()
    assert "100%" in screen.getvalue()


def test_progress_on_a_terminal_still_says_which_feed_moved(feed_server: FeedServer) -> None:
    """Without a terminal each feed's line says "moved permanently to ..."; on one the bar
    showed none of it (the README promises poll says so): such lines follow the bar."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    feed_server.route("/old", status=301, headers={"Location": "/new"})
    feed_server.route("/new", body=rss())
    feed_server.route("/rss", body=rss())
    screen = Terminal()
    with progress(2, file=screen, label="Polling") as on_result:
        run(feed(feed_server, "/old"), feed(feed_server, "/rss"), on_result=on_result)
    after_bar = screen.getvalue().rsplit("100%", 1)[1]
    assert f"(moved permanently to {feed_server.url('/new')})" in after_bar
    assert feed_server.url("/rss") not in after_bar  # nothing to say about a plain success


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("url", ["notaurl", "ftp://x.example/f", "http://", "http://[::1]:99999/"])
def test_invalid_urls_are_recorded_errors(url: str, allow_private: bool) -> None:
    outcome = one(FeedState(url=url, fetch_url=url, allow_private=allow_private))
    assert outcome.status == "error"
    assert (outcome.error or "").startswith("invalid URL")


def test_the_connection_pool_keeps_idle_connections_to_many_hosts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1,000 feeds on 50 hosts, 2 requests per host: up to 100 connections worth keeping for
    # the host's next feed, while at most max_connections requests are in flight.
    seen: list[httpx.Limits] = []
    real_client = httpx.AsyncClient

    def spy(*args: object, **kwargs: object) -> httpx.AsyncClient:
        seen.append(kwargs["limits"])  # type: ignore[arg-type]
        return real_client(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(aggregator.poller.httpx, "AsyncClient", spy)

    async def open_client() -> None:
        async with aggregator.poller._client(PollOptions(max_connections=32), None):
            pass

    asyncio.run(open_client())
    (limits,) = seen
    assert limits.max_keepalive_connections >= 100
    assert limits.max_connections >= limits.max_keepalive_connections + 32
