"""schedule.py: the pure scheduling policy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.schedule import (
    BACKOFF,
    CACHE,
    CONFIG,
    FLOOR_JITTER,
    MAX_INTERVAL,
    MAX_RETRY_AFTER,
    MIN_INTERVAL,
    MIN_INTERVAL_FLOOR_MINUTES,
    RETRY_AFTER,
    TTL,
    UNCONDITIONAL,
    backoff,
    cache_lifetime,
    explain,
    floor_jitter,
    is_due,
    parse_http_date,
    retry_after,
    schedule_after_error,
    schedule_after_success,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_is_due() -> None:
    assert is_due(None, NOW)
    assert is_due(NOW, NOW)
    assert not is_due(NOW + timedelta(seconds=1), NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sat, 28 Nov 2026 12:00:00 GMT", NOW),
        ("Saturday, 28-Nov-26 12:00:00 GMT", NOW),  # RFC 850
        ("Sat Nov 28 12:00:00 2026", NOW),  # asctime
        ("Sat, 28 Nov 2026 13:00:00 +0100", NOW),
        ("", None),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_http_date(value: str | None, expected: datetime | None) -> None:
    assert parse_http_date(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", NOW + timedelta(seconds=120)),
        (" 0 ", NOW),
        ("Sat, 28 Nov 2026 14:00:00 GMT", NOW + timedelta(hours=2)),
        ("Fri, 27 Nov 2026 14:00:00 GMT", NOW),  # in the past: now
        ("99999999999", NOW + MAX_RETRY_AFTER),
        ("100000000000000", NOW + MAX_RETRY_AFTER),  # overflowed timedelta before the cap
        ("99999999999999999999", NOW + MAX_RETRY_AFTER),
        ("9" * 5000, NOW + MAX_RETRY_AFTER),  # more digits than int() reads
        ("0060", NOW + timedelta(seconds=60)),
        ("\u00b2", None),  # "²": a digit to str.isdigit, not to int
        ("\u0661\u0662", None),  # Arabic-Indic "12": HTTP's digits are ASCII
        ("Mon, 01 Jan 2035 00:00:00 GMT", NOW + MAX_RETRY_AFTER),
        ("-5", None),
        ("later", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, expected: datetime | None) -> None:
    assert retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("cache_control", "expires", "date", "age", "expected"),
    [
        ("max-age=3600", None, None, "600", timedelta(minutes=50)),  # a CDN held it 10 min
        ("max-age=600", None, None, "900", timedelta(0)),  # already stale
        (None, "Sat, 28 Nov 2026 10:00:00 GMT", "Sat, 28 Nov 2026 09:00:00 GMT", "1800",
         timedelta(minutes=30)),
        ("max-age=600", None, None, "soon", timedelta(minutes=10)),  # no number: no age
        ("max-age=600", None, None, "\u00b2", timedelta(minutes=10)),
        ("public", None, None, "60", None),
    ],
)  # fmt: skip
def test_a_cached_responses_age_is_taken_from_its_lifetime(
    cache_control: str | None, expires: str | None, date: str | None, age: str, expected
) -> None:
    assert cache_lifetime(cache_control, expires, date, NOW, age) == expected


@pytest.mark.parametrize(
    ("cache_control", "expires", "date", "expected"),
    [
        ("public, max-age=600", None, None, timedelta(minutes=10)),
        ('max-age="900"', None, None, timedelta(minutes=15)),
        ("s-maxage=50, max-age=600", None, None, timedelta(minutes=10)),
        ("no-cache", None, None, timedelta(0)),
        ("no-store, max-age=600", None, None, timedelta(0)),
        # a no-cache naming fields restricts those fields, not the response (RFC 9111 5.2.2.4)
        ('no-cache="Set-Cookie", max-age=600', None, None, timedelta(minutes=10)),
        ("no-cache = Set-Cookie, max-age=600", None, None, timedelta(minutes=10)),
        ("max-age=600", "Sat, 28 Nov 2026 18:00:00 GMT", None, timedelta(minutes=10)),
        ("max-age=99999999999999", None, None, MAX_INTERVAL),
        ("max-age=" + "9" * 5000, None, None, MAX_INTERVAL),  # more digits than int() reads
        (None, "Sat, 28 Nov 2026 13:00:00 GMT", None, timedelta(hours=1)),
        # Expires counts from the server's Date, whatever our clock says
        (
            None,
            "Sat, 28 Nov 2026 09:30:00 GMT",
            "Sat, 28 Nov 2026 09:00:00 GMT",
            timedelta(minutes=30),
        ),
        (None, "0", None, timedelta(0)),  # invalid Expires: already stale
        (None, None, None, None),
        ("public", None, None, None),
    ],
)
def test_cache_lifetime(
    cache_control: str | None, expires: str | None, date: str | None, expected: timedelta | None
) -> None:
    assert cache_lifetime(cache_control, expires, date, NOW) == expected


def test_success_without_hints_is_due_on_the_next_run() -> None:
    assert schedule_after_success(NOW).next_due == NOW


def test_success_uses_the_longest_hint_a_little_early() -> None:
    """An hourly cron drifting by seconds must not skip a feed that is fresh for one hour."""
    due = schedule_after_success(NOW, cache_lifetime=timedelta(minutes=10), ttl_minutes=60).next_due
    assert due == NOW + timedelta(minutes=55)
    next_cron_run = NOW + timedelta(minutes=59, seconds=58)
    assert is_due(due, next_cron_run)


def test_ttl_is_capped_at_a_day() -> None:
    due = schedule_after_success(NOW, ttl_minutes=60 * 24 * 30).next_due
    assert NOW + MAX_INTERVAL - timedelta(minutes=5) == due


@pytest.mark.parametrize("minutes", [1_440_000_000_000, 10**13, 10**30])
def test_an_absurd_ttl_is_capped_before_it_can_overflow(minutes: int) -> None:
    schedule = schedule_after_success(NOW, ttl_minutes=minutes)
    assert (schedule.next_due, schedule.reason) == (NOW + MAX_INTERVAL - timedelta(minutes=5), TTL)


def test_min_interval_applies() -> None:
    due = schedule_after_success(NOW, floor=timedelta(minutes=20)).next_due
    assert due == NOW + timedelta(minutes=18)


def test_backoff_doubles_with_jitter_and_caps() -> None:
    rng = random.Random(7)
    delays = [backoff(n, rng) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        nominal = min(timedelta(minutes=30) * 2 ** (n - 1), MAX_INTERVAL)
        assert nominal * 0.75 <= delay <= nominal
    assert delays[-1] <= MAX_INTERVAL


def test_backoff_jitter_spreads_feeds_that_failed_together() -> None:
    rng = random.Random(1)
    assert len({backoff(3, rng) for _ in range(20)}) == 20


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=2**32))
def test_backoff_never_exceeds_a_day(errors: int, seed: int) -> None:
    assert timedelta(0) <= backoff(errors, random.Random(seed)) <= MAX_INTERVAL


def test_error_waits_for_retry_after_when_later_than_backoff() -> None:
    rng = random.Random(0)
    retry_at = NOW + timedelta(hours=6)
    assert schedule_after_error(NOW, 1, rng, retry_at=retry_at).next_due == retry_at
    soon = NOW + timedelta(seconds=5)
    assert schedule_after_error(NOW, 1, rng, retry_at=soon).next_due > soon  # backoff still applies


def test_our_floor_is_jittered_down_and_still_due_at_the_next_hourly_run() -> None:
    rng = random.Random(3)
    dues = [
        schedule_after_success(
            NOW, floor=timedelta(hours=1), jitter=floor_jitter(rng), floor_reason=MIN_INTERVAL
        )
        for _ in range(50)
    ]
    assert {d.reason for d in dues} == {MIN_INTERVAL}
    assert len({d.next_due for d in dues}) == 50  # feeds added together drift apart
    for due in dues:
        assert NOW + timedelta(minutes=49) <= due.next_due <= NOW + timedelta(minutes=55)
        assert is_due(due.next_due, NOW + timedelta(minutes=59, seconds=58))


@pytest.mark.parametrize("jitter", [FLOOR_JITTER, 0.95, 1.0])
def test_the_15_minute_floor_is_never_shortened_by_jitter_or_slack(jitter: float) -> None:
    shortest = timedelta(minutes=MIN_INTERVAL_FLOOR_MINUTES)
    due = schedule_after_success(NOW, floor=shortest, jitter=jitter).next_due
    assert due == NOW + shortest
    assert not is_due(due, NOW + shortest - timedelta(seconds=1))
    twenty = schedule_after_success(NOW, floor=timedelta(minutes=20), jitter=jitter).next_due
    assert NOW + shortest <= twenty <= NOW + timedelta(minutes=20)
    # no floor of ours (feeds check, tests): a server's short max-age is honoured as before
    assert (
        schedule_after_success(NOW, cache_lifetime=timedelta(minutes=5)).next_due < NOW + shortest
    )


def test_the_longest_hint_names_the_reason() -> None:
    floor = timedelta(hours=4)
    assert schedule_after_success(NOW).reason is None
    assert schedule_after_success(NOW, cache_lifetime=timedelta(hours=1)).reason == CACHE
    assert schedule_after_success(NOW, ttl_minutes=90, floor=timedelta(hours=1)).reason == TTL
    unconditional = schedule_after_success(
        NOW, cache_lifetime=timedelta(hours=1), floor=floor, floor_reason=UNCONDITIONAL
    )
    assert (unconditional.reason, unconditional.next_due) == (
        UNCONDITIONAL,
        NOW + floor - timedelta(minutes=5),
    )
    backed_off = schedule_after_error(NOW, 2, random.Random(0))
    assert backed_off.reason == BACKOFF
    told = schedule_after_error(NOW, 1, random.Random(0), retry_at=NOW + timedelta(hours=3))
    assert (told.reason, told.next_due) == (RETRY_AFTER, NOW + timedelta(hours=3))


@pytest.mark.parametrize(
    ("reason", "errors", "words"),
    [
        (CACHE, 0, "Cache-Control"),
        (RETRY_AFTER, 3, "Retry-After"),
        (BACKOFF, 1, "backoff after 1 error"),
        (BACKOFF, 4, "backoff after 4 errors"),
        (MIN_INTERVAL, 0, "minimum interval"),
        (UNCONDITIONAL, 0, "without ETag/Last-Modified"),
        (CONFIG, 0, "waiting for a config fix"),
        (None, 0, "scheduled"),
    ],
)
def test_every_reason_is_explained(reason: str | None, errors: int, words: str) -> None:
    assert words in explain(reason, errors)
