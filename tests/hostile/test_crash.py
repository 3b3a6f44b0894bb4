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


def timed(command: list[str], cwd: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def fresh_database(tmp_path: Path) -> None:
    for path in tmp_path.glob("news.db*"):
        path.unlink()


def test_kill_9_during_each_step_then_rerun(feed_server: FeedServer, tmp_path: Path) -> None:
    config, total = setup_feeds(feed_server, tmp_path)
    rng = random.Random(20261128)
    db, site = tmp_path / "news.db", tmp_path / "site"
    killed: dict[str, int] = {"poll": 0, "cluster": 0, "build": 0}

    # Poll: each round starts from an empty database, is killed while storing, then finishes.
    poll = aggregator("poll", "--force", "-c", str(config))
    duration = timed(poll, tmp_path)
    for _ in range(ROUNDS_PER_STEP):
        fresh_database(tmp_path)
        killed["poll"] += kill_after(poll, rng.uniform(0.3, 1.0) * duration, tmp_path)
        if db.exists():
            check_database(db, None)
        timed(poll, tmp_path)
        check_database(db, total)

    # Cluster and build: killed at random points, each followed by a check of what is on disk.
    for step in ("cluster", "build"):
        command = (
            aggregator(step, "--force", "-c", str(config))
            if step == "cluster"
            else aggregator(step, "-c", str(config))
        )
        duration = timed(command, tmp_path)
        for _ in range(ROUNDS_PER_STEP):
            killed[step] += kill_after(command, rng.uniform(0.1, 0.6) * duration, tmp_path)
            check_database(db, total)
            if (site / "index.html").exists():
                check_site(site)  # the old site or the new one, never half of one

    # Runs really were interrupted (how many of each depends on the machine's speed and load).
    assert killed["poll"] >= 1 and sum(killed.values()) >= ROUNDS_PER_STEP, killed
    finished = subprocess.run(
        aggregator("run", "--force", "-c", str(config)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr
    check_database(db, total)
    check_site(site)
    print(f"kill -9 survived: {killed}; items lost: 0 of {total}")
    time.sleep(0.5)
    orphans = subprocess.run(
        ["pgrep", "-f", str(config)], capture_output=True, text=True
    ).stdout.split()
    assert orphans == [], "killed runs left processes behind"


def wait_for_run_lock(lock_path: Path, holder: subprocess.Popen, timeout: float = 120) -> None:
    """Block until `holder` holds the POSIX record lock on `lock_path`.

    Read from /proc/locks rather than by trying the lock: a probe that took the lock for a moment
    could make the holder itself fail to get it.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert holder.poll() is None, "the first run ended before it took the lock"
        if lock_path.exists():
            inode = lock_path.stat().st_ino
            for line in Path("/proc/locks").read_text().splitlines():
                fields = line.split()
                held_by_holder = "POSIX" in fields and fields[4] == str(holder.pid)
                if held_by_holder and fields[5].rsplit(":", 1)[-1] == str(inode):
                    return
        time.sleep(0.05)
    raise AssertionError(f"{lock_path} was never locked by the first run")


def test_overlapping_runs_do_not_corrupt(feed_server: FeedServer, tmp_path: Path) -> None:
    config, total = setup_feeds(feed_server, tmp_path, n_outlets=20)
    first = subprocess.Popen(
        aggregator("run", "-c", str(config)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Start the second run only once the first holds the run lock: a fixed head start lost the
    # race on a loaded host, and then the *first* run was the one told to wait.
    wait_for_run_lock(tmp_path / "news.db.lock", first)
    second = subprocess.run(
        aggregator("run", "-c", str(config)), cwd=tmp_path, capture_output=True, text=True
    )
    _out, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    if second.returncode != 0:  # it overlapped: a clear message and the tempfail code
        assert second.returncode == 75
        assert "another aggregator run" in second.stderr
    check_database(tmp_path / "news.db", total)
