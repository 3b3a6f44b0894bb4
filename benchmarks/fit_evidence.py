"""Fit the story grouping's evidence weights on labelled pairs, and write evidence_weights.json.

    python benchmarks/fit_evidence.py [--data ../shared/data] [--cache DIR] [--dry-run]

Training pairs are the candidate pairs grouping itself looks at: each item's nearest neighbours
in the k-nearest-neighbour graph of its file (and, for pairs of items from two files, of all
files as one day), labelled same story or not. sparse-dev.jsonl adds the "nearest neighbour but
another story" kind. Each source weighs the same in the fit. The merge probability, how much
lower the bar is for two headlines than for two full texts, and how much lower it is for an item
left alone to join a story of several, are chosen by grouping the files on a grid of candidate
values (see ``choose_threshold``); the whole procedure is what
``benchmarks/quality.py --cv`` repeats inside each cross-validation fold.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.evaluate import Dataset, bcubed, concat_datasets, load_dataset
from aggregator.grouping import (
    GroupingParams,
    Prepared,
    embedding_text,
    labels_by_discount,
    merge_pass,
    neighbour_graph,
    normalise,
    prepare,
)
from aggregator.grouping.evidence import (
    FEATURES,
    WEIGHTS_FILE,
    EvidenceModel,
    fit,
    inner_features,
    members,
    pair_features,
)
from aggregator.grouping.merge import Merger
from aggregator.grouping.text import batch_text

FILES = ("basil-dev.jsonl", "ecbplus-dev.jsonl", "uci-headlines-dev.jsonl")
SPARSE = "sparse-dev.jsonl"
TEACHER_FLOOR = 0.02  # group pairs less likely than this under the item-pair model are not asked
PROBABILITIES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Log-odds added to the evidence of headline-only items joining a group (full text gets none,
# nor do two lone items): the pair model sets one bar for both, while grouping needs a lower one
# for headlines, whose cosine says less (a bar of 0.7 for full text and 0.4 for headlines is a
# shift of 1.25).
HEADLINE_SHIFTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
# How much lower the bar is for an item left alone to join a story of several (log-odds).
LONE_DISCOUNTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
PRECISION_TARGETS = {SPARSE: 0.95, "uci-headlines-dev.jsonl": 0.85}
Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Labelled:
    """A labelled batch and its vectors."""

    name: str
    data: Dataset
    vectors: np.ndarray

    def subset(self, keep: Sequence[int]) -> Labelled:
        d = self.data
        picked = Dataset(
            [d.items[i] for i in keep], [d.gold[i] for i in keep], [d.ids[i] for i in keep]
        )
        return Labelled(self.name, concat_datasets([picked]), self.vectors[list(keep)])


def data_files(data: Path) -> dict[str, Path]:
    """Each kind of labelled file found in ``data``, under its dev file's name: the dev file
    itself, else the one ``.jsonl`` file named after its kind (``basil-test.jsonl``,
    ``ecbplus-2015.jsonl``, ``uci-headlines-test.jsonl``, ``sparse-test.jsonl``), so that the
    same commands measure another split of the same sources."""
    found: dict[str, Path] = {}
    for name in (*FILES, SPARSE):
        kind = name.removesuffix("-dev.jsonl")
        if (data / name).exists():
            found[name] = data / name
            continue
        matches = sorted(data.glob(f"{kind}*.jsonl"))
        if len(matches) > 1:
            listed = ", ".join(m.name for m in matches)
            raise SystemExit(f"{data}: more than one {kind} file ({listed}); keep one per folder")
        if matches:
            found[name] = matches[0]
    return found


def load(data: Path, embed: Embed) -> dict[str, Labelled]:
    """The labelled files that exist (``data_files``), embedded."""
    out = {}
    for name, path in data_files(data).items():
        dataset = load_dataset(path)
        texts = [embedding_text(i.title, i.summary) for i in dataset.items]
        out[name] = Labelled(name, dataset, np.asarray(embed(texts), dtype=np.float32))
    return out


def combined(batches: Sequence[Labelled]) -> tuple[Labelled, list[str]]:
    """All batches as one day, and which batch each item came from."""
    data = concat_datasets([b.data for b in batches])
    vectors = np.concatenate([b.vectors for b in batches])
    sources = [b.name for b in batches for _ in b.data.items]
    return Labelled("all files", data, vectors), sources


def candidate_pairs(batch: Labelled, params: GroupingParams) -> tuple[np.ndarray, np.ndarray]:
    """The graph's edges of a batch, each once as (a, b) with a < b."""
    graph = neighbour_graph(normalise(batch.vectors), params)
    a = np.minimum(graph.sources, graph.targets)
    b = np.maximum(graph.sources, graph.targets)
    codes = np.unique(a * len(batch.vectors) + b)
    return codes // len(batch.vectors), codes % len(batch.vectors)


def pair_rows(
    batch: Labelled, params: GroupingParams, only: Callable[[int, int], bool] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Features and same-story labels of a batch's candidate pairs (``only``: a filter)."""
    unit = normalise(batch.vectors)
    text = batch_text(batch.data.items)
    singles = [members([i], unit, text) for i in range(len(unit))]
    rows, labels = [], []
    for a, b in zip(*candidate_pairs(batch, params), strict=True):
        a, b = int(a), int(b)
        if only is not None and not only(a, b):
            continue
        rows.append(pair_features(singles[a], singles[b], text))
        labels.append(batch.data.gold[a] == batch.data.gold[b])
    if not rows:
        return np.zeros((0, len(FEATURES))), np.zeros(0, dtype=bool)
    return np.array(rows), np.array(labels)


class TeacherMerger(Merger):
    """The merge pass as grouping runs it, except that the gold labels decide each merge: it
    records the evidence of every pair of groups it is asked about (down to a low floor), so the
    model also learns from groups of many items, as the merge pass will use it."""

    def __init__(self, unit, batch, model, gold, floor: float) -> None:
        super().__init__(unit, batch, model)
        self.gold = gold
        self.threshold = floor
        self.records: list[tuple[np.ndarray, bool]] = []

    def same(self, a: int, b: int) -> bool:
        """Most pairs across the two groups are of one story."""
        ga = Counter(self.gold[i] for i in self.items[a])
        gb = Counter(self.gold[i] for i in self.items[b])
        together = sum(n * gb[g] for g, n in ga.items())
        return together * 2 >= len(self.items[a]) * len(self.items[b])

    def accept(self, a: int, b: int) -> bool:
        features = pair_features(self.groups[a], self.groups[b], self.batch)
        same = self.same(a, b)
        if len(self.items[a]) * len(self.items[b]) > 1:  # item pairs are counted elsewhere
            self.records.append((features, same))
        return same


def group_rows(
    batch: Labelled, params: GroupingParams, model: EvidenceModel
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the fragments and group pairs a gold-guided grouping meets."""
    prepared = prepare(batch.data.items, batch.vectors, params)
    gold = batch.data.gold
    rows: list[tuple[np.ndarray, bool]] = []

    def pure(fragment: list[int]) -> bool:
        answer = len({gold[i] for i in fragment}) == 1
        group = members(fragment, prepared.unit, prepared.batch)
        rows.append((inner_features(group, prepared.batch), answer))
        return answer

    teacher = TeacherMerger(prepared.unit, prepared.batch, model, gold, floor=model.threshold)
    merge_pass(prepared, teacher, pure)
    rows += teacher.records
    if not rows:
        return np.zeros((0, len(FEATURES))), np.zeros(0, dtype=bool)
    return np.array([r for r, _ in rows]), np.array([s for _, s in rows])


def training_set(
    batches: dict[str, Labelled], params: GroupingParams, model: EvidenceModel | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of every batch, pairs across files of all files as one day, and sample weights that
    give every source the same total weight. With a ``model``, also the group pairs that a
    gold-guided grouping with it meets (each batch's group rows weigh as much as its pairs)."""
    parts = [pair_rows(b, params) for b in batches.values()]
    files = [batches[f] for f in FILES if f in batches]
    if len(files) > 1:
        day, sources = combined(files)
        parts.append(pair_rows(day, params, lambda a, b: sources[a] != sources[b]))
    if model is not None:
        parts += [group_rows(b, params, model) for b in batches.values()]
    parts = [(x, y) for x, y in parts if len(y)]
    features = np.concatenate([x for x, _ in parts])
    same = np.concatenate([y for _, y in parts])
    weights = np.concatenate([np.full(len(y), 1.0 / len(y)) for _, y in parts])
    return features, same, weights * len(same) / len(parts)


def choose_threshold(
    batches: dict[str, Labelled], model: EvidenceModel, params: GroupingParams
) -> tuple[EvidenceModel, dict[str, float]]:
    """The merge probability, headline shift and lone discount that group the given (training)
    batches best: the mean of each file's B-cubed F1 (all files as one day too) and the quiet
    day's precision, less every precision short of its target in full (precision first). Ties
    go to the smaller shift, then the higher probability, then the smaller discount. Each batch
    is prepared once for the whole grid, and merged once per probability and shift."""
    days = dict(batches)
    files = [batches[f] for f in FILES if f in batches]
    if len(files) > 1:
        days["all files"], _ = combined(files)
    prepared = {
        name: (prepare(b.data.items, b.vectors, params), b.data.gold) for name, b in days.items()
    }
    scores = {
        (p, shift, discount): score
        for shift in HEADLINE_SHIFTS
        for p in PROBABILITIES
        for discount, score in zip(
            LONE_DISCOUNTS,
            quality_scores(prepared, model.with_headline_shift(shift).with_probability(p)),
            strict=True,
        )
    }
    p, shift, discount = max(scores, key=lambda k: (round(scores[k], 4), -k[1], k[0], -k[2]))
    chosen = model.with_headline_shift(shift).with_probability(p).with_lone_discount(discount)
    return chosen, {
        f"p={p} shift={shift} lone={discount}": round(s, 4)
        for (p, shift, discount), s in scores.items()
    }


def quality_scores(days: dict[str, tuple[Prepared, list]], model: EvidenceModel) -> list[float]:
    """The selection score of ``model`` with each of ``LONE_DISCOUNTS`` on prepared batches
    (name -> preparation, gold labels)."""
    figures = np.zeros((len(LONE_DISCOUNTS), len(days)))
    shortfalls = np.zeros((len(LONE_DISCOUNTS), len(days)))
    for column, (name, (prepared, gold)) in enumerate(days.items()):
        for row, labels in enumerate(labels_by_discount(prepared, model, LONE_DISCOUNTS)):
            precision, _, f1 = bcubed(labels, gold)
            figures[row, column] = precision if name == SPARSE else f1
            target = PRECISION_TARGETS.get(name, 0.90)
            shortfalls[row, column] = max(0.0, target - precision)
    return (figures.mean(axis=1) - shortfalls.sum(axis=1)).tolist()


def fit_all(batches: dict[str, Labelled], params: GroupingParams) -> tuple[EvidenceModel, dict]:
    features, same, weights = training_set(batches, params)
    first = fit(features, same, weights).with_probability(TEACHER_FLOOR)
    features, same, weights = training_set(batches, params, first)
    model, scores = choose_threshold(batches, fit(features, same, weights), params)
    return model, {
        "pairs": len(same),
        "same_story_pairs": int(same.sum()),
        "threshold_scores": scores,
    }


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from quality import cached, load_embed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--cache", type=Path, default=None, help="folder for cached vectors")
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the file")
    args = parser.parse_args()
    embed, name = load_embed("auto")
    batches = load(args.data, cached(embed, args.cache, name))
    model, notes = fit_all(batches, GroupingParams())
    document = {
        "features": list(FEATURES),
        "weights": [round(w, 6) for w in model.weights],
        "bias": round(model.bias, 6),
        "merge_probability": model.merge_probability,
        "headline_shift": model.headline_shift,
        "lone_discount": model.lone_discount,
        "fitted_on": sorted(batches),
        "fitted_by": "benchmarks/fit_evidence.py",
        **notes,
    }
    text = json.dumps(document, indent=2) + "\n"
    print(text)
    if not args.dry_run:
        WEIGHTS_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {WEIGHTS_FILE}")


if __name__ == "__main__":
    main()
