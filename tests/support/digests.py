"""Builders for realistic digest fixtures, including the hostile strings real feeds can carry.

Everything is deterministic: the same call returns equal data, so builds can be compared byte
for byte. The headlines are invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from aggregator.models import Digest, DigestItem, DigestStory

TODAY = date(2026, 11, 28)

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE_BREAKOUT = '" onmouseover=alert(1) x="'
SVG_ONLOAD = "<svg onload=alert(1)>"
JAVASCRIPT_URL = "javascript:alert(1)"
DATA_URL = "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
CRLF_HEADLINE = "Markets rally\r\nBcc: victim@example.org\r\nX-Injected: yes"
LONG_WORD = "Donaudampfschifffahrtsgesellschaftskapitän" * 8
RTL_HEADLINE = "الحكومة تعلن خطة جديدة للطاقة المتجددة في المنطقة"
EMOJI_HEADLINE = "Record crowds 🎉🚀 at the harbour festival 🇳🇴"
HOSTILE_STORY_ID = "../../escape/../etc/passwd"

OUTLETS = (
    "Northern Ledger",
    "The Daily Wire Service",
    "Harbour Times",
    "Metro Morning",
    "Rivertown Gazette",
    "Capital Report",
    "Eastside Courier",
    "Global Dispatch",
    "Coastline News",
    "Valley Observer",
    "Summit Post",
    "Plains Herald",
    "Le Quotidien du Nord",
    "Tagesbericht Süd",
)

try:  # config.py is written separately; fall back to compatible records until it lands
    from aggregator.config import EmailSettings, SiteSettings
except ImportError:  # pragma: no cover - depends on the integration state

    @dataclass(frozen=True)
    class SiteSettings:  # type: ignore[no-redef]
        title: str = "Daily digest"
        base_url: str | None = None
        timezone: str = "UTC"

    @dataclass(frozen=True)
    class EmailSettings:  # type: ignore[no-redef]
        to: tuple[str, ...] = ()
        sender: str = "digest@example.org"
        subject: str = "Daily digest"
        smtp_host: str = "localhost"
        smtp_port: int = 25
        security: str = "none"
        username_env: str | None = None
        password_env: str | None = None
        max_stories: int = 20


def site_settings(**overrides: object) -> SiteSettings:
    values: dict[str, object] = {"title": "Morning Wire", "base_url": None, "timezone": "UTC"}
    values.update(overrides)
    return SiteSettings(**values)  # type: ignore[arg-type]


def email_settings(**overrides: object) -> EmailSettings:
    values: dict[str, object] = {
        "to": ("reader@example.org",),
        "sender": "Morning Wire <digest@example.org>",
        "subject": "Morning Wire",
        "smtp_host": "127.0.0.1",
        "smtp_port": 25,
        "security": "none",
        "username_env": None,
        "password_env": None,
        "max_stories": 20,
    }
    values.update(overrides)
    return EmailSettings(**values)  # type: ignore[arg-type]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def slug_of(outlet: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in outlet.lower()).strip("-")


def item(
    outlet: str,
    title: str,
    published: datetime,
    *,
    link: str | None = "",
    is_copy: bool = False,
    summary: str = "",
) -> DigestItem:
    """An item; `link=""` means "make a plausible article URL"."""
    if link == "":
        link = (
            f"https://{slug_of(outlet)}.example.com/news/{published:%Y/%m/%d}/{slug_of(title)[:40]}"
        )
    return DigestItem(
        title=title,
        link=link,
        outlet=outlet,
        published=published,
        is_copy=is_copy,
        summary=summary,
    )


def story(
    story_id: str,
    headline: str,
    items: tuple[DigestItem, ...],
    *,
    keywords: tuple[str, ...] = (),
    status: str = "new",
    summary: str = "",
    tags: tuple[str, ...] = (),
    link: str | None = "",
) -> DigestStory:
    """A story whose link, first-seen and last-updated times come from its items."""
    return DigestStory(
        id=story_id,
        headline=headline,
        link=items[0].link if link == "" else link,
        keywords=keywords,
        items=items,
        first_seen=min(i.published for i in items),
        last_updated=max(i.published for i in items),
        status=status,  # type: ignore[arg-type]
        summary=summary,
        tags=tags,
    )


def wide_story(
    day: date, story_id: str, headline: str, outlets: int, **kwargs: object
) -> DigestStory:
    """A story covered by many outlets, with a couple of wire copies.

    Which outlets and what times depend on the id, so stories do not all look alike.
    """
    seed = sum(map(ord, story_id))
    first_hour = 5 + seed % 7
    items = tuple(
        item(
            OUTLETS[(seed + n) % len(OUTLETS)],
            headline if n % 4 else f"{headline}: what we know so far",
            at(day, min(23, first_hour + n * 11 // max(outlets, 1)), (seed * 3 + n * 7) % 60),
            is_copy=n in (2, 5),
        )
        for n in range(outlets)
    )
    return story(story_id, headline, items, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Topic:
    headline: str
    keywords: tuple[str, ...]
    tags: tuple[str, ...]
    summary: str


_TOPICS = (
    _Topic(
        "Regional rail strike called off after overnight talks",
        ("rail", "strike", "unions"),
        ("Transport",),
        "Union leaders and the operator agreed a two-year pay deal shortly before dawn; "
        "trains are expected to run normally from Monday.",
    ),
    _Topic(
        "Central bank holds rates, signals cut in spring",
        ("rates", "inflation"),
        ("Business",),
        "The governor said inflation was falling faster than forecast but warned against "
        "reading the decision as a promise.",
    ),
    _Topic(
        "Storm warning issued for the northern coast",
        ("storm", "weather", "coast"),
        ("Weather",),
        "Gusts of up to 110 km/h are expected overnight; ferry crossings have been suspended.",
    ),
    _Topic(
        "City council approves new cycle lanes downtown",
        ("cycling", "council"),
        ("Local",),
        "",
    ),
    _Topic(
        "Hospital waiting lists fall for third month",
        ("health", "hospitals"),
        ("Health",),
        "Figures published on Friday show the longest waits shrinking in most regions.",
    ),
    _Topic(
        "Tech firm recalls batteries over overheating risk",
        ("recall", "batteries"),
        ("Business", "Tech"),
        "",
    ),
    _Topic(
        "University researchers map deep-sea volcano",
        ("science", "ocean"),
        ("Science",),
        "",
    ),
    _Topic(
        "Local team reaches cup final for first time",
        ("football", "cup"),
        ("Sport",),
        "",
    ),
)


def day_digest(day: date, *, stories: int = 8, hostile: bool = False) -> Digest:
    """A plausible day: stories ranked by outlet count, with tags, copies and statuses."""
    built = [
        wide_story(
            day,
            f"{day:%Y%m%d}-{n:02d}" if n else "rail-strike-2026",  # one story spans several days
            topic.headline,
            outlets=max(1, 14 - n * 2),
            keywords=topic.keywords,
            tags=topic.tags,
            summary=topic.summary,
            status=("new", "growing", "unchanged")[n % 3],
        )
        for n, topic in enumerate(_TOPICS[:stories])
    ]
    if hostile:
        built[3:3] = hostile_stories(day)
    return Digest(
        day=day,
        generated_at=at(day, 18, 30),
        stories=tuple(built),
    )


def hostile_stories(day: date) -> list[DigestStory]:
    """Stories whose every field tries something: markup, bad links, odd text, odd ids."""
    evil_items = (
        item("Evil <b>Outlet</b>" + ATTRIBUTE_BREAKOUT, SCRIPT, at(day, 9), link=JAVASCRIPT_URL),
        item(SVG_ONLOAD, ATTRIBUTE_BREAKOUT, at(day, 9, 5), link=DATA_URL),
        item("Harbour Times", CRLF_HEADLINE, at(day, 9, 10), link=" https://x.example.com/ spaced"),
        item("Metro Morning", "Vbscript", at(day, 9, 15), link="vbscript:msgbox(1)"),
        item("Capital Report", "Protocol-relative", at(day, 9, 20), link="//evil.example.com/x"),
        item("Northern Ledger", "No link at all", at(day, 9, 25), link=None),
        item("../../outlet", "Traversal outlet", at(day, 9, 30)),
        item("", "Nameless outlet", at(day, 9, 35)),
    )
    return [
        story(
            HOSTILE_STORY_ID,
            SCRIPT + SVG_ONLOAD + ATTRIBUTE_BREAKOUT,
            evil_items,
            keywords=(SCRIPT, ATTRIBUTE_BREAKOUT),
            summary="Summary with " + SCRIPT + " and \x00\x07 control characters\u0085, "
            "a reversed \u202eline\u202c and an \u2067isolate\u2069.",
            tags=(SVG_ONLOAD,),
            link=JAVASCRIPT_URL,
        ),
        story(
            "crlf-" + day.isoformat(),
            CRLF_HEADLINE,
            (
                item("Harbour Times", CRLF_HEADLINE, at(day, 10)),
                item("Rivertown Gazette", LONG_WORD, at(day, 10, 30)),
            ),
            keywords=(LONG_WORD[:60],),
            status="growing",
        ),
        story(
            "rtl-" + day.isoformat(),
            RTL_HEADLINE,
            (
                item("الجزيرة نت", RTL_HEADLINE, at(day, 11)),
                item("Coastline News", "Regional energy plan announced", at(day, 11, 20)),
            ),
            keywords=("طاقة", "energy"),
            tags=("World",),
        ),
        story(
            "emoji-" + day.isoformat(),
            EMOJI_HEADLINE,
            (item("Summit Post", EMOJI_HEADLINE, at(day, 12)),),
            keywords=("festival 🎉",),
            status="unchanged",
        ),
    ]


LONG_URL_HEADLINE = (
    "Breaking: https://www.example-news-outlet.com/2024/"
    + "very_long_unbroken_slug_" * 3
    + "and_more_of_it_without_a_single_space_anywhere"
)[:120]
LONG_OUTLET = "TheVeryLongOutletNameDailyTelegraphAndEveningStandardAndGazette"
LONG_KEYWORD = "example-news-outlet.com/2024/unbroken_xy"  # 40: as long as a keyword is shown


def long_word_story(day: date) -> DigestStory:
    """A 120-character URL-like headline, an outlet name with no space, a URL-like keyword and
    an unbroken summary: one such word must not widen a page or an email."""
    items = (
        item(LONG_OUTLET, LONG_URL_HEADLINE, at(day, 8)),
        item("Harbour Times", "A shorter report", at(day, 8, 20)),
    )
    return story(
        "long-word-" + day.isoformat(),
        LONG_URL_HEADLINE,
        items,
        keywords=("slug", LONG_KEYWORD),
        summary="Unbroken: " + "Supercalifragilisticexpialidocious" * 3,
    )


def realistic_digests(days: int = 3, *, today: date = TODAY, hostile: bool = True) -> list[Digest]:
    """`days` daily digests, newest first; today's carries the hostile stories."""
    return [
        day_digest(today - timedelta(days=n), stories=8 - n, hostile=hostile and n == 0)
        for n in range(days)
    ]


def large_digest(stories: int, *, day: date = TODAY, outlets_per_story: int = 6) -> Digest:
    """A big single day for timing builds."""
    built = tuple(
        wide_story(
            day,
            f"bulk-{n:05d}",
            f"Story number {n} about {_TOPICS[n % 8].headline.lower()}",
            outlets_per_story,
        )
        for n in range(stories)
    )
    return Digest(day=day, generated_at=at(day, 18), stories=built)
