"""`aggregator worker`: many processes share polling and publishing through the database.

Real worker processes, real loopback HTTP servers on several addresses, real databases.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.store import Store
from tests.support.databases import fresh_postgres
from tests.support.hosts import many_hosts

ROOT = Path(__file__).resolve().parents[1]
RSS = b"<rss version='2.0'><channel><title>Loopback</title><item><title>a</title><link>https://x.example/a</link></item></channel></rss>"


def write_config(folder: Path, database: Path | str, urls: list[str], extra: str = "") -> Path:
    lines = ["allow_private: true", f"database: {database}", "output: site", extra, "feeds:"]
    lines += [f"  - url: {url}" for url in urls]
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_worker(config: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "worker", "-c", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"exit {process.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return out


def stored(database: Path | str) -> tuple[int, dict[str, str]]:
    with Store.open(database) as store:
        items = store.count_items()
        statuses = dict(store.db.execute("SELECT url, last_status FROM feeds").fetchall())
    return items, statuses


def test_four_poll_workers_fetch_each_feed_exactly_once(tmp_path: Path, store_target) -> None:
    database = store_target("news")
    with many_hosts(hosts=8, feeds=120, items=5) as server:
        config = write_config(tmp_path, database, server.urls, "poll: {per_host: 2}")
        workers = [start_worker(config, "--role", "poll", "--once") for _ in range(4)]
        outputs = [finish(w) for w in workers]
        assert set(server.requests) == set(server.urls)
        assert max(server.requests.values()) == 1, server.requests.most_common(3)
        # Politeness across processes: never more than per_host requests on one host at once.
        assert max(server.max_in_flight.values()) <= 2
        items, statuses = stored(database)
        assert items == 120 * 5
        assert set(statuses.values()) == {"ok"}
        assert sum(int(o.split("poll: ")[1].split()[0]) for o in outputs) == 120

        # Nothing is due any more: another worker fetches nothing.
        again = finish(start_worker(config, "--role", "poll", "--once"))
        assert "poll: 0 feeds" in again
        assert max(server.requests.values()) == 1


def leased_by(database: str, pid: int) -> set[str]:
    with Store.open(database) as store:
        rows = store.db.execute("SELECT url FROM feeds WHERE leased_by LIKE ?", (f"%:{pid}:%",))
        return {r[0] for r in rows}


def test_a_worker_killed_mid_cycle_loses_and_doubles_nothing(
    tmp_path: Path, postgres_database
) -> None:
    from tests.support.databases import fresh_postgres

    database = fresh_postgres(postgres_database)
    lease = 4
    with many_hosts(hosts=4, feeds=40, items=3, delay=0.3) as server:
        config = write_config(
            tmp_path, database, server.urls, f"workers: {{lease_seconds: {lease}}}"
        )
        victim = start_worker(config, "--role", "poll", "--once")
        deadline = time.monotonic() + 60
        while not (held := leased_by(database, victim.pid)):
            assert time.monotonic() < deadline and victim.poll() is None
            time.sleep(0.05)
        victim.kill()  # kill -9: no cleanup at all
        victim.wait()
        killed_at = time.monotonic()

        # Others run at once: they leave the dead worker's feeds alone while its lease holds.
        finish(start_worker(config, "--role", "poll", "--once"))
        _, statuses = stored(database)
        if time.monotonic() - killed_at < lease:
            assert not any(statuses.get(url) for url in held - set(server.requests))

        time.sleep(max(0.0, lease + 0.5 - (time.monotonic() - killed_at)))
        finish(start_worker(config, "--role", "poll", "--once"))
        items, statuses = stored(database)
        assert items == 40 * 3  # nothing lost, nothing stored twice
        assert set(statuses) == set(server.urls) and set(statuses.values()) == {"ok"}
        twice = {url for url, n in server.requests.items() if n > 1}
        assert twice <= held  # only what the dead worker had in flight was fetched again
        assert max(server.requests.values()) <= 2
        assert leased_by(database, victim.pid) == set()


def test_sigterm_finishes_the_feeds_in_flight_and_exits(tmp_path: Path, store_target) -> None:
    database = store_target("news")
    with many_hosts(hosts=2, feeds=6, items=2, delay=0.5) as server:
        config = write_config(tmp_path, database, server.urls, "workers: {idle_seconds: 60}")
        process = start_worker(config, "--role", "poll")
        while not sum(server.requests.values()):
            assert process.poll() is None
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        out = finish(process, timeout=30)
        items, statuses = stored(database)
        fetched = {url for url in server.requests}
        assert {u for u, s in statuses.items() if s == "ok"} == fetched  # in flight: stored
        assert items == 2 * len(fetched)
        assert "poll:" in out
        with Store.open(database) as store:
            assert store.db.execute(
                "SELECT count(*) FROM feeds WHERE lease_until IS NOT NULL"
            ).fetchone() == (0,)


def test_the_publish_lease_has_one_holder_until_it_expires(store_target) -> None:
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    lease = timedelta(seconds=60)
    with Store.open(store_target()) as store:
        assert store.hold_leader("publish", "a", now, lease)
        assert not store.hold_leader("publish", "b", now + timedelta(seconds=30), lease)
        assert store.hold_leader("publish", "a", now + timedelta(seconds=50), lease)  # renewed
        assert not store.hold_leader("publish", "b", now + timedelta(seconds=100), lease)
        later = now + timedelta(seconds=120)  # a's renewed lease ran out
        assert store.hold_leader("publish", "b", later, lease)
        assert not store.leader_held("publish", "a", later)
        assert not store.hold_leader("publish", "a", later, lease)  # only the holder renews
        store.release_leader("publish", "a")  # not a's to release
        assert store.leader_held("publish", "b", later)
        store.release_leader("publish", "b")
        assert store.hold_leader("publish", "a", later, lease)


def test_a_lease_that_ran_out_is_not_renewed_in_the_middle_of_a_cycle(store_target) -> None:
    """a's lease runs out mid-cycle, b takes it, publishes and releases it: a's renewal before
    storing its stories must fail (taking the free lease again, it stored an older grouping
    after b's)."""
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    lease = timedelta(seconds=60)
    with Store.open(store_target()) as store:
        assert store.hold_leader("publish", "a", now, lease)
        assert store.renew_leader("publish", "a", now + timedelta(seconds=50), lease)
        assert not store.renew_leader("publish", "b", now + timedelta(seconds=60), lease)
        # ran out, but nobody took it: a lone publisher whose grouping took long goes on
        assert store.renew_leader("publish", "a", now + timedelta(seconds=150), lease)
        later = now + timedelta(seconds=300)
        assert store.hold_leader("publish", "b", later, lease)
        store.release_leader("publish", "b")
        assert not store.renew_leader("publish", "a", later, lease)
        assert not store.leader_held("publish", "a", later)
        assert store.hold_leader("publish", "a", later, lease)  # the next cycle takes it


@pytest.mark.model
def test_two_publishers_at_once_produce_one_complete_site(
    tmp_path: Path, postgres_database
) -> None:
    from tests.support.databases import fresh_postgres

    database = fresh_postgres(postgres_database)
    with many_hosts(hosts=2, feeds=6, items=4) as server:
        config = write_config(tmp_path, database, server.urls)
        finish(start_worker(config, "--role", "poll", "--once"))
        publishers = [start_worker(config, "--role", "publish", "--once") for _ in range(2)]
        outputs = [finish(p, timeout=300) for p in publishers]
    assert sum("site rebuilt" in o for o in outputs) == 1, outputs
    site = tmp_path / "site"
    index = (site / "index.html").read_text()
    pages = list((site / "stories").glob("*.html"))
    with Store.open(database) as store:
        stories = store.db.execute("SELECT count(*) FROM stories").fetchone()[0]
    assert stories and len(pages) == stories
    for page in pages:
        assert page.name in index or (site / "stories" / page.name).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.new-")]


def test_a_publisher_that_lost_its_lease_leaves_the_old_site(tmp_path: Path) -> None:
    from aggregator.site import build_site
    from tests.support.digests import TODAY, day_digest, site_settings

    class Vetoed(Exception):
        pass

    def veto() -> None:
        raise Vetoed

    output = tmp_path / "site"
    build_site(output, [day_digest(TODAY)], site_settings())
    before = {p: p.read_bytes() for p in output.rglob("*") if p.is_file()}
    with pytest.raises(Vetoed):
        build_site(output, [day_digest(TODAY)], site_settings(title="Other"), before_swap=veto)
    assert {p: p.read_bytes() for p in output.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name != "site"]


@pytest.mark.model
def test_two_embed_workers_share_the_items_without_vectors(
    tmp_path: Path, postgres_database
) -> None:
    from tests.support.databases import fresh_postgres

    database = fresh_postgres(postgres_database)
    with many_hosts(hosts=2, feeds=10, items=60) as server:
        config = write_config(tmp_path, database, server.urls)
        finish(start_worker(config, "--role", "poll", "--once"))
    embedders = [start_worker(config, "--role", "embed", "--once") for _ in range(2)]
    outputs = [finish(p, timeout=300) for p in embedders]
    embedded = [int(o.split("embed: ")[1].split()[0]) for o in outputs]
    assert sum(embedded) == 600  # every item once, by one worker or the other
    with Store.open(database) as store:
        assert store.db.execute("SELECT count(*) FROM embeddings").fetchone() == (600,)


def test_a_poll_worker_fetches_the_article_pages_of_full_text_feeds(
    feed_server, tmp_path: Path, store_target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from aggregator.cli import main
    from tests.test_full_text import serve_site
    from tests.test_full_text import write_config as full_text_config

    serve_site(feed_server, cap_bytes=int(0.05 * 1024 * 1024))
    database = store_target("news")
    monkeypatch.setenv("AGGREGATOR_DATABASE", str(database))
    config = full_text_config(tmp_path, feed_server)
    result = CliRunner().invoke(main, ["worker", "--role", "poll", "--once", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "new items: 7; full text: 2 articles" in result.output
    with Store.open(database) as store:
        texts = store.db.execute("SELECT count(*) FROM items WHERE full_text IS NOT NULL")
        assert texts.fetchone() == (2,)
    pages = [r for r in feed_server.requests if r.route.startswith("/news/")]
    assert len(pages) == 6  # each article page once


def test_article_pages_a_stopped_poll_cycle_left_are_fetched_by_the_next(
    feed_server, tmp_path: Path, store_target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped (SIGTERM) or killed after storing its new items, a worker never fetched their
    pages: later cycles only looked at items new in their own run."""
    import threading

    from aggregator import workers
    from aggregator.config import load_config
    from tests.test_full_text import serve_site
    from tests.test_full_text import write_config as full_text_config

    serve_site(feed_server, cap_bytes=int(0.05 * 1024 * 1024))
    database = store_target("news")
    monkeypatch.setenv("AGGREGATOR_DATABASE", str(database))
    config = load_config(full_text_config(tmp_path, feed_server))

    def pages() -> list[str]:
        return [r.route for r in feed_server.requests if r.route.startswith("/news/")]

    with Store.open(database) as store:
        workers.prepare_poll(config, store)
        stop = threading.Event()
        stopped = workers.poll_cycle(config, store, "w1", stop, on_result=lambda _o: stop.set())
        assert (stopped.new_items, stopped.full_texts, pages()) == (7, 0, [])

        later = workers.poll_cycle(config, store, "w2", threading.Event())
        assert (later.feeds, later.full_texts) == (0, 2)  # nothing due: only the pages
        untried = "SELECT count(*) FROM items WHERE full_text_status IS NULL"
        assert store.db.execute(untried).fetchone() == (0,)
        assert workers.poll_cycle(config, store, "w3", threading.Event()).full_texts == 0
    assert sorted(pages()) == sorted(set(pages())) and len(pages()) == 6  # each page once


def test_article_pages_not_fetched_within_half_the_lease_are_left_to_the_next_cycle(
    feed_server, tmp_path: Path
) -> None:
    """A cycle claimed up to 256 pages and fetched them all, however long: on one slow site,
    two at a time, that outlasted the feeds' lease (another worker could fetch the same pages)
    and held up the worker's polling for as long. It stops at half the lease; the pages left
    stay untried for the next cycles."""
    import threading

    from aggregator import workers
    from aggregator.config import load_config
    from tests.test_full_text import FLOOD, article_page

    feed_server.route("/robots.txt", body="User-agent: *\nAllow: /\n")
    for n in range(4):  # one at a time, a second each: 4 s for all
        feed_server.route(f"/news/{n}", body=article_page(f"Flood {n}", FLOOD), delay=1.0)
    items = "".join(
        f"<item><title>Flood {n}</title><link>{feed_server.url(f'/news/{n}')}</link>"
        f"<guid>g{n}</guid></item>"
        for n in range(4)
    )
    feed_server.route("/feed.xml", body=f"<rss><channel><title>W</title>{items}</channel></rss>")
    settings = "full_text: true\npoll: {per_host: 1}\nworkers: {lease_seconds: 4}"
    feeds = [feed_server.url("/feed.xml")]
    config = load_config(write_config(tmp_path, tmp_path / "news.db", feeds, settings))
    untried = "SELECT count(*) FROM items WHERE full_text_status IS NULL"
    with Store.open(config.database) as store:
        workers.prepare_poll(config, store)
        started = time.monotonic()
        cycle = workers.poll_cycle(config, store, "w1", threading.Event())
        took = time.monotonic() - started
        (left,) = store.db.execute(untried).fetchone()
        assert cycle.new_items == 4
        assert took < 4.0 and left >= 2, (took, left)  # 2 s of pages: one or two of four
        assert cycle.full_texts == 4 - left
        later = workers.poll_cycle(config, store, "w2", threading.Event())
        assert later.full_texts >= 1 and store.db.execute(untried).fetchone()[0] < left


# ------------------------------------------------------------------ a database that fails


def admin(database_url: str):
    import psycopg

    return psycopg.connect(database_url, autocommit=True)


def test_a_dropped_pooled_connection_is_replaced(postgres_database: str) -> None:
    with Store.open(fresh_postgres(postgres_database)) as store:
        assert store.count_items() == 0
        with admin(postgres_database) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        time.sleep(0.2)
        assert store.count_items() == 0  # not "terminating connection due to administrator"


def _terminate_the_waiter(watcher, holder, process, err: Path, deadline: float) -> None:
    """Wait until the worker `process` waits on the lock `holder` holds, then end its
    connection from `watcher` (the worker must still be running, within `deadline`)."""
    waiting = []
    while not waiting:
        assert process.poll() is None and time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
        waiting = watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> %s",
            (holder.info.backend_pid,),
        ).fetchall()
    watcher.execute("SELECT pg_terminate_backend(%s)", waiting[0])


def test_a_looping_worker_survives_losing_its_connection(
    tmp_path: Path, postgres_database: str
) -> None:
    database = fresh_postgres(postgres_database)
    with Store.open(database) as store, store.transaction() as db:
        db.execute("INSERT INTO leaders VALUES ('publish', 'old', '2000-01-01T00:00:00.000000Z')")
    config = write_config(tmp_path, database, [], "workers: {idle_seconds: 0.2}")
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with admin(database) as holder, admin(postgres_database) as watcher:
        holder.execute("BEGIN")  # the leader row locked: the worker's claim waits on it
        holder.execute("SELECT * FROM leaders FOR UPDATE")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "aggregator", "worker", "-c", str(config)]
        process = subprocess.Popen(
            [*command, "--role", "publish"], stdout=out.open("w"), stderr=err.open("w"), env=env
        )
        deadline = time.monotonic() + 60
        _terminate_the_waiter(watcher, holder, process, err, deadline)  # mid-statement
        holder.execute("ROLLBACK")
    while "publish: 0 stories" not in out.read_text():
        assert process.poll() is None and time.monotonic() < deadline, err.read_text()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, err.read_text()
    assert "lost the database" in err.read_text() and "retrying" in err.read_text()
    assert "Traceback" not in err.read_text()


def test_a_connection_lost_while_a_worker_starts(tmp_path: Path, postgres_database: str) -> None:
    """Lost while the worker prepared its feeds (before its loop), the connection ended even a
    looping worker, with the hint for a permission error ("give the database user the rights
    it needs"). A looping worker retries; a --once one says the connection was lost."""
    database = fresh_postgres(postgres_database)
    with Store.open(database):
        pass  # the schema exists: the worker's first wait is on the hosts table below
    config = write_config(tmp_path, database, [], "workers: {idle_seconds: 0.2}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "aggregator", "worker", "-c", str(config), "--role", "poll"]
    for once in (False, True):
        err = tmp_path / f"err-{once}.log"
        with admin(database) as holder, admin(postgres_database) as watcher:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE hosts IN ACCESS EXCLUSIVE MODE")
            process = subprocess.Popen(
                command + ["--once"] * once,
                stdout=subprocess.DEVNULL,
                stderr=err.open("w"),
                env=env,
            )
            deadline = time.monotonic() + 60
            _terminate_the_waiter(watcher, holder, process, err, deadline)
            holder.execute("ROLLBACK")
        if once:
            assert process.wait(timeout=30) == 1
            last = err.read_text().strip().splitlines()[-1]  # (after psycopg_pool's warning)
            assert last.startswith("aggregator: ") and "lost the connection" in last, last
        else:
            while "retrying" not in err.read_text():
                assert process.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, err.read_text()
            assert "lost the database" in err.read_text()
        assert "rights" not in err.read_text() and "Traceback" not in err.read_text()


def test_only_a_lost_connection_is_called_lost(postgres_database: str) -> None:
    """Every psycopg OperationalError was taken for a lost connection: a deadlock, a
    cancelled statement, out of shared memory or a full disk said "lost the connection to the
    database: run the command again", and a looping worker retried the same batch forever."""
    import threading

    import psycopg

    from aggregator.db import is_connection_lost, is_passing

    def error_of(connection, sql: str) -> psycopg.Error:
        with pytest.raises(psycopg.Error) as raised:
            connection.execute(sql)
        return raised.value

    with admin(postgres_database) as one, admin(postgres_database) as other:
        one.execute("SET statement_timeout = 20")
        canceled = error_of(one, "SELECT pg_sleep(5)")
        one.execute("RESET statement_timeout")
        assert (canceled.sqlstate, is_connection_lost(canceled), is_passing(canceled)) == (
            "57014", False, True,
        )  # fmt: skip
        # Two transactions each waiting for the other's advisory lock: one is told so.
        for connection, key in ((one, 1), (other, 2)):
            connection.execute("BEGIN")
            connection.execute("SET LOCAL deadlock_timeout = '50ms'")
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        errors: list[psycopg.Error] = []

        def take(connection, key: int) -> None:
            try:
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            except psycopg.Error as exc:
                errors.append(exc)
            connection.execute("ROLLBACK")

        waiting = threading.Thread(target=take, args=(one, 2))
        waiting.start()
        take(other, 1)
        waiting.join(30)
        (deadlock,) = errors
        assert (deadlock.sqlstate, is_connection_lost(deadlock), is_passing(deadlock)) == (
            "40P01", False, True,
        )  # fmt: skip
        unready = error_of(one, "SELECT currval('no_such_sequence_here')")  # not a passing one
        assert (is_connection_lost(unready), is_passing(unready)) == (False, False)

        other.execute("SELECT pg_terminate_backend(%s)", (one.info.backend_pid,))
        terminated = error_of(one, "SELECT 1")
        closed = error_of(one, "SELECT 1")  # psycopg's own: the connection is closed
    assert closed.sqlstate is None
    assert [is_connection_lost(e) for e in (terminated, closed)] == [True, True]


def test_a_database_error_is_named_and_a_looping_worker_backs_off_or_stops(
    tmp_path: Path, postgres_database: str, monkeypatch
) -> None:
    """A cancelled statement is a database error, said as such (`--once`: one line, exit 1);
    a looping worker warns and tries again later, and stops, in one line, on an error that
    trying again does not cure."""
    from click.testing import CliRunner

    from aggregator import cli, workers
    from aggregator.cli import main

    database = fresh_postgres(postgres_database)
    config = write_config(tmp_path, database, [])
    monkeypatch.setattr(cli, "WORKER_RETRY_SECONDS", 0.01)
    calls: list[str] = []

    def failing_cycle(errors: list[str]):
        def poll_cycle(config, store, worker, stop, **kwargs) -> workers.PollCycle:
            calls.append(worker)
            if len(calls) > len(errors):  # enough: as SIGTERM does
                os.kill(os.getpid(), signal.SIGTERM)
                return workers.PollCycle()
            with store.transaction() as db:
                if errors[len(calls) - 1] == "timeout":
                    db.execute("SET LOCAL statement_timeout = 20")
                    db.execute("SELECT pg_sleep(5)")
                db.execute("SELECT currval(pg_get_serial_sequence('items', 'id'))")  # none yet
            return workers.PollCycle()

        return poll_cycle

    def worker(*args: str):
        return CliRunner().invoke(main, ["worker", "-c", str(config), "--role", "poll", *args])

    monkeypatch.setattr(workers, "poll_cycle", failing_cycle(["timeout"]))
    result = worker("--once")
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"aggregator: {config}:2: database: ") and "statement timeout" in line
    assert "lost" not in line

    calls.clear()
    result = worker()
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "lost" not in warnings[0], result.output
    assert "statement timeout" in warnings[0] and "retrying in 0.01 s" in warnings[0]

    calls.clear()
    monkeypatch.setattr(workers, "poll_cycle", failing_cycle(["currval"]))
    result = worker()
    assert (result.exit_code, len(calls)) == (1, 1), result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"aggregator: {config}:2: database: ") and "currval" in line


def test_a_database_refusing_the_user_is_one_line(tmp_path: Path, postgres_database: str) -> None:
    from urllib.parse import urlsplit

    from click.testing import CliRunner

    from aggregator.cli import main

    # A role of this test's own, dropped afterwards: roles are server-wide, unlike databases.
    role = f"aggregator_weak_{os.getpid()}"
    with admin(postgres_database) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN")
    try:
        parts = urlsplit(postgres_database)
        weak = parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}")
        config = write_config(tmp_path, weak.geturl(), [])  # PostgreSQL 15: no CREATE on public
        commands = [["worker", "--role", "poll"], ["worker", "--role", "publish"], ["poll"]]
        for command in commands:
            result = CliRunner().invoke(main, [*command, "-c", str(config)])
            assert result.exit_code == 1, result.output
            assert "permission denied" in result.output, result.output
            assert len(result.output.strip().splitlines()) == 1, result.output
    finally:
        with admin(postgres_database) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            connection.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_publisher_that_loses_its_lease_while_grouping_stores_nothing(
    tmp_path: Path, store_target
) -> None:
    import numpy as np

    from aggregator import workers
    from aggregator.config import load_config
    from tests.support.stored import record
    from tests.test_store import entry, outcome

    database = store_target("news")
    feed = "https://a.example/feed"  # the feed the items are recorded from
    config = load_config(write_config(tmp_path, database, [feed], "window_hours: 100000"))

    class Embedder:  # while this worker embeds, another takes the publish lease over
        model_key = "m"

        def embed(self, texts):
            with store.transaction() as db:
                db.execute("UPDATE leaders SET holder = 'other', lease_until = '9999'")
            return np.random.default_rng(0).random((len(texts), 8), np.float32)

    with Store.open(database) as store:
        record(store, outcome(feed, [entry(n) for n in range(1, 5)]), "A")
        published = workers.publish_cycle(config, store, "me", embedder=Embedder())
        assert not published.leader
        assert store.db.execute("SELECT count(*) FROM story_items").fetchone() == (0,)
        assert store.db.execute("SELECT count(*) FROM digests").fetchone() == (0,)
        assert store.meta("cluster_fingerprint") is None
    assert not (tmp_path / "site").exists()


def test_a_publish_with_nothing_new_reports_the_stories_the_site_shows(
    tmp_path: Path, store_target
) -> None:
    import numpy as np

    from aggregator import workers
    from aggregator.config import load_config
    from tests.support.stored import record
    from tests.test_store import entry, outcome

    database = store_target("news")
    feed = "https://a.example/feed"  # the feed the items are recorded from
    config = load_config(write_config(tmp_path, database, [feed], "window_hours: 100000"))

    class Embedder:  # far-apart vectors: each item a story of its own
        model_key = "m"

        def embed(self, texts):
            return np.eye(len(texts), 8, dtype=np.float32)

    with Store.open(database) as store:
        record(store, outcome(feed, [entry(n) for n in range(1, 4)]), "A")
        first = workers.publish_cycle(config, store, "me", embedder=Embedder())
        again = workers.publish_cycle(config, store, "me", embedder=Embedder())
        (stored,) = store.db.execute("SELECT count(*) FROM stories").fetchone()
    assert (first.stories, first.site_changed) == (3, True) and stored == 3
    assert (again.stories, again.site_changed) == (3, False)  # not "0 stories"


def test_a_looping_worker_follows_its_feeds_yaml(tmp_path: Path, store_target) -> None:
    """`feeds add` and `feeds remove` edit feeds.yaml; a looping worker read it once, so a
    feed added was never polled (and one removed polled on) until a restart."""
    database = store_target("news")
    with many_hosts(hosts=1, feeds=2, items=1) as server:
        first, second = server.urls
        extra = "workers: {idle_seconds: 0.2}"
        config = write_config(tmp_path, database, [first], extra)
        process = start_worker(config, "--role", "poll")
        deadline = time.monotonic() + 60
        while not server.requests[first]:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        write_config(tmp_path, database, [second], extra)
        while not server.requests[second]:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out = finish(process, timeout=30)
    assert "feeds.yaml changed: 1 feed now" in out
    with Store.open(database) as store:
        retired = dict(store.db.execute("SELECT url, retired FROM feeds").fetchall())
    assert retired == {first: 1, second: 0}


def test_sigterm_gives_back_the_claimed_feeds_not_yet_started(tmp_path: Path, store_target) -> None:
    database = store_target("news")
    with many_hosts(hosts=1, feeds=8, items=1, delay=0.5) as server:
        extra = "poll: {per_host: 1}\nworkers: {idle_seconds: 60}"
        config = write_config(tmp_path, database, server.urls, extra)
        process = start_worker(config, "--role", "poll")
        while not sum(server.requests.values()):
            assert process.poll() is None
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        finish(process, timeout=30)
        fetched_first = set(server.requests)
        assert len(fetched_first) <= 2  # the one in flight (maybe the next): not all eight
        with Store.open(database) as store:
            assert store.db.execute(
                "SELECT count(*) FROM feeds WHERE lease_until IS NOT NULL"
            ).fetchone() == (0,)
        # The rest is free at once for another worker, well before any lease runs out.
        finish(start_worker(config, "--role", "poll", "--once"))
        assert set(server.requests) == set(server.urls)
        assert max(server.requests.values()) == 1


def test_a_poll_once_where_every_feed_failed_exits_1(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from aggregator.cli import main as cli

    config = write_config(tmp_path, tmp_path / "news.db", ["http://127.0.0.1:9/feed.xml"])
    result = CliRunner().invoke(cli, ["worker", "-c", str(config), "--role", "poll", "--once"])
    assert result.exit_code == 1, result.output
    assert "poll: 1 feed (0 ok, 0 not modified, 1 failed)" in result.output
    poll = CliRunner().invoke(cli, ["poll", "-c", str(config), "--force"])
    assert poll.exit_code == 1  # the same rule


def wait_until_the_store_is_open(database: Path, process: subprocess.Popen) -> None:
    """Until a starting worker has created its SQLite store: it handles SIGTERM by then (it
    sets its handler first). A fixed sleep is not enough on a loaded machine, where a worker
    may still be importing after seconds, and a SIGTERM then kills it (exit -15)."""
    import sqlite3

    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None and time.monotonic() < deadline, process.poll()
        try:  # read-only: never creates the file itself
            with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as read:
                if read.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone():
                    return
        except sqlite3.Error:
            pass  # no file or no schema yet
        time.sleep(0.05)


def test_an_idle_looping_worker_is_quiet(tmp_path: Path) -> None:
    database = tmp_path / "news.db"
    config = write_config(tmp_path, database, [], "workers: {idle_seconds: 0.1}")
    process = start_worker(config, "--role", "poll")
    wait_until_the_store_is_open(database, process)
    time.sleep(1)  # some ten idle cycles
    process.send_signal(signal.SIGTERM)
    assert finish(process, timeout=30) == ""


def hold_sqlite_lock(database: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the SQLite file's write lock for `seconds` (returns once it
    has the lock)."""
    script = (
        "import sqlite3, sys, time\n"
        "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "connection.execute('BEGIN IMMEDIATE')\n"
        "print('held', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "connection.execute('COMMIT')\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(database), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_looping_worker_on_sqlite_waits_out_a_locked_database(
    tmp_path: Path, feed_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's "database is locked" (another process held the write lock longer than the
    busy timeout) ended a looping worker, saying to make the file writable. It warns and tries
    again, and polls once the lock is free; `--once` exits 1 in one line."""
    from click.testing import CliRunner

    from aggregator import cli, db, workers
    from aggregator.cli import main

    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    monkeypatch.setattr(cli, "WORKER_RETRY_SECONDS", 0.3)
    feed_server.route("/news.rss", body=RSS)
    database = tmp_path / "news.db"
    config = write_config(tmp_path, database, [feed_server.url("/news.rss")])
    real_cycle, cycles, holders = workers.poll_cycle, [], []

    def poll_cycle(config, store, worker, stop, **kwargs) -> workers.PollCycle:
        cycles.append(worker)
        if len(cycles) == 1:  # another process takes the lock just as the first cycle starts
            holders.append(hold_sqlite_lock(database, 2.0))
        done = real_cycle(config, store, worker, stop, **kwargs)
        if done.feeds:  # enough: as SIGTERM does
            os.kill(os.getpid(), signal.SIGTERM)
        return done

    monkeypatch.setattr(workers, "poll_cycle", poll_cycle)

    def worker(*args: str):
        cycles.clear()
        return CliRunner().invoke(main, ["worker", "-c", str(config), "--role", "poll", *args])

    result = worker()
    assert result.exit_code == 0, result.output
    warnings = result.stderr.strip().splitlines()
    assert warnings and len(cycles) == len(warnings) + 1, result.output  # one per failed try
    for line in warnings:
        assert line == (
            f"aggregator: warning: database {database} is locked: another process has held "
            "it for over 0.2 s; retrying in 0.3 s"
        )
    assert "poll: 1 feed (1 ok, 0 not modified, 0 failed); new items: 1" in result.stdout
    assert stored(database)[0] == 1

    result = worker("--once")
    assert (result.exit_code, len(cycles)) == (1, 1), result.output
    (line,) = result.output.strip().splitlines()
    assert line == (
        f"aggregator: {config}:2: database: {database} is locked: another process has held it "
        "for over 0.2 s (run the command again once that process is done)"
    )
    for holder in holders:
        assert holder.wait(timeout=10) == 0


def _stop_after_one_poll_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A looping worker in this process stops after its first poll cycle, as SIGTERM stops it."""
    from aggregator import workers

    real_cycle = workers.poll_cycle

    def poll_cycle(config, store, worker, stop, **kwargs) -> workers.PollCycle:
        done = real_cycle(config, store, worker, stop, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # one cycle is enough: stop as SIGTERM does
        return done

    monkeypatch.setattr(workers, "poll_cycle", poll_cycle)


def test_a_looping_worker_waits_for_a_sqlite_file_locked_when_it_starts(
    tmp_path: Path, feed_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the store (the schema check, a migration) while another process held the
    write lock beyond the busy timeout ended a looping worker at once, unlike the same error
    in its loop. It warns and tries again, and polls once the lock is free; it gives up in
    one line after WORKER_START_WAIT_SECONDS, and `--once` at once."""
    from click.testing import CliRunner

    from aggregator import cli, db
    from aggregator.cli import main

    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    monkeypatch.setattr(cli, "WORKER_RETRY_SECONDS", 0.3)
    feed_server.route("/news.rss", body=RSS)
    database = tmp_path / "news.db"
    config = write_config(tmp_path, database, [feed_server.url("/news.rss")])
    with Store.open(database):
        pass
    _stop_after_one_poll_cycle(monkeypatch)

    def worker(*args: str):
        return CliRunner().invoke(main, ["worker", "-c", str(config), "--role", "poll", *args])

    retrying = (
        f"aggregator: warning: database {database} is locked: another process has held it "
        "for over 0.2 s; retrying in 0.3 s"
    )
    holder = hold_sqlite_lock(database, 1.5)
    result = worker()
    assert holder.wait(timeout=10) == 0
    assert result.exit_code == 0, result.output
    warnings = result.stderr.strip().splitlines()
    assert warnings and set(warnings) == {retrying}, result.output
    assert "poll: 1 feed (1 ok, 0 not modified, 0 failed); new items: 1" in result.stdout
    assert stored(database)[0] == 1

    holder = hold_sqlite_lock(database, 1.5)
    result = worker("--once")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"aggregator: {config}:2: database: {database} is locked: another process has held it "
        "for over 0.2 s (run the command again once that process is done)"
    ]

    monkeypatch.setattr(cli, "WORKER_START_WAIT_SECONDS", 1.0)
    holder.wait(timeout=10)
    holder = hold_sqlite_lock(database, 5.0)
    started = time.monotonic()
    result = worker()
    assert time.monotonic() - started < 4  # gave up while the lock was still held
    assert holder.wait(timeout=10) == 0
    assert result.exit_code == 1, result.output
    *warnings, last = result.stderr.strip().splitlines()
    assert warnings and set(warnings) == {retrying}, result.output
    assert last == (
        f"aggregator: {config}:2: database: {database} is locked: another process has held it "
        "for over 1 s (run the command again once that process is done)"
    )


class _LateServer:
    """A TCP port that refuses connections until ``open()``, then forwards each to the server
    of ``database`` (the test's PostgreSQL) until ``close()`` drops them all: a database server that
    comes up after the worker, or goes down under it."""

    def __init__(self, database: str) -> None:
        import socket
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(database)
        self.target = (parts.hostname, parts.port or 5432)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        user = f"{parts.username}@" if parts.username else ""
        # the database's URL through this port
        self.url = urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def open(self) -> None:
        import socket
        import threading

        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def close(self) -> None:
        import socket

        if self.listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() that close() alone leaves
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets.clear()

    def _accept(self, listener) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(1)


def test_a_looping_worker_waits_for_a_postgres_server_down_when_it_starts(
    tmp_path: Path, postgres_database: str, feed_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A looping worker started while PostgreSQL was down (at boot, a restart) ended at once
    with "cannot connect", though the README says it says so and tries again; `--once` still
    ends in one line naming `database:`, and a database that does not exist is no outage."""
    import threading
    from urllib.parse import urlunsplit

    from click.testing import CliRunner

    from aggregator import cli
    from aggregator.cli import main

    monkeypatch.setattr(cli, "WORKER_RETRY_SECONDS", 0.2)
    feed_server.route("/news.rss", body=RSS)
    database = fresh_postgres(postgres_database)
    late = _LateServer(database)
    config = write_config(tmp_path, late.url, [feed_server.url("/news.rss")])
    _stop_after_one_poll_cycle(monkeypatch)

    def worker(*args: str):
        return CliRunner().invoke(main, ["worker", "-c", str(config), "--role", "poll", *args])

    once = worker("--once")
    assert once.exit_code == 1, once.output
    [line] = once.output.strip().splitlines()
    assert line.startswith(f"aggregator: {config}:2: database: cannot connect to PostgreSQL")
    assert "a looping `worker` waits for it" in line

    opening = threading.Timer(1.0, late.open)
    opening.start()
    try:
        result = worker()
    finally:
        opening.join()
        late.close()
    assert result.exit_code == 0, result.output
    warnings = result.stderr.strip().splitlines()
    assert warnings and all("cannot reach the database" in w for w in warnings), result.output
    assert "poll: 1 feed (1 ok, 0 not modified, 0 failed); new items: 1" in result.stdout
    assert stored(database)[0] == 1

    from urllib.parse import urlsplit

    missing = urlunsplit(urlsplit(database)._replace(path="/no_such_database_here"))
    config = write_config(tmp_path, missing, [feed_server.url("/news.rss")])
    started = time.monotonic()
    result = worker()
    assert result.exit_code == 1 and time.monotonic() - started < 10, result.output
    [line] = result.output.strip().splitlines()
    assert 'database "no_such_database_here" does not exist (create it' in line


def test_a_looping_worker_is_back_soon_after_its_postgres_server_is(
    tmp_path: Path, postgres_database: str
) -> None:
    """The pool that lost its server tried again 1, 2, 4, 8, 16 s apart: a worker came back
    half a minute after the server did, and psycopg_pool printed two lines at each try. It
    opens a new pool at its next try, and says once what it lost."""

    database = fresh_postgres(postgres_database)
    with Store.open(database):
        pass  # the schema exists
    late = _LateServer(database)
    config = write_config(tmp_path, late.url, [], "workers: {idle_seconds: 0.2}")
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "aggregator", "worker", "-c", str(config), "--role", "publish"]
    late.open()
    process = subprocess.Popen(command, stdout=out.open("w"), stderr=err.open("w"), env=env)
    try:
        deadline = time.monotonic() + 60
        while out.read_text().count("publish:") < 1:
            assert process.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        late.close()
        deadline = time.monotonic() + 60  # the pool waits 30 s for a connection
        while "lost the database" not in err.read_text():
            assert process.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        time.sleep(3)  # down a while: the old pool's tries back off

        def lease() -> str:  # renewed at each publish cycle (an idle one prints nothing)
            with Store.open(database) as store:
                return store.db.execute("SELECT lease_until FROM leaders").fetchone()[0]

        before = lease()
        late.open()
        back = time.monotonic()
        while lease() == before:
            assert process.poll() is None and time.monotonic() - back < 15, err.read_text()
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        late.close()
    assert code == 0, err.read_text()
    assert "error connecting in" not in err.read_text()  # psycopg_pool's own, at each try
    assert "Traceback" not in err.read_text()


def test_a_worker_creating_a_sqlite_file_another_process_is_writing_waits_for_it(
    tmp_path: Path, feed_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new SQLite file is switched to WAL mode: its header read, then written. Another
    process taking the write lock in between (another worker creating the same file: workers
    started together) made SQLite answer "database is locked" at once, not after the busy
    timeout, so one of four `--once` workers started at one moment exited 1, saying the file
    was held for over 30 s. The switch waits for the lock as any statement does now, up to the
    busy timeout."""
    from click.testing import CliRunner

    from aggregator import db
    from aggregator.cli import main

    feed_server.route("/news.rss", body=RSS)
    database = tmp_path / "news.db"
    config = write_config(tmp_path, database, [feed_server.url("/news.rss")])

    def worker_once():
        return CliRunner().invoke(main, ["worker", "-c", str(config), "--role", "poll", "--once"])

    holder = hold_sqlite_lock(database, 2.0)  # the file is new: empty, in rollback mode
    result = worker_once()
    assert holder.wait(timeout=10) == 0
    assert result.exit_code == 0, result.output
    assert "poll: 1 feed (1 ok, 0 not modified, 0 failed); new items: 1" in result.output
    assert stored(database)[0] == 1

    # The wait is SQLite's busy timeout, as for any other statement: then one line, exit 1.
    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.5)
    other = tmp_path / "other"
    other.mkdir()
    database = other / "news.db"
    config = write_config(other, database, [feed_server.url("/news.rss")])
    holder = hold_sqlite_lock(database, 60)
    started = time.monotonic()
    result = worker_once()
    waited = time.monotonic() - started
    holder.kill()
    holder.wait(timeout=10)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"aggregator: {config}:2: database: {database} is locked: another process has held it "
        "for over 0.5 s (run the command again once that process is done)"
    ]
    assert 0.5 <= waited < 30, waited  # waited out the busy timeout, not the holder


def test_commands_on_a_locked_sqlite_file_fail_in_one_line(
    tmp_path: Path, feed_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """poll, cluster and run meeting a file another process holds locked, when they open it
    or later (at their first write), end in one line and exit 1, not in a traceback."""
    from click.testing import CliRunner

    from aggregator import db
    from aggregator.cli import main

    monkeypatch.setattr(db, "SQLITE_BUSY_SECONDS", 0.2)
    feed_server.route("/news.rss", body=RSS)
    database = tmp_path / "news.db"
    config = write_config(tmp_path, database, [feed_server.url("/news.rss")])
    finish(start_worker(config, "--role", "poll", "--once"))  # an item for cluster to group
    says = (
        f"aggregator: {config}:2: database: {database} is locked: another process has held it "
        "for over 0.2 s (run the command again once that process is done)"
    )
    real_migrate, holders = Store._migrate, []

    def migrate_then_lose_the_lock(store: Store) -> None:
        real_migrate(store)
        holders.append(hold_sqlite_lock(database, 60))

    for command in ("poll", "cluster", "run"):
        for when in ("at open", "after open"):
            if when == "at open":
                holders.append(hold_sqlite_lock(database, 60))
            else:
                monkeypatch.setattr(Store, "_migrate", migrate_then_lose_the_lock)
            result = CliRunner().invoke(main, [command, "--force", "-c", str(config)])
            monkeypatch.setattr(Store, "_migrate", real_migrate)
            for holder in holders:
                holder.kill()
                holder.wait(timeout=10)
            holders.clear()
            assert (result.exit_code, result.output.strip()) == (1, says), (command, when)


def test_only_a_busy_sqlite_file_is_an_error_that_may_pass(tmp_path: Path) -> None:
    """Other SQLite errors (a read-only file, a missing table) still end a looping worker."""
    import sqlite3

    from aggregator.db import is_passing, is_sqlite_busy

    def error_of(connection: sqlite3.Connection, sql: str) -> sqlite3.Error:
        with pytest.raises(sqlite3.Error) as raised:
            connection.execute(sql)
        return raised.value

    database = tmp_path / "news.db"
    with Store.open(database):
        pass
    holder = hold_sqlite_lock(database, 0.5)
    busy = error_of(sqlite3.connect(database, timeout=0.05), "BEGIN IMMEDIATE")
    assert holder.wait(timeout=10) == 0
    read_only = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    errors = [error_of(read_only, "DELETE FROM feeds"), error_of(read_only, "SELECT * FROM nope")]
    assert (is_sqlite_busy(busy), is_passing(busy)) == (True, True)
    assert [(is_sqlite_busy(e), is_passing(e)) for e in errors] == [(False, False)] * 2


def test_a_worker_keeps_its_last_good_configuration_and_its_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A feeds.yaml saved half-edited must not stop a looping worker; a new database or
    model takes a restart (the worker's store and embedder are open), the rest applies."""
    from aggregator.cli import _reloaded
    from aggregator.config import load_config

    path = write_config(tmp_path, tmp_path / "a.db", ["https://a.example/feed"])
    config = load_config(path)
    path.write_text("feeds: [\n")
    assert _reloaded(config) is config
    assert "YAML syntax error" in capsys.readouterr().err
    write_config(tmp_path, tmp_path / "b.db", ["https://a.example/feed", "https://b.example/f"])
    fresh = _reloaded(config)
    assert fresh.database == config.database and len(fresh.feeds) == 2
    assert "a new database or embedding model takes a restart" in capsys.readouterr().err
