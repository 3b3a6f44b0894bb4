"""`aggregator demo`: real headlines as RSS feeds on 127.0.0.1, then the whole pipeline.

The items (UCI News Aggregator and ECB+, see demo_data/ATTRIBUTION.md) are written as one
RSS feed per outlet and served by a small loopback server that answers conditional GETs,
so the demo exercises the same code paths as real polling.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from aggregator.site import slugify
from aggregator.text import plural

DEMO_ITEMS = Path(__file__).with_name("demo_data") / "items.jsonl"


def load_demo_items() -> list[dict]:
    with open(DEMO_ITEMS, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def demo_time(item_id: str, now: datetime) -> datetime:
    """A made-up publication time within the last 20 hours, stable per item and day."""
    offset = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) % (20 * 3600)
    return (now - timedelta(seconds=offset + 600)).replace(microsecond=0)


def rss_feed(outlet: str, items: Sequence[dict], now: datetime) -> bytes:
    entries = []
    for item in items:
        link = f"<link>{escape(item['url'])}</link>" if item.get("url") else ""
        entries.append(
            "<item>"
            f"<title>{escape(item['title'])}</title>{link}"
            f'<guid isPermaLink="false">{escape(item["id"])}</guid>'
            f"<pubDate>{format_datetime(demo_time(item['id'], now))}</pubDate>"
            f"<description>{escape(item.get('summary', ''))}</description>"
            "</item>"
        )
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(outlet)}</title><link>http://example.invalid/</link>"
        f"<description>Demo feed</description>{''.join(entries)}</channel></rss>\n"
    )
    return body.encode("utf-8")


def write_demo_feeds(
    folder: Path, now: datetime, items: list[dict] | None = None
) -> dict[str, str]:
    """Writes one feed per outlet; returns {file name: outlet}."""
    items = items if items is not None else load_demo_items()
    by_outlet: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        by_outlet[item["outlet"]].append(item)
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for outlet in sorted(by_outlet):
        name = f"{slugify(outlet) or 'feed'}-{hashlib.sha256(outlet.encode()).hexdigest()[:6]}.xml"
        (folder / name).write_bytes(rss_feed(outlet, by_outlet[outlet], now))
        names[name] = outlet
    return names


class _FeedHandler(http.server.BaseHTTPRequestHandler):
    folder: Path

    def do_GET(self) -> None:
        path = self.folder / Path(self.path.split("?")[0]).name
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@contextlib.contextmanager
def serve_feeds(folder: Path) -> Iterator[str]:
    """Serves the folder's feeds on 127.0.0.1 (a free port); yields the base URL."""
    handler = type("Handler", (_FeedHandler,), {"folder": folder})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


_MARK = "# Written by `aggregator demo`"


class DemoFolderError(Exception):
    """The folder holds a feeds.yaml the demo did not write: the demo would replace it."""


def check_demo_folder(workdir: Path) -> None:
    """Raise DemoFolderError unless ``workdir`` is new or the demo's own: the demo rewrites
    feeds.yaml and wipes the database there, so a user's feed list must not be in it."""
    config = workdir / "feeds.yaml"
    try:
        with config.open("rb") as opened:
            first = opened.read(len(_MARK.encode()))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DemoFolderError(f"{config}: cannot read: {exc.strerror or exc}") from None
    if first != _MARK.encode():
        raise DemoFolderError(
            f"{workdir} holds a feeds.yaml that the demo did not write, and the demo would "
            "replace it and its database: choose another folder with --dir"
        )


def write_demo_config(workdir: Path, base_url: str, feeds: dict[str, str]) -> Path:
    lines = [
        f"{_MARK}: bundled demo feeds served on 127.0.0.1.",
        "allow_private: true  # the demo feeds are on loopback",
        "database: demo.db",
        "output: output",
        "window_hours: 24",
        "site:",
        "  title: Aggregator demo digest",
        "feeds:",
    ]
    for name, outlet in feeds.items():
        lines.append(f"  - url: {base_url}{name}")
        lines.append(f"    name: {json.dumps(outlet)}")
    path = workdir / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_demo(
    workdir: Path, echo: Callable[[str], None] = print, now: datetime | None = None
) -> Path:
    """Serves the demo feeds, polls, clusters and builds; returns the site's index.html."""
    from aggregator.config import load_config
    from aggregator.store import Store, run_lock

    now = now or datetime.now(UTC)
    check_demo_folder(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    items = load_demo_items()
    feeds = write_demo_feeds(workdir / "feeds", now, items)
    echo(f"Serving {plural(len(feeds), 'demo feed')} ({plural(len(items), 'item')}) on 127.0.0.1")
    with serve_feeds(workdir / "feeds") as base_url:
        # The server's port changes each time, so the config is rewritten each time.
        config = load_config(write_demo_config(workdir, base_url, feeds))
        # Always its own SQLite file, whatever AGGREGATOR_DATABASE says: the demo wipes it.
        config = config.with_database((workdir / "demo.db").resolve(), "the demo")
        with run_lock(config.database, 60):
            # Feed URLs change with the port: start from a fresh database each time.
            for suffix in ("", "-wal", "-shm"):
                config.database.with_name(config.database.name + suffix).unlink(missing_ok=True)
            with Store.open(config.database) as store:
                built = _run_pipeline(config, store, now, echo)
    return built.output / "index.html"


def _run_pipeline(config, store, now: datetime, echo: Callable[[str], None]):
    from aggregator import pipeline

    summary = pipeline.poll(config, store, now=now, force=True)
    echo(
        f"poll: {plural(summary.feeds_ok, 'feed')} ok, {summary.feeds_failed} failed, "
        f"{plural(summary.new_items, 'new item')}"
    )
    echo("cluster: embedding and grouping (the first run loads the model)...")
    stories = pipeline.cluster(config, store, now=now)
    echo(
        f"cluster: {plural(stories.stories, 'story', 'stories')} from "
        f"{plural(stories.items, 'item')}, "
        f"{stories.multi_outlet} reported by several outlets"
    )
    echo(_agreement_with_labels(store))
    return pipeline.build(config, store)


def _agreement_with_labels(store) -> str:
    """How well the stories match the data sets' own story labels (B-cubed)."""
    from aggregator.evaluate import bcubed

    gold = {item["id"]: item["story"] for item in load_demo_items()}
    stories = {key.removeprefix("guid:"): story for key, story in store.item_stories()}
    labelled = [(story, gold[guid]) for guid, story in stories.items() if guid in gold]
    if not labelled:
        return "labels: no labelled items"
    precision, recall, f1 = bcubed([p for p, _ in labelled], [g for _, g in labelled])
    return (
        f"agreement with the data sets' story labels: B-cubed precision {precision:.3f}, "
        f"recall {recall:.3f}, F1 {f1:.3f}"
    )
