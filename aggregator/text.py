"""Small text and URL helpers shared by the stages."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from datetime import date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only track the reader; removing them makes one article one key.
_TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z_]*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|igshid|yclid|"
    r"_hsenc|_hsmi|mkt_tok|cmpid|ocid|rss|ref|ref_src|feature|smid|partner|at_medium|at_campaign)$",
    re.IGNORECASE,
)


# Whitespace, controls, invisible and bidi characters, and quoting characters never belong in a
# link we render: they are how a hostile URL hides a scheme or breaks out of an attribute. Nor do
# the characters XML 1.0 cannot hold (U+FFFE, U+FFFF, lone surrogates): one in a link made the
# site's Atom feed not well-formed, which a feed reader refuses as a whole.
_URL_FORBIDDEN = re.compile(
    r"[\s\\<>\"'`\x00-\x1f\x7f-\x9f\xad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
    r"\ud800-\udfff\ufffe\uffff]"
)


# An http(s) URL whose host is letters, digits, dots and hyphens, with a port of at most 4
# digits and no user info: what urlsplit would accept below, without its cost (a site build
# checks every report's link twice). Anything else takes the full check.
_PLAIN_HTTP_URL = re.compile(
    r"(?i:https?)://[A-Za-z0-9.-]+(?::[0-9]{1,4})?(?:[/?#].*)?", re.DOTALL | re.ASCII
)


_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}")


def language_tag(value: object) -> str | None:
    """A feed's declared language as a BCP 47 tag for a page's ``lang`` ("en-us", "pt_BR"
    as "pt-BR", "DE" as "de"), or None for anything else: it goes into attributes."""
    if not isinstance(value, str):
        return None
    tag = value.strip().replace("_", "-")
    if not _LANGUAGE_TAG.fullmatch(tag):
        return None
    primary, _, rest = tag.partition("-")
    return primary.lower() + ("-" + rest if rest else "")


def safe_http_url(url: object) -> str | None:
    """The URL if it is a plain absolute http(s) URL without credentials, else None."""
    if not isinstance(url, str) or not url or len(url) > 2048 or _URL_FORBIDDEN.search(url):
        return None
    if _PLAIN_HTTP_URL.fullmatch(url):
        return url
    if http_url_problem(url):
        return None
    parts = urlsplit(url)
    return None if parts.username or parts.password else url


# Controls (but tab and newlines, which urlsplit drops as browsers do), C1 controls, invisible
# and bidi characters, and what XML cannot hold: no IRI has them (RFC 3987), a terminal acts on
# some, a right-to-left override disguises the URL it sits in, and U+FFFE stops an OPML export.
_URL_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff"
    "\ud800-\udfff\ufffe\uffff]"
)


# The longest URL polled, fetched or linked (browsers' and servers' common limit); a feed's URL
# is a key of PostgreSQL's indexes, which hold at most 2704 bytes a row.
MAX_URL_BYTES = 2048


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is no absolute http(s) URL a poller can fetch, with the fix, or None."""
    if _URL_CONTROL.search(url):  # no request can carry one, and PostgreSQL text cannot hold NUL
        return "holds a control or invisible character (write it percent-encoded, e.g. %00)"
    if len(url.encode()) > MAX_URL_BYTES:  # no surrogate gets here: _URL_CONTROL has them
        return f"is longer than {MAX_URL_BYTES:,} bytes (no feed's or page's address is)"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. "http://[::1/feed" (an unclosed IPv6 literal)
        return "is not a valid URL (write it as https://host/path)"
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return "is not an http(s) URL (write it as https://host/path)"
    try:
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError:
        return "has an invalid port (write a number from 1 to 65535, or none)"
    return None


def text_digest(title: str, summary: str) -> str:
    """The identity of an entry that has neither guid nor link: a hash of its text."""
    return hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()


def canonical_url(url: str) -> str:
    """The URL with tracking parameters, fragment and default port removed, host lowercased."""
    return _canonical_url(url)


@functools.lru_cache(maxsize=65_536)  # the store asks for the same link more than once
def _canonical_url(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # an invalid IPv6 literal, a port out of range or not a number
        return url.strip()
    host = (parts.hostname or "").lower()
    port = port if port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _TRACKING_PARAMS.match(k)
    ]
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), netloc, path, urlencode(query), ""))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe_terminal_text(text: str, max_length: int = 300) -> str:
    """Feed text for a terminal: no escape sequences, no line breaks, bounded length."""
    return shortened(_CONTROL.sub(" ", text), max_length)


def shortened(text: str, limit: int, strip: str = " ") -> str:
    """``text`` in at most ``limit`` characters, an ellipsis included where it is cut: at the
    last space if that leaves over half, else never inside a character as a reader sees one
    (an accent's combining mark, an emoji sequence or a flag is kept whole or left out). The
    end is stripped of ``strip``'s characters before the ellipsis."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    if cut <= limit // 2:
        cut = limit - 1
        while cut > 0 and _continues(text, cut):
            cut -= 1
    return text[:cut].rstrip(strip) + "…"


_ZERO_WIDTH_JOINER = "\u200d"


def _continues(text: str, k: int) -> bool:
    """Whether ``text[k]`` belongs to the character a reader sees at ``text[k - 1]``."""
    char, before = text[k], text[k - 1]
    if before == _ZERO_WIDTH_JOINER or char == _ZERO_WIDTH_JOINER:
        return True
    code = ord(char)
    if (
        0xFE00 <= code <= 0xFE0F  # variation selectors (emoji or text style)
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0xE0020 <= code <= 0xE007F  # tags (the flags of England, Scotland, Wales)
        or 0xE0100 <= code <= 0xE01EF
        or unicodedata.category(char) in ("Mn", "Mc", "Me")  # combining marks
    ):
        return True
    if _is_regional_indicator(char) and _is_regional_indicator(before):
        run = 0  # a flag is a pair of these: cut between pairs only
        while k - run - 1 >= 0 and _is_regional_indicator(text[k - run - 1]):
            run += 1
        return run % 2 == 1
    return False


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


@functools.lru_cache(maxsize=4096)  # a few names, asked for once an item
def outlet_name(raw: str) -> str:
    """An outlet's name as its identity and as shown: without invisible characters (Unicode
    format characters: zero-width space and joiners, BOM, soft hyphen, bidi controls such as
    U+202E; and controls; and lone surrogates, which no file or database can hold), whitespace
    collapsed. "Reu\u200bters" is Reuters, and a name made of such characters only is "" (no
    name): neither may look like one outlet and count as two."""
    # the other invisible characters first, then the joiners by what is left beside them: so a
    # name cleaned once is clean (a joiner beside a zero-width space would otherwise go only
    # the second time)
    shown = "".join(
        " " if c.isspace() else c
        for c in raw
        if c.isspace() or c in _JOINERS or unicodedata.category(c) not in ("Cf", "Cc", "Cs")
    )
    shown = "".join(c for k, c in enumerate(shown) if c not in _JOINERS or _joins(shown, k))
    return " ".join(shown.split())


def name_key(name: str) -> str:
    """How a name typed on the command line or written in feeds.yaml is matched to another:
    as shown (`outlet_name`), case folded ("DIE STRASSE" is "Die Straße"); "" matches nothing."""
    return outlet_name(name).casefold()


_JOINERS = frozenset("\u200c\u200d")


def _joins(text: str, k: int) -> bool:
    """A zero-width (non-)joiner between two non-ASCII letters or symbols spells a name (Persian
    and Indic words, emoji sequences); beside a Latin letter it only hides one."""
    if text[k] not in _JOINERS or not 0 < k < len(text) - 1:
        return False
    return all(
        not c.isascii() and not c.isspace() and c not in _JOINERS
        for c in (text[k - 1], text[k + 1])
    )


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 day', '2 days', '1 story' / '3 stories' (pass `many` when adding "s" is wrong)."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def hours_text(hours: float) -> str:
    """A span of `window_hours`, never rounded to nothing: '24 hours', '1 hour', '1.5 hours',
    '30 minutes', '0.01 hours'."""
    if hours < 1 and (hours * 60).is_integer():
        return plural(int(hours * 60), "minute")
    if float(hours).is_integer():
        return plural(int(hours), "hour")
    return f"{hours:g} hours"


# A page's dateline at the start of a summary, which scrapers and some feeds keep ("PUBLISHED:
# THURSDAY, MAY 2, 2013, 1: 32 PM UPDATED: ...", "July 25, 2005, 12: 18 AM ET Samuel ...",
# "POSTED: 1052 GMT (1852 HKT), April 10, 2007 A man ..."): when, not what, and the first
# thing a reader would see of the story. Only at the start and before a new sentence; after a
# label ("Posted:") with a date or a clock time; without one, only a date with its year within a
# day of the item's publication (a summary may open with the day it is about: "December 7, 1941
# Pearl Harbor ...", an event's "Saturday, June 8, 2024, 7 PM Book sale ...").
# A month's name or abbreviation, for patterns compiled with re.IGNORECASE (grouping's too).
MONTH_NAME = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()  # noqa: SIM905
_WEEKDAY = (
    r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?)\.?(?![\w'’])"
)
_STAMP_LABEL = re.compile(
    r"\s*(?:first\s+|last\s+)?(?:published|updated|posted|modified)(?:\s+(?:on|at))?\s*:?",
    re.IGNORECASE,
)
_DAY_AND_YEAR = (
    rf"(?:(?P<month>{MONTH_NAME})\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})"
    rf"|(?P<day2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<month2>{MONTH_NAME}),?\s+(?P<year2>\d{{4}}))"
    r"(?!\w)"
)
_STAMP_DATE = (
    rf"(?:{MONTH_NAME}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?(?!\w)"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTH_NAME}(?:,?\s+\d{{4}})?(?!\w)"
    r"|\d{1,4}\s?[/.\-]\s?\d{1,2}\s?[/.\-]\s?\d{2,4}(?!\w))"
)
_ZONE = r"(?:[ecmp][sd]?t|gmt|utc|ist|hkt|bst|cets?t|aest|aedt|jst|sgt)(?!\w)"
_STAMP_TIME = re.compile(  # a zone only after a time: "ET Canada reports" is no dateline
    rf"(?:\d{{1,2}}\s?[:.]\s?\d{{2}}(?:\s?[ap]\.?m\.?)?(?!\w)|\d{{1,2}}\s?[ap]\.?m\.?(?!\w)"
    rf"|[012]\d[0-5]\d(?=\s?{_ZONE}))(?:\s?\(?{_ZONE}\)?)?",
    re.IGNORECASE,
)
_STAMP_PART = rf"(?:{_STAMP_DATE}|{_STAMP_TIME.pattern}|\d{{4}}(?!\w)|at(?!\w)|on(?!\w))"
LEADING_STAMP = re.compile(  # a weekday only first: "May 2, 2013 Saturday Night Live ..."
    rf"(?:{_STAMP_LABEL.pattern})?\s*(?:{_WEEKDAY}[\s,]+)?(?:{_STAMP_PART}[\s,|/\-–—()]*)+",
    re.IGNORECASE,
)
DATED = re.compile(rf"{_STAMP_DATE}|\d{{4}}(?!\w)", re.IGNORECASE)
_OPENS_WITH_DAY_AND_YEAR = re.compile(rf"\s*(?:{_WEEKDAY},?\s+)?{_DAY_AND_YEAR}", re.IGNORECASE)


def without_datelines(summary: str, published: datetime | None = None) -> str:
    """``summary`` without a page's dateline at its start (see above), nor one with a label
    and a colon after a sentence ("... for help. PUBLISHED: THURSDAY, MAY 2, 2013, 1: 32 PM
    Lindsay ..."); as it is otherwise, and where nothing but the dateline is left.
    ``published``: when the item was published."""
    text = _after_datelines(summary, published)
    if ":" not in text:
        return text
    pieces, done = [], 0
    for inner in _INNER_LABEL.finditer(text):
        if inner.start() < done:
            continue
        rest = _after_datelines(text[inner.start() :], None)
        if len(rest) < len(text) - inner.start():
            pieces.append(text[done : inner.start()])
            done = len(text) - len(rest)
    return "".join([*pieces, text[done:]]) if pieces else text


# A label with its colon after a sentence's end: a dateline inside a scraped summary.
_INNER_LABEL = re.compile(
    r"(?<=[.!?\"'”’)] )(?=(?:first\s+|last\s+)?(?:published|updated|posted|modified)"
    r"(?:\s+(?:on|at))?\s*:)",
    re.IGNORECASE,
)


def _after_datelines(text: str, published: datetime | None) -> str:
    while (found := LEADING_STAMP.match(text)) and found.end() > 0:
        stamp, rest = found.group(), text[found.end() :]
        if _STAMP_LABEL.match(stamp):
            is_stamp = bool(DATED.search(stamp) or _STAMP_TIME.search(stamp))
        else:
            is_stamp = _dated_as_published(stamp, published)
        if not is_stamp or stamp.rstrip().endswith(("(", "/")) or not _opens_sentence(rest):
            break  # "May 5, 2014 (Reuters) ...", or text goes on ("Oct. 3 at 10 am, the ...")
        text = rest
    return text


def _dated_as_published(stamp: str, published: datetime | None) -> bool:
    found = _OPENS_WITH_DAY_AND_YEAR.match(stamp)
    if found is None or published is None:
        return False
    month = _MONTHS.index((found["month"] or found["month2"])[:3].lower()) + 1
    try:
        day = date(int(found["year"] or found["year2"]), month, int(found["day"] or found["day2"]))
    except ValueError:  # "February 30"
        return False
    return abs((day - published.date()).days) <= 1


def _opens_sentence(rest: str) -> bool:
    if rest.startswith(("'s", "’s")):
        return False
    first = rest.lstrip("\"'“‘")[:1]
    return first.isupper() or first.isdigit()


def public_url(url: str) -> str:
    """Scheme, host and path of a URL: what a public page may show of a feed's address (its
    query, fragment and user info can hold private tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if host else "(unnamed feed)"
