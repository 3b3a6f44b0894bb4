"""Joining items into stories: near-duplicate copies, then an average-link merge pass in which
every merge must pass the evidence model's absolute test."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from aggregator.grouping.evidence import (
    STATS,
    EvidenceModel,
    Members,
    feature_rows,
    members_of_groups,
    stats_of,
)
from aggregator.grouping.graph import NeighbourGraph
from aggregator.grouping.text import SEGMENTS, BatchText, SummedRow, add_rows, jaccard


class DisjointSets:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


# ---------------------------------------------------------------- near duplicates


DUPLICATE_MIN_COSINE = 0.75  # near-identical texts embed far closer than this


def near_duplicate_pairs(
    sets: Sequence[frozenset[str]], threshold: float, graph: NeighbourGraph
) -> list[tuple[int, int]]:
    """Pairs of items whose shingle sets have a Jaccard of at least ``threshold``.

    Identical shingle sets are matched by hashing; other candidates are the close neighbour-graph
    edges, since near-identical texts get near-identical vectors.
    """
    if threshold > 1:  # disabled
        return []
    pairs: list[tuple[int, int]] = []
    first_with: dict[frozenset[str], int] = {}
    for i, shingle_set in enumerate(sets):
        if shingle_set:
            first = first_with.setdefault(shingle_set, i)
            if first != i:
                pairs.append((first, i))
    close = graph.similarities >= DUPLICATE_MIN_COSINE
    for a, b in zip(graph.sources[close].tolist(), graph.targets[close].tolist(), strict=True):
        if a < b and sets[a] != sets[b] and jaccard(sets[a], sets[b]) >= threshold:
            pairs.append((a, b))
    return pairs


class Merger:
    """Average-link agglomeration along kNN-graph edges: the pair of neighbouring groups with the
    highest evidence merges first, until no pair's evidence clears the model's threshold.

    Every signal is an average of sums over the item pairs across two groups, so, as in the
    Lance-Williams update of average linkage, the sums of a merged group against a neighbour are
    the sums of its two parts (a part that never neighboured it is compared with it anew), and
    each merge scores the new group against all its neighbours in one vectorised step.
    """

    def __init__(self, unit: np.ndarray, batch: BatchText, model: EvidenceModel) -> None:
        self.unit = unit
        self.batch = batch
        self.model = model
        self.threshold = model.threshold
        self.groups: dict[int, Members] = {}
        self.items: dict[int, list[int]] = {}
        self.neighbours: dict[int, set[int]] = {}
        self.heap: list[tuple[float, int, int]] = []
        # the CrossSums of each neighbouring pair (low, high): its row of one growing array
        self._sum_row: dict[tuple[int, int], int] = {}
        self._sums = np.zeros((1024, SEGMENTS))
        self._stored = 0
        # each group's vector sum and statistics in rows of arrays (a group gives its row to
        # the group it is merged into)
        self._row: dict[int, int] = {}
        self._vectors = np.zeros((len(unit), unit.shape[1]))
        self._stats = np.zeros((len(unit), len(STATS)))
        # each group's text rows summed: a merged group's sums with a neighbour its part never
        # met come from one product of two summed rows, not from every pair of their items
        self._summed: dict[int, SummedRow] = {}

    def add(self, groups: dict[int, list[int]]) -> None:
        """Start from these groups (id -> item indexes)."""
        found = members_of_groups(list(groups.values()), self.unit, self.batch)
        start = len(self._row)
        for row, (gid, indexes, g) in enumerate(
            zip(groups, groups.values(), found, strict=True), start
        ):
            self.groups[gid] = g
            self.items[gid] = indexes
            self.neighbours[gid] = set()
            self._row[gid] = row
        rows = slice(start, start + len(found))
        self._vectors[rows] = [g.vector_sum for g in found]
        self._stats[rows] = [stats_of(g) for g in found]
        summed = self.batch.matrix.summed_rows(list(groups.values()))
        self._summed.update(zip(groups, summed, strict=True))

    def _set_row(self, gid: int, row: int) -> None:
        g = self.groups[gid]
        self._row[gid] = row
        self._vectors[row] = g.vector_sum
        self._stats[row] = stats_of(g)

    def connect(self, a: int, b: int) -> None:
        if a != b:
            self.neighbours[a].add(b)
            self.neighbours[b].add(a)

    def _compute_sums(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        """The ``CrossSums`` of many pairs of groups at once (pairs x 5)."""
        found = [np.zeros((0, SEGMENTS))]
        for start in range(0, len(pairs), 16384):  # bounded memory
            chunk = pairs[start : start + 16384]
            left = [self.groups[a].indexes for a, _ in chunk]
            right = [self.groups[b].indexes for _, b in chunk]
            found.append(self.batch.matrix.pair_sums(left, right))
        return np.concatenate(found)

    def _store(self, pairs: list[tuple[int, int]], sums: np.ndarray) -> None:
        """Keep the sums of neighbouring pairs, each given as (low, high)."""
        end = self._stored + len(pairs)
        if end > len(self._sums):
            grown = np.zeros((max(end, 2 * len(self._sums)), SEGMENTS))
            grown[: self._stored] = self._sums[: self._stored]
            self._sums = grown
        self._sums[self._stored : end] = sums
        self._sum_row.update(zip(pairs, range(self._stored, end), strict=True))
        self._stored = end

    def _push_scored(self, pairs: list[tuple[int, int]], sums: np.ndarray) -> None:
        """Score pairs of current groups (with their sums) and queue those above the threshold."""
        if not pairs:
            return
        rows_a = np.array([self._row[a] for a, _ in pairs], dtype=np.int64)
        rows_b = np.array([self._row[b] for _, b in pairs], dtype=np.int64)
        dots = np.einsum("ij,ij->i", self._vectors[rows_a], self._vectors[rows_b])
        features = feature_rows(self._stats[rows_a], self._stats[rows_b], dots, sums)
        scores = self.model.scores(features)
        passing = np.flatnonzero(scores >= self.threshold)
        for k, score in zip(passing.tolist(), scores[passing].tolist(), strict=True):
            a, b = pairs[k]
            heapq.heappush(self.heap, (-score, min(a, b), max(a, b)))

    def run(self, pairs: list[tuple[int, int]]) -> list[list[int]]:
        """Merge until no neighbouring pair clears the threshold; ``pairs``: every neighbouring
        pair once as ``a < b``, sorted."""
        for start in range(0, len(pairs), 16384):
            chunk = pairs[start : start + 16384]
            sums = self._compute_sums(chunk)
            self._store(chunk, sums)
            self._push_scored(chunk, sums)
        next_id = max(self.groups, default=-1) + 1
        while self.heap:
            _, a, b = heapq.heappop(self.heap)
            if a not in self.groups or b not in self.groups:
                continue  # one side was merged already; its successor has its own entries
            if self.accept(a, b):
                self._merge(a, b, next_id)
                next_id += 1
        return list(self.items.values())

    def accept(self, a: int, b: int) -> bool:
        """Whether the best pair left merges (it does: it cleared the threshold)."""
        return True

    def _merge(self, a: int, b: int, new: int) -> None:
        neighbours = (self.neighbours.pop(a) | self.neighbours.pop(b)) - {a, b}
        others = sorted(neighbours)
        # the new group's sums against each neighbour, from its parts' (before they merge)
        parts = [(part, x) for x in others for part in (a, b)]
        rows = np.fromiter(
            (self._sum_row.pop((p, x) if p < x else (x, p), -1) for p, x in parts),
            dtype=np.int64,
            count=len(parts),
        )
        filled = self._sums[rows]
        missing = np.flatnonzero(rows < 0)
        if len(missing):
            for part in (a, b):
                of_part = [k for k in missing.tolist() if parts[k][0] == part]
                filled[of_part] = self.batch.matrix.row_overlaps(
                    self._summed[part], [self._summed[parts[k][1]] for k in of_part]
                )
        merged = filled[0::2] + filled[1::2]
        self._sum_row.pop((min(a, b), max(a, b)), None)
        ga, gb = self.groups.pop(a), self.groups.pop(b)
        big, small = (ga, gb) if ga.size >= gb.size else (gb, ga)
        big.absorb(small)  # grow the larger group in place: merging stays cheap for big stories
        self.groups[new] = big
        self.items[new] = self.items.pop(a) + self.items.pop(b)
        self.neighbours[new] = neighbours
        self._summed[new] = add_rows(self._summed.pop(a), self._summed.pop(b))
        rows = self._row.pop(a), self._row.pop(b)
        self._set_row(new, rows[0] if big is ga else rows[1])
        for x in others:
            other = self.neighbours[x]
            other.discard(a)
            other.discard(b)
            other.add(new)
        new_pairs = [(x, new) for x in others]  # new is the highest id yet
        self._store(new_pairs, merged)
        self._push_scored(new_pairs, merged)
