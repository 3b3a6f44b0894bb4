"""What full text does to story grouping: headline only, headline + feed summary, headline +
the lede of the article's full text (what `full_text: true` feeds the grouping).

    python benchmarks/fulltext.py [--data ../shared/data] [--files basil-dev,ecbplus-dev]

For each labelled file whose items carry the article text (`content`), prints B-cubed
precision/recall/F1 and pairwise F1 of the default grouping for the three inputs. Items without
a text keep their feed summary in the third column, as they would with full text on.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aggregator.embed import load_embedder
from aggregator.evaluate import Dataset, evaluate_dataset, load_dataset
from aggregator.extract import lede
from aggregator.grouping import GroupingParams

VARIANTS = ("headline only", "headline + feed summary", "headline + full-text lede")


def variants(path: Path) -> dict[str, Dataset]:
    import json

    dataset = load_dataset(path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    texts = [row.get("content") or "" for row in rows]
    headline = [replace(i, summary="") for i in dataset.items]
    full = [
        replace(i, summary=lede(text) if text else i.summary)
        for i, text in zip(dataset.items, texts, strict=True)
    ]
    return {
        VARIANTS[0]: replace(dataset, items=headline),
        VARIANTS[1]: dataset,
        VARIANTS[2]: replace(dataset, items=full),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--files", default="basil-dev,ecbplus-dev,sparse-dev")
    args = parser.parse_args()
    embedder = load_embedder("all-MiniLM-L6-v2")
    params = GroupingParams()
    print(f"{'file':<16} {'input':<27} {'items':>5} {'P':>6} {'R':>6} {'F1':>6} {'pairF1':>7}")
    for name in args.files.split(","):
        path = args.data / f"{name}.jsonl"
        for label, dataset in variants(path).items():
            report = evaluate_dataset(name, dataset, params, embedder.embed)
            print(
                f"{name:<16} {label:<27} {report.n_items:>5} {report.precision:>6.3f} "
                f"{report.recall:>6.3f} {report.f1:>6.3f} {report.pairwise_f1:>7.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
