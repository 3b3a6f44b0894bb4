"""Where cross-validation's misses come from: the grid point the training folds choose, or the model.

    python benchmarks/cv_grid.py --cache DIR [--repeat 3] [--first-dealing 0] --out FOLDS.json
    python benchmarks/cv_grid.py --read FOLDS.json [MORE.json ...]

In each fold of ``quality.py --cv`` (the same dealings), the training folds fit the evidence
model and score the grid of merge probability, headline shift and lone discount, as
``fit_evidence.py`` does; here the held-out files are also grouped at every grid point. From the
saved folds, each selection rule below is scored on the same folds (per file: mean F1, worst
fold, lowest precision; the quiet day's precision), with the held-out files' own best point as a
ceiling no rule can reach: a rule that only moves the choice cannot close more of a fold's gap
than that.

- ``argmax``: the best training score (what ``fit_evidence.choose_threshold`` ships);
- ``mean of neighbours`` / ``worst of neighbours``: each point's score averaged with, or
  bounded by, its neighbours one step along each axis (a plateau over a peak);
- ``strictest within 0.005``: of the points within 0.005 of the best, the smallest shift, then
  the highest probability.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fit_evidence as fe
from quality import cached, folds_of, load_embed, story_group

from aggregator.evaluate import bcubed
from aggregator.grouping import GroupingParams, labels_by_discount, prepare

Point = tuple[float, float, float]  # probability, headline shift, lone discount
Fold = dict  # {"dealing", "fold", "train": {key: score}, "test": {key: {file: [P, R, F1]}}}


def key(p: float, shift: float, discount: float) -> str:
    return f"p={p} shift={shift} lone={discount}"  # as fit_evidence.choose_threshold writes it


def point(text: str) -> Point:
    p, shift, discount = (float(part.split("=")[1]) for part in text.split())
    return p, shift, discount


def one_dealing(batches: dict, k: int, dealing: int) -> list[Fold]:
    params = GroupingParams()
    fold_of = folds_of(batches, k, dealing)
    folds = []
    for f in range(k):

        def part(name: str, held_out: bool, f: int = f) -> fe.Labelled:
            b = batches[name]
            keep = [
                i for i, g in enumerate(b.data.gold) if (fold_of[story_group(g)] == f) == held_out
            ]
            return b.subset(keep)

        train = {name: part(name, False) for name in batches}
        test = {name: part(name, True) for name in batches}
        model, notes = fe.fit_all(train, params)
        test["all files"], _ = fe.combined([test[x] for x in fe.FILES if x in test])
        unshifted = model.with_headline_shift(-model.headline_shift)
        held_out: dict[str, dict[str, list[float]]] = {}
        for name, batch in test.items():
            prepared = prepare(batch.data.items, batch.vectors, params)
            for shift in fe.HEADLINE_SHIFTS:
                for p in fe.PROBABILITIES:
                    variant = unshifted.with_headline_shift(shift).with_probability(p)
                    by_discount = labels_by_discount(prepared, variant, fe.LONE_DISCOUNTS)
                    for discount, labels in zip(fe.LONE_DISCOUNTS, by_discount, strict=True):
                        scores = list(bcubed(labels, batch.data.gold))
                        held_out.setdefault(key(p, shift, discount), {})[name] = scores
        folds.append(
            {"dealing": dealing, "fold": f, "train": notes["threshold_scores"], "test": held_out}
        )
        print(f"dealing {dealing} fold {f}: chose {model.merge_probability}, "
              f"{model.headline_shift}, {model.lone_discount}", flush=True)  # fmt: skip
    return folds


def argmax(train: dict[str, float]) -> str:
    """The shipped rule, with its tie-break (smaller shift, higher p, smaller discount)."""
    return max(train, key=lambda k: (round(train[k], 4), -point(k)[1], point(k)[0], -point(k)[2]))


def neighbourhood(how: Callable[[list[float]], float]) -> Callable[[dict[str, float]], str]:
    def rule(train: dict[str, float]) -> str:
        axes = (fe.PROBABILITIES, fe.HEADLINE_SHIFTS, fe.LONE_DISCOUNTS)
        smoothed = {}
        for k, score in train.items():
            at = [axis.index(v) for axis, v in zip(axes, point(k), strict=True)]
            near = [score]
            for a, axis in enumerate(axes):
                for step in (-1, 1):
                    moved = list(at)
                    moved[a] += step
                    if 0 <= moved[a] < len(axis):
                        other = key(*(axes[i][moved[i]] for i in range(3)))
                        near += [train[other]] if other in train else []
            smoothed[k] = how(near)
        return argmax(smoothed)

    return rule


def strictest_within(tolerance: float) -> Callable[[dict[str, float]], str]:
    def rule(train: dict[str, float]) -> str:
        best = max(train.values())
        near = [k for k, score in train.items() if score >= best - tolerance]
        return min(near, key=lambda k: (point(k)[1], -point(k)[0], point(k)[2]))

    return rule


RULES: dict[str, Callable[[dict[str, float]], str]] = {
    "argmax": argmax,
    "mean of neighbours": neighbourhood(lambda s: float(np.mean(s))),
    "worst of neighbours": neighbourhood(min),
    "strictest within 0.005": strictest_within(0.005),
}


def figure(name: str) -> int:
    return 0 if name.startswith(fe.SPARSE.split("-")[0]) else 2  # the quiet day: precision


def report(folds: list[Fold]) -> str:
    lines = []
    for rule_name, rule in RULES.items():
        chosen = [rule(f["train"]) for f in folds]
        common = Counter(chosen).most_common(3)
        lines.append(f"{rule_name} (most chosen: {', '.join(f'{k} ×{n}' for k, n in common)})")
        lines += _rows([f["test"][k] for f, k in zip(folds, chosen, strict=True)])
    best = [
        {name: max((t[name] for t in f["test"].values()), key=lambda s, n=name: s[figure(n)])
         for name in next(iter(f["test"].values()))}
        for f in folds
    ]  # fmt: skip
    lines.append("ceiling: each held-out file at its own best point")
    lines += _rows(best)
    return "\n".join(lines)


def _rows(per_fold: list[dict[str, list[float]]]) -> list[str]:
    rows = []
    for name in per_fold[0]:
        scores = np.array([fold[name] for fold in per_fold])
        label = name.split("-")[0]
        if figure(name) == 0:
            rows.append(f"  {label:8} P {scores[:, 0].mean():.3f}  worst {scores[:, 0].min():.3f}")
            continue
        f1, precision = scores[:, 2], scores[:, 0]
        rows.append(
            f"  {label:8} F1 {f1.mean():.3f}  worst {f1.min():.3f}  lowest P {precision.min():.3f}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--cache", type=Path, default=None, help="folder for cached vectors")
    parser.add_argument("--cv", type=int, default=5, metavar="K")
    parser.add_argument("--repeat", type=int, default=3, metavar="R")
    parser.add_argument("--first-dealing", type=int, default=0, metavar="D")
    parser.add_argument("--out", type=Path, help="save the folds (JSON) here")
    parser.add_argument("--read", type=Path, nargs="*", help="report on saved folds instead")
    args = parser.parse_args()
    if args.read:
        print(report([f for path in args.read for f in json.loads(path.read_text())]))
        return
    embed, name = load_embed("auto")
    batches = fe.load(args.data, cached(embed, args.cache, name))
    dealings = range(args.first_dealing, args.first_dealing + args.repeat)
    with ProcessPoolExecutor(max(1, min(args.repeat, os.cpu_count() or 1))) as pool:
        runs = pool.map(one_dealing, [batches] * args.repeat, [args.cv] * args.repeat, dealings)
        folds = [f for run in runs for f in run]
    if args.out:
        args.out.write_text(json.dumps(folds))
    print(report(folds))


if __name__ == "__main__":
    main()
