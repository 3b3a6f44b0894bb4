"""Turn a fetched body into a `ParsedFeed`: plain text, absolute http(s) links, UTC dates.

feedparser does the format work (RSS 0.9x/1.0/2.0, Atom 0.3/1.0) with its HTML sanitiser and
relative-URI rewriting off: we reduce every field to plain text ourselves, which is both safer
and about twice as fast. JSON Feed 1.0/1.1 (jsonfeed.org) is read here, by content type or by
its first character, into the same records under the same limits.

Safety: feedparser re-inserts "plain" entity declarations from the DTD and its fallback (loose)
parser then expands every reference, so a 200 kB entity referenced 20,000 times takes minutes
and gigabytes (tests/test_parse.py proves it). News feeds do not declare entities, so before
parsing we drop the DTD's internal subset whenever it declares any: no expansion bombs, no
external entities. feedparser is also always given a byte stream, never a string, because a
string may be opened as a local file name or URL.
"""

from __future__ import annotations

import calendar
import codecs
import contextlib
import html
import io
import json
import re
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
import lxml.etree
import lxml.html
from feedparser.datetimes import _parse_date as _feedparser_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin

from aggregator.boilerplate import strip_feed_templates
from aggregator.models import ParsedEntry, ParsedFeed
from aggregator.text import http_url_problem, language_tag, shortened, text_digest

SUMMARY_MAX_CHARS = 2_000
TITLE_MAX_CHARS = 500
MAX_TTL_MINUTES = 366 * 24 * 60  # a longer <ttl> reads as a year: "seldom" either way
FEED_LINK_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+json",
)
JSON_FEED_VERSION = "https://jsonfeed.org/version/"


class FeedParseError(ValueError):
    """The body is not a feed we can read; str() is a short, user-facing reason."""


class NotAFeedError(FeedParseError):
    """The body is an HTML page that links to a feed (`discovered_url`)."""

    def __init__(self, discovered_url: str) -> None:
        super().__init__(f"HTML page, not a feed; it links to the feed {discovered_url}")
        self.discovered_url = discovered_url


# ---------------------------------------------------------------- public API


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse an RSS/Atom document or a JSON Feed fetched from `url` (served with
    `content_type`). Entry summaries come without the text the feed wraps around every one
    of them (`strip_feed_templates`: found here, where all of one document's entries are).

    Raises NotAFeedError for an HTML page with a feed link, FeedParseError for anything else
    that is not a feed.
    """
    feed = _without_controls_in_ids(_parse_document(body, url=url, content_type=content_type))
    summaries = strip_feed_templates([(entry.title, entry.summary) for entry in feed.entries])
    if all(s is entry.summary for s, entry in zip(summaries, feed.entries, strict=True)):
        return feed
    entries = tuple(
        entry if summary is entry.summary else _without_template(entry, summary)
        for entry, summary in zip(feed.entries, summaries, strict=True)
    )
    return replace(feed, entries=entries)


def newest_entries(feed: ParsedFeed, limit: int) -> ParsedFeed:
    """The feed with at most ``limit`` entries, the newest by their dates (an undated entry
    after every dated one, in the feed's order), kept in the feed's order: one response of
    tens of thousands of entries (a flood, a broken generator) would otherwise all be stored,
    embedded and grouped, every poll."""
    if len(feed.entries) <= limit:
        return feed
    order = sorted(
        range(len(feed.entries)),
        key=lambda k: (feed.entries[k].published is None, _newest_first(feed.entries[k]), k),
    )
    kept = sorted(order[:limit])
    return replace(feed, entries=tuple(feed.entries[k] for k in kept))


def _newest_first(entry: ParsedEntry) -> float:
    return -entry.published.timestamp() if entry.published is not None else 0.0


def _without_controls_in_ids(feed: ParsedFeed) -> ParsedFeed:
    """Guids without control characters, which no feed means (JSON allows "\u0000" in an
    "id"; PostgreSQL refuses NUL in text, which failed the whole batch of a poll)."""
    if not any(e.guid and _CONTROL_CHARS.search(e.guid) for e in feed.entries):
        return feed
    entries = tuple(
        replace(e, guid=_CONTROL_CHARS.sub("", e.guid).strip() or None) if e.guid else e
        for e in feed.entries
    )
    return replace(feed, entries=entries)


def _without_template(entry: ParsedEntry, summary: str) -> ParsedEntry:
    if entry.guid or entry.link:
        return replace(entry, summary=summary)
    digest = text_digest(entry.title, entry.summary)
    return replace(entry, summary=summary, text_digest=digest)


def _parse_document(body: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    if not body.strip():
        raise FeedParseError("empty body")
    if _looks_like_json(body, content_type):
        return parse_json_feed(body, url=url)
    if _looks_like_html(body, content_type):
        links = feed_links_in_html(body, base_url=url)
        if links:
            raise NotAFeedError(links[0])
        raise FeedParseError("HTML page, not a feed (and it links to no feed)")
    document = _without_surrogate_refs(_as_utf8_xml(_defuse_dtd(body), content_type))
    fast = _fast_parse(document, url)
    if fast is not None:
        return replace(fast, language=_declared_language(document))
    result = _feedparser(document)
    if result.bozo and _cut_off(document):
        # A body cut in transfer (a dropped connection without Content-Length, a script that
        # died halfway) would store its last entry half-read, under another key than its whole
        # self next time: the poll fails instead, and its validators are not kept.
        raise FeedParseError("the feed ends before its root element closes: cut off in transfer?")
    entries = tuple(e for e in (_entry(raw, url) for raw in result.entries) if e is not None)
    title = _text(result.feed, "title", TITLE_MAX_CHARS) or None
    if not entries and not title and (result.bozo or not result.version):
        if not _looks_like_markup(body):
            raise FeedParseError(
                "neither an XML feed (RSS, Atom) nor a JSON Feed: the body starts with "
                f"{_snippet(body)}"
            )
        raise FeedParseError(_bozo_reason(result))
    return ParsedFeed(
        title=title,
        link=_http_link(result.feed.get("link"), _base(result.feed, "link", url)),
        entries=entries,
        ttl_minutes=_ttl(result.feed.get("ttl")),
        language=_declared_language(document),
    )


# RSS's <language> (or <dc:language>) and Atom's xml:lang on the root, before the first entry:
# read from the document, so that both XML paths give the same (an entry's own xml:lang is not
# read: a feed mixing languages is rare, and its channel's says what most of it is in).
_LANGUAGE_ELEMENT = re.compile(rb"<(?:dc:)?language>\s*([^<]{1,40}?)\s*</(?:dc:)?language>", re.I)
_ROOT_LANGUAGE = re.compile(
    rb"<(?:feed|rss|rdf:RDF|channel)\b[^>]*?\sxml:lang\s*=\s*[\"']([^\"']{1,40})[\"']", re.I
)


def _declared_language(document: bytes) -> str | None:
    head = document[:65_536]
    entries = [at for at in (head.find(b"<item"), head.find(b"<entry")) if at >= 0]
    head = head[: min(entries, default=len(head))]
    for pattern in (_LANGUAGE_ELEMENT, _ROOT_LANGUAGE):
        match = pattern.search(head)
        if match:
            return language_tag(match.group(1).decode("utf-8", "replace"))
    return None


# ---------------------------------------------------------------- JSON Feed 1.0 / 1.1


def parse_json_feed(body: bytes, *, url: str) -> ParsedFeed:
    """A JSON Feed (https://jsonfeed.org/version/1.1, and 1.0) as a ParsedFeed: the same
    plain-text fields, limits and http(s)-only links as the XML path. Untrusted input: every
    field may be missing or of the wrong type, and is then ignored."""
    try:
        document = json.loads(_decode_json(body))
    except json.JSONDecodeError as exc:
        raise FeedParseError(
            f"not a valid JSON Feed: invalid JSON at line {exc.lineno} column {exc.colno}: "
            f"{exc.msg}"
        ) from None
    except RecursionError:
        raise FeedParseError("not a valid JSON Feed: arrays or objects nested too deeply") from None
    except ValueError:  # json's only other failure: an integer past Python's digit limit
        raise FeedParseError(
            f"not a valid JSON Feed: a number too long to read (over {sys.get_int_max_str_digits():,} "
            "digits)"
        ) from None
    if not isinstance(document, dict):
        raise FeedParseError("JSON, but not a JSON Feed: the top level is not an object")
    version = document.get("version")
    if not isinstance(version, str) or not version.startswith(JSON_FEED_VERSION):
        raise FeedParseError(
            'JSON, but not a JSON Feed: no "version": "https://jsonfeed.org/version/1.1"'
        )
    raw_items = document.get("items")
    if not isinstance(raw_items, list):
        raise FeedParseError('not a valid JSON Feed: "items" is missing or not a list')
    feed_url = _json_str(document, "feed_url")
    base = _http_link(feed_url, url) or url
    entries = tuple(
        entry
        for entry in (_json_entry(raw, base) for raw in raw_items if isinstance(raw, dict))
        if entry is not None
    )
    title = _plain(_json_str(document, "title"), "text/plain", TITLE_MAX_CHARS) or None
    return ParsedFeed(
        title=title,
        link=_http_link(_json_str(document, "home_page_url"), base),
        entries=entries,
        language=language_tag(document.get("language")),
    )


def _json_entry(raw: dict[str, Any], base: str) -> ParsedEntry | None:
    title = _plain(_json_str(raw, "title"), "text/plain", TITLE_MAX_CHARS)
    summary = _plain(_json_str(raw, "summary"), "text/plain", SUMMARY_MAX_CHARS)
    if not summary:
        summary = _plain(_json_str(raw, "content_text"), "text/plain", SUMMARY_MAX_CHARS)
    if not summary:
        summary = _plain(_json_str(raw, "content_html"), "text/html", SUMMARY_MAX_CHARS)
    link = _http_link(_json_str(raw, "url"), base) or _http_link(
        _json_str(raw, "external_url"), base
    )
    identifier = raw.get("id")
    if isinstance(identifier, int | float) and not isinstance(identifier, bool):
        identifier = str(identifier)  # JSON Feed 1.0 allowed numbers
    guid = (_whole_chars(identifier).strip() or None) if isinstance(identifier, str) else None
    if not (title or summary or link):
        return None
    published = _json_date(raw, "date_published") or _json_date(raw, "date_modified")
    return ParsedEntry(guid=guid, link=link, title=title, summary=summary, published=published)


def _json_str(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    return _whole_chars(value) if isinstance(value, str) else ""


def _whole_chars(text: str) -> str:
    """JSON may escape half a surrogate pair ("\\ud800"), which no UTF-8 text can hold (storing
    one failed the whole batch of a poll, every feed's items): each reads as U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# A day without a time of day: "2026-12-07", "7 Dec 2026", "Mon, 07 Dec 2026", "December 7, 2026"
_DATE_ONLY = re.compile(
    r"\s*(?:\d{4}-\d{1,2}-\d{1,2}|(?:[A-Za-z]{3,9}\.?,?\s+)?\d{1,2}\s+[A-Za-z]{3,9}\.?,?\s+\d{2,4}"
    r"|(?:[A-Za-z]{3,9},?\s+)?[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4})\s*"
)


def is_date_only(written: object) -> bool:
    """Whether a feed's date gives a day and no time of day (read as its midnight, UTC)."""
    return isinstance(written, str) and len(written) < 64 and bool(_DATE_ONLY.fullmatch(written))


# Zone abbreviations feeds write that feedparser reads as UTC (it knows North America's and
# the military letters only): "10:00 CET" was stored an hour late, "10:00 JST" nine hours in
# the future. Ambiguous ones (IST: India, Ireland or Israel) are left as they were read.
_ZONE_OFFSETS = {
    "WET": "+0000", "WEST": "+0100", "BST": "+0100",
    "CET": "+0100", "CEST": "+0200", "MET": "+0100", "MEST": "+0200",
    "MEZ": "+0100", "MESZ": "+0200",
    "EET": "+0200", "EEST": "+0300", "MSK": "+0300", "SAST": "+0200",
    "HKT": "+0800", "SGT": "+0800", "AWST": "+0800", "PHT": "+0800", "WIB": "+0700",
    "JST": "+0900", "KST": "+0900",
    "ACST": "+0930", "ACDT": "+1030", "AEST": "+1000", "AEDT": "+1100",
    "NZST": "+1200", "NZDT": "+1300",
}  # fmt: skip
_NAMED_ZONE = re.compile(r"(?<=\s)([A-Z]{3,4})\s*\Z")


def _parse_date(value: str) -> Any:
    """feedparser's reading of a feed's date, its zone abbreviation read as its offset."""
    return _feedparser_date(_zone_as_offset(value) or value)


def _zone_as_offset(written: Any) -> str | None:
    """The date with its zone abbreviation written as its offset; None without one we know."""
    named = _NAMED_ZONE.search(written) if isinstance(written, str) else None
    if named is None or named.group(1) not in _ZONE_OFFSETS:
        return None
    return written[: named.start(1)] + _ZONE_OFFSETS[named.group(1)]


def _json_date(record: dict[str, Any], key: str) -> datetime | None:
    value = _json_str(record, key).strip()
    if not value or len(value) > 64:
        return None
    try:
        return _utc(_parse_date(value))
    except Exception:  # feedparser's date parsers raise odd things on odd input
        return None


def _decode_json(body: bytes) -> str:
    """JSON is UTF-8 (RFC 8259); a BOM or UTF-16 from old servers is tolerated."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body.decode(encoding, "replace")
    return body.decode("utf-8", "replace")


def _looks_like_json(body: bytes, content_type: str | None) -> bool:
    """JSON by its first character; by its content type unless the body is markup (servers
    mislabel feeds both ways, and the body is the better witness)."""
    first = _first_char(body)
    if first in ("{", "["):
        return True
    kind = (content_type or "").split(";")[0].strip().lower()
    return first != "<" and (kind == "application/json" or kind.endswith("+json"))


def _looks_like_markup(body: bytes) -> bool:
    return _first_char(body) == "<"


def _first_char(body: bytes) -> str:
    head = body[:1024]
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            text = head.decode(encoding, "ignore")
            break
    else:
        text = head.decode("latin-1")
    text = text.lstrip("\ufeff \t\r\n")
    return text[:1]


def _snippet(body: bytes) -> str:
    """The start of a body, safe to show in one line of an error message."""
    text = _CONTROL_CHARS.sub("?", body[:40].decode("utf-8", "replace"))
    return repr(_collapse(text))


_CHAR_REF = re.compile(rb"&#(x[0-9a-fA-F]{1,8}|[0-9]{1,10});")


def _without_surrogate_refs(document: bytes) -> bytes:
    """A character reference to half a surrogate pair ("&#xD800;") reads as U+FFFD: XML holds
    no such character, and feedparser failed the whole feed on it."""
    if b"&#" not in document:
        return document

    def replace(ref: re.Match[bytes]) -> bytes:
        digits = ref.group(1)
        code = int(digits[1:], 16) if digits[:1] == b"x" else int(digits)
        return b"&#xFFFD;" if 0xD800 <= code <= 0xDFFF else ref.group()

    return _CHAR_REF.sub(replace, document)


def _feedparser(document: bytes) -> Any:
    try:
        return feedparser.parse(
            io.BytesIO(document),
            sanitize_html=False,
            resolve_relative_uris=False,
            # No base URL on purpose: feedparser would also "resolve" RSS guids against it,
            # and a guid must not change when the feed moves. Links are resolved by us.
            response_headers={"content-type": "application/xml"},
        )
    except Exception as exc:  # feedparser trips over some malformed input (hypothesis finds it)
        raise FeedParseError(f"not a valid feed: {type(exc).__name__}: {exc}"[:200]) from None


def feed_links_in_html(body: bytes, *, base_url: str) -> list[str]:
    """Feed URLs an HTML page advertises with <link rel="alternate" type="...rss/atom...">,
    absolute, in page order, without duplicates."""
    try:
        root = lxml.html.document_fromstring(body)
    except (lxml.etree.LxmlError, ValueError):
        return []
    base = _http_link(root.xpath("string(//base/@href)"), base_url) or base_url
    links: list[str] = []
    for element in root.iter("link"):
        rel = (element.get("rel") or "").lower().split()
        kind = (element.get("type") or "").lower().split(";")[0].strip()
        if "alternate" in rel and kind in FEED_LINK_TYPES:
            href = _http_link(element.get("href"), base)
            if href and href not in links:
                links.append(href)
    return links


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    fragment = _CONTROL_CHARS.sub("", fragment)
    if "<" not in fragment:  # most titles: no parser needed
        return _collapse(html.unescape(fragment))
    try:
        root = lxml.etree.HTML(fragment, _html_parser())
    except (lxml.etree.LxmlError, ValueError):
        return _collapse(html.unescape(fragment))
    if root is None:
        return ""
    lxml.etree.strip_elements(root, *_INVISIBLE_TAGS, with_tail=False)
    for element in root.iter(*_BLOCK_TAGS):
        # Keep words in neighbouring blocks apart: "<p>a</p><p>b</p>" is "a b", not "ab".
        element.tail = " " + (element.tail or "")
    return _collapse("".join(root.itertext()))


def _html_parser() -> lxml.etree.HTMLParser:
    """One parser per thread (lxml parsers must not be shared between threads)."""
    parser = getattr(_local, "html_parser", None)
    if parser is None:
        parser = lxml.etree.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)
        _local.html_parser = parser
    return parser


_local = threading.local()


# ---------------------------------------------------------------- entries


def _entry(raw: dict[str, Any], feed_url: str) -> ParsedEntry | None:
    # dict.get, not FeedParserDict.get: it is much slower (key aliasing, deprecation checks),
    # and feedparser stores every field under its canonical name anyway.
    get = dict.get
    title = _text(raw, "title", TITLE_MAX_CHARS)
    summary = _text(raw, "summary", SUMMARY_MAX_CHARS)
    content = get(raw, "content")
    if not summary and content:
        summary = _plain(content[0].get("value", ""), content[0].get("type"), SUMMARY_MAX_CHARS)
    link = _http_link(get(raw, "link"), _base(raw, "link", feed_url))
    guid = (get(raw, "id") or "").strip() or None
    if not (title or summary or link):
        return None
    key = "published" if get(raw, "published_parsed") else "updated"
    written = get(raw, key)
    offset = _zone_as_offset(written)  # feedparser's own reading took it for UTC
    parsed = _feedparser_date(offset) if offset else get(raw, f"{key}_parsed")
    return ParsedEntry(
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        published=_utc(parsed),
        date_only=is_date_only(get(raw, key)),
    )


def _text(record: dict[str, Any], key: str, limit: int) -> str:
    detail = dict.get(record, f"{key}_detail") or {}
    return _plain(dict.get(record, key) or "", dict.get(detail, "type"), limit)


def _plain(value: str, content_type: str | None, limit: int) -> str:
    is_markup = content_type is None or "html" in content_type
    text = html_to_text(value) if is_markup else _collapse(_CONTROL_CHARS.sub("", value))
    return _truncate(text, limit)


def _truncate(text: str, limit: int) -> str:
    return shortened(text, limit)


def _base(record: dict[str, Any], key: str, fallback: str) -> str:
    """The xml:base in force where `key` was read (feedparser records it per field)."""
    for detail_key in (f"{key}_detail", "title_detail", "summary_detail"):
        base = dict.get(dict.get(record, detail_key) or {}, "base")
        if base:
            try:
                return urljoin(fallback, base)
            except ValueError:  # an unparsable xml:base, e.g. "http://[oops/"
                return fallback
    return fallback


def _http_link(href: str | None, base: str) -> str | None:
    if not href or not href.strip():
        return None
    try:
        absolute = urljoin(base, href.strip())
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    return None if http_url_problem(absolute) else absolute


def _utc(parsed: time.struct_time | None) -> datetime | None:
    """feedparser gives dates as UTC struct_time; out-of-range values become None."""
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _ttl(value: object) -> int | None:
    """RSS <ttl> in minutes; a longer one than MAX_TTL_MINUTES reads as that (the schedule
    caps it at a day anyway, and the store keeps it in a 32-bit column)."""
    try:
        minutes = int(str(value).strip())
    except ValueError:  # not a number, or more than 4,300 digits
        return None
    return min(minutes, MAX_TTL_MINUTES) if minutes > 0 else None


def _cut_off(document: bytes) -> bool:
    """The document has no end tag of its root element near its end: cut before it. (What a
    host appends after it, a script tag or a PHP warning, is no cut.)"""
    root = _FIRST_ELEMENT.match(document, _root_start(document))
    if root is None:
        return False
    end_tag = rb"</" + re.escape(root.group(1)) + rb"\s*>"
    return re.search(end_tag, document[-65_536:]) is None


def _bozo_reason(result: Mapping[str, Any]) -> str:
    exception = result.get("bozo_exception")
    if exception is None:
        return "XML, but not an RSS or Atom feed"
    reason = str(getattr(exception, "getMessage", lambda: exception)())
    return f"not a valid XML feed (RSS, Atom): {reason}"[:200]


# ---------------------------------------------------------------- text helpers

_WHITESPACE = re.compile(r"\s+")
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INVISIBLE_TAGS = ("script", "style", "noscript", "template", "head")
_BLOCK_TAGS = (
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
    "table", "blockquote", "pre", "section", "article", "header", "footer", "figure",
    "figcaption", "hr", "dt", "dd",
)  # fmt: skip


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


# ---------------------------------------------------------------- bytes before feedparser

_XML_DECLARATION = re.compile(rb"^\s*<\?xml\b[^>]*?\?>", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_XML_DECLARATION_TEXT = re.compile(r"^\s*<\?xml\b[^>]*?\?>", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<([A-Za-z][\w.:-]*)")
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*([\[>])", re.IGNORECASE)
_SUBSET_END = re.compile(rb"\]\s*>")
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _defuse_dtd(body: bytes) -> bytes:
    """Drop everything between the XML declaration and the root element when the prolog
    declares entities (the only place an internal DTD subset can be)."""
    root = _root_start(body)
    prolog = body[:root]
    if not _ENTITY_DECLARATION.search(prolog):
        return body
    declaration = _XML_DECLARATION.match(prolog)
    return (declaration.group(0) if declaration else b"") + b"\n" + body[root:]


def _root_start(body: bytes) -> int:
    """Offset of the root element's "<", skipping the DTD even if an entity value holds "<a".
    Only a DOCTYPE before the first tag counts: a post may quote "<!DOCTYPE html>" in CDATA."""
    first = _FIRST_ELEMENT.search(body)
    if not first:
        return len(body)
    doctype = _DOCTYPE.search(body, 0, first.start() + 1)
    if not doctype:
        return first.start()
    search_from = doctype.end()
    if doctype.group(1) == b"[":  # internal subset: ends at "]" + ">"
        subset_end = _SUBSET_END.search(body, search_from)
        search_from = subset_end.end() if subset_end else len(body)
    match = _FIRST_ELEMENT.search(body, search_from)
    return match.start() if match else len(body)


def _as_utf8_xml(body: bytes, content_type: str | None) -> bytes:
    """Decode with the best-evidenced encoding and re-encode as UTF-8 with a matching
    declaration, so feedparser never re-guesses.

    Order of evidence: a byte-order mark, then the document's own XML declaration, then the
    HTTP charset, then UTF-8. Servers often label feeds with a default charset (text/xml is
    ISO-8859-1 by old rules) that the feed itself contradicts, so the document wins; and a
    single-byte label on a body that is valid UTF-8 with non-ASCII bytes is taken to be wrong.
    """
    text = _decode(body, content_type).lstrip("\ufeff")
    text = _XML_DECLARATION_TEXT.sub("", text, count=1).lstrip()
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + text.encode("utf-8", "replace")


def _decode(body: bytes, content_type: str | None) -> str:
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body.decode(encoding, "replace")
    declared = _declared_encoding(body)
    header = _header_charset(content_type)
    says_utf8 = declared in (None, "utf-8", "utf8")  # XML's default, or its declaration
    single_byte = header is None or _is_single_byte(header)  # a server's old default
    if says_utf8 and single_byte and not _is_utf8(body) and _mostly_utf8(body):
        # a UTF-8 feed with a broken character: that character is lost, not every accent
        return body.decode("utf-8", "replace")
    for candidate in _candidates(body, declared, header):
        try:
            return body.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    # Nothing reads it whole. A UTF-8 feed with one broken character (a summary cut inside a
    # character) loses that character only, not every accent of the feed.
    if _mostly_utf8(body):
        return body.decode("utf-8", "replace")
    return body.decode("windows-1252", "replace")


# What browsers read these labels as (WHATWG Encoding Standard): feeds labelled with the
# older, narrower name routinely use the wider one's characters (GBK's in a "gb2312" feed).
_WIDER = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
}


def _candidates(body: bytes, declared: str | None, header: str | None) -> list[str]:
    """Encodings to try strictly, in order: the document's own declaration, the HTTP charset
    (a feed declaring UTF-8 in a body of another encoding), then UTF-8."""
    chosen = [_wider(name) for name in (declared, header) if name]
    if chosen and _is_single_byte(chosen[0]) and not body.isascii() and _is_utf8(body):
        chosen.insert(0, "utf-8")  # a single-byte label on a body that is plainly UTF-8
    return list(dict.fromkeys([*chosen, "utf-8"]))


def _wider(name: str) -> str:
    try:
        return _WIDER.get(codecs.lookup(name).name, name)
    except LookupError:
        return name


def _mostly_utf8(body: bytes) -> bool:
    """UTF-8 but for a few bad bytes: at least two good non-ASCII characters for each bad one
    (a Latin-1 or windows-1252 body read as UTF-8 has next to none: its accents are lone high
    bytes, each one bad)."""
    text = body.decode("utf-8", "replace")
    bad = text.count("\ufffd") - body.count("\ufffd".encode())
    good = sum(1 for char in text if char > "\x7f") - text.count("\ufffd")
    return bad > 0 and good >= 2 * bad


def _declared_encoding(body: bytes) -> str | None:
    declaration = _XML_DECLARATION.match(body[:512])
    if not declaration:
        return None
    encoding = _DECLARED_ENCODING.search(declaration.group(0))
    if not encoding:
        return None
    name = encoding.group(1).decode("ascii").lower()
    # A UTF-16/32 declaration on a body without BOM that we could read as ASCII is a lie.
    return None if name.startswith(("utf-16", "utf-32", "ucs")) else name


def _header_charset(content_type: str | None) -> str | None:
    match = _CHARSET.search(content_type or "")
    return match.group(1).lower() if match else None


def _is_single_byte(encoding: str) -> bool:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return True
    return name in ("ascii", "latin-1", "iso8859-1") or name.startswith(("cp12", "iso8859", "cp8"))


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _looks_like_html(body: bytes, content_type: str | None) -> bool:
    """An HTML page rather than a feed: root element <html>, or served as HTML with a root
    that is not a feed element (some servers label real feeds text/html)."""
    start = _root_start(body[:65_536])
    match = _FIRST_ELEMENT.match(body, start)
    root = match.group(1).lower() if match else b""
    if root == b"html":
        return True
    served_as_html = "html" in (content_type or "").lower() and "xhtml" not in content_type.lower()
    return served_as_html and root not in (b"rss", b"feed", b"rdf:rdf", b"rdf", b"channel")


# ---------------------------------------------------------------- fast path: RSS 2.0, Atom 1.0
#
# feedparser spends ~90 % of a typical feed's parse time in its pure-Python SAX handlers. For
# the common case, a well-formed RSS 2.0 document using only the elements below, lxml reads the
# tree in C and we apply feedparser's own per-field rules (its URI fix-up, entity and cp1252
# handling, date parser, HTML sniffing for titles), so the ParsedFeed is identical; anything
# else (a DTD, xml:base, an unknown element or attribute, a repeated field, markup inside a text
# element, RDF, Atom) returns None and goes through feedparser. tests/test_parse.py checks both
# paths give the same result. No DTD is ever loaded and entities are never expanded.

_RSS_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC = "{http://purl.org/dc/elements/1.1/}"
_MEDIA = "{http://search.yahoo.com/mrss/}"
_ATOM = "{http://www.w3.org/2005/Atom}"
_ATOM_LINK = _ATOM + "link"
# Channel children we read (title, link, ttl) or that feedparser provably ignores for our fields.
_CHANNEL_TEXT = {"title", "link", "ttl"}
_CHANNEL_IGNORED = {
    "description", "language", "pubDate", "lastBuildDate", "generator", "copyright",
    "category", "docs", "managingEditor", "webMaster", _DC + "language", _DC + "rights",
    _DC + "creator", _DC + "publisher",
}  # fmt: skip
_ITEM_TEXT = {"title", "link", "guid", "pubDate", "description", _RSS_CONTENT, _DC + "date"}
_ITEM_IGNORED = {
    "category", "comments", "author", _DC + "creator", _MEDIA + "thumbnail", "enclosure",
}  # fmt: skip
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_C1_CONTROLS = re.compile("[\x80-\x9f]")  # the only code points feedparser's _cp1252 maps


class _Bail(Exception):
    """The document is outside what the fast path reproduces exactly."""


def _fast_parse(document: bytes, url: str) -> ParsedFeed | None:
    """The feed read by lxml, or None where only feedparser knows the answer."""
    head = document[:4096]
    if (b"<rss" not in head and b"<feed" not in head) or b"xml:base" in document:
        return None
    prolog = document[: _root_start(document)]
    if _DOCTYPE.search(prolog) or _ENTITY_DECLARATION.search(prolog):  # no DTD, ever
        return None
    try:
        root = lxml.etree.fromstring(document, _xml_parser())
    except (lxml.etree.LxmlError, ValueError):
        return None
    try:
        if root.tag == _ATOM + "feed":
            return _fast_atom_tree(root, url)
        return _fast_rss_tree(root, url)
    except _Bail:
        return None


def _xml_parser() -> lxml.etree.XMLParser:
    parser = getattr(_local, "xml_parser", None)
    if parser is None:
        parser = lxml.etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            huge_tree=False,
            load_dtd=False,
            dtd_validation=False,
            remove_blank_text=False,
        )
        _local.xml_parser = parser
    return parser


def _fast_rss_tree(root: Any, url: str) -> ParsedFeed | None:
    if root.tag != "rss" or dict(root.attrib) != {"version": "2.0"}:
        raise _Bail
    if root.getroottree().docinfo.doctype or len(root) != 1 or (root.text or "").strip():
        raise _Bail
    channel = root[0]
    if channel.tag != "channel" or channel.attrib:
        raise _Bail
    fields: dict[str, str] = {}
    items = []
    for child in channel:
        tag = child.tag
        if tag == "item":
            if child.attrib:
                raise _Bail
            items.append(child)
        elif tag in _CHANNEL_TEXT:
            if tag in fields:
                raise _Bail
            fields[tag] = _fp_text(child)
        elif tag == _ATOM_LINK:
            rel = child.get("rel")
            if not rel or rel == "alternate" or len(child):
                raise _Bail
        elif tag not in _CHANNEL_IGNORED or not isinstance(tag, str):
            if tag is lxml.etree.Comment:
                continue
            raise _Bail
    entries = tuple(e for e in (_fast_item(item, url) for item in items) if e is not None)
    title_raw = fields.get("title", "")
    title = _truncate(_fp_plain_or_html(title_raw), TITLE_MAX_CHARS) or None
    if not entries and not title:
        return None  # let feedparser decide what is wrong with it
    link = fields.get("link")
    if link is not None:
        link = _LINK_ENTITY.sub(r"&\g<1>", _urljoin("", link))
    return ParsedFeed(
        title=title,
        link=_http_link(link, url),
        entries=entries,
        ttl_minutes=_ttl(fields.get("ttl")),
    )


def _fast_item(item: Any, url: str) -> ParsedEntry | None:
    fields: dict[str, str] = {}
    order: list[str] = []
    guid_is_link = False
    for child in item:
        tag = child.tag
        if tag in _ITEM_TEXT:
            if tag in fields:
                raise _Bail
            if tag == "guid":
                permalink = child.get("isPermaLink", "true")
                if set(child.attrib) - {"isPermaLink"}:
                    raise _Bail
                guid_is_link = permalink == "true"
            elif child.attrib:
                raise _Bail
            fields[tag] = _fp_text(child)
            order.append(tag)
        elif tag not in _ITEM_IGNORED or not isinstance(tag, str):
            if tag is lxml.etree.Comment:
                continue
            raise _Bail
        elif len(child):
            raise _Bail
    description = fields.get("description")
    content = fields.get(_RSS_CONTENT)
    both = description is not None and content is not None
    if both and order.index(_RSS_CONTENT) < order.index("description"):
        raise _Bail  # feedparser then reads the description as a second content
    title = _truncate(_fp_plain_or_html(fields.get("title", "")), TITLE_MAX_CHARS)
    if description is not None:
        summary = _plain(description, "text/html", SUMMARY_MAX_CHARS)
        if not summary and content:
            summary = _plain(content, "text/html", SUMMARY_MAX_CHARS)
    elif content is not None:
        summary = _plain(content, None, SUMMARY_MAX_CHARS)
    else:
        summary = ""
    guid = fields.get("guid")
    if guid is not None and guid_is_link:
        guid = _urljoin("", guid)
    raw_link = fields.get("link")
    if raw_link is not None:
        raw_link = _urljoin("", raw_link).replace("&amp;", "&")
        raw_link = _LINK_ENTITY.sub(r"&\g<1>", raw_link)
    elif guid is not None and guid_is_link:
        raw_link = guid
    link = _http_link(raw_link, url)
    if not (title or summary or link):
        return None
    written = fields.get("pubDate")
    published = _parse_date(written) if written is not None else None
    if not published and _DC + "date" in fields:
        written = fields[_DC + "date"]
        published = _parse_date(written)
    return ParsedEntry(
        guid=(guid or "").strip() or None,
        link=link,
        title=title,
        summary=summary,
        published=_utc(published),
        date_only=is_date_only(written),
    )


def _fp_text(element: Any) -> str:
    """An element's text as feedparser's pop() hands it on (stripped, utf-8 mojibake undone,
    cp1252 code points mapped); markup or comments inside it are not ours to reproduce."""
    if len(element):
        raise _Bail
    output = (element.text or "").strip()
    if not output.isascii():
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            output = output.encode("iso-8859-1").decode("utf-8")
        if _C1_CONTROLS.search(output):
            output = output.translate(_cp1252)
    return output


def _fp_plain_or_html(value: str) -> str:
    """An RSS title: plain text unless it looks like HTML by feedparser's rules."""
    kind = "text/html" if _FeedParserMixin.looks_like_html(value) else "text/plain"
    return _plain(value, kind, 10**9)


# Atom 1.0: text constructs of type text or html (xhtml goes to feedparser), links as feedparser
# picks them (the last rel="alternate" of an HTML type, else the id), no xml:base.
_ATOM_FEED_TEXT = {_ATOM + "title", _ATOM + "id"}
_ATOM_FEED_IGNORED = {_ATOM + t for t in ("updated", "subtitle", "rights", "generator")}
_ATOM_ENTRY_TEXT = {
    _ATOM + t for t in ("title", "id", "published", "updated", "summary", "content")
}
_ATOM_ENTRY_IGNORED = {_ATOM + "rights"}
_ATOM_PERSON = {_ATOM + "author", _ATOM + "contributor"}
_ATOM_PERSON_PARTS = {_ATOM + "name", _ATOM + "email", _ATOM + "uri"}
_ATOM_TYPES = {None: "text/plain", "text": "text/plain", "html": "text/html"}
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def _fast_atom_tree(root: Any, url: str) -> ParsedFeed | None:
    if set(root.attrib) - {"{http://www.w3.org/XML/1998/namespace}lang"}:
        raise _Bail
    if (root.text or "").strip():
        raise _Bail
    fields: dict[str, tuple[str, str]] = {}
    link: str | None = None
    entries = []
    for child in root:
        tag = child.tag
        if tag == _ATOM + "entry":
            entry = _fast_atom_entry(child, url)
            if entry is not None:
                entries.append(entry)
        elif tag in _ATOM_FEED_TEXT:
            _atom_field(child, fields)
        elif tag == _ATOM_LINK:
            link = _atom_link(child, link)
        elif tag in _ATOM_PERSON:
            _atom_person(child)
        elif tag == _ATOM + "category":
            _atom_empty(child)
        elif tag not in _ATOM_FEED_IGNORED:
            if tag is lxml.etree.Comment:
                continue
            raise _Bail
    title = _atom_text(fields.get(_ATOM + "title"), TITLE_MAX_CHARS) or None
    if not entries and not title:
        return None
    if link is None and _ATOM + "id" in fields:
        link = _urljoin("", fields[_ATOM + "id"][1])  # feedparser: an id is a link too
    return ParsedFeed(title=title, link=_http_link(link, url), entries=tuple(entries))


def _fast_atom_entry(entry: Any, url: str) -> ParsedEntry | None:
    if entry.attrib:
        raise _Bail
    fields: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    link: str | None = None
    for child in entry:
        tag = child.tag
        if tag in _ATOM_ENTRY_TEXT:
            _atom_field(child, fields)
            order.append(tag)
        elif tag == _ATOM_LINK:
            link = _atom_link(child, link)
        elif tag in _ATOM_PERSON:
            _atom_person(child)
        elif tag == _ATOM + "category":
            _atom_empty(child)
        elif tag not in _ATOM_ENTRY_IGNORED:
            if tag is lxml.etree.Comment:
                continue
            raise _Bail
    summary_field = fields.get(_ATOM + "summary")
    content_field = fields.get(_ATOM + "content")
    both = summary_field is not None and content_field is not None
    if both and order.index(_ATOM + "content") < order.index(_ATOM + "summary"):
        raise _Bail  # feedparser then reads the summary as a second content
    title = _atom_text(fields.get(_ATOM + "title"), TITLE_MAX_CHARS)
    if summary_field is not None:
        summary = _atom_text(summary_field, SUMMARY_MAX_CHARS)
        if not summary and content_field and content_field[1]:
            summary = _atom_text(content_field, SUMMARY_MAX_CHARS)
    elif content_field is not None:  # feedparser copies it to the summary, without its type
        summary = _plain(content_field[1], None, SUMMARY_MAX_CHARS)
    else:
        summary = ""
    guid = fields[_ATOM + "id"][1] if _ATOM + "id" in fields else None
    if guid is not None:
        guid = _urljoin("", guid)
        if link is None:
            link = guid
    link = _http_link(link, url)
    if not (title or summary or link):
        return None
    published = written = None
    if _ATOM + "published" in fields:
        written = fields[_ATOM + "published"][1]
        published = _parse_date(written)
    if not published and _ATOM + "updated" in fields:
        written = fields[_ATOM + "updated"][1]
        published = _parse_date(written)
    return ParsedEntry(
        guid=(guid or "").strip() or None,
        link=link,
        title=title,
        summary=summary,
        published=_utc(published),
        date_only=is_date_only(written),
    )


def _atom_field(element: Any, fields: dict[str, tuple[str, str]]) -> None:
    tag = element.tag
    if tag in fields:
        raise _Bail
    attributes = dict(element.attrib)
    kind = attributes.pop("type", None)
    if attributes or kind not in _ATOM_TYPES:
        raise _Bail
    fields[tag] = (_ATOM_TYPES[kind], _fp_text(element))


def _atom_text(field: tuple[str, str] | None, limit: int) -> str:
    if field is None:
        return ""
    kind, value = field
    return _plain(value, kind, limit)


def _atom_link(element: Any, current: str | None) -> str | None:
    """feedparser's choice so far: the last rel="alternate" link of an HTML type."""
    attributes = dict(element.attrib)
    if len(element) or (element.text or "").strip() or "href" not in attributes:
        raise _Bail
    if set(attributes) - {"href", "rel", "type", "title", "hreflang", "length"}:
        raise _Bail
    rel = attributes.get("rel", "alternate")
    kind = attributes.get("type", "application/atom+xml" if rel == "self" else "text/html")
    if rel != rel.lower() or kind != kind.lower():
        raise _Bail  # feedparser lowercases these; keep to what is certain
    if rel == "alternate" and _FeedParserMixin.map_content_type(kind) in _HTML_TYPES:
        return _urljoin("", attributes["href"])
    return current


def _atom_person(element: Any) -> None:
    if element.attrib or (element.text or "").strip():
        raise _Bail
    for part in element:
        if part.tag is lxml.etree.Comment:
            continue
        if part.tag not in _ATOM_PERSON_PARTS or part.attrib or len(part):
            raise _Bail


def _atom_empty(element: Any) -> None:
    if len(element):
        raise _Bail
