"""Measure story grouping against labelled jsonl files.

Each line of a labelled file is one item: id, title, summary, outlet, url, published (ISO 8601
or null) and, where labelled, ``story`` (the gold story id). ``story`` never reaches the model:
only ``Item`` records and their vectors do.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from aggregator.grouping import GroupingParams, group
from aggregator.grouping.scripts import script_centres, scripts_of
from aggregator.grouping.text import UNKNOWN_TIME, embedding_text
from aggregator.models import Item

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Dataset:
    items: list[Item]
    gold: list[str | None]
    ids: list[str]  # the file's own ids, for writing predictions
    lines: tuple[int, ...] = ()  # each item's line in its file (ids may repeat in real data)

    def repeated_ids(self) -> dict[str, list[int]]:
        """Each id that several items have, with their lines."""
        lines: dict[str, list[int]] = {}
        for item_id, line in zip(self.ids, self.lines, strict=True):
            lines.setdefault(item_id, []).append(line)
        return {item_id: found for item_id, found in lines.items() if len(found) > 1}


@dataclass(frozen=True)
class EvalReport:
    file: str
    n_items: int
    n_stories: int
    precision: float | None  # B-cubed; None when the file has no gold labels
    recall: float | None
    f1: float | None
    pairwise_f1: float | None
    ari: float | None
    items_per_s: float  # embedding + grouping
    labels: tuple[int, ...]
    ids: tuple[str, ...]

    def predictions(self) -> list[dict[str, str]]:
        """``{"id", "story"}`` rows, one per item, in file order."""
        return [
            {"id": i, "story": f"p{label}"} for i, label in zip(self.ids, self.labels, strict=True)
        ]


# ---------------------------------------------------------------- loading


def _parse_time(value: str | None) -> datetime:
    if not value:
        return UNKNOWN_TIME  # grouping treats this timestamp as "unknown", not as 1970
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # a feed's own form, RFC 822 ("Mon, 10 Mar 2014 12:00:00 GMT")
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            raise ValueError(value) from None
    # a time without an offset is UTC, not the host's zone (items compare as aware times)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


_TEXT_FIELDS = ("title", "summary", "outlet", "url", "published")
_ID_FIELDS = ("id", "story")  # compared as given: a string or a whole number


def _check_row(row: dict, where: str) -> None:
    """Every field of a line has the type grouping expects, or a ValueError naming the line
    and the field (a number for a title failed deep inside grouping)."""
    for name in _TEXT_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(
                f"{where}: {name!r} must be a string or null, got {json.dumps(value)[:60]}"
            )
    for name in _ID_FIELDS:
        value = row.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise ValueError(
                f"{where}: {name!r} must be a string or a whole number, got {json.dumps(value)[:60]}"
            )


def load_dataset(path: str | Path) -> Dataset:
    items: list[Item] = []
    gold: list[str | None] = []
    ids: list[str] = []
    lines_read: list[int] = []
    with open(path, encoding="utf-8-sig") as lines:  # a BOM (some editors write one) is no text
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{index + 1}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{index + 1}: not a JSON object (one item per line)")
            _check_row(row, f"{path}:{index + 1}")
            try:
                published = _parse_time(row.get("published"))
            except ValueError:
                raise ValueError(
                    f"{path}:{index + 1}: 'published' {row['published']!r} is not an ISO 8601 "
                    "time (e.g. 2024-05-01T12:00:00Z), an RFC 822 one or null"
                ) from None
            items.append(
                Item(
                    id=len(items),
                    title=row.get("title") or "",
                    summary=row.get("summary") or "",
                    outlet=row.get("outlet") or "",
                    link=row.get("url"),
                    published=published,
                )
            )
            gold.append(row.get("story"))
            ids.append(str(row.get("id", index)))  # no id: the line's index, counted from 0
            lines_read.append(index + 1)
    if not items:
        raise ValueError(f"{path}: no items: write one JSON object per line")
    return Dataset(items, gold, ids, tuple(lines_read))


def load_jsonl(path: str | Path) -> tuple[list[Item], list[str | None]]:
    """Items (ids are line indexes) and gold story ids (None where unlabelled)."""
    dataset = load_dataset(path)
    return dataset.items, dataset.gold


def concat_datasets(datasets: Sequence[Dataset]) -> Dataset:
    """One dataset of several files, item ids renumbered 0..n-1."""
    items: list[Item] = []
    gold: list[str | None] = []
    ids: list[str] = []
    lines: list[int] = []
    for dataset in datasets:
        for item in dataset.items:
            items.append(
                Item(len(items), item.title, item.summary, item.outlet, item.link, item.published)
            )
        gold.extend(dataset.gold)
        ids.extend(dataset.ids)
        lines.extend(dataset.lines)
    return Dataset(items, gold, ids, tuple(lines) if len(lines) == len(ids) else ())


# ---------------------------------------------------------------- metrics


def _labelled(pred: Sequence[object], gold: Sequence[object | None]) -> tuple[list, list]:
    pairs = [(p, g) for p, g in zip(pred, gold, strict=True) if g is not None]
    return [p for p, _ in pairs], [g for _, g in pairs]


def bcubed(pred: Sequence[object], gold: Sequence[object | None]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 over the items that have a gold label."""
    pred, gold = _labelled(pred, gold)
    if not pred:
        return 0.0, 0.0, 0.0
    both = Counter(zip(pred, gold, strict=True))
    pred_sizes, gold_sizes = Counter(pred), Counter(gold)
    # every item of a (pred, gold) cell sees the same overlap, so sum per cell
    precision = sum(n * n / pred_sizes[p] for (p, _), n in both.items()) / len(pred)
    recall = sum(n * n / gold_sizes[g] for (_, g), n in both.items()) / len(pred)
    return precision, recall, _harmonic(precision, recall)


def pairwise_f1(pred: Sequence[object], gold: Sequence[object | None]) -> float:
    """F1 over item pairs placed in one story (pred) versus pairs that share one (gold)."""
    pred, gold = _labelled(pred, gold)

    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    together = pairs(Counter(zip(pred, gold, strict=True)))
    predicted, actual = pairs(Counter(pred)), pairs(Counter(gold))
    if predicted == 0 or actual == 0:
        return 1.0 if predicted == actual else 0.0
    return _harmonic(together / predicted, together / actual)


def ari(pred: Sequence[object], gold: Sequence[object | None]) -> float:
    pred, gold = _labelled(pred, gold)
    return float(adjusted_rand_score([str(g) for g in gold], [str(p) for p in pred]))


def _harmonic(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def mixed_stories(labels: Sequence[int], sources: Sequence[str]) -> int:
    """How many predicted stories hold items from more than one source (file)."""
    seen: dict[int, set[str]] = {}
    for label, source in zip(labels, sources, strict=True):
        seen.setdefault(label, set()).add(source)
    return sum(len(s) > 1 for s in seen.values())


# ---------------------------------------------------------------- running


def evaluate_dataset(
    name: str, dataset: Dataset, params: GroupingParams, embed: Embed
) -> EvalReport:
    started = time.perf_counter()
    vectors = embed([embedding_text(i.title, i.summary) for i in dataset.items])
    # as `cluster` groups: with what each poorly read writing system's texts share
    centres = script_centres(embed, scripts_of(dataset.items))
    labels = group(dataset.items, vectors, params, centres=centres)
    seconds = time.perf_counter() - started
    has_gold = any(g is not None for g in dataset.gold)
    p, r, f = bcubed(labels, dataset.gold) if has_gold else (None, None, None)
    return EvalReport(
        file=name,
        n_items=len(dataset.items),
        n_stories=len(set(labels.tolist())),
        precision=p,
        recall=r,
        f1=f,
        pairwise_f1=pairwise_f1(labels, dataset.gold) if has_gold else None,
        ari=ari(labels, dataset.gold) if has_gold else None,
        items_per_s=len(dataset.items) / max(seconds, 1e-9),
        labels=tuple(int(x) for x in labels),
        ids=tuple(dataset.ids),
    )


def evaluate_file(path: str | Path, params: GroupingParams, embed: Embed) -> EvalReport:
    """Embed and group one jsonl file; metrics are None when it carries no ``story`` labels."""
    return evaluate_dataset(Path(path).name, load_dataset(path), params, embed)


def format_table(reports: Sequence[EvalReport]) -> str:
    header = ("file", "items", "stories", "B3 P", "B3 R", "B3 F1", "pair F1", "ARI", "items/s")
    rows = [header]
    for r in reports:
        metrics = (r.precision, r.recall, r.f1, r.pairwise_f1, r.ari)
        rows.append(
            (
                r.file,
                str(r.n_items),
                str(r.n_stories),
                *("-" if m is None else f"{m:.3f}" for m in metrics),
                f"{r.items_per_s:.0f}",
            )
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if c == 0 else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
