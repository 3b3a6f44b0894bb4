"""Embedding throughput, memory and quality of the embedder backends against the naive baseline.

    nice python benchmarks/embed.py                 # 10,000 texts, every configuration
    nice python benchmarks/embed.py --n 2000        # quicker
    nice python benchmarks/embed.py --configs baseline,onnx-int8 --threads 1
    python benchmarks/embed.py --device cuda --configs baseline,torch --no-grouping --keep DIR
    python benchmarks/embed.py --score DIR          # grouping F1 of vectors kept elsewhere

Texts are built from the labelled files' title + summary (~100 words), varied to reach --n.
Each configuration runs in its own process, so peak RSS and thread pools are its own; on a
shared host use --rounds to interleave repeated runs and keep each configuration's fastest:

- baseline:  SentenceTransformer(model).encode(texts), all defaults (the naive way)
- torch:     our torch backend (truncated to --max-tokens, length-sorted batches)
- onnx-fp32: our ONNX export, fp32
- onnx-int8: our ONNX export, int8 weights (the "auto" choice on CPU)

On a GPU (--device cuda) baseline and torch run there (torch in fp16, the "auto" choice on a
GPU). Where the grouping's libraries are missing (a GPU machine, say), --keep DIR saves the
vectors and --score DIR scores them on another machine.

Quality: cosine agreement of the vectors (int8 vs fp32, each vs baseline) and, unless
--no-grouping, the B-cubed F1 of grouping each labelled file with each configuration's vectors.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CONFIGS = ("baseline", "torch", "onnx-fp32", "onnx-int8")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WARMUP_TEXTS = 16


# ---------------------------------------------------------------- texts


def embedding_text(title: str, summary: str) -> str:
    """The grouping stage's text when it is there, else the same idea: title, then summary."""
    try:
        from aggregator.grouping import embedding_text as project_text
    except ImportError:
        return f"{title}. {summary}".strip() if summary else title
    return project_text(title, summary)


def read_rows(data_dir: Path) -> dict[str, list[dict]]:
    files = sorted(data_dir.glob("*.jsonl"))
    if not files:
        sys.exit(f"no *.jsonl files in {data_dir}; pass --data")
    return {f.name: [json.loads(line) for line in f.open() if line.strip()] for f in files}


def build_texts(rows: dict[str, list[dict]], n: int) -> list[str]:
    """n texts of title + ~100 words; beyond the distinct items, summaries are rotated a few
    words per round, which keeps the lengths and vocabulary but not the exact text."""
    items = [(r["title"], r["summary"]) for file in rows.values() for r in file if r["summary"]]
    texts = []
    for i in range(n):
        title, summary = items[i % len(items)]
        words = summary.split()
        shift = (i // len(items)) * 7 % max(len(words), 1)
        texts.append(embedding_text(title, " ".join(words[shift:] + words[:shift])))
    return texts


# ---------------------------------------------------------------- one configuration (child)


def load_config(config: str, args: argparse.Namespace):  # -> (embed function, max tokens)
    from aggregator.embed import DEFAULT_MODEL, load_embedder, resolve_model

    if config == "baseline":
        import torch
        from sentence_transformers import SentenceTransformer

        if args.threads:
            torch.set_num_threads(args.threads)
        source = resolve_model(args.model or DEFAULT_MODEL)
        model = SentenceTransformer(str(source.folder or source.name), device=args.device)
        return model.encode, model.max_seq_length
    embedder = load_embedder(
        args.model or DEFAULT_MODEL,
        backend=config,
        max_tokens=args.max_tokens,
        device=args.device,
        threads=args.threads,
    )
    return embedder.embed, args.max_tokens


def run_worker(args: argparse.Namespace) -> None:
    texts = json.loads(Path(args.texts_file).read_text())
    started = time.perf_counter()
    embed, max_tokens = load_config(args.worker, args)
    load_s = time.perf_counter() - started
    embed(texts[:WARMUP_TEXTS])
    started = time.perf_counter()
    vectors = np.asarray(embed(texts), dtype=np.float32)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if args.device.startswith("cuda"):
        import torch

        peak_mb = torch.cuda.max_memory_allocated() / 2**20  # the GPU's memory, not the host's
    np.save(args.out_prefix + "-bench.npy", _unit_rows(vectors))
    if args.labelled_file:
        labelled = json.loads(Path(args.labelled_file).read_text())
        np.save(args.out_prefix + "-labelled.npy", _unit_rows(np.asarray(embed(labelled))))
    result = {"load_s": load_s, "seconds": seconds, "peak_mb": peak_mb, "max_tokens": max_tokens}
    print(json.dumps(result))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------- grouping quality


def bcubed_f1(pred: Sequence[object], gold: Sequence[object]) -> float:
    both = Counter(zip(pred, gold, strict=True))
    pred_sizes, gold_sizes = Counter(pred), Counter(gold)
    precision = sum(n * n / pred_sizes[p] for (p, _), n in both.items()) / len(pred)
    recall = sum(n * n / gold_sizes[g] for (_, g), n in both.items()) / len(pred)
    return 2 * precision * recall / (precision + recall)


def group_labels(path: Path, vectors: np.ndarray) -> list[int]:
    """The project's grouping (defaults) when it is there; else HDBSCAN as the notes advise."""
    try:
        from aggregator.evaluate import load_dataset
        from aggregator.grouping import GroupingParams, group
    except ImportError:
        return _hdbscan_labels(vectors)
    return [int(x) for x in group(load_dataset(path).items, vectors, GroupingParams())]


def _hdbscan_labels(vectors: np.ndarray) -> list[int]:
    import hdbscan

    clusterer = hdbscan.HDBSCAN(min_cluster_size=2, min_samples=1, cluster_selection_method="leaf")
    labels = clusterer.fit_predict(vectors.astype(np.float64))
    singletons = iter(range(labels.max() + 1, labels.max() + 1 + len(labels)))
    return [int(x) if x >= 0 else next(singletons) for x in labels]  # noise: its own story


def grouping_f1(data_dir: Path, rows: dict[str, list[dict]], vectors: np.ndarray) -> dict:
    scores, start = {}, 0
    for name, file_rows in rows.items():
        part = vectors[start : start + len(file_rows)]
        start += len(file_rows)
        labels = group_labels(data_dir / name, part)
        scores[name] = bcubed_f1(labels, [r["story"] for r in file_rows])
    return scores


# ---------------------------------------------------------------- driver (parent)


def run_config(config: str, args: argparse.Namespace, work: Path, grouping: bool) -> dict:
    """Runs one configuration in a child process; its vectors land in `work`."""
    command = [
        sys.executable, __file__, "--worker", config,
        "--texts-file", str(work / "texts.json"), "--out-prefix", str(work / config),
        "--max-tokens", str(args.max_tokens), "--threads", str(args.threads or 0),
        "--device", args.device,
    ]  # fmt: skip
    if args.model:
        command += ["--model", args.model]
    if grouping:
        command += ["--labelled-file", str(work / "labelled.json")]
    print(f"running {config} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{config} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(results: dict[str, dict], n: int, threads: int | None) -> None:
    base = results.get("baseline")
    print(f"\n{n} texts, title + ~100 words, threads: {threads or 'all cores'}, fastest run")
    print("(peak: the GPU's allocated memory when on a GPU, else the process's RSS)")
    print(
        f"{'config':<10} {'tokens':>6} {'load s':>7} {'items/s':>8} {'× base':>7} {'peak RSS':>9}"
    )
    for config, r in results.items():
        rate = n / r["seconds"]
        ratio = f"{rate / (n / base['seconds']):.2f}" if base else "-"
        print(
            f"{config:<10} {r['max_tokens']:>6} {r['load_s']:>7.1f} {rate:>8.1f} {ratio:>7} "
            f"{r['peak_mb']:>6.0f} MB"
        )


def print_agreement(work: Path, configs: Sequence[str]) -> None:
    vectors = {c: np.load(work / f"{c}-bench.npy") for c in configs}
    pairs = [("onnx-int8", "onnx-fp32")] + [(c, "baseline") for c in configs if c != "baseline"]
    print("\ncosine agreement per text")
    for a, b in pairs:
        if a in vectors and b in vectors:
            cos = np.sum(vectors[a] * vectors[b], axis=1)
            print(f"  {a} vs {b}: mean {cos.mean():.4f}  min {cos.min():.4f}")


def print_grouping(
    work: Path, data_dir: Path, rows: dict[str, list[dict]], configs: Sequence[str]
) -> None:
    scores = {c: grouping_f1(data_dir, rows, np.load(work / f"{c}-labelled.npy")) for c in configs}
    print("\ngrouping B-cubed F1 on the labelled files (Δ vs baseline)")
    print(f"  {'config':<10} " + " ".join(f"{name:>26}" for name in rows))
    for config, by_file in scores.items():
        cells = []
        for name, f1 in by_file.items():
            delta = f1 - scores["baseline"][name] if "baseline" in scores else 0.0
            cells.append(f"{f1:.3f} ({delta:+.3f})".rjust(26))
        print(f"  {config:<10} " + " ".join(cells))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="texts to embed (default 10000)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    parser.add_argument("--max-tokens", type=int, default=112, help="as the embedder (112)")
    parser.add_argument("--model", default="", help="model name or folder (default: MiniLM)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of *.jsonl")
    parser.add_argument("--rounds", type=int, default=1, help="repeat, keep the fastest run")
    parser.add_argument("--no-grouping", action="store_true", help="skip the grouping check")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--keep", type=Path, help="keep the vectors in this folder")
    parser.add_argument("--score", type=Path, help="only score vectors kept with --keep")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--texts-file", help=argparse.SUPPRESS)
    parser.add_argument("--labelled-file", help=argparse.SUPPRESS)
    parser.add_argument("--out-prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.threads = args.threads or None
    if args.worker:
        run_worker(args)
        return
    configs = [c for c in args.configs.split(",") if c]
    if unknown := set(configs) - set(CONFIGS):
        parser.error(f"unknown configs {sorted(unknown)}; choose from {CONFIGS}")
    rows = read_rows(args.data)
    if args.score:
        kept = sorted(
            p.name.removesuffix("-labelled.npy") for p in args.score.glob("*-labelled.npy")
        )
        print_grouping(args.score, args.data, rows, kept)
        return
    grouping = not args.no_grouping
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        work = Path(tmp)
        (work / "texts.json").write_text(json.dumps(build_texts(rows, args.n)))
        labelled = [embedding_text(r["title"], r["summary"]) for f in rows.values() for r in f]
        (work / "labelled.json").write_text(json.dumps(labelled))
        results: dict[str, dict] = {}
        for round_ in range(args.rounds):
            for config in configs:  # interleaved, so a busy spell hits every config alike
                result = run_config(
                    config, args, work, (grouping or args.keep is not None) and round_ == 0
                )
                if config not in results or result["seconds"] < results[config]["seconds"]:
                    results[config] = result
        print_table(results, args.n, args.threads)
        print_agreement(work, configs)
        if grouping:
            print_grouping(work, args.data, rows, configs)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in work.glob("*.npy"):
                shutil.copy(path, args.keep / path.name)


if __name__ == "__main__":
    main()
