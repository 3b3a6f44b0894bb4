"""Items in writing systems the embedding model reads poorly, read for what sets them apart.

An English model (the default) reads Arabic letter by letter and Chinese as unknown tokens: any
two such headlines come out ~0.7 alike, more than two reports of one English story, and a day
of unrelated ones became one story. What sets them apart is what each has beyond what all texts
of its writing system share. That shared part is measured on ``script_reference.json``: two
dozen unrelated news texts per writing system (farming, football, weather, stocks, medicine,
crime...), embedded with the model in use, pooled with the window's own items of the system.
The reference lets a window of a few items be read at all (six Arabic items were one story),
and a story that fills a window takes less of the shared part with it; the window's items let
a language the reference does not stand for (Persian, written in Arabic letters) be read by
its own shared part once it has many items.
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
# average is one it reads poorly: the default model gives 0.6-0.8 for the nine systems in the
# file, and unrelated English news ~0.1; a model that reads the system leaves it as it is.
POORLY_READ = 0.4

# Without a reference (writing systems not in the file), the window's own items of the system
# stand in, where there are enough of them to tell their shared part from any one story's.
WINDOW_MEAN_ITEMS = 10

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
        unit = normalise(embed(list(texts)))
        count = len(unit)
        mean = unit.mean(axis=0)
        # mean pairwise similarity, self-pairs left out: |sum|^2 = n + sum over pairs
        alike = (float(mean @ mean) * count * count - count) / (count * (count - 1))
        if alike >= POORLY_READ:
            centres[script] = mean
    return centres


def centred_by_script(
    unit: np.ndarray, items: Sequence[Item], centres: Centres | None = None
) -> np.ndarray:
    """``unit`` with the items of each writing system other than Latin less the part all texts
    of that system share: the mean of its reference texts and the batch's items of it where
    ``script_centres`` measured one (none: the model reads it), else the mean of the batch's
    own items of it where there are ``WINDOW_MEAN_ITEMS`` or more (a story that makes most of
    them then loses some of its common part too)."""
    rows: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        rows.setdefault(item_script(item), []).append(index)
    centred = unit
    for script, indexes in rows.items():
        if script == "latin":
            continue
        if centres is not None and script in reference_texts():
            if script not in centres:
                continue  # the model reads it
            # the mean over the reference texts and the window's items together: a window of
            # a few items leans on the reference, a large one on itself (a language of the
            # system that the reference's does not stand for, as Persian for Arabic)
            count = len(reference_texts()[script])
            shared = (count * centres[script] + unit[indexes].sum(axis=0)) / (count + len(indexes))
        elif len(indexes) >= WINDOW_MEAN_ITEMS:
            shared = unit[indexes].mean(axis=0)
        else:
            continue
        if centred is unit:
            centred = unit.copy()
        if centres is not None and float(np.linalg.norm(centres.get(script, 0))) > _ONE_VECTOR:
            # the model gives all its texts one vector: their characters stand in
            texts = [embedding_text(items[k].title, items[k].summary) for k in indexes]
            centred[indexes] = character_vectors(texts, unit.shape[1])
            continue
        part = unit[indexes] - shared
        norms = np.linalg.norm(part, axis=1, keepdims=True)
        # a row no different from the shared part keeps its own direction
        centred[indexes] = np.where(norms > 1e-6, part / np.maximum(norms, 1e-12), unit[indexes])
    return centred


# A reference whose mean of unit vectors is this long is one vector: the default model reads
# every Thai text without digits or Latin letters as unknown tokens only.
_ONE_VECTOR = 0.99


def character_vectors(texts: Sequence[str], dimensions: int) -> np.ndarray:
    """Unit rows of ``texts``' character 2- and 3-grams hashed into ``dimensions`` (signed, so
    dot products stay near the n-gram counts' own): two reports sharing names and words come
    out alike, unrelated texts near orthogonal, whatever the model reads."""
    from sklearn.feature_extraction.text import HashingVectorizer

    hashed = HashingVectorizer(
        n_features=dimensions, analyzer="char_wb", ngram_range=(2, 3), norm="l2"
    ).transform(texts)
    return np.asarray(hashed.todense(), dtype=np.float32)
