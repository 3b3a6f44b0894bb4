"""kill -9 at random points of poll, cluster and build, then run again: nothing lost, nothing doubled.

Also two overlapping runs (cron overlap): the second exits with a clear message, nothing breaks.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.demo import load_demo_items, rss_feed
from tests.support.feedserver import FeedServer

pytestmark = pytest.mark.model

ROUNDS_PER_STEP = 4
NOW = datetime.now(UTC)


def aggregator(*args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator.cli", *args]


def setup_feeds(server: FeedServer, tmp_path: Path, n_outlets: int = 60) -> tuple[Path, int]:
    by_outlet: dict[str, list[dict]] = defaultdict(list)
    for item in load_demo_items():
        by_outlet[item["outlet"]].append(item)
    outlets = sorted(by_outlet, key=lambda o: (-len(by_outlet[o]), o))[:n_outlets]
    lines = ["allow_private: true", "database: news.db", "output: site", "feeds:"]
    total = 0
    for index, outlet in enumerate(outlets):
        path = f"/f/{index}.xml"
        server.route(
            path,
            body=rss_feed(outlet, by_outlet[outlet], NOW),
            headers={"Content-Type": "application/rss+xml"},
        )
        lines += [f"  - url: {server.url(path)}", f'    name: "{outlet}"']
        total += len(by_outlet[outlet])
    config = tmp_path / "feeds.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config, total


def kill_after(command: list[str], delay: float, cwd: Path) -> bool:
    """Starts the command and SIGKILLs it after `delay` seconds; True when it was killed."""
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return True


def check_database(db: Path, expected_items: int | None) -> None:
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count, distinct = connection.execute(
            "SELECT count(*), count(DISTINCT feed_url || key) FROM items"
        ).fetchone()
        assert count == distinct  # nothing doubled
        if expected_items is not None:
            assert count == expected_items  # nothing lost


def check_site(site: Path) -> None:
    index = (site / "index.html").read_text()
    for href in re.findall(r'href="([^"#]+)"', index):
        if not href.startswith(("http://", "https://")):
            assert (site / href).resolve().exists(), href


def test_kill_9_during_each_step_then_rerun(feed_server: FeedServer, tmp_path: Path) -> None:
    config, total = setup_feeds(feed_server, tmp_path)
    rng = random.Random(20261128)
    killed = 0
    for step, (low, high) in {
        "poll": (0.4, 2.0),
        "cluster": (1.0, 8.0),
        "build": (0.5, 2.5),
    }.items():
        for _ in range(ROUNDS_PER_STEP):
            if step != "poll":  # later steps need the earlier ones' data
                subprocess.run(
                    aggregator("poll", "-c", str(config)),
                    cwd=tmp_path,
                    check=False,
                    capture_output=True,
                )
            if step == "build":
                subprocess.run(
                    aggregator("cluster", "-c", str(config)),
                    cwd=tmp_path,
                    check=False,
                    capture_output=True,
                )
            killed += kill_after(
                aggregator(step, "--force", "-c", str(config))
                if step != "build"
                else aggregator(step, "-c", str(config)),
                rng.uniform(low, high),
                tmp_path,
            )
            if (tmp_path / "news.db").exists():
                check_database(tmp_path / "news.db", None)
    assert killed >= ROUNDS_PER_STEP  # the test really interrupted runs

    finished = subprocess.run(
        aggregator("run", "--force", "-c", str(config)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr
    check_database(tmp_path / "news.db", total)
    check_site(tmp_path / "site")
    leftovers = [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".site") or p.name.endswith(".tmp")
    ]
    assert not leftovers or (tmp_path / "site" / "index.html").exists()


def test_overlapping_runs_do_not_corrupt(feed_server: FeedServer, tmp_path: Path) -> None:
    config, total = setup_feeds(feed_server, tmp_path, n_outlets=20)
    first = subprocess.Popen(
        aggregator("run", "-c", str(config)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    second = subprocess.run(
        aggregator("run", "-c", str(config)), cwd=tmp_path, capture_output=True, text=True
    )
    _out, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    if second.returncode != 0:  # it overlapped: a clear message and the tempfail code
        assert second.returncode == 75
        assert "another aggregator run" in second.stderr
    check_database(tmp_path / "news.db", total)
