"""Group items that report the same story.

Pipeline (each stage is a small function, the density clustering is swappable):

1. ``embedding_text`` decides what gets embedded: the cleaned title plus the start of the summary.
2. A ``Clusterer`` (HDBSCAN by default) finds tight, dense fragments; everything else is noise.
3. A near-duplicate pass (MinHash over word shingles) joins syndicated wire copies.
4. A merge pass runs average-link agglomeration over fragments, noise points and duplicate
   groups, but only along the edges of a k-nearest-neighbour graph (no N x N matrix). Two groups
   merge when their average cosine clears a threshold that depends on how much text the items
   carry (headline-only vectors are less similar than title + summary vectors of one story), when
   they share enough rare words (hard negatives share the event kind but not the names), and when
   their publication times are close.
5. Groups are numbered 0..k-1 by their first item, so the same input gives the same labels.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
from scipy.sparse import csr_matrix

from aggregator.models import Item

# Items whose time is unknown (e.g. a labelled file without dates) carry this timestamp;
# grouping then ignores time for them.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)

# Characters of the summary embedded after the title: about 128 tokens in all, what the production
# embedder keeps; the lede carries the who/where/when that tells two similar events apart.
EMBED_SUMMARY_CHARS = 600


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
    """Groups whose known publication times are further apart than this never merge."""

    duplicate_jaccard: float = 0.7
    """Word-shingle Jaccard from which two items are near-duplicates (joined regardless of vectors)."""

    shingle_words: int = 3
    """Words per shingle for near-duplicate detection."""


# ---------------------------------------------------------------- text

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_TRAILING_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|…)\s*$")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def clean_text(text: str) -> str:
    """Plain, single-spaced text: strips tags, normalises Unicode and a trailing ellipsis."""
    text = unicodedata.normalize("NFKC", text)
    text = _TAG.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    return _TRAILING_ELLIPSIS.sub("", text)


def embedding_text(title: str, summary: str) -> str:
    """What the embedder sees for one item: the title, then the start of the summary.

    A summary that merely repeats the title (some feeds do) is not repeated.
    """
    return _join_parts(*_clean_parts(title, summary))


def _clean_parts(title: str, summary: str) -> tuple[str, str]:
    """Cleaned title, and the cleaned summary without a repeated title, cut to the embedded length."""
    title, summary = clean_text(title), clean_text(summary)
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
            return np.asarray(model.fit_predict(_distance_graph(graph, n)))


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


CLUSTERERS = ("knn-hdbscan", "hdbscan", "none")


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


# Above this many items the neighbour search runs on a PCA projection (exact cosines are then
# recomputed for the candidates it finds): the full 384-d product grows too slow around 50,000.
PROJECT_ABOVE_ITEMS = 10_000
PROJECTION_DIMS = 96
_PROJECTION_SLACK = 0.05  # projected cosines err by a few hundredths; look a little wider


def knn_graph(vectors: np.ndarray, k: int, floor: float = 0.2, block: int = 1024) -> NeighbourGraph:
    """Each row's ``k`` most similar other rows with cosine at least ``floor``.

    Computed block by block (memory ``block x n``, never ``n x n``); pairs below the floor are
    dropped before any sorting, which is what keeps this fast on big inputs.
    """
    n = len(vectors)
    search, slack = vectors, 0.0
    if n > PROJECT_ABOVE_ITEMS and vectors.shape[1] > PROJECTION_DIMS:
        search, slack = project(vectors, PROJECTION_DIMS), _PROJECTION_SLACK
    parts = [
        _block_neighbours(search, start, block, floor - slack, k) for start in range(0, n, block)
    ]
    sources = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    targets = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    if slack:
        exact = np.einsum("ij,ij->i", vectors[sources], vectors[targets])
        sources, targets, similarities = _top_k(sources, targets, exact, floor, k)
    else:
        similarities = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
    return NeighbourGraph(sources, targets, similarities.astype(np.float32))


def _block_neighbours(
    search: np.ndarray, start: int, block: int, floor: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = search[start : start + block] @ search.T
    rows = np.arange(scores.shape[0])
    scores[rows, rows + start] = -np.inf  # not its own neighbour
    # In dense regions (a big story, a busy topic) raise each row's cut-off as far as it can go
    # while keeping k candidates: sorting hundreds of candidates per row is what costs time.
    cutoff = np.full(len(rows), floor, dtype=scores.dtype)
    for level in _CUTOFF_LADDER:
        if level > floor:
            enough = (scores >= level).sum(axis=1) >= k
            if not enough.any():
                break
            cutoff[enough] = level
    r, c = np.nonzero(scores >= cutoff[:, None])
    return _top_k(r + start, c, scores[r, c], floor, k)


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

    capitalised: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for summary in clean_summaries:
        for sentence in _SENTENCE_END.split(summary):
            for match in _CAPITALISED.finditer(sentence):
                if match.start() > 0:
                    capitalised.update(map(_base_form, words(match.group())))
            lower.update(_LOWER_WORD.findall(sentence))
    return frozenset(
        w
        for w, n in capitalised.items()
        if n >= 2 * lower[w] and w not in ENGLISH_STOP_WORDS and w not in _NOT_NAMES
    )


def names_in(tokens: Iterable[str], vocabulary: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in map(_base_form, tokens) if w in vocabulary)


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

    def connect(self, a: int, b: int) -> None:
        if a != b:
            self.groups[a].neighbours.add(b)
            self.groups[b].neighbours.add(a)

    def margin(self, a: int, b: int) -> float:
        """How far the pair clears its merge threshold (negative: it does not)."""
        ga, gb = self.groups[a], self.groups[b]
        if self._too_far_apart(ga, gb):
            return -math.inf
        na, nb = len(ga.members), len(gb.members)
        # each side counts alike: a big headline-only group must not pull full-text items in at
        # the lower headline threshold
        richness = (ga.richness_sum / na + gb.richness_sum / nb) / 2
        if richness >= self.params.name_check_richness and _names_conflict(
            ga, gb, self.params.name_conflict_share
        ):
            return -math.inf
        score = float(ga.vector_sum @ gb.vector_sum) / (na * nb)
        p = self.params
        threshold = p.merge_threshold_headline + richness * (
            p.merge_threshold_full - p.merge_threshold_headline
        )
        return score - threshold

    def _too_far_apart(self, a: _Group, b: _Group) -> bool:
        if math.isinf(a.first) or math.isinf(b.first):
            return False
        gap = max(a.first, b.first) - min(a.last, b.last)
        return gap > self.params.max_gap_days

    def push(self, a: int, b: int) -> None:
        m = self.margin(a, b)
        if m >= 0:
            heapq.heappush(self.heap, (-m, min(a, b), max(a, b)))

    def run(self) -> list[list[int]]:
        for a in sorted(self.groups):
            for b in sorted(self.groups[a].neighbours):
                if a < b:
                    self.push(a, b)
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
        for x in sorted(big.neighbours):
            other = self.groups[x].neighbours
            other.discard(a)
            other.discard(b)
            other.add(new)
            self.push(new, x)


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
    items: Sequence[Item], vectors: np.ndarray, params: GroupingParams = GroupingParams()
) -> np.ndarray:
    """One story label per item (0..k-1, numbered by each story's first item)."""
    n = len(items)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if len(vectors) != n:
        raise ValueError(f"{n} items but {len(vectors)} vectors")
    unit = normalise(vectors)
    parts = [_clean_parts(i.title, i.summary) for i in items]
    tokens = [words(_join_parts(title, summary)) for title, summary in parts]

    graph = knn_graph(unit, params.neighbors, params.min_similarity)
    sets = DisjointSets(n)
    _join_fragments(sets, make_clusterer(params).fit_predict(unit, graph))
    shingle_sets = [_shingles(t, params.shingle_words) for t in tokens]
    for a, b in near_duplicate_pairs(shingle_sets, params.duplicate_jaccard, graph):
        sets.union(a, b)

    vocabulary = name_vocabulary(clean_text(i.summary) for i in items)
    merger = _Merger(
        unit,
        _richness([summary for _, summary in parts], params.full_summary_words),
        _days(items),
        [names_in(t, vocabulary) for t in tokens],
        params,
    )
    group_of = [sets.find(i) for i in range(n)]
    for root, members in _members_by_root(group_of).items():
        merger.add(root, members)
    for i, j in zip(graph.sources.tolist(), graph.targets.tolist(), strict=True):
        merger.connect(group_of[i], group_of[j])
    return _number(merger.run(), n)


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
