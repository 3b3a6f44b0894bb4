"""Synthetic news feeds for the benchmarks, served from real HTTP servers on loopback.

Titles come from a word-bigram chain and summaries from shuffled sentences, both built at run
time from the labelled data in ../shared/data (never copied into the repository); without that
data a small built-in vocabulary keeps everything working. The output depends only on the seed
(and on `now` for the dates), so two runs serve byte-identical feeds.

Run as a script to serve feeds until stdin closes (the benchmark starts it as a subprocess so
the servers do not share a GIL with the code being measured):

    python benchmarks/feedgen.py serve --feeds 1000 --items-per-feed 50 --urls-out urls.txt
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import itertools
import json
import os
import random
import re
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
MAX_SERVE_SECONDS = 1800.0  # a forgotten server still stops by itself

_FALLBACK_TEXT = (
    "government minister election court police report market shares city council storm "
    "talks deal vote budget health school energy prices strike border president company "
    "record trial protest climate study officials workers leaders rescue flood fire crash "
    "bank rates inflation team season final coach players museum festival film music"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")


@dataclass(frozen=True, slots=True)
class FakeItem:
    guid: str
    link: str
    title: str
    summary_html: str
    published: datetime
    outlet: str

    @property
    def summary_text(self) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", self.summary_html))


# ---------------------------------------------------------------- text


class TextSource:
    """Real-looking titles and ~100-word summaries from word and sentence pools."""

    def __init__(self, titles: Sequence[str], sentences: Sequence[str]) -> None:
        self._sentences = list(sentences)
        self._next_words: dict[str, list[str]] = defaultdict(list)
        for title in titles:
            words = ["<s>", *title.split(), "</s>"]
            for current, following in itertools.pairwise(words):
                self._next_words[current].append(following)

    @classmethod
    def load(cls, data_dir: Path | None = None) -> TextSource:
        rows = read_rows(data_dir or DEFAULT_DATA_DIR)
        titles = [r["title"].strip() for r in rows if len(r.get("title", "").split()) >= 4]
        sentences = [
            s.strip()
            for r in rows
            for s in _SENTENCE_END.split(r.get("summary") or "")
            if 6 <= len(s.split()) <= 45
        ]
        if len(titles) < 50 or len(sentences) < 50:
            return cls.fallback()
        return cls(titles, sentences)

    @classmethod
    def fallback(cls) -> TextSource:
        rng = random.Random(0)
        words = _FALLBACK_TEXT.split()
        titles = [" ".join(rng.choices(words, k=rng.randint(6, 12))) for _ in range(400)]
        sentences = [
            " ".join(rng.choices(words, k=rng.randint(8, 20))).capitalize() + "."
            for _ in range(400)
        ]
        return cls(titles, sentences)

    def title(self, rng: random.Random) -> str:
        for _ in range(20):  # a chain that ends too early or runs on is retried
            words: list[str] = []
            word = rng.choice(self._next_words["<s>"])
            while word != "</s>" and len(words) < 18:
                words.append(word)
                word = rng.choice(self._next_words.get(word) or ["</s>"])
            if len(words) >= 5:
                return " ".join(words)
        return " ".join(words)

    def summary(self, rng: random.Random, words: int = 100) -> list[str]:
        """Sentences adding up to about `words` words."""
        chosen: list[str] = []
        count = 0
        while count < words:
            sentence = rng.choice(self._sentences)
            chosen.append(sentence)
            count += len(sentence.split())
        return chosen


def read_rows(data_dir: Path) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(data_dir.glob("*.jsonl")) if data_dir.is_dir() else []:
        with open(path, encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    return rows


def _summary_html(sentences: list[str], rng: random.Random, link: str) -> str:
    # Typical feed markup: paragraphs, a link, some emphasis, a tracking image.
    first, rest = sentences[0], sentences[1:]
    half = len(rest) // 2
    body = [
        f"<p><strong>{html.escape(first)}</strong></p>",
        f'<p>{html.escape(" ".join(rest[:half]))} <a href="{html.escape(link)}">Read more</a></p>',
        f"<p><em>{html.escape(' '.join(rest[half:]))}</em></p>",
        f'<img src="{html.escape(link)}/pixel.gif" width="1" height="1" alt="" />',
    ]
    if rng.random() < 0.3:
        body.insert(1, '<figure><img src="https://cdn.example.com/i.jpg" alt="" /></figure>')
    return "".join(body)


# ---------------------------------------------------------------- feeds


def outlet_name(feed_index: int) -> str:
    return f"Bench Outlet {feed_index:04d}"


def make_items(
    source: TextSource, feed_index: int, count: int, now: datetime, seed: int
) -> list[FakeItem]:
    rng = random.Random(f"{seed}:{feed_index}")
    outlet = outlet_name(feed_index)
    domain = f"outlet{feed_index:04d}.example.com"
    items = []
    for n in range(count):
        title = source.title(rng)
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80]
        link = f"https://www.{domain}/news/2026/{n:03d}/{slug}-{rng.getrandbits(40):x}"
        items.append(
            FakeItem(
                guid=f"{domain}:{seed}:{n}",
                link=link,
                title=title,
                summary_html=_summary_html(source.summary(rng), rng, link),
                published=(now - timedelta(seconds=rng.randint(600, 20 * 3600))).replace(
                    microsecond=0
                ),
                outlet=outlet,
            )
        )
    return items


def rss_document(items: Sequence[FakeItem], feed_index: int) -> bytes:
    outlet = outlet_name(feed_index)
    home = f"https://www.outlet{feed_index:04d}.example.com/"
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom">'
        f"<channel><title>{html.escape(outlet)}</title><link>{home}</link>"
        f"<description>Latest news from {html.escape(outlet)}</description>"
        "<language>en</language><ttl>15</ttl>"
    ]
    for item in items:
        words = item.title.split()
        parts.append(
            "<item>"
            f"<title>{html.escape(item.title)}</title>"
            f"<link>{html.escape(item.link)}</link>"
            f'<guid isPermaLink="false">{html.escape(item.guid)}</guid>'
            f"<pubDate>{format_datetime(item.published)}</pubDate>"
            f"<dc:creator>Staff reporter {len(words)}</dc:creator>"
            f"<category>{html.escape(words[0])}</category><category>World</category>"
            f"<description>{html.escape(item.summary_html)}</description>"
            f'<media:thumbnail url="{html.escape(item.link)}/thumb.jpg" width="640" height="360"/>'
            "</item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


@dataclass(frozen=True, slots=True)
class FeedBody:
    plain: bytes
    gzipped: bytes
    etag: str
    last_modified: datetime


def make_feed_bodies(
    source: TextSource, feeds: int, items_per_feed: int, now: datetime, seed: int
) -> list[FeedBody]:
    bodies = []
    for index in range(feeds):
        body = rss_document(make_items(source, index, items_per_feed, now, seed), index)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        modified = (now - timedelta(minutes=5)).replace(microsecond=0)
        bodies.append(FeedBody(body, gzip.compress(body, 6), etag, modified))
    return bodies


# ---------------------------------------------------------------- HTTP


class _FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    bodies: Sequence[FeedBody] = ()

    def do_GET(self) -> None:
        body = self._body()
        if body is None:
            self._reply(404, b"not found", {"Content-Type": "text/plain"})
            return
        headers = {
            "ETag": body.etag,
            "Last-Modified": format_datetime(body.last_modified, usegmt=True),
            "Cache-Control": "max-age=300",
        }
        if self._not_modified(body):
            self._reply(304, b"", headers)
            return
        headers["Content-Type"] = "application/rss+xml; charset=utf-8"
        payload = body.plain
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            payload = body.gzipped
        self._reply(200, payload, headers)

    def _body(self) -> FeedBody | None:
        match = re.fullmatch(r"/feeds/(\d+)\.xml", self.path.split("?")[0])
        if not match or int(match.group(1)) >= len(self.bodies):
            return None
        return self.bodies[int(match.group(1))]

    def _not_modified(self, body: FeedBody) -> bool:
        tags = self.headers.get("If-None-Match")
        if tags is not None:
            return body.etag in [t.strip().removeprefix("W/") for t in tags.split(",")]
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return parsedate_to_datetime(since) >= body.last_modified
            except (TypeError, ValueError):
                return False
        return False

    def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def start_servers(
    bodies: Sequence[FeedBody], hosts: int
) -> tuple[list[ThreadingHTTPServer], list[str]]:
    """One server per loopback address 127.0.0.1..127.0.0.N; feed i lives on host i % N."""
    handler = type("Handler", (_FeedHandler,), {"bodies": bodies})
    servers = []
    for n in range(1, hosts + 1):
        server = ThreadingHTTPServer((f"127.0.0.{n}", 0), handler)
        server.daemon_threads = True
        server.request_queue_size = 128
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    urls = []
    for index in range(len(bodies)):
        host, port = servers[index % hosts].server_address[:2]
        urls.append(f"http://{host}:{port}/feeds/{index:04d}.xml")
    return servers, urls


def stop_servers(servers: Sequence[ThreadingHTTPServer]) -> None:
    for server in servers:
        server.shutdown()
        server.server_close()


def _serve(args: argparse.Namespace) -> None:
    now = datetime.fromtimestamp(args.now, UTC) if args.now else datetime.now(UTC)
    source = TextSource.load(Path(args.data_dir) if args.data_dir else None)
    bodies = make_feed_bodies(source, args.feeds, args.items_per_feed, now, args.seed)
    servers, urls = start_servers(bodies, min(args.hosts, args.feeds))
    Path(args.urls_out).write_text("\n".join(urls) + "\n", encoding="utf-8")
    mean_kb = sum(len(b.plain) for b in bodies) / len(bodies) / 1024
    print(f"READY {len(urls)} feeds, {mean_kb:.0f} KB each on average", flush=True)
    watchdog = threading.Timer(args.max_seconds, os._exit, args=(0,))
    watchdog.daemon = True
    watchdog.start()
    sys.stdin.read()  # the parent closes our stdin when it is done, or dies
    stop_servers(servers)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve feeds on 127.0.0.x until stdin closes")
    serve.add_argument("--feeds", type=int, default=1000)
    serve.add_argument("--items-per-feed", type=int, default=50)
    serve.add_argument("--hosts", type=int, default=50)
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--now", type=float, help="Unix time the item dates are relative to")
    serve.add_argument("--data-dir", help=f"labelled .jsonl files (default {DEFAULT_DATA_DIR})")
    serve.add_argument("--urls-out", required=True, help="write the feed URLs here, one a line")
    serve.add_argument("--max-seconds", type=float, default=MAX_SERVE_SECONDS)
    args = parser.parse_args(argv)
    _serve(args)


if __name__ == "__main__":
    main()
