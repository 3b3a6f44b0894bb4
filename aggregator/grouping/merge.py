"""Joining items into stories: near-duplicate copies, then an average-link merge pass in which
every merge must pass the evidence model's absolute test."""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, combinations, repeat

import numpy as np

from aggregator.grouping.evidence import (
    FEATURES,
    STATS,
    EvidenceModel,
    Members,
    feature_rows,
    members,
    members_of_groups,
    stats_of,
)
from aggregator.grouping.graph import NeighbourGraph
from aggregator.grouping.text import (
    CALENDAR_WORDS,
    SEGMENTS,
    BatchText,
    SummedRow,
    add_rows,
    jaccard,
    title_template,
    words,
)


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


# ---------------------------------------------------------------- an outlet's series

# One outlet's posts under one title on different days ("Open thread", "Weekly links", "Comic
# for November 30") are a series, not one story: they read alike (often word for word), so no
# signal of the evidence model tells them apart, and the pair data holds no such series to learn
# from. Follow-ups of one event from one outlet carry new titles and are not held apart.
SERIES_MIN_DAYS = 0.75
# An outlet's title template parts its items when this many, and half its items or more, fill it
TEMPLATE_MIN_ITEMS = 3


class Series:
    """Which items are posts of one outlet's series: same outlet, same title once numbers and
    calendar words are left out, published at least ``SERIES_MIN_DAYS`` apart; or items of one
    outlet's title template with other names in it (``title_template``: "M 2.9 - 5 km NE of
    Ridgecrest, CA" and "M 4.0 - 7 km W of Ridgecrest, CA"; "Argyle 4-1 Athletic" and "City 1-2
    Argyle"), any time apart: an automated feed's items of two events share all their words
    but those, and an outlet reports one event under one title."""

    def __init__(self, batch: BatchText) -> None:
        keys: list[tuple[str, str] | None] = []
        templates: list[tuple[str, tuple[str, ...]] | None] = []
        # per item: the names and counts it fills its template with, and whether it is a
        # headline only
        self.filling: list[tuple[tuple[str, ...], tuple[str, ...], bool]] = []
        for text, title in zip(batch.items, batch.titles, strict=True):
            title_words = series_title(title)
            known = text.outlet and title_words and not math.isnan(text.day)
            keys.append((text.outlet, title_words) if known else None)
            template = title_template(title) if text.outlet else None
            templates.append((text.outlet, template[0]) if template else None)
            filled = template[1:] if template else ((), ())
            self.filling.append((*filled, text.richness == 0))
        counts = Counter(k for k in keys if k is not None)
        # only a key two items share can part anything
        self.key = [k if k is not None and counts[k] > 1 else None for k in keys]
        # an automated feed's template: most of its outlet's items fill it (a news outlet's
        # titles of one shape, "Apple unveils iPhone" and "Apple unveils Watch", are a few)
        shared = Counter(t for t in templates if t is not None)
        per_outlet = Counter(text.outlet for text in batch.items if text.outlet)
        self.template = [
            t
            if t is not None
            and shared[t] >= TEMPLATE_MIN_ITEMS
            and 2 * shared[t] >= per_outlet[t[0]]
            else None
            for t in templates
        ]
        self.day = [t.day for t in batch.items]
        self.any = any(k is not None for k in self.key)
        self.any_template = any(t is not None for t in self.template)

    @property
    def parts_any(self) -> bool:
        """Whether any two items of the batch are posts of one series or one template."""
        return self.any or self.any_template

    def apart(self, a: Sequence[int], b: Sequence[int]) -> bool:
        """Whether items ``a`` and items ``b`` hold two posts of one series, days apart, or
        two items of one outlet's title template with other names."""
        return self._days_apart(a, b) or self._sibling(a, b) is not None

    def within(self, group: Sequence[int]) -> bool:
        """Whether one group holds two posts of one series, days apart, or two items of one
        template with other names."""
        if any(max(d) - min(d) >= SERIES_MIN_DAYS for d in self._days(group).values()):
            return True
        return any(
            _other(a, b)
            for filled in self._templates(group).values()
            for a, b in combinations(filled, 2)
        )

    def _days_apart(self, a: Sequence[int], b: Sequence[int]) -> bool:
        days = self._days(a)
        for j in b if days else ():
            theirs = days.get(self.key[j]) if self.key[j] is not None else None
            if theirs and any(abs(d - self.day[j]) >= SERIES_MIN_DAYS for d in theirs):
                return True
        return False

    def _sibling(self, a: Sequence[int], b: Sequence[int]) -> int | None:
        """An item of ``b`` of a template an item of ``a`` fills with other names, if any."""
        filled = self._templates(a)
        for j in b if filled else ():
            theirs = filled.get(self.template[j]) if self.template[j] is not None else None
            if theirs and any(_other(filling, self.filling[j]) for filling in theirs):
                return j
        return None

    def _days(self, group: Sequence[int]) -> dict[tuple[str, str], list[float]]:
        """The publication days of the group's posts of each series."""
        days: dict[tuple[str, str], list[float]] = {}
        if self.any:
            for i in group:
                key = self.key[i]
                if key is not None:
                    days.setdefault(key, []).append(self.day[i])
        return days

    def _templates(self, group: Sequence[int]) -> dict[tuple[str, tuple[str, ...]], set]:
        """The names the group's items fill each shared template with."""
        filled: dict[tuple[str, tuple[str, ...]], set] = {}
        if self.any_template:
            for i in group:
                template = self.template[i]
                if template is not None:
                    filled.setdefault(template, set()).add(self.filling[i])
        return filled

    def describe(
        self, a: Sequence[int], b: Sequence[int], titles: Sequence[str], outlets: Sequence[str]
    ) -> str | None:
        """``another day's post of one series ("Open thread", Blog)`` when posts of a series
        keep the sides apart, ``another item of one template ("City 1-2 Argyle", Results)``
        when a template does."""
        if self._days_apart(a, b):
            mine = {self.key[i] for i in a if self.key[i] is not None}
            j = next(j for j in b if self.key[j] in mine)
            return f'another day\'s post of one series ("{_short(titles[j])}", {outlets[j]})'
        j = self._sibling(a, b)
        if j is None:
            return None
        return f'another item of one template ("{_short(titles[j])}", {outlets[j]})'


def _other(
    a: tuple[tuple[str, ...], tuple[str, ...], bool],
    b: tuple[tuple[str, ...], tuple[str, ...], bool],
) -> bool:
    """Whether two fillings of one template (names per slot, counts, headline only) are other
    events: other names in a slot; where either is a headline only, in two slots or more (a
    quake's magnitude and place, a game's two teams), or in one with other counts too (one
    team's two games, "Rovers 2-1 United" and "Rovers 0-3 City"): a site's headlines on one
    show name another performer in one slot and are one story in UCI's labels, while a feed
    whose summaries were all its template (stored empty) gives its titles alone too. Other
    counts alone are an update (a death toll, a live score)."""
    apart = [(x, y) for x, y in zip(a[0], b[0], strict=False) if x != y]
    differ = len(apart) + abs(len(a[0]) - len(b[0]))
    if not (a[2] or b[2]):
        return differ >= 1
    # one slot with no name in common ("United", "City"; not "Half-time Rovers", "Full-time
    # Rovers": a live score's status before the same team)
    disjoint = len(apart) == 1 and not set(apart[0][0].split()) & set(apart[0][1].split())
    return differ >= 2 or (disjoint and a[1] != b[1])


def _short(title: str) -> str:
    return title if len(title) <= 60 else title[:59] + "…"


def series_title(title: str) -> str:
    """A title's words without numbers (and words with figures: "£4.2m", "12th") and calendar
    words ("Wednesday's" too): what a series' posts share."""
    return " ".join(
        w
        for w in words(title)
        if not any(c.isdigit() for c in w) and w.removesuffix("'s") not in CALENDAR_WORDS
    )


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


@dataclass(frozen=True)
class LoneJoin:
    """An item left alone once merging ends, the story it most likely belongs to, and the
    evidence of its other neighbours (groups of any size) that might clear the lone bar."""

    lone: int  # its group
    story: int
    log_odds: float
    full_text: float  # the pair's richness: 0 for a headline and a story of headlines
    rivals: tuple[tuple[float, float], ...]  # other neighbours' (log_odds, full_text)
    member_support: float  # the best evidence with one of the story's nearest members

    def joins(self, model: EvidenceModel) -> bool:
        """At the model's ``lone_bar`` for the pair's richness (a lone headline says too little
        to pick one of the broad stories around it; a full report still names its event further
        down), if one of the story's members backs it at the merge bar by itself, and if no
        other neighbour clears the lower bar too (a post among many alike stays alone). A member
        or another lone item is one item against one: for headlines, without the headline shift
        (``EvidenceModel.lone_pair_offset``)."""
        return (
            self.log_odds >= model.lone_bar(self.full_text)
            and self.member_support >= model.threshold
            and all(score < model.lone_bar(rich) for score, rich in self.rivals)
        )


# The members of a story nearest to a lone item, of which one must back it at the merge bar.
SUPPORT_MEMBERS = 3
# A story that at least this many items agree on (a pair may itself be a wrong merge) takes in
# an item left alone at the lower bar of ``EvidenceModel.lone_discount``.
STORY_SIZE = 3


class Merger:
    """Average-link agglomeration along kNN-graph edges: the pair of neighbouring groups with the
    highest evidence merges first, until no pair's evidence clears the model's threshold.

    Every signal is an average of sums over the item pairs across two groups, so, as in the
    Lance-Williams update of average linkage, the sums of a merged group against a neighbour are
    the sums of its two parts (a part that never neighboured it is compared with it anew), and
    each merge scores the new group against all its neighbours in one vectorised step.
    """

    def __init__(
        self,
        unit: np.ndarray,
        batch: BatchText,
        model: EvidenceModel,
        series: Series | None = None,
    ) -> None:
        self.unit = unit
        self.batch = batch
        self.model = model
        self.series = series
        self.threshold = model.threshold
        self.groups: dict[int, Members] = {}
        self.items: dict[int, list[int]] = {}
        # each group's neighbouring groups, each with the row of their CrossSums in one growing
        # array (both sides hold the pair): a merge reads its parts' rows by C-level look-ups.
        # Groups merged away stay in their neighbours' links, left out when those merge: one
        # set difference instead of a deletion per neighbour and merge.
        self.links: dict[int, dict[int, int]] = {}
        self._merged: set[int] = set()
        self.heap: list[tuple[float, int, int]] = []
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
            self.links[gid] = {}
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

    def _store(self, sums: np.ndarray) -> range:
        """Keep sums in the growing array; returns their rows."""
        end = self._stored + len(sums)
        if end > len(self._sums):
            grown = np.zeros((max(end, 2 * len(self._sums)), SEGMENTS))
            grown[: self._stored] = self._sums[: self._stored]
            self._sums = grown
        self._sums[self._stored : end] = sums
        rows = range(self._stored, end)
        self._stored = end
        return rows

    def _push_scored(self, lows: Sequence[int], highs: Sequence[int], sums: np.ndarray) -> None:
        """Score pairs of current groups (``lows[k] < highs[k]``, with their sums) and queue those
        above the threshold."""
        if not len(sums):
            return
        scores = self.model.scores(self._features(lows, highs, sums))
        passing = np.flatnonzero(scores >= self.threshold)
        heap, push = self.heap, heapq.heappush
        for k, score in zip(passing.tolist(), scores[passing].tolist(), strict=True):
            push(heap, (-score, lows[k], highs[k]))

    def _features(self, lows: Sequence[int], highs: Sequence[int], sums: np.ndarray) -> np.ndarray:
        """The signals of pairs of current groups, with their sums."""
        rows_a = np.fromiter(map(self._row.__getitem__, lows), dtype=np.int64, count=len(sums))
        rows_b = np.fromiter(map(self._row.__getitem__, highs), dtype=np.int64, count=len(sums))
        dots = self._dots(rows_a, rows_b)
        return feature_rows(self._stats[rows_a], self._stats[rows_b], dots, sums)

    def _dots(self, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
        """Dot products of the vector sums in rows ``rows_a[k]`` and ``rows_b[k]``, a thousand
        pairs at a time: gathering the vectors of all 16,384 starting pairs of a chunk at once
        (100 MB) measured twice as slow. Each pair's product is the same either way."""
        vectors = self._vectors
        return np.concatenate(
            [
                np.einsum("ij,ij->i", vectors[rows_a[i : i + 1024]], vectors[rows_b[i : i + 1024]])
                for i in range(0, len(rows_a), 1024)
            ]
        )

    def run(self, pairs: list[tuple[int, int]]) -> list[list[int]]:
        """Merge until no neighbouring pair clears the threshold; ``pairs``: every neighbouring
        pair once as ``a < b``, sorted."""
        links, items = self.links, self.items
        for start in range(0, len(pairs), 16384):  # bounded memory
            lows = [a for a, _ in pairs[start : start + 16384]]
            highs = [b for _, b in pairs[start : start + 16384]]
            sums = self.batch.matrix.pair_sums(  # the CrossSums of each pair (pairs x SEGMENTS)
                list(map(items.__getitem__, lows)), list(map(items.__getitem__, highs))
            )
            for a, b, row in zip(lows, highs, self._store(sums), strict=True):
                links[a][b] = links[b][a] = row
            self._push_scored(lows, highs, sums)
        next_id = max(self.groups, default=-1) + 1
        while self.heap:
            _, a, b = heapq.heappop(self.heap)
            if a not in self.groups or b not in self.groups:
                continue  # one side was merged already; its successor has its own entries
            if self.accept(a, b):
                self._merge(a, b, next_id)
                next_id += 1
        return list(self.items.values())

    def lone_joins(self, discount: float) -> list[LoneJoin]:
        """Once merging has ended: for each group of one item, its neighbouring story of at least
        ``STORY_SIZE`` items with the most evidence, with the evidence of its other neighbours
        (any group); only those that a ``discount`` up to the given one could join.

        Average linkage holds a story's spread against a late report: a report that opens
        differently (a follow-up, a columnist's aside) scores lower against the many members it
        shares little with, though it matches one of them and nothing else comes near it.
        """
        if discount <= 0:  # a lone item clearing the merge bar itself would have merged
            return []
        groups, links = self.groups, self.links
        # from the stories' side: they are far fewer than the lone items, and both hold a link
        to_stories = [
            (other, gid, row)
            for gid, g in groups.items()
            if g.size >= STORY_SIZE
            for other, row in links[gid].items()
            if other in groups and groups[other].size == 1
        ]
        story: dict[int, tuple[int, float, float]] = {}  # lone -> best story, its evidence
        for (gid, other, _), (score, full_text) in zip(
            to_stories, self._scored(to_stories), strict=True
        ):
            if gid not in story or score > story[gid][1]:
                story[gid] = (other, score, full_text)
        bar = self.model.with_lone_discount(discount).lone_bar(1.0)  # full richness: the lowest
        candidates = [gid for gid, (_, score, _) in story.items() if score >= bar]
        to_rivals = [
            (gid, other, row)
            for gid in candidates
            for other, row in links[gid].items()
            if other in groups and other != story[gid][0]
        ]
        rivals: dict[int, list[tuple[float, float]]] = {gid: [] for gid in candidates}
        for (gid, _, _), (score, full_text) in zip(to_rivals, self._scored(to_rivals), strict=True):
            if score >= bar:
                rivals[gid].append((score, full_text))
        support = self._member_support([(self.items[gid][0], story[gid][0]) for gid in candidates])
        return [
            LoneJoin(gid, *story[gid], tuple(rivals[gid]), backed)
            for gid, backed in zip(candidates, support, strict=True)
        ]

    def _scored(self, pairs: list[tuple[int, int, int]]) -> list[tuple[float, float]]:
        """The evidence and richness of (group, group, row of their sums) triples."""
        if not pairs:
            return []
        lows, highs, rows = zip(*pairs, strict=True)
        features = self._features(lows, highs, self._sums[list(rows)])
        scores = self.model.scores(features).tolist()
        return list(zip(scores, features[:, FEATURES.index("full_text")].tolist(), strict=True))

    def _member_support(self, pairs: list[tuple[int, int]]) -> list[float]:
        """For (item, story) pairs: the item's best evidence with one of the story's
        ``SUPPORT_MEMBERS`` members nearest to it, each pair of items scored alone."""
        if not pairs:
            return []
        unit, items, owner, singles_a, singles_b = self.unit, self.items, [], [], []
        for k, (item, story) in enumerate(pairs):
            story_items = items[story]
            near = np.argsort(-(unit[story_items] @ unit[item]), kind="stable")[:SUPPORT_MEMBERS]
            for m in near.tolist():
                owner.append(k)
                singles_a.append([item])
                singles_b.append([story_items[m]])
        sums = self.batch.matrix.pair_sums(singles_a, singles_b)
        stats_a = np.array([stats_of(g) for g in members_of_groups(singles_a, unit, self.batch)])
        stats_b = np.array([stats_of(g) for g in members_of_groups(singles_b, unit, self.batch)])
        flat_a = [i for (i,) in singles_a]
        flat_b = [i for (i,) in singles_b]
        dots = np.einsum("ij,ij->i", unit[flat_a], unit[flat_b]).astype(np.float64)
        scores = self.model.scores(feature_rows(stats_a, stats_b, dots, sums))
        best = np.full(len(pairs), -np.inf)
        np.maximum.at(best, np.asarray(owner), scores)
        return best.tolist()

    def accept(self, a: int, b: int) -> bool:
        """Whether the best pair left merges: it cleared the threshold, so it does unless the
        two hold posts of one outlet's series from different days."""
        return self.series is None or not self.series.apart(self.items[a], self.items[b])

    def _merge(self, a: int, b: int, new: int) -> None:
        links_a, links_b = self.links.pop(a), self.links.pop(b)
        del links_a[b], links_b[a]
        self._merged.update((a, b))
        others = sorted((links_a.keys() | links_b.keys()) - self._merged)
        # the new group's sums against each neighbour, from its parts' (before they merge)
        merged = self._part_sums(a, links_a, others) + self._part_sums(b, links_b, others)
        ga, gb = self.groups.pop(a), self.groups.pop(b)
        big, small = (ga, gb) if ga.size >= gb.size else (gb, ga)
        big.absorb(small)  # grow the larger group in place: merging stays cheap for big stories
        self.groups[new] = big
        self.items[new] = self.items.pop(a) + self.items.pop(b)
        self._summed[new] = add_rows(self._summed.pop(a), self._summed.pop(b))
        rows = self._row.pop(a), self._row.pop(b)
        self._set_row(new, rows[0] if big is ga else rows[1])
        self._link(new, others, self._store(merged))
        self._push_scored(others, [new] * len(others), merged)  # new is the highest id yet

    def _part_sums(self, part: int, links: dict[int, int], others: list[int]) -> np.ndarray:
        """The sums of ``part`` against each of ``others``: kept ones, and for a neighbour it never
        met, the product of the two summed rows."""
        rows = np.fromiter(map(links.get, others, repeat(-1)), dtype=np.int64, count=len(others))
        sums = self._sums[rows]
        missing = np.flatnonzero(rows < 0).tolist()
        if missing:
            sums[missing] = self.batch.matrix.row_overlaps(
                self._summed[part], [self._summed[others[k]] for k in missing]
            )
        return sums

    def _link(self, group: int, others: list[int], rows: range) -> None:
        """``group`` neighbours each of ``others``, their sums kept in ``rows``."""
        links = self.links
        links[group] = dict(zip(others, rows, strict=True))
        for x, row in zip(others, rows, strict=True):
            links[x][group] = row


def rehomed(
    groups: list[list[int]],
    unit: np.ndarray,
    batch: BatchText,
    graph: NeighbourGraph,
    model: EvidenceModel,
    series: Series,
) -> list[list[int]]:
    """The groups, each member of a story of at least ``STORY_SIZE`` moved to a neighbouring
    story (of two or more) that takes it with more evidence than its own story's other members
    give it, at the merge bar, when the story it leaves still passes the evidence test.

    The merge pass joins best first and never undoes a join: a report taken early by another
    event's group of its kind (two quakes, one team's two games), before its own event's
    reports came together, stays there, though its own event's story now backs it more. Both
    sides are one item against a group of two or more. ``groups`` hold every item once."""
    n_groups = len(groups)
    group_of = group_index(groups, len(unit))
    sizes = np.bincount(group_of, minlength=n_groups)
    ga, gb = group_of[graph.sources], group_of[graph.targets]
    near = (ga != gb) & (sizes[ga] >= STORY_SIZE) & (sizes[gb] >= 2)
    if not near.any():
        return groups
    codes = np.unique(graph.sources[near] * n_groups + gb[near])
    movers = np.unique(codes // n_groups)
    # each mover against each neighbouring story, then against its own story's other members
    items = np.concatenate([codes // n_groups, movers])
    stories = np.concatenate([codes % n_groups, group_of[movers]])
    own = np.arange(len(items)) >= len(codes)
    scores = model.scores(_item_story_features(items, stories, own, groups, unit, batch))
    own_score = dict(zip(movers.tolist(), scores[own].tolist(), strict=True))
    best: dict[int, tuple[float, int]] = {}
    for item, story, score in zip(
        items[~own].tolist(), stories[~own].tolist(), scores[~own].tolist(), strict=True
    ):
        if score > best.get(item, (-math.inf, -1))[0]:
            best[item] = (score, story)
    # the surest first, each story in one move at most: every move is judged against its two
    # stories as they stand (no story gives up two members or takes in two, nothing swaps),
    # and the story left behind must still pass the evidence test among its members
    wanted = sorted(
        (own_score[item] - score, item, story)
        for item, (score, story) in best.items()
        if score >= model.threshold and score > own_score[item]
    )
    moved = [list(g) for g in groups]
    busy: set[int] = set()
    for _, item, story in wanted:
        home = int(group_of[item])
        if home in busy or story in busy or series.apart([item], groups[story]):
            continue
        if not model.holds_together(
            members([j for j in groups[home] if j != item], unit, batch), batch
        ):
            continue
        busy.update((home, story))
        moved[home].remove(item)
        moved[story].append(item)
    return moved if busy else groups


def group_index(groups: Iterable[Sequence[int]], n: int) -> np.ndarray:
    """Each of ``n`` items' position in ``groups``, which hold every item once."""
    index = np.empty(n, dtype=np.int64)
    for g, indexes in enumerate(groups):
        index[indexes] = g
    return index


def _item_story_features(
    items: np.ndarray,
    stories: np.ndarray,
    own: np.ndarray,
    groups: list[list[int]],
    unit: np.ndarray,
    batch: BatchText,
) -> np.ndarray:
    """The signals of item ``items[k]`` against group ``stories[k]``, less the item itself
    where ``own[k]`` (it is a member): the group's sums less the item's own."""
    involved, at = np.unique(stories, return_inverse=True)
    story_members = [groups[g] for g in involved.tolist()]
    found = members_of_groups(story_members, unit, batch)
    story_stats = np.array([stats_of(g) for g in found])[at]
    vector_sums = np.array([g.vector_sum for g in found])[at]
    # each item once (a mover comes once per story it is weighed against)
    each_item, item_at = np.unique(items, return_inverse=True)
    alone = members_of_groups([[i] for i in each_item.tolist()], unit, batch)
    item_stats = np.array([stats_of(g) for g in alone])[item_at]
    vectors = unit[items].astype(np.float64)
    sums = batch.matrix.group_overlaps(items, story_members, at)
    dots = np.einsum("ij,ij->i", vectors, vector_sums)
    # a member's own: its pair with itself out of the sums, its statistics out of the group's
    sums[own] -= batch.matrix.totals[items[own]]
    dots[own] -= np.einsum("ij,ij->i", vectors[own], vectors[own])
    additive = [STATS.index(s) for s in STATS if s not in ("first", "last")]
    story_stats[np.ix_(own, additive)] -= item_stats[np.ix_(own, additive)]
    first, last = _days_without(items[own], at[own], story_members, batch)
    story_stats[own, STATS.index("first")] = first
    story_stats[own, STATS.index("last")] = last
    return feature_rows(item_stats, story_stats, dots, sums)


def _days_without(
    items: np.ndarray, at: np.ndarray, story_members: list[list[int]], batch: BatchText
) -> tuple[np.ndarray, np.ndarray]:
    """The earliest and latest known times of each story ``story_members[at[k]]`` without its
    member ``items[k]`` (+inf and -inf when none is known): the story's first, or its second
    where the item is the first."""
    sizes = np.fromiter(map(len, story_members), dtype=np.int64, count=len(story_members))
    flat = np.fromiter(chain.from_iterable(story_members), dtype=np.int64, count=int(sizes.sum()))
    owner = np.repeat(np.arange(len(story_members)), sizes)
    day = np.array([batch.items[j].day for j in flat.tolist()], dtype=np.float64)
    starts = np.cumsum(sizes) - sizes
    seconds = np.minimum(starts + 1, starts + sizes - 1)

    def earliest(values: np.ndarray) -> np.ndarray:
        order = np.lexsort((values, owner))  # by story, then by value
        extreme, runner_up = values[order[starts]], values[order[seconds]]
        return np.where(items == flat[order[starts]][at], runner_up[at], extreme[at])

    unknown = np.isnan(day)
    return earliest(np.where(unknown, math.inf, day)), -earliest(np.where(unknown, math.inf, -day))
