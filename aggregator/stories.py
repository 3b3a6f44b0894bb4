"""Turn grouping labels into ``Story`` records with stable ids, headlines, keywords and copies."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from aggregator.grouping import jaccard, normalise, shingles, words_without_stopwords
from aggregator.models import Item, Story, StoryMember, StoryStatus

COPY_JACCARD = 0.8  # word-shingle overlap from which an item counts as a copy of an earlier one
KEYWORDS_PER_STORY = 4


def make_stories(
    items: Sequence[Item],
    vectors: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    previous: Mapping[int, str] = {},
) -> list[Story]:
    """One ``Story`` per label, largest first.

    ``previous`` maps item id -> story id from the previous run, so a story keeps its id as it grows.
    """
    clusters = _clusters(items, labels)
    unit = normalise(vectors) if len(items) else np.zeros((0, 1), dtype=np.float32)
    ids = assign_story_ids([[items[i].id for i in c] for c in clusters], previous)
    keywords = story_keywords([[_text(items[i]) for i in c] for c in clusters])
    stories = []
    for cluster, story_id, words in zip(clusters, ids, keywords, strict=True):
        members = [items[i] for i in cluster]
        copy_of = find_copies(members)
        headline = _headline(cluster, unit, items, copy_of)
        stories.append(
            Story(
                id=story_id,
                headline_item_id=headline,
                members=tuple(StoryMember(m, copy_of.get(m.id)) for m in members),
                keywords=tuple(words),
                status=_status(story_id, members, previous),
            )
        )
    return stories


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


# ---------------------------------------------------------------- ids and status


def assign_story_ids(clusters: Sequence[Sequence[int]], previous: Mapping[int, str]) -> list[str]:
    """A stable id per cluster of item ids (clusters given largest first).

    A cluster takes the previous id most of its items had; larger clusters choose first, so an id
    claimed by a larger cluster is not reused. Other clusters get a new id derived from their
    earliest item id, never one that was in use before.
    """
    taken = set(previous.values())
    claimed: set[str] = set()
    ids: list[str | None] = [None] * len(clusters)
    for index in sorted(range(len(clusters)), key=lambda c: -len(clusters[c])):
        votes = Counter(previous[i] for i in clusters[index] if i in previous)
        for candidate, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0])):
            if candidate not in claimed:
                ids[index] = candidate
                claimed.add(candidate)
                break
    for index, cluster in enumerate(clusters):
        if ids[index] is None:
            ids[index] = _fresh_id(min(cluster), taken | claimed)
            claimed.add(ids[index])
    return [i for i in ids if i is not None]


def _fresh_id(earliest_item: int, in_use: set[str]) -> str:
    base = "s-" + hashlib.sha1(str(earliest_item).encode()).hexdigest()[:10]
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


def find_copies(members: Sequence[Item], threshold: float = COPY_JACCARD) -> dict[int, int]:
    """Item id -> id of the earlier original it nearly repeats (members in publication order)."""
    originals: list[tuple[int, frozenset[str]]] = []
    identical: dict[frozenset[str], int] = {}
    copy_of: dict[int, int] = {}
    for item in members:
        text = shingles(_text(item))
        source = identical.get(text) if text else None
        if source is None and text:
            source = next((oid for oid, s in originals if _similar(text, s, threshold)), None)
        if source is None:
            originals.append((item.id, text))
            identical[text] = item.id
        else:
            copy_of[item.id] = source
    return copy_of


def _similar(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    # sets of very different sizes cannot reach the threshold: skip the intersection
    if min(len(a), len(b)) < threshold * max(len(a), len(b)):
        return False
    return jaccard(a, b) >= threshold


def _headline(
    cluster: Sequence[int], unit: np.ndarray, items: Sequence[Item], copy_of: Mapping[int, int]
) -> int:
    """The original item nearest the story's centroid (copies only if nothing else)."""
    candidates = [i for i in cluster if items[i].id not in copy_of] or list(cluster)
    centroid = unit[list(cluster)].mean(axis=0)
    scores = unit[candidates] @ centroid
    best = max(
        range(len(candidates)), key=lambda k: (round(float(scores[k]), 6), -items[candidates[k]].id)
    )
    return items[candidates[best]].id


# ---------------------------------------------------------------- keywords


def story_keywords(
    texts_per_story: Sequence[Sequence[str]], k: int = KEYWORDS_PER_STORY
) -> list[list[str]]:
    """Top words per story by class-based TF-IDF: a word's frequency in the story, weighted by how
    rare it is across all stories."""
    counts = [
        Counter(w for t in texts for w in words_without_stopwords(t)) for texts in texts_per_story
    ]
    overall: Counter[str] = Counter()
    for c in counts:
        overall.update(c)
    average_words = sum(overall.values()) / max(len(counts), 1)
    keywords = []
    for c in counts:
        total = sum(c.values()) or 1
        scored = {w: (n / total) * math.log(1 + average_words / overall[w]) for w, n in c.items()}
        ranked = sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))
        keywords.append([w for w, _ in ranked if not w.isdigit()][:k])
    return keywords
