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
    ordered = sorted((moment.astimezone(zone), outlet) for moment, outlet in reports)
    if not ordered:
        return Timeline(unit or "hour", ())
    if unit is None:
        unit = "day" if ordered[-1][0] - ordered[0][0] > HOURLY_UP_TO else "hour"
    first, last = _floor(ordered[0][0], unit), _floor(ordered[-1][0], unit)
    starts = [first]
    while starts[-1] < last:
        starts.append(_step(first, unit, len(starts)))
    starts = starts[-MAX_BUCKETS:]
    counts = [0] * len(starts)
    joined: list[list[str]] = [[] for _ in starts]
    seen: set[str] = set()
    index = 0
    for moment, outlet in ordered:
        while index + 1 < len(starts) and moment >= starts[index + 1]:
            index += 1
        if moment < starts[0]:
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
