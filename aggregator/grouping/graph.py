"""The k-nearest-neighbour graph every later stage walks: no stage ever holds an N x N matrix."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Float32 rows of unit length (the embedder's contract; ``group`` applies it once)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class NeighbourGraph:
    """Edges from each item to its nearest other items (at most k each, none below a floor),
    sorted by source, then by falling similarity."""

    sources: np.ndarray
    targets: np.ndarray
    similarities: np.ndarray

    @property
    def max_degree(self) -> int:
        return int(np.bincount(self.sources).max()) if len(self.sources) else 0


# Above this many items the neighbour search is approximate, to stay fast around 50,000 items:
# it runs on a PCA projection and compares each item only with the items of nearby k-means cells
# (an inverted-file index). Exact cosines are then recomputed for the candidates it finds.
APPROXIMATE_ABOVE_ITEMS = 10_000
PROJECTION_DIMS = 96
_PROJECTION_SLACK = 0.05  # projected cosines err by a few hundredths; look a little wider
_CELL_PROBES = 12  # cells searched per cell (its own and the nearest others)
_KMEANS_ROUNDS = 6
_QUERY_BLOCK = 512
_PAIR_CHUNK = 4096  # candidate pairs whose exact cosines are computed at once


def knn_graph(
    vectors: np.ndarray, k: int, floor: float = 0.2, block: int = _QUERY_BLOCK
) -> NeighbourGraph:
    """Each row's ``k`` most similar other rows with cosine at least ``floor``.

    Exact up to ``APPROXIMATE_ABOVE_ITEMS`` rows, computed block by block (memory ``block x n``,
    never ``n x n``); pairs below the floor are dropped before any sorting.
    """
    n = len(vectors)
    if n <= APPROXIMATE_ABOVE_ITEMS or vectors.shape[1] <= PROJECTION_DIMS:
        everyone = np.arange(n)
        parts = [
            _neighbours_among(vectors, everyone[start : start + block], None, floor, k)
            for start in range(0, n, block)
        ]
        return NeighbourGraph(*_concatenate(parts))
    search = project(vectors, PROJECTION_DIMS)
    parts = [
        _neighbours_among(search, queries, pool, floor - _PROJECTION_SLACK, k)
        for queries, pool in _cell_searches(search)
    ]
    sources, targets, _ = _concatenate(parts)
    # in chunks: gathering all pairs' vectors at once costs gigabytes, and chunks of a few
    # megabytes measured twice as fast as chunks of 100 MB
    exact = np.concatenate(
        [
            np.einsum(
                "ij,ij->i",
                vectors[sources[i : i + _PAIR_CHUNK]],
                vectors[targets[i : i + _PAIR_CHUNK]],
            )
            for i in range(0, len(sources), _PAIR_CHUNK)
        ]
        or [np.zeros(0, np.float32)]
    )
    return NeighbourGraph(*_top_k(sources, targets, exact, floor, k))


def _concatenate(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    sources, targets, similarities = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.argsort(sources, kind="stable")  # cells come in any order; keep rows together
    return sources[order], targets[order], similarities[order].astype(np.float32)


def _cell_searches(search: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(items of a k-means cell, items of the cells nearest to it) for every non-empty cell."""
    cells = max(2, int(math.sqrt(len(search))))
    centroids, assignment = _spherical_kmeans(search, cells)
    order = np.argsort(assignment, kind="stable")
    bounds = np.searchsorted(assignment[order], np.arange(cells + 1))
    members = [order[bounds[c] : bounds[c + 1]] for c in range(cells)]
    probes = min(_CELL_PROBES, cells)
    nearest = np.argsort(-(centroids @ centroids.T), axis=1, kind="stable")[:, :probes]
    for cell in range(cells):
        pool = np.concatenate([members[c] for c in nearest[cell]])
        for start in range(0, len(members[cell]), _QUERY_BLOCK):  # bounds memory in big cells
            yield members[cell][start : start + _QUERY_BLOCK], pool


def _spherical_kmeans(search: np.ndarray, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """A few rounds of k-means on unit vectors, from evenly spaced rows: deterministic."""
    centroids = search[np.linspace(0, len(search) - 1, cells).astype(np.int64)].copy()
    assignment = np.zeros(len(search), dtype=np.int64)
    for _ in range(_KMEANS_ROUNDS):
        assignment = np.concatenate(
            [
                np.argmax(search[i : i + 8192] @ centroids.T, axis=1)
                for i in range(0, len(search), 8192)
            ]
        )
        sums = _cell_sums(search, assignment, cells)
        filled = np.linalg.norm(sums, axis=1) > 0
        centroids[filled] = normalise(sums[filled])
    return centroids, assignment


def _cell_sums(search: np.ndarray, assignment: np.ndarray, cells: int) -> np.ndarray:
    """Each cell's rows summed in row order, as ``np.add.at`` sums them (the same floats), but
    one vectorised step per rank within the cells instead of one per row (3x faster)."""
    order = np.argsort(assignment, kind="stable")
    counts = np.bincount(assignment, minlength=cells)
    starts = np.cumsum(counts) - counts
    sums = np.zeros((cells, search.shape[1]), dtype=search.dtype)
    for rank in range(int(counts.max(initial=0))):
        having = np.flatnonzero(counts > rank)
        sums[having] += search[order[starts[having] + rank]]
    return sums


def _neighbours_among(
    search: np.ndarray, queries: np.ndarray, pool: np.ndarray | None, floor: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``k`` nearest of ``pool`` (None: every row) for each query row."""
    scores = search[queries] @ (search if pool is None else search[pool]).T
    pool_ids = np.arange(len(search)) if pool is None else pool
    scores[np.equal.outer(queries, pool_ids)] = -np.inf  # not its own neighbour
    # In dense regions (a big story, a busy topic) a row has hundreds of candidates above the
    # floor, but only those from its k-th largest score on (ties included) can be among its k
    # nearest: one partition per row leaves little to gather and sort.
    cutoff = np.full(len(queries), floor, dtype=scores.dtype)
    if scores.shape[1] > k:
        np.maximum(cutoff, np.partition(scores, -k, axis=1)[:, -k], out=cutoff)
    r, c = np.nonzero(scores >= cutoff[:, None])
    return _top_k(queries[r], pool_ids[c], scores[r, c], floor, k)


def _top_k(
    sources: np.ndarray, targets: np.ndarray, similarities: np.ndarray, floor: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``k`` edges per source, the most similar (ties: lower target) first."""
    keep = similarities >= floor
    sources, targets, similarities = sources[keep], targets[keep], similarities[keep]
    order = np.lexsort((targets, -similarities, sources))
    sources, targets, similarities = sources[order], targets[order], similarities[order]
    rank = np.arange(len(sources)) - np.searchsorted(sources, sources, side="left")
    keep = rank < k
    return sources[keep].astype(np.int64), targets[keep].astype(np.int64), similarities[keep]


def project(vectors: np.ndarray, dims: int) -> np.ndarray:
    """PCA to ``dims`` dimensions (from the covariance of a deterministic sample), re-normalised."""
    centre = vectors.mean(axis=0)
    sample = (vectors[:: max(1, len(vectors) // 10_000)] - centre).astype(np.float64)
    _, eigenvectors = np.linalg.eigh(sample.T @ sample)  # ascending eigenvalues
    components = eigenvectors[:, ::-1][:, :dims].astype(np.float32)
    return normalise((vectors - centre) @ components)
