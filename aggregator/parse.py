"""Turn a fetched body into a `ParsedFeed`: plain text, absolute http(s) links, UTC dates.

feedparser does the format work (RSS 0.9x/1.0/2.0, Atom 0.3/1.0) with its HTML sanitiser and
relative-URI rewriting off: we reduce every field to plain text ourselves, which is both safer
and about twice as fast.

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
import html
import io
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.etree
import lxml.html

from aggregator.models import ParsedEntry, ParsedFeed

SUMMARY_MAX_CHARS = 2_000
TITLE_MAX_CHARS = 500
FEED_LINK_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")


class FeedParseError(ValueError):
    """The body is not a feed we can read; str() is a short, user-facing reason."""


class NotAFeedError(FeedParseError):
    """The body is an HTML page that links to a feed (`discovered_url`)."""

    def __init__(self, discovered_url: str) -> None:
        super().__init__(f"HTML page, not a feed; it links to the feed {discovered_url}")
        self.discovered_url = discovered_url


# ---------------------------------------------------------------- public API


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse an RSS/Atom document fetched from `url` (served with `content_type`).

    Raises NotAFeedError for an HTML page with a feed link, FeedParseError for anything else
    that is not a feed.
    """
    if not body.strip():
        raise FeedParseError("empty body")
    if _looks_like_html(body, content_type):
        links = feed_links_in_html(body, base_url=url)
        if links:
            raise NotAFeedError(links[0])
        raise FeedParseError("HTML page, not a feed (and it links to no feed)")
    result = _feedparser(_as_utf8_xml(_defuse_dtd(body), content_type))
    entries = tuple(e for e in (_entry(raw, url) for raw in result.entries) if e is not None)
    title = _text(result.feed, "title", TITLE_MAX_CHARS) or None
    if not entries and not title and (result.bozo or not result.version):
        raise FeedParseError(_bozo_reason(result))
    return ParsedFeed(
        title=title,
        link=_http_link(result.feed.get("link"), _base(result.feed, "link", url)),
        entries=entries,
        ttl_minutes=_ttl(result.feed.get("ttl")),
    )


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
    return ParsedEntry(
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        published=_utc(get(raw, "published_parsed") or get(raw, "updated_parsed")),
    )


def _text(record: dict[str, Any], key: str, limit: int) -> str:
    detail = dict.get(record, f"{key}_detail") or {}
    return _plain(dict.get(record, key) or "", dict.get(detail, "type"), limit)


def _plain(value: str, content_type: str | None, limit: int) -> str:
    is_markup = content_type is None or "html" in content_type
    text = html_to_text(value) if is_markup else _collapse(_CONTROL_CHARS.sub("", value))
    return _truncate(text, limit)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


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
        parts = urlsplit(absolute)
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return absolute


def _utc(parsed: time.struct_time | None) -> datetime | None:
    """feedparser gives dates as UTC struct_time; out-of-range values become None."""
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _ttl(value: object) -> int | None:
    try:
        minutes = int(str(value).strip())
    except ValueError:
        return None
    return minutes if minutes > 0 else None


def _bozo_reason(result: Mapping[str, Any]) -> str:
    exception = result.get("bozo_exception")
    if exception is None:
        return "not an RSS or Atom feed"
    reason = str(getattr(exception, "getMessage", lambda: exception)())
    return f"not a valid feed: {reason}"[:200]


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
    for candidate in _candidates(body, declared, header):
        try:
            return body.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("windows-1252", "replace")


def _candidates(body: bytes, declared: str | None, header: str | None) -> list[str]:
    chosen = declared or header or "utf-8"
    if _is_single_byte(chosen) and not body.isascii() and _is_utf8(body):
        chosen = "utf-8"
    return [chosen, "utf-8", "windows-1252"]


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
