"""Both Store backends for tests: a SQLite file and a real PostgreSQL server.

    def test_something(store_target):          # runs once per backend
        with Store.open(store_target()) as store:
            ...

`store_target(name)` gives a fresh, empty database each call: a file in tmp_path, or a schema
of its own in a throwaway PostgreSQL database created for the test session (a unique name,
dropped at the end). The server comes from AGGREGATOR_TEST_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/test). When no server answers, the tests FAIL and say how
to get one: a missing database is a broken test setup, not a reason to test less.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

DEFAULT_TEST_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def server_url() -> str:
    return os.environ.get("AGGREGATOR_TEST_POSTGRES", DEFAULT_TEST_POSTGRES)


def with_database(url: str, database: str, schema: str | None = None) -> str:
    parts = urlsplit(url)
    query = parts.query
    if schema is not None:
        option = quote(f"-csearch_path={schema}", safe="")
        query = f"{query}&options={option}" if query else f"options={option}"
    return urlunsplit(parts._replace(path="/" + database, query=query))


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throwaway database on the test server for this session; its URL."""
    import psycopg

    admin = server_url()
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        pytest.fail(
            f"no PostgreSQL server at {admin} ({reason}): run `scripts/setup.sh --test` "
            "(as root it installs and starts Debian's postgresql), or set "
            "AGGREGATOR_TEST_POSTGRES to a server where this user may create databases",
            pytrace=False,
        )
    name = f"aggregator_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(admin, name)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable:
    """A factory of fresh, empty databases of the test's backend (a path or a URL)."""
    if backend == "sqlite":
        return lambda name="a": tmp_path / f"{name}.db"
    database_url = request.getfixturevalue("postgres_database")
    return lambda name="a": fresh_postgres(database_url)


def fresh_postgres(database_url: str) -> str:
    """A URL whose tables land in a new, empty schema of the session's database."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return with_database(database_url, urlsplit(database_url).path.lstrip("/"), schema)


@contextlib.contextmanager
def older_database(target, last: int) -> Iterator:
    """A database of schema version `last`, as that aggregator made it: yields a transaction
    to fill it in, then closes it."""
    from aggregator.db import connect
    from aggregator.store import _MIGRATIONS, _SQLITE_ONLY, run_migration

    database = connect(target)
    try:
        with database.transaction() as db:
            for version, step in _MIGRATIONS:
                if version <= last and (database.kind == "sqlite" or version not in _SQLITE_ONLY):
                    run_migration(database, db, step)
            db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(last),))
            yield db
    finally:
        database.close()
