"""OPML subscription lists: import (any reader's export) and export (OPML 2.0).

Import reads every outline with an xmlUrl at any depth; the titles of the folders around it
(an outline that is a feed and holds others is their folder too) and its `category` attribute
become tags. A feed listed in several folders (how Feedly and Inoreader export a feed in two
categories) is one feed with the tags of all of them. The XML parser neither expands entities
nor reads DTDs or the network: an OPML file comes from anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import lxml.etree

from aggregator.config import FeedConfig, feed_key, normalise_url
from aggregator.text import http_url_problem, outlet_name, shortened


class OpmlError(ValueError):
    """Not a readable OPML file; str() is one line for the user, `line` the line it is on
    where there is one."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class OpmlListing:
    feeds: list[FeedConfig]  # in document order, each URL once
    unusable: list[str]  # xmlUrl values left out: no http(s) URL a poller can fetch ("htps://…")


def read_opml(data: bytes) -> OpmlListing:
    """The feeds an OPML document lists, and the feed URLs in it that cannot be used."""
    root = _parse_xml(data)
    if _local_name(root.tag) != "opml":
        raise OpmlError(f"not an OPML file: the root element is <{_local_name(root.tag)}>")
    body = next((c for c in root if _local_name(c.tag) == "body"), None)
    if body is None:
        raise OpmlError("not an OPML file: no <body>")
    feeds: dict[str, FeedConfig] = {}  # by feed_key: one feed however its URL is spelled
    unusable: list[str] = []
    for found in _walk(body, ()):
        if isinstance(found, str):
            unusable.append(found)
            continue
        key = feed_key(found.url)
        if (first := feeds.get(key)) is None:
            feeds[key] = FeedConfig(normalise_url(found.url), found.name, found.tags)
        else:  # the same feed in another folder: one feed, with the tags of both
            name = first.name or found.name
            feeds[key] = FeedConfig(first.url, name, _unique([*first.tags, *found.tags]))
    return OpmlListing(list(feeds.values()), unusable)


def parse_opml(data: bytes) -> list[FeedConfig]:
    """Feeds listed in an OPML document, in document order, each URL once."""
    return read_opml(data).feeds


def to_opml(feeds: Iterable[Any], title: str = "aggregator feeds") -> bytes:
    """OPML 2.0 for `feeds` (objects with url, name, tags, or (url, name, tags) tuples).
    A feed's first tag becomes its folder and all its tags its category, so that readers
    that only know folders and readers that only know categories both keep them."""
    root = lxml.etree.Element("opml", version="2.0")
    head = lxml.etree.SubElement(root, "head")
    lxml.etree.SubElement(head, "title").text = _xml_text(title)
    lxml.etree.SubElement(head, "dateCreated").text = format_datetime(
        datetime.now(UTC), usegmt=True
    )
    body = lxml.etree.SubElement(root, "body")
    folders: dict[str, Any] = {}
    for url, name, tags in (_as_tuple(f) for f in feeds):
        name = _xml_text(name or "") or None
        tags = tuple(t for t in (_xml_text(t) for t in tags) if t.strip())
        parent = body
        if tags:
            if tags[0] not in folders:
                folders[tags[0]] = lxml.etree.SubElement(body, "outline", text=tags[0])
            parent = folders[tags[0]]
        outline = lxml.etree.SubElement(parent, "outline", type="rss", text=name or url)
        if name:
            outline.set("title", name)
        outline.set("xmlUrl", url)
        # A comma separates categories and a leading "/" makes one a path: such a tag cannot
        # be written there (its folder keeps it when it is the first tag).
        if category := ",".join(t for t in tags if "," not in t and not t.startswith("/")):
            outline.set("category", category)
    return lxml.etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# ---------------------------------------------------------------- helpers


def _parse_xml(data: bytes) -> Any:
    parser = lxml.etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = lxml.etree.fromstring(data, parser)
    except lxml.etree.XMLSyntaxError as exc:  # "..., line 4, column 24 (<string>, line 4)"
        message = _POSITION.sub(r" (column \1)", exc.msg or str(exc))
        if "EntityRef" in message:  # a bare "&", as some readers export titles and URLs
            message += ': write a "&" in a title or URL as "&amp;"'
        raise OpmlError(f"not valid XML: {message}", exc.lineno or None) from None
    except (lxml.etree.LxmlError, ValueError) as exc:
        raise OpmlError(f"not valid XML: {exc}") from None
    if root is None:
        raise OpmlError("empty document")
    return root


def _walk(element: Any, folders: tuple[str, ...]) -> Iterator[FeedConfig | str]:
    """Each feed outline as a FeedConfig, or as its xmlUrl where that is no usable URL. The
    outlines inside an outline are in its folder, whether or not it is a feed itself."""
    for outline in element:
        if not isinstance(outline.tag, str) or _local_name(outline.tag) != "outline":
            continue
        attrs = {k.lower(): (v or "").strip() for k, v in outline.attrib.items()}
        label = attrs.get("title") or attrs.get("text") or None
        # as feeds.yaml takes it: an export's own URLs (a quote, user info) come back
        candidate = _as_http(attrs.get("xmlurl", ""))
        url = candidate if candidate and http_url_problem(candidate) is None else None
        if url:
            tags = _unique([*folders, *_categories(attrs.get("category", ""))])
            # text="URL": no name; one of invisible characters only names nothing either
            name = None if label in (url, attrs["xmlurl"]) else _label(label or "", NAME_MAX_CHARS)
            yield FeedConfig(url, name, tags)
        elif attrs.get("xmlurl"):
            yield attrs["xmlurl"]  # a feed with an unusable URL
        yield from _walk(outline, (*folders, label) if label else folders)


_APP_SCHEME = re.compile(r"(feed|itpc|pcast):(//)?", re.IGNORECASE)


def _as_http(url: str) -> str:
    """The http(s) URL a feed:// link (or a podcast app's itpc:// or pcast://) stands for:
    feed://host/x is http://host/x, feed:https://host/x and feed://https://host/x are
    https://host/x."""
    match = _APP_SCHEME.match(url)
    if match is None:
        return url
    rest = url[match.end() :]
    if rest.lower().startswith(("http://", "https://")):  # feed://https://host/x, as some write
        return rest
    return f"http://{rest}" if match.group(2) else rest


def _categories(value: str) -> list[str]:
    """OPML 2.0 category: comma-separated; one starting with a slash is a path whose every
    step is a tag ("/News/World"), any other is one tag ("AI/ML", as `to_opml` writes it)."""
    items = (item.strip() for item in value.split(","))
    return [
        part
        for item in items
        for part in (item.split("/") if item.startswith("/") else [item])
        if part.strip()
    ]


# What XML 1.0 cannot hold, even as a character reference: lxml refuses such strings.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_POSITION = re.compile(r", line \d+, column (\d+)$")


def _xml_text(text: str) -> str:
    """What an exported label may hold: as feed names are cleaned (no controls, no bidi
    overrides, one line), and only characters XML can carry."""
    return _NOT_XML.sub("", outlet_name(text))


def _unique(tags: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(label for t in tags if (label := _label(t, TAG_MAX_CHARS))))


# An imported file is another program's (or anyone's): its labels are cleaned as feed titles
# are (no controls, no bidi overrides, one line) and bounded, before feeds.yaml holds them.
NAME_MAX_CHARS = 200
TAG_MAX_CHARS = 80


def _label(raw: str, limit: int) -> str | None:
    return shortened(outlet_name(raw), limit) or None


def _local_name(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _as_tuple(feed: Any) -> tuple[str, str | None, Sequence[str]]:
    if isinstance(feed, tuple):
        url, name, tags = feed
    else:
        url, name, tags = feed.url, feed.name, feed.tags
    if not urlsplit(url).scheme:
        raise ValueError(f"not an absolute URL: {url}")
    return url, name, tuple(tags or ())
