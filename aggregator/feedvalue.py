"""Feed value: what each feed adds to the stories, from the stored items and their stories.

Pure: the store returns `StoryItemRecord`s (each item with its story and, for a copy, the outlet
of its original); this module counts. A feed "takes part" in a story when one of its items is in
it. Per feed:

- first_reports: stories with two or more feeds where this feed's own item (not a copy of
  another outlet's) came first (ties go to every feed tied first; a syndicated copy with the
  original's timestamp is no first report);
- exclusives: stories no other feed took part in;
- copies: its items that nearly repeat another outlet's item (stories.py finds them);
- median_delay_minutes: in stories with two or more feeds, how long after the first report its
  own first item came (0 when it was first), the median over those stories;
- errors: failed fetches in a row at the last poll.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from aggregator.models import StoryItemRecord
from aggregator.text import public_url

JSON_KEYS = (
    "url",
    "name",
    "items",
    "stories",
    "first_reports",
    "exclusives",
    "copies",
    "median_delay_minutes",
    "errors",
)


@dataclass(frozen=True, slots=True)
class FeedValue:
    url: str
    name: str
    items: int
    stories: int
    first_reports: int
    exclusives: int
    copies: int
    median_delay_minutes: float | None
    errors: int

    @property
    def unique(self) -> int:
        """What only this feed brought: stories it was first on or alone on."""
        return self.first_reports + self.exclusives

    @property
    def joined(self) -> int:
        """Stories it took part in without being first or alone."""
        return self.stories - self.unique

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        return {key: data[key] for key in JSON_KEYS}


def delay_text(minutes: float) -> str:
    """A delay in the unit a reader thinks in: '0 min', '45 min', '7.5 h', '18 h', '2.5 days'.

    Under an hour, whole minutes; then hours up to two days, then days; one decimal below ten
    of the unit ('7.5 h'), whole numbers above ('18 h'). The site's Outlets page, the email's
    "Your feeds" lines and `feeds value` all say delays this way."""
    if minutes <= 0:
        return "0 min"
    if minutes < 0.5:
        return "under 1 min"
    if int(minutes + 0.5) < 60:
        return f"{int(minutes + 0.5)} min"
    hours = _figure(minutes / 60)
    if float(hours) < 48:
        return f"{hours} h"
    return f"{_figure(minutes / 1440)} days"


def _figure(value: float) -> str:
    """One decimal below ten ('7.5', '2', never '2.0'), else a whole number ('18')."""
    text = f"{value:.1f}" if value < 9.95 else f"{int(value + 0.5)}"
    return text.removesuffix(".0")


def least_first(value: FeedValue) -> tuple:
    """Sort key: the feeds that add least come first (nothing unique, few stories, copies)."""
    return (
        value.unique,
        value.stories,
        value.items - value.copies,
        value.name.casefold(),
        value.url,
    )


def feed_values(
    records: Iterable[StoryItemRecord],
    feeds: Sequence[tuple[str, str | None]],
    errors: Mapping[str, int] | None = None,
) -> list[FeedValue]:
    """One FeedValue per configured feed (url, name), least adding first.

    Items of feeds no longer configured still count when deciding who was first or alone, and
    so do the items of a story from before the window (`in_window` false): they count for no
    feed, but a feed that only went on with a story another broke earlier is not its first
    report, nor alone on it.
    """
    errors = errors or {}
    by_feed: dict[str, list[StoryItemRecord]] = {}
    first_at: dict[str, dict[str, datetime]] = {}  # story -> feed -> its first item's time
    own_at: dict[str, dict[str, datetime]] = {}  # the same, over items that are no copies
    for record in records:
        if record.in_window:
            by_feed.setdefault(record.feed_url, []).append(record)
        if record.story_id is not None:
            _keep_earliest(first_at.setdefault(record.story_id, {}), record)
            if not _is_copy(record):
                _keep_earliest(own_at.setdefault(record.story_id, {}), record)
    return sorted(
        (
            _value(url, name, by_feed.get(url, []), first_at, own_at, errors.get(url, 0))
            for url, name in feeds
        ),
        key=least_first,
    )


def _is_copy(record: StoryItemRecord) -> bool:
    """A near repeat of another outlet's item (repeating its own is no copy)."""
    return record.copy_of_outlet not in (None, record.outlet)


def _keep_earliest(times: dict[str, datetime], record: StoryItemRecord) -> None:
    known = times.get(record.feed_url)
    if known is None or record.published < known:
        times[record.feed_url] = record.published


def _value(
    url: str,
    name: str | None,
    own: Sequence[StoryItemRecord],
    first_at: Mapping[str, Mapping[str, datetime]],
    own_at: Mapping[str, Mapping[str, datetime]],
    errors: int,
) -> FeedValue:
    stories = sorted({r.story_id for r in own if r.story_id is not None})
    first = exclusive = 0
    delays: list[float] = []
    for story in stories:
        times = first_at[story]
        if len(times) == 1:
            exclusive += 1
            continue
        # the first report is the earliest item of a feed's own (all copies: the earliest item)
        reports = own_at.get(story) or times
        start = min(reports.values())
        delays.append(max(0.0, (times[url] - start).total_seconds() / 60))
        first += reports.get(url) == start
    # without a configured name: the outlet name its items were stored under most often
    outlets = Counter(r.outlet for r in own)
    stored_name = min(outlets, key=lambda o: (-outlets[o], o)) if outlets else None
    return FeedValue(
        url=url,
        # a feed with no name and no items is named by its URL: never its query (tokens)
        name=name or stored_name or public_url(url),
        items=len(own),
        stories=len(stories),
        first_reports=first,
        exclusives=exclusive,
        copies=sum(1 for r in own if _is_copy(r)),
        median_delay_minutes=round(statistics.median(delays), 1) if delays else None,
        errors=errors,
    )
