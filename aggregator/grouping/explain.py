"""Why items share a story, and why a close neighbour does not: the evidence model, read back.

``pair_evidence`` scores two sets of items (a story, an item) and names what spoke for and against
joining them; ``explain_stories`` gives each item of a grouping a short reason it belongs and each
story the reason its closest other story stayed apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aggregator.grouping.evidence import FEATURES, EvidenceModel, members, pair_features
from aggregator.grouping.graph import knn_graph, normalise
from aggregator.grouping.text import BatchText, batch_text
from aggregator.models import Item

# Partners compared per item when choosing the one that best explains its place in a story.
_PARTNERS = 3
_SHOWN_NAMES = 3


@dataclass(frozen=True)
class Signal:
    name: str  # one of evidence.FEATURES
    value: float
    contribution: float  # weight x value: what it adds to the log-odds


@dataclass(frozen=True)
class PairEvidence:
    """The evidence that two sets of items report one story."""

    probability: float
    merge_probability: float  # the threshold the grouping uses
    signals: tuple[Signal, ...]
    shared_names: tuple[str, ...]
    names_only_a: tuple[str, ...]  # lead names one side has and the other lacks
    names_only_b: tuple[str, ...]
    numbers_only_a: tuple[str, ...]
    numbers_only_b: tuple[str, ...]
    days_apart: float | None

    @property
    def joins(self) -> bool:
        return self.probability >= self.merge_probability

    def value(self, name: str) -> float:
        return next(s.value for s in self.signals if s.name == name)

    def reason_for(self, partner: str = "") -> str:
        """E.g. ``0.82 similar to the Herald item, shares Okafor, Riverside``."""
        parts = [f"{self.value('cosine'):.2f} similar" + (f" to {partner}" if partner else "")]
        if self.shared_names:
            parts.append("shares " + ", ".join(self.shared_names[:_SHOWN_NAMES]))
        return ", ".join(parts)

    def reason_against(self) -> str:
        """E.g. ``different names: Perth / Leeds``; the strongest evidence against first."""
        reasons = []
        for signal in sorted(self.signals, key=lambda s: s.contribution):
            if signal.contribution >= 0:
                break
            text = self._against(signal.name)
            if text and text not in reasons:
                reasons.append(text)
        if not reasons or not any(r.startswith("different") or "apart" in r for r in reasons):
            reasons.append(f"only {self.value('cosine'):.2f} similar")
        return "; ".join(reasons[:2])

    def _against(self, name: str) -> str:
        if name == "name_conflict" and self.names_only_a and self.names_only_b:
            return f"different names: {_few(self.names_only_a)} / {_few(self.names_only_b)}"
        if name == "number_conflict" and self.numbers_only_a and self.numbers_only_b:
            return f"different numbers: {_few(self.numbers_only_a)} / {_few(self.numbers_only_b)}"
        if name == "days_apart" and self.days_apart is not None:
            return f"{self.days_apart:.0f} days apart"
        if name == "same_outlet":
            return "same outlet"
        return ""


def _few(values: Sequence[str]) -> str:
    return ", ".join(values[:2])


def pair_evidence(
    side_a: Sequence[int],
    side_b: Sequence[int],
    unit: np.ndarray,
    batch: BatchText,
    model: EvidenceModel,
) -> PairEvidence:
    """The evidence that the items at ``side_a`` and those at ``side_b`` report one story."""
    a, b = members(side_a, unit, batch), members(side_b, unit, batch)
    features = pair_features(a, b, batch)
    score = model.score(features)
    signals = tuple(
        Signal(name, float(value), float(weight * value))
        for name, value, weight in zip(FEATURES, features, model.weights, strict=True)
    )
    known = a.first != math.inf and b.first != math.inf
    weight = batch.name_weight

    def union(indexes: Sequence[int], field: str) -> set[str]:
        return {v for i in indexes for v in getattr(batch.items[i], field)}

    names_a, names_b = union(side_a, "names"), union(side_b, "names")
    numbers_a, numbers_b = union(side_a, "numbers"), union(side_b, "numbers")
    return PairEvidence(
        probability=1 / (1 + math.exp(-score)),
        merge_probability=model.merge_probability,
        signals=signals,
        shared_names=_by_weight(names_a & names_b, weight),
        names_only_a=_by_weight(union(side_a, "lead_names") - names_b, weight),
        names_only_b=_by_weight(union(side_b, "lead_names") - names_a, weight),
        numbers_only_a=tuple(sorted(numbers_a - numbers_b)),
        numbers_only_b=tuple(sorted(numbers_b - numbers_a)),
        days_apart=max(0.0, max(a.first, b.first) - min(a.last, b.last)) if known else None,
    )


def _by_weight(names: set[str], weight: Mapping[str, float]) -> tuple[str, ...]:
    """Display forms, rarest (most telling) first."""
    ordered = sorted(names, key=lambda n: (-weight.get(n, 0.0), n))
    return tuple(n.title() for n in ordered)


def compare(
    items: Sequence[Item],
    vectors: np.ndarray,
    side_a: Sequence[int],
    side_b: Sequence[int],
    model: EvidenceModel,
) -> PairEvidence:
    """The evidence that the items at ``side_a`` and those at ``side_b`` report one story
    (names and rarity are read from ``items`` as one batch)."""
    return pair_evidence(side_a, side_b, normalise(vectors), batch_text(items), model)


@dataclass(frozen=True)
class StoryReasons:
    why: list[str]  # per item: why it belongs to its story ("" for a story of one)
    why_not: dict[int, str]  # label -> why its closest other story stayed apart


def explain_stories(
    items: Sequence[Item],
    vectors: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    model: EvidenceModel,
    copy_of: Mapping[int, int] = {},
) -> StoryReasons:
    """Reasons for a grouping: ``copy_of`` maps item id -> id of the item it copies."""
    unit = normalise(vectors)
    batch = batch_text(items)
    stories: dict[int, list[int]] = {}
    for i, label in enumerate(np.asarray(labels).tolist()):
        stories.setdefault(label, []).append(i)
    index_of = {item.id: i for i, item in enumerate(items)}
    why = [""] * len(items)
    for indexes in stories.values():
        if len(indexes) == 1:
            continue
        for i in indexes:
            source = copy_of.get(items[i].id)
            if source is not None and source in index_of:
                why[i] = f"copy of the {items[index_of[source]].outlet or 'earlier'} item"
            else:
                why[i] = _best_partner_reason(i, indexes, unit, batch, items, model)
    return StoryReasons(why, _why_not(stories, unit, batch, model))


def _best_partner_reason(
    i: int,
    indexes: list[int],
    unit: np.ndarray,
    batch: BatchText,
    items: Sequence[Item],
    model: EvidenceModel,
) -> str:
    """The evidence with the story member that most supports item ``i`` (among its closest)."""
    others = np.array([j for j in indexes if j != i])
    closest = others[np.argsort(-(unit[others] @ unit[i]), kind="stable")[:_PARTNERS]]
    scored = [(pair_evidence([i], [int(j)], unit, batch, model), int(j)) for j in closest]
    best, partner = max(scored, key=lambda pair: (pair[0].probability, -pair[1]))
    outlet = items[partner].outlet
    return best.reason_for(f"the {outlet} item" if outlet else "")


def _why_not(
    stories: dict[int, list[int]], unit: np.ndarray, batch: BatchText, model: EvidenceModel
) -> dict[int, str]:
    """For each story, why the nearest other story (by centroid) stayed apart."""
    labels = list(stories)
    if len(labels) < 2:
        return {}
    centroids = normalise(np.stack([unit[stories[label]].mean(axis=0) for label in labels]))
    graph = knn_graph(centroids, 1, floor=0.2)
    reasons = {}
    for s, t in zip(graph.sources.tolist(), graph.targets.tolist(), strict=True):
        evidence = pair_evidence(stories[labels[s]], stories[labels[t]], unit, batch, model)
        reasons[labels[s]] = f"{evidence.reason_against()} (p={evidence.probability:.2f})"
    return reasons
