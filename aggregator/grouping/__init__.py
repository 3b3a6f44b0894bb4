"""Group items that report the same story.

Stages, one module each:

1. ``text``: what each item says: the embedded text, words, shingles, names, numbers, TF-IDF.
2. ``graph``: a k-nearest-neighbour graph over the unit vectors (exact up to 10,000 items, then
   an approximate PCA + k-means-cell search); no stage ever holds an N x N matrix.
3. ``clusterers``: HDBSCAN over that graph finds dense fragments. A fragment stands only when its
   members pass the evidence test among themselves; otherwise its items start alone.
4. ``merge``: near-duplicates (word-shingle Jaccard) join as copies; then average-link merging
   along graph edges joins the groups whose evidence clears the threshold, best first; last, an
   item left alone joins its likeliest story of three or more at a lower bar, when one of the
   story's members backs it and no other neighbour comes as near; and a member of a story of
   three or more moves to a neighbouring story of two or more whose evidence for it clears the
   merge bar and exceeds its own story's (``rehomed``).
5. ``evidence``: the "same event" score of two groups, a logistic model over a few named signals
   (cosine, shared words, shared and conflicting names and numbers, time apart, same outlet),
   fitted by ``benchmarks/fit_evidence.py``. Every fragment and every merge passes the same
   absolute test: a group's members are close to each other, not just closer than the rest.
6. Groups are numbered 0..k-1 by their first item, so the same input gives the same labels.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from aggregator.grouping.clusterers import CLUSTERERS, Clusterer, make_clusterer
from aggregator.grouping.evidence import EvidenceModel, members, shipped_model
from aggregator.grouping.graph import NeighbourGraph, knn_graph, normalise
from aggregator.grouping.merge import (
    DisjointSets,
    LoneJoin,
    Merger,
    Series,
    group_index,
    near_duplicate_pairs,
    rehomed,
)
from aggregator.grouping.scripts import Centres, centred_by_script
from aggregator.grouping.text import (
    UNKNOWN_TIME,
    BatchText,
    batch_text,
    clean_text,
    embedding_text,
    jaccard,
    shingle_sets,
    words,
)
from aggregator.models import Item

__all__ = [
    "CLUSTERERS",
    "UNKNOWN_TIME",
    "GroupingParams",
    "clean_text",
    "embedding_text",
    "group",
    "group_prepared",
    "jaccard",
    "knn_graph",
    "labels_by_discount",
    "labels_of",
    "normalise",
    "shingle_sets",
    "words",
]

SHINGLE_WORDS = 3


@dataclass(frozen=True)
class GroupingParams:
    """Knobs of the story grouping; exposed as the ``grouping:`` mapping in feeds.yaml."""

    clusterer: str = "knn-hdbscan"
    """Density clusterer: ``knn-hdbscan`` (HDBSCAN over the k-nearest-neighbour graph, fast at
    50,000 items), ``hdbscan`` (the hdbscan library on the full vectors; slow above a few
    thousand items) or ``none`` (every item starts alone)."""

    min_cluster_size: int = 2
    """HDBSCAN ``min_cluster_size``: the smallest dense fragment."""

    min_samples: int = 1
    """HDBSCAN ``min_samples`` (hdbscan-library convention); above 2 breaks up small duplicate groups."""

    neighbors: int = 10
    """Neighbours per item in the k-nearest-neighbour graph that HDBSCAN and the merge pass walk."""

    min_similarity: float = 0.25
    """Items less similar than this (cosine) are never neighbours: no merge needs such pairs, and
    leaving them out keeps the neighbour search fast."""

    merge_probability: float | None = None
    """Evidence (probability of one story) from which groups merge and fragments stand; None:
    the value chosen by cross-validation and shipped with the fitted weights. Lower merges more."""

    duplicate_jaccard: float = 0.7
    """Word-shingle Jaccard from which two items are copies (joined whatever else they say)."""

    def __post_init__(self) -> None:
        problems = [
            message
            for failed, message in (
                (self.clusterer not in CLUSTERERS, f"clusterer must be one of {CLUSTERERS}"),
                (self.min_cluster_size < 2, "min_cluster_size must be at least 2"),
                (self.min_samples < 1, "min_samples must be at least 1"),
                (self.neighbors < 1, "neighbors must be at least 1"),
                (
                    self.merge_probability is not None and not 0 < self.merge_probability < 1,
                    "merge_probability must be between 0 and 1",
                ),
            )
            if failed
        ]
        if problems:
            raise ValueError("; ".join(problems))

    def evidence(self, model: EvidenceModel | None = None) -> EvidenceModel:
        """The evidence model these params use (the shipped one unless given)."""
        return (model or shipped_model()).with_probability(self.merge_probability)


@dataclass(frozen=True)
class Prepared:
    """What the merge pass starts from: unit vectors, text features, the neighbour graph, the
    dense fragments (before their evidence test), the near-duplicate pairs (an outlet's series
    left out) and the series themselves."""

    unit: np.ndarray
    batch: BatchText
    graph: NeighbourGraph
    fragments: list[list[int]]
    duplicates: list[tuple[int, int]]
    series: Series


def prepare(
    items: Sequence[Item],
    vectors: np.ndarray,
    params: GroupingParams,
    clusterer: Clusterer | None = None,
    centres: Centres | None = None,
) -> Prepared:
    if len(vectors) != len(items):
        raise ValueError(f"{len(items)} items but {len(vectors)} vectors")
    unit = centred_by_script(normalise(vectors), items, centres)
    batch = batch_text(items)
    graph = neighbour_graph(unit, params)
    chosen = clusterer or make_clusterer(
        params.clusterer, params.min_cluster_size, params.min_samples
    )
    shingled = shingle_sets([t.tokens for t in batch.items], SHINGLE_WORDS)
    series = Series(batch)
    duplicates = near_duplicate_pairs(shingled, params.duplicate_jaccard, graph)
    return Prepared(
        unit,
        batch,
        graph,
        _without_strangers(
            _fragments(chosen.fit_predict(unit, graph)), unit, params.min_similarity
        ),
        [(a, b) for a, b in duplicates if not series.apart([a], [b])],
        series,
    )


def group(
    items: Sequence[Item],
    vectors: np.ndarray,
    params: GroupingParams = GroupingParams(),
    *,
    clusterer: Clusterer | None = None,
    model: EvidenceModel | None = None,
    centres: Centres | None = None,
) -> np.ndarray:
    """One story label per item (0..k-1, numbered by each story's first item).

    ``clusterer`` replaces the density clustering that ``params.clusterer`` names; ``model``
    replaces the shipped evidence weights (cross-validation fits its own); ``centres``
    (``scripts.script_centres`` of the embedder) is what the texts of each writing system the
    model reads poorly share.
    """
    # the prepared features (millions of small objects) are freed before the cyclic collector
    # runs again, which would otherwise scan them all first (0.3 s for 50,000 items)
    with cyclic_gc_paused():
        return group_prepared(
            items, vectors, params, clusterer=clusterer, model=model, centres=centres
        )[0]


def group_prepared(
    items: Sequence[Item],
    vectors: np.ndarray,
    params: GroupingParams = GroupingParams(),
    *,
    clusterer: Clusterer | None = None,
    model: EvidenceModel | None = None,
    centres: Centres | None = None,
) -> tuple[np.ndarray, Prepared | None]:
    """``group``, with the features it prepared (None for no items), for the stages after it."""
    if len(items) == 0:
        return np.zeros(0, dtype=np.int64), None
    with cyclic_gc_paused():
        prepared = prepare(items, vectors, params, clusterer, centres)
        labels = labels_of(prepared, params.evidence(model))
    return labels, prepared


def labels_of(prepared: Prepared, evidence: EvidenceModel) -> np.ndarray:
    """The story labels of a prepared batch under ``evidence``. Nothing ``prepare`` makes depends
    on the evidence model, so fitting scores many models on one preparation."""
    return labels_by_discount(prepared, evidence, [evidence.lone_discount])[0]


def labels_by_discount(
    prepared: Prepared, evidence: EvidenceModel, discounts: Sequence[float]
) -> list[np.ndarray]:
    """``labels_of`` for each of several ``lone_discount`` values, merging once (for fitting)."""
    merger = Merger(prepared.unit, prepared.batch, evidence, prepared.series)
    merge_pass(prepared, merger)
    joins = merger.lone_joins(max(discounts, default=0.0))
    return [
        _number(
            rehomed(
                _with_lone_joined(
                    merger.items, joins, evidence.with_lone_discount(d), prepared.series
                ),
                prepared.unit,
                prepared.batch,
                prepared.graph,
                evidence,
                prepared.series,
            ),
            len(prepared.unit),
        )
        for d in discounts
    ]


def _with_lone_joined(
    groups: dict[int, list[int]], joins: list[LoneJoin], evidence: EvidenceModel, series: Series
) -> list[list[int]]:
    """The groups, each lone item that clears the lone bar joined to its story."""
    joined = dict(groups)
    for join in joins:
        if join.joins(evidence) and not series.apart(joined[join.story], joined[join.lone]):
            joined[join.story] = joined[join.story] + joined.pop(join.lone)
    return list(joined.values())


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Grouping allocates millions of small objects (word sets, tuples) that form no cycles; the
    cyclic collector's repeated passes over them cost a quarter of the time and free nothing.
    Reference counting still frees everything; the collector runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def merge_pass(
    prepared: Prepared,
    merger: Merger,
    fragment_stands: Callable[[list[int]], bool] | None = None,
) -> list[list[int]]:
    """Fragments that pass the evidence test (or ``fragment_stands``) and copies join; then the
    merge pass joins groups along the graph's edges. Returns the groups' item indexes."""
    n = len(prepared.unit)
    if fragment_stands is None:
        standing = _coherent(prepared.fragments, prepared.unit, prepared.batch, merger.model)
        standing = [
            stands and not prepared.series.within(fragment)
            for fragment, stands in zip(prepared.fragments, standing, strict=True)
        ]
    else:
        standing = [fragment_stands(f) for f in prepared.fragments]
    sets = DisjointSets(n)
    for fragment, stands in zip(prepared.fragments, standing, strict=True):
        if stands:
            for i in fragment[1:]:
                sets.union(fragment[0], i)
    _join_copies(sets, prepared.duplicates, prepared.series, n)
    group_of = [sets.find(i) for i in range(n)]
    merger.add(_members_by_root(group_of))
    pairs = _neighbouring_groups(np.asarray(group_of, dtype=np.int64), prepared.graph, n)
    return merger.run(pairs)


def _join_copies(
    sets: DisjointSets, duplicates: list[tuple[int, int]], series: Series, n: int
) -> None:
    """Join each pair of near duplicates, unless their groups hold posts of one outlet's series
    days apart or of one template with other names: each pair was let through alone, but a
    chain of copies (posts at 0 h, 12 h and 24 h; a mirror's copy of a quake and another quake
    of its template) would join its ends."""
    if not series.parts_any:
        for a, b in duplicates:
            sets.union(a, b)
        return
    held = _members_by_root(sets.find(i) for i in range(n))
    for a, b in duplicates:
        ra, rb = sets.find(a), sets.find(b)
        if ra != rb and not series.apart(held[ra], held[rb]):
            sets.union(ra, rb)
            root = sets.find(ra)
            held[root] = held.pop(ra) + held.pop(rb)


def neighbour_graph(unit: np.ndarray, params: GroupingParams) -> NeighbourGraph:
    from threadpoolctl import threadpool_limits

    # many small or medium products: BLAS threads mostly wait on each other, worse on a busy host
    # (measured 2.4 s with one thread against 7.0 s with two for 20,000 items)
    with threadpool_limits(1, user_api="blas"):
        return knn_graph(unit, params.neighbors, params.min_similarity)


def _fragments(labels: np.ndarray) -> list[list[int]]:
    by_label: dict[int, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        if label >= 0:
            by_label.setdefault(label, []).append(i)
    return [m for m in by_label.values() if len(m) > 1]


def _without_strangers(
    fragments: list[list[int]], unit: np.ndarray, min_similarity: float
) -> list[list[int]]:
    """Each fragment without its members that are less than ``min_similarity`` similar to every
    other member: HDBSCAN keeps in a cluster the points that fell out of it as it shrank, so
    on a small or sparse day an unrelated item rides along with a tight group (a bakery prize
    in a fragment of three reports of one election) and the group's average carries it through
    the evidence test. Such an item is no neighbour of any member; the merge pass may still
    join it on its own evidence. A fragment left with one member is none."""
    kept = []
    for fragment in fragments:
        similarities = unit[fragment] @ unit[fragment].T
        np.fill_diagonal(similarities, -np.inf)
        near = similarities.max(axis=1) >= min_similarity
        members = [i for i, keep in zip(fragment, near.tolist(), strict=True) if keep]
        if len(members) > 1:
            kept.append(members)
    return kept


def _coherent(
    fragments: list[list[int]], unit: np.ndarray, batch: BatchText, evidence: EvidenceModel
) -> list[bool]:
    """Whether each dense fragment's members pass the evidence test among themselves."""
    sums = batch.matrix.pair_sums(fragments, fragments).tolist() if fragments else []
    return [
        evidence.holds_together(members(f, unit, batch), batch, tuple(s))
        for f, s in zip(fragments, sums, strict=True)
    ]


def _neighbouring_groups(roots: np.ndarray, graph: NeighbourGraph, n: int) -> list[tuple[int, int]]:
    """Each pair of groups joined by a graph edge once, as (lower, higher), sorted."""
    a, b = roots[graph.sources], roots[graph.targets]
    low, high = np.minimum(a, b), np.maximum(a, b)
    # sorted, then each code's first: np.unique's hashing took 0.15-0.3 s for 50,000 items
    codes = np.sort(low[low != high] * n + high[low != high])
    codes = codes[np.diff(codes, prepend=-1) != 0]  # codes are >= 0: the first one stays
    return list(zip((codes // n).tolist(), (codes % n).tolist(), strict=True))


def _members_by_root(group_of: Iterable[int]) -> dict[int, list[int]]:
    members_of: dict[int, list[int]] = {}
    for i, root in enumerate(group_of):
        members_of.setdefault(root, []).append(i)
    return members_of


def _number(groups: Iterable[list[int]], n: int) -> np.ndarray:
    return group_index(sorted(groups, key=min), n)
