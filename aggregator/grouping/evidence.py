"""The "same event" evidence model: a few named signals per pair of groups, and fitted weights.

Every signal is an average over the pairs of items across two groups (a single item is a group of
one), computed from per-group sums, so a group's score against another costs a few dictionary
look-ups however large the groups are:

- ``cosine``: embedding similarity; ``cosine_x_full_text`` lets it mean more for items with a
  full summary than for two headlines (``full_text``: how much summary the pair has);
- ``shared_words``: TF-IDF cosine of content words (rare words weigh more);
- ``shared_names``: names (people, places, organisations) both sides mention, rare ones weighing
  more; ``name_conflict``: the share of the names of each side's title and lead (where a
  report says who and where) that the other side names nowhere (the smaller of the two
  directions, so one side merely saying more is no conflict): two quakes in different places.
  A lead name that the other side gives further down is no conflict;
- ``shared_numbers``: numbers (scores, magnitudes, amounts, years; not dates' days, clock
  times or ages) both give anywhere in the title and embedded summary, since two reports of one
  event give the same figures in different sentences; ``number_conflict``: as ``name_conflict``,
  for the numbers of the title and lead, where a report gives its key figures (numbers past both
  leads, such as a count of earlier quakes, differ between reports of one event);
- ``days_apart``: the square root of the days between the groups' known times beyond the
  first day (unknown times count as close: only the dated training files have times, so a
  "time unknown" signal would learn which file a pair came from, not whether it is one story);
  within one group (a dense fragment), its widest gap between consecutive known times, where the
  merge pass would have joined its two halves. A square root, not a log: reports of one event
  come days apart, posts on one subject months or years apart, and the fit sees many of the
  first and few of the second; a log flattens so fast that its one weight, fitted to days,
  let similar headlines a year apart merge;
- ``same_outlet``: one outlet rarely publishes one event twice;
- ``group_size``: log of the number of pairs averaged (an average over many pairs is surer).

A logistic regression (scikit-learn) fitted on labelled pairs turns them into a probability;
``benchmarks/fit_evidence.py`` fits the weights shipped in ``evidence_weights.json``. It then
lowers the bar for headline-only pairs (``headline_shift``), because the pair fit sets one bar
for headlines and full texts alike, while grouping scores better with a lower one for headlines.
The lower bar is for a headline joining a group, or two groups: two lone items (a pair of one
item each, or a fragment of two) clear the full bar, since nothing else backs them, and on a
quiet day headlines of one subject would otherwise pair off. And it chooses how much lower the
bar is for an item left alone once merging ends to join a story of several (``lone_discount``,
see ``merge.LoneJoin``).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import chain, pairwise
from pathlib import Path
from typing import TypeVar

import numpy as np

from aggregator.grouping.text import BatchText, Segment

FEATURES = (
    "cosine",
    "cosine_x_full_text",
    "full_text",
    "shared_words",
    "shared_names",
    "name_conflict",
    "shared_numbers",
    "number_conflict",
    "days_apart",
    "same_outlet",
    "group_size",
)
# Caps keep any one signal from dominating a score.
_MAX_PAIRS = 10_000
_CAP = {"shared_names": 3.0, "name_conflict": 1.0, "shared_numbers": 3.0, "number_conflict": 1.0}
_GROUP_SIZE = FEATURES.index("group_size")
_FULL_TEXT = FEATURES.index("full_text")
_ONE_PAIR = 1e-9  # ``group_size`` (log of the pairs averaged) below this: two lone items
WEIGHTS_FILE = Path(__file__).with_name("evidence_weights.json")
Overlap = TypeVar("Overlap", float, np.ndarray)
# the segments from which ``_lead_named`` reads how much of a lead the other side gives anywhere
_NAMED = (Segment.NAMES_PLUS_LEAD, Segment.LEAD_NAMES, Segment.NAMES)
_GIVEN = (Segment.NUMBERS_PLUS_LEAD, Segment.LEAD_NUMBERS, Segment.NUMBERS)


@dataclass(frozen=True)
class EvidenceModel:
    """Logistic weights over ``FEATURES`` and the probability from which groups merge."""

    weights: tuple[float, ...]
    bias: float
    merge_probability: float
    headline_shift: float = 0.0  # already in ``weights`` and ``bias``; kept to report it
    lone_discount: float = 0.0
    """Log-odds below the merge bar at which an item left alone once merging ends still joins
    its likeliest story of at least ``merge.STORY_SIZE`` items (0: no lower bar)."""

    @property
    def threshold(self) -> float:
        """``merge_probability`` as a logit."""
        p = min(max(self.merge_probability, 1e-9), 1 - 1e-9)
        return math.log(p / (1 - p))

    def score(self, features: Sequence[float]) -> float:
        """Log-odds that the two sides report one story."""
        weighted = sum(w * f for w, f in zip(self.weights, features, strict=True)) + self.bias
        return weighted + float(self.lone_pair_offset(features))

    def scores(self, features: np.ndarray) -> np.ndarray:
        """``score`` of rows of features."""
        return features @ np.asarray(self.weights) + self.bias + self.lone_pair_offset(features)

    def lone_pair_offset(self, features: Sequence[float] | np.ndarray) -> np.ndarray:
        """The headline shift that two lone items give back, for a row of ``FEATURES`` or
        rows of them: all of it where ``group_size`` is 0 (one pair averaged), in proportion
        to how little summary the two have, so that they clear the full bar."""
        rows = np.asarray(features)
        lone_pair = rows[..., _GROUP_SIZE] < _ONE_PAIR
        return np.where(lone_pair, -self.headline_shift * (1.0 - rows[..., _FULL_TEXT]), 0.0)

    def with_probability(self, probability: float | None) -> EvidenceModel:
        if probability is None:
            return self
        return replace(self, merge_probability=probability)

    def holds_together(self, g: Members, batch: BatchText, sums: CrossSums | None = None) -> bool:
        """Whether a group's members pass the evidence test among themselves (``inner_features``;
        ``sums``: the group's ``CrossSums`` with itself, if known)."""
        return self.score(inner_features(g, batch, sums)) >= self.threshold

    def with_lone_discount(self, discount: float) -> EvidenceModel:
        return replace(self, lone_discount=discount)

    def lone_bar(self, full_text: float) -> float:
        """The log-odds from which an item left alone joins a story (``merge.LoneJoin``): the
        whole discount below the merge bar for two full texts, none for two headlines (whose bar
        the headline shift already lowers), in proportion for a pair in between."""
        return self.threshold - self.lone_discount * full_text

    def with_headline_shift(self, shift: float) -> EvidenceModel:
        """``shift`` log-odds more evidence for headline-only items, none for full texts: the
        bias rises by ``shift`` and the weight of ``full_text`` (the pair's mean richness: 0 for
        two headlines, 1 for two full summaries) falls by as much, so a headline with a full
        text, or two half-length summaries, get half the shift. Two lone items give it back
        (``lone_pair_offset``)."""
        weights = list(self.weights)
        weights[_FULL_TEXT] -= shift
        return replace(
            self,
            weights=tuple(weights),
            bias=self.bias + shift,
            headline_shift=self.headline_shift + shift,
        )


@functools.cache
def shipped_model() -> EvidenceModel:
    """The fitted weights shipped with the package."""
    data = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{WEIGHTS_FILE.name} was fitted on other features; refit it")
    return EvidenceModel(
        tuple(data["weights"]),
        data["bias"],
        data["merge_probability"],
        data.get("headline_shift", 0.0),
        data.get("lone_discount", 0.0),
    )


def fit(features: np.ndarray, same: np.ndarray, sample_weight: np.ndarray) -> EvidenceModel:
    """Logistic regression on labelled pairs (``same``: one story), on standardised features;
    the returned weights apply to raw features. ``merge_probability`` is left at 0.5."""
    from sklearn.linear_model import LogisticRegression

    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit((features - mean) / scale, same, sample_weight=sample_weight)
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - np.dot(weights, mean))
    return EvidenceModel(tuple(float(w) for w in weights), bias, 0.5)


# ---------------------------------------------------------------- group sums


@dataclass
class Members:
    """Sums over a group's items, enough to average any signal over pairs across two groups.

    The text signals summed over all pairs of items across two groups come from the batch's
    text matrix (``text.TextMatrix.pair_sums`` of the groups' ``indexes``).
    """

    size: int
    vector_sum: np.ndarray
    richness_sum: float
    first: float  # earliest known time (days), +inf when none is known
    last: float  # latest known time (days), -inf when none is known
    indexes: list[int]
    with_lead_names: int
    # the members' text rows' overlaps with themselves, per segment of the text matrix, summed
    # (for names: the rarity weights of the members' names)
    totals: np.ndarray
    with_lead_numbers: int

    @property
    def lead_total(self) -> float:
        return float(self.totals[Segment.LEAD_NAMES])

    @property
    def lead_number_total(self) -> float:
        return float(self.totals[Segment.LEAD_NUMBERS])

    def absorb(self, other: Members) -> None:
        self.size += other.size
        self.vector_sum = self.vector_sum + other.vector_sum
        self.richness_sum += other.richness_sum
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        self.indexes.extend(other.indexes)
        self.with_lead_names += other.with_lead_names
        self.totals = self.totals + other.totals
        self.with_lead_numbers += other.with_lead_numbers


def members(indexes: Sequence[int], unit: np.ndarray, batch: BatchText) -> Members:
    rows = list(indexes)
    texts = [batch.items[i] for i in rows]
    days = [t.day for t in texts if not math.isnan(t.day)]
    totals = batch.matrix.totals[rows].sum(axis=0)
    return Members(
        size=len(rows),
        vector_sum=unit[rows].sum(axis=0, dtype=np.float64),
        richness_sum=sum(t.richness for t in texts),
        first=min(days, default=math.inf),
        last=max(days, default=-math.inf),
        indexes=rows,
        with_lead_names=sum(1 for t in texts if t.lead_names),
        totals=totals,
        with_lead_numbers=sum(1 for t in texts if t.lead_numbers),
    )


def members_of_groups(
    groups: Sequence[list[int]], unit: np.ndarray, batch: BatchText
) -> list[Members]:
    """``members`` of many groups at once (the merge pass starts from thousands)."""
    if not groups:
        return []
    flat = np.fromiter(chain.from_iterable(groups), dtype=np.int64)
    sizes = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
    starts = np.cumsum(sizes) - sizes
    texts = batch.items
    per_item = np.array(
        [
            (
                t.richness,
                t.day,
                bool(t.lead_names),
                bool(t.lead_numbers),
            )
            for t in map(texts.__getitem__, flat.tolist())
        ],
        dtype=np.float64,
    ).reshape(len(flat), 4)
    richness, _, with_lead, with_lead_numbers = np.add.reduceat(
        np.where(np.isnan(per_item), 0.0, per_item), starts
    ).T
    known = ~np.isnan(per_item[:, 1])
    first = np.minimum.reduceat(np.where(known, per_item[:, 1], np.inf), starts)
    last = np.maximum.reduceat(np.where(known, per_item[:, 1], -np.inf), starts)
    vector_sums = _segment_sums(unit, flat, starts, sizes)
    totals = np.add.reduceat(batch.matrix.totals[flat], starts)
    return [
        Members(
            size=len(indexes),
            vector_sum=vector_sums[k],
            richness_sum=float(richness[k]),
            first=float(first[k]),
            last=float(last[k]),
            # its own list: a group grows it in place when it absorbs another (``absorb``)
            indexes=list(indexes),
            with_lead_names=int(with_lead[k]),
            totals=totals[k],
            with_lead_numbers=int(with_lead_numbers[k]),
        )
        for k, indexes in enumerate(groups)
    ]


def _segment_sums(
    rows: np.ndarray, order: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """``np.add.reduceat(rows[order].astype(np.float64), starts)`` for segments of ``sizes``
    rows, added in the same order (first row, then the second, ...), in one step per rank within
    the segments: reduceat's per-segment cost dominates for wide rows and thousands of small
    segments, and no float64 copy of every row is made."""
    sums = rows[order[starts]].astype(np.float64)
    for rank in range(1, int(sizes.max(initial=0))):
        longer = np.flatnonzero(sizes > rank)
        sums[longer] += rows[order[starts[longer] + rank]]
    return sums


def pair_features(a: Members, b: Members, batch: BatchText) -> np.ndarray:
    """The signals of ``FEATURES``, averaged over the pairs of items across ``a`` and ``b``."""
    return np.array(values_from_sums(a, b, cross_sums(a, b, batch)))


# What a pair's text signals need, summed over the pairs of items across two groups, one value
# per segment of the text matrix (``Segment``: shared content words as a TF-IDF dot, names and
# lead names weighted by rarity, numbers, outlets, lead numbers). Sums add up when a group
# absorbs another, so the merge pass keeps them per pair of neighbours.
CrossSums = tuple[float, ...]


def cross_sums(a: Members, b: Members, batch: BatchText) -> CrossSums:
    return tuple(batch.matrix.pair_sums([a.indexes], [b.indexes])[0].tolist())


def add_sums(x: CrossSums, y: CrossSums) -> CrossSums:
    return tuple(p + q for p, q in zip(x, y, strict=True))


def values_from_sums(a: Members, b: Members, sums: CrossSums) -> list[float]:
    pairs = a.size * b.size
    cosine = float(a.vector_sum @ b.vector_sum) / pairs
    full_text = (a.richness_sum / a.size + b.richness_sum / b.size) / 2
    # a conflict needs both sides to name someone (or give a number): weigh the share of names
    # missing by the share of pairs in which both items have any
    name_conflict = number_conflict = 0.0
    if a.lead_total and b.lead_total:
        name_conflict = _conflict(
            _lead_named(*(sums[s] for s in _NAMED)),
            a.size * b.lead_total,
            b.size * a.lead_total,
        ) * (a.with_lead_names * b.with_lead_names / pairs)
    if a.lead_number_total and b.lead_number_total:
        number_conflict = _conflict(
            _lead_named(*(sums[s] for s in _GIVEN)),
            a.size * b.lead_number_total,
            b.size * a.lead_number_total,
        ) * (a.with_lead_numbers * b.with_lead_numbers / pairs)
    known = a.first != math.inf and b.first != math.inf
    gap = max(0.0, max(a.first, b.first) - min(a.last, b.last)) if known else 0.0
    return _values(
        cosine,
        full_text,
        sums[Segment.WORDS] / pairs,
        sums[Segment.NAMES] / pairs,
        name_conflict,
        sums[Segment.NUMBERS] / pairs,
        number_conflict,
        gap,
        known,
        sums[Segment.OUTLET] / pairs,
        pairs,
    )


# Columns of ``Merger``'s per-group statistics, which ``feature_rows`` reads.
STATS = (
    "size",
    "richness_sum",
    "first",
    "last",
    "lead_total",
    "lead_number_total",
    "with_lead_names",
    "with_lead_numbers",
)


def stats_of(g: Members) -> list[float]:
    return [float(getattr(g, name)) for name in STATS]


def feature_rows(a: np.ndarray, b: np.ndarray, dots: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """``values_from_sums`` of many pairs at once: ``a``, ``b`` are the two sides' ``STATS``
    (pairs x 8), ``dots`` their vector sums' dot products, ``sums`` their ``CrossSums``."""
    size_a, rich_a, first_a, last_a, lead_a, lead_num_a, with_lead_a, with_lead_num_a = a.T
    size_b, rich_b, first_b, last_b, lead_b, lead_num_b, with_lead_b, with_lead_num_b = b.T
    pairs = size_a * size_b
    cosine = dots / pairs
    full_text = (rich_a / size_a + rich_b / size_b) / 2
    named = _lead_named(*(sums[:, s] for s in _NAMED))
    name_conflict = _conflicts(named, size_a * lead_b, size_b * lead_a) * (
        with_lead_a * with_lead_b / pairs
    )
    given = _lead_named(*(sums[:, s] for s in _GIVEN))
    number_conflict = _conflicts(given, size_a * lead_num_b, size_b * lead_num_a) * (
        with_lead_num_a * with_lead_num_b / pairs
    )
    known = np.isfinite(first_a) & np.isfinite(first_b)
    with np.errstate(invalid="ignore"):
        gap = np.maximum(first_a, first_b) - np.minimum(last_a, last_b)
    days = np.where(known, np.sqrt(np.clip(np.nan_to_num(gap) - 1.0, 0.0, 3650)), 0.0)
    return np.column_stack(
        [
            cosine,
            cosine * full_text,
            full_text,
            np.maximum(0.0, sums[:, Segment.WORDS] / pairs),
            np.minimum(sums[:, Segment.NAMES] / pairs, _CAP["shared_names"]),
            np.clip(name_conflict, 0.0, _CAP["name_conflict"]),
            np.minimum(sums[:, Segment.NUMBERS] / pairs, _CAP["shared_numbers"]),
            np.clip(number_conflict, 0.0, _CAP["number_conflict"]),
            days,
            sums[:, Segment.OUTLET] / pairs,
            np.log(np.minimum(pairs, _MAX_PAIRS)),
        ]
    )


def _lead_named(plus_lead: Overlap, lead: Overlap, whole: Overlap) -> Overlap:
    """How much of each side's lead (names or numbers) the other side gives anywhere, the two
    directions averaged: half of (a's lead with b's text + b's lead with a's text), from the
    overlaps of the ``NAMES_PLUS_LEAD`` (or numbers') segment less those of the lead and whole
    segments (floats, or arrays over pairs). Sums that add up when groups merge cannot keep the
    two directions apart; on labelled pairs their average separated stories as well as the two
    directions did (ROC AUC on ECB+ pairs 0.899 both)."""
    return (plus_lead - lead - whole) / 2


def _conflicts(shared: np.ndarray, total_a: np.ndarray, total_b: np.ndarray) -> np.ndarray:
    """``_conflict`` of many pairs."""
    both = (total_a > 0) & (total_b > 0)
    safe_a, safe_b = np.where(both, total_a, 1.0), np.where(both, total_b, 1.0)
    share = np.minimum(1 - shared / safe_a, 1 - shared / safe_b)
    return np.where(both, np.maximum(0.0, share), 0.0)


def _conflict(shared: float, total_a: float, total_b: float) -> float:
    """The smaller share of either side's names (or numbers) that the other side lacks, summed
    over pairs (``total_*``: each side's weight summed over all pairs): 1 when the two name
    entirely different people or places, 0 when one says nothing or merely says more."""
    if total_a <= 0 or total_b <= 0:
        return 0.0
    return max(0.0, min(1 - shared / total_a, 1 - shared / total_b))


def inner_features(g: Members, batch: BatchText, sums: CrossSums | None = None) -> np.ndarray:
    """The signals averaged over the pairs of items within one group (of at least two);
    ``sums``: the group's ``CrossSums`` with itself, if known."""
    n = g.size
    pairs = n * (n - 1)  # ordered pairs: each unordered pair counted from both ends
    # a group against itself sums over all ordered pairs, each item with itself included
    if sums is None:
        sums = tuple(batch.matrix.pair_sums([g.indexes], [g.indexes])[0].tolist())
    # the overlaps of the items with themselves left out (each item names its own lead)
    others = (np.asarray(sums) - g.totals).tolist()
    shared_lead = _lead_named(*(others[s] for s in _NAMED))
    missing_lead = (n - 1) * g.lead_total - shared_lead
    shared_lead_numbers = _lead_named(*(others[s] for s in _GIVEN))
    missing_numbers = (n - 1) * g.lead_number_total - shared_lead_numbers
    gap = _widest_gap([batch.items[i].day for i in g.indexes])
    return np.array(
        _values(
            (float(g.vector_sum @ g.vector_sum) - n) / pairs,
            g.richness_sum / n,
            others[Segment.WORDS] / pairs,
            others[Segment.NAMES] / pairs,
            _share_missing(shared_lead, missing_lead) * _both(g.with_lead_names, n),
            others[Segment.NUMBERS] / pairs,
            _share_missing(shared_lead_numbers, missing_numbers) * _both(g.with_lead_numbers, n),
            gap,
            gap > 0.0,
            others[Segment.OUTLET] / pairs,
            pairs / 2,
        )
    )


def _widest_gap(days: Sequence[float]) -> float:
    """The longest time (days) between two consecutive known times of a group: the ``days_apart``
    its two sides would have had, had the merge pass built the group by joining them there."""
    known = sorted(d for d in days if not math.isnan(d))
    return max((b - a for a, b in pairwise(known)), default=0.0)


def _share_missing(shared: float, missing: float) -> float:
    return missing / (shared + missing) if shared + missing > 0 else 0.0


def _both(having: int, n: int) -> float:
    """The share of pairs within a group of ``n`` in which both items have something."""
    return having * (having - 1) / (n * (n - 1))


def _values(
    cosine: float,
    full_text: float,
    shared_words: float,
    shared_names: float,
    name_conflict: float,
    shared_numbers: float,
    number_conflict: float,
    gap_days: float,
    time_known: bool,
    same_outlet: float,
    pairs: float,
) -> list[float]:
    return [
        cosine,
        cosine * full_text,
        full_text,
        max(0.0, shared_words),
        min(shared_names, _CAP["shared_names"]),
        min(max(0.0, name_conflict), _CAP["name_conflict"]),
        min(shared_numbers, _CAP["shared_numbers"]),
        min(max(0.0, number_conflict), _CAP["number_conflict"]),
        math.sqrt(min(max(0.0, gap_days - 1.0), 3650)) if time_known else 0.0,
        same_outlet,
        math.log(min(pairs, _MAX_PAIRS)),
    ]
