"""`aggregator eval` on labelled and unlabelled files, with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.demo import load_demo_items

pytestmark = pytest.mark.model


def write_items(path: Path, labelled: bool) -> list[dict]:
    items = [i for i in load_demo_items() if i["source"] == "ecbplus"][:40]
    with open(path, "w", encoding="utf-8") as handle:
        for item in items:
            row = {k: item[k] for k in ("id", "title", "summary", "outlet", "url")} | {
                "published": None
            }
            if labelled:
                row["story"] = item["story"]
            handle.write(json.dumps(row) + "\n")
    return items


def test_eval_scores_a_labelled_file_and_writes_predictions(tmp_path: Path) -> None:
    items = write_items(tmp_path / "labelled.jsonl", labelled=True)
    out = tmp_path / "predictions.jsonl"
    result = CliRunner().invoke(
        main, ["eval", str(tmp_path / "labelled.jsonl"), "--predictions", str(out)]
    )
    assert result.exit_code == 0, result.output
    header, _, row = result.output.splitlines()[:3]
    assert "B3 F1" in header and "ARI" in header
    f1 = float(row.split()[5])
    assert 0.5 < f1 <= 1.0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == [item["id"] for item in items]
    assert all(set(line) == {"id", "story"} for line in lines)


def test_eval_refuses_to_write_predictions_over_one_of_its_files(tmp_path: Path) -> None:
    """`--predictions` naming an input replaced the labelled items with {"id", "story"} lines."""
    labelled = tmp_path / "labelled.jsonl"
    write_items(labelled, labelled=True)
    before = labelled.read_bytes()
    result = CliRunner().invoke(main, ["eval", str(labelled), "--predictions", str(labelled)])
    assert result.exit_code == 2
    assert "is one of the FILES" in result.output
    assert labelled.read_bytes() == before


def test_eval_groups_an_unlabelled_file_without_scores(tmp_path: Path) -> None:
    write_items(tmp_path / "plain.jsonl", labelled=False)
    out = tmp_path / "predictions.jsonl"
    result = CliRunner().invoke(
        main, ["eval", str(tmp_path / "plain.jsonl"), "--predictions", str(out)]
    )
    assert result.exit_code == 0, result.output
    row = result.output.splitlines()[2].split()
    assert row[3:8] == ["-"] * 5
    assert len(out.read_text().splitlines()) == 40


def test_eval_all_reports_the_combined_day(tmp_path: Path) -> None:
    write_items(tmp_path / "a.jsonl", labelled=True)
    write_items(tmp_path / "b.jsonl", labelled=True)
    result = CliRunner().invoke(
        main, ["eval", "--all", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    )
    assert result.exit_code == 0, result.output
    assert "all files" in result.output
    assert "stories mixing items of two files:" in result.output


def test_eval_of_several_files_names_each_predictions_file(tmp_path: Path) -> None:
    """Two files each with an item "ecb-1_1ecb": the predictions could not tell them apart."""
    items = write_items(tmp_path / "a.jsonl", labelled=True)
    write_items(tmp_path / "b.jsonl", labelled=True)
    out = tmp_path / "predictions.jsonl"
    files = [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    for combined in ([], ["--all"]):
        result = CliRunner().invoke(main, ["eval", *combined, *files, "--predictions", str(out)])
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [(line["file"], line["id"]) for line in lines] == [
            (name, item["id"]) for name in files for item in items
        ]


def test_eval_of_items_sharing_an_id_warns_and_writes_their_lines(tmp_path: Path) -> None:
    """Real files repeat ids (BASIL's "basil-empty" on four lines): they are grouped and
    scored, a warning names the lines, and each prediction carries its item's line."""
    path = tmp_path / "day.jsonl"
    items = write_items(path, labelled=True)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["id"] = rows[3]["id"] = "empty"
    del rows[5]["id"]  # a line without one: its index, 5
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "predictions.jsonl"
    result = CliRunner().invoke(main, ["eval", str(path), "--predictions", str(out)])
    assert result.exit_code == 0, result.output
    assert "lines 2, 4 share the id 'empty'" in result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["line"] for line in lines] == list(range(1, len(items) + 1))
    assert [line["id"] for line in lines][:6] == [
        rows[0]["id"],
        "empty",
        rows[2]["id"],
        "empty",
        rows[4]["id"],
        "5",
    ]
