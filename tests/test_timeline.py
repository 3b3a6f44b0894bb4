"""A story's timeline: reports per hour or per day in the site's time zone, and who joined when.
Pure functions, so plain unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.charts import columns, stacked_bar
from aggregator.timeline import MAX_BUCKETS, story_timeline


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def test_hourly_buckets_include_empty_hours_and_list_outlets_as_they_join() -> None:
    reports = [
        (at(28, 9, 5), "A"),
        (at(28, 9, 50), "B"),
        (at(28, 12, 0), "A"),  # A again: not a new outlet
        (at(28, 12, 30), "C"),
    ]
    timeline = story_timeline(reports)
    assert timeline.unit == "hour"
    assert [(b.start.hour, b.reports, b.joined) for b in timeline.buckets] == [
        (9, 2, ("A", "B")),
        (10, 0, ()),
        (11, 0, ()),
        (12, 2, ("C",)),
    ]
    assert (timeline.reports, timeline.peak) == (4, 2)


def test_longer_stories_count_per_local_day() -> None:
    # 20:00 UTC is already the next day in Kolkata (UTC+5:30)
    reports = [(at(26, 20), "A"), (at(27, 10), "B"), (at(29, 2), "C")]
    timeline = story_timeline(reports, "Asia/Kolkata")
    assert timeline.unit == "day"
    assert [(b.start.day, b.start.hour, b.reports) for b in timeline.buckets] == [
        (27, 0, 2),
        (28, 0, 0),
        (29, 0, 1),
    ]
    assert str(timeline.buckets[0].start.tzinfo) == "Asia/Kolkata"


def test_days_and_hours_step_across_daylight_saving_changes() -> None:
    # London leaves summer time at 01:00 UTC on 25 October 2026: that day has 25 hours
    hourly = story_timeline(
        [(at(25, 0, month=10), "A"), (at(25, 2, month=10), "B")], "Europe/London"
    )
    assert [b.start.isoformat() for b in hourly.buckets] == [
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T02:00:00+00:00",
    ]
    daily = story_timeline(
        [(at(23, 12, month=10), "A"), (at(27, 12, month=10), "B")], "Europe/London"
    )
    assert [b.start.strftime("%d %H:%M") for b in daily.buckets] == [
        "23 00:00", "24 00:00", "25 00:00", "26 00:00", "27 00:00",
    ]  # fmt: skip


def test_the_hour_repeated_when_clocks_go_back_is_two_periods_in_time_order() -> None:
    """Berlin's 02:00-03:00 comes twice on 25 October 2026 (+02:00, then +01:00): two periods,
    each with its own reports, and outlets join in the order they reported."""
    reports = [
        (datetime(2026, 10, 25, 1, 10, tzinfo=UTC), "B"),  # 02:10+01:00, the second time
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "A"),  # 02:30+02:00, the first time
        (datetime(2026, 10, 25, 1, 50, tzinfo=UTC), "C"),
        (datetime(2026, 10, 25, 2, 40, tzinfo=UTC), "D"),
    ]
    timeline = story_timeline(reports, "Europe/Berlin")
    shown = [(b.start.isoformat(), b.reports, b.joined) for b in timeline.buckets]
    assert shown == [
        ("2026-10-25T02:00:00+02:00", 1, ("A",)),
        ("2026-10-25T02:00:00+01:00", 2, ("B", "C")),
        ("2026-10-25T03:00:00+01:00", 1, ("D",)),
    ]


def test_a_months_long_story_shows_its_last_periods_only() -> None:
    start = at(1, 12, month=1)
    reports = [(start, "Early"), *((start + timedelta(days=n), "Daily") for n in range(1, 120))]
    timeline = story_timeline(reports)
    assert len(timeline.buckets) == MAX_BUCKETS
    assert timeline.reports == MAX_BUCKETS  # one a day in the periods shown
    assert all(b.joined == () for b in timeline.buckets)  # both outlets joined before them


def test_no_reports_no_buckets() -> None:
    assert story_timeline([]).buckets == ()


def test_chart_geometry() -> None:
    bar = stacked_bar([("left", 1), ("center", 0), ("right", 2)])
    assert [(s.key, s.tone, s.x, s.width) for s in bar] == [
        ("left", 0, 0.0, 33.33),
        ("right", 2, 33.33, 66.67),
    ]
    assert stacked_bar([("a", 1)], scale=4)[0].width == 25.0
    assert stacked_bar([("a", 0)]) == ()
    cols = columns([0, 1, 4], [False, True, False])
    assert [(c.height, c.y, c.marked) for c in cols] == [(0.0, 40.0, False), (10.0, 30.0, True),
                                                       (40.0, 0.0, False)]  # fmt: skip
