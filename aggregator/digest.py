"""From stories to the day's digest, and the digest's JSON form kept in the store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from aggregator.models import Digest, DigestItem, DigestStory, Story, StoryStatus
from aggregator.text import language_tag, safe_http_url, without_datelines


def rank_key(story: DigestStory) -> tuple:
    # Most outlets first, then the most recently updated; the id keeps ties deterministic.
    return (-len(story.outlets), -story.last_updated.timestamp(), story.id)


def to_digest_story(story: Story) -> DigestStory:
    headline = story.headline
    members = sorted(story.members, key=lambda m: (m.item.published, m.item.id))
    items = tuple(
        DigestItem(
            title=m.item.title,
            link=safe_http_url(m.item.link),
            outlet=m.item.outlet,
            published=m.item.published,
            is_copy=m.is_copy,
            summary=without_datelines(m.item.summary, m.item.published),
            feed_url=m.item.feed_url,
            why=m.why,
            item_id=m.item.id,
            lang=m.item.language,
        )
        for m in members
    )
    tags = sorted({tag for m in story.members for tag in m.item.tags})
    return DigestStory(
        id=story.id,
        headline=headline.title,
        link=safe_http_url(headline.link),
        keywords=story.keywords,
        items=items,
        first_seen=story.first_seen,
        last_updated=story.last_updated,
        status=story.status,
        summary=without_datelines(headline.summary, headline.published),
        tags=tuple(tags),
        why_not=story.why_not,
        why_not_story=story.why_not_story,
        why_not_headline=story.why_not_headline,
        lang=headline.language,
    )


def make_digest(
    stories: Iterable[Story],
    day: date,
    generated_at: datetime,
    older_items: int = 0,
    window_hours: float = 24.0,
) -> Digest:
    ranked = sorted((to_digest_story(s) for s in stories), key=rank_key)
    return Digest(
        day=day,
        generated_at=generated_at,
        stories=tuple(ranked),
        older_items=older_items,
        window_hours=window_hours,
    )


def keep_published(digest: Digest, earlier: Digest | None) -> Digest:
    """``digest`` with the stories an earlier version of the same day's digest published and
    this one has no trace of (none of their reports is in any of its stories): a story whose
    reports left the window between two runs of one day stays in that day's digest, so its
    page and the links an email already sent keep working. A story whose reports went to
    another story (two merged) is not kept: the other story carries them, and ``moved`` says
    which (the one with most of its reports), so its page can send readers there. A story
    keeps the first sighting the earlier version published (its Atom entry's <published>,
    which feed readers take for a new entry when it changes): also when the report that made
    it went to another story since, and when a report dated earlier joined it (the site's
    "first seen" is its earliest report all the same)."""
    if earlier is None or earlier.day != digest.day:
        return digest
    first_seen = {s.id: s.first_seen for s in earlier.stories}
    digest = replace(
        digest,
        stories=tuple(
            replace(s, first_seen=first_seen.get(s.id, s.first_seen)) for s in digest.stories
        ),
    )
    present: dict[object, str] = {}
    for story in digest.stories:
        for item in story.items:
            for key in report_keys(item):
                present.setdefault(key, story.id)
    # A story still here keeps the reports it showed earlier that day that have left the
    # window since (in no story now): no later digest holds them, and the day's pages would
    # lose them (a report that went to another story stays there)
    shown_before = {s.id: s for s in earlier.stories}
    window_start = digest.generated_at - timedelta(hours=digest.window_hours)
    digest = replace(
        digest,
        stories=tuple(
            _with_reports_of(s, shown_before.get(s.id), present, window_start)
            for s in digest.stories
        ),
    )
    ids = {s.id for s in digest.stories}
    kept = []
    moved = {old: new for old, new in earlier.moved.items() if old not in ids}
    for story in earlier.stories:
        if story.id in ids:
            continue
        carriers = Counter(
            present[key]
            for key in (
                next((k for k in report_keys(i) if k in present), None) for i in story.items
            )
            if key is not None
        )
        if carriers:
            moved[story.id] = carriers.most_common(1)[0][0]
        else:
            kept.append(story)
    shown = ids | {s.id for s in kept}
    moved = {old: _moved_to(old, moved, shown) for old in moved}
    moved = {old: new for old, new in moved.items() if new is not None and old not in shown}
    stories = tuple(sorted((*digest.stories, *kept), key=rank_key)) if kept else digest.stories
    return replace(digest, stories=stories, moved=dict(sorted(moved.items())))


def without_reports(digest: Digest, item_ids: Iterable[int]) -> Digest:
    """``digest`` without the reports of these stored items (those of a feed no longer in
    feeds.yaml), and without a story left with none: ``keep_published`` keeps a story the
    day's earlier digest published, and a removed feed's stories would stay until midnight."""
    gone = set(item_ids)
    if not gone:
        return digest
    stories = []
    for story in digest.stories:
        items = tuple(i for i in story.items if i.item_id not in gone)
        if items:
            stories.append(story if len(items) == len(story.items) else replace(story, items=items))
    shown = {s.id for s in stories}
    moved = {old: new for old, new in digest.moved.items() if new in shown}
    return replace(digest, stories=tuple(stories), moved=moved)


def _with_reports_of(
    story: DigestStory,
    before: DigestStory | None,
    present: dict[object, str],
    window_start: datetime,
) -> DigestStory:
    """``story`` with the reports ``before`` (its earlier version) had that no story has now
    and that are older than the window (a report the feed corrected since, its title and link
    new, is in the window under its new form: not twice)."""
    if before is None:
        return story
    left = [
        item
        for item in before.items
        if not any(key in present for key in report_keys(item)) and item.published < window_start
    ]
    if not left:
        return story
    items = sorted(
        (*left, *story.items), key=lambda item: item.published
    )  # stable: ties keep order
    return replace(story, items=tuple(items))


def _moved_to(story_id: str, moved: dict[str, str], shown: set[str]) -> str | None:
    """Where a story that merged into another is now: along ``moved`` (a story it went to may
    have merged since) to a story of the digest, or None."""
    seen = {story_id}
    target = moved[story_id]
    while target not in shown and target in moved and target not in seen:
        seen.add(target)
        target = moved[target]
    return target if target in shown else None


def report_keys(item: DigestItem) -> tuple[object, ...]:
    """What one report is known by in the digests of several runs: its item's id in the store
    (a report whose feed corrected its title and link since is one report by it; digests
    stored before it was recorded have none) and its link, or outlet and title."""
    by_link = item.link or f"{item.outlet}\n{item.title}"
    return (by_link,) if item.item_id is None else (item.item_id, by_link)


def mark_status(digest: Digest, previous: Digest | None) -> Digest:
    """``digest`` with each story's status against ``previous``, the digest of the day before
    (none: every story is new): new (not in it), growing (a report it did not hold) or
    unchanged. A day's digest is rewritten by every run of the day: against the last run, a
    story new this morning was "unchanged" by noon, and so was every story the day's email
    and site showed, whatever that day brought them."""
    before = (
        {s.id: {k for i in s.items for k in report_keys(i)} for s in previous.stories}
        if previous
        else {}
    )

    def status(story: DigestStory) -> StoryStatus:
        known = before.get(story.id)
        if known is None:
            return "new"
        if all(any(k in known for k in report_keys(i)) for i in story.items):
            return "unchanged"
        return "growing"

    return replace(digest, stories=tuple(replace(s, status=status(s)) for s in digest.stories))


def entry_text(story: DigestStory) -> tuple[str, str, tuple[str, ...]]:
    """What a story's feed entry says: its headline, its summary and its outlets, by name
    (their order of first report changes as early reports leave the window: no revision)."""
    return story.headline, story.summary, tuple(sorted(set(story.outlets), key=str.casefold))


def mark_revisions(digest: Digest, earlier: Digest | None, previous: Digest | None) -> Digest:
    """``digest`` with each story's ``revised``: when its entry text (`entry_text`) last
    changed. ``earlier`` is the version of the same day's digest that ``digest`` replaces,
    ``previous`` the digest of the day before. A story whose text is that of its version there
    (the same day's when it has one) keeps that version's time; one whose text differs was
    revised now (``digest.generated_at``); a new story's text is as of its reports. The store
    keeps one digest a day, rewritten by every run: without this the day's last run would be
    the only witness of a change made that day, and the change would move with every run."""
    same_day = {s.id: s for s in earlier.stories} if earlier and earlier.day == digest.day else {}
    day_before = (
        {s.id: s for s in previous.stories} if previous and previous.day < digest.day else {}
    )
    stories = []
    for story in digest.stories:
        text = entry_text(story)
        before = same_day.get(story.id) or day_before.get(story.id)
        if before is None:
            revised: datetime | None = max(story.last_updated, story.first_seen)
        elif entry_text(before) != text:
            revised = digest.generated_at
        elif before.revised is not None:
            revised = before.revised
        elif earlier and story.id in same_day and _differs(day_before.get(story.id), text):
            # a run before revisions were recorded showed this text first today: the first
            # digest showing it is when the site said it changed
            revised = earlier.generated_at
        else:
            revised = None  # unknown: the site goes by its digests
        stories.append(replace(story, revised=revised))
    return replace(digest, stories=tuple(stories))


def _differs(story: DigestStory | None, text: tuple[str, str, tuple[str, ...]]) -> bool:
    return story is not None and entry_text(story) != text


def mark_outlets(digest: Digest, earlier: Digest | None) -> Digest:
    """``digest`` with ``outlets_since``: when each of its outlets was first in the day's
    digest, carried over from ``earlier`` (the version of the same day's digest it replaces),
    else now (``digest.generated_at``). The site's outlet pages go by it: an outlet whose page
    existed keeps its address when a newcomer's name makes the same one."""
    since = dict(earlier.outlets_since) if earlier and earlier.day == digest.day else {}
    for story in digest.stories:
        for outlet in story.outlets:
            since.setdefault(outlet, digest.generated_at)
    return replace(digest, outlets_since=since)


# ------------------------------------------------------------------ JSON form


def digest_to_dict(digest: Digest) -> dict:
    return {
        "day": digest.day.isoformat(),
        "generated_at": digest.generated_at.isoformat(),
        "older_items": digest.older_items,
        "window_hours": digest.window_hours,
        "stories": [story_to_dict(s) for s in digest.stories],
        "outlets_since": {name: t.isoformat() for name, t in digest.outlets_since.items()},
        **({"moved": dict(digest.moved)} if digest.moved else {}),
    }


def story_to_dict(story: DigestStory) -> dict:
    return {
        "id": story.id,
        "headline": story.headline,
        "link": story.link,
        "summary": story.summary,
        "keywords": list(story.keywords),
        "status": story.status,
        "tags": list(story.tags),
        "first_seen": story.first_seen.isoformat(),
        "last_updated": story.last_updated.isoformat(),
        "outlets": list(story.outlets),
        "why_not": story.why_not,
        "why_not_story": story.why_not_story,
        "why_not_headline": story.why_not_headline,
        "revised": story.revised.isoformat() if story.revised else None,
        **({"lang": story.lang} if story.lang else {}),
        "items": [
            {
                "title": i.title,
                "link": i.link,
                "outlet": i.outlet,
                "published": i.published.isoformat(),
                "is_copy": i.is_copy,
                "summary": i.summary,
                "feed_url": i.feed_url,
                "why": i.why,
                **({"item_id": i.item_id} if i.item_id is not None else {}),
                **({"lang": i.lang} if i.lang else {}),
            }
            for i in story.items
        ],
    }


def digest_from_dict(data: dict) -> Digest:
    return Digest(
        day=date.fromisoformat(data["day"]),
        generated_at=datetime.fromisoformat(data["generated_at"]),
        stories=tuple(_story_from_dict(s) for s in data["stories"]),
        older_items=data.get("older_items", 0),
        window_hours=data.get("window_hours", 24.0),
        outlets_since={
            str(name): datetime.fromisoformat(t)
            for name, t in (data.get("outlets_since") or {}).items()
        },
        moved={str(old): str(new) for old, new in (data.get("moved") or {}).items()},
    )


def _story_from_dict(data: dict) -> DigestStory:
    return DigestStory(
        id=data["id"],
        headline=data["headline"],
        link=safe_http_url(data.get("link")),
        keywords=tuple(data.get("keywords", ())),
        items=tuple(
            DigestItem(
                title=i["title"],
                link=safe_http_url(i.get("link")),
                outlet=i["outlet"],
                published=datetime.fromisoformat(i["published"]),
                is_copy=bool(i.get("is_copy")),
                summary=i.get("summary", ""),
                feed_url=i.get("feed_url", ""),
                why=str(i.get("why", "")),
                item_id=i["item_id"] if isinstance(i.get("item_id"), int) else None,
                lang=language_tag(i.get("lang")),
            )
            for i in data["items"]
        ),
        first_seen=datetime.fromisoformat(data["first_seen"]),
        last_updated=datetime.fromisoformat(data["last_updated"]),
        status=data.get("status", "new"),
        summary=data.get("summary", ""),
        tags=tuple(data.get("tags", ())),
        why_not=str(data.get("why_not", "")),
        why_not_story=str(data.get("why_not_story", "")),
        why_not_headline=str(data.get("why_not_headline", "")),
        revised=datetime.fromisoformat(data["revised"]) if data.get("revised") else None,
        lang=language_tag(data.get("lang")),
    )


def digests_from_dicts(rows: Sequence[dict]) -> list[Digest]:
    return [digest_from_dict(r) for r in rows]
