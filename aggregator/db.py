"""Where the Store's SQL runs: one SQLite file, or a PostgreSQL server through a pool.

The Store writes each statement once for both: `?` placeholders (turned into psycopg's `%s`
here), `INSERT ... ON CONFLICT` upserts (both speak them), timestamps as fixed-width UTC text,
and a few `{tokens}` in the schema for the column types that differ. Everything
dialect-specific lives in this module.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and urlsplit(target).scheme in POSTGRES_SCHEMES


def redact(url: str) -> str:
    """The URL without a password (in its user part or its query), for messages and logs."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=f"{user}{host}{port}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(key, value) for key, value in query if key.lower() != "password"]
    if len(kept) != len(query):
        parts = parts._replace(query=urlencode(kept))
    return urlunsplit(parts)


class DatabaseUnavailable(Exception):
    """The database cannot be opened or reached; str() is one line for the user.
    ``unreachable``: the server did not answer (refused, timed out, too busy), which a later
    try may not meet; a server that answered no (no such database, a wrong password) is not.
    ``sqlstate``: the server's code for its answer, if it gave one."""

    def __init__(self, message: str, unreachable: bool = False, sqlstate: str | None = None):
        super().__init__(message)
        self.unreachable = unreachable
        self.sqlstate = sqlstate


def is_database_error(exc: BaseException) -> bool:
    """An error raised by either driver (psycopg is only imported where PostgreSQL is used)."""
    if isinstance(exc, sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.Error)


# SQLSTATEs of a connection gone or not to be had now, besides class 08 (connection
# exception): admin_shutdown (a terminated backend, a server stopping), crash_shutdown,
# cannot_connect_now (a server starting).
_LOST_CONNECTION = frozenset({"57P01", "57P02", "57P03"})
# SQLSTATE classes and codes of errors another try may well not meet: transaction rollback
# (a deadlock, a serialization failure), insufficient resources (out of memory or of shared
# lock memory, disk full, too many connections), lock_not_available, query_canceled (a
# statement timeout, a cancel by an administrator).
_PASSING_CLASSES = ("40", "53")
_PASSING = frozenset({"55P03", "57014"})


def is_connection_lost(exc: BaseException) -> bool:
    """A dropped or refused connection (server restart, terminated backend, network): the
    work may succeed when tried again. Told by the SQLSTATE (class 08, 57P01-57P03), or by
    none at all on psycopg's own OperationalError (the connection closed under it; the pool
    had none to lend in time). Any other error is the server's answer to a statement (out of
    shared memory, a deadlock, a cancelled statement, a full disk), not a lost connection.
    PostgreSQL only; a SQLite file has no connection. A server that could not be reached at
    all (``DatabaseUnavailable.unreachable``) counts too."""
    if getattr(exc, "unreachable", False):
        return True
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, psycopg.OperationalError)
    return state.startswith("08") or state in _LOST_CONNECTION


# The server's answers to a new connection that a later try may not meet (libpq gives them as
# text: a connection that failed has no SQLSTATE).
_BUSY_SERVER = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "too many connections",
    "too many clients",
    "connection slots are reserved",
)


def unreachable(exc: BaseException) -> bool:
    """A new connection that failed for want of a server to take it: none answered (refused,
    timed out, no such host), or it answered that it cannot take one now (starting up, too
    many connections). No such database, role or password is an answer, and stays one."""
    text = str(exc)
    return "FATAL:" not in text or any(reason in text for reason in _BUSY_SERVER)


def is_passing(exc: BaseException) -> bool:
    """An error that the same work tried again later may well not meet: on PostgreSQL a lost
    connection, a deadlock or serialization failure, a resource that ran out (memory, the
    shared lock table, disk, connections), a lock or statement timeout; on SQLite a file
    another process held locked for longer than SQLITE_BUSY_SECONDS."""
    if is_connection_lost(exc) or is_sqlite_busy(exc):
        return True
    state = getattr(exc, "sqlstate", None)
    return (
        is_database_error(exc)
        and isinstance(state, str)
        and (state[:2] in _PASSING_CLASSES or state in _PASSING)
    )


def is_sqlite_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked" (SQLITE_BUSY and its extended codes): another
    connection held the lock this one waited for. Any other SQLite error (a read-only file,
    disk I/O, no such table) is not, and neither is SQLITE_LOCKED (a conflict within one
    connection)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def sqlite_busy_text(waited: float | None = None) -> str:
    """Why a busy SQLite file failed, for messages: held for longer than `waited` seconds
    (by default the busy timeout one statement waits)."""
    seconds = SQLITE_BUSY_SECONDS if waited is None else waited
    return f"is locked: another process has held it for over {seconds:g} s"


def is_permission_denied(exc: BaseException) -> bool:
    """PostgreSQL's insufficient_privilege: the database user lacks a right it needs."""
    return getattr(exc, "sqlstate", None) == "42501"


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Rows:
    """A statement's result, fetched: the same shape from both drivers."""

    def __init__(self, rows: list[tuple], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple]:
        return self.rows

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.rows)


class Tx(Protocol):
    """Statements inside one transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int: ...


class Database(Protocol):
    kind: str  # "sqlite" | "postgresql"
    skip_locked: str  # appended to a claim's SELECT
    lock_rows: str
    quick_commit: str  # first statement of a transaction that may be lost in a server crash
    label: str  # for messages: the path, or the URL without password
    Error: type[Exception]
    IntegrityError: type[Exception]

    def transaction(self) -> contextlib.AbstractContextManager[Tx]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows: ...

    def schema(self, sql: str) -> str: ...

    def columns(self, table: str) -> list[str]: ...

    def reset_ids(self, table: str) -> None: ...

    def lock_keys(self, db: Tx, keys: Iterable[str]) -> None: ...

    def integrity_ok(self) -> bool: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- SQLite

_SQLITE_TYPES = {
    "{serial}": "INTEGER PRIMARY KEY",  # the rowid
    "{ref_pk}": "INTEGER PRIMARY KEY",
    "{ref}": "INTEGER",
    "{blob}": "BLOB",
    "{without_rowid}": "WITHOUT ROWID",
}


class _SqliteTx:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cursor = self.connection.execute(sql, params)
        return Rows(cursor.fetchall(), cursor.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        return max(self.connection.executemany(sql, rows).rowcount, 0)


def sqlite_schema(sql: str) -> str:
    """A migration's text with SQLite's types."""
    for token, text in _SQLITE_TYPES.items():
        sql = sql.replace(token, text)
    return sql


# How long a statement waits for a lock another connection holds before it fails with
# "database is locked" (sqlite3's busy timeout).
SQLITE_BUSY_SECONDS = 30.0


def _switch_to_wal(connection: sqlite3.Connection) -> None:
    """PRAGMA journal_mode=WAL, waiting up to SQLITE_BUSY_SECONDS for the lock, as any other
    statement does. On a file still in rollback mode (a new one) the switch reads the header,
    then writes it; when another connection takes the write lock in between (another process
    creating the same file, e.g. workers started together), SQLite answers "database is
    locked" at once instead of waiting (two readers waiting to write could wait on each other
    forever), so the switch is tried again here. Once the file is in WAL mode it writes nothing."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    pause = 0.002
    try:
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                left = deadline - time.monotonic()
                if not is_sqlite_busy(exc) or left <= 0:
                    raise
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)
            # The next try's own wait for the lock (busy timeout) ends by the deadline too.
            left = max(deadline - time.monotonic(), 0.001)
            connection.execute(f"PRAGMA busy_timeout = {int(left * 1000)}")
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_SECONDS * 1000)}")


class SqliteDatabase:
    kind = "sqlite"
    # Claims need no row locks here: BEGIN IMMEDIATE already runs writers one at a time.
    skip_locked = ""
    lock_rows = ""
    quick_commit = ""
    Error = sqlite3.Error
    IntegrityError = sqlite3.IntegrityError

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS, isolation_level=None)
        _switch_to_wal(self.connection)
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self._tx = _SqliteTx(self.connection)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        # IMMEDIATE: take the write lock now, so two writers queue instead of deadlocking.
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self._tx
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        else:
            self.connection.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._tx.execute(sql, params)

    def schema(self, sql: str) -> str:
        return sqlite_schema(sql)

    def integrity_ok(self) -> bool:
        return self.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def columns(self, table: str) -> list[str]:
        return [row[1] for row in self.connection.execute(f"PRAGMA table_info({table})")]

    def reset_ids(self, table: str) -> None:
        """Nothing to do: SQLite's next rowid is always max(rowid) + 1."""

    def lock_keys(self, db: Tx, keys: Iterable[str]) -> None:
        """Nothing to do: BEGIN IMMEDIATE already runs writers one at a time."""

    def close(self) -> None:
        self.connection.close()


# ---------------------------------------------------------------- PostgreSQL

_POSTGRES_TYPES = {
    "{serial}": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    "{ref_pk}": "BIGINT PRIMARY KEY",
    "{ref}": "BIGINT",
    "{blob}": "BYTEA",
    "{without_rowid}": "",
}

MIGRATION_LOCK = 7_361_205_014  # pg_advisory_xact_lock key: one migrating process at a time
# lock_keys: its advisory locks are (KEY_LOCK_CLASS, bucket), two-key locks (a space apart from
# the one-key locks above), bucket < KEY_BUCKETS (a power of two).
KEY_LOCK_CLASS = 736_120_501
KEY_BUCKETS = 1024


def postgres_sql(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (a literal % doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTx:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        cursor = self.connection.execute(postgres_sql(sql), tuple(params) or None)
        rows = cursor.fetchall() if cursor.description is not None else []
        return Rows(rows, cursor.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        with self.connection.cursor() as cursor:
            cursor.executemany(postgres_sql(sql), rows)
            return max(cursor.rowcount, 0)


class PostgresDatabase:
    """A pool of connections in autocommit mode; transaction() borrows one for its length.

    The password comes from the environment (PGPASSWORD) or ~/.pgpass, which libpq reads
    itself: it is never part of feeds.yaml.
    """

    kind = "postgresql"
    # Claims lock the rows they take and pass over rows another worker is taking right now.
    skip_locked = "FOR UPDATE SKIP LOCKED"
    lock_rows = "FOR UPDATE"  # wait for the rows: a check that must see the latest holder
    # For worker bookkeeping whose loss in a server crash only means work done again: the
    # commit returns before its WAL reaches the disk (a lease simply runs out instead).
    quick_commit = "SET LOCAL synchronous_commit TO OFF"

    def __init__(self, url: str, max_connections: int = 4, connect_timeout: float = 10) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        self.Error = psycopg.Error
        self.IntegrityError = psycopg.errors.IntegrityError
        self.url = url
        self.label = redact(url)
        try:  # one direct connection first: its error says why, the pool's only that it timed out
            psycopg.connect(url, connect_timeout=max(1, int(connect_timeout))).close()
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL {self.label}: {one_line(exc)}",
                unreachable=unreachable(exc),
                sqlstate=exc.sqlstate,
            ) from None
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            open=False,
            name="aggregator",
            # A pooled connection the server dropped (restart, pg_terminate_backend) is
            # replaced when next lent, instead of failing the statement given to it.
            check=ConnectionPool.check_connection,
        )
        try:
            self.pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self.pool.close()
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL {self.label}: no connection within "
                f"{connect_timeout:g} s (is the server overloaded or at max_connections?)",
                unreachable=True,
            ) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.pool.connection() as connection, connection.transaction():
            yield _PostgresTx(connection)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        with self.pool.connection() as connection:
            return _PostgresTx(connection).execute(sql, params)

    def schema(self, sql: str) -> str:
        for token, text in _POSTGRES_TYPES.items():
            sql = sql.replace(token, text)
        return sql

    def integrity_ok(self) -> bool:
        return self.execute("SELECT 1").fetchone() == (1,)

    def columns(self, table: str) -> list[str]:
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [row[0] for row in rows]

    def reset_ids(self, table: str) -> None:
        """After rows came in with their own ids: the next generated id follows the largest."""
        self.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"greatest((SELECT max(id) FROM {table}), 1))"
        )

    def lock_keys(self, db: Tx, keys: Iterable[str]) -> None:
        """Hold each key (any text) until the transaction ends: a transaction taking one
        of them waits for this one to commit. Keys share KEY_BUCKETS advisory locks (by a
        hash), so a transaction holds at most that many however many keys it locks, and all
        transactions together hold at most that many (each is held by one at a time): the
        server's shared lock table (max_locks_per_transaction) cannot run out through them.
        Two keys of one bucket make two transactions wait for each other (briefly: the
        length of the first). Taken in ascending order, so two transactions never deadlock."""
        wanted = sorted(set(keys))
        if wanted:
            db.execute(
                "SELECT pg_advisory_xact_lock(?::int, b) FROM (SELECT DISTINCT "
                "(hashtextextended(key, 0) & ?::bigint)::int AS b "
                "FROM unnest(?::text[]) AS key) AS buckets ORDER BY b",
                (KEY_LOCK_CLASS, KEY_BUCKETS - 1, wanted),
            )

    def close(self) -> None:
        self.pool.close()


def connect(target: Path | str) -> SqliteDatabase | PostgresDatabase:
    """A PostgreSQL URL opens a pool; anything else is a SQLite file path."""
    if is_postgres_url(target):
        return PostgresDatabase(str(target))
    return SqliteDatabase(Path(target))
