"""Geometry for the site's small inline SVG charts; the templates draw them (macros.html).

Coordinates live in a fixed viewBox and are rounded, so the same figures give the same bytes.
The SVGs scale to their container (width 100%), so nothing here knows the screen size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BAR_WIDTH = 100.0  # viewBox width of a horizontal bar
COLUMN_STEP = 10.0  # viewBox units per timeline column (a 1-unit gap included)
COLUMN_HEIGHT = 40.0
TONES = 6  # colours in style.css (.tone-0 ... .tone-5); the last also stands for "other"


def _r(value: float) -> float:
    return round(value, 2)


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of a horizontal stacked bar."""

    key: str  # what it counts (a coverage value, "first", ...)
    tone: int  # which colour (style.css .tone-N), stable per key within one chart kind
    value: int
    x: float
    width: float


def stacked_bar(parts: Sequence[tuple[str, int]], scale: int | None = None) -> tuple[Segment, ...]:
    """Segments for (key, count) parts, left to right, over `scale` (default: their sum).

    Parts with a zero count take no room but keep their tone, so colours stay put.
    """
    total = scale if scale is not None else sum(n for _, n in parts)
    if total <= 0:
        return ()
    segments, x = [], 0.0
    for tone, (key, count) in enumerate(parts):
        if count > 0:
            width = BAR_WIDTH * count / total
            segments.append(Segment(key, tone, count, _r(x), _r(width)))
            x += width
    return tuple(segments)


def tone_of(index: int, count: int) -> int:
    """The colour of the index-th of `count` parts: past the sixth they share the last one."""
    return min(index, TONES - 1) if count > TONES else index


def capped(parts: Sequence[tuple[str, int]], other: str = "other") -> list[tuple[str, int]]:
    """At most TONES parts, so no two share a colour: the rest are summed into `other`."""
    if len(parts) <= TONES:
        return list(parts)
    rest = sum(n for _, n in parts[TONES - 1 :])
    return [*parts[: TONES - 1], (other, rest)]


@dataclass(frozen=True, slots=True)
class Column:
    """One period of a timeline: a bar as tall as its share of the busiest period."""

    x: float
    y: float
    width: float
    height: float
    value: int
    marked: bool  # new outlets joined in this period


def columns(values: Sequence[int], marked: Sequence[bool]) -> tuple[Column, ...]:
    peak = max(values, default=0)
    if peak <= 0:
        return ()
    found = []
    for index, (value, mark) in enumerate(zip(values, marked, strict=True)):
        # a period with any report shows at least a sliver, so it never reads as empty
        height = max(COLUMN_HEIGHT * value / peak, 1.5) if value else 0.0
        found.append(
            Column(
                x=_r(index * COLUMN_STEP + 0.5),
                y=_r(COLUMN_HEIGHT - height),
                width=COLUMN_STEP - 1,
                height=_r(height),
                value=value,
                marked=mark,
            )
        )
    return tuple(found)


def columns_width(count: int) -> float:
    return _r(max(count, 1) * COLUMN_STEP)
