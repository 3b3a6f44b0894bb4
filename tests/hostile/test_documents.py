"""Hostile documents end as a recorded error or a bounded result; the other feeds are stored.

Runs the real poller against the loopback server in a child process, so its peak memory can
be measured: nothing here may push it past MEMORY_CAP_MB.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path

from tests.support.feedserver import FeedServer

MEMORY_CAP_MB = 600  # the interpreter, httpx and feedparser alone take ~100 MB

GOOD = (
    b"<?xml version='1.0'?><rss version='2.0'><channel><title>Good</title>"
    b"<item><title>A good item</title><link>https://good.example/1</link><guid>g1</guid></item>"
    b"</channel></rss>"
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><guid>laughs</guid></item></channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>XXE</title>
<item><title>secret: &xxe;</title><guid>xxe</guid></item></channel></rss>"""


def gzip_bomb(uncompressed_mb: int = 1024) -> bytes:
    """~1 MB of gzip that inflates to `uncompressed_mb` MB of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(uncompressed_mb)]
    parts.append(compressor.flush())
    return b"".join(parts)


def endless_body(total_mb: int = 1024) -> Iterator[bytes]:
    yield b"<?xml version='1.0'?><rss version='2.0'><channel><title>Big</title>"
    chunk = b"<item><title>x</title></item>" * 2000
    for _ in range(total_mb * 1024 * 1024 // len(chunk)):
        yield chunk


def many_items(count: int = 100_000) -> bytes:
    items = b"".join(
        b"<item><title>n%d</title><guid>%d</guid></item>" % (i, i) for i in range(count)
    )
    return (
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>Many</title>"
        + items
        + b"</channel></rss>"
    )


CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from aggregator import pipeline
    from aggregator.config import load_config
    from aggregator.store import Store
    config = load_config(sys.argv[1])
    with Store.open(config.database) as store:
        summary = pipeline.poll(config, store, force=True)
        rows = store.db.execute("SELECT url, last_status, last_error FROM feeds").fetchall()
        items = dict(store.db.execute("SELECT feed_url, count(*) FROM items GROUP BY feed_url").fetchall())
    print(json.dumps({
        "feeds": {url: [status, error, items.get(url, 0)] for url, status, error in rows},
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    """
)


def poll_in_child(tmp_path: Path, urls: list[str], timeout_seconds: float = 8) -> dict:
    lines = [
        "allow_private: true",
        "database: news.db",
        f"poll: {{timeout_seconds: {timeout_seconds}, max_body_mb: 10}}",
        "feeds:",
    ]
    lines += [f"  - url: {url}" for url in urls]
    config = tmp_path / "feeds.yaml"
    config.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(config)], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_hostile_documents_are_bounded_and_the_good_feed_is_stored(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    rss = {"Content-Type": "application/rss+xml"}
    feed_server.route("/good.xml", body=GOOD, headers=rss)
    feed_server.route("/laughs.xml", body=BILLION_LAUGHS, headers=rss)
    feed_server.route("/xxe.xml", body=EXTERNAL_ENTITY, headers=rss)
    feed_server.route("/bomb.xml", body=gzip_bomb(), headers={**rss, "Content-Encoding": "gzip"})
    feed_server.route("/huge.xml", body=endless_body(), headers=rss)
    feed_server.route("/trickle.xml", body=GOOD * 50, headers=rss, chunk_delay=1.0, chunk_size=1)
    feed_server.redirect("/loop-a.xml", "/loop-b.xml")
    feed_server.redirect("/loop-b.xml", "/loop-a.xml")
    feed_server.route(
        "/bad-utf8.xml",
        body=GOOD.replace(b"A good item", b"Bad \xff\xfe\xc3 bytes"),
        headers={"Content-Type": "application/rss+xml; charset=utf-8"},
    )
    feed_server.route("/many.xml", body=many_items(), headers=rss)
    names = ["good", "laughs", "xxe", "bomb", "huge", "trickle", "loop-a", "bad-utf8", "many"]
    urls = {name: feed_server.url(f"/{name}.xml") for name in names}

    result = poll_in_child(tmp_path, list(urls.values()), timeout_seconds=6)
    feeds = result["feeds"]

    assert feeds[urls["good"]][0] == "ok" and feeds[urls["good"]][2] == 1
    for name in ("bomb", "huge", "trickle", "loop-a"):
        status, error, stored = feeds[urls[name]]
        assert status == "error" and error, name
        assert stored == 0, name
    # Entity tricks either fail to parse or parse without expanding anything.
    for name in ("laughs", "xxe"):
        status, error, _ = feeds[urls[name]]
        assert status in ("ok", "error"), name
    with sqlite3.connect(tmp_path / "news.db") as connection:
        titles = " ".join(row[0] for row in connection.execute("SELECT title FROM items"))
    assert "lollollol" not in titles
    assert "root:" not in titles
    # Invalid UTF-8 is decoded with replacement, not refused.
    assert feeds[urls["bad-utf8"]][0] == "ok"
    # 100,000 items: stored or refused, but within bounds.
    assert feeds[urls["many"]][0] in ("ok", "error")
    assert result["peak_mb"] < MEMORY_CAP_MB, result["peak_mb"]
