"""Group items that report the same story.

Pipeline (each stage a small function; the density clusterer is swappable):

1. ``embedding_text`` decides what gets embedded: the cleaned title plus the start of the summary.
2. A k-nearest-neighbour graph (cosine, exact up to 10,000 items, then an approximate
   PCA + k-means-cell search) is built once; no stage ever holds an N x N matrix.
3. A ``Clusterer`` (HDBSCAN over that graph by default, ``leaf`` selection) finds tight, dense
   fragments; everything else starts as a singleton.
4. A near-duplicate pass joins syndicated copies: identical word-shingle sets by hashing, close
   graph edges by exact shingle Jaccard.
5. A merge pass runs average-link agglomeration over fragments, singletons and duplicate groups,
   along the graph's edges only. Two groups merge when their average cosine clears a threshold
   that rises with how much text the items carry (headline-only vectors of one story are less
   alike than title + summary vectors), unless each group has common names (people, places,
   organisations) the other never mentions (two events of one kind), and only as copies when
   their known publication times are far apart.
6. Groups are numbered 0..k-1 by their first item, so the same input gives the same labels.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Protocol

import numpy as np
from scipy.sparse import csr_matrix

from aggregator.models import Item

# Items whose time is unknown (e.g. a labelled file without dates) carry this timestamp;
# grouping then ignores time for them.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)

# Characters of the summary embedded after the title (~150 tokens with it). The lede carries the
# who/where/when that tells two similar events apart: 300 or 450 characters measured worse on
# ECB+. An embedder that keeps only 112 tokens drops the tail, which costs little.
EMBED_SUMMARY_CHARS = 600

CLUSTERERS = ("knn-hdbscan", "hdbscan", "none")


@dataclass(frozen=True)
class GroupingParams:
    """Knobs of the story grouping; exposed as the ``grouping:`` mapping in feeds.yaml."""

    min_cluster_size: int = 2
    """HDBSCAN ``min_cluster_size``: the smallest dense fragment."""

    min_samples: int = 1
    """HDBSCAN ``min_samples`` (hdbscan-library convention); above 2 breaks up small duplicate groups."""

    cluster_selection: str = "leaf"
    """HDBSCAN cluster selection, ``leaf`` or ``eom`` (``eom`` collapses news into giant clusters)."""

    clusterer: str = "knn-hdbscan"
    """Density clusterer: ``knn-hdbscan`` (HDBSCAN over the k-nearest-neighbour graph: the same
    fragments as ``hdbscan`` here, and fast at 50,000 items), ``hdbscan`` (the hdbscan library on
    the full vectors; slow above a few thousand items) or ``none`` (every item starts alone)."""

    neighbors: int = 10
    """Neighbours per item in the k-nearest-neighbour graph that HDBSCAN and the merge pass walk."""

    min_similarity: float = 0.25
    """Items less similar than this (cosine) are never neighbours: no merge needs such pairs, and
    leaving them out keeps the neighbour search fast."""

    merge_threshold_headline: float = 0.30
    """Average cosine two groups of headline-only items need to merge."""

    merge_threshold_full: float = 0.55
    """Average cosine two groups of items with a full summary need to merge (interpolated in between)."""

    full_summary_words: int = 20
    """A summary this long (in words) counts as full text for ``merge_threshold_full``."""

    name_check_richness: float = 0.5
    """From this share of full-summary items on, two groups that each have a name (person, place,
    organisation) most of their members mention, but the other group never does, do not merge."""

    name_conflict_share: float = 0.3
    """The share of a group's common names the other group must lack (both ways) to block a merge."""

    max_gap_days: float = 4.0
    """Groups whose known publication times are further apart than this merge only as copies
    (see ``late_copy_similarity``); unknown times never keep groups apart."""

    late_copy_similarity: float = 0.8
    """Average cosine from which groups further apart than ``max_gap_days`` still merge: a story
    republished (or spun) weeks later belongs with the original coverage."""

    duplicate_jaccard: float = 0.7
    """Word-shingle Jaccard from which two items are near-duplicates (joined regardless of vectors)."""

    shingle_words: int = 3
    """Words per shingle for near-duplicate detection."""

    def __post_init__(self) -> None:
        problems = [
            message
            for failed, message in (
                (self.clusterer not in CLUSTERERS, f"clusterer must be one of {CLUSTERERS}"),
                (self.cluster_selection not in ("leaf", "eom"), "cluster_selection: leaf or eom"),
                (self.min_cluster_size < 2, "min_cluster_size must be at least 2"),
                (self.min_samples < 1, "min_samples must be at least 1"),
                (self.neighbors < 1, "neighbors must be at least 1"),
                (self.full_summary_words < 1, "full_summary_words must be at least 1"),
                (self.shingle_words < 1, "shingle_words must be at least 1"),
                (self.max_gap_days < 0, "max_gap_days must not be negative"),
                (not 0 <= self.name_conflict_share <= 1, "name_conflict_share: 0 to 1"),
            )
            if failed
        ]
        if problems:
            raise ValueError("; ".join(problems))


# ---------------------------------------------------------------- text

_TAG = re.compile(r"<[^>]+>")
_TRAILING_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*$")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def clean_text(text: str) -> str:
    """Plain, single-spaced text: strips tags, normalises Unicode and a trailing ellipsis."""
    text = unicodedata.normalize("NFKC", text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    text = " ".join(text.split())  # str.split() and re's \s agree on what is whitespace
    if text.endswith(("...", "…")):  # nothing else can match the anchored pattern
        text = _TRAILING_ELLIPSIS.sub("", text)
    return text


def embedding_text(title: str, summary: str) -> str:
    """What the embedder sees for one item: the title, then the start of the summary.

    A summary that merely repeats the title (some feeds do) is not repeated.
    """
    return _join_parts(*_clean_parts(title, summary))


def _clean_parts(title: str, summary: str) -> tuple[str, str]:
    """Cleaned title, and the cleaned summary without a repeated title, cut to the embedded length."""
    return _trim_summary(clean_text(title), clean_text(summary))


def _trim_summary(title: str, summary: str) -> tuple[str, str]:
    """Of a cleaned title and summary: the summary without a repeated title, cut to length."""
    if summary.lower().startswith(title.lower()):
        summary = summary[len(title) :].lstrip(" .:-")
    return title, _cut_at_word(summary, EMBED_SUMMARY_CHARS)


def _join_parts(title: str, summary: str) -> str:
    if not summary:
        return title
    if not title:
        return summary
    separator = " " if title[-1] in ".!?:" else ". "
    return title + separator + summary


def _cut_at_word(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


def words(text: str) -> list[str]:
    """Lower-case word tokens of already clean text."""
    return _WORD.findall(text.lower().replace("’", "'"))


def shingles(text: str, size: int = 3) -> frozenset[str]:
    """Word n-grams of a text; a text shorter than ``size`` words is one shingle."""
    return _shingles(words(clean_text(text)), size)


def _shingles(tokens: Sequence[str], size: int) -> frozenset[str]:
    if len(tokens) <= size:
        return frozenset([" ".join(tokens)]) if tokens else frozenset()
    return frozenset(" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1))


def shingle_keys(tokens: Sequence[str], size: int) -> frozenset[tuple[str, ...]]:
    """``_shingles`` as word tuples: the same equalities and overlaps (words hold no spaces),
    without building a string per shingle."""
    if len(tokens) <= size:
        return frozenset([tuple(tokens)]) if tokens else frozenset()
    return frozenset(zip(*(tokens[i:] for i in range(size)), strict=False))


def shingle_sets(token_lists: Sequence[Sequence[str]], size: int) -> list[frozenset]:
    """``_shingles`` of many token lists at once, each shingle coded as one integer: its words'
    numbers (1, 2, ...) as the digits of a base-(vocabulary + 1) number. The coding is one-to-one
    (a text of fewer than ``size`` words has fewer digits), so the sets compare, hash and overlap
    exactly as the shingle strings would; only sets of one call are comparable."""
    numbers = {w: i for i, w in enumerate(dict.fromkeys(chain.from_iterable(token_lists)), 1)}
    base = len(numbers) + 1
    if base**size >= 2**63:  # too many distinct words to code in 64 bits
        return [shingle_keys(t, size) for t in token_lists]
    flat = np.fromiter(map(numbers.__getitem__, chain.from_iterable(token_lists)), dtype=np.int64)
    padded = np.concatenate([flat, np.zeros(size, dtype=np.int64)])
    codes = np.zeros(len(flat), dtype=np.int64)
    for j in range(size):  # windows that run past a text's end are never read
        codes = codes * base + padded[j : j + len(flat)]
    code_list = codes.tolist()
    sets: list[frozenset] = []
    start = 0
    for tokens in token_lists:
        length = len(tokens)
        if length > size:
            sets.append(frozenset(code_list[start : start + length - size + 1]))
        elif length:
            code = 0
            for w in tokens:
                code = code * base + numbers[w]
            sets.append(frozenset([code]))
        else:
            sets.append(frozenset())
        start += length
    return sets


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


# ---------------------------------------------------------------- density clustering


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


def make_clusterer(params: GroupingParams) -> Clusterer:
    if params.clusterer == "none":
        return NoClusterer()
    if params.clusterer == "hdbscan":
        return HdbscanClusterer(
            params.min_cluster_size, params.min_samples, params.cluster_selection
        )
    if params.clusterer == "knn-hdbscan":
        return KnnHdbscanClusterer(
            params.min_cluster_size, params.min_samples, params.cluster_selection
        )
    raise ValueError(f"unknown clusterer {params.clusterer!r}; choose one of {CLUSTERERS}")


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------- union-find


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


# ---------------------------------------------------------------- k-nearest-neighbour graph


# Above this many items the neighbour search is approximate, to stay fast around 50,000 items:
# it runs on a PCA projection and compares each item only with the items of nearby k-means cells
# (an inverted-file index). Exact cosines are then recomputed for the candidates it finds.
APPROXIMATE_ABOVE_ITEMS = 10_000
PROJECTION_DIMS = 96
_PROJECTION_SLACK = 0.05  # projected cosines err by a few hundredths; look a little wider
_CELL_PROBES = 12  # cells searched per cell (its own and the nearest others)
_KMEANS_ROUNDS = 6
_QUERY_BLOCK = 512


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
    exact = np.concatenate(  # in chunks: gathering all pairs' vectors at once costs gigabytes
        [
            np.einsum("ij,ij->i", vectors[sources[i : i + 65536]], vectors[targets[i : i + 65536]])
            for i in range(0, len(sources), 65536)
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
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, search)
        filled = np.linalg.norm(sums, axis=1) > 0
        centroids[filled] = normalise(sums[filled])
    return centroids, assignment


def _neighbours_among(
    search: np.ndarray, queries: np.ndarray, pool: np.ndarray | None, floor: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``k`` nearest of ``pool`` (None: every row) for each query row."""
    scores = search[queries] @ (search if pool is None else search[pool]).T
    pool_ids = np.arange(len(search)) if pool is None else pool
    r, c = np.nonzero(scores >= floor)
    values = scores[r, c]
    own = queries[r] == pool_ids[c]  # not its own neighbour
    r, c, values = r[~own], c[~own], values[~own]
    # In dense regions (a big story, a busy topic) a row has hundreds of candidates; raise its
    # cut-off as far as it can go while keeping k, so that little is left to sort.
    cutoff = np.full(len(queries), floor, dtype=values.dtype)
    for level in _CUTOFF_LADDER:
        if level > floor:
            enough = np.bincount(r[values >= level], minlength=len(queries)) >= k
            if not enough.any():
                break
            cutoff[enough] = level
    keep = values >= cutoff[r]
    return _top_k(queries[r[keep]], pool_ids[c[keep]], values[keep], floor, k)


_CUTOFF_LADDER = (0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95)


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


# ---------------------------------------------------------------- names (a light NER)

_SENTENCE_END = re.compile(r"[.!?]['\"’”)]*\s+")
_LOWER_WORD = re.compile(r"\b[a-z][a-z]+\b")
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z’'-]*[a-zA-Z]")
_NOT_NAMES = frozenset(
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "mr",
        "mrs",
        "ms",
        "dr",
        "sir",
        "am",
        "pm",
    ]
)


def name_vocabulary(clean_summaries: Iterable[str]) -> frozenset[str]:
    """Lower-cased words the batch writes with a capital inside sentences and seldom in lower case:
    mostly people, places and organisations. Sentence-initial words and title-case headlines are
    no evidence, so only summaries count."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    # Searching all summaries at once finds what searching their sentences one by one would: the
    # NUL that joins them belongs to no pattern, no pattern matches inside a sentence end, and the
    # characters around both are no word characters; so only where sentences start is needed.
    summaries = list(clean_summaries)
    text = "\0".join(summaries)
    starts = {0}
    offset = 0
    for summary in summaries:
        starts.add(offset)
        offset += len(summary) + 1
    starts.update(m.end() for m in _SENTENCE_END.finditer(text))
    capital_words = [m.group() for m in _CAPITALISED.finditer(text) if m.start() not in starts]
    # words never span a space, so the words of all matches at once are each match's words
    capitalised = Counter(w[:-2] if w.endswith("'s") else w for w in words(" ".join(capital_words)))
    lower = Counter(_LOWER_WORD.findall(text))
    return frozenset(
        w
        for w, n in capitalised.items()
        if n >= 2 * lower[w] and w not in ENGLISH_STOP_WORDS and w not in _NOT_NAMES
    )


def names_in(tokens: Iterable[str], vocabulary: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in map(_base_form, tokens) if w in vocabulary)


def _names_of(tokens: list[str], vocabulary: frozenset[str], possessive: bool) -> frozenset[str]:
    """``names_in`` by set operations; ``possessive``: some token may end in ``'s``."""
    found = vocabulary.intersection(tokens)
    if not possessive:
        return found
    bases = [w[:-2] for w in tokens if w.endswith("'s")]
    if not bases:
        return found
    return frozenset(w for w in found if not w.endswith("'s")) | vocabulary.intersection(bases)


def _base_form(word: str) -> str:
    """``palin's`` -> ``palin``: a name is the same name in the possessive."""
    return word[:-2] if word.endswith("'s") else word


# ---------------------------------------------------------------- average-link merge pass


@dataclass
class _Group:
    members: list[int]
    vector_sum: np.ndarray
    richness_sum: float
    first: float  # earliest known time (days), +inf when none is known
    last: float  # latest known time (days), -inf when none is known
    names: Counter[str]  # name -> how many members mention it
    neighbours: set[int]
    _salient: frozenset[str] | None = None

    @property
    def salient_names(self) -> frozenset[str]:
        """Names at least half of the members, and at least two, mention."""
        if self._salient is None:
            need = max(2, math.ceil(len(self.members) / 2))
            self._salient = frozenset(n for n, count in self.names.items() if count >= need)
        return self._salient

    def absorb(self, other: _Group) -> None:
        self.members.extend(other.members)
        self.vector_sum = self.vector_sum + other.vector_sum
        self.richness_sum += other.richness_sum
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        self.names.update(other.names)
        self._salient = None


# The rough margins (float64 sums of float32 products) differ from the exact ones (float32 dot
# products, rounding error below 1e-4 for these vectors) by far less than this: a pair skipped
# for a rough margin below minus this has a negative exact margin, and would not be pushed.
_ROUGH_SLACK = 1e-3


class _Merger:
    """Average-link agglomeration restricted to kNN-graph edges; groups keep vector sums, so the
    average cosine between two groups is one dot product."""

    def __init__(
        self,
        vectors: np.ndarray,
        richness: np.ndarray,
        days: np.ndarray,
        names: Sequence[frozenset[str]],
        params: GroupingParams,
    ) -> None:
        self.vectors = vectors
        self.richness = richness
        self.days = days
        self.names = names
        self.params = params
        self.groups: dict[int, _Group] = {}
        self.heap: list[tuple[float, int, int]] = []
        # the constants ``margin`` needs, read once (it runs for every edge and every merge)
        self._headline = params.merge_threshold_headline
        self._span = params.merge_threshold_full - params.merge_threshold_headline
        self._late = params.late_copy_similarity
        self._gap = params.max_gap_days
        self._name_richness = params.name_check_richness
        self._name_share = params.name_conflict_share
        # for rough margins: each group's vector sum, size and richness sum in rows of arrays
        # (a group gives its row to the group it is merged into)
        self._row: dict[int, int] = {}
        self._sums = np.zeros((len(vectors), vectors.shape[1]))
        self._sizes = np.zeros(len(vectors))
        self._rich = np.zeros(len(vectors))

    def add(self, gid: int, members: list[int]) -> None:
        known = [self.days[m] for m in members if not math.isnan(self.days[m])]
        self.groups[gid] = _Group(
            members=members,
            vector_sum=self.vectors[members].sum(axis=0),
            richness_sum=float(self.richness[members].sum()),
            first=min(known, default=math.inf),
            last=max(known, default=-math.inf),
            names=Counter(name for m in members for name in self.names[m]),
            neighbours=set(),
        )
        self._set_row(gid, len(self._row))

    def _set_row(self, gid: int, row: int) -> None:
        g = self.groups[gid]
        self._row[gid] = row
        self._sums[row] = g.vector_sum
        self._sizes[row] = len(g.members)
        self._rich[row] = g.richness_sum

    def connect(self, a: int, b: int) -> None:
        if a != b:
            self.groups[a].neighbours.add(b)
            self.groups[b].neighbours.add(a)

    def margin(self, a: int, b: int) -> float:
        """How far the pair clears its merge threshold (negative: it does not)."""
        groups = self.groups
        ga, gb = groups[a], groups[b]
        na, nb = len(ga.members), len(gb.members)
        # each side counts alike: a big headline-only group must not pull full-text items in at
        # the lower headline threshold
        richness = (ga.richness_sum / na + gb.richness_sum / nb) / 2
        threshold = self._headline + richness * self._span
        # too far apart (only when both times are known): merge only as copies
        if (
            ga.first != math.inf
            and gb.first != math.inf
            and max(ga.first, gb.first) - min(ga.last, gb.last) > self._gap
        ):
            threshold = max(threshold, self._late)
        margin = float(ga.vector_sum @ gb.vector_sum) / (na * nb) - threshold
        if (
            margin >= 0
            and richness >= self._name_richness
            and _names_conflict(ga, gb, self._name_share)
        ):
            return -math.inf
        return margin

    def push(self, a: int, b: int) -> None:
        m = self.margin(a, b)
        if m >= 0:
            heapq.heappush(self.heap, (-m, min(a, b), max(a, b)))

    def _rough_margins(self, rows_a: np.ndarray, rows_b: np.ndarray) -> list[float]:
        """``margin`` of many pairs at once, to within ``_ROUGH_SLACK``, before the time and name
        checks (which only ever lower it): pairs far below zero need no exact ``margin``."""
        sums_b = self._sums[rows_b]
        if rows_a.ndim:
            dots = np.einsum("ij,ij->i", self._sums[rows_a], sums_b)
        else:
            dots = sums_b @ self._sums[rows_a]
        sizes_a, sizes_b = self._sizes[rows_a], self._sizes[rows_b]
        rich = (self._rich[rows_a] / sizes_a + self._rich[rows_b] / sizes_b) / 2
        return (dots / (sizes_a * sizes_b) - (self._headline + rich * self._span)).tolist()

    def _push_first(self, pairs: list[tuple[int, int]] | None) -> None:
        """``push`` every neighbouring pair (``pairs``: all of them, sorted, each as ``a < b``),
        in order, skipping pairs roughly far below zero."""
        if pairs is None:
            pairs = [
                (a, b)
                for a in sorted(self.groups)
                for b in sorted(self.groups[a].neighbours)
                if a < b
            ]
        row = self._row
        for start in range(0, len(pairs), 16384):  # bounded memory
            chunk = pairs[start : start + 16384]
            rough = self._rough_margins(
                np.array([row[a] for a, _ in chunk]), np.array([row[b] for _, b in chunk])
            )
            for (a, b), m in zip(chunk, rough, strict=True):
                if m >= -_ROUGH_SLACK:
                    self.push(a, b)

    def _push_new(self, new: int, others: list[int]) -> None:
        """``push(new, x)`` for each of ``others``, in order, skipping pairs roughly far below zero."""
        if len(others) < 8:  # not worth the arrays
            for x in others:
                self.push(new, x)
            return
        row = self._row
        rough = self._rough_margins(np.array(row[new]), np.array([row[x] for x in others]))
        for x, m in zip(others, rough, strict=True):
            if m >= -_ROUGH_SLACK:
                self.push(new, x)

    def run(self, pairs: list[tuple[int, int]] | None = None) -> list[list[int]]:
        """Merge until no pair clears its threshold; ``pairs``: the neighbouring pairs, if known
        (each once as ``a < b``, sorted)."""
        self._push_first(pairs)
        next_id = max(self.groups, default=-1) + 1
        while self.heap:
            _, a, b = heapq.heappop(self.heap)
            if a not in self.groups or b not in self.groups:
                continue  # one side was merged already; its successor has its own entries
            self._merge(a, b, next_id)
            next_id += 1
        return [g.members for g in self.groups.values()]

    def _merge(self, a: int, b: int, new: int) -> None:
        ga, gb = self.groups.pop(a), self.groups.pop(b)
        big, small = (ga, gb) if len(ga.members) >= len(gb.members) else (gb, ga)
        big.absorb(small)  # grow the larger group in place: merging stays cheap for big stories
        big.neighbours = (ga.neighbours | gb.neighbours) - {a, b}
        self.groups[new] = big
        rows = self._row.pop(a), self._row.pop(b)
        self._set_row(new, rows[0] if big is ga else rows[1])
        others = sorted(big.neighbours)
        for x in others:
            other = self.groups[x].neighbours
            other.discard(a)
            other.discard(b)
            other.add(new)
        self._push_new(new, others)  # margins need no neighbour sets: the same pushes as inline


def _names_conflict(a: _Group, b: _Group, share: float) -> bool:
    """Most names that most members of each group mention are missing from the other group: two
    events of one kind (two earthquakes, two rehab check-ins) with different people or places."""
    return _missing_share(a.salient_names, b.names) >= share and (
        _missing_share(b.salient_names, a.names) >= share
    )


def _missing_share(salient: frozenset[str], other: Counter[str]) -> float:
    if not salient:
        return 0.0
    return sum(n not in other for n in salient) / len(salient)


def words_without_stopwords(text: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [w for w in words(clean_text(text)) if w not in ENGLISH_STOP_WORDS and len(w) > 1]


# ---------------------------------------------------------------- entry point


def group(
    items: Sequence[Item],
    vectors: np.ndarray,
    params: GroupingParams = GroupingParams(),
    *,
    clusterer: Clusterer | None = None,
) -> np.ndarray:
    """One story label per item (0..k-1, numbered by each story's first item).

    ``clusterer`` replaces the density clustering that ``params.clusterer`` names.
    """
    n = len(items)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if len(vectors) != n:
        raise ValueError(f"{n} items but {len(vectors)} vectors")
    unit = normalise(vectors)
    # the text features of each item, computed once: cleaned title and summary, the summary as
    # embedded, its words (with whether any may be a possessive), word shingles and names
    clean_summaries = [clean_text(i.summary) for i in items]
    parts = [
        _trim_summary(clean_text(i.title), summary)
        for i, summary in zip(items, clean_summaries, strict=True)
    ]
    lowered = [_join_parts(title, summary).lower().replace("’", "'") for title, summary in parts]
    tokens = [_WORD.findall(text) for text in lowered]

    from threadpoolctl import threadpool_limits

    # many small or medium products: BLAS threads mostly wait on each other, worse on a busy host
    # (measured 2.4 s with one thread against 7.0 s with two for 20,000 items)
    with threadpool_limits(1, user_api="blas"):
        graph = knn_graph(unit, params.neighbors, params.min_similarity)
    sets = DisjointSets(n)
    _join_fragments(sets, (clusterer or make_clusterer(params)).fit_predict(unit, graph))
    shingled = shingle_sets(tokens, params.shingle_words)
    for a, b in near_duplicate_pairs(shingled, params.duplicate_jaccard, graph):
        sets.union(a, b)

    vocabulary = name_vocabulary(clean_summaries)
    merger = _Merger(
        unit,
        _richness([summary for _, summary in parts], params.full_summary_words),
        _days(items),
        [_names_of(t, vocabulary, "'s" in text) for t, text in zip(tokens, lowered, strict=True)],
        params,
    )
    group_of = [sets.find(i) for i in range(n)]
    for root, members in _members_by_root(group_of).items():
        merger.add(root, members)
    # each pair of neighbouring groups once, as (lower, higher), sorted: the order ``run`` needs
    roots = np.asarray(group_of, dtype=np.int64)
    a, b = roots[graph.sources], roots[graph.targets]
    low, high = np.minimum(a, b), np.maximum(a, b)
    codes = np.unique(low[low != high] * n + high[low != high])
    pairs = list(zip((codes // n).tolist(), (codes % n).tolist(), strict=True))
    for i, j in pairs:
        merger.connect(i, j)
    return _number(merger.run(pairs), n)


def _join_fragments(sets: DisjointSets, labels: np.ndarray) -> None:
    first_of: dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        if label >= 0:
            sets.union(first_of.setdefault(label, i), i)


def _members_by_root(group_of: Iterable[int]) -> dict[int, list[int]]:
    members: dict[int, list[int]] = {}
    for i, root in enumerate(group_of):
        members.setdefault(root, []).append(i)
    return members


def _richness(clean_summaries: Sequence[str], full_words: int) -> np.ndarray:
    """0 for a headline-only item, 1 for one with a full summary."""
    counts = np.array([s.count(" ") + 1 if s else 0 for s in clean_summaries], dtype=np.float64)
    return np.minimum(1.0, counts / max(full_words, 1))


def _days(items: Sequence[Item]) -> np.ndarray:
    """Publication time in days, NaN where unknown."""
    return np.array(
        [
            math.nan if i.published == UNKNOWN_TIME else i.published.timestamp() / 86400
            for i in items
        ]
    )


def _number(groups: Iterable[list[int]], n: int) -> np.ndarray:
    labels = np.empty(n, dtype=np.int64)
    for label, members in enumerate(sorted(groups, key=min)):
        labels[members] = label
    return labels
