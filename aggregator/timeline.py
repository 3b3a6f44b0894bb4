"""How a story unfolded: reports per hour (or per day, for longer stories) and which outlets
joined in each period. Pure: times in, buckets out, in the site's time zone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

HOURLY_UP_TO = timedelta(hours=48)  # longer stories are counted per day
MAX_BUCKETS = 90  # a story running for months shows its last 90 days


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime  # local time, aware
    reports: int
    joined: tuple[str, ...]  # outlets whose first report falls in this period, in order


@dataclass(frozen=True, slots=True)
class Timeline:
    unit: Literal["hour", "day"]
    buckets: tuple[Bucket, ...]  # consecutive periods, empty ones included

    @property
    def peak(self) -> int:
        return max((b.reports for b in self.buckets), default=0)

    @property
    def reports(self) -> int:
        return sum(b.reports for b in self.buckets)


def _instant(moment: datetime) -> float:
    return moment.timestamp()  # of an aware time: its instant, whichever side of a fold


def _floor(moment: datetime, unit: str) -> datetime:
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _step(start: datetime, unit: str, n: int) -> datetime:
    """The start of the n-th period after `start`, on the wall clock (DST-safe for days)."""
    if unit == "hour":
        zone = start.tzinfo
        utc = start.astimezone(ZoneInfo("UTC")) + timedelta(hours=n)
        return utc.astimezone(zone)
    day = (start + timedelta(days=n, hours=12)).date()  # noon avoids DST edges
    return datetime(day.year, day.month, day.day, tzinfo=start.tzinfo)


def story_timeline(
    reports: Iterable[tuple[datetime, str]],
    timezone: str = "UTC",
    unit: Literal["hour", "day"] | None = None,
) -> Timeline:
    """Buckets for the (published, outlet) pairs of a story's reports, oldest first: per hour
    for stories up to 48 hours long, else per day, unless `unit` says which."""
    zone = ZoneInfo(timezone)
    # ordered and compared as instants: Python compares two local times of one zone by the
    # wall clock, so the hour repeated when clocks go back would sort and bucket as one
    ordered = sorted(
        ((_instant(moment), moment.astimezone(zone), outlet) for moment, outlet in reports),
        key=lambda report: (report[0], report[2]),
    )
    if not ordered:
        return Timeline(unit or "hour", ())
    if unit is None:
        span = ordered[-1][0] - ordered[0][0]
        unit = "day" if span > HOURLY_UP_TO.total_seconds() else "hour"
    first = _floor(ordered[0][1], unit)
    last = _instant(_floor(ordered[-1][1], unit))
    starts = [first]
    while _instant(starts[-1]) < last:
        starts.append(_step(first, unit, len(starts)))
    starts = starts[-MAX_BUCKETS:]
    bounds = [_instant(start) for start in starts]
    counts = [0] * len(starts)
    joined: list[list[str]] = [[] for _ in starts]
    seen: set[str] = set()
    index = 0
    for moment, _, outlet in ordered:
        while index + 1 < len(bounds) and moment >= bounds[index + 1]:
            index += 1
        if moment < bounds[0]:
            seen.add(outlet)  # before the shown periods (very long stories only)
            continue
        counts[index] += 1
        if outlet not in seen:
            seen.add(outlet)
            joined[index].append(outlet)
    return Timeline(
        unit,
        tuple(Bucket(s, n, tuple(j)) for s, n, j in zip(starts, counts, joined, strict=True)),
    )
