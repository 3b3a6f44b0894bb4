"""Joining items into stories: near-duplicate copies, then an average-link merge pass in which
every merge must pass the evidence model's absolute test."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

from aggregator.grouping.evidence import EvidenceModel, Members, members, pair_features
from aggregator.grouping.graph import NeighbourGraph
from aggregator.grouping.text import BatchText, jaccard


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


# The rough scores (from float64 sums of float32 products) differ from the exact ones by far less
# than this: a pair skipped for a rough best case below minus this could never merge.
_ROUGH_SLACK = 1e-3


class Merger:
    """Average-link agglomeration along kNN-graph edges: the pair of neighbouring groups with the
    highest evidence merges first, until no pair's evidence clears the model's threshold."""

    def __init__(self, unit: np.ndarray, batch: BatchText, model: EvidenceModel) -> None:
        self.unit = unit
        self.batch = batch
        self.model = model
        self.threshold = model.threshold
        self.groups: dict[int, Members] = {}
        self.items: dict[int, list[int]] = {}
        self.neighbours: dict[int, set[int]] = {}
        self.heap: list[tuple[float, int, int]] = []
        # rows of arrays for rough best cases: each group's vector sum, size and richness sum
        self._row: dict[int, int] = {}
        self._sums = np.zeros((len(unit), unit.shape[1]))
        self._sizes = np.zeros(len(unit))
        self._rich = np.zeros(len(unit))

    def add(self, gid: int, indexes: list[int]) -> None:
        self.groups[gid] = members(indexes, self.unit, self.batch)
        self.items[gid] = indexes
        self.neighbours[gid] = set()
        self._set_row(gid, len(self._row))

    def _set_row(self, gid: int, row: int) -> None:
        g = self.groups[gid]
        self._row[gid] = row
        self._sums[row] = g.vector_sum
        self._sizes[row] = g.size
        self._rich[row] = g.richness_sum

    def connect(self, a: int, b: int) -> None:
        if a != b:
            self.neighbours[a].add(b)
            self.neighbours[b].add(a)

    def score(self, a: int, b: int) -> float:
        features = pair_features(self.groups[a], self.groups[b], self.batch.name_weight)
        return self.model.score(features)

    def _push(self, a: int, b: int) -> None:
        s = self.score(a, b)
        if s >= self.threshold:
            heapq.heappush(self.heap, (-s, min(a, b), max(a, b)))

    def _hopeful(self, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
        """Which pairs could clear the threshold at best, judged by cosine and richness alone."""
        sums_b = self._sums[rows_b]
        if rows_a.ndim:
            dots = np.einsum("ij,ij->i", self._sums[rows_a], sums_b)
        else:
            dots = sums_b @ self._sums[rows_a]
        sizes_a, sizes_b = self._sizes[rows_a], self._sizes[rows_b]
        rich = (self._rich[rows_a] / sizes_a + self._rich[rows_b] / sizes_b) / 2
        best = self.model.best_case(dots / (sizes_a * sizes_b), rich)
        return best >= self.threshold - _ROUGH_SLACK

    def _push_pairs(self, pairs: list[tuple[int, int]]) -> None:
        row = self._row
        for start in range(0, len(pairs), 16384):  # bounded memory
            chunk = pairs[start : start + 16384]
            hopeful = self._hopeful(
                np.array([row[a] for a, _ in chunk]), np.array([row[b] for _, b in chunk])
            )
            for (a, b), ok in zip(chunk, hopeful.tolist(), strict=True):
                if ok:
                    self._push(a, b)

    def run(self, pairs: list[tuple[int, int]]) -> list[list[int]]:
        """Merge until no neighbouring pair clears the threshold; ``pairs``: every neighbouring
        pair once as ``a < b``, sorted."""
        self._push_pairs(pairs)
        next_id = max(self.groups, default=-1) + 1
        while self.heap:
            _, a, b = heapq.heappop(self.heap)
            if a not in self.groups or b not in self.groups:
                continue  # one side was merged already; its successor has its own entries
            self._merge(a, b, next_id)
            next_id += 1
        return list(self.items.values())

    def _merge(self, a: int, b: int, new: int) -> None:
        ga, gb = self.groups.pop(a), self.groups.pop(b)
        big, small = (ga, gb) if ga.size >= gb.size else (gb, ga)
        big.absorb(small)  # grow the larger group in place: merging stays cheap for big stories
        self.groups[new] = big
        self.items[new] = self.items.pop(a) + self.items.pop(b)
        neighbours = (self.neighbours.pop(a) | self.neighbours.pop(b)) - {a, b}
        self.neighbours[new] = neighbours
        rows = self._row.pop(a), self._row.pop(b)
        self._set_row(new, rows[0] if big is ga else rows[1])
        others = sorted(neighbours)
        for x in others:
            other = self.neighbours[x]
            other.discard(a)
            other.discard(b)
            other.add(new)
        self._push_pairs([(new, x) for x in others])
