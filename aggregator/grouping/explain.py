"""Why items share a story, and why a close neighbour does not: the evidence model, read back.

``pair_evidence`` scores two sets of items (a story, an item) and names what spoke for and against
joining them; ``explain_stories`` gives each item of a grouping a short reason it belongs and each
story the reason its closest other story stayed apart (``closest_stories`` chooses that story, for
the grouping and for ``aggregator explain`` alike).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TypeVar

import numpy as np

from aggregator.grouping.evidence import FEATURES, EvidenceModel, members, pair_features
from aggregator.grouping.graph import knn_graph, normalise
from aggregator.grouping.merge import STORY_SIZE, Series
from aggregator.grouping.scripts import Centres, centred_by_script
from aggregator.grouping.text import (
    CALENDAR_WORDS,
    BatchText,
    batch_text,
    clean_text,
    fold_accents,
    in_ascii,
    known_outlet,
    numbers_as_written,
    numbers_in,
)
from aggregator.models import Item
from aggregator.text import plural

K = TypeVar("K")  # a story's label: a number while grouping, its id once stored

# Partners compared per item when choosing the one that best explains its place in a story.
_PARTNERS = 3
_SHOWN_NAMES = 3
_SHOWN_NUMBERS = 2
# A signal is cited against a pair only when it takes at least this much from the log-odds:
# smaller contributions change nothing a reader could act on.
CITED_CONTRIBUTION = 0.1
# Story centres less similar than this are no "closest other story" worth explaining.
NEIGHBOUR_FLOOR = 0.2
# Stories with the nearest centres among which the closest story on average is chosen.
_CANDIDATE_STORIES = 5

# Words as written (letters keep their case), with a possessive or an inner apostrophe.
_SURFACE_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
# One word of a run of names: as written, its name, whether written as a possessive, and the
# space or hyphen that joins it to the word before ("" for a run's first word).
_NameWord = tuple[str, str, bool, str]


@dataclass(frozen=True)
class Features:
    """A batch's features for explaining, computed once per call: unit vectors, the evidence
    model's text features and, on demand, each item's plain text (for names as written)."""

    items: Sequence[Item]
    unit: np.ndarray
    batch: BatchText
    _plain: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def series(self) -> Series:
        return Series(self.batch)

    def plain_text(self, index: int) -> str:
        if index not in self._plain:
            item = self.items[index]
            # the summary first: names come from summaries, and titles often capitalise
            # every word ("CATCHING FIRE", "Mayor Opens Library")
            self._plain[index] = f"{clean_text(item.summary)}. {clean_text(item.title)}"
        return self._plain[index]


def features(
    items: Sequence[Item],
    vectors: np.ndarray,
    *,
    unit: np.ndarray | None = None,
    batch: BatchText | None = None,
    centres: Centres | None = None,
) -> Features:
    """``Features`` of a batch; pass ``unit`` and ``batch`` when grouping already made them,
    else the ``centres`` it used."""
    return Features(
        items,
        centred_by_script(normalise(vectors), items, centres) if unit is None else unit,
        batch_text(items) if batch is None else batch,
    )


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
    bias: float  # the model's intercept: with the contributions it sums to the log-odds
    signals: tuple[Signal, ...]
    shared_names: tuple[str, ...]  # as written, multi-word names kept together
    names_only_a: tuple[str, ...]  # lead names one side has and the other lacks
    names_only_b: tuple[str, ...]
    numbers_only_a: tuple[str, ...]  # conflicting numbers of one kind, most salient first
    numbers_only_b: tuple[str, ...]
    days_apart: float | None
    # for one item against a story of at least merge.STORY_SIZE: the lower bar at which it joins
    # if it is left alone, one member backs it and nothing else comes as near (None: no such bar)
    lone_probability: float | None = None
    series: str | None = None  # why the two never join: posts of one outlet's series
    # two lone items give back the headline shift (``EvidenceModel.lone_pair_offset``)
    lone_pair_offset: float = 0.0

    @property
    def joins(self) -> bool:
        return self.probability >= self.merge_probability and self.series is None

    @property
    def log_odds(self) -> float:
        return self.bias + self.lone_pair_offset + sum(s.contribution for s in self.signals)

    def value(self, name: str) -> float:
        return next(s.value for s in self.signals if s.name == name)

    def reason_for(self, partner: str = "") -> str:
        """E.g. ``0.82 similar to the Herald item, shares Mayor Okafor, Riverside``."""
        parts = [f"{self.value('cosine'):.2f} similar" + (f" to {partner}" if partner else "")]
        if self.shared_names:
            parts.append("shares " + ", ".join(self.shared_names[:_SHOWN_NAMES]))
        return ", ".join(parts)

    def reason_against(self) -> str:
        """E.g. ``different names: Perth / Leeds``: the signals that took at least
        ``CITED_CONTRIBUTION`` from the log-odds, strongest first; "only 0.41 similar" when the
        pair would stay apart even without them ("... for two items alone" when only the full bar
        of two lone items keeps them apart); "nothing against" for a pair that joins."""
        cited: list[tuple[str, float]] = []
        for signal in sorted(self.signals, key=lambda s: s.contribution):
            if signal.contribution > -CITED_CONTRIBUTION:
                break
            text = self._against(signal.name)
            if text and text not in (t for t, _ in cited):
                cited.append((text, signal.contribution))
        reasons = [t for t, _ in cited[:2]]
        if self.series:
            return "; ".join([self.series, *reasons][:2])
        if self.joins:
            return "nothing against" if not reasons else "; ".join(reasons) + " (outweighed)"
        threshold = _logit(self.merge_probability)
        uncited = self.log_odds - sum(c for _, c in cited)
        if self.log_odds - self.lone_pair_offset >= threshold:
            # the headline shift given back is all the gap: enough to join a group, not to
            # start a story of two with nothing else backing it
            reasons = [f"{self._only_similar()} for two items alone", *reasons]
        elif uncited < threshold:  # too little said for it
            reasons = [self._only_similar(), *reasons]
        reasons = reasons[:2]
        return "; ".join(reasons)

    @property
    def alike(self) -> bool:
        """Whether the two read alike at all (a cosine that rounds to 0.00, or below it, is
        no similarity: "-0.00 similar" said nothing)."""
        return self.value("cosine") >= 0.005

    def _only_similar(self) -> str:
        return f"only {self.value('cosine'):.2f} similar" if self.alike else "not alike at all"

    def _against(self, name: str) -> str:
        # a conflict the model weighs but no two names or numbers of one kind show (the model
        # pools pair by pair what the sides pool as wholes here) is still named, never left for
        # "only 0.43 similar" to take the blame
        if name == "name_conflict":
            if self.names_only_a and self.names_only_b:
                return f"different names: {_few(self.names_only_a)} / {_few(self.names_only_b)}"
            return "different names"
        if name == "number_conflict":
            if self.numbers_only_a and self.numbers_only_b:
                return (
                    f"different numbers: {_few(self.numbers_only_a)} / {_few(self.numbers_only_b)}"
                )
            return "different numbers"
        if name == "days_apart" and self.days_apart is not None:
            return f"{plural(round(self.days_apart), 'day')} apart"
        if name == "same_outlet":
            return "same outlet"
        return ""


def _few(values: Sequence[str]) -> str:
    return ", ".join(values[:_SHOWN_NUMBERS])


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def the_item(outlet: str, own_outlet: str = "") -> str:
    """``the Herald item``; ``The Borneo Post item`` (no "the the"); ``""`` without an outlet
    (or with "unknown" for one). Said of an item of ``own_outlet`` itself: ``another Herald
    item``, ``another item of The Borneo Post`` (not "the Herald item" on a Herald item)."""
    if not known_outlet(outlet):
        return ""
    the = outlet.lower().startswith("the ")
    if outlet == own_outlet:
        return f"another item of {outlet}" if the else f"another {outlet} item"
    return f"{outlet} item" if the else f"the {outlet} item"


def pair_evidence(
    side_a: Sequence[int], side_b: Sequence[int], prepared: Features, model: EvidenceModel
) -> PairEvidence:
    """The evidence that the items at ``side_a`` and those at ``side_b`` report one story."""
    unit, batch = prepared.unit, prepared.batch
    a, b = members(side_a, unit, batch), members(side_b, unit, batch)
    values = pair_features(a, b, batch)
    score = model.score(values)
    signals = tuple(
        Signal(name, float(value), float(weight * value))
        for name, value, weight in zip(FEATURES, values, model.weights, strict=True)
    )
    known = a.first != math.inf and b.first != math.inf
    weight = batch.name_weight

    def union(indexes: Sequence[int], name: str) -> set[str]:
        return {v for i in indexes for v in getattr(batch.items[i], name)}

    def written(
        names: set[str], *sides: Sequence[int], whole: AbstractSet[str] = frozenset()
    ) -> tuple[str, ...]:
        texts = [prepared.plain_text(i) for s in sides for i in s]
        return _as_written(names, weight, texts, whole)

    names_a, names_b = union(side_a, "names"), union(side_b, "names")
    # as with names: the numbers of one side's lead (where the conflict is measured) that the
    # other side gives nowhere, as written: their kind shows there ("6.0", "1,800" read 6, 1800)
    only_a = _numbers(side_a, batch, lead=True) - _numbers(side_b, batch)
    only_b = _numbers(side_b, batch, lead=True) - _numbers(side_a, batch)

    def as_written(numbers: set[str], side: Sequence[int]) -> dict[str, str]:
        ordered = sorted(numbers)
        texts = map(prepared.plain_text, side)
        return dict(zip(ordered, numbers_as_written(ordered, texts), strict=True))

    numbers_a, numbers_b = _conflicting_numbers(
        as_written(only_a, side_a),
        as_written(only_b, side_b),
        _title_numbers(side_a, batch) | _title_numbers(side_b, batch),
    )
    return PairEvidence(
        probability=_probability(score),
        merge_probability=model.merge_probability,
        bias=float(model.bias),
        signals=signals,
        shared_names=written(names_a & names_b, side_a, side_b),
        names_only_a=written(union(side_a, "lead_names") - names_b, side_a, whole=names_a),
        names_only_b=written(union(side_b, "lead_names") - names_a, side_b, whole=names_b),
        numbers_only_a=numbers_a,
        numbers_only_b=numbers_b,
        days_apart=max(0.0, max(a.first, b.first) - min(a.last, b.last)) if known else None,
        lone_probability=_lone_probability(len(side_a), len(side_b), values, model),
        series=prepared.series.describe(side_a, side_b, batch.titles, batch.outlets),
        lone_pair_offset=float(model.lone_pair_offset(values)),
    )


def _lone_probability(
    size_a: int, size_b: int, values: Sequence[float], model: EvidenceModel
) -> float | None:
    if model.lone_discount <= 0 or size_a != 1 or size_b < STORY_SIZE:
        return None
    bar = model.lone_bar(values[FEATURES.index("full_text")])
    # a headline gets no discount: its lone bar is the merge bar, no second bar to show
    return _probability(bar) if bar < model.threshold else None


def _probability(log_odds: float) -> float:
    return 1 / (1 + math.exp(-log_odds))


# ---------------------------------------------------------------- names as written


def _as_written(
    names: set[str],
    weight: Mapping[str, float],
    texts: Sequence[str],
    whole: AbstractSet[str] = frozenset(),
) -> tuple[str, ...]:
    """The names as the texts write them, rarest (most telling) first, with names written
    next to each other kept together: ``Mayor Okafor``, ``NASA``, ``McDonald's``, ``Wal-Mart``.
    Each name takes the first form the texts give it, or, if that is in capitals (a dateline's
    ``KANSAS CITY``), the first that is not. ``whole``: names a run may also hold, so that a
    name is shown whole where only some of its words are ``names`` (a conflict's "Access" of
    "Access Hollywood"). A lone month abbreviation ("Jun 3") is no name shown."""
    if not names:
        return ()
    rank = {n: k for k, n in enumerate(sorted(names, key=lambda n: (-weight.get(n, 0.0), n)))}
    found = [run for text in texts for run in _name_runs(text, names | whole)]
    runs = [
        run
        for run in _two_names_apart(found)
        if any(key in names for _, key, _, _ in run)
        and not (len(run) == 1 and run[0][1] in CALENDAR_WORDS)
    ]
    # a possessive is grammar ("Okafor's plan") unless the name is never written without it
    bare = {key for run in runs for _, key, possessive, _ in run if not possessive}
    # "Cheeks" alone says less than "Maurice Cheeks" elsewhere: drop runs inside longer ones
    key_sets = {frozenset(key for _, key, _, _ in run) for run in runs}
    runs = [
        run
        for run in runs
        if not any(frozenset(key for _, key, _, _ in run) < other for other in key_sets)
    ]
    forms: dict[tuple[str, ...], str] = {}  # the names of a run -> the form shown
    for run in runs:
        keys = tuple(key for _, key, _, _ in run)
        phrase = "".join(
            joiner + (word[:-2] if possessive and key in bare else word)
            for word, key, possessive, joiner in run
        )
        if keys not in forms or (forms[keys].isupper() and not phrase.isupper()):
            forms[keys] = phrase
    phrases: dict[str, int] = {}  # phrase -> rank of its rarest name
    covered: set[str] = set()
    for run in runs:
        keys = tuple(key for _, key, _, _ in run)
        phrase = forms[keys]
        if any(key not in covered for key in keys if key in rank) and phrase not in phrases:
            phrases[phrase] = min(rank[key] for key in keys if key in rank)
            covered.update(keys)
    # a name the texts never write capitalised is left out: an item's names are its words that
    # the batch's vocabulary holds, so "bush fire" has the name of "George Bush" elsewhere
    return tuple(sorted(phrases, key=lambda p: (phrases[p], p)))


def _two_names_apart(runs: list[list[_NameWord]]) -> list[list[_NameWord]]:
    """``runs`` with each hyphen between two names that the texts also write on their own
    ("the Romney-Ryan ticket" beside "Mitt Romney" and "Paul Ryan") taken for two names: one
    name's parts ("Wal-Mart") never stand alone."""
    alone = {
        word[1]
        for run in runs
        for k, word in enumerate(run)
        if word[3] != "-" and (k + 1 == len(run) or run[k + 1][3] != "-")
    }
    split: list[list[_NameWord]] = []
    for run in runs:
        split.append([run[0]])
        for before, word in pairwise(run):
            if word[3] == "-" and before[1] in alone and word[1] in alone:
                split.append([(word[0], word[1], word[2], "")])
            else:
                split[-1].append(word)
    return split


# US time zones as a dateline writes them ("10 a.m. ET"): grouping keeps them among the names
# (reports of one event share them; leaving them out cost ECB+ in cross-validation), but to a
# reader "shares ET" says nothing, so reasons do not show them.
_ZONES_NOT_SHOWN = frozenset({"et", "pt", "ct", "mt"})
# Nor a page's time stamps ("7:31 AM ET Updated 5:40 pm") or the wire credit grouping leaves
# out when written in one word (AP, Reuters): page furniture, not what the reports say.
_STAMPS_NOT_SHOWN = frozenset({"updated", "posted", "published", "edited", "modified"})
_CREDIT_NOT_SHOWN = re.compile(r"\bAssociated Press\b")


def _name_runs(text: str, names: set[str]) -> list[list[_NameWord]]:
    """Runs of capitalised words, each one of ``names``, separated by single spaces or hyphens
    (``Wal-Mart``, ``ITAR-TASS``: words reads their parts as two words) or by " of " (``Bank
    of England``): (word as written, its name, written as a possessive, what joins it to the
    word before) per word."""
    runs: list[list[_NameWord]] = []
    end = of_end = -2
    credits = [m.span() for m in _CREDIT_NOT_SHOWN.finditer(text)] if "Associated" in text else []
    for match in _SURFACE_WORD.finditer(text):
        word = match.group()
        if credits and any(start <= match.start() < stop for start, stop in credits):
            end = -2
            continue
        key = fold_accents(word).lower().replace("’", "'")
        possessive = key.endswith("'s")
        key = key[:-2] if possessive else key
        shown = (key not in _ZONES_NOT_SHOWN or not word.isupper()) and (
            key not in _STAMPS_NOT_SHOWN
        )
        if word == "of" and end >= 0 and text[end : match.start()] == " ":
            of_end, end = end, -2  # "Texas Department of ...": the run may go on
            continue
        if not word[0].isupper() or key not in names or not shown:
            end = of_end = -2
            continue
        if runs and match.start() == end + 1 and text[end] in " -":
            runs[-1].append((word, key, possessive, text[end]))
        elif runs and of_end >= 0 and text[of_end : match.start()] == " of ":
            # "Texas Department of Transportation", "Bank of England": one name
            runs[-1].append((word, key, possessive, " of "))
        else:
            runs.append([(word, key, possessive, "")])
        end = -2 if possessive else match.end()  # "Okafor's Riverside plan": two names
        of_end = -2
    return runs


# ---------------------------------------------------------------- numbers


def _numbers(side: Sequence[int], batch: BatchText, *, lead: bool = False) -> set[str]:
    items = [batch.items[i] for i in side]
    return {n for t in items for n in (t.lead_numbers if lead else t.numbers) if not _is_zero(n)}


def _title_numbers(side: Sequence[int], batch: BatchText) -> set[str]:
    return {n for i in side for n in numbers_in(batch.titles[i])}


def _is_zero(number: str) -> bool:
    """Nothing ("0", "0.0"): a score of 0-0 is a number like any other."""
    return not number.strip("0.,")


def _kind(written: str) -> str:
    """Numbers conflict only with numbers of their kind: a score with a score, a magnitude with a
    magnitude, a year with a year. Read as written: "6.0" is a magnitude, "1,800" a count, "5,1"
    (a decimal comma) and "٥٫١" a magnitude, "٢٠٢٤" a year."""
    written = in_ascii(written)
    if re.fullmatch(r"\d{1,2}:\d\d", written):
        return "time"
    if re.fullmatch(r"\d+[:\-–]\d+", written):
        return "score"
    if re.fullmatch(r"[\d,]*\d\.\d+", written):
        return "decimal"
    if re.fullmatch(r"(1[89]|20)\d\d", written):
        return "year"
    return "count"


def _magnitude(number: str) -> float:
    try:
        return float(re.split(r"[:\-–]", number)[0].replace(",", ""))
    except ValueError:
        return 0.0


def _conflicting_numbers(
    only_a: Mapping[str, str], only_b: Mapping[str, str], in_titles: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The numbers of each side that the other lacks (each read as ``numbers_in`` gives it, to
    its form as written), of the one kind both sides give, as written, the most salient kind
    and numbers first: those in a title, then the larger."""

    def salience(number: str) -> tuple[bool, float, str]:
        return (number not in in_titles, -_magnitude(number), number)

    kind_of = {n: _kind(w) for side in (only_a, only_b) for n, w in side.items()}
    kinds = {kind_of[n] for n in only_a} & {kind_of[n] for n in only_b}
    if not kinds:
        return (), ()

    def best(kind: str) -> tuple:
        return min(salience(n) for n in kind_of if kind_of[n] == kind)

    kind = min(kinds, key=best)

    def of_kind(side: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(side[n] for n in sorted((n for n in side if kind_of[n] == kind), key=salience))

    return of_kind(only_a), of_kind(only_b)


# ---------------------------------------------------------------- a grouping's reasons


def compare(
    items: Sequence[Item],
    vectors: np.ndarray,
    side_a: Sequence[int],
    side_b: Sequence[int],
    model: EvidenceModel,
    centres: Centres | None = None,
) -> PairEvidence:
    """``pair_evidence`` of two sides of one batch (computing the batch's features: to compare
    several pairs of a batch, make its ``features`` once and call ``pair_evidence``)."""
    return pair_evidence(side_a, side_b, features(items, vectors, centres=centres), model)


@dataclass(frozen=True)
class StoryReasons:
    why: list[str]  # per item: why it belongs to its story ("" for a story of one)
    why_not: dict[int, str]  # label -> why its closest other story stayed apart
    closest: dict[int, int]  # label -> label of that closest other story


def explain_stories(
    prepared: Features,
    labels: Sequence[int] | np.ndarray,
    model: EvidenceModel,
    copy_of: Mapping[int, int] = {},
) -> StoryReasons:
    """Reasons for a grouping: ``copy_of`` maps item id -> id of the item it copies."""
    items = prepared.items
    stories = stories_of(labels)
    index_of = {item.id: i for i, item in enumerate(items)}
    why = [""] * len(items)
    for indexes in stories.values():
        if len(indexes) == 1:
            continue
        for i in indexes:
            source = copy_of.get(items[i].id)
            if source is not None and source in index_of:
                original = the_item(items[index_of[source]].outlet, items[i].outlet)
                why[i] = f"copy of {original or 'an earlier item'}"
            else:
                why[i] = _best_partner_reason(i, indexes, prepared, model)
    closest = closest_stories(stories, prepared.unit)
    why_not = {
        label: why_not_text(pair_evidence(stories[label], stories[other], prepared, model))
        for label, other in closest.items()
    }
    return StoryReasons(why, why_not, closest)


def why_not_text(evidence: PairEvidence) -> str:
    """The reader's reason a closest other story stayed apart (no probability: a reader has no
    threshold to read it against; the CLI shows both). Two stories whose evidence would join them
    were never weighed against each other: the merge pass compares only groups joined by a
    nearest-neighbour edge (tight stories of many items may have none between them)."""
    if evidence.joins:
        return "would join on this evidence; the grouping compares only nearest neighbours"
    return evidence.reason_against()


def stories_of(labels: Sequence[int] | np.ndarray) -> dict[int, list[int]]:
    """Item indexes per label, in label order of first appearance."""
    stories: dict[int, list[int]] = {}
    for i, label in enumerate(np.asarray(labels).tolist()):
        stories.setdefault(label, []).append(i)
    return stories


def closest_stories(stories: Mapping[K, Sequence[int]], unit: np.ndarray) -> dict[K, K]:
    """Each story's closest other story: the most similar on average over their items' pairs
    (the similarity its reason shows), at least ``NEIGHBOUR_FLOOR`` (a story with none is left
    out), among the few stories with the nearest centres (two stories' average is never above
    their centres' cosine)."""
    labels = list(stories)
    if len(labels) < 2:
        return {}
    means = np.stack([unit[list(stories[label])].mean(axis=0) for label in labels])
    graph = knn_graph(normalise(means), _CANDIDATE_STORIES, floor=NEIGHBOUR_FLOOR)
    average = np.einsum("ij,ij->i", means[graph.sources], means[graph.targets])
    closest: dict[K, K] = {}
    best: dict[int, float] = {}
    for s, t, a in zip(
        graph.sources.tolist(), graph.targets.tolist(), average.tolist(), strict=True
    ):
        if a >= NEIGHBOUR_FLOOR and a > best.get(s, -math.inf):
            best[s], closest[labels[s]] = a, labels[t]
    return closest


def _best_partner_reason(
    i: int, indexes: list[int], prepared: Features, model: EvidenceModel
) -> str:
    """The evidence with the story member that most supports item ``i`` (among its closest)."""
    unit = prepared.unit
    others = np.array([j for j in indexes if j != i])
    closest = others[np.argsort(-(unit[others] @ unit[i]), kind="stable")[:_PARTNERS]]
    scored = [(pair_evidence([i], [int(j)], prepared, model), int(j)) for j in closest]
    best, partner = max(scored, key=lambda pair: (pair[0].probability, -pair[1]))
    return best.reason_for(the_item(prepared.items[partner].outlet, prepared.items[i].outlet))
