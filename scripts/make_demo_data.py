"""Builds aggregator/demo_data/items.jsonl from the labelled UCI and ECB+ development data.

Only UCI (CC BY 4.0) and ECB+ (CC BY 3.0) items are used; see demo_data/ATTRIBUTION.md.
Usage: python scripts/make_demo_data.py ../shared/data
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

UCI_STORIES = 14
UCI_PER_STORY = 18
ECB_TOPICS = 8


def main(data_dir: Path) -> None:
    rows: list[dict] = []
    uci = _read_jsonl(data_dir / "uci-headlines-dev.jsonl")
    by_story: dict[str, list[dict]] = defaultdict(list)
    for row in uci:
        by_story[row["story"]].append(row)
    # Stories of varied size, in a stable order, so the demo shows big and small stories.
    chosen = sorted(by_story, key=lambda s: (-len(by_story[s]), s))[::3][:UCI_STORIES]
    for story in chosen:
        for row in sorted(by_story[story], key=lambda r: r["id"])[:UCI_PER_STORY]:
            rows.append(_item(row, "uci"))
    for row in _read_jsonl(data_dir / "ecbplus-dev.jsonl"):
        topic = int(row["story"].split("-")[1].split("_")[0])
        if topic <= ECB_TOPICS and row["url"] and row["outlet"] != "unknown":
            rows.append(_item(row, "ecbplus"))
    out = Path(__file__).resolve().parents[1] / "aggregator" / "demo_data" / "items.jsonl"
    with open(out, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(rows)} items, {len({r['outlet'] for r in rows})} outlets -> {out}")


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _item(row: dict, source: str) -> dict:
    return {
        "id": row["id"],
        "title": row["title"],
        "summary": row["summary"][:600],
        "outlet": row["outlet"].replace("\\", ""),
        "url": row["url"],
        "story": row["story"],
        "source": source,
    }


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
