"""Turn grouping labels into ``Story`` records with stable ids, headlines, keywords and copies."""

from __future__ import annotations

import hashlib
import heapq
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from itertools import chain

import numpy as np

from aggregator.grouping import GroupingParams
from aggregator.grouping.evidence import EvidenceModel
from aggregator.grouping.explain import Features, explain_stories, features
from aggregator.grouping.graph import normalise
from aggregator.grouping.text import CALENDAR_WORDS, clean_text, shingle_sets, words
from aggregator.models import Item, Story, StoryMember, StoryStatus

# word-shingle overlap from which an item counts as a copy of an earlier one: the grouping's own
COPY_JACCARD = GroupingParams.duplicate_jaccard
KEYWORDS_PER_STORY = 4


def make_stories(
    items: Sequence[Item],
    vectors: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    previous: Mapping[int, str] = {},
    evidence: EvidenceModel | None = None,
    *,
    prepared: Features | None = None,
    copy_jaccard: float = COPY_JACCARD,
) -> list[Story]:
    """One ``Story`` per label, largest first.

    ``previous`` maps item id -> story id from the previous run, so a story keeps its id as it grows.
    With the grouping's ``evidence`` model, each member says why it belongs and each story why its
    closest other story stayed apart. ``prepared``: the batch's features when grouping made them
    (so they are not computed twice); ``copy_jaccard``: the grouping's ``duplicate_jaccard``.
    """
    clusters = _clusters(items, labels)
    if prepared is not None:
        unit = prepared.unit
    else:
        unit = normalise(vectors) if len(items) else np.zeros((0, 1), dtype=np.float32)
    ids = assign_story_ids([[items[i].id for i in c] for c in clusters], previous)
    # each item's words, once: its shingles find copies, its content words make keywords
    tokens = [_tokens(item) for item in items]
    keywords = _keywords([[tokens[i] for i in c] for c in clusters], KEYWORDS_PER_STORY)
    # only members of a story with others can be copies: shingle just those (in one call, so
    # that their shingle sets compare)
    shared = [i for c in clusters if len(c) > 1 for i in c]
    shingled = dict(zip(shared, shingle_sets([tokens[i] for i in shared], 3), strict=True))
    copies = [
        _copies([items[i].id for i in order], [shingled[i] for i in order], copy_jaccard)
        if len(c) > 1
        else {}
        for c in clusters
        for order in (_originals_first(c, items),)
    ]
    why, why_not, closest = _reasons(items, unit, clusters, copies, evidence, prepared)
    stories = []
    for k, (cluster, story_id, top_words) in enumerate(zip(clusters, ids, keywords, strict=True)):
        members = [items[i] for i in cluster]
        copy_of = copies[k]
        headline = _headline(cluster, unit, items, copy_of)
        stories.append(
            Story(
                id=story_id,
                headline_item_id=headline,
                members=tuple(
                    StoryMember(items[i], copy_of.get(items[i].id), why[i]) for i in cluster
                ),
                keywords=tuple(top_words),
                status=_status(story_id, members, previous),
                why_not=why_not.get(k, ""),
            )
        )
    # the closest other story by id and headline, once every story has both
    return [
        replace(
            story,
            why_not_story=stories[closest[k]].id,
            why_not_headline=stories[closest[k]].headline.title,
        )
        if k in closest and story.why_not
        else story
        for k, story in enumerate(stories)
    ]


def _reasons(
    items: Sequence[Item],
    unit: np.ndarray,
    clusters: list[list[int]],
    copies: list[dict[int, int]],
    evidence: EvidenceModel | None,
    prepared: Features | None,
) -> tuple[list[str], dict[int, str], dict[int, int]]:
    """Per item why it belongs; per cluster (by position) why its closest other cluster stayed
    apart, and which cluster that is."""
    if evidence is None or not items:
        return [""] * len(items), {}, {}
    labels = np.empty(len(items), dtype=np.int64)
    for k, cluster in enumerate(clusters):
        labels[cluster] = k
    copy_of = {item: source for c in copies for item, source in c.items()}
    reasons = explain_stories(
        prepared or features(items, unit, unit=unit), labels, evidence, copy_of
    )
    return reasons.why, reasons.why_not, reasons.closest


def _clusters(items: Sequence[Item], labels: Sequence[int] | np.ndarray) -> list[list[int]]:
    """Item indexes per label, each in publication order, largest cluster first."""
    if len(labels) != len(items):
        raise ValueError(f"{len(items)} items but {len(labels)} labels")
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(int(label), []).append(index)
    clusters = [
        sorted(c, key=lambda i: (items[i].published, items[i].id)) for c in by_label.values()
    ]
    return sorted(clusters, key=lambda c: (-len(c), min(items[i].id for i in c)))


def _text(item: Item) -> str:
    return f"{item.title} {item.summary}"


def _tokens(item: Item) -> list[str]:
    """The words of an item's title and summary (``shingles`` and keywords start from these)."""
    return words(clean_text(_text(item)))


# ---------------------------------------------------------------- ids and status


def assign_story_ids(clusters: Sequence[Sequence[int]], previous: Mapping[int, str]) -> list[str]:
    """A stable id per cluster of item ids; ``previous``: item id -> its story's id last run.

    An id carries on with the cluster that holds most of its story's items of this window, and
    at least half of them: a story that split keeps its id in its larger part (of two halves,
    in the one with its oldest item), and a cluster sharing less with an old story gets a new id,
    even when it is the largest (the id would pass to another subject). A cluster holding that
    much of several old stories (they merged) takes the one it holds most items of. Other
    clusters get a new id derived from their items, never one in use in the window.
    """
    where = {item: index for index, cluster in enumerate(clusters) for item in cluster}
    members: dict[str, list[int]] = {}  # old id -> its items of this window
    for item, story_id in previous.items():
        if item in where:
            members.setdefault(story_id, []).append(item)
    # (cluster, old id) pairs that may carry the id on, best first: most items shared, then
    # the larger share of the old story, then its oldest item (ids grow as items arrive)
    pairs = []
    for story_id, items in members.items():
        shared: dict[int, list[int]] = {}
        for item in items:
            shared.setdefault(where[item], []).append(item)
        for index, held in shared.items():
            if 2 * len(held) >= len(items):
                pairs.append((-len(held), -len(held) / len(items), min(held), story_id, index))
    ids: list[str | None] = [None] * len(clusters)
    claimed: set[str] = set()
    for *_, story_id, index in sorted(pairs):
        if ids[index] is None and story_id not in claimed:
            ids[index] = story_id
            claimed.add(story_id)
    in_use = set(previous.values()) | claimed
    for index, cluster in enumerate(clusters):
        if ids[index] is None:
            fresh = _fresh_id(cluster, in_use)
            ids[index] = fresh
            in_use.add(fresh)
    return [i for i in ids if i is not None]


def _fresh_id(items: Sequence[int], in_use: set[str]) -> str:
    """An id from the cluster's items, all of them: it can only come back for the very same
    reports, never for another group around one of them (an id derived from the earliest item
    alone came back, once no item of the window had it, for another subject)."""
    key = "items " + " ".join(map(str, sorted(items)))
    base = "s-" + hashlib.sha1(key.encode()).hexdigest()[:10]
    candidate, suffix = base, 1
    while candidate in in_use:
        suffix += 1
        candidate = f"{base}-{suffix}"
    return candidate


def _status(story_id: str, members: Sequence[Item], previous: Mapping[int, str]) -> StoryStatus:
    before = [previous.get(m.id) == story_id for m in members]
    if not any(before):
        return "new"
    return "unchanged" if all(before) else "growing"


# ---------------------------------------------------------------- copies and headline


def _originals_first(cluster: Sequence[int], items: Sequence[Item]) -> list[int]:
    """``cluster`` (in publication order) with, among items of one time, an item that credits
    another member's outlet ("(Origin Wire)", "By Origin Wire") after that outlet's: a
    syndicated copy stamped with the original's time is the copy, whichever was stored first."""
    times = [items[i].published for i in cluster]
    if len(set(times)) == len(times):
        return list(cluster)
    outlets = {items[i].outlet for i in cluster}

    def credits_another(index: int) -> bool:
        text = _text(items[index]).casefold()
        return any(
            outlet != items[index].outlet and _credits(text, outlet.casefold())
            for outlet in outlets
        )

    return sorted(cluster, key=lambda i: (items[i].published, credits_another(i)))


def _credits(text: str, outlet: str) -> bool:
    """Whether ``text`` names ``outlet`` as a source: in parentheses, after "by" or "via", or
    before a dash, as datelines and bylines give a wire's name."""
    if len(outlet) < 2 or outlet not in text:
        return False
    name = re.escape(outlet)
    return re.search(rf"\({name}\)|\b(?:by|via|from) {name}\b|\b{name}\s*[-–—]", text) is not None


def find_copies(members: Sequence[Item], threshold: float = COPY_JACCARD) -> dict[int, int]:
    """Item id -> id of the earlier original it nearly repeats (members in publication order)."""
    return _copies(
        [m.id for m in members], shingle_sets([_tokens(m) for m in members], 3), threshold
    )


def _copies(ids: Sequence[int], sets: Sequence[frozenset], threshold: float) -> dict[int, int]:
    originals: list[tuple[int, frozenset, int]] = []  # id, shingles, how many
    identical: dict[frozenset, int] = {}
    copy_of: dict[int, int] = {}
    for item_id, text in zip(ids, sets, strict=True):
        source = identical.get(text) if text else None
        if source is None and text:
            size = len(text)
            for oid, other, other_size in originals:
                # sets of very different sizes cannot reach the threshold: skip the intersection
                if min(size, other_size) < threshold * max(size, other_size):
                    continue
                common = len(text & other)  # |a | b| is |a| + |b| - |a & b|: the same Jaccard
                if common / (size + other_size - common) >= threshold:
                    source = oid
                    break
        if source is None:
            originals.append((item_id, text, len(text)))
            identical[text] = item_id
        else:
            copy_of[item_id] = source
    return copy_of


def _headline(
    cluster: Sequence[int], unit: np.ndarray, items: Sequence[Item], copy_of: Mapping[int, int]
) -> int:
    """The original item nearest the story's centroid (copies only if nothing else), of those
    whose title says what happened (a page's dateline taken for the title, "Friday, June 7,
    2013", only if nothing else) and of those the tidiest (`title_untidiness`)."""
    if len(cluster) == 1:
        return items[cluster[0]].id
    candidates = [i for i in cluster if items[i].id not in copy_of] or list(cluster)
    candidates = [i for i in candidates if says_what(items[i].title)] or candidates
    centroid = unit[list(cluster)].mean(axis=0)
    scores = unit[candidates] @ centroid
    untidy = [title_untidiness(items[i].title) for i in candidates]
    best = max(
        range(len(candidates)),
        key=lambda k: (-untidy[k], round(float(scores[k]), 6), -items[candidates[k]].id),
    )
    return items[candidates[best]].id


# A title as a site or a wire gives it, not as a reader wants it: cut short ("Turnaround
# plans ..."), a wire version ("UPDATE 1-", "REFILE-"), a site's name or section beside it
# ("... - WNCN: News, Weather", "Esther Williams - Esther Williams: ...").
_CUT_SHORT = re.compile(r"(?:\.\.\.|…)\s*$")
_WIRE_VERSION = re.compile(
    r"^\s*(?:UPDATE|WRAPUP|REFILE|CORRECTED|RPT|REPEAT)(?:\s+\d{1,2})?\s*-", re.IGNORECASE
)
_BESIDE = re.compile(r"\s[-–—|]\s")


def title_untidiness(title: str) -> int:
    """How far a title is from one a reader wants to see as a story's headline: cut short and
    a wire version count 2, each site name or section set beside it with " - " or " | " 1. A
    story takes the tidiest of its reports' titles, then the nearest its centre."""
    return (
        2 * bool(_CUT_SHORT.search(title))
        + 2 * bool(_WIRE_VERSION.match(title))
        + len(_BESIDE.findall(title))
    )


# Words of a dateline that say when or who posted, not what happened.
_DATELINE_WORDS = CALENDAR_WORDS | frozenset(
    "am pm et pt ct mt gmt utc est edt pst pdt posted updated published last modified by".split()  # noqa: SIM905
)


def says_what(title: str) -> bool:
    """Whether a title has two words besides dates, times and "Posted:" (a page's dateline that
    a feed or a scraper took for the title says none)."""
    return sum(1 for w in words(title) if w not in _DATELINE_WORDS and not w.isdigit()) >= 2


# ---------------------------------------------------------------- keywords


def story_keywords(
    texts_per_story: Sequence[Sequence[str]], k: int = KEYWORDS_PER_STORY
) -> list[list[str]]:
    """Top words per story by class-based TF-IDF: a word's frequency in the story, weighted by how
    rare it is across all stories."""
    return _keywords(
        [[_keyword_forms(words(clean_text(t))) for t in texts] for texts in texts_per_story], k
    )


# The endings of "we've", "they're", "don't", "I'm": such a word is a stop word's contraction.
_CONTRACTED = frozenset({"ve", "re", "ll", "d", "t", "m"})


def _keyword_forms(tokens: list[str]) -> list[str]:
    """Words as keywords show them: "Benzinga's" is benzinga, "it's" is it (a stop word), and
    contractions ("we've", "don't") are no words; "O'Brien" stays."""
    out = []
    for token in tokens:
        if token.endswith("'s"):
            token = token[:-2]
        elif "'" in token and token.rsplit("'", 1)[1] in _CONTRACTED:
            continue
        out.append(token)
    return out


def _keywords(tokens_per_story: Sequence[Sequence[list[str]]], k: int) -> list[list[str]]:
    """``story_keywords`` from each text's words: counted by C loops (``Counter``) over all words,
    then scored once per distinct word of a story, with each word's weight computed once."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    everywhere = Counter(chain.from_iterable(chain.from_iterable(tokens_per_story)))
    # counted words: no stop words, no single letters; ranked words: not numbers either
    counted = {w: n for w, n in everywhere.items() if len(w) > 1 and w not in ENGLISH_STOP_WORDS}
    average_words = sum(counted.values()) / max(len(tokens_per_story), 1)
    weight = {w: math.log(1 + average_words / n) for w, n in counted.items() if not w.isdigit()}
    keywords = []
    for texts in tokens_per_story:
        story = Counter(chain.from_iterable(texts))
        total = sum(n for w, n in story.items() if w in counted) or 1
        scored = [
            (-(n / total) * weight[w], w)
            for w, n in story.items()
            if w in weight and w not in _REPORTING_WORDS
        ]
        chosen: list[str] = []
        stems: set[str] = set()
        # a few more than k: one word's other forms ("died" beside "dies") give way
        for _, word in heapq.nsmallest(3 * k, scored):
            if (stem := _stem(word)) not in stems:
                stems.add(stem)
                chosen.append(word)
            if len(chosen) == k:
                break
        keywords.append(chosen)
    return keywords


# Words every kind of news uses to say that something was said or done ("says", "files",
# "plans", "dies"): no keyword says what a story is about with them.
_REPORTING_WORDS = frozenset({
    "say", "says", "said", "tell", "tells", "told", "report", "reports", "reported", "announce",
    "announces", "announced", "make", "makes", "made", "get", "gets", "got", "take", "takes",
    "took", "plan", "plans", "planned", "file", "files", "filed", "post", "posts", "posted",
    "die", "dies", "died", "set", "sets", "call", "calls", "called", "new", "latest", "update",
    "updates", "updated", "breaking", "watch", "video", "photos", "live",
})  # fmt: skip
_ENDINGS = ("ing", "ed", "es", "s")


def _stem(word: str) -> str:
    """A word's crude stem, to tell one word's forms from other words ("rallies", "rallied"
    and "rally"; "dies" and "died"; "charge", "charges" and "charged"), never to show."""
    if word.endswith(("ies", "ied")) and len(word) > 4:
        return word[:-3] + "y"
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 2:
            word = word[: -len(ending)]
            break
    return word.rstrip("e") or word
