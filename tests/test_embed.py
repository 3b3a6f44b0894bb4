"""The production embedder: real-model checks (marked `model`) and fast checks of the plumbing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aggregator import embed
from aggregator.embed import (
    DEFAULT_MODEL,
    Embedder,
    ModelLoadError,
    OnnxUnsupported,
    load_embedder,
    resolve_model,
)

NEWS = [
    "Magnitude 7.1 earthquake strikes off the coast of Chile, tsunami warning issued",
    "Central bank raises interest rates by a quarter point to curb inflation",
    "Striker scores twice as the home side wins the cup final 3-1",
    "Lawmakers pass a bill to expand rural broadband access after a long debate",
    "",
]
PARAPHRASE = (
    "Tsunami alert after a powerful quake hits the Chilean coast",
    "A strong earthquake off Chile prompts warnings of a tsunami",
)
UNRELATED = "A new bakery opens downtown selling sourdough and croissants"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private export cache for this module, so the first onnx load really exports."""
    path = tmp_path_factory.mktemp("embed-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGGREGATOR_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def onnx_int8(cache_dir: Path) -> Embedder:
    return load_embedder(backend="onnx-int8")


@pytest.fixture(scope="module")
def torch_cpu() -> Embedder:
    return load_embedder(backend="torch", device="cpu")


@pytest.fixture(scope="module", params=["onnx-int8", "torch"])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    return request.getfixturevalue("onnx_int8" if request.param == "onnx-int8" else "torch_cpu")


# ---------------------------------------------------------------- real model


@pytest.mark.model
def test_vectors_are_float32_unit_rows_in_input_order(embedder: Embedder) -> None:
    vectors = embedder.embed(NEWS)
    assert embedder.dim == 384
    assert vectors.shape == (len(NEWS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Input order survives the length sorting: each row matches that text embedded alone.
    alone = embedder.embed([NEWS[2]])[0]
    assert float(vectors[2] @ alone) > 0.98


@pytest.mark.model
def test_no_texts_give_an_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


@pytest.mark.model
def test_same_input_gives_the_same_vectors(embedder: Embedder) -> None:
    assert np.array_equal(embedder.embed(NEWS), embedder.embed(NEWS))


@pytest.mark.model
def test_paraphrase_is_nearer_than_an_unrelated_sentence(embedder: Embedder) -> None:
    a, b, other = embedder.embed([*PARAPHRASE, UNRELATED])
    assert float(a @ b) > 0.7
    assert float(a @ b) > float(a @ other) + 0.4


@pytest.mark.model
def test_progress_reports_texts_done_so_far(onnx_int8: Embedder) -> None:
    seen: list[int] = []
    onnx_int8.embed(NEWS * 30, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == len(NEWS) * 30
    assert len(seen) > 1


@pytest.mark.model
def test_batches_run_in_parallel_give_the_vectors_of_one_thread(cache_dir: Path) -> None:
    texts = [f"{text} (item {n})" for n, text in enumerate(NEWS * 12)]
    parallel = load_embedder(backend="onnx-int8", threads=2)
    serial = load_embedder(backend="onnx-int8", threads=1)
    np.testing.assert_array_equal(parallel.embed(texts), serial.embed(texts))


@pytest.mark.model
def test_onnx_and_torch_backends_agree(onnx_int8: Embedder, torch_cpu: Embedder) -> None:
    cosines = np.sum(onnx_int8.embed(NEWS) * torch_cpu.embed(NEWS), axis=1)
    assert cosines.min() > 0.97, cosines


@pytest.mark.model
def test_onnx_fp32_matches_torch_closely(cache_dir: Path, torch_cpu: Embedder) -> None:
    fp32 = load_embedder(backend="onnx-fp32")
    cosines = np.sum(fp32.embed(NEWS) * torch_cpu.embed(NEWS), axis=1)
    assert cosines.min() > 0.9999, cosines


@pytest.mark.model
def test_model_key_names_everything_that_changes_vectors(
    onnx_int8: Embedder, torch_cpu: Embedder
) -> None:
    fp32 = load_embedder(backend="onnx-fp32")
    short = load_embedder(backend="onnx-int8", max_tokens=64)
    keys = {onnx_int8.model_key, torch_cpu.model_key, fp32.model_key, short.model_key}
    assert len(keys) == 4
    assert load_embedder("all-MiniLM-L6-v2", backend="onnx").model_key == onnx_int8.model_key
    # A new export recipe makes new vectors: stored ones must not be taken for them.
    assert f"|onnx-int8-r{embed._ONNX_RECIPE}|tok112" in onnx_int8.model_key


@pytest.mark.model
def test_auto_uses_onnx_int8_on_cpu(onnx_int8: Embedder) -> None:
    assert load_embedder().model_key == onnx_int8.model_key


@pytest.mark.model
def test_texts_are_truncated_to_max_tokens(cache_dir: Path) -> None:
    short = load_embedder(backend="onnx-fp32", max_tokens=12)
    head = "Parliament approves the budget after a night of talks"
    a, b = short.embed([f"{head} and then one thing", f"{head}; something else entirely happened"])
    assert float(a @ b) > 0.9999


@pytest.mark.model
def test_a_second_load_reuses_the_export(
    onnx_int8: Embedder, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (export,) = [p for p in (cache_dir / "onnx").iterdir() if not p.name.startswith(".")]
    mtime = (export / "model-int8.onnx").stat().st_mtime_ns

    def no_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(embed, "export_onnx", no_export)
    again = load_embedder(backend="onnx-int8")
    assert again.model_key == onnx_int8.model_key
    assert (export / "model-int8.onnx").stat().st_mtime_ns == mtime
    assert [p.name for p in (cache_dir / "onnx").iterdir()] == [export.name]  # no temp left


@pytest.mark.model
def test_int8_weights_fit_in_seven_bits(onnx_int8: Embedder, cache_dir: Path) -> None:
    """uint8 x int8 pairs then sum within int16 (2 x 255 x 64 = 32,640), so CPUs without VNNI
    do not saturate."""
    import onnx
    from onnx import numpy_helper

    (export,) = [p for p in (cache_dir / "onnx").iterdir() if not p.name.startswith(".")]
    model = onnx.load(str(export / "model-int8.onnx"))
    weights = [
        numpy_helper.to_array(t)
        for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.INT8
    ]
    assert len(weights) >= 36  # six layers, six MatMuls each
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64


@pytest.mark.model
def test_a_local_folder_loads_and_is_keyed_by_its_content(torch_cpu: Embedder) -> None:
    folder = resolve_model(DEFAULT_MODEL).folder
    assert folder is not None
    by_path = load_embedder(str(folder), backend="torch", device="cpu")
    fingerprint = torch_cpu.model_key.split("|")[0].split("@")[1]
    assert by_path.model_key.startswith(f"{folder.name}@{fingerprint}|torch-fp32|")
    assert str(folder.parent) not in by_path.model_key
    np.testing.assert_allclose(by_path.embed(NEWS[:2]), torch_cpu.embed(NEWS[:2]), atol=1e-6)


# ---------------------------------------------------------------- errors and plumbing (no model)


@pytest.mark.parametrize("name", ["./no-such-model", "/nonexistent/models/minilm"])
def test_a_missing_folder_is_a_one_line_error(name: str) -> None:
    with pytest.raises(ModelLoadError, match="no such folder") as info:
        load_embedder(name)
    assert "\n" not in str(info.value)
    assert name in str(info.value)


def test_an_unknown_hub_name_fails_fast_and_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_embedder("no-such-owner/no-such-model-xyz")
    message = str(info.value)
    assert "\n" not in message
    assert "'no-such-owner/no-such-model-xyz'" in message
    assert "local model folder" in message


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="backend"):
        load_embedder(backend="tensorflow")


def test_onnx_backends_refuse_a_gpu_device() -> None:
    with pytest.raises(ValueError, match="CPU only"):
        load_embedder(backend="onnx-int8", device="cuda")


def test_both_spellings_of_the_default_model_resolve_alike() -> None:
    assert resolve_model("all-MiniLM-L6-v2") == resolve_model(DEFAULT_MODEL)
    assert resolve_model(DEFAULT_MODEL).name == DEFAULT_MODEL


def test_batches_group_similar_lengths_and_cover_every_index() -> None:
    lengths = [5, 100, 7, 90, 6, 95]
    batches = [list(b) for b in embed._batches_by_length(lengths, 3)]
    assert batches == [[0, 4, 2], [3, 5, 1]]


def test_a_token_budget_keeps_long_batches_small_and_short_ones_full() -> None:
    lengths = [128] * 10 + [10] * 100
    batches = [list(b) for b in embed._batches_by_length(lengths, 64, token_budget=512)]
    assert sorted(i for b in batches for i in b) == list(range(110))
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert len(batch) <= 64 and (len(batch) * width <= 512 or len(batch) == 1)
    assert max(len(b) for b in batches) == 51  # 51 short rows are 510 tokens
    assert [len(b) for b in batches if lengths[b[0]] == 128] == [4, 4, 2]


def test_a_text_longer_than_the_budget_still_gets_a_batch_of_its_own() -> None:
    batches = [list(b) for b in embed._batches_by_length([900, 800], 64, token_budget=512)]
    assert batches == [[1], [0]]


def test_mean_pooling_ignores_padding() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 2.0], [99.0, 99.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(embed._pool(hidden, mask, "mean"), [[2.0, 1.0]])
    np.testing.assert_allclose(embed._pool(hidden, mask, "cls"), [[1.0, 0.0]])


def _write_st_folder(folder: Path, modules: list[str], pooling: dict[str, object]) -> Path:
    folder.mkdir()
    entries = [
        {"idx": i, "name": str(i), "path": "" if i == 0 else f"{i}_{kind}", "type": kind}
        for i, kind in enumerate(f"sentence_transformers.models.{m}" for m in modules)
    ]
    for entry in entries[1:]:
        (folder / str(entry["path"])).mkdir()
    (folder / "modules.json").write_text(json.dumps(entries))
    (folder / str(entries[1]["path"]) / "config.json").write_text(json.dumps(pooling))
    return folder


def test_pooling_mode_is_read_from_the_sentence_transformers_config(tmp_path: Path) -> None:
    mean = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}
    folder = _write_st_folder(tmp_path / "m", ["Transformer", "Pooling", "Normalize"], mean)
    assert embed._pooling_mode(folder) == "mean"


def test_models_our_onnx_pipeline_cannot_reproduce_are_refused(tmp_path: Path) -> None:
    mean = {"pooling_mode_mean_tokens": True}
    dense = _write_st_folder(tmp_path / "dense", ["Transformer", "Pooling", "Dense"], mean)
    with pytest.raises(OnnxUnsupported, match="Dense"):
        embed._pooling_mode(dense)
    max_pool = _write_st_folder(
        tmp_path / "max", ["Transformer", "Pooling"], {"pooling_mode_max_tokens": True}
    )
    with pytest.raises(OnnxUnsupported, match="pooling"):
        embed._pooling_mode(max_pool)


def test_a_concurrent_export_that_finished_first_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "onnx" / "abc-r1"

    def fake_export(model_dir: Path, out_dir: Path) -> None:
        # Another process completes its export while this one is still writing.
        dest.mkdir(parents=True)
        (dest / "meta.json").write_text("{}")
        (out_dir / "meta.json").write_text('{"mine": true}')

    monkeypatch.setattr(embed, "export_onnx", fake_export)
    embed._export_to_cache(tmp_path / "model", dest)
    assert (dest / "meta.json").read_text() == "{}"
    assert os.listdir(tmp_path / "onnx") == ["abc-r1"]


def test_an_export_by_a_new_recipe_removes_this_models_older_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx = tmp_path / "onnx"
    for name in ("abc-r1", "abc-r2", "other-r1"):
        (onnx / name).mkdir(parents=True)
        (onnx / name / "meta.json").write_text("{}")
    (onnx / "abc-rough-notes").mkdir()  # the user's own folder: no export's meta.json

    def fake_export(model_dir: Path, out_dir: Path) -> None:
        (out_dir / "meta.json").write_text("{}")

    monkeypatch.setattr(embed, "export_onnx", fake_export)
    embed._export_to_cache(tmp_path / "model", onnx / "abc-r3")
    assert sorted(os.listdir(onnx)) == ["abc-r3", "abc-rough-notes", "other-r1"]


def test_cache_root_honours_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGGREGATOR_CACHE_DIR", str(tmp_path))
    assert embed.cache_root() == tmp_path
    monkeypatch.delenv("AGGREGATOR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert embed.cache_root() == tmp_path / "xdg" / "aggregator"


def test_exports_abandoned_long_ago_are_swept(tmp_path: Path) -> None:
    old, fresh = tmp_path / ".export-old", tmp_path / ".export-fresh"
    old.mkdir()
    fresh.mkdir()
    os.utime(old, (0, 0))
    embed._remove_abandoned_exports(tmp_path)
    assert not old.exists()
    assert fresh.exists()


def test_auto_picks_torch_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    calls: list[tuple[str, str]] = []

    def fake_load_torch(source: object, max_tokens: int, device: str, threads: object) -> str:
        calls.append(("torch", device))
        return "torch embedder"

    monkeypatch.setattr(embed, "_nvidia_driver_possible", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(embed, "_load_torch", fake_load_torch)
    assert load_embedder() == "torch embedder"
    assert calls == [("torch", "cuda")]


def test_feeds_yaml_and_the_embedder_default_to_the_same_token_limit() -> None:
    from aggregator.config import EmbeddingSettings

    assert EmbeddingSettings().max_tokens == embed.DEFAULT_MAX_TOKENS


def test_an_error_midway_leaves_no_batches_running_behind() -> None:
    import sys
    import threading
    import time
    from types import SimpleNamespace

    runs: list[int] = []
    lock = threading.Lock()

    class SlowSession:
        def get_inputs(self) -> list:
            return [SimpleNamespace(name="input_ids"), SimpleNamespace(name="attention_mask")]

        def run(self, _outputs: list, feeds: dict) -> list:
            time.sleep(0.02)
            with lock:
                runs.append(1)
            return [np.ones((*feeds["input_ids"].shape, 4), dtype=np.float32)]

    class Tokenizer:
        def encode_batch(self, texts: list[str]) -> list:
            return [SimpleNamespace(ids=[1] * 200) for _ in texts]  # 2 per 512-token batch

    def stop(_done: int) -> None:
        raise KeyboardInterrupt

    embedder = embed.OnnxEmbedder(
        SlowSession(), Tokenizer(), {"pooling": "mean", "dim": 4}, "stub", workers=2
    )
    try:
        embedder.embed(["text"] * 400, progress=stop)  # 200 batches
    except KeyboardInterrupt:
        kept = sys.exc_info()  # a handler that keeps the traceback keeps embed()'s locals too
        settled = len(runs)
        time.sleep(0.2)
        assert len(runs) == settled < 10
        assert kept[0] is KeyboardInterrupt
    else:
        pytest.fail("the error in progress() did not propagate")


class _OlderSentenceTransformer:
    """What the torch backend uses of a sentence-transformers model before 5.4, which named
    the dimension get_sentence_embedding_dimension (get_embedding_dimension since)."""

    max_seq_length = 512

    def get_sentence_embedding_dimension(self) -> int:
        return 384


def test_the_torch_backend_reads_the_dimension_from_older_sentence_transformers() -> None:
    """sentence-transformers 3.0 to 5.3 meet the declared range; with them the torch backend
    failed on get_embedding_dimension (AttributeError, a traceback)."""
    embedder = embed.TorchEmbedder(_OlderSentenceTransformer(), "model", max_tokens=128)
    assert embedder.dim == 384


def test_the_installed_version_is_the_packages() -> None:
    """pyproject.toml reads the version from aggregator/__init__.py: one place to change."""
    import importlib.metadata
    import tomllib

    import aggregator

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"] and "version" not in project
    assert importlib.metadata.version("aggregator") == aggregator.__version__
