"""parse_feed: plain text, absolute http(s) links, UTC dates, encodings, and hostile XML."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aggregator.intake import item_key
from aggregator.parse import (
    MAX_TTL_MINUTES,
    SUMMARY_MAX_CHARS,
    FeedParseError,
    NotAFeedError,
    feed_links_in_html,
    html_to_text,
    parse_feed,
)
from tests.support import feedserver
from tests.support.feedserver import FeedServer

feed_server = feedserver.feed_server  # the fixture, under its own name

DATA = Path(__file__).parent / "data" / "feeds"


def rss(items: str, *, head: str = "", declaration: str = '<?xml version="1.0"?>') -> bytes:
    body = (
        f"{declaration}\n{head}<rss version='2.0'><channel><title>T</title>{items}</channel></rss>"
    )
    return body.encode()


# ---------------------------------------------------------------- well-formed feeds


@pytest.mark.parametrize(
    ("ttl", "minutes"),
    [("90", 90), ("10000000000000", MAX_TTL_MINUTES), ("9" * 30, MAX_TTL_MINUTES), ("0", None)],
)
def test_an_absurd_ttl_reads_as_the_longest_kept(ttl: str, minutes: int | None) -> None:
    """A year at most: the store keeps it in a 32-bit column (and the schedule caps at a day)."""
    body = f"<rss version='2.0'><channel><title>T</title><ttl>{ttl}</ttl>"
    body += "<item><title>a</title><guid>1</guid></item></channel></rss>"
    assert parse_feed(body.encode(), url="https://x.example/rss").ttl_minutes == minutes


def test_rss2_entries_are_plain_text_with_absolute_links_and_utc_dates() -> None:
    feed = parse_feed((DATA / "rss2.xml").read_bytes(), url="https://news.example.com/rss")

    assert feed.title == "Example News & Views"
    assert feed.link == "https://news.example.com/"
    assert feed.ttl_minutes == 30
    budget, storm, undated = feed.entries  # the empty <item> is dropped
    assert budget.title == "Parliament passes budget & tax bill"
    assert budget.summary == "The bill passed 320 to 250. Details follow."  # no script text
    assert budget.guid == "news-example-1001"
    assert budget.published == datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
    assert storm.title == "Storm warning for the coast"
    assert storm.link == "https://news.example.com/weather/storm"  # relative, resolved
    assert storm.summary == "Storm Winds up to 120 km/h — stay inside."  # from content:encoded
    assert undated.published is None
    assert undated.link is None  # javascript: is not http(s)
    assert undated.guid is None
    assert undated.summary == "Plain text < with a stray less-than"


def test_atom_uses_xml_base_and_converts_offsets_to_utc() -> None:
    feed = parse_feed((DATA / "atom.xml").read_bytes(), url="https://blog.example.org/atom.xml")

    assert feed.title == "Example Blog: 5 < 6"  # type="text": "<" is text, not markup
    assert feed.link == "https://blog.example.org/"
    release, notes = feed.entries
    assert release.link == "https://blog.example.org/2026/posts/release-2.html"
    assert release.title == "Release 2.0 is out"
    assert release.summary == "New version with fixes."
    assert release.published == datetime(2026, 11, 24, 3, 15, tzinfo=UTC)
    assert release.published.tzinfo is UTC
    assert notes.link == "https://blog.example.org/2026/notes.html"
    assert notes.summary == "Fish & chips one two"  # xhtml content when there is no summary
    assert notes.published == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_guid_is_not_rewritten_against_the_feed_url() -> None:
    """A guid must stay the same when the feed moves (301), so it is never resolved."""
    body = rss("<item><title>a</title><guid>item-7</guid><link>/a</link></item>")
    first = parse_feed(body, url="http://old.example/rss").entries[0]
    second = parse_feed(body, url="https://new.example/feed").entries[0]
    assert first.guid == second.guid == "item-7"
    assert second.link == "https://new.example/a"


def test_links_other_than_http_are_dropped() -> None:
    items = "".join(
        f"<item><title>{n}</title><link>{href}</link></item>"
        for n, href in enumerate(
            [
                "mailto:a@b.c",
                "ftp://x.example/f",
                "data:text/html,hi",
                "http://[bad",
                "https://x.example:99999/port-out-of-range",
                "https://x.example:abc/port-not-a-number",
                "//cdn.x/y",
            ]
        )
    )
    links = [e.link for e in parse_feed(rss(items), url="https://feeds.example/rss").entries]
    assert links == [None, None, None, None, None, None, "https://cdn.x/y"]


@pytest.mark.parametrize(
    "date",
    ["", "not a date", "Tue, 31 Feb 2026 10:00:00 GMT", "0000-00-00T00:00:00Z"],
)
def test_missing_or_invalid_dates_become_none(date: str) -> None:
    body = rss(f"<item><title>x</title><pubDate>{date}</pubDate></item>")
    assert parse_feed(body, url="https://f.example/").entries[0].published is None


@pytest.mark.parametrize(
    ("date", "date_only"),
    [
        ("<pubDate>Mon, 07 Dec 2026</pubDate>", True),
        ("<dc:date>2026-12-07</dc:date>", True),
        ("<pubDate>Mon, 07 Dec 2026 08:00:00 GMT</pubDate>", False),
        ("<dc:date>2026-12-07T08:00:00Z</dc:date>", False),
    ],
)
def test_a_day_without_a_time_is_marked_as_such(date: str, date_only: bool) -> None:
    items = f"<item><title>x</title><link>https://f.example/1</link>{date}</item>"
    namespace = b"<rss version='2.0' xmlns:dc='http://purl.org/dc/elements/1.1/'>"
    body = rss(items).replace(b"<rss version='2.0'>", namespace)
    (entry,) = parse_feed(body, url="https://f.example/").entries
    assert entry.published is not None and entry.published.date().isoformat() == "2026-12-07"
    assert entry.date_only is date_only


def test_the_text_a_feed_wraps_around_every_summary_is_left_out() -> None:
    """Found among the entries of one document: a blog's footer naming each post (in HTML),
    and an aggregator's summaries that are nothing but its template."""
    bodies = ["Talks began on Sunday.", "Rain closed the port.", "The bridge reopened early."]
    footer = "".join(
        f"<item><title>Post {n}</title><description>&lt;p&gt;{body}&lt;/p&gt;&lt;p&gt;The post "
        f"&lt;a href='https://blog.example/{n}'&gt;Post {n}&lt;/a&gt; appeared first on "
        f"&lt;a href='https://blog.example/'&gt;Harbour Weekly&lt;/a&gt;.&lt;/p&gt;</description></item>"
        for n, body in enumerate(bodies, 1)
    )
    feed = parse_feed(rss(footer), url="https://blog.example/feed")
    assert [e.summary for e in feed.entries] == bodies
    links = "".join(
        f"<item><title>Link {n}</title><description>Article URL: https://s{n}.example/a "
        f"Comments URL: https://forum.example/item?id={n * 71} Points: {n * 9}</description></item>"
        for n in (1, 2, 3)
    )
    feed = parse_feed(rss(links), url="https://forum.example/rss")
    assert [(e.title, e.summary) for e in feed.entries] == [(f"Link {n}", "") for n in (1, 2, 3)]
    one = parse_feed(rss(footer.split("</item>")[0] + "</item>"), url="https://blog.example/f")
    assert one.entries[0].summary.endswith(
        "appeared first on Harbour Weekly."
    )  # nothing to compare


def test_an_entry_without_guid_or_link_keeps_its_identity_when_a_template_is_found() -> None:
    """Its key hashes its text as fetched: a template is found only while enough of the feed's
    other entries share it, and the same post must not be stored again when that changes."""
    items = [
        f"<item><title>Note {n}</title><description>{body} Sent from the Harbour Weekly desk, "
        "reply to this newsletter.</description></item>"
        for n, body in enumerate(["Talks began.", "Rain closed the port.", "A bridge reopened."])
    ]
    alone = parse_feed(rss(items[0]), url="https://letters.example/feed").entries[0]
    among = parse_feed(rss("".join(items)), url="https://letters.example/feed").entries[0]
    assert (alone.guid, alone.link) == (None, None)
    assert among.summary == "Talks began." != alone.summary
    assert item_key(among) == item_key(alone)


def test_summary_is_capped_at_a_word_boundary() -> None:
    words = " ".join(["word"] * 2_000)
    summary = parse_feed(rss(f"<item><title>x</title><description>{words}</description></item>"), url="https://f.example/").entries[0].summary  # fmt: skip
    assert len(summary) <= SUMMARY_MAX_CHARS
    assert summary.endswith("word…")


def test_quoted_html_document_in_content_does_not_make_the_feed_html() -> None:
    page = "<!DOCTYPE html><html><body><p>Example page</p></body></html>"
    body = rss(
        f"<item><title>How to write HTML</title><description><![CDATA[{page}]]></description></item>"
    )
    (entry,) = parse_feed(body, url="https://f.example/", content_type="text/html").entries
    assert entry.title == "How to write HTML"
    assert entry.summary == "Example page"


def test_empty_feed_is_valid() -> None:
    feed = parse_feed(b"<rss version='2.0'><channel></channel></rss>", url="https://f.example/")
    assert feed.entries == ()
    assert feed.title is None


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("<p>a</p><p>b</p>", "a b"),
        ("line<br>break", "line break"),
        ("AT&amp;T &lt;tag&gt; &eacute; &#8212; &#x41;", "AT&T <tag> é — A"),
        ("<style>p{}</style><script>x()</script>kept", "kept"),
        ("  lots \n\t of   space&nbsp;here ", "lots of space here"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
        ("<b>unclosed <i>tags", "unclosed tags"),
        ("nul\x00 and \x1b escape", "nul and escape"),
    ],
)
def test_html_to_text(fragment: str, text: str) -> None:
    assert html_to_text(fragment) == text


# ---------------------------------------------------------------- encodings

CAFE = "Café crème à Zürich"


def cafe(codec: str, encoding: str | None) -> bytes:
    """A feed titled CAFE, encoded with `codec`, declaring `encoding` (None: no declaration)."""
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else ""
    return (
        rss(f"<item><title>{CAFE}</title></item>", declaration=declaration).decode().encode(codec)
    )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(cafe("latin-1", "ISO-8859-1"), None, id="declared"),
        # a server default charset that the document contradicts: the document wins
        pytest.param(cafe("utf-8", "utf-8"), "text/xml; charset=ISO-8859-1", id="wrong-header"),
        pytest.param(
            cafe("cp1252", "windows-1252"), "application/rss+xml; charset=utf-8", id="cp1252"
        ),
        pytest.param(cafe("latin-1", None), "application/xml; charset=iso-8859-1", id="header"),
        pytest.param(cafe("utf-8", None), "text/xml; charset=iso-8859-1", id="utf8-under-latin1"),
        pytest.param(cafe("utf-16", "UTF-16"), "text/xml", id="utf16-bom"),
        pytest.param(b"\xef\xbb\xbf" + cafe("utf-8", None), None, id="utf8-bom"),
        # the document lies (says UTF-8, is Latin-1): fall back rather than fail
        pytest.param(cafe("latin-1", "utf-8"), None, id="lie"),
    ],
)
def test_encodings(body: bytes, content_type: str | None) -> None:
    feed = parse_feed(body, url="https://f.example/", content_type=content_type)
    assert feed.entries[0].title == CAFE


def test_one_broken_character_does_not_garble_a_utf8_feed() -> None:
    """A summary cut inside a character (a CMS trimming by bytes) sent the whole feed to
    windows-1252: every accent of every title read "CafÃ©"."""
    items = "".join(f"<item><title>{CAFE} — n°{n}</title></item>" for n in range(3))
    body = rss(items + "<item><title>cut here</title><description>cut X</description></item>")
    body = body.replace(b"cut X", b"cut \xe2\x80")
    for charset in ("utf-8", "ISO-8859-1", "windows-1252"):  # a server's single-byte default
        content_type = f"text/xml; charset={charset}"
        feed = parse_feed(body, url="https://f.example/", content_type=content_type)
        assert [e.title for e in feed.entries[:3]] == [f"{CAFE} — n°{n}" for n in range(3)]


@pytest.mark.parametrize(
    ("text", "codec", "declared", "content_type"),
    [
        # says UTF-8, is windows-1251, and the server says so: the header was never tried
        ("Новости дня", "windows-1251", "utf-8", "application/rss+xml; charset=windows-1251"),
        # labelled with the older, narrower name, written with the wider one's characters
        ("朱镕基访问", "gbk", "gb2312", None),
        ("①番の記事", "cp932", "shift_jis", None),
        ("햏 뉴스", "cp949", "euc-kr", None),
    ],
    ids=["header-over-lie", "gb2312", "shift_jis", "euc-kr"],
)
def test_encodings_read_as_browsers_do(
    text: str, codec: str, declared: str, content_type: str | None
) -> None:
    declaration = f'<?xml version="1.0" encoding="{declared}"?>'
    body = rss(f"<item><title>{text}</title></item>", declaration=declaration)
    body = body.decode().encode(codec)
    feed = parse_feed(body, url="https://f.example/", content_type=content_type)
    assert feed.entries[0].title == text


def test_latin1_sample_file() -> None:
    feed = parse_feed((DATA / "latin1.xml").read_bytes(), url="https://cafe.example.fr/rss")
    assert feed.title == "Café News"
    assert feed.entries[0].title == "Crème brûlée à Paris"


def test_feed_served_as_text_html_is_still_a_feed() -> None:
    body = rss("<item><title>x</title></item>")
    assert parse_feed(body, url="https://f.example/", content_type="text/html").entries


# ---------------------------------------------------------------- not a feed


@pytest.mark.parametrize(
    "body",
    [b"", b"   \n", b"hello world", b'{"items": []}', b"<foo><bar/></foo>", b"\x00\xff\xfe" * 10],
)
def test_not_a_feed_raises_feed_parse_error(body: bytes) -> None:
    with pytest.raises(FeedParseError) as raised:
        parse_feed(body, url="https://f.example/")
    assert not isinstance(raised.value, NotAFeedError)
    assert 0 < len(str(raised.value)) <= 200


def test_html_page_with_feed_link_reports_the_feed() -> None:
    page = (DATA / "page_with_feed_link.html").read_bytes()
    with pytest.raises(NotAFeedError) as raised:
        parse_feed(page, url="https://news.example.com/", content_type="text/html")
    # <base href> applies; JSON feeds are skipped; the first RSS/Atom link wins
    assert raised.value.discovered_url == "https://news.example.com/rss.xml"
    assert feed_links_in_html(page, base_url="https://news.example.com/") == [
        "https://news.example.com/rss.xml",
        "https://news.example.com/section/comments/atom.xml",
    ]


def test_html_page_without_feed_link() -> None:
    with pytest.raises(FeedParseError, match="HTML page"):
        parse_feed(b"<html><head><title>x</title></head><body>hi</body></html>", url="https://a.b/")


# ---------------------------------------------------------------- hostile XML


def entity_bomb(levels: int = 9, fan_out: int = 10, separator: str = "\n") -> bytes:
    """The "billion laughs": each entity repeats the one below it `fan_out` times."""
    declarations = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * fan_out}">' for i in range(1, levels + 1)
    ]
    head = f"<!DOCTYPE rss [{separator}{separator.join(declarations)}{separator}]>{separator}"
    return rss(f"<item><title>a &lol{levels}; b</title></item>", head=head)


def quadratic_bomb(value_size: int, references: int) -> bytes:
    """One big "plain" entity referenced many times (feedparser keeps such declarations)."""
    head = f'<!DOCTYPE rss [\n<!ENTITY a "{"A" * value_size}">\n]>\n'
    return rss(f"<item><title>{'&a;' * references}</title></item>", head=head)


def test_feedparser_alone_expands_declared_entities() -> None:
    """Why parse_feed defuses the DTD: plain feedparser turns 20 kB into a 4 MB title (and the
    full-size bomb below into minutes of CPU and gigabytes; measured, not run here)."""
    body = quadratic_bomb(20_000, 200)
    result = feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    assert len(result.entries[0].title) == 4_000_000


@pytest.mark.parametrize(
    "body",
    [
        entity_bomb(separator="\n"),
        entity_bomb(separator=""),  # on one line: feedparser's own regex misses it
        quadratic_bomb(200_000, 20_000),  # 260 kB; > 60 s and > 4 GB through plain feedparser
        entity_bomb(levels=30, fan_out=2),
    ],
    ids=["billion-laughs", "billion-laughs-one-line", "quadratic", "deep"],
)
def test_entity_expansion_is_not_performed(body: bytes) -> None:
    started = time.monotonic()
    feed = parse_feed(body, url="https://f.example/")
    assert time.monotonic() - started < 2
    assert len(feed.entries[0].title) < 1_000
    assert "lollol" not in feed.entries[0].title
    assert "AAAA" not in feed.entries[0].title


def test_external_entities_and_dtds_are_never_fetched_or_read(feed_server: FeedServer) -> None:
    feed_server.route("/secret", body=b"SECRET-FROM-SERVER")
    feed_server.route("/evil.dtd", body=b'<!ENTITY e "SECRET-FROM-DTD">')
    head = (
        f'<!DOCTYPE rss SYSTEM "{feed_server.url("/evil.dtd")}" [\n'
        '<!ENTITY file SYSTEM "file:///etc/passwd">\n'
        f'<!ENTITY net SYSTEM "{feed_server.url("/secret")}">\n'
        f'<!ENTITY % param SYSTEM "{feed_server.url("/evil.dtd")}">\n'
        "%param;\n]>\n"
    )
    body = rss("<item><title>a &file; &net; &e; b</title></item>", head=head)

    title = parse_feed(body, url="https://f.example/").entries[0].title

    assert "root:" not in title
    assert "SECRET" not in title
    assert feed_server.requests == []
    # feedparser on its own (expat with external general entities off) also fetches nothing
    feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    assert feed_server.requests == []


# ---------------------------------------------------------------- properties

VALID = [(DATA / name).read_bytes() for name in ("rss2.xml", "atom.xml", "latin1.xml")]


def test_a_feed_cut_off_in_transfer_is_an_error_not_a_shorter_feed() -> None:
    """A body cut before its root closes (a dropped connection without Content-Length, a
    script dying halfway) was a success: its last entry stored half-read under its link, then
    again under its guid when the whole feed came. A merely malformed feed still parses."""
    items = "".join(
        f"<item><title>Story {n}</title><link>https://f.example/{n}</link>"
        f"<guid>id-{n}</guid></item>"
        for n in range(3)
    )
    whole = rss(items)
    cut = whole[: whole.index(b"<guid>id-2")]
    with pytest.raises(FeedParseError, match="cut off in transfer"):
        parse_feed(cut, url="https://f.example/feed")
    stray = whole.replace(b"Story 1", b"Story 1 & more")  # bozo, but whole
    assert len(parse_feed(stray, url="https://f.example/feed").entries) == 3
    trailer = stray + b"\n<!-- served in 0.2 s -->\n<?php-cache done?>\n"
    assert len(parse_feed(trailer, url="https://f.example/feed").entries) == 3
    # what a host appends after the root's end is no cut (it failed every poll)
    for appended in (b'<script src="/ad.js"></script>', b"\n<b>Warning</b>: in x.php", b"\0\0"):
        assert len(parse_feed(whole + appended, url="https://f.example/feed").entries) == 3


@pytest.mark.parametrize(
    ("written", "hour"),
    [("CET", 9), ("CEST", 8), ("MESZ", 8), ("BST", 9), ("JST", 1), ("AEDT", -1), ("EST", 15)],
)
@pytest.mark.parametrize("strict", [True, False], ids=["well-formed", "feedparser"])
def test_a_zone_abbreviation_is_its_offset(written: str, hour: int, strict: bool) -> None:
    """feedparser knows North America's abbreviations only: "10:00 CET" was 10:00 UTC (an
    hour late) and "10:00 JST" 10:00 UTC (nine hours ahead of the news)."""
    title = "Story" if strict else "Story & more"  # a stray "&": feedparser's loose reading
    body = rss(f"<item><title>{title}</title><pubDate>Mon, 07 Dec 2026 10:00:00 {written}"
               "</pubDate></item>")  # fmt: skip
    published = parse_feed(body, url="https://f.example/").entries[0].published
    expected = datetime(2026, 12, 7, tzinfo=UTC) + timedelta(hours=hour)
    assert published == expected


def parse_or_error(body: bytes) -> None:
    try:
        feed = parse_feed(body, url="https://f.example/feed", content_type="application/xml")
    except FeedParseError as error:
        assert str(error)
        return
    for entry in feed.entries:
        assert entry.link is None or entry.link.startswith(("http://", "https://"))
        assert entry.published is None or entry.published.tzinfo is UTC
        assert len(entry.summary) <= SUMMARY_MAX_CHARS


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2_000))
def test_random_bytes_never_crash(body: bytes) -> None:
    parse_or_error(body)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VALID), st.floats(0, 1))
def test_truncated_feeds_never_crash(body: bytes, fraction: float) -> None:
    parse_or_error(body[: int(len(body) * fraction)])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(VALID),
    st.floats(0, 1),
    st.binary(min_size=1, max_size=20) | st.text(min_size=1, max_size=20).map(str.encode),
)
@example(VALID[0], 0.125, "\u1680".encode())  # once crashed feedparser's strict parser
def test_corrupted_feeds_never_crash(body: bytes, fraction: float, junk: bytes) -> None:
    cut = int(len(body) * fraction)
    parse_or_error(body[:cut] + junk + body[cut:])


# ---------------------------------------------------------------- lxml fast path = feedparser


def _both_paths(body: bytes, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    import aggregator.parse as parse_module

    taken: list[bool] = []
    real = parse_module._fast_parse

    def spy(document: bytes, feed_url: str):
        result = real(document, feed_url)
        taken.append(result is not None)
        return result

    with monkeypatch.context() as patch:
        patch.setattr(parse_module, "_fast_parse", spy)
        fast = _outcome(lambda: parse_feed(body, url=url))
    with monkeypatch.context() as patch:
        patch.setattr(parse_module, "_fast_parse", lambda document, feed_url: None)
        slow = _outcome(lambda: parse_feed(body, url=url))
    return (fast, any(taken)), slow


def _outcome(call):
    try:
        return call()
    except FeedParseError as error:
        return type(error), str(error)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.xml")), ids=lambda p: p.name)
def test_fast_path_matches_feedparser_on_every_data_feed(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fast, _taken), slow = _both_paths(
        path.read_bytes(), "https://news.example.com/rss", monkeypatch
    )
    assert fast == slow


def test_fast_path_is_taken_for_plain_rss2(monkeypatch: pytest.MonkeyPatch) -> None:
    (fast, taken), slow = _both_paths(
        (DATA / "rss2.xml").read_bytes(), "https://x.example/", monkeypatch
    )
    assert taken and fast == slow


_TRICKY_TEXTS = [
    "Plain title",
    "Fish &amp; chips",
    "A &lt;b&gt;bold&lt;/b&gt; move",
    "5 &lt; 6 and 7 &gt; 3",
    "<![CDATA[Storm <em>warning</em> &amp; more]]>",
    "Caf\u00e9 cr\u00e8me \u2014 \u201cquoted\u201d",
    "Caf\u00c3\u00a9 mojibake",
    "cp1252 \u0080\u0093\u0094 code points",
    "&amp;nbsp;entity&amp;amp;",
    "  spaced\n\n  out\t ",
    "Tom &amp; Jerry &lt;/p&gt;",
    "&lt;script&gt;alert(1)&lt;/script&gt;Hi",
    "",
]
_TRICKY_LINKS = [
    "https://a.example/x?a=1&amp;b=2",
    "/relative/path",
    "relative",
    "javascript:alert(1)",
    "http:///three-slashes",
    "https://a.example/q?x=1&amp;amp;y=2",
    "  https://a.example/spaces  ",
    "",
    "mailto:x@example.com",
    "https://[broken/",
]
_TRICKY_DATES = [
    "Tue, 24 Nov 2026 14:30:00 +0100",
    "2026-11-24T09:00:00Z",
    "not a date",
    "",
    "Tue, 24 Nov 1850 14:30:00 GMT",
    "24 Nov 2026 14:30 EST",
]


def _generated_rss(seed: int) -> bytes:
    import random

    rng = random.Random(seed)
    head = [f"<title>{rng.choice(_TRICKY_TEXTS)}</title>"]
    if rng.random() < 0.8:
        head.append(f"<link>{rng.choice(_TRICKY_LINKS)}</link>")
    if rng.random() < 0.5:
        head.append(f"<ttl>{rng.choice(['15', ' 30 ', '-1', 'x', ''])}</ttl>")
    head.append("<description>d</description><language>en</language>")
    if rng.random() < 0.3:
        head.append('<atom:link rel="self" href="https://x.example/rss" />')
    items = []
    for _ in range(rng.randint(0, 6)):
        parts = []
        if rng.random() < 0.8:
            parts.append(f"<title>{rng.choice(_TRICKY_TEXTS)}</title>")
        if rng.random() < 0.7:
            parts.append(f"<link>{rng.choice(_TRICKY_LINKS)}</link>")
        if rng.random() < 0.7:
            permalink = rng.choice(["", ' isPermaLink="false"', ' isPermaLink="true"'])
            guid = rng.choice([*_TRICKY_LINKS, "id-1001", " spaced-id "])
            parts.append(f"<guid{permalink}>{guid}</guid>")
        if rng.random() < 0.7:
            parts.append(f"<pubDate>{rng.choice(_TRICKY_DATES)}</pubDate>")
        if rng.random() < 0.3:
            parts.append(f"<dc:date>{rng.choice(_TRICKY_DATES)}</dc:date>")
        if rng.random() < 0.7:
            parts.append(f"<description>{rng.choice(_TRICKY_TEXTS)}</description>")
        if rng.random() < 0.3:
            parts.append(f"<content:encoded>{rng.choice(_TRICKY_TEXTS)}</content:encoded>")
        if rng.random() < 0.3:
            parts.append("<category>World</category><dc:creator>Staff</dc:creator>")
        if rng.random() < 0.2:
            parts.append('<media:thumbnail url="https://x.example/t.jpg" /><!-- c -->')
        rng.shuffle(parts)
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom">'
        "<channel>" + "".join(head) + "".join(items) + "</channel></rss>"
    ).encode()


def test_fast_path_matches_feedparser_on_generated_feeds(monkeypatch: pytest.MonkeyPatch) -> None:
    taken_count = 0
    for seed in range(300):
        body = _generated_rss(seed)
        (fast, taken), slow = _both_paths(body, "https://news.example.com/feeds/rss", monkeypatch)
        assert fast == slow, (seed, body)
        taken_count += taken
    assert taken_count > 150  # the fast path really ran for most of them


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "x">]><rss version="2.0"><channel>'
        b"<title>&a;</title></channel></rss>",
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>',
        b'<rss version="0.91"><channel><title>T</title></channel></rss>',
        b'<rss version="2.0"><channel><title>T<b>x</b></title></channel></rss>',
        b'<rss version="2.0" xml:base="https://b.example/"><channel><title>T</title></channel></rss>',
        b'<rss version="2.0"><channel><title>T</title><item><title>a</title>'
        b"<title>b</title></item></channel></rss>",
        b'<rss version="2.0"><channel><title>T &nbsp;</title></channel></rss>',
    ],
)
def test_fast_path_declines_what_it_cannot_reproduce(body: bytes) -> None:
    from aggregator.parse import _as_utf8_xml, _defuse_dtd, _fast_parse

    assert _fast_parse(_as_utf8_xml(_defuse_dtd(body), None), "https://x.example/") is None


def _generated_atom(seed: int) -> bytes:
    import random

    rng = random.Random(seed)

    def text(tag: str) -> str:
        kind = rng.choice(["", ' type="text"', ' type="html"', ' type="html"'])
        return f"<{tag}{kind}>{rng.choice(_TRICKY_TEXTS)}</{tag}>"

    def link() -> str:
        rel = rng.choice(["", ' rel="alternate"', ' rel="self"', ' rel="related"'])
        kind = rng.choice(["", ' type="text/html"', ' type="application/pdf"'])
        href = rng.choice(_TRICKY_LINKS).replace('"', "")
        return f'<link{rel}{kind} href="{href}"/>'

    head = [text("title")] if rng.random() < 0.9 else []
    head += [link() for _ in range(rng.randint(0, 2))]
    if rng.random() < 0.6:
        head.append(f"<id>{rng.choice([*_TRICKY_LINKS, 'tag:x.example,2026:feed'])}</id>")
    head.append("<updated>2026-11-24T10:00:00Z</updated>")
    if rng.random() < 0.3:
        head.append("<author><name>Staff</name><uri>https://x.example/</uri></author>")
    entries = []
    for _ in range(rng.randint(0, 6)):
        parts = []
        if rng.random() < 0.8:
            parts.append(text("title"))
        parts += [link() for _ in range(rng.randint(0, 2))]
        if rng.random() < 0.7:
            parts.append(f"<id>{rng.choice([*_TRICKY_LINKS, 'tag:x.example,2026:1'])}</id>")
        for tag in ("published", "updated"):
            if rng.random() < 0.5:
                parts.append(f"<{tag}>{rng.choice(_TRICKY_DATES)}</{tag}>")
        if rng.random() < 0.6:
            parts.append(text("summary"))
        if rng.random() < 0.4:
            parts.append(text("content"))
        if rng.random() < 0.3:
            parts.append('<category term="World"/><author><name>A</name></author><!-- c -->')
        rng.shuffle(parts)
        entries.append("<entry>" + "".join(parts) + "</entry>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        + "".join(head)
        + "".join(entries)
        + "</feed>"
    ).encode()


def test_fast_path_matches_feedparser_on_generated_atom_feeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken_count = 0
    for seed in range(300):
        body = _generated_atom(seed)
        (fast, taken), slow = _both_paths(body, "https://blog.example.org/feeds/atom", monkeypatch)
        assert fast == slow, (seed, body)
        taken_count += taken
    assert taken_count > 150


def test_a_reference_to_half_a_surrogate_pair_reads_as_a_replacement_character() -> None:
    """XML holds no such character; feedparser failed the whole feed on "&#xD800;"."""
    body = (
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>"
        b"<item><title>Bad &#xD800; and &#56320; but &#233; &amp; &#x1F600;</title>"
        b"<link>https://a.example/1</link></item>"
        b"<item><title>Good</title><link>https://a.example/2</link></item></channel></rss>"
    )
    feed = parse_feed(body, url="https://a.example/feed")
    assert [e.title for e in feed.entries] == ["Bad \ufffd and \ufffd but é & \U0001f600", "Good"]


# ---------------------------------------------------------------- the feed's language

_RSS_IN = (
    "<?xml version='1.0'?><rss version='2.0'{root}><channel><title>T</title>{declared}"
    "<item><title>x</title><link>https://a.example/1</link>{own}</item></channel></rss>"
)


@pytest.mark.parametrize(
    ("body", "language"),
    [
        (_RSS_IN.format(root="", declared="<language>ar</language>", own=""), "ar"),
        (_RSS_IN.format(root="", declared="<language> pt_BR </language>", own=""), "pt-BR"),
        (_RSS_IN.format(root="", declared="<language>EN-us</language>", own=""), "en-us"),
        (
            _RSS_IN.format(
                root=" xmlns:dc='http://purl.org/dc/elements/1.1/'",
                declared="<dc:language>he</dc:language>",
                own="",
            ),
            "he",
        ),
        (_RSS_IN.format(root="", declared='<language>"><script></language>', own=""), None),
        (_RSS_IN.format(root="", declared="<language>English</language>", own=""), None),
        (_RSS_IN.format(root="", declared="", own=""), None),
        (
            "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom' xml:lang='ja'>"
            "<title>T</title><entry><title>x</title><id>https://a.example/1</id></entry></feed>",
            "ja",
        ),
        (  # an entry's own language is not the feed's
            "<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>T</title>"
            "<entry xml:lang='fr'><title>x</title><id>https://a.example/1</id></entry></feed>",
            None,
        ),
    ],
)
def test_a_feed_declares_its_language_on_both_paths(
    body: str, language: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The headlines' language on the pages (`lang`, which a screen reader takes its voice
    from) is the one the feed declares, read alike on the fast path and feedparser's; a value
    that is no language tag is none."""
    (fast, _taken), slow = _both_paths(body.encode(), "https://a.example/feed", monkeypatch)
    assert fast == slow
    assert fast.language == language


def test_a_json_feed_declares_its_language() -> None:
    import json

    document = {"version": "https://jsonfeed.org/version/1.1", "language": "de-AT", "items": []}
    document["items"] = [{"id": "1", "title": "x"}]
    assert parse_feed(json.dumps(document).encode(), url="https://a.example/f").language == "de-AT"
    document["language"] = ["de"]
    assert parse_feed(json.dumps(document).encode(), url="https://a.example/f").language is None
