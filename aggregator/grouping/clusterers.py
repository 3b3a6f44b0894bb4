"""Density clusterers: the first stage, which finds tight fragments (HDBSCAN by default)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.sparse import csr_matrix

from aggregator.grouping.graph import NeighbourGraph

CLUSTERERS = ("knn-hdbscan", "hdbscan", "none")


class Clusterer(Protocol):
    """Finds dense fragments; returns one label per row, -1 for noise."""

    def fit_predict(self, vectors: np.ndarray, graph: NeighbourGraph) -> np.ndarray: ...


@dataclass(frozen=True)
class KnnHdbscanClusterer:
    """HDBSCAN on the k-nearest-neighbour graph (a sparse distance matrix) instead of all pairs.

    With ``min_samples`` this small the core distances and the leaf clusters only depend on close
    neighbours, so the graph gives the same fragments as the full computation, without its cost.
    """

    min_cluster_size: int = 2
    min_samples: int = 1
    selection: str = "leaf"

    def fit_predict(self, vectors: np.ndarray, graph: NeighbourGraph) -> np.ndarray:
        n = len(vectors)
        if n <= max(self.min_cluster_size, 2) or graph.max_degree < self.min_samples:
            return np.full(n, -1)
        from sklearn.cluster import HDBSCAN

        model = HDBSCAN(
            metric="precomputed",
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,  # a sparse row holds no self-distance: same as hdbscan's
            cluster_selection_method=self.selection,
            copy=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # infinite MST edges between components
            matrix = _pad_rows(_distance_graph(graph, n), self.min_samples)
            return np.asarray(model.fit_predict(matrix))


def _distance_graph(graph: NeighbourGraph, n: int) -> csr_matrix:
    """Symmetric sparse euclidean distances of unit vectors along the graph's edges, with the
    components chained by maximal-distance edges (HDBSCAN needs one connected graph)."""
    from scipy.sparse import csgraph

    # a tiny offset keeps exact duplicates (distance 0) from vanishing as sparse zeros
    similarities = graph.similarities.astype(np.float64)
    distances = np.sqrt(np.maximum(2.0 - 2.0 * similarities, 0.0)) + 1e-9
    matrix = csr_matrix((distances, (graph.sources, graph.targets)), shape=(n, n))
    matrix = matrix.maximum(matrix.T).tocsr()
    count, component = csgraph.connected_components(matrix, directed=False)
    if count > 1:
        _, firsts = np.unique(component, return_index=True)
        firsts = np.sort(firsts)
        bridge = csr_matrix((np.full(count - 1, 2.0), (firsts[:-1], firsts[1:])), shape=(n, n))
        matrix = (matrix + bridge + bridge.T).tocsr()
    matrix.sort_indices()
    return matrix


def _pad_rows(matrix: csr_matrix, least: int) -> csr_matrix:
    """Give every row at least ``least`` entries (HDBSCAN needs ``min_samples`` distances per
    point) by adding maximal distances to following rows: a lonely point stays lonely."""
    n = matrix.shape[0]
    short = np.flatnonzero(np.diff(matrix.indptr) < least)
    if len(short) == 0 or n <= least:
        return matrix
    rows: list[int] = []
    cols: list[int] = []
    for i in short.tolist():
        present = set(matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]].tolist())
        step = 1
        while len(present) < least:
            j = (i + step) % n
            if j not in present:
                present.add(j)
                rows += [i, j]
                cols += [j, i]
            step += 1
    pad = csr_matrix((np.full(len(rows), 2.0), (rows, cols)), shape=(n, n))
    padded = (matrix + pad).tocsr()
    padded.data = np.minimum(padded.data, 2.0)  # a pair padded from both ends sums to 4
    padded.sort_indices()
    return padded


@dataclass(frozen=True)
class HdbscanClusterer:
    """The hdbscan library on the full vectors (exact, but slow beyond a few thousand items)."""

    min_cluster_size: int = 2
    min_samples: int = 1
    selection: str = "leaf"

    def fit_predict(self, vectors: np.ndarray, graph: NeighbourGraph) -> np.ndarray:
        if len(vectors) <= max(self.min_cluster_size, 2):
            return np.full(len(vectors), -1)
        import hdbscan

        model = hdbscan.HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            cluster_selection_method=self.selection,
            metric="euclidean",  # on unit vectors: the same order as cosine
            core_dist_n_jobs=1,
        )
        return np.asarray(model.fit_predict(vectors.astype(np.float64)))


class NoClusterer:
    """Every item starts as its own fragment (the merge pass does all the work)."""

    def fit_predict(self, vectors: np.ndarray, graph: NeighbourGraph) -> np.ndarray:
        return np.full(len(vectors), -1)


def make_clusterer(name: str, min_cluster_size: int, min_samples: int) -> Clusterer:
    """The clusterer ``name`` (one of ``CLUSTERERS``), with ``leaf`` selection: ``eom`` collapses
    news into giant clusters."""
    if name == "none":
        return NoClusterer()
    if name == "hdbscan":
        return HdbscanClusterer(min_cluster_size, min_samples)
    if name == "knn-hdbscan":
        return KnnHdbscanClusterer(min_cluster_size, min_samples)
    raise ValueError(f"unknown clusterer {name!r}; choose one of {CLUSTERERS}")
