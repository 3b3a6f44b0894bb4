"""OPML import and export."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import lxml.etree
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import FeedConfig
from aggregator.opml import OpmlError, parse_opml, read_opml, to_opml

DATA = Path(__file__).parent / "data" / "feeds"


def test_nested_folders_and_categories_become_tags() -> None:
    feeds = parse_opml((DATA / "subscriptions.opml").read_bytes())

    assert feeds == [
        FeedConfig(
            "https://feeds.bbci.co.uk/news/world/rss.xml",
            "BBC World",
            ("News", "World", "Europe", "uk"),
        ),
        FeedConfig("https://www.theguardian.com/world/rss", "The Guardian", ("News",)),
        FeedConfig("http://blog.example.org/feed", "No folder", ()),  # once; javascript: dropped
    ]


def test_export_is_opml_2_and_round_trips() -> None:
    feeds = [
        FeedConfig("https://a.example/rss", "A & B <News>", ("world", "europe")),
        FeedConfig("https://b.example/atom.xml", None, ()),
        FeedConfig("https://c.example/feed", "C", ("world",)),
    ]

    document = to_opml(feeds, title="My digest")

    root = lxml.etree.fromstring(document)
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "My digest"
    assert root.findtext("head/dateCreated")
    folder = root.find("body/outline[@text='world']")
    assert [o.get("xmlUrl") for o in folder] == ["https://a.example/rss", "https://c.example/feed"]
    assert parse_opml(document) == [
        FeedConfig("https://a.example/rss", "A & B <News>", ("world", "europe")),
        FeedConfig("https://c.example/feed", "C", ("world",)),
        FeedConfig("https://b.example/atom.xml", None, ()),
    ]


def test_tuples_are_accepted() -> None:
    assert parse_opml(to_opml([("https://a.example/rss", "A", ["x"])])) == [
        FeedConfig("https://a.example/rss", "A", ("x",))
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not valid XML"),
        (b"not xml at all", "not valid XML"),
        (  # a bare "&", as some readers export: the message says how to write it
            b'<opml><body><outline xmlUrl="https://a.example/rss?a=1&b=2"/></body></opml>',
            'not valid XML: .* write a "&" in a title or URL as "&amp;"',
        ),
        (b"<rss version='2.0'><channel/></rss>", "root element is <rss>"),
        (b"<opml version='2.0'><head/></opml>", "no <body>"),
    ],
)
def test_not_opml(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError, match=message):
        parse_opml(data)


def test_entity_bomb_is_refused_quickly() -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    data = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY l0 "lol">{lol}]>'
        '<opml version="2.0"><body><outline text="&l9;" xmlUrl="https://a.example/rss"/>'
        "</body></opml>"
    ).encode()
    started = time.monotonic()
    with pytest.raises(OpmlError, match="amplification"):
        parse_opml(data)
    assert time.monotonic() - started < 1


def test_external_entities_are_not_read() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY file SYSTEM "file:///etc/passwd">]>'
        b'<opml version="2.0"><body><outline text="a &file; b" xmlUrl="https://b.example/rss"/>'
        b"</body></opml>"
    )
    with pytest.raises(OpmlError, match="external entity"):  # libxml2 refuses, reads nothing
        parse_opml(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1_000))
def test_random_bytes_raise_only_opml_error(data: bytes) -> None:
    with contextlib.suppress(OpmlError):
        parse_opml(data)


def test_feed_scheme_links_are_their_http_urls_however_written() -> None:
    urls = [
        "feed://host.example/a",
        "feed:https://host.example/b",
        "feed://https://host.example/c",  # some sites write the scheme twice
        "FEED://HTTP://host.example/d",
        "pcast://host.example/e",
    ]
    outlines = "".join(f'<outline type="rss" text="{n}" xmlUrl="{u}"/>' for n, u in enumerate(urls))
    listing = read_opml(f'<opml version="2.0"><body>{outlines}</body></opml>'.encode())
    assert [f.url for f in listing.feeds] == [
        "http://host.example/a",
        "https://host.example/b",
        "https://host.example/c",
        "http://host.example/d",
        "http://host.example/e",
    ]
    assert listing.unusable == []


def test_an_imported_name_loses_the_invisible_characters_that_would_disguise_feeds_yaml() -> None:
    opml = (
        b'<opml version="2.0"><body>'
        b'<outline text="Evil &#x202E;exe.txt&#x202C;" xmlUrl="https://a.example/rss"/>'
        b'<outline text="&#x200B;" xmlUrl="https://b.example/rss"/>'
        b"</body></opml>"
    )
    assert [(f.url, f.name) for f in parse_opml(opml)] == [
        ("https://a.example/rss", "Evil exe.txt"),
        ("https://b.example/rss", None),  # invisible characters only: no name
    ]


def test_imported_folders_and_categories_are_cleaned_and_bounded_as_names_are() -> None:
    """Folder labels and categories became tags as written: a terminal's control sequence
    (U+009B), a bidi override and a line break reached feeds.yaml and `feeds export`; and a
    200,000-character label was written whole."""
    long = "x" * 200_000
    opml = (
        '<opml version="2.0"><body>'
        '<outline text="Folder &#x202E;elbisivni&#x202C; &#x9b;31m">'
        '<outline text="A" xmlUrl="https://a.example/rss"'
        ' category="/News/&#x202E;World&#x9b;2J,x&#10;y: z"/></outline>'
        f'<outline text="{long}" xmlUrl="https://b.example/rss" category="{long}"/>'
        "</body></opml>"
    ).encode()
    first, second = parse_opml(opml)
    assert first.tags == ("Folder elbisivni 31m", "News", "World2J", "x y: z")
    assert len(second.name or "") <= 200 and all(len(t) <= 80 for t in second.tags)


def test_export_writes_no_control_or_bidi_characters_a_feeds_yaml_holds() -> None:
    """A name or tag in feeds.yaml (typed, or imported before imports were cleaned) went into
    the export as it was: U+009B (a terminal's CSI) and U+202E reached `feeds export`'s
    output; the labels are cleaned as feed names are."""
    feeds = [
        FeedConfig("https://a.example/rss", "Evil \u202eexe\u202c \x9b31m", ("x\ny", "W\u202e"))
    ]
    document = to_opml(feeds, title="Mine\x9b2J").decode()
    assert not any(c in document for c in "\u202e\u202c\x9b")
    (back,) = parse_opml(document.encode())
    assert back.name == "Evil exe 31m" and back.tags == ("x y", "W")


def test_a_tag_starting_with_a_slash_is_no_path_on_the_way_back() -> None:
    """Tags [world, /r/python] came back from an export as [world, r, python]: a category
    starting with "/" is a path in OPML."""
    feeds = [FeedConfig("https://a.example/rss", "A", ("/r/python", "world", "/later"))]
    (back,) = parse_opml(to_opml(feeds))
    assert back.tags == ("/r/python", "world")  # the folder keeps the first; "/later" is lost


def test_the_urls_feeds_yaml_takes_come_back_from_an_export() -> None:
    """An export of feeds.yaml's own URLs (a quote in the query, user info of a private feed)
    was left out on import as "without an http(s) URL"."""
    urls = ['https://b.example/rss?x=1&y="2"', "https://reader:pw@c.example/feed"]
    back = parse_opml(to_opml([FeedConfig(u, None, ()) for u in urls]))
    assert [f.url for f in back] == urls
