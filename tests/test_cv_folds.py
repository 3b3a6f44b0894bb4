"""The cross-validation protocol of benchmarks/quality.py: folds by story group, dealt anew."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
_SPEC = importlib.util.spec_from_file_location("benchmark_quality", _PATH)
quality = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(quality)
folds_of, story_group = quality.folds_of, quality.story_group


def _batch(gold: list[str]) -> SimpleNamespace:
    return SimpleNamespace(data=SimpleNamespace(gold=gold))


def test_ecb_topics_stay_whole_and_every_fold_gets_each_source() -> None:
    ecb = [f"ecb-{t}_{kind}" for t in range(10) for kind in ("ecb", "ecbplus")]
    basil = [f"basil-{e}" for e in range(10)]
    batches = {"ecb": _batch(ecb), "basil": _batch(basil)}
    for shuffle in (0, 1, 2):
        fold = folds_of(batches, 5, shuffle)
        # both events of one topic are one unit: never one in training, one held out
        assert story_group("ecb-3_ecb") == story_group("ecb-3_ecbplus") == "ecb-3"
        assert {fold[story_group(g)] for g in ecb} == set(range(5))
        assert sorted(fold[story_group(g)] for g in basil) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_each_dealing_is_fixed_and_the_dealings_differ() -> None:
    batches = {"basil": _batch([f"basil-{e}" for e in range(20)])}
    assert folds_of(batches, 5, 1) == folds_of(batches, 5, 1)
    assert folds_of(batches, 5, 0) != folds_of(batches, 5, 1) != folds_of(batches, 5, 2)


def _fit_evidence():
    path = _PATH.with_name("fit_evidence.py")
    spec = importlib.util.spec_from_file_location("benchmark_fit_evidence", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


def test_another_split_of_the_same_sources_is_found_by_its_kind(tmp_path: Path) -> None:
    fit_evidence = _fit_evidence()
    for name in ("basil-test.jsonl", "uci-headlines-2015.jsonl", "sparse-test.jsonl", "notes.txt"):
        (tmp_path / name).write_text("", encoding="utf-8")
    found = fit_evidence.data_files(tmp_path)
    assert {key: path.name for key, path in found.items()} == {
        "basil-dev.jsonl": "basil-test.jsonl",
        "uci-headlines-dev.jsonl": "uci-headlines-2015.jsonl",
        "sparse-dev.jsonl": "sparse-test.jsonl",
    }
    # the dev file's own name wins; two candidates of one kind are an error, not a guess
    (tmp_path / "basil-dev.jsonl").write_text("", encoding="utf-8")
    assert fit_evidence.data_files(tmp_path)["basil-dev.jsonl"].name == "basil-dev.jsonl"
    (tmp_path / "ecbplus-a.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "ecbplus-b.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(SystemExit, match="more than one ecbplus file"):
        fit_evidence.data_files(tmp_path)


def _cv_grid():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cv_grid.py"
    spec = importlib.util.spec_from_file_location("benchmark_cv_grid", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_rules_choose_a_peak_or_a_plateau_and_the_report_names_each() -> None:
    grid = _cv_grid()
    fe = grid.fe
    points = [
        (p, s, d) for p in fe.PROBABILITIES for s in fe.HEADLINE_SHIFTS for d in fe.LONE_DISCOUNTS
    ]
    # a plateau at p 0.4-0.6 (0.90 wherever the shift), and a higher lone peak at p 0.8, shift
    # 3.0 beside a cliff (every other point scores -1)
    train = {grid.key(*x): 0.90 if x[0] in (0.4, 0.5, 0.6) else -1.0 for x in points}
    for d in fe.LONE_DISCOUNTS:
        train[grid.key(0.8, 3.0, d)] = 0.95
    assert grid.point(grid.argmax(train))[:2] == (0.8, 3.0)
    assert grid.point(grid.RULES["mean of neighbours"](train))[0] == 0.5
    assert grid.point(grid.RULES["worst of neighbours"](train))[0] == 0.5
    # of the points near the best, the strictest: the smallest shift, then the highest p
    assert grid.point(grid.RULES["strictest within 0.005"](train)) == (0.8, 3.0, 0.0)

    held_out = {k: {"basil-dev.jsonl": [1.0, 0.5, 0.6], "sparse-dev.jsonl": [0.9, 1.0, 0.9]}
                for k in train}  # fmt: skip
    held_out[grid.key(0.5, 0.0, 0.0)]["basil-dev.jsonl"] = [1.0, 1.0, 1.0]
    report = grid.report([{"dealing": 0, "fold": 0, "train": train, "test": held_out}])
    for rule in grid.RULES:
        assert report.count(f"{rule} (most chosen:") == 1
    ceiling = report.split("ceiling")[1]
    assert "basil    F1 1.000" in ceiling and "sparse   P 0.900" in ceiling
