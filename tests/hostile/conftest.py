"""Hostile feeds for the tests in this folder: served, polled, grouped, built and emailed.

Payloads come from tests/hostile/payloads/*.txt, are served as RSS and Atom by the loopback
server, go through the real pipeline (poll, embed, group, build, email) and the outputs are
checked statically here and in real Chromium (tests/hostile/test_browser_hostile.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import lxml.html
import pytest

from aggregator import pipeline
from aggregator.config import load_config
from aggregator.store import Store
from tests.support.feedserver import FeedServer

PAYLOADS = Path(__file__).with_name("payloads")
NOW = datetime.now(UTC)
SAFE_SCHEMES = ("http://", "https://")
DANGEROUS_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "base",
    "frame",
    "frameset",
    "applet",
    "form",
}


def payloads(name: str) -> list[str]:
    lines = (PAYLOADS / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("# ")]


def rss(title: str, items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{escape(link)}</link>"
        f"<guid isPermaLink='false'>{escape(t)}-{n}</guid>"
        f"<pubDate>{(NOW - timedelta(minutes=n)).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        f"<description>{escape(summary)}</description></item>"
        for n, (t, link, summary) in enumerate(items)
    )
    return f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{escape(title)}</title>{body}</channel></rss>".encode()


def atom(title: str, items: list[tuple[str, str, str]]) -> bytes:
    # Atom lets the feed say its title and summary are HTML: the parser must strip it, not pass it on.
    body = "".join(
        f"<entry><title type='html'>{escape(t)}</title><link href={json.dumps(link)}/>"
        f"<id>urn:x:{n}</id><updated>{(NOW - timedelta(minutes=n)).isoformat()}</updated>"
        f"<summary type='html'>{escape(summary)}</summary></entry>"
        for n, (t, link, summary) in enumerate(items)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        f"<title type='html'>{escape(title)}</title><id>urn:x</id><updated>{NOW.isoformat()}</updated>{body}</feed>"
    ).encode()


def hostile_feeds(server: FeedServer) -> list[tuple[str, str | None]]:
    """Serves hostile feeds; returns (url, configured outlet name or None)."""
    xss, links = payloads("xss.txt"), payloads("links.txt")
    # A distinct query per item: the same http(s) link in two feeds is stored once, by design.
    items = [(p, f"{links[i % len(links)]}?i={i}", f"Summary {i}: {p}") for i, p in enumerate(xss)]
    feeds: list[tuple[str, str | None]] = []
    for index in range(0, len(items), 8):
        chunk = items[index : index + 8]
        feed_title = xss[(index // 8) % len(xss)]
        kind = "atom" if index % 16 else "rss"
        path = f"/hostile/{index}.xml"
        body = atom(feed_title, chunk) if kind == "atom" else rss(feed_title, chunk)
        server.route(path, body=body, headers={"Content-Type": f"application/{kind}+xml"})
        # Every other feed has a hostile configured name; the rest use the hostile feed title.
        feeds.append((server.url(path), xss[-(index // 8) - 1] if index % 16 == 0 else None))
    return feeds


def write_config(tmp_path: Path, feeds: list[tuple[str, str | None]]) -> Path:
    lines = [
        "allow_private: true",
        "database: news.db",
        "output: site",
        "site: {title: 'Digest', base_url: 'https://news.example.org/'}",
        "email: {to: [reader@example.org], from: digest@example.org}",
        "feeds:",
    ]
    for url, name in feeds:
        lines.append(f"  - url: {json.dumps(url)}")
        if name is not None:
            lines.append(f"    name: {json.dumps(name)}")
    path = tmp_path / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, bytes]]:
    tmp_path = tmp_path_factory.mktemp("hostile")
    with FeedServer() as server:
        config = load_config(write_config(tmp_path, hostile_feeds(server)))
        with Store.open(config.database) as store:
            summary = pipeline.poll(config, store, force=True)
            assert summary.feeds_failed == 0, summary.errors
            assert summary.new_items >= len(payloads("xss.txt")) - 2
            pipeline.cluster(config, store)
            pipeline.build(config, store)
            eml = tmp_path / "digest.eml"
            pipeline.email(config, store, to_file=eml)
    yield config.output, eml.read_bytes()


def assert_inert_html(html: str, where: str) -> None:
    tree = lxml.html.fromstring(html)
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.lower()
        assert tag not in DANGEROUS_TAGS, f"{where}: <{tag}>"
        if tag == "meta":
            # Only our own Content-Security-Policy may use http-equiv (never a refresh).
            equiv = element.attrib.get("http-equiv", "").lower()
            assert equiv in ("", "content-security-policy"), f"{where}: meta {equiv}"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"{where}: <{tag} {name}=...>"
            if name.lower() in (
                "href",
                "src",
                "action",
                "formaction",
                "background",
                "poster",
                "srcset",
            ):
                lowered = value.strip().lower()
                absolute = ":" in lowered.split("/")[0] or lowered.startswith("//")
                assert not absolute or lowered.startswith(SAFE_SCHEMES), (
                    f"{where}: {name}={value!r}"
                )
            if name.lower() == "style":
                assert "javascript" not in value.lower() and "expression" not in value.lower(), (
                    where
                )
