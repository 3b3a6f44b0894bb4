"""Storage: a SQLite file (the default) or a PostgreSQL database, one versioned schema.

Each fetched feed, each clustering and each digest is written in one transaction, so a
process killed at any point leaves the database as it was before that step or after it.
Every statement is written once for both backends (aggregator.db translates the little
that differs); the migrations below run the same on both.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aggregator.db import (
    MIGRATION_LOCK,
    Database,
    DatabaseUnavailable,
    Tx,
    connect,
    is_postgres_url,
)
from aggregator.intake import (
    KEY_BYTES,
    LINK_BYTES,
    PAST_FLOOR,
    FeedUpdate,
    NewItem,
    bounded_key_of,
    host_of,
    link_identity,
    site_of,
)
from aggregator.models import FeedState, Item, Story, StoryItemRecord
from aggregator.text import outlet_name

if TYPE_CHECKING:
    from aggregator.config import FeedConfig

FULL_TEXT_DROPPED = "dropped"  # the status of an article text forgotten (keep_full_text_days)
FULL_TEXT_READ_CHARS = 4_000  # of an article's text, what grouping and excerpts may use
_FULL_TEXT_READ = f"substr(coalesce(full_text, ''), 1, {FULL_TEXT_READ_CHARS})"

# How many times a stored item takes the feed's new title or summary; after that, its text stays
# as it is. Real corrections come a few to an item (a fixed headline, a death toll updated every
# few hours), while a feed that rewrites an entry on every fetch (a counter, "5 minutes ago")
# would have it embedded again and the window regrouped at every poll. Polled at most hourly (the
# default floor), 24 changes last about a day, the default window an item spends in the digest,
# so such an item is left alone about when it leaves the window.
EDIT_LIMIT = 24

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY,
    fetch_url TEXT NOT NULL,
    title TEXT,
    etag TEXT,
    last_modified TEXT,
    last_status TEXT,
    http_status INTEGER,
    last_error TEXT,
    last_checked TEXT,
    last_success TEXT,
    consecutive_errors INTEGER NOT NULL DEFAULT 0,
    next_due TEXT,
    gone INTEGER NOT NULL DEFAULT 0,
    discovered_url TEXT
);
CREATE TABLE IF NOT EXISTS items (
    id {serial},
    feed_url TEXT NOT NULL,
    key TEXT NOT NULL,
    canonical_link TEXT,
    link TEXT,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    outlet TEXT NOT NULL,
    published TEXT,
    first_seen TEXT NOT NULL,
    sort_time TEXT NOT NULL,
    UNIQUE (feed_url, key)
);
CREATE INDEX IF NOT EXISTS items_sort_time ON items (sort_time);
CREATE INDEX IF NOT EXISTS items_canonical_link ON items (canonical_link);
CREATE TABLE IF NOT EXISTS embeddings (
    item_id {ref} NOT NULL,
    model_key TEXT NOT NULL,
    vector {blob} NOT NULL,
    PRIMARY KEY (item_id, model_key)
) {without_rowid};
CREATE TABLE IF NOT EXISTS story_items (
    item_id {ref_pk},
    story_id TEXT NOT NULL,
    copy_of {ref}
);
CREATE INDEX IF NOT EXISTS story_items_story ON story_items (story_id);
CREATE TABLE IF NOT EXISTS stories (
    id TEXT PRIMARY KEY,
    headline_item_id {ref} NOT NULL,
    keywords TEXT NOT NULL,
    status TEXT NOT NULL,
    size INTEGER NOT NULL,
    outlets INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS digests (
    day TEXT PRIMARY KEY,
    generated_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS emails (
    day TEXT PRIMARY KEY,
    sent_at TEXT NOT NULL,
    destination TEXT NOT NULL
);
"""

# Version 2 (issue 13): why a feed is not due, the server's Retry-After kept apart from our own
# backoff, the feed's settings when last seen (a change makes it due now), and article text.
_SCHEMA_2 = """
ALTER TABLE feeds ADD COLUMN due_reason TEXT;
ALTER TABLE feeds ADD COLUMN retry_after TEXT;
ALTER TABLE feeds ADD COLUMN config_hash TEXT;
ALTER TABLE items ADD COLUMN full_text TEXT;
ALTER TABLE items ADD COLUMN full_text_status TEXT
"""

# Version 3: each story member keeps why it belongs (the grouping's evidence, in words).
_STORY_ITEM_WHY = "ALTER TABLE story_items ADD COLUMN why TEXT NOT NULL DEFAULT ''"

# Version 4 (issue 14): leases for `aggregator worker` (any number of processes on any
# machines): a feed, an item to embed, a host (politeness) or a role ("publish") is held
# until lease_until by leased_by.
_WORKERS = """
ALTER TABLE feeds ADD COLUMN host TEXT;
ALTER TABLE feeds ADD COLUMN lease_until TEXT;
ALTER TABLE feeds ADD COLUMN leased_by TEXT;
ALTER TABLE feeds ADD COLUMN retired INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS feeds_host_due ON feeds (host, next_due);
ALTER TABLE items ADD COLUMN embed_lease_until TEXT;
CREATE TABLE IF NOT EXISTS hosts (
    host TEXT PRIMARY KEY,
    lease_until TEXT,
    leased_by TEXT
);
CREATE TABLE IF NOT EXISTS leaders (
    role TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    lease_until TEXT NOT NULL
)
"""

# Version 5: the feed's RSS <ttl> as of its last 200, so that a 304 is scheduled with it too.
_FEED_TTL = "ALTER TABLE feeds ADD COLUMN ttl_minutes INTEGER"


# The ids of the stories of the items since a time (its parameter), as a derived table.
_STORIES_SINCE = (
    "(SELECT DISTINCT s.story_id FROM story_items s "
    "JOIN items w ON w.id = s.item_id WHERE w.sort_time >= ?)"
)

# Version 12: a feed's items by time (`feeds status`, feed value: the last days of each feed).
_ITEMS_BY_FEED_AND_TIME = (
    "CREATE INDEX IF NOT EXISTS items_feed_sort_time ON items (feed_url, sort_time)"
)


def _add_column(db: Tx, table: str, column: str, kind: str) -> None:
    """ALTER TABLE ADD COLUMN, only where the column is missing: neither backend has a portable
    ADD COLUMN IF NOT EXISTS (and a migration may run again over a database that has it)."""
    db.execute("SAVEPOINT add_column")
    try:
        db.execute(f"SELECT {column} FROM {table} WHERE 1 = 0")
    except Exception:  # each backend's own "no such column" error
        db.execute("ROLLBACK TO SAVEPOINT add_column")
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    db.execute("RELEASE SAVEPOINT add_column")


# Version 11: the language an item's feed declared (<language>, xml:lang), for the pages' lang.
def _item_language(db: Tx) -> None:
    _add_column(db, "items", "language", "TEXT")


# Version 6: how many times the feed changed an item's title or summary after it was stored
# (each change is stored, up to EDIT_LIMIT: see Store._record_edits).
_ITEM_EDITS = "ALTER TABLE items ADD COLUMN edits INTEGER NOT NULL DEFAULT 0"

# Version 7, SQLite only: vectors in a rowid table. WITHOUT ROWID suits small rows; a 1.5 KB
# vector is too big for a leaf of its primary key's b-tree and took an overflow page of its
# own: 4.7 KB a vector on disk against 2.1 KB now, and writes and reads take half the time.
# PostgreSQL keeps such rows in its heap already.
_VECTORS_IN_ROWS = 7
_EMBEDDINGS_IN_ROWS = """
CREATE TABLE embeddings_in_rows (
    item_id INTEGER NOT NULL,
    model_key TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (item_id, model_key)
);
INSERT INTO embeddings_in_rows (item_id, model_key, vector)
    SELECT item_id, model_key, vector FROM embeddings;
DROP TABLE embeddings;
ALTER TABLE embeddings_in_rows RENAME TO embeddings
"""

# Version 8: outlet names stored before intake cleaned them (see text.outlet_name: "Reu\u200bters",
# a name with a control character) are cleaned once, in items and in the digests kept, so that
# the store reads every name as it is stored. Each name becomes what reading it gave before.
_NAMES_AT_ONCE = 200  # distinct names one UPDATE of items changes (two parameters a name, +1)
_DIGESTS_AT_ONCE = 20  # digests read at a time (one is a day's stories with their summaries)


def _clean_outlet_names(db: Tx) -> None:
    """Items: one scan finds the distinct names (about one a feed), one UPDATE a chunk of the
    names that change renames their rows. Digests: each day's payload, parsed, is written
    again only if one of its names changes. Done twice, it changes nothing."""
    stored = [row[0] for row in db.execute("SELECT DISTINCT outlet FROM items")]
    renames = [(name, outlet_name(name)) for name in stored if outlet_name(name) != name]
    for chunk in _chunks(renames, _NAMES_AT_ONCE):
        cases = " ".join("WHEN ? THEN ?" for _ in chunk)
        marks = ", ".join("?" * len(chunk))
        db.execute(
            f"UPDATE items SET outlet = CASE outlet {cases} END WHERE outlet IN ({marks})",
            (*(value for pair in chunk for value in pair), *(old for old, _new in chunk)),
        )
    last = None
    while True:
        after = "WHERE day > ? " if last is not None else ""
        rows = db.execute(
            f"SELECT day, payload FROM digests {after}ORDER BY day LIMIT {_DIGESTS_AT_ONCE}",
            () if last is None else (last,),
        ).fetchall()
        if not rows:
            return
        for day, payload in rows:
            cleaned = _digest_names_cleaned(payload)
            if cleaned is not None:
                db.execute("UPDATE digests SET payload = ? WHERE day = ?", (cleaned, day))
        last = rows[-1][0]


def _digest_names_cleaned(payload: str) -> str | None:
    """A digest's JSON (digest.digest_to_dict) with its outlet names cleaned: each report's
    outlet, each story's outlets (two that become one name are one), the keys of
    outlets_since (two that become one keep the earlier time); None if none changes."""
    data = json.loads(payload)
    changed = False
    for story in data.get("stories") or ():
        for item in story.get("items") or ():
            name = item.get("outlet")
            if isinstance(name, str) and outlet_name(name) != name:
                item["outlet"], changed = outlet_name(name), True
        names = story.get("outlets")
        if isinstance(names, list) and any(outlet_name(n) != n for n in names):
            story["outlets"], changed = list(dict.fromkeys(map(outlet_name, names))), True
    since = data.get("outlets_since")
    if isinstance(since, dict) and any(outlet_name(n) != n for n in since):
        merged: dict[str, str] = {}
        for name, at in since.items():
            kept = merged.setdefault(outlet_name(name), at)
            if _earlier(at, kept):
                merged[outlet_name(name)] = at
        data["outlets_since"], changed = merged, True
    return json.dumps(data, sort_keys=True, ensure_ascii=False) if changed else None


def _earlier(at: object, than: object) -> bool:
    """Whether ISO time `at` is before `than`; False where either is no time it can compare (a
    payload edited by hand must not stop the store opening)."""
    try:
        return datetime.fromisoformat(at) < datetime.fromisoformat(than)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


# Version 9: dates older than the web (intake.PAST_FLOOR: a placeholder such as year 1 or 999),
# stored before intake left them out, some with a year of fewer than four digits that sorted
# after every real date and kept its item in every window: each such item is dated when first
# seen, as intake dates it now.
def _undate_placeholders(db: Tx) -> None:
    db.execute(
        "UPDATE items SET published = NULL, sort_time = first_seen WHERE published IS NOT NULL "
        "AND (substr(published, 5, 1) <> '-' OR published < ?)",
        (_ts(PAST_FLOOR),),
    )


# Version 10: keys and canonical links stored before intake bounded them (intake.KEY_BYTES,
# LINK_BYTES) are kept as intake keeps them now, so that PostgreSQL's indexes can hold them
# (`store copy` of such a SQLite file stopped there) and the next poll finds the item stored.
def _bound_keys_and_links(db: Tx) -> None:
    # a text over N bytes has over N / 4 characters (UTF-8 takes at most 4 bytes a character)
    rows = db.execute(
        "SELECT id, key, canonical_link FROM items "
        "WHERE length(key) > ? OR length(canonical_link) > ?",
        (KEY_BYTES // 4, LINK_BYTES // 4),
    ).fetchall()
    for item_id, key, link in rows:
        kind, _, value = key.partition(":")
        bounded_key = bounded_key_of(kind, value) if kind in ("guid", "link") else key
        too_long = link is not None and len(link.encode()) > LINK_BYTES
        bounded_link = link_identity(link) if too_long else link
        if (bounded_key, bounded_link) != (key, link):
            db.execute(
                "UPDATE items SET key = ?, canonical_link = ? WHERE id = ?",
                (bounded_key, bounded_link, item_id),
            )


# Version 13: the items that still hold article text, by time (keep_full_text_days drops the
# old ones at each `cluster`, without reading the items that lost theirs).
_ITEMS_WITH_FULL_TEXT_BY_TIME = (
    "CREATE INDEX IF NOT EXISTS items_full_text_time ON items (sort_time) "
    "WHERE full_text IS NOT NULL"
)


# Version 14: sites whose article pages answered 429 or 503, and until when they are left
# alone: a cron's next run asked them again at once, whatever their Retry-After said.
# And the freshness a feed's last response gave (max-age, Expires): a 304 without its own
# Cache-Control is fresh as long, not only our hourly floor.
def _site_pauses_and_freshness(db: Tx) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS site_pauses (site TEXT PRIMARY KEY, not_before TEXT NOT NULL)"
    )
    _add_column(db, "feeds", "cache_seconds", "INTEGER")


# Numbered migrations, applied in order by open() to both backends (those in _SQLITE_ONLY to
# SQLite alone), each in the transaction that sets the new schema version. A new one appends
# (next number, sql), where {tokens} stand for the types that differ (see aggregator.db), or
# (next number, a function of the transaction) for a change SQL alone cannot write.
_MIGRATIONS: list[tuple[int, str | Callable[[Tx], None]]] = [
    (1, _SCHEMA),
    (2, _SCHEMA_2),
    (3, _STORY_ITEM_WHY),
    (4, _WORKERS),
    (5, _FEED_TTL),
    (6, _ITEM_EDITS),
    (_VECTORS_IN_ROWS, _EMBEDDINGS_IN_ROWS),
    (8, _clean_outlet_names),
    (9, _undate_placeholders),
    (10, _bound_keys_and_links),
    (11, _item_language),
    (12, _ITEMS_BY_FEED_AND_TIME),
    (13, _ITEMS_WITH_FULL_TEXT_BY_TIME),
    (14, _site_pauses_and_freshness),
]
_SQLITE_ONLY = frozenset({_VECTORS_IN_ROWS})
SCHEMA_VERSION = max(version for version, _sql in _MIGRATIONS)


def run_migration(database: Database, db: Tx, step: str | Callable[[Tx], None]) -> None:
    """One of _MIGRATIONS in the transaction `db`: its statements, or its function."""
    if callable(step):
        step(db)
        return
    for statement in filter(str.strip, database.schema(step).split(";")):
        db.execute(statement)


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    """The database could not be opened (see ``db.DatabaseUnavailable``)."""

    def __init__(self, message: str, unreachable: bool = False, sqlstate: str | None = None):
        super().__init__(message)
        self.unreachable = unreachable
        self.sqlstate = sqlstate


class LockedError(StoreError):
    """Another aggregator run holds the database."""


class LockLost(StoreError):
    """The run lock went away while a command held it (its connection dropped)."""


class CopyRefused(StoreError):
    """`store copy` would mix the source's rows with other rows of the target."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What storing one poll changed among its feed's items."""

    new: int = 0  # items stored for the first time
    updated: int = 0  # stored items that took the feed's new title or summary


@dataclass(frozen=True, slots=True)
class _Edit:
    """A stored item's title or summary as the feed now gives them (see Store._record_edits)."""

    id: int
    title: str
    summary: str
    link: str | None
    relinked: bool  # the link leads to another page: the stored article text is not its


@dataclass(frozen=True, slots=True)
class ClaimedFeed:
    host: str
    state: FeedState  # without allow_private: the worker adds it from its feeds.yaml


@dataclass(frozen=True, slots=True)
class ClaimedItems:
    """Items an embed worker holds (see Store.claim_unembedded), with their article text."""

    items: list[Item]
    lease: str | None  # the claim's stamp: save_claimed_vectors stores only while it holds


@dataclass(frozen=True, slots=True)
class ClaimedPages:
    """Items whose article page a poll worker fetches, and the feeds it holds meanwhile."""

    feeds: list[str]  # give them back with release_feeds once the texts are stored
    items: list[tuple[int, str | None, str, str]]  # (id, link, summary, feed_url)


@dataclass(frozen=True, slots=True)
class FeedHealth:
    url: str
    name: str | None
    fetch_url: str
    last_status: str | None
    last_error: str | None
    last_checked: datetime | None
    last_success: datetime | None
    consecutive_errors: int
    next_due: datetime | None
    gone: bool
    items_7d: int
    multi_outlet_share: float | None
    due_reason: str | None = None
    retry_after: datetime | None = None


def _ts(value: datetime | None) -> str | None:
    # Fixed-width UTC text sorts correctly in SQL: the year too ("%Y" writes 999, not 0999)
    if value is None:
        return None
    value = value.astimezone(UTC)
    return f"{value.year:04d}{value:-%m-%dT%H:%M:%S.%fZ}"


def _dt(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class HeldLock:
    """What run_lock gives: a command of several steps (`run`) calls ensure_held before each,
    since a lock can be lost while held (PostgreSQL frees it with its dropped connection), and
    another run may hold it then."""

    label: str
    held: Callable[[], bool] = lambda: True

    def ensure_held(self) -> None:
        if not self.held():
            raise LockLost(
                f"lost the run lock on {self.label} (its database connection dropped) and "
                "stopped, as another run may be using the database now; run it again"
            )


@contextlib.contextmanager
def run_lock(database: Path | str, wait_seconds: float = 0.0) -> Iterator[HeldLock]:
    """One aggregator run per database at a time (cron overlap): wait, then give up clearly."""
    if is_postgres_url(database):
        with _postgres_run_lock(str(database), wait_seconds) as held:
            yield held
        return
    database = Path(database)
    lock_path = database.with_name(database.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                # POSIX record locks, not flock: a forked parser worker does not inherit them,
                # so a run killed with -9 frees the lock at once even if its workers linger.
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"another aggregator run is using {database} (lock {lock_path}); "
                        "try again later or pass --wait SECONDS"
                    ) from None
                time.sleep(0.2)
        try:
            yield HeldLock(str(database))  # a lock on an open file: held until released
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN)


RUN_LOCK_KEY = 7_361_205_015  # pg_advisory_lock key of `aggregator run` and friends
# Advisory locks are the database's: a store in another schema of it (`search_path`) has a
# key of its own, so that independent stores do not lock each other out.
_RUN_LOCK = (
    "SELECT pg_try_advisory_lock(CASE coalesce(current_schema(), 'public') WHEN 'public' "
    "THEN %s ELSE hashtextextended('aggregator run ' || current_schema(), 0) END)"
)


@contextlib.contextmanager
def _postgres_run_lock(url: str, wait_seconds: float) -> Iterator[HeldLock]:
    """The same promise on PostgreSQL: a session advisory lock on a connection of its own,
    freed by the server when the process dies, however it dies."""
    import psycopg

    from aggregator.db import redact, unreachable

    try:
        connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL {redact(url)}: {reason}", unreachable(exc), exc.sqlstate
        ) from None
    with connection:
        deadline = time.monotonic() + wait_seconds
        while not connection.execute(_RUN_LOCK, (RUN_LOCK_KEY,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"another aggregator run is using {redact(url)}; "
                    "try again later or pass --wait SECONDS"
                )
            time.sleep(0.2)

        def held() -> bool:  # a session lock lives as long as its session
            try:
                connection.execute("SELECT 1")
            except psycopg.Error:
                return False
            return True

        yield HeldLock(redact(url), held)  # the lock ends with the connection


class Store:
    def __init__(self, database: Database) -> None:
        self.db = database

    # ------------------------------------------------------------ lifecycle

    @classmethod
    @contextlib.contextmanager
    def open(cls, target: Path | str) -> Iterator[Store]:
        """A SQLite file path, or a postgresql:// URL."""
        try:
            database = connect(target)
        except DatabaseUnavailable as exc:
            raise StoreUnavailable(str(exc), exc.unreachable, exc.sqlstate) from None
        try:
            store = cls(database)
            store._migrate()
            yield store
        finally:
            database.close()

    @property
    def label(self) -> str:
        return self.db.label

    def transaction(self) -> contextlib.AbstractContextManager[Tx]:
        return self.db.transaction()

    def _migrate(self) -> None:
        if self.db.kind == "postgresql" and self._stored_version() == SCHEMA_VERSION:
            # Up to date: no lock and no DDL, which PostgreSQL checks the schema's CREATE
            # right for even when the table exists (a role that only reads and writes data).
            return
        with self.transaction() as db:
            if self.db.kind == "postgresql":  # workers starting together: one migrates
                db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.label} has schema version {current}, newer than this aggregator "
                    f"({SCHEMA_VERSION}): upgrade aggregator"
                )
            for version, step in _MIGRATIONS:
                if version > current and (self.db.kind == "sqlite" or version not in _SQLITE_ONLY):
                    run_migration(self.db, db, step)
            if current != SCHEMA_VERSION:
                _put_meta(db, "schema_version", str(SCHEMA_VERSION))
        if self.db.kind == "sqlite" and 0 < current < _VECTORS_IN_ROWS:
            self._give_back_space()

    def _stored_version(self) -> int | None:
        """The schema version as stored (PostgreSQL), read without a lock; None without a
        meta table."""
        if not self.db.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]:
            return None
        version = self.meta("schema_version")
        return int(version) if version is not None else None

    def _give_back_space(self) -> None:
        """VACUUM once after moving the vectors (schema 7): the old table's pages, twice the
        new one's, would stay in the file until new vectors filled them. Another process
        reading the file now makes it fail; then the pages are only reused."""
        connection = self.db.connection  # type: ignore[attr-defined]
        with contextlib.suppress(sqlite3.OperationalError):
            connection.execute("VACUUM")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file shrinks now

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            _put_meta(db, key, value)

    def integrity_ok(self) -> bool:
        return self.db.integrity_ok()

    def identity(self) -> str:
        """This database's own random id (made on first use; `store copy` never copies it)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (STORE_ID, uuid.uuid4().hex),
            )
            return db.execute("SELECT value FROM meta WHERE key=?", (STORE_ID,)).fetchone()[0]

    # ------------------------------------------------------------ feeds

    def feed_states(self, feeds: Iterable) -> list[FeedState]:
        """FeedState for each configured feed (FeedConfig-like: url, allow_private and
        optionally min_interval_minutes)."""
        feeds = list(feeds)
        stored: dict[str, tuple] = {}
        stored.update(  # one query, not one a feed
            (r[0], r[1:])
            for r in _select_in(
                self.db,
                "SELECT url, fetch_url, etag, last_modified, next_due, consecutive_errors, "
                "gone, ttl_minutes, retry_after, cache_seconds FROM feeds WHERE url IN ({marks})",
                sorted({f.url for f in feeds}),
            )
        )
        states = []
        for feed in feeds:
            minutes = getattr(feed, "min_interval_minutes", None)
            own_floor = timedelta(minutes=minutes) if minutes else None
            row = stored.get(feed.url)
            if row is None:
                states.append(
                    FeedState(
                        url=feed.url,
                        fetch_url=feed.url,
                        allow_private=feed.allow_private,
                        min_interval=own_floor,
                    )
                )
                continue
            states.append(
                FeedState(
                    url=feed.url,
                    fetch_url=row[0],
                    etag=row[1],
                    last_modified=row[2],
                    next_due=_dt(row[3]),
                    consecutive_errors=row[4],
                    gone=bool(row[5]),
                    ttl_minutes=row[6],
                    allow_private=feed.allow_private,
                    min_interval=own_floor,
                    retry_after=_dt(row[7]),
                    cache_seconds=row[8],
                )
            )
        return states

    def site_pauses(self, now: datetime) -> dict[str, datetime]:
        """The sites (scheme://host) whose article pages wait, and until when (see
        articles.fetch_articles)."""
        rows = self.db.execute(
            "SELECT site, not_before FROM site_pauses WHERE not_before > ?", (_ts(now),)
        )
        return {site: _dt(until) for site, until in rows}

    def pause_sites(self, pauses: Mapping[str, datetime], now: datetime) -> None:
        """Keep each site's pause (the later of two for one site); those over are dropped."""
        with self.transaction() as db:
            db.execute("DELETE FROM site_pauses WHERE not_before <= ?", (_ts(now),))
            db.executemany(
                "INSERT INTO site_pauses (site, not_before) VALUES (?, ?) "
                "ON CONFLICT (site) DO UPDATE SET not_before = excluded.not_before "
                "WHERE site_pauses.not_before < excluded.not_before",
                [(site, _ts(until)) for site, until in sorted(pauses.items()) if until > now],
            )

    def record_updates(self, updates: Sequence[FeedUpdate]) -> list[Recorded]:
        """Store polls (see aggregator.intake) in one transaction: all of them or, if the
        process dies first, none (one commit for several feeds is much cheaper than one
        each). Returns what changed among the items, per update."""
        if not updates:
            return []
        with self.transaction() as db:
            stored = self._lock_new_links(db, updates)
            return self._record_all(db, updates, stored)  # type: ignore[return-value]

    def _record_all(
        self, db: Tx, updates: Sequence[FeedUpdate | None], stored: dict[str, dict[str, tuple]]
    ) -> list[Recorded | None]:
        """Each update's feed row and new items, then the stored items the feeds changed, all
        of them together (by id, the order every writer of items takes them in); None: an
        update left out. `stored`: what _lock_new_links read of each feed's items (a feed
        twice in the batch reads them again the second time: the first stored more)."""
        found = [
            self._record(db, u, stored.pop(u.url, None)) if u is not None else None for u in updates
        ]
        applied = self._record_edits(db, [e for f in found if f is not None for e in f[1]])
        return [
            None
            if f is None
            else Recorded(new=f[0], updated=sum(1 for e in f[1] if e.id in applied))
            for f in found
        ]

    def _lock_new_links(self, db: Tx, updates: Sequence[FeedUpdate]) -> dict[str, dict[str, tuple]]:
        """Before reading which links another feed already stored (_insert_items): two
        workers recording the same article through two feeds at once would each miss the
        other's uncommitted row and both store it; holding its canonical link makes the second
        wait for the first to commit, then see its row. Only the links of entries new to
        their feed are held (a re-poll of stored entries holds none: a correction that moves
        an item's link keeps its canonical link, see _record_edits, so no other feed's item
        is looked up for it), all taken first, in one order (db.lock_keys). Returns the
        feed's stored items by key (_stored_texts), read first: the feed is leased to this
        worker (or `run` holds the database), and items are never deleted, so those stay
        stored; a key another writer stores meanwhile is only held for nothing."""
        keys: dict[str, set[str]] = {}
        for u in updates:
            keys.setdefault(u.url, set()).update(i.key for i in u.items)
        stored = {
            url: self._stored_texts(db, url, sorted(wanted))
            for url, wanted in keys.items()
            if wanted
        }
        self.db.lock_keys(
            db,
            (
                i.canonical_link
                for u in updates
                for i in u.items
                if i.canonical_link and i.key not in stored[u.url]
            ),
        )
        return stored

    def _record(
        self, db: Tx, update: FeedUpdate, stored: dict[str, tuple] | None
    ) -> tuple[int, list[_Edit]]:
        self._upsert_feed(db, update)
        return self._insert_items(db, update, stored) if update.items else (0, [])

    def _upsert_feed(self, db: Tx, u: FeedUpdate) -> None:
        db.execute(
            "INSERT INTO feeds (url, fetch_url, host) VALUES (?, ?, ?) ON CONFLICT (url) DO NOTHING",
            (u.url, u.fetch_url or u.url, u.host),
        )
        # A success sets the validators as the poller gives them (a 200's own; after a 304,
        # those it carried and the stored others: RFC 9111 4.3.4, see poller._not_modified);
        # an error keeps them, and the time of the last success.
        db.execute(
            """UPDATE feeds SET
                 fetch_url = coalesce(?, fetch_url),
                 title = coalesce(?, title),
                 etag = CASE WHEN ? THEN ? ELSE etag END,
                 last_modified = CASE WHEN ? THEN ? ELSE last_modified END,
                 last_status = ?, http_status = ?, last_error = ?, last_checked = ?,
                 last_success = CASE WHEN ? THEN ? ELSE last_success END,
                 consecutive_errors = ?, next_due = ?, gone = ?, discovered_url = ?,
                 due_reason = ?, retry_after = ?,
                 ttl_minutes = CASE WHEN ? THEN ? ELSE ttl_minutes END,
                 cache_seconds = CASE WHEN ? THEN ? ELSE cache_seconds END,
                 host = ?, lease_until = NULL, leased_by = NULL
               WHERE url = ?""",
            (
                u.fetch_url,
                u.title,
                u.succeeded,
                u.etag,
                u.succeeded,
                u.last_modified,
                u.status,
                u.http_status,
                u.error,
                _ts(u.checked_at),
                u.succeeded,
                _ts(u.checked_at),
                u.consecutive_errors,
                _ts(u.next_due),
                int(u.status == "gone"),
                u.discovered_url,
                u.due_reason,
                _ts(u.retry_after),
                u.status == "ok",  # a 304 or an error keeps the <ttl> of the last 200
                u.ttl_minutes,
                # a 200 sets it (none: forgotten); a 304 only with its own; an error keeps it
                u.status == "ok" or (u.status == "not_modified" and u.cache_seconds is not None),
                u.cache_seconds,
                u.host,
                u.url,
            ),
        )
        # Workers find feeds through their host's row: a feed moved to a new host (a
        # permanent redirect) needs that row now, not at the next worker start.
        _ensure_host(db, u.host)

    def _insert_items(
        self, db: Tx, u: FeedUpdate, known: dict[str, tuple] | None
    ) -> tuple[int, list[_Edit]]:
        """Store the feed's new entries; returns how many, and the stored items whose title
        or summary the feed changed since (stored by _record_edits). `known`: the feed's
        stored items as _stored_texts gives them (None: read them now)."""
        first: dict[str, NewItem] = {}  # a key twice in one document: its first entry counts
        for i in u.items:
            first.setdefault(i.key, i)
        if known is None:
            known = self._stored_texts(db, u.url, list(first))
        stored = {key: known[key] for key in first if key in known}
        edits = [
            _edit(row, first[key])
            for key, row in stored.items()
            if (first[key].title, first[key].summary) != (row[1], row[2])
        ]
        fresh = [i for i in u.items if i.key not in stored]
        rekeyed = self._rekeyed(db, u.url, fresh, set(first))
        edits += [
            _edit(row, item)
            for item, row in rekeyed
            if (item.title, item.summary) != (row[1], row[2])
        ]
        fresh = [i for i in fresh if i.key not in {item.key for item, _ in rekeyed}]
        # The same article reached us through another feed: one query for the whole feed (the
        # feed's own rows never count, so rows inserted below cannot change the answer).
        links = {i.canonical_link for i in fresh if i.canonical_link}
        elsewhere = self._linked_elsewhere(db, u.url, links)
        takers, taken = self._take_over(db, u, [i for i in fresh if i.canonical_link in elsewhere])
        edits += taken
        elsewhere -= {i.canonical_link for i in takers}
        rows = [
            (u.url, i.key, i.canonical_link, i.link, i.title, i.summary, i.outlet,
             _ts(i.published), _ts(i.first_seen), _ts(i.sort_time), i.language)
            for i in fresh
            if i.canonical_link not in elsewhere and i not in takers
        ]  # fmt: skip
        inserted = db.executemany(
            """INSERT INTO items (feed_url, key, canonical_link, link, title, summary, outlet,
                                  published, first_seen, sort_time, language)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (feed_url, key) DO NOTHING""",
            rows,
        )
        return inserted, edits

    @staticmethod
    def _rekeyed(
        db: Tx, feed_url: str, fresh: Sequence[NewItem], listed: set[str]
    ) -> list[tuple[NewItem, tuple]]:
        """Entries new by their key that are stored items of the feed under another: the
        feed changed its entries' ids (a new CMS, a guid with a version stamp, a guid where
        there was none) and its document no longer lists the old one. Matched by link, one to
        one only (a feed whose entries all link to its home page matches none), and by
        publication time where both have one, else by title (a feed of one entry at a time
        under one link, a status page or a weekly newsletter of one title, brings a new one);
        each stored item takes its new key (and (id, title, summary, link) are returned, as
        _stored_texts gives them, for the caller's edits)."""
        by_link: dict[str, list[NewItem]] = {}
        for item in fresh:
            if item.canonical_link:
                by_link.setdefault(item.canonical_link, []).append(item)
        matched = Store._once_long_linked(db, feed_url, fresh, listed)
        for item, (item_id, title, summary, old_link, published) in (
            _one_to_one(
                db,
                "SELECT canonical_link, key, id, title, summary, link, published FROM items "
                "WHERE feed_url = ? AND canonical_link IN ({marks})",
                by_link,
                feed_url,
                listed,
            )
            if by_link
            else ()
        ):
            dated = published is not None and item.published is not None
            if _ts(item.published) == published if dated else item.title == title:
                matched.append((item, (item_id, title, summary, old_link)))
        db.executemany(
            "UPDATE items SET key = ? WHERE id = ?", [(item.key, row[0]) for item, row in matched]
        )
        return matched

    @staticmethod
    def _once_long_linked(
        db: Tx, feed_url: str, fresh: Sequence[NewItem], listed: set[str]
    ) -> list[tuple[NewItem, tuple]]:
        """Entries without guid or link that are items stored under a link of over
        MAX_URL_BYTES, which parsing drops since (schema 10 stored it hashed, ``sha256:``):
        matched one to one by title and, where both have one, publication time."""
        by_title: dict[str, list[NewItem]] = {}
        for item in fresh:
            if item.canonical_link is None and item.key.startswith("text:"):
                by_title.setdefault(item.title, []).append(item)
        if not by_title:
            return []
        return [
            (item, (item_id, item.title, summary, link))
            for item, (item_id, summary, link, published) in _one_to_one(
                db,
                "SELECT title, key, id, summary, link, published FROM items WHERE feed_url = ? "
                "AND canonical_link LIKE 'sha256:%' AND title IN ({marks})",
                by_title,
                feed_url,
                listed,
            )
            if published is None or item.published is None or _ts(item.published) == published
        ]

    @staticmethod
    def _stored_texts(db: Tx, feed_url: str, keys: list[str]) -> dict[str, tuple]:
        """Key -> (id, title, summary, link) of the feed's items stored under `keys`."""
        found: dict[str, tuple] = {}
        found.update(
            (r[0], tuple(r[1:]))
            for r in _select_in(
                db,
                "SELECT key, id, title, summary, link FROM items "
                "WHERE feed_url = ? AND key IN ({marks})",
                keys,
                before=(feed_url,),
            )
        )
        return found

    @staticmethod
    def _record_edits(db: Tx, edits: Sequence[_Edit]) -> set[int]:
        """Give stored items the title and summary their feed gives them now; returns the ids
        changed. Identity and dates stay: the key, the canonical link (the same article through
        another feed is still this one), first_seen, published and so the item's place in the
        window (a correction does not make a report newer, and a feed that re-dates entries
        on every fetch cannot keep them in the window). The new link is shown (kept when the
        entry lost its own); the article text stays unless the link moved to another page,
        then it goes and the page is fetched again as an item's new one is. The vectors go, as
        when an article's text arrives (save_full_texts): the item is embedded again, and an
        embed worker computing one from the old text stores nothing. At most EDIT_LIMIT times
        an item."""
        applied: set[int] = set()
        for edit in sorted(edits, key=lambda e: e.id):
            changed = db.execute(
                """UPDATE items SET title = ?, summary = ?, link = ?, edits = edits + 1,
                     embed_lease_until = NULL,
                     full_text = CASE WHEN ? THEN NULL ELSE full_text END,
                     full_text_status = CASE WHEN ? THEN NULL ELSE full_text_status END
                   WHERE id = ? AND edits < ?""",
                (edit.title, edit.summary, edit.link, edit.relinked, edit.relinked, edit.id,
                 EDIT_LIMIT),
            ).rowcount  # fmt: skip
            if changed:
                applied.add(edit.id)
        _drop_vectors(db, sorted(applied))
        return applied

    def latest_time_of_link(self, link: str) -> datetime | None:
        """The time the window reads (sort_time) of the latest item stored with this link;
        None if none is."""
        row = self.db.execute(
            "SELECT max(sort_time) FROM items WHERE canonical_link = ?", (link_identity(link),)
        ).fetchone()
        return _dt(row[0]) if row else None

    @staticmethod
    def _take_over(
        db: Tx, u: FeedUpdate, linked: Sequence[NewItem]
    ) -> tuple[list[NewItem], list[_Edit]]:
        """The entries of ``linked`` (their article stored through another feed) that are
        their own site's: the stored item becomes theirs (feed, key, outlet, date; the text
        by the edits returned), where the feed that brought it first is not on the article's
        site (an aggregator's link polled before the outlet's own feed). Who was first and
        who copied is then the same whichever feed is polled first. An item of a feed no
        longer configured (``retired``, see sync_feeds) is taken by any feed that lists its
        article: it left the digest with its feed, and the article would never come back."""
        candidates: dict[str, NewItem] = {}
        for item in linked:
            candidates.setdefault(item.canonical_link, item)
        if not candidates:
            return [], []
        takers: list[NewItem] = []
        edits: list[_Edit] = []
        keys: set[str] = set()  # a feed giving two entries one guid: one item under it
        rows = list(
            _select_in(
                db,
                "SELECT i.id, i.title, i.summary, i.link, i.feed_url, i.canonical_link,"
                " coalesce(f.retired, 0) FROM items i LEFT JOIN feeds f ON f.url = i.feed_url "
                "WHERE i.canonical_link IN ({marks}) AND i.feed_url <> ? ORDER BY i.id",
                sorted(candidates),
                after=(u.url,),
            )
        )
        for row in rows:
            item = candidates.pop(row[5], None)  # one item an entry: the first stored
            if item is None or item.key in keys:
                continue
            own = item.link is not None and site_of(item.link) == site_of(u.url)
            if not row[6] and (not own or site_of(row[4]) == site_of(item.link or "")):
                continue
            published = _ts(item.published) if item.published else None
            db.execute(
                "UPDATE items SET feed_url = ?, key = ?, outlet = ?, language = ?,"
                " link = COALESCE(?, link), published = COALESCE(?, published),"
                " sort_time = COALESCE(?, sort_time) WHERE id = ?",
                (u.url, item.key, item.outlet, item.language, item.link, published, published,
                 row[0]),
            )  # fmt: skip
            keys.add(item.key)
            takers.append(item)
            if (item.title, item.summary) != (row[1], row[2]):
                edits.append(_edit(row[:4], item))
        return takers, edits

    @staticmethod
    def _linked_elsewhere(db: Tx, feed_url: str, links: set[str]) -> set[str]:
        """Which of `links` are already stored as the canonical link of another feed's item."""
        found: set[str] = set()
        found.update(
            row[0]
            for row in _select_in(
                db,
                "SELECT DISTINCT canonical_link FROM items "
                "WHERE canonical_link IN ({marks}) AND feed_url<>?",
                sorted(links),
                after=(feed_url,),
            )
        )
        return found

    def feed_config_hashes(self) -> dict[str, str | None]:
        """The fingerprint of each stored feed's settings as last seen (see note_feed_configs)."""
        return dict(self.db.execute("SELECT url, config_hash FROM feeds").fetchall())

    def remember_feed_configs(self, fingerprints: dict[str, str]) -> None:
        """Record fingerprints of stored feeds without touching their schedule or backoff
        (feeds whose fingerprint was unknown, e.g. after the upgrade to schema 2)."""
        if not fingerprints:
            return
        with self.transaction() as db:
            db.executemany(
                "UPDATE feeds SET config_hash = ? WHERE url = ?",
                [(h, url) for url, h in fingerprints.items()],
            )

    def note_feed_configs(self, changed: dict[str, str], now: datetime) -> None:
        """Record new fingerprints of feeds whose settings changed in feeds.yaml, and make each
        due now: its errors and our own backoff are forgotten; a server's Retry-After that is
        still in the future stays in force."""
        if not changed:
            return
        until = _ts(now)
        with self.transaction() as db:
            for url, config_hash in sorted(changed.items()):  # one lock order for all workers
                db.execute(
                    "INSERT INTO feeds (url, fetch_url, host) VALUES (?, ?, ?) "
                    "ON CONFLICT (url) DO NOTHING",
                    (url, url, host_of(url)),
                )
                _ensure_host(db, host_of(url))
                # Only if still different: two workers starting together both see the change,
                # and the second must not make due again a feed the first already fetched.
                db.execute(
                    """UPDATE feeds SET config_hash = ?, consecutive_errors = 0,
                         next_due = CASE WHEN retry_after > ? THEN retry_after END,
                         due_reason = CASE WHEN retry_after > ? THEN 'retry_after' END
                       WHERE url = ? AND config_hash IS DISTINCT FROM ?""",
                    (config_hash, until, until, url, config_hash),
                )

    def outlet_names(self) -> dict[str, str]:
        """Feed URL -> the outlet name its latest item was stored under: the name in feeds.yaml,
        else the feed's own title (what the site and the email show for the feed); a feed
        polled with no item of its own (none yet, or all stored through another feed): its
        title as polled."""
        titles = self.db.execute("SELECT url, title FROM feeds WHERE title IS NOT NULL")
        names = {url: name for url, title in titles if (name := outlet_name(title))}
        names.update(
            self.db.execute(
                "SELECT feed_url, outlet FROM items WHERE id IN "
                "(SELECT max(id) FROM items GROUP BY feed_url)"
            ).fetchall()
        )
        return names

    def feed_health(
        self, now: datetime, names: dict[str, str | None] | None = None
    ) -> list[FeedHealth]:
        names = names or {}
        since = _ts(now - timedelta(days=7))
        rows = self.db.execute(
            "SELECT url, fetch_url, last_status, last_error, last_checked, last_success,"
            " consecutive_errors, next_due, gone, due_reason, retry_after FROM feeds"
        ).fetchall()
        # Grouped queries over the last 7 days' items, not one per feed (each read its feed's
        # whole history), and joins, not IN (subquery): PostgreSQL rescans a subquery per row
        # once it outgrows work_mem. Shared: the stories with two outlets or more among all
        # their members (those out of the window too).
        counts = dict(
            self.db.execute(
                "SELECT feed_url, count(*) FROM items WHERE sort_time >= ? GROUP BY feed_url",
                (since,),
            ).fetchall()
        )
        grouped = self.db.execute(
            "SELECT i.feed_url, si.story_id FROM items i JOIN story_items si ON si.item_id = i.id"
            " WHERE i.sort_time >= ?",
            (since,),
        ).fetchall()
        shared = {
            r[0]
            for r in self.db.execute(
                f"""SELECT so.story_id FROM story_items so
                   JOIN {_STORIES_SINCE} w
                     ON w.story_id = so.story_id
                   JOIN items o ON o.id = so.item_id
                   GROUP BY so.story_id HAVING min(o.outlet) <> max(o.outlet)""",
                (since,),
            )
        }
        in_stories: Counter[str] = Counter()
        in_shared: Counter[str] = Counter()
        for feed_url, story_id in grouped:
            in_stories[feed_url] += 1
            in_shared[feed_url] += story_id in shared
        rows = [
            (*r[:9], counts.get(r[0], 0), in_stories[r[0]], in_shared[r[0]], r[9], r[10])
            for r in rows
        ]
        rows.sort(key=lambda r: r[0])  # by code point on both backends, whatever the collation
        return [
            FeedHealth(
                url=r[0],
                name=names.get(r[0]),
                fetch_url=r[1],
                last_status=r[2],
                last_error=r[3],
                last_checked=_dt(r[4]),
                last_success=_dt(r[5]),
                consecutive_errors=r[6],
                next_due=_dt(r[7]),
                gone=bool(r[8]),
                items_7d=r[9],
                multi_outlet_share=(r[11] / r[10]) if r[10] else None,
                due_reason=r[12],
                retry_after=_dt(r[13]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------ worker claims and leases
    #
    # `aggregator worker` processes share the work through these rows. Every claim is one
    # short transaction that takes rows nobody holds (or whose holder's lease ran out) and
    # stamps them with a lease; no row lock outlives it, so no lock is held across HTTP.

    def sync_feeds(self, feeds: Sequence[FeedConfig]) -> None:
        """The configured feeds as rows workers can claim; feeds no longer configured retire."""
        wanted = sorted({f.url for f in feeds})  # sorted: concurrent syncs lock in one order
        with self.transaction() as db:
            known = {r[0]: (r[1], r[2], r[3]) for r in db.execute(
                "SELECT url, fetch_url, host, retired FROM feeds"
            )}  # fmt: skip
            db.executemany(
                "INSERT INTO feeds (url, fetch_url, host) VALUES (?, ?, ?) "
                "ON CONFLICT (url) DO NOTHING",
                [(url, url, host_of(url)) for url in wanted if url not in known],
            )
            configured = set(wanted)
            changes = [
                (int(url not in configured), host or host_of(fetch_url), url)
                for url, (fetch_url, host, retired) in sorted(known.items())
                if retired != int(url not in configured) or host is None
            ]
            db.executemany("UPDATE feeds SET retired = ?, host = ? WHERE url = ?", changes)
            db.execute(
                "INSERT INTO hosts (host) SELECT DISTINCT host FROM feeds "
                "WHERE host IS NOT NULL ON CONFLICT (host) DO NOTHING"
            )

    def _lease_time(self, db: Tx, now: datetime | None) -> datetime:
        """The clock leases are stamped and compared by: `now` when given (tests), else the
        database server's on PostgreSQL, so workers on machines whose clocks disagree still
        agree on who holds what; SQLite's workers share one machine, and its clock."""
        if now is not None:
            return now
        if self.db.kind == "postgresql":
            return db.execute("SELECT clock_timestamp()").fetchone()[0]
        return datetime.now(UTC)

    def clock_offset(self, clock: Callable[[], datetime]) -> timedelta:
        """How far the clock leases are compared by (see _lease_time) is ahead of `clock`,
        this machine's: a worker adds it to the times it stores or compares with stored ones
        (a feed's next due time, an item's first sighting, the window), so a machine whose
        clock is hours off still polls each feed when it is due. Zero on SQLite."""
        if self.db.kind != "postgresql":
            return timedelta(0)
        before = clock()
        server = self.db.execute("SELECT clock_timestamp()").fetchone()[0]
        return server - (before + (clock() - before) / 2)  # the round trip's midpoint

    def claim_feeds(
        self, worker: str, now: datetime | None, lease: timedelta, hosts: int, per_host: int
    ) -> list[ClaimedFeed]:
        """Take up to `hosts` hosts with due feeds nobody holds, and up to `per_host` of each
        one's due feeds, until now + lease (now: see _lease_time). Holding the host keeps
        every other worker off its feeds (politeness across machines); each feed, once
        recorded, is due again later."""
        due = (
            "f.retired = 0 AND f.gone = 0 AND (f.next_due IS NULL OR f.next_due <= ?) "
            "AND (f.lease_until IS NULL OR f.lease_until < ?)"
        )
        with self.transaction() as db:
            self._quick_commit(db)
            now = self._lease_time(db, now)
            at, until = _ts(now), _ts(now + lease)
            taken = [
                r[0]
                for r in db.execute(
                    f"SELECT h.host FROM hosts h WHERE (h.lease_until IS NULL OR h.lease_until < ?) "
                    f"AND EXISTS (SELECT 1 FROM feeds f WHERE f.host = h.host AND {due}) "
                    # Never-held hosts first on both backends (NULLs sort apart otherwise).
                    f"ORDER BY coalesce(h.lease_until, ''), h.host LIMIT ? {self.db.skip_locked}",
                    (at, at, at, hosts),
                )
            ]
            db.executemany(
                "UPDATE hosts SET lease_until = ?, leased_by = ? WHERE host = ?",
                [(until, worker, host) for host in taken],
            )
            claimed = []
            for host in taken:
                rows = db.execute(
                    f"UPDATE feeds SET lease_until = ?, leased_by = ? WHERE url IN ("
                    f"SELECT f.url FROM feeds f WHERE f.host = ? AND {due} "
                    f"ORDER BY coalesce(f.next_due, ''), f.url LIMIT ? {self.db.skip_locked}) "
                    "RETURNING url, fetch_url, etag, last_modified, next_due, consecutive_errors, "
                    "ttl_minutes",
                    (until, worker, host, at, at, per_host),
                )
                claimed += [
                    ClaimedFeed(
                        host,
                        FeedState(
                            url=r[0],
                            fetch_url=r[1],
                            etag=r[2],
                            last_modified=r[3],
                            next_due=_dt(r[4]),
                            consecutive_errors=r[5],
                            ttl_minutes=r[6],
                        ),
                    )
                    for r in rows
                ]
            # A host whose due feeds another transaction locked or took since the first
            # statement's snapshot got none: held for nothing, it would stay off every worker's
            # list for the whole lease (it never enters this worker's hosts to release).
            empty = set(taken) - {c.host for c in claimed}
            db.executemany(
                "UPDATE hosts SET lease_until = NULL, leased_by = NULL "
                "WHERE host = ? AND leased_by = ?",
                [(host, worker) for host in sorted(empty)],
            )
        return claimed

    def record_claimed(self, worker: str, updates: Sequence[FeedUpdate]) -> list[Recorded | None]:
        """record_updates for feeds this worker claimed; a feed whose lease another worker
        took over meanwhile is left to that worker (None), so no poll is stored twice. Its
        commit waits for the disk, as record_updates' does: these are the items themselves,
        not bookkeeping (a server crash would lose items a feed no longer lists)."""
        with self.transaction() as db:
            stored = self._lock_new_links(db, updates)
            held = set()
            held.update(
                r[0]
                for r in _select_in(
                    db,
                    "SELECT url FROM feeds WHERE url IN ({marks}) AND leased_by = ? "
                    f"ORDER BY url {self.db.lock_rows}",
                    sorted({u.url for u in updates}),
                    after=(worker,),
                )
            )
            return self._record_all(db, [u if u.url in held else None for u in updates], stored)

    def _quick_commit(self, db: Tx) -> None:
        if self.db.quick_commit:
            db.execute(self.db.quick_commit)

    def release_feeds(self, worker: str, urls: Iterable[str]) -> None:
        """Give back claimed feeds (unfetched, or once their items' pages are stored): any
        worker may take them at once."""
        with self.transaction() as db:
            self._quick_commit(db)
            db.executemany(
                "UPDATE feeds SET lease_until = NULL, leased_by = NULL "
                "WHERE url = ? AND leased_by = ?",
                [(url, worker) for url in sorted(set(urls))],
            )

    def claim_full_texts(
        self,
        worker: str,
        feed_urls: Sequence[str],
        since: datetime,
        now: datetime | None,
        lease: timedelta,
        limit: int,
    ) -> ClaimedPages:
        """Up to `limit` items of the window (sort_time >= since) of `feed_urls` whose article
        page was never tried, oldest first: new ones, and those a worker stopped or killed
        after storing them left. Their feeds are leased to `worker` until now + lease (now:
        see _lease_time), so no other worker fetches the same pages (nor polls those feeds)
        meanwhile; a feed another worker holds is passed over."""
        with self.transaction() as db:
            self._quick_commit(db)
            now = self._lease_time(db, now)
            at, until = _ts(now), _ts(now + lease)
            wanted = {row[3] for row in self._untried_items(db, feed_urls, since, limit)}
            held = [
                r[0]
                for r in _select_in(
                    db,
                    "UPDATE feeds SET lease_until = ?, leased_by = ? WHERE url IN ("
                    "SELECT url FROM feeds WHERE url IN ({marks}) "
                    "AND (lease_until IS NULL OR lease_until < ?) "
                    f"ORDER BY url {self.db.skip_locked}) RETURNING url",
                    sorted(wanted),
                    before=(until, worker),
                    after=(at,),
                )
            ]
            items = self._untried_items(db, held, since, limit)
        return ClaimedPages(sorted(held), items)

    @staticmethod
    def _untried_items(
        db: Tx, feed_urls: Sequence[str], since: datetime, limit: int
    ) -> list[tuple[int, str | None, str, str]]:
        found = _select_in(  # at most `limit` a chunk, then the oldest of all chunks
            db,
            "SELECT first_seen, id, link, summary, feed_url FROM items "
            "WHERE sort_time >= ? AND full_text_status IS NULL AND feed_url IN ({marks}) "
            "ORDER BY first_seen, id LIMIT ?",
            sorted(set(feed_urls)),
            before=(_ts(since),),
            after=(limit,),
        )
        return [tuple(row[1:]) for row in sorted(found)[:limit]]

    def release_hosts(self, worker: str, hosts: Iterable[str]) -> None:
        with self.transaction() as db:
            self._quick_commit(db)
            db.executemany(
                "UPDATE hosts SET lease_until = NULL, leased_by = NULL "
                "WHERE host = ? AND leased_by = ?",
                [(host, worker) for host in sorted(set(hosts))],
            )

    def claim_unembedded(
        self, model_key: str, since: datetime, now: datetime | None, lease: timedelta, limit: int
    ) -> ClaimedItems:
        """Up to `limit` items of the window without a vector for `model_key` that no other
        worker is embedding, leased until now + lease (now: see _lease_time), read as
        items_since reads them (with the start of their article text)."""
        with self.transaction() as db:
            self._quick_commit(db)
            now = self._lease_time(db, now)
            at, until = _ts(now), _ts(now + lease)
            rows = db.execute(
                f"UPDATE items SET embed_lease_until = ? WHERE id IN ("
                f"SELECT i.id FROM items i WHERE i.sort_time >= ? "
                f"AND (i.embed_lease_until IS NULL OR i.embed_lease_until < ?) "
                f"AND NOT EXISTS (SELECT 1 FROM embeddings e "
                f"WHERE e.item_id = i.id AND e.model_key = ?) "
                f"ORDER BY i.id LIMIT ? {self.db.skip_locked}) "
                f"RETURNING id, title, summary, outlet, link, sort_time, feed_url, {_FULL_TEXT_READ}, "
                "language",
                (until, _ts(since), at, model_key, limit),
            )
            items = sorted((_item(r) for r in rows), key=lambda item: item.id)
        return ClaimedItems(items, until)

    def hold_leader(self, role: str, holder: str, now: datetime | None, lease: timedelta) -> bool:
        """Take or renew the one lease of `role`: granted when free, expired, or already
        ours. Only the holder renews it; anyone may take it once it has run out."""
        with self.transaction() as db:
            now = self._lease_time(db, now)
            row = db.execute(
                "INSERT INTO leaders (role, holder, lease_until) VALUES (?, ?, ?) "
                "ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, "
                "lease_until = excluded.lease_until "
                "WHERE leaders.holder = excluded.holder OR leaders.lease_until < ? "
                "RETURNING holder",
                (role, holder, _ts(now + lease), _ts(now)),
            ).fetchone()
        return row is not None and row[0] == holder

    def renew_leader(self, role: str, holder: str, now: datetime | None, lease: timedelta) -> bool:
        """Extend `holder`'s lease of `role` while the lease is still its own (run out, but
        taken by no one since: a lone publisher whose grouping outlasted it goes on), else
        False. Unlike hold_leader it never takes a free lease: one that ran out may have
        passed to another worker and back to nobody (released) since, and taking it again in
        the middle of a cycle would store that cycle's work after the other's."""
        with self.transaction() as db:
            now = self._lease_time(db, now)
            row = db.execute(
                "UPDATE leaders SET lease_until = ? WHERE role = ? AND holder = ? RETURNING holder",
                (_ts(now + lease), role, holder),
            ).fetchone()
        return row is not None

    def leader_held(self, role: str, holder: str, now: datetime | None) -> bool:
        with self.transaction() as db:
            row = db.execute(
                "SELECT 1 FROM leaders WHERE role = ? AND holder = ? AND lease_until >= ?",
                (role, holder, _ts(self._lease_time(db, now))),
            ).fetchone()
        return row is not None

    def release_leader(self, role: str, holder: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM leaders WHERE role = ? AND holder = ?", (role, holder))

    # ------------------------------------------------------------ items and vectors

    def items_since(self, since: datetime) -> list[Item]:
        """The items dated since `since`, oldest first, without tags (a feed's tags are its
        configuration's: pipeline.as_configured gives them)."""
        rows = self.db.execute(
            "SELECT id, title, summary, outlet, link, sort_time, feed_url,"
            f" {_FULL_TEXT_READ}, language FROM items "
            "WHERE sort_time >= ? ORDER BY sort_time, id",
            (_ts(since),),
        ).fetchall()
        return [_item(r) for r in rows]

    def story_item_records(self, since: datetime) -> list[StoryItemRecord]:
        """Items stored since `since` with their story and, for copies, the original's outlet;
        and the earlier items of their stories (`in_window` false): who broke a story the
        window only saw go on is decided over all its items."""
        since_ts = _ts(since)
        rows = self.db.execute(
            # the window's items, then the earlier items of their stories, by a join: an OR
            # with IN (subquery) had PostgreSQL rescan the subquery for every older item once
            # it outgrew work_mem (over 5 minutes at 2.4 million items)
            f"""SELECT i.id, i.feed_url, i.outlet, i.sort_time, si.story_id, o.outlet
               FROM items i
               LEFT JOIN story_items si ON si.item_id = i.id
               LEFT JOIN items o ON o.id = si.copy_of
               WHERE i.sort_time >= ?
               UNION ALL
               SELECT i.id, i.feed_url, i.outlet, i.sort_time, si.story_id, o.outlet
               FROM {_STORIES_SINCE} ws
               JOIN story_items si ON si.story_id = ws.story_id
               JOIN items i ON i.id = si.item_id
               LEFT JOIN items o ON o.id = si.copy_of
               WHERE i.sort_time < ?
               ORDER BY 4, 1""",
            (since_ts, since_ts, since_ts),
        ).fetchall()
        return [
            StoryItemRecord(
                item_id=r[0],
                feed_url=r[1],
                outlet=r[2],
                published=_dt(r[3]),  # type: ignore[arg-type]
                story_id=r[4],
                copy_of_outlet=r[5],
                in_window=r[3] >= since_ts,
            )
            for r in rows
        ]

    def items_for_full_text(
        self, feed_urls: Sequence[str], since: datetime, *, untried_only: bool
    ) -> list[tuple[int, str | None, str, str]]:
        """(id, link, summary, feed_url) of the feeds' items dated since `since` (with
        untried_only: those whose page was never fetched), oldest first. By date, as grouping
        reads the window (and as claim_full_texts does): a new feed's backlog, all first seen
        now and dated months back, is no page to fetch."""
        untried = " AND full_text_status IS NULL" if untried_only else ""
        found = _select_in(  # oldest first across chunks too
            self.db,
            "SELECT sort_time, id, link, summary, feed_url FROM items "
            f"WHERE feed_url IN ({{marks}}) AND sort_time >= ?{untried}",
            feed_urls,
            after=(_ts(since),),
        )
        return [tuple(row[1:]) for row in sorted(found)]

    def save_full_texts(self, results: Sequence[tuple[int, str | None, str]]) -> int:
        """Store (item id, text or None, status) per item; the vectors of items whose text
        changed are dropped (they were computed from the old text). None (a page that failed)
        keeps a text stored before: a site's bad hour changes no grouping. Returns how many
        changed."""
        changes = 0
        with self.transaction() as db:
            # By id: the order save_claimed_vectors locks items in. A changed text also ends
            # the item's embed lease: a vector being computed from the old text is not stored,
            # and the item is claimable again at once.
            for item_id, text, status in sorted(results, key=lambda result: result[0]):
                # a failed fetch (no text) keeps the text a good one stored
                changed = (
                    text is not None
                    and db.execute(
                        "UPDATE items SET full_text = ?, full_text_status = ?, "
                        "embed_lease_until = NULL WHERE id = ? AND full_text IS DISTINCT FROM ?",
                        (text, status, item_id, text),
                    ).rowcount
                )
                if not changed:
                    db.execute(
                        "UPDATE items SET full_text_status = ? WHERE id = ?", (status, item_id)
                    )
                else:
                    _drop_vectors(db, [item_id])
                    changes += 1
        return changes

    def drop_vectors_before(self, before: datetime, limit: int = 10_000) -> int:
        """Forget the vectors (of any model) of up to `limit` items dated before `before`, in
        the order they were stored; returns how many items lost theirs. Grouping reads only
        the window's; a cap keeps one transaction short when a year of vectors goes at once."""
        with self.transaction() as db:
            ids = [  # from the vectors, few once the old ones went: not from all of history
                row[0]
                for row in db.execute(
                    "SELECT DISTINCT e.item_id FROM embeddings e JOIN items i ON i.id = e.item_id "
                    "WHERE i.sort_time < ? ORDER BY e.item_id LIMIT ?",
                    (_ts(before), limit),
                )
            ]
            _drop_vectors(db, ids)  # by id: the order every writer takes
        return len(ids)

    def drop_full_texts_before(self, before: datetime, limit: int = 10_000) -> int:
        """Forget the article text of up to `limit` items dated before `before`, oldest first;
        returns how many lost theirs. The status says so (`dropped`); the headline, summary,
        link and story stay, and with them the archive and `feeds value`."""
        with self.transaction() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM items WHERE sort_time < ? AND full_text IS NOT NULL "
                    "ORDER BY sort_time, id LIMIT ?",
                    (_ts(before), limit),
                )
            ]
            db.executemany(  # by id: the order every writer takes
                "UPDATE items SET full_text = NULL, full_text_status = ? WHERE id = ?",
                [(FULL_TEXT_DROPPED, item_id) for item_id in sorted(ids)],
            )
        return len(ids)

    def count_items(self) -> int:
        return self.db.execute("SELECT count(*) FROM items").fetchone()[0]

    def vectors(self, item_ids: Sequence[int], model_key: str) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        for item_id, blob in _select_in(
            self.db,
            "SELECT item_id, vector FROM embeddings WHERE model_key=? AND item_id IN ({marks})",
            item_ids,
            before=(model_key,),
        ):
            found[item_id] = np.frombuffer(blob, dtype=np.float32)
        return found

    def save_vectors(
        self,
        item_ids: Sequence[int],
        vectors: np.ndarray,
        model_key: str,
        as_read: Mapping[int, tuple[str, str, str]] | None = None,
    ) -> int:
        """Store the items' vectors; their embed leases end (an item whose vector is dropped
        later, when its article text arrives, is claimable again at once). With ``as_read``
        (id -> title, summary and full text as ``items_since`` read them before embedding),
        only for the items whose text is still that: one whose article text or corrected
        title arrived meanwhile (another worker) must not keep a vector of its old text,
        which nothing would replace. Returns how many were stored."""
        by_id = dict(zip(item_ids, vectors, strict=True))
        with self.transaction() as db:
            if as_read is not None:
                now = {
                    row[0]: tuple(row[1:])
                    for row in _select_in(
                        db,
                        f"SELECT id, title, summary, {_FULL_TEXT_READ} "
                        f"FROM items WHERE id IN ({{marks}}) ORDER BY id {self.db.lock_rows}",
                        sorted(by_id),
                    )
                }
                by_id = {k: v for k, v in by_id.items() if now.get(k) == tuple(as_read[k])}
            self._insert_vectors(db, by_id, model_key)
        return len(by_id)

    def save_claimed_vectors(self, claim: ClaimedItems, vectors: np.ndarray, model_key: str) -> int:
        """save_vectors for an embed worker's claim, for the items it still holds: an item
        whose article text arrived meanwhile lost its lease (save_full_texts), and a vector
        of its old text must not stay. Returns how many were stored."""
        by_id = dict(zip((i.id for i in claim.items), vectors, strict=True))
        held: set[int] = set()
        with self.transaction() as db:
            held.update(
                r[0]
                for r in _select_in(
                    db,
                    "SELECT id FROM items WHERE id IN ({marks}) AND embed_lease_until = ? "
                    f"ORDER BY id {self.db.lock_rows}",
                    sorted(by_id),
                    after=(claim.lease,),
                )
            )
            self._insert_vectors(db, {k: v for k, v in by_id.items() if k in held}, model_key)
        return len(held)

    @staticmethod
    def _insert_vectors(db: Tx, vectors: dict[int, np.ndarray], model_key: str) -> None:
        # Items first, by id, then their vectors: the order every writer of both takes.
        db.executemany(
            "UPDATE items SET embed_lease_until = NULL "
            "WHERE id = ? AND embed_lease_until IS NOT NULL",
            [(item_id,) for item_id in sorted(vectors)],
        )
        db.executemany(
            "INSERT INTO embeddings (item_id, model_key, vector) VALUES (?, ?, ?) "
            "ON CONFLICT (item_id, model_key) DO UPDATE SET vector = excluded.vector",
            [
                (item_id, model_key, np.asarray(vector, dtype=np.float32).tobytes())
                for item_id, vector in vectors.items()
            ],
        )

    # ------------------------------------------------------------ stories

    def feeds_of_items(self, item_ids: Sequence[int]) -> dict[int, str]:
        """Item id -> the feed it is stored under."""
        found: dict[int, str] = {}
        found.update(
            _select_in(self.db, "SELECT id, feed_url FROM items WHERE id IN ({marks})", item_ids)
        )
        return found

    def story_assignments(self, item_ids: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        found.update(
            _select_in(
                self.db,
                "SELECT item_id, story_id FROM story_items WHERE item_id IN ({marks})",
                item_ids,
            )
        )
        return found

    def copy_sources(self, item_ids: Sequence[int]) -> dict[int, int]:
        """Item id -> id of the item it copies, for those of ``item_ids`` stored as copies."""
        found: dict[int, int] = {}
        found.update(
            _select_in(
                self.db,
                "SELECT item_id, copy_of FROM story_items WHERE item_id IN ({marks}) "
                "AND copy_of IS NOT NULL",
                item_ids,
            )
        )
        return found

    def story_reasons(self, story_id: str) -> dict[int, str]:
        """Item id -> why it belongs, for the members of one story."""
        return dict(
            self.db.execute("SELECT item_id, why FROM story_items WHERE story_id=?", (story_id,))
        )

    def item_stories(self) -> list[tuple[str, str]]:
        """(item key, story id) for every item in a story (keys are unique per feed only)."""
        return [
            (r[0], r[1])
            for r in self.db.execute(
                "SELECT i.key, s.story_id FROM items i JOIN story_items s ON s.item_id = i.id "
                "ORDER BY i.id"
            )
        ]

    def save_stories(self, stories: Sequence[Story]) -> None:
        """Replace the assignments of the stories' items in one transaction."""
        with self.transaction() as db:
            _write_stories(db, stories)

    def save_clustering(
        self, stories: Sequence[Story], day: str, generated_at: datetime, payload: dict, key: str
    ) -> None:
        """A clustering's stories, the day's digest made from them and its fingerprint (meta
        ``cluster_fingerprint``), in one transaction: a run killed between them left the
        stories stored and the digest not, and the next run, finding the stories as they were,
        called every new story "unchanged"."""
        with self.transaction() as db:
            _write_stories(db, stories)
            _write_digest(db, day, generated_at, payload)
            _put_meta(db, "cluster_fingerprint", key)

    # ------------------------------------------------------------ digests and emails

    def save_digest(self, day: str, generated_at: datetime, payload: dict) -> None:
        with self.transaction() as db:
            _write_digest(db, day, generated_at, payload)

    def digest_of(self, day: str) -> dict | None:
        row = self.db.execute("SELECT payload FROM digests WHERE day = ?", (day,)).fetchone()
        return json.loads(row[0]) if row else None

    def digest_before(self, day: str) -> dict | None:
        """The newest digest of a day before ``day``."""
        row = self.db.execute(
            "SELECT payload FROM digests WHERE day < ? ORDER BY day DESC LIMIT 1", (day,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def newest_digest_day(self) -> str | None:
        row = self.db.execute("SELECT MAX(day) FROM digests").fetchone()
        return row[0] if row else None

    def digests(self, limit: int | None = None) -> list[dict]:
        return [json.loads(payload) for payload in self.digest_payloads(limit)]

    def digest_payloads(self, limit: int | None = None) -> list[str]:
        """The digests as stored (JSON text), newest first."""
        sql = "SELECT payload FROM digests ORDER BY day DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [row[0] for row in self.db.execute(sql)]

    def email_sent(self, day: str) -> bool:
        return self.email_destination(day) is not None

    def email_destination(self, day: str) -> str | None:
        """Who the day's email went to (", "-joined), None if it was not sent."""
        row = self.db.execute("SELECT destination FROM emails WHERE day=?", (day,)).fetchone()
        return row[0] if row else None

    def email_pending(self, day: str) -> tuple[str, ...]:
        """The recipients the day's email is still to reach (a temporary refusal, or the
        connection lost before their turn): the next run sends it to them."""
        return tuple(json.loads(self.meta(f"email_pending:{day}") or "[]"))

    def mark_email_sent(
        self, day: str, destination: str, now: datetime, pending: Sequence[str] = ()
    ) -> None:
        """The day's email went to ``destination``; ``pending``: who it is still to reach."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO emails (day, sent_at, destination) VALUES (?, ?, ?) "
                "ON CONFLICT (day) DO UPDATE "
                "SET sent_at = excluded.sent_at, destination = excluded.destination",
                (day, _ts(now), destination),
            )
            if pending:
                _put_meta(db, f"email_pending:{day}", json.dumps(list(pending)))
            else:
                db.execute("DELETE FROM meta WHERE key = ?", (f"email_pending:{day}",))


# ------------------------------------------------------------------ copying between stores

# Every table with its key, parents before children. Items keep their ids, stories theirs.
_COPY_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("meta", ("key",)),
    ("feeds", ("url",)),
    ("items", ("id",)),
    ("embeddings", ("item_id", "model_key")),
    ("story_items", ("item_id",)),
    ("stories", ("id",)),
    ("digests", ("day",)),
    ("emails", ("day",)),
)
COPY_CHUNK = 2000


STORE_ID = "store_id"  # meta: this database's own identity
COPIED_FROM = "copied_from"  # meta of a copy: the identity of the database it copies
_OWN_META = ("schema_version", STORE_ID, COPIED_FROM)  # each database's own, never copied


@dataclass(frozen=True, slots=True)
class CopiedTable:
    table: str
    rows: int  # rows inserted or changed in the target (a rerun that changes nothing: 0)


def copy_store(
    source: Store, target: Store, on_table: Callable[[CopiedTable], None] | None = None
) -> list[CopiedTable]:
    """Copy every row of `source` into `target`, keeping ids; safe to run again or to resume
    after an interruption (each chunk is one transaction). Rows already there take the
    source's values (of an item, the texts that change: a feed's correction of its title or
    summary, its article text and status; a changed text drops its vectors there too, as it
    does here), nothing is doubled, and stories the source no longer has go. The target must
    be empty or a copy of this same source whose items are all the source's and whose feeds
    were polled there no later than in the source (CopyRefused otherwise, before anything is
    written): ids are kept, so items of its own would take the source's vectors and stories,
    and its newer feed rows the source's older ones."""
    _claim_target(source, target)
    copied = []
    for table, key in _COPY_TABLES:
        columns = source.db.columns(table)
        rows = _copy_table(source, target, table, key, columns)
        if table == "stories":  # the rule save_stories keeps: a story without items is gone
            rows += target.db.execute(
                "DELETE FROM stories WHERE NOT EXISTS "
                "(SELECT 1 FROM story_items si WHERE si.story_id = stories.id)"
            ).rowcount
        copied.append(CopiedTable(table, rows))
        if on_table:
            on_table(copied[-1])
    return copied


def _claim_target(source: Store, target: Store) -> None:
    """Refuse a target that holds items other than the source's, or feeds polled there since
    the source last polled them, before anything is written; then mark it as a copy of the
    source (so a rerun after an interruption resumes)."""
    source_id = source.identity()
    row = target.db.execute("SELECT value FROM meta WHERE key=?", (COPIED_FROM,)).fetchone()
    has_items = target.db.execute("SELECT 1 FROM items LIMIT 1").fetchone() is not None
    if (row[0] != source_id) if row else has_items:
        raise CopyRefused(
            f"{target.label} already holds items that are not from a copy of "
            f"{source.label}: copy into an empty database (or a new schema)"
        )
    if has_items:  # an earlier copy: its items must still be the source's, and only those
        identity = list(_ITEM_IDENTITY)
        clean = _fit_for(target, "items", identity)
        for chunk in _source_chunks(source, "items", ("id",), identity):
            _check_same_items(target.db, source, target, identity, [clean(r) for r in chunk])
        for chunk in _source_chunks(target, "items", ("id",), ["id"]):
            _check_no_items_of_its_own(source, target, [r[0] for r in chunk])
    for chunk in _source_chunks(target, "feeds", ("url",), ["url", "last_checked"]):
        _check_no_newer_feeds(source, target, {url: at for url, at in chunk if at})
    with target.transaction() as db:
        _put_meta(db, COPIED_FROM, source_id)


def _source_chunks(
    source: Store, table: str, key: tuple[str, ...], columns: list[str]
) -> Iterator[list[tuple]]:
    """The table's rows in `source` (meta: without each database's own), COPY_CHUNK at a time
    in key order (keyset pagination: each chunk is one short query)."""
    names = ", ".join(columns)
    own = ", ".join(f"'{k}'" for k in _OWN_META)
    wanted = f"key NOT IN ({own})" if table == "meta" else "1 = 1"
    order = ", ".join(key)
    after = f"({order}) > ({', '.join('?' * len(key))})"
    positions = [columns.index(k) for k in key]
    last = None
    while True:
        where = f"{wanted} AND {after}" if last is not None else wanted
        rows = source.db.execute(
            f"SELECT {names} FROM {table} WHERE {where} ORDER BY {order} LIMIT {COPY_CHUNK}",
            last or (),
        ).fetchall()
        if not rows:
            return
        yield rows
        last = tuple(rows[-1][p] for p in positions)


def _fit_for(target: Store, table: str, columns: list[str]) -> Callable[[Sequence], tuple]:
    """Rows as the target can hold them. PostgreSQL refuses NUL in text, which SQLite keeps
    (a JSON Feed's "\\u0000" in an id, stored before the parser dropped control characters):
    it leaves text values; in an item's key it becomes U+FFFD, so that the key stored then
    and the one the feed's item gets now stay two keys, as in the source."""
    if target.db.kind != "postgresql":
        return tuple
    keys = {columns.index("key")} if table == "items" and "key" in columns else set()

    def fit(row: Sequence) -> tuple:
        return tuple(
            value.replace("\x00", "\ufffd" if k in keys else "")
            if isinstance(value, str) and "\x00" in value
            else value
            for k, value in enumerate(row)
        )

    return fit


# An item's only columns that change (a feed's correction, its article text, the new id its
# feed gave it: Store._rekeyed), and those of them its vectors are computed from.
_ITEM_TEXT_COLUMNS = ("title", "summary", "link", "edits", "full_text", "full_text_status", "key")
_ITEM_EMBEDDED_COLUMNS = ("title", "summary", "full_text")
# What the checks read: an item is the same in both stores by id, feed and key, or, once its
# feed gave it a new key (Store._rekeyed), by id, feed and when it was first seen, or, once a
# feed of its own site took it over (Store._take_over), by id, canonical link and first seen.
_ITEM_IDENTITY = ("id", "feed_url", "key", "first_seen", "canonical_link")


def _copy_table(
    source: Store, target: Store, table: str, key: tuple[str, ...], columns: list[str]
) -> int:
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    values = [c for c in columns if c not in key]
    updates = ", ".join(f"{c} = excluded.{c}" for c in values)
    changed = " OR ".join(f"{table}.{c} IS DISTINCT FROM excluded.{c}" for c in values)
    conflict = (
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} WHERE {changed}" if values else ""
    )
    if table == "items":  # its second unique key must not clash: texts are updated apart
        conflict = "ON CONFLICT DO NOTHING"
    insert = f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"
    fit = _fit_for(target, table, columns)
    total = 0
    for chunk in _source_chunks(source, table, key, columns):
        rows = [fit(r) for r in chunk]
        with target.transaction() as db:
            if table == "items":
                total += _update_item_texts(db, columns, rows)
            total += db.executemany(insert, rows)
            if table == "items":
                _check_same_items(db, source, target, columns, rows)
        if table == "items":  # chunk by chunk: a copy stopped halfway leaves no id to reuse
            target.db.reset_ids("items")
    return total


def _update_item_texts(db: Tx, columns: list[str], rows: list[tuple]) -> int:
    """The texts (a feed's correction, the article text and its status) of the rows' items
    already in the target, where they differ; a changed text drops the item's vectors (the
    source's, if any, follow)."""
    at = {c: columns.index(c) for c in ("id", *_ITEM_TEXT_COLUMNS)}
    ids = [r[at["id"]] for r in rows]
    there = {r[0] for r in _select_in(db, "SELECT id FROM items WHERE id IN ({marks})", ids)}
    known = [r for r in rows if r[at["id"]] in there]

    def differs(names: Sequence[str]) -> str:
        return " OR ".join(f"{c} IS DISTINCT FROM ?" for c in names)

    db.executemany(
        "DELETE FROM embeddings WHERE item_id = ? AND EXISTS "
        f"(SELECT 1 FROM items WHERE id = ? AND ({differs(_ITEM_EMBEDDED_COLUMNS)}))",
        [(r[at["id"]], r[at["id"]], *(r[at[c]] for c in _ITEM_EMBEDDED_COLUMNS)) for r in known],
    )
    _update_taken_over(db, columns, known)
    texts = [(r[at["id"]], *(r[at[c]] for c in _ITEM_TEXT_COLUMNS)) for r in known]
    return db.executemany(
        f"UPDATE items SET {', '.join(f'{c} = ?' for c in _ITEM_TEXT_COLUMNS)} WHERE id = ? "
        f"AND ({differs(_ITEM_TEXT_COLUMNS)})",
        [(*values, item_id, *values) for item_id, *values in texts],
    )


# What a take-over changes (Store._take_over): the article, stored through an aggregator's feed,
# became its own site's feed's item. The same item: same canonical link, first seen alike.
_TAKEN_OVER_COLUMNS = ("feed_url", "key", "outlet", "published", "sort_time", "language")


def _update_taken_over(db: Tx, columns: Sequence[str], rows: Sequence[Sequence]) -> None:
    """The rows' items that another feed took over in the source since the last copy: their
    feed, key, outlet and date follow (the texts follow as any item's do)."""
    moved = [c for c in _TAKEN_OVER_COLUMNS if c in columns]
    if "canonical_link" not in columns or "first_seen" not in columns:
        return
    at = {c: columns.index(c) for c in ("id", "canonical_link", "first_seen", *moved)}
    db.executemany(
        f"UPDATE items SET {', '.join(f'{c} = ?' for c in moved)} WHERE id = ? "
        "AND feed_url IS DISTINCT FROM ? AND canonical_link = ? AND first_seen = ?",
        [
            (*(r[at[c]] for c in moved), r[at["id"]], r[at["feed_url"]],
             r[at["canonical_link"]], r[at["first_seen"]])
            for r in rows
            if r[at["canonical_link"]] is not None
        ],
    )  # fmt: skip


def _check_same_items(
    db: Tx, source: Store, target: Store, columns: Sequence[str], rows: Sequence[Sequence]
) -> None:
    """Each of the source's item rows (of `columns`) is the same item (_ITEM_IDENTITY) in the
    target, or absent there with its feed and key free too, or its vectors and story would go
    to another item (or be passed over): refuse before they do."""
    where = [columns.index(c) for c in _ITEM_IDENTITY]
    wanted = [tuple(r[p] for p in where) for r in rows]
    found = {
        r[0]: tuple(r[1:])
        for r in _select_in(
            db,
            "SELECT id, feed_url, key, first_seen, canonical_link FROM items WHERE id IN ({marks})",
            [w[0] for w in wanted],
        )
    }

    def same(mine: tuple, theirs: tuple) -> bool:  # (feed, key, first seen, canonical link)
        if mine[3] is not None and (mine[2], mine[3]) == (theirs[2], theirs[3]):
            return True  # taken over by another feed
        return mine[0] == theirs[0] and (mine[1] == theirs[1] or mine[2] == theirs[2])

    problems = [
        (w[0], f"item {w[0]} there is another item than in {source.label}")
        for w in wanted
        if w[0] in found and not same(found[w[0]], w[1:])
    ]
    absent = [w for w in wanted if w[0] not in found]
    if absent:  # taken under another id, the row would be passed over (ON CONFLICT)
        feeds = sorted({w[1] for w in absent})
        keys = sorted({w[2] for w in absent})
        taken = {
            (r[1], r[2]): r[0]
            for r in db.execute(
                f"SELECT id, feed_url, key FROM items WHERE feed_url IN "
                f"({','.join('?' * len(feeds))}) AND key IN ({','.join('?' * len(keys))})",
                (*feeds, *keys),
            )
        }
        problems += [
            (w[0], f"item {w[0]} of {source.label} is item {taken[w[1], w[2]]} there")
            for w in absent
            if (w[1], w[2]) in taken
        ]
    if problems:
        raise CopyRefused(
            f"{target.label} holds items of its own ({min(problems)[1]}): "
            "copy into an empty database (or a new schema)"
        )


def _check_no_items_of_its_own(source: Store, target: Store, ids: list[int]) -> None:
    """Each of the target's item ids is one of the source's: an item that workers stored in
    the copy (above the source's ids) makes it a database of its own since, whose newer
    feed rows (validators, schedule) the source's older ones would overwrite."""
    known = {r[0] for r in _select_in(source.db, "SELECT id FROM items WHERE id IN ({marks})", ids)}
    own = [i for i in ids if i not in known]
    if own:
        raise CopyRefused(
            f"{target.label} holds items of its own (item {own[0]} there is not in "
            f"{source.label}: stored there since the copy): copy into an empty database "
            "(or a new schema)"
        )


def _check_no_newer_feeds(source: Store, target: Store, checked: dict[str, str]) -> None:
    """None of the target's feeds (url -> last_checked) was polled there after the source
    last polled it: workers that only polled the copy (304s, nothing new) store no item of
    its own, yet their feed rows (validators, schedule) are newer than the source's, which
    would overwrite them. A copy's rows are the source's, and only the source moves them on,
    so a newer time there is the workers' (fixed-width UTC text: it sorts as time does)."""
    if not checked:
        return
    theirs = dict(
        _select_in(
            source.db, "SELECT url, last_checked FROM feeds WHERE url IN ({marks})", list(checked)
        )
    )
    newer = sorted(
        (url, at) for url, at in checked.items() if url in theirs and at > (theirs[url] or "")
    )
    if newer:
        url, at = newer[0]
        raise CopyRefused(
            f"{target.label} polled {url} at {at}, after {source.label} last did "
            f"({theirs[url] or 'never'}): its feed rows (validators, schedule) are newer than "
            "the source's and a copy would put the older ones back; copy into an empty "
            "database (or a new schema)"
        )


def _one_to_one(
    db: Tx, sql: str, wanted: Mapping[str, Sequence[NewItem]], feed_url: str, listed: set[str]
) -> list[tuple[NewItem, tuple]]:
    """(entry, the rest of its stored row) for each value of ``wanted`` (a value -> the new
    entries that have it) that one new entry and one stored item of the feed share, that
    item's key not in the feed's document (``listed``): ``sql`` selects the value, the key,
    then the rest, of the feed's items whose value is one of ({marks})."""
    rows: dict[str, list[tuple]] = {}
    for r in _select_in(db, sql, sorted(wanted), before=(feed_url,)):
        rows.setdefault(r[0], []).append(r[1:])
    return [
        (wanted[value][0], stored[0][1:])
        for value, stored in rows.items()
        if len(stored) == 1 and len(wanted[value]) == 1 and stored[0][0] not in listed
    ]


def _item(row: Sequence) -> Item:
    """An Item from (id, title, summary, outlet, link, sort_time, feed_url[, full_text,
    language])."""
    return Item(
        id=row[0],
        title=row[1],
        summary=row[2],
        outlet=row[3],
        link=row[4],
        published=_dt(row[5]),  # type: ignore[arg-type]
        feed_url=row[6],
        full_text=row[7] if len(row) > 7 else "",
        language=row[8] if len(row) > 8 else None,
    )


def _edit(stored: tuple, item: NewItem) -> _Edit:
    """The change of a stored item (id, title, summary, link) the feed's entry brings (stored
    by _record_edits, up to EDIT_LIMIT times an item)."""
    old_link = stored[3]
    relinked = item.link is not None and item.canonical_link != (
        link_identity(old_link) if old_link else None
    )
    return _Edit(stored[0], item.title, item.summary, item.link or old_link, relinked)


def _drop_vectors(db: Tx, item_ids: Sequence[int]) -> None:
    """Forget the items' vectors, computed from a text they no longer have (the caller ended
    their embed leases in the same transaction, items first: the order of every writer)."""
    db.executemany("DELETE FROM embeddings WHERE item_id = ?", [(i,) for i in item_ids])


def _ensure_host(db: Tx, host: str | None) -> None:
    if host:
        db.execute("INSERT INTO hosts (host) VALUES (?) ON CONFLICT (host) DO NOTHING", (host,))


def _put_meta(db: Tx, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _chunks(values: Sequence, size: int) -> Iterator[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _write_stories(db: Tx, stories: Sequence[Story]) -> None:
    for story in stories:
        ids = [m.item.id for m in story.members]
        db.executemany(
            "INSERT INTO story_items (item_id, story_id, copy_of, why) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (item_id) DO UPDATE SET story_id = excluded.story_id, "
            "copy_of = excluded.copy_of, why = excluded.why",
            [(m.item.id, story.id, m.copy_of, m.why) for m in story.members],
        )
        db.execute(
            """INSERT INTO stories
               (id, headline_item_id, keywords, status, size, outlets, first_seen, last_updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (id) DO UPDATE SET
                 headline_item_id = excluded.headline_item_id,
                 keywords = excluded.keywords, status = excluded.status,
                 size = excluded.size, outlets = excluded.outlets,
                 first_seen = excluded.first_seen, last_updated = excluded.last_updated""",
            (
                story.id,
                story.headline_item_id,
                json.dumps(list(story.keywords)),
                story.status,
                len(ids),
                len(story.outlets),
                _ts(story.first_seen),
                _ts(story.last_updated),
            ),
        )
    # Stories whose every item moved elsewhere no longer exist. NOT EXISTS, not NOT IN: once
    # story_items outgrows work_mem, PostgreSQL rescans NOT IN's subquery for every story
    # (over 90 s at 200,000 members, against 0.3 s at 600,000 this way).
    db.execute(
        "DELETE FROM stories WHERE NOT EXISTS "
        "(SELECT 1 FROM story_items si WHERE si.story_id = stories.id)"
    )


def _write_digest(db: Tx, day: str, generated_at: datetime, payload: dict) -> None:
    db.execute(
        "INSERT INTO digests (day, generated_at, payload) VALUES (?, ?, ?) "
        "ON CONFLICT (day) DO UPDATE "
        "SET generated_at = excluded.generated_at, payload = excluded.payload",
        (day, _ts(generated_at), json.dumps(payload, sort_keys=True, ensure_ascii=False)),
    )


def _select_in(
    db: Tx, sql: str, values: Iterable, before: Sequence = (), after: Sequence = ()
) -> Iterator[tuple]:
    """The rows of `sql`, whose `IN ({marks})` takes `values`, asked 500 values at a time (far
    below SQLite's variable limit); `before` and `after` are the parameters around them."""
    for chunk in _chunks(values, 500):
        marks = ",".join("?" * len(chunk))
        yield from db.execute(sql.replace("{marks}", marks), (*before, *chunk, *after))


def database_exists(target: Path | str) -> bool:
    """Whether there may be stored state to read (a server database is assumed to exist)."""
    return is_postgres_url(target) or os.path.exists(target)
