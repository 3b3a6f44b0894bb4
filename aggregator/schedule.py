"""When to poll a feed next: pure functions over header values, counts and clocks.

Servers tell us how often they want to be asked (Retry-After, Cache-Control max-age, Expires,
RSS <ttl>); we honour the longest of those hints, within limits, and back off exponentially
after errors. The poller feeds these functions; nothing here does IO.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from aggregator.text import plural

MAX_INTERVAL = timedelta(hours=24)  # no freshness hint or backoff keeps a feed away longer
MAX_RETRY_AFTER = timedelta(days=7)  # an explicit "come back later" is honoured up to this
BACKOFF_BASE = timedelta(minutes=30)  # first retry after an error: the next hourly run
NEVER = datetime(9999, 1, 1, tzinfo=UTC)  # next_due of a gone (410) feed

# Cron runs drift by seconds, so a feed fresh for exactly one hour would be "not due" at the
# next hourly run and wait two. Freshness hints are therefore shortened by a little.
EARLY_SLACK_FRACTION = 0.1
MAX_EARLY_SLACK = timedelta(minutes=5)

# Our own floors (poll.min_interval_minutes, poll.unconditional_interval_minutes) are shortened
# by a random factor in [FLOOR_JITTER, 1], so feeds added together drift apart instead of all
# coming due on the same run; the hourly-cron slack above still applies on top.
FLOOR_JITTER = 0.9
# No feed is polled sooner than this after a success (only `poll --force` does): jitter and
# slack shorten our floors, but never below it, and config.py refuses floors set lower
# (Miniflux, reader: 60 min; FreshRSS: 15-20 min; Rachel Kroll's feed reader score: hourly).
MIN_INTERVAL_FLOOR_MINUTES = 15
MIN_INTERVAL_FLOOR = timedelta(minutes=MIN_INTERVAL_FLOOR_MINUTES)
WAIT_FOR_CONFIG = MAX_INTERVAL  # a feed our own policy refused is looked at again after this

# Why a feed is not due (stored with next_due; `feeds status` explains it).
DueReason = str
CACHE = "cache"  # the server's Cache-Control max-age or Expires
TTL = "ttl"  # the feed's RSS <ttl>
MIN_INTERVAL = "min_interval"  # poll.min_interval_minutes (or the feed's own)
UNCONDITIONAL = "unconditional"  # poll.unconditional_interval_minutes: no ETag/Last-Modified
RETRY_AFTER = "retry_after"  # the server's Retry-After
BACKOFF = "backoff"  # exponential backoff after errors
CONFIG = "config"  # refused by our own policy: waiting for a change in feeds.yaml


@dataclass(frozen=True, slots=True)
class Schedule:
    next_due: datetime
    reason: DueReason | None  # None: nothing holds the feed back beyond the next run


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?([0-9]+)", re.IGNORECASE)
_SECONDS = re.compile(r"[0-9]+")  # ASCII digits: "²" is a digit to str.isdigit, not to int
# A no-cache that names fields (no-cache="Set-Cookie") restricts those fields only (RFC 9111
# 5.2.2.4): the response itself may be fresh for its max-age.
_NO_CACHE = re.compile(r"(?:^|[,\s])(no-cache|no-store)\b(?!\s*=)", re.IGNORECASE)


def is_due(next_due: datetime | None, now: datetime) -> bool:
    return next_due is None or next_due <= now


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date (RFC 9110: IMF-fixdate and the obsolete forms) as aware UTC, or None."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" and the obsolete forms: HTTP dates are GMT
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # "31 Dec 9999 23:59:59 -0100" is past the last datetime in UTC
        return datetime.max.replace(tzinfo=UTC) if parsed.year == datetime.max.year else None


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """The moment a Retry-After header (delay in seconds or an HTTP date) allows, capped."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        when = now + capped_seconds(value, MAX_RETRY_AFTER)
    else:
        when = parse_http_date(value)
        if when is None:
            return None
    return min(max(when, now), now + MAX_RETRY_AFTER)


def capped_seconds(digits: str, cap: timedelta) -> timedelta:
    """A number of seconds given in ASCII digits, at most `cap`. Capped before converting: a
    server's number may overflow a timedelta, or pass the 4,300 digits int() reads."""
    significant = digits.lstrip("0") or "0"
    cap_seconds = int(cap.total_seconds())
    if len(significant) > len(str(cap_seconds)):
        return cap
    return timedelta(seconds=min(int(significant), cap_seconds))


def cache_lifetime(
    cache_control: str | None,
    expires: str | None,
    date: str | None,
    now: datetime,
    age: str | None = None,
) -> timedelta | None:
    """How long the response stays fresh according to HTTP caching headers, or None.

    max-age wins over Expires (as in HTTP caching); Expires is measured from the server's
    Date when given, so a skewed server clock does not matter. An invalid Expires means
    "already stale" per RFC 9111. A response a cache (a CDN) has held for `Age` seconds has
    that much less of its lifetime left.
    """
    lifetime = _lifetime(cache_control, expires, date, now)
    held = age.strip() if age else ""
    if lifetime is None or not _SECONDS.fullmatch(held):
        return lifetime
    return max(lifetime - capped_seconds(held, MAX_INTERVAL), timedelta(0))


def _lifetime(
    cache_control: str | None, expires: str | None, date: str | None, now: datetime
) -> timedelta | None:
    if cache_control:
        if _NO_CACHE.search(cache_control):
            return timedelta(0)
        max_age = _MAX_AGE.search(cache_control)
        if max_age:
            return capped_seconds(max_age.group(1), MAX_INTERVAL)
    if expires is None:
        return None
    expires_at = parse_http_date(expires)
    if expires_at is None:
        return timedelta(0)
    served_at = parse_http_date(date) or now
    return max(expires_at - served_at, timedelta(0))


def schedule_after_success(
    now: datetime,
    *,
    cache_lifetime: timedelta | None = None,
    ttl_minutes: int | None = None,
    floor: timedelta = timedelta(0),
    floor_reason: DueReason = MIN_INTERVAL,
    jitter: float = 1.0,
) -> Schedule:
    """Next poll after a 200 or 304, and which hint decided it: the longest hint (HTTP caching,
    RSS <ttl>, our own floor shortened by `jitter`, a factor in [FLOOR_JITTER, 1]), capped at
    MAX_INTERVAL and started a little early (see EARLY_SLACK_FRACTION). With a floor, the
    interval is never shorter than MIN_INTERVAL_FLOOR, jitter and slack included."""
    hints: list[tuple[timedelta, DueReason | None]] = [(timedelta(0), None)]
    if floor > timedelta(0):
        hints.append((floor * jitter, floor_reason))
    if cache_lifetime is not None:
        hints.append((cache_lifetime, CACHE))
    if ttl_minutes:
        hints.append((ttl_interval(ttl_minutes), TTL))
    longest, reason = max(hints, key=lambda hint: hint[0])
    interval = min(longest, MAX_INTERVAL)
    slack = min(interval * EARLY_SLACK_FRACTION, MAX_EARLY_SLACK)
    effective = interval - slack
    if floor > timedelta(0):
        effective = max(effective, min(floor, MIN_INTERVAL_FLOOR))
    return Schedule(now + effective, reason)


def ttl_interval(ttl_minutes: int) -> timedelta:
    """An RSS <ttl> as an interval, at most MAX_INTERVAL (capped before timedelta, which
    overflows past ~1.4e12 minutes)."""
    return timedelta(minutes=min(ttl_minutes, MAX_INTERVAL // timedelta(minutes=1)))


def backoff(
    consecutive_errors: int,
    rng: random.Random,
    *,
    base: timedelta = BACKOFF_BASE,
    cap: timedelta = MAX_INTERVAL,
) -> timedelta:
    """Delay after the n-th error in a row: base·2^(n-1), capped, times a random factor in
    [0.75, 1] so that feeds that failed together (one host down) do not retry together."""
    exponent = max(consecutive_errors - 1, 0)
    delay = cap if exponent >= 32 else min(base * (2**exponent), cap)
    return delay * rng.uniform(0.75, 1.0)


def schedule_after_error(
    now: datetime,
    consecutive_errors: int,
    rng: random.Random,
    *,
    retry_at: datetime | None = None,
    base: timedelta = BACKOFF_BASE,
    floor: timedelta = timedelta(0),
) -> Schedule:
    """Next poll after a failure: the backoff, or later if the server asked (Retry-After); and
    which of the two decided it. The backoff is never shorter than a success would have waited
    (`floor`: the feed's own interval or its <ttl>, started a little early as after a
    success): a failing feed is asked no more often than a working one."""
    delay = backoff(consecutive_errors, rng, base=base)
    if floor > timedelta(0):
        delay = max(delay, floor - min(floor * EARLY_SLACK_FRACTION, MAX_EARLY_SLACK))
    due = now + delay
    if retry_at and retry_at >= due:
        return Schedule(retry_at, RETRY_AFTER)
    return Schedule(due, BACKOFF)


def floor_jitter(rng: random.Random) -> float:
    return rng.uniform(FLOOR_JITTER, 1.0)


def explain(reason: DueReason | None, consecutive_errors: int = 0) -> str:
    """Why a feed is not due, in words for `feeds status`."""
    if reason == BACKOFF:
        return f"backoff after {plural(consecutive_errors, 'error')}"
    return _REASON_WORDS.get(reason or "", "scheduled")


_REASON_WORDS = {
    CACHE: "server's Cache-Control/Expires",
    TTL: "feed's <ttl>",
    MIN_INTERVAL: "minimum interval",
    UNCONDITIONAL: "minimum interval for feeds without ETag/Last-Modified",
    RETRY_AFTER: "server's Retry-After",
    CONFIG: "waiting for a config fix",
}
