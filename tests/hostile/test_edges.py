"""Hostile feeds and servers past the payload corpus: what each one reaches, end to end.

Each test serves its feeds from the loopback server and runs the real stages (poll with the
real parser, cluster, build, email to an .eml file); only the embedder is a stand-in, which
puts every item in one story (grouping is not what these tests are about).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import numpy as np
import pytest

from aggregator import pipeline
from aggregator.config import Config, load_config
from aggregator.site import slugify
from aggregator.store import Store
from tests.hostile.conftest import write_config
from tests.support.feedserver import FeedServer, Reply

NOW = datetime.now(UTC)
RSS_TYPE = {"Content-Type": "application/rss+xml"}


class OneStory:
    """A stand-in embedder: every text the same direction, so every item is in one story."""

    model_key = "one-story|test"

    def embed(self, texts: Sequence[str], progress=None) -> np.ndarray:
        return np.full((len(texts), 8), 8**-0.5, dtype=np.float32)


def rss(title: str, items: Sequence[tuple[str, str]], age: timedelta = timedelta(0)) -> bytes:
    """An RSS feed of (title, link) items; the link is written as it is (it may hold a
    character reference)."""
    published = (NOW - timedelta(minutes=5) - age).strftime("%a, %d %b %Y %H:%M:%S +0000")
    body = "".join(
        f"<item><title>{escape(t)}</title><link>{link}</link><guid>{n}</guid>"
        f"<pubDate>{published}</pubDate></item>"
        for n, (t, link) in enumerate(items)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>{escape(title)}</title>{body}</channel></rss>"
    ).encode()


def configure(
    tmp_path: Path, server: FeedServer, feeds: Sequence[tuple[str, str | None]]
) -> Config:
    """feeds.yaml for (path on the server, configured name or None), as the hostile site's."""
    return load_config(write_config(tmp_path, [(server.url(path), name) for path, name in feeds]))


def publish(config: Config, tmp_path: Path) -> EmailMessage:
    """Poll, cluster, build the site and write the email; the email as a recipient reads it."""
    with Store.open(config.database) as store:
        summary = pipeline.poll(config, store, force=True)
        assert summary.feeds_failed == 0, summary.errors
        pipeline.cluster(config, store, embedder=OneStory())
        pipeline.build(config, store)
        pipeline.email(config, store, to_file=tmp_path / "digest.eml")
    eml = (tmp_path / "digest.eml").read_bytes()
    return message_from_bytes(eml, policy=policy.default)  # type: ignore[return-value]


def test_a_json_feed_with_half_a_surrogate_pair_is_stored_and_so_are_the_others(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    # JSON may escape half a surrogate pair; no UTF-8 text holds one. Storing it raised in the
    # poll's one transaction: no feed's items were stored, on every run.
    published = (NOW - timedelta(minutes=5)).isoformat()
    document = (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "Half \\ud800 pair", "items": ['
        '{"id": "a\\udfff", "url": "https://json.example/\\ud800", "title": "Title \\ud83d end",'
        f' "content_text": "Text \\udc00 end", "date_published": "{published}"}}]}}'
    )
    feed_server.route(
        "/f.json", body=document.encode(), headers={"Content-Type": "application/feed+json"}
    )
    feed_server.route(
        "/good.xml", body=rss("Good", [("A good item", "https://good.example/1")]), headers=RSS_TYPE
    )
    config = configure(tmp_path, feed_server, [("/f.json", None), ("/good.xml", None)])
    with Store.open(config.database) as store:
        summary = pipeline.poll(config, store, force=True)
        assert summary.feeds_failed == 0, summary.errors
    with sqlite3.connect(config.database) as connection:
        titles = sorted(row[0] for row in connection.execute("SELECT title FROM items"))
    assert titles == ["A good item", "Title \ufffd end"]


def test_a_link_with_a_character_xml_cannot_hold_keeps_the_atom_feed_well_formed(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    # &#xFFFF; is read into the link; U+FFFF is no XML 1.0 character, and the story's
    # rel="related" link carried it into feed.xml, which no feed reader then parses at all.
    feed = rss("Outlet", [("Storm closes the port", "https://news.example/a&#xFFFF;b")])
    feed_server.route("/f.xml", body=feed, headers=RSS_TYPE)
    config = configure(tmp_path, feed_server, [("/f.xml", None)])
    publish(config, tmp_path)
    atom = feedparser.parse((config.output / "feed.xml").read_bytes())
    assert not atom.bozo, atom.get("bozo_exception")
    assert [e.title for e in atom.entries] == ["Storm closes the port"]
    stories = json.loads((config.output / "stories.json").read_text(encoding="utf-8"))
    assert stories["stories"][0]["link"] is None


def test_an_outlet_named_as_another_outlets_page_takes_neither_page_nor_the_build(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    # A name with no Latin letters gets "outlet-" and a hash of the name as its page; a feed
    # titled exactly that took the same page name, and the build stopped ("could not derive
    # distinct file names"), on every run while the feed kept its title.
    mine = "日本経済新聞"
    impostor = f"outlet-{hashlib.sha256(mine.encode()).hexdigest()[:10]}"  # its page, outlets/...
    assert slugify(impostor) == impostor
    first = rss(
        "ignored",
        [("Yen rises against the dollar", "https://nikkei.example/1")],
        age=timedelta(hours=1),
    )
    feed_server.route("/mine.xml", body=first, headers=RSS_TYPE)
    feed_server.route(
        "/impostor.xml",
        body=rss(impostor, [("Yen rises again against the dollar", "https://impostor.example/1")]),
        headers=RSS_TYPE,
    )
    config = configure(tmp_path, feed_server, [("/mine.xml", mine), ("/impostor.xml", None)])
    publish(config, tmp_path)
    outlets = config.output / "outlets"
    # The outlet first seen keeps its page; the other gets a page of its own.
    assert mine in (outlets / f"{impostor}.html").read_text(encoding="utf-8")
    pages = [p for p in outlets.glob("*.html") if p.name != "index.html"]
    assert len(pages) == 2
    other = next(p for p in pages if p.name != f"{impostor}.html")
    assert "impostor.example" in other.read_text(encoding="utf-8")


def encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.mark.parametrize(
    "hidden",
    ["\r\nBcc: thief@example.org", "\u202egnp.exe"],
    ids=["headers", "bidi"],
)
def test_a_title_spelling_an_encoded_word_adds_no_header(
    feed_server: FeedServer, tmp_path: Path, hidden: str
) -> None:
    # The top story's headline is in the Subject. The email package decodes RFC 2047 encoded
    # words in a header value it is given: one in a title was decoded, past header_text's
    # cleaning, and its CR/LF wrote a header of the feed's choosing (Bcc:, Reply-To:, ...).
    title = f"Breaking {encoded_word(hidden)} now"
    feed_server.route(
        "/f.xml", body=rss("Outlet", [(title, "https://news.example/a")]), headers=RSS_TYPE
    )
    message = publish(configure(tmp_path, feed_server, [("/f.xml", None)]), tmp_path)
    assert message.get_all("Bcc") is None
    subject = str(message["Subject"])
    assert "\r" not in subject and "\n" not in subject and "\u202e" not in subject
    assert "thief" not in subject and "gnp" not in subject
    # The title is shown as the feed wrote it.
    assert "Breaking =" in subject and "utf-8?b?" in subject


@pytest.mark.parametrize("header", ["Expires", "Retry-After"])
def test_a_date_past_the_last_representable_moment_is_read_as_far_off(
    feed_server: FeedServer, tmp_path: Path, header: str
) -> None:
    # "31 Dec 9999 23:59:59 -0100" is a valid HTTP date one hour past datetime.max in UTC:
    # reading it raised OverflowError, and the feed failed with "unexpected error".
    far = "Fri, 31 Dec 9999 23:59:59 -0100"
    if header == "Expires":
        reply = Reply(
            200,
            body=rss("Far", [("An item", "https://far.example/1")]),
            headers={**RSS_TYPE, header: far},
        )
    else:
        reply = Reply(503, headers={header: far})
    feed_server.route("/f.xml", handler=lambda _request: reply)
    config = configure(tmp_path, feed_server, [("/f.xml", None)])
    with Store.open(config.database) as store:
        summary = pipeline.poll(config, store, force=True)
    errors = dict(summary.errors)
    if header == "Expires":
        assert summary.feeds_failed == 0 and summary.new_items == 1, errors
    else:
        (error,) = errors.values()
        assert error.startswith("HTTP 503") and "Retry-After: not before" in error, error
