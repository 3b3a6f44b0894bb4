"""The "same event" evidence model: a few named signals per pair of groups, and fitted weights.

Every signal is an average over the pairs of items across two groups (a single item is a group of
one), computed from per-group sums, so a group's score against another costs a few dictionary
look-ups however large the groups are:

- ``cosine``: embedding similarity; ``cosine_x_full_text`` lets it mean more for items with a
  full summary than for two headlines (``full_text``: how much summary the pair has);
- ``shared_words``: TF-IDF cosine of content words (rare words weigh more);
- ``shared_names``: names (people, places, organisations) both sides mention, rare ones weighing
  more; ``name_conflict``: the share of names each side mentions that the other lacks (the
  smaller of the two directions, so one side merely saying more is no conflict): two quakes in
  different places;
- ``shared_numbers`` / ``number_conflict``: the same for numbers of the leads (scores,
  magnitudes, amounts, years);
- ``days_apart``: log of 1 + the days between the groups' known times beyond the first day
  (unknown times count as close: only the dated training file has times, so a "time unknown"
  signal would learn which file a pair came from, not whether it is one story);
- ``same_outlet``: one outlet rarely publishes one event twice;
- ``group_size``: log of the number of pairs averaged (an average over many pairs is surer).

A logistic regression (scikit-learn) fitted on labelled pairs turns them into a probability;
``benchmarks/fit_evidence.py`` fits the weights shipped in ``evidence_weights.json``.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aggregator.grouping.text import BatchText

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
# Caps keep every signal bounded, so that a pair's best possible score follows from its cosine
# (the merge pass skips pairs that cannot reach the threshold without computing the rest).
_MAX_PAIRS = 10_000
_CAP = {"shared_names": 3.0, "name_conflict": 1.0, "shared_numbers": 3.0, "number_conflict": 1.0}
_MAX = {
    "shared_words": 1.0,
    "days_apart": math.log1p(3650),
    "same_outlet": 1.0,
    "group_size": math.log(_MAX_PAIRS),
    **_CAP,
}
WEIGHTS_FILE = Path(__file__).with_name("evidence_weights.json")


@dataclass(frozen=True)
class EvidenceModel:
    """Logistic weights over ``FEATURES`` and the probability from which groups merge."""

    weights: tuple[float, ...]
    bias: float
    merge_probability: float

    @property
    def threshold(self) -> float:
        """``merge_probability`` as a logit."""
        p = min(max(self.merge_probability, 1e-9), 1 - 1e-9)
        return math.log(p / (1 - p))

    def score(self, features: np.ndarray) -> float:
        """Log-odds that the two sides report one story."""
        return float(np.dot(self.weights, features)) + self.bias

    def best_case(self, cosine: np.ndarray, full_text: np.ndarray) -> np.ndarray:
        """The highest score pairs with these cosines and richness could reach."""
        w = dict(zip(FEATURES, self.weights, strict=True))
        rest = sum(max(0.0, w[name] * top) for name, top in _MAX.items())
        return (
            self.bias
            + w["cosine"] * cosine
            + (w["cosine_x_full_text"] * cosine + w["full_text"]) * full_text
            + rest
        )

    def with_probability(self, probability: float | None) -> EvidenceModel:
        if probability is None:
            return self
        return EvidenceModel(self.weights, self.bias, probability)


@functools.cache
def shipped_model() -> EvidenceModel:
    """The fitted weights shipped with the package."""
    data = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{WEIGHTS_FILE.name} was fitted on other features; refit it")
    return EvidenceModel(tuple(data["weights"]), data["bias"], data["merge_probability"])


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
    """Sums over a group's items, enough to average any signal over pairs across two groups."""

    size: int
    vector_sum: np.ndarray
    richness_sum: float
    first: float  # earliest known time (days), +inf when none is known
    last: float  # latest known time (days), -inf when none is known
    terms: Counter[str] = field(default_factory=Counter)
    with_terms: int = 0  # members with any content word (each contributes a unit vector)
    names: Counter[str] = field(default_factory=Counter)
    lead_names: Counter[str] = field(default_factory=Counter)
    with_lead_names: int = 0
    numbers: Counter[str] = field(default_factory=Counter)
    with_numbers: int = 0
    outlets: Counter[str] = field(default_factory=Counter)

    def absorb(self, other: Members) -> None:
        self.size += other.size
        self.vector_sum = self.vector_sum + other.vector_sum
        self.richness_sum += other.richness_sum
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        self.terms.update(other.terms)
        self.with_terms += other.with_terms
        self.names.update(other.names)
        self.lead_names.update(other.lead_names)
        self.with_lead_names += other.with_lead_names
        self.with_numbers += other.with_numbers
        self.numbers.update(other.numbers)
        self.outlets.update(other.outlets)


def members(indexes: Sequence[int], unit: np.ndarray, batch: BatchText) -> Members:
    group = _one(indexes[0], unit, batch)
    for i in indexes[1:]:
        group.absorb(_one(i, unit, batch))
    return group


def _one(i: int, unit: np.ndarray, batch: BatchText) -> Members:
    text = batch.items[i]
    known = not math.isnan(text.day)
    return Members(
        size=1,
        vector_sum=unit[i].astype(np.float64),
        richness_sum=text.richness,
        first=text.day if known else math.inf,
        last=text.day if known else -math.inf,
        terms=Counter(text.terms),
        with_terms=1 if text.terms else 0,
        names=Counter(text.names),
        lead_names=Counter(text.lead_names),
        with_lead_names=1 if text.lead_names else 0,
        with_numbers=1 if text.numbers else 0,
        numbers=Counter(text.numbers),
        outlets=Counter([text.outlet] if text.outlet else []),
    )


def _dot(a: Counter[str], b: Counter[str], weight: dict[str, float] | None = None) -> float:
    if len(a) > len(b):
        a, b = b, a
    if weight is None:
        return float(sum(v * b[k] for k, v in a.items() if k in b))
    return float(sum(weight[k] * v * b[k] for k, v in a.items() if k in b))


def _total(counts: Counter[str], weight: dict[str, float] | None = None) -> float:
    if weight is None:
        return float(sum(counts.values()))
    return float(sum(weight[k] * v for k, v in counts.items()))


def pair_features(a: Members, b: Members, name_weight: dict[str, float]) -> np.ndarray:
    """The signals of ``FEATURES``, averaged over the pairs of items across ``a`` and ``b``."""
    pairs = a.size * b.size
    cosine = float(a.vector_sum @ b.vector_sum) / pairs
    full_text = (a.richness_sum / a.size + b.richness_sum / b.size) / 2
    shared_names = _dot(a.names, b.names, name_weight)
    shared_lead = _dot(a.lead_names, b.lead_names, name_weight)
    # a conflict needs both sides to name someone (or give a number): weigh the share of names
    # missing by the share of pairs in which both items have any
    name_conflict = _conflict(
        shared_lead,
        a.size * _total(b.lead_names, name_weight),
        b.size * _total(a.lead_names, name_weight),
    ) * (a.with_lead_names * b.with_lead_names / pairs)
    shared_numbers = _dot(a.numbers, b.numbers)
    number_conflict = _conflict(
        shared_numbers, a.size * _total(b.numbers), b.size * _total(a.numbers)
    ) * (a.with_numbers * b.with_numbers / pairs)
    known = a.first != math.inf and b.first != math.inf
    gap = max(0.0, max(a.first, b.first) - min(a.last, b.last)) if known else 0.0
    return _vector(
        cosine,
        full_text,
        _dot(a.terms, b.terms) / pairs,
        shared_names / pairs,
        name_conflict,
        shared_numbers / pairs,
        number_conflict,
        gap,
        known,
        _dot(a.outlets, b.outlets) / pairs,
        pairs,
    )


def _conflict(shared: float, total_a: float, total_b: float) -> float:
    """The smaller share of either side's names (or numbers) that the other side lacks, summed
    over pairs (``total_*``: each side's weight summed over all pairs): 1 when the two name
    entirely different people or places, 0 when one says nothing or merely says more."""
    if total_a <= 0 or total_b <= 0:
        return 0.0
    return max(0.0, min(1 - shared / total_a, 1 - shared / total_b))


def inner_features(g: Members, name_weight: dict[str, float]) -> np.ndarray:
    """The signals averaged over the pairs of items within one group (of at least two)."""
    n = g.size
    pairs = n * (n - 1)  # ordered pairs: each unordered pair counted from both ends

    def within(counts: Counter[str], weight: dict[str, float] | None) -> tuple[float, float]:
        """(shared, missing) summed over ordered pairs of members."""
        w = weight or {}
        shared = sum(w.get(k, 1.0) * c * (c - 1) for k, c in counts.items())
        missing = sum(w.get(k, 1.0) * c * (n - c) for k, c in counts.items())
        return shared, missing

    names = within(g.names, name_weight)
    lead = within(g.lead_names, name_weight)
    numbers = within(g.numbers, None)
    outlets = within(g.outlets, None)
    known = g.first != math.inf
    return _vector(
        (float(g.vector_sum @ g.vector_sum) - n) / pairs,
        g.richness_sum / n,
        (_dot(g.terms, g.terms) - g.with_terms) / pairs,
        names[0] / pairs,
        _conflict(lead[0], sum(lead), sum(lead)) * _both(g.with_lead_names, n),
        numbers[0] / pairs,
        _conflict(numbers[0], sum(numbers), sum(numbers)) * _both(g.with_numbers, n),
        0.0,
        known,
        outlets[0] / pairs,
        pairs / 2,
    )


def _both(having: int, n: int) -> float:
    """The share of pairs within a group of ``n`` in which both items have something."""
    return having * (having - 1) / (n * (n - 1))


def _vector(
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
) -> np.ndarray:
    return np.array(
        [
            cosine,
            cosine * full_text,
            full_text,
            max(0.0, shared_words),
            min(shared_names, _CAP["shared_names"]),
            min(max(0.0, name_conflict), _CAP["name_conflict"]),
            min(shared_numbers, _CAP["shared_numbers"]),
            min(max(0.0, number_conflict), _CAP["number_conflict"]),
            math.log1p(min(max(0.0, gap_days - 1.0), 3650)) if time_known else 0.0,
            same_outlet,
            math.log(min(pairs, _MAX_PAIRS)),
        ]
    )
