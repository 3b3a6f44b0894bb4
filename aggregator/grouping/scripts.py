"""Items in writing systems the embedding model reads poorly, read for what sets them apart.

An English model (the default) reads Arabic letter by letter and Chinese as unknown tokens: any
two such headlines come out ~0.7 alike, more than two reports of one English story, and a day
of unrelated ones became one story. What sets them apart is what each has beyond what all texts
of its writing system share. That shared part is measured on ``script_reference.json``: two
dozen unrelated news texts per writing system (farming, football, weather, stocks, medicine,
crime...), embedded with the model in use, pooled with the window's own items of the system.
The reference lets a window of a few items be read at all (six Arabic items were one story),
and a story that fills a window takes less of the shared part with it; the window's items let
a language that a system's reference does not stand for (as Arabic's did not stand for
Persian, which has its own reference since) be read by its own shared part once it has many
items.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from aggregator.grouping.graph import normalise
from aggregator.grouping.text import embedding_text, item_script
from aggregator.models import Item

REFERENCE_FILE = Path(__file__).with_name("script_reference.json")

# A writing system whose reference texts (unrelated news) the model finds this alike on
# average is one it reads poorly: the default model gives 0.6-0.85 for the systems in the
# file (Thai 1.0), and unrelated English news ~0.1; a model that reads the system leaves it as
# it is.
POORLY_READ = 0.4

# Without a reference (writing systems not in the file), the window's own items of the system
# stand in, where there are enough of them to tell their shared part from any one story's.
WINDOW_MEAN_ITEMS = 10

# Texts whose vectors are this alike on average are one vector to the model: it reads their
# system as unknown tokens only (the default model: Thai 1.00, Amharic and Khmer 0.97-1.00;
# the least read system with letters it knows, Greek, 0.82).
ONE_VECTOR = 0.95

Embed = Callable[[list[str]], np.ndarray]
Centres = Mapping[str, np.ndarray]  # writing system -> what its texts share (script_centres)


@functools.cache
def reference_texts() -> Mapping[str, tuple[str, ...]]:
    """Writing system name (``text.script_of``) -> its unrelated reference news texts."""
    data = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    return {script: tuple(texts) for script, texts in data.items()}


def scripts_of(items: Sequence[Item]) -> set[str]:
    """The writing systems other than Latin that ``items`` are in."""
    return {script for script in map(item_script, items) if script != "latin"}


def script_centres(embed: Embed, scripts: set[str] | Sequence[str]) -> dict[str, np.ndarray]:
    """For each of ``scripts`` with reference texts that ``embed`` (texts -> unit rows) reads
    poorly, the mean of its reference texts' vectors: the part every text of it shares."""
    centres = {}
    for script in sorted(scripts):
        texts = reference_texts().get(script)
        if not texts:
            continue
        mean = normalise(embed(list(texts))).mean(axis=0)
        if mean_similarity(mean, len(texts)) >= POORLY_READ:
            centres[script] = mean
    return centres


def mean_similarity(mean: np.ndarray, count: int) -> float:
    """The mean similarity of ``count`` unit rows over their pairs (each with itself left
    out), from the mean of the rows: |sum|^2 is ``count`` plus the sum over ordered pairs."""
    if count < 2:
        return 0.0
    return (float(mean @ mean) * count * count - count) / (count * (count - 1))


def centred_by_script(
    unit: np.ndarray, items: Sequence[Item], centres: Centres | None = None
) -> np.ndarray:
    """``unit`` with the items of each writing system other than Latin less the part all texts
    of that system share: the mean of its reference texts and the batch's items of it where
    ``script_centres`` measured one (none: the model reads it), else the mean of the batch's
    own items of it where there are ``WINDOW_MEAN_ITEMS`` or more (a story that makes most of
    them then loses some of its common part too). Where the model gives all texts of a system
    one vector (its reference texts, or two or more of the batch's, ``ONE_VECTOR`` alike), it
    sees nothing in them, and their hashed characters stand in for their vectors."""
    rows: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        rows.setdefault(item_script(item), []).append(index)
    centred = unit
    for script, indexes in rows.items():
        if script == "latin":
            continue
        own = unit[indexes]
        if centres is not None and script in reference_texts():
            if script not in centres:
                continue  # the model reads it
            count = len(reference_texts()[script])
            one_vector = mean_similarity(centres[script], count) >= ONE_VECTOR
            # the mean over the reference texts and the window's items together: a window of
            # a few items leans on the reference, a large one on itself (a language of the
            # system that the reference's does not stand for, as Persian for Arabic)
            shared = (count * centres[script] + own.sum(axis=0)) / (count + len(indexes))
        else:
            shared = own.mean(axis=0)
            one_vector = mean_similarity(shared, len(indexes)) >= ONE_VECTOR
            if not one_vector and len(indexes) < WINDOW_MEAN_ITEMS:
                continue
        if centred is unit:
            centred = unit.copy()
        if one_vector:
            texts = [embedding_text(items[k].title, items[k].summary) for k in indexes]
            centred[indexes] = character_vectors(texts, unit.shape[1])
            continue
        part = own - shared
        norms = np.linalg.norm(part, axis=1, keepdims=True)
        # a row no different from the shared part keeps its own direction
        centred[indexes] = np.where(norms > 1e-6, part / np.maximum(norms, 1e-12), own)
    return centred


def character_vectors(texts: Sequence[str], dimensions: int) -> np.ndarray:
    """Unit rows of ``texts``' character 2- and 3-grams hashed into ``dimensions`` (signed, so
    dot products stay near the n-gram counts' own): two reports sharing names and words come
    out alike, unrelated texts near orthogonal, whatever the model reads."""
    from sklearn.feature_extraction.text import HashingVectorizer

    hashed = HashingVectorizer(
        n_features=dimensions, analyzer="char_wb", ngram_range=(2, 3), norm="l2"
    ).transform(texts)
    return np.asarray(hashed.todense(), dtype=np.float32)
