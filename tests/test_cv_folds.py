"""The cross-validation protocol of benchmarks/quality.py: folds by story group, dealt anew."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

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
