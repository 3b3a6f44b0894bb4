"""The polling policy end to end (feeds.yaml -> pipeline.poll -> store -> `feeds status`), on a
real server on loopback: our own refusals get no backoff, a fixed entry is due at once, a floor
keeps the pace polite, `poll --force URL` forces chosen feeds, and nothing tracks us."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpcore
import httpx
import pytest
from click.testing import CliRunner

import aggregator.store
from aggregator.cli import main
from aggregator.config import ConfigError, FeedConfig, load_config
from aggregator.feeds_cli import feeds
from aggregator.models import FeedState
from aggregator.netguard import GuardedBackend, PrivateAddressError, is_allowed
from aggregator.pipeline import FINGERPRINT_VERSION, config_changes, feed_fingerprint, poll
from aggregator.poller import AddressGuard, FetchError, Hop, PollOptions, follow_redirects
from aggregator.poller import poll as poll_http
from aggregator.store import Store
from tests.support import feedserver
from tests.support.databases import older_database
from tests.support.feedserver import FeedServer, RecordedRequest, Reply

feed_server = feedserver.feed_server

NOW = datetime.now(UTC).replace(microsecond=0)  # `feeds status` reads the real clock
RSS = (
    "<rss version='2.0'><channel><title>Local news</title>"
    "<item><title>Council votes on the bridge</title><link>/a/1</link><guid>1</guid></item>"
    "</channel></rss>"
)
VALIDATED = {"Content-Type": "application/rss+xml", "ETag": '"v1"'}


def write_config(tmp_path: Path, feeds_yaml: str, extra: str = "") -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(f"database: agg.db\n{extra}feeds:\n{feeds_yaml}", encoding="utf-8")
    return path


def run_poll(path: Path, now: datetime, **kwargs: object):
    config = load_config(path)
    with Store.open(config.database) as store:
        summary = poll(config, store, now=now, **kwargs)  # type: ignore[arg-type]
        states = {s.url: s for s in store.feed_states(config.feeds)}
    return summary, states


def status_json(path: Path) -> dict[str, dict]:
    result = CliRunner().invoke(feeds, ["status", "-c", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return {row["url"]: row for row in json.loads(result.output)}


# ---------------------------------------------------------------- our refusals


def test_a_private_address_refusal_has_no_backoff_and_the_fix_takes_at_once(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.route("/rss", body=RSS, headers=VALIDATED)
    url = feed_server.url("/rss")
    path = write_config(tmp_path, f"  - url: {url}\n")

    summary, states = run_poll(path, NOW)
    assert summary.feeds_failed == 1
    assert "allow_private" in summary.errors[0][1]
    assert states[url].consecutive_errors == 0  # not a server failure
    assert feed_server.requests == []
    row = status_json(path)[url]
    assert row["not_due_because"].startswith("waiting for a config fix until")

    path.write_text(path.read_text().replace(f"{url}\n", f"{url}\n    allow_private: true\n"))
    assert status_json(path)[url]["not_due_because"] == "due at next run (entry changed)"
    summary, states = run_poll(path, NOW + timedelta(minutes=1))
    assert (summary.feeds_ok, summary.new_items) == (1, 1)
    assert len(feed_server.requests) == 1
    assert status_json(path)[url]["not_due_because"].startswith("minimum interval until")


def test_a_changed_entry_clears_our_backoff_but_not_the_servers_retry_after(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.route("/broken", status=500)
    feed_server.route("/busy", status=503, headers={"Retry-After": "7200"})
    broken, busy = feed_server.url("/broken"), feed_server.url("/busy")
    entries = f"  - url: {broken}\n  - url: {busy}\n"
    path = write_config(tmp_path, entries, "allow_private: true\n")

    _, states = run_poll(path, NOW)
    assert states[broken].consecutive_errors == 1
    rows = status_json(path)
    assert rows[broken]["not_due_because"].startswith("backoff after 1 error until")
    assert rows[busy]["not_due_because"].startswith("server's Retry-After until")
    run_poll(path, NOW + timedelta(minutes=5))
    assert len(feed_server.requests) == 2  # both wait

    # As if both entries had been fixed since: the stored fingerprints are those of older ones.
    with sqlite3.connect(tmp_path / "agg.db") as db:
        db.execute("UPDATE feeds SET config_hash = ?", (FINGERPRINT_VERSION + "earlier",))
    rows = status_json(path)
    assert rows[broken]["not_due_because"] == "due at next run (entry changed)"
    assert rows[busy]["not_due_because"].startswith("server's Retry-After until")
    _, states = run_poll(path, NOW + timedelta(minutes=10))
    assert [r.route for r in feed_server.requests[2:]] == ["/broken"]  # due now
    assert states[broken].consecutive_errors == 1  # counted afresh from the change
    assert states[busy].next_due == NOW + timedelta(hours=2)  # the server's word stands


def test_poll_force_of_all_feeds_keeps_a_servers_retry_after(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`poll --force` asked a server that had answered 429 "Retry-After: 7200" again at once,
    each time; it still does when the feed is named."""
    feed_server.route("/busy", status=429, headers={"Retry-After": "7200"})
    feed_server.route("/fine", body=RSS, headers=VALIDATED)
    busy, fine = feed_server.url("/busy"), feed_server.url("/fine")
    path = write_config(tmp_path, f"  - url: {busy}\n  - url: {fine}\n", "allow_private: true\n")
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, ["poll", "-c", str(path), *args], catch_exceptions=False)

    cli()
    assert sorted(r.route for r in feed_server.requests) == ["/busy", "/fine"]
    cli("--force")
    cli("--force")
    assert [r.route for r in feed_server.requests[2:]] == ["/fine", "/fine"]
    cli("--force", busy)
    assert [r.route for r in feed_server.requests[4:]] == ["/busy"]


def test_poll_force_fetches_only_the_named_feeds(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.route("/one", body=RSS, headers=VALIDATED)
    feed_server.route("/two", body=RSS, headers=VALIDATED)
    one, two = feed_server.url("/one"), feed_server.url("/two")
    path = write_config(tmp_path, f"  - url: {one}\n  - url: {two}\n    name: Two\n")
    path.write_text("allow_private: true\n" + path.read_text())
    runner = CliRunner()

    def cli(*args: str):
        return runner.invoke(main, ["poll", "-c", str(path), *args], catch_exceptions=False)

    assert cli().exit_code == 0
    assert len(feed_server.requests) == 2
    assert "new items: 0" in cli().output  # the minimum interval holds both back
    assert len(feed_server.requests) == 2
    assert cli("--force", "Two").exit_code == 0
    assert [r.route for r in feed_server.requests[2:]] == ["/two"]
    assert cli("--force", one.replace("127.0.0.1", "LOCALHOST")).exit_code == 0
    assert [r.route for r in feed_server.requests[3:]] == ["/one"]  # however it is spelled
    unknown = cli("--force", "https://nowhere.example/rss")
    assert unknown.exit_code == 2
    assert "is not a feed in" in unknown.output


# ---------------------------------------------------------------- the floor


@pytest.mark.parametrize(
    ("headers", "extra", "entry", "skipped_at", "due_at", "reason"),
    [
        (VALIDATED, "", "", 30, 60, "minimum interval"),
        ({"Content-Type": "application/rss+xml"}, "", "", 180, 240, "without ETag"),
        (VALIDATED, "poll:\n  min_interval_minutes: 120\n", "", 90, 120, "minimum interval"),
        (VALIDATED, "", "    min_interval_minutes: 30\n", 20, 30, "minimum interval"),
        # a feed's own floor does not lower the one for feeds without validators
        ({}, "", "    min_interval_minutes: 15\n", 180, 240, "without ETag"),
        ({}, "", "    min_interval_minutes: 300\n", 240, 300, "minimum interval"),
        ({**VALIDATED, "Cache-Control": "max-age=7200"}, "", "", 90, 120, "Cache-Control"),
    ],
)
def test_the_floor_keeps_a_feed_away_and_an_hourly_cron_still_finds_it_due(
    feed_server: FeedServer,
    tmp_path: Path,
    headers: dict[str, str],
    extra: str,
    entry: str,
    skipped_at: int,
    due_at: int,
    reason: str,
) -> None:
    feed_server.route("/rss", body=RSS, headers=headers)
    url = feed_server.url("/rss")
    path = write_config(tmp_path, f"  - url: {url}\n{entry}", "allow_private: true\n" + extra)

    run_poll(path, NOW)
    assert reason in status_json(path)[url]["not_due_because"]
    run_poll(path, NOW + timedelta(minutes=skipped_at))
    assert len(feed_server.requests) == 1
    run_poll(path, NOW + timedelta(minutes=due_at, seconds=-2))  # a cron running a bit early
    assert len(feed_server.requests) == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("poll:\n  min_interval_minutes: 5\nfeeds: []\n", "poll.min_interval_minutes"),
        (
            "feeds:\n  - url: https://a.example/rss\n    min_interval_minutes: 10\n",
            "feeds[0].min_interval_minutes",
        ),
        ("poll:\n  unconditional_interval_minutes: 1\nfeeds: []\n", "at least 15"),
    ],
)
def test_a_floor_below_15_minutes_is_a_config_error(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="poll --force") as error:
        load_config(path)
    assert words in str(error.value) and "\n" not in str(error.value)


# ---------------------------------------------------------------- conditional requests


def test_validators_a_304_brings_are_sent_next_time(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """A server may rotate its ETag on a 304 (RFC 9110 8.8.3, RFC 9111 4.3.4)."""

    def rotating(request: RecordedRequest) -> Reply:
        if request.headers.get("If-None-Match") in ('"v1"', '"v2"'):
            return Reply(304, headers={"ETag": '"v2"'})
        return Reply(200, body=RSS, headers=VALIDATED)

    feed_server.route("/rss", handler=rotating)
    url = feed_server.url("/rss")
    path = write_config(tmp_path, f"  - url: {url}\n", "allow_private: true\n")

    for hours in (0, 2, 4):
        run_poll(path, NOW + timedelta(hours=hours))

    sent = [r.headers.get("If-None-Match") for r in feed_server.requests]
    assert sent == [None, '"v1"', '"v2"']


def test_a_304_without_cache_control_keeps_the_max_age_of_the_last_200(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """RFC 9111 4.3.4: a 304's stored headers stand where it sends none. A 200 with
    "max-age=10800" and then bare 304s were polled hourly (three times what the server asked);
    a 304 that brings its own max-age replaces it, and a 200 without one forgets it."""
    state = {"max_age": "max-age=10800"}

    def server(request: RecordedRequest) -> Reply:
        if request.headers.get("If-None-Match") == '"v1"':
            own = {"Cache-Control": state["max_age"]} if state.get("on_304") else {}
            return Reply(304, headers=own)
        return Reply(200, body=RSS, headers={**VALIDATED, "Cache-Control": state["max_age"]})

    feed_server.route("/rss", handler=server)
    url = feed_server.url("/rss")
    path = write_config(tmp_path, f"  - url: {url}\n", "allow_private: true\n")
    _, states = run_poll(path, NOW)
    assert states[url].next_due == NOW + timedelta(hours=2, minutes=55)
    later = NOW + timedelta(hours=3)
    _, states = run_poll(path, later)
    assert [r.headers.get("If-None-Match") for r in feed_server.requests] == [None, '"v1"']
    assert states[url].next_due == later + timedelta(hours=2, minutes=55)  # not the hour
    assert status_json(path)[url]["not_due_because"].startswith("server's Cache-Control")
    state.update(max_age="max-age=21600", on_304=True)  # a 304's own max-age replaces it
    _, states = run_poll(path, later + timedelta(hours=3))
    assert states[url].next_due == later + timedelta(hours=8, minutes=55)


def test_a_feeds_ttl_outlasts_its_304s(feed_server: FeedServer, tmp_path: Path) -> None:
    """The README's promise: the next poll is the longest of the hints, RSS <ttl> included,
    also after a 304, which has no body to read it from (the store keeps the last 200's)."""
    daily = RSS.replace("<item>", "<ttl>1440</ttl><item>", 1)

    def handler(request: RecordedRequest) -> Reply:
        if request.headers.get("If-None-Match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, body=daily, headers=VALIDATED)

    feed_server.route("/rss", handler=handler)
    url = feed_server.url("/rss")
    path = write_config(tmp_path, f"  - url: {url}\n", "allow_private: true\n")

    _, states = run_poll(path, NOW - timedelta(days=1))
    assert states[url].ttl_minutes == 1440
    summary, states = run_poll(path, NOW)

    assert summary.feeds_not_modified == 1
    assert states[url].next_due == NOW + timedelta(hours=23, minutes=55)  # not the hourly floor
    assert status_json(path)[url]["not_due_because"].startswith("feed's <ttl> until")
    assert [r.headers.get("If-None-Match") for r in feed_server.requests] == [None, '"v1"']


def test_a_failing_feed_is_asked_no_more_often_than_a_working_one(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The first retry after an error came at the backoff's 22-30 minutes, sooner than the
    feed's own interval (or its <ttl>) would have polled it after a success."""
    feed_server.route("/daily", body=RSS.replace("<channel>", "<channel><ttl>720</ttl>"))
    feed_server.route("/slow", body=RSS, headers=VALIDATED)
    daily, slow = feed_server.url("/daily"), feed_server.url("/slow")
    entries = f"  - url: {daily}\n  - url: {slow}\n    min_interval_minutes: 240\n"
    path = write_config(tmp_path, entries, "allow_private: true\n")
    run_poll(path, NOW)
    feed_server.route("/daily", status=500)
    feed_server.route("/slow", status=500)
    _, states = run_poll(path, NOW + timedelta(days=1))
    assert states[daily].consecutive_errors == states[slow].consecutive_errors == 1
    assert states[daily].next_due >= NOW + timedelta(days=1, hours=11, minutes=55)
    assert states[slow].next_due >= NOW + timedelta(days=1, hours=3, minutes=55)
    assert status_json(path)[slow]["not_due_because"].startswith("backoff after 1 error")


# ---------------------------------------------------------------- gone feeds


def test_one_broken_feed_due_alone_is_no_failed_run(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """`run` exited 1 ("every feed failed") when the broken feed's backoff made it due alone
    between the working feed's polls: cron reported a failure with every other feed fine.
    Every feed failing, none waiting with a good last poll, still is one."""
    from aggregator.cli import _poll_failed

    # the working feed asks for three hours: the broken one's backoff comes first
    feed_server.route("/ok.rss", body=RSS, headers={**VALIDATED, "Cache-Control": "max-age=10800"})
    feed_server.route("/broken.rss", status=404)
    feeds = "".join(f"  - url: {feed_server.url(p)}\n" for p in ("/ok.rss", "/broken.rss"))
    path = write_config(tmp_path, feeds, "allow_private: true\n")
    first, states = run_poll(path, NOW - timedelta(hours=3))
    assert (first.feeds_ok, first.feeds_failed) == (1, 1) and not _poll_failed(first)
    broken = states[feed_server.url("/broken.rss")].next_due
    ok_due = states[feed_server.url("/ok.rss")].next_due
    assert broken < ok_due  # the broken one comes back first
    alone, _ = run_poll(path, broken)
    assert (alone.feeds_ok, alone.feeds_failed, alone.feeds_resting) == (0, 1, 1)
    assert not _poll_failed(alone)
    feed_server.route("/ok.rss", status=500)
    both, _ = run_poll(path, NOW + timedelta(days=2))
    assert (both.feeds_failed, both.feeds_resting) == (2, 0) and _poll_failed(both)


def test_a_gone_feed_is_left_alone_by_later_runs(feed_server: FeedServer, tmp_path: Path) -> None:
    """A 410 is recorded once. Later runs, forced or not, neither fetch the feed nor count it
    failed (a config of only gone feeds made every `poll` exit 1), and its record stays as
    `feeds status` shows it: gone, HTTP 410, checked when it said so."""
    feed_server.route("/gone", status=410)
    url = feed_server.url("/gone")
    path = write_config(tmp_path, f"  - url: {url}\n", "allow_private: true\n")

    def stored_record() -> tuple:
        with sqlite3.connect(tmp_path / "agg.db") as db:
            return db.execute(
                "SELECT last_status, http_status, last_checked, last_error, gone FROM feeds"
            ).fetchone()

    first, _ = run_poll(path, NOW - timedelta(hours=2))
    assert first.feeds_failed == 1  # the 410 itself is news
    record = stored_record()
    assert record[:2] == ("gone", 410)

    later, _ = run_poll(path, NOW)
    assert (later.feeds_failed, later.errors) == (0, ())
    forced = CliRunner().invoke(main, ["poll", "-c", str(path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "gone (HTTP 410): no longer polled" in forced.output
    assert "0 failed" in forced.output

    assert len(feed_server.requests) == 1
    assert stored_record() == record
    row = status_json(path)[url]
    assert (row["gone"], row["last_status"]) == (True, "gone")
    assert row["not_due_because"] == "gone (HTTP 410): never polled again"


# ---------------------------------------------------------------- nothing tracks us


def test_no_cookies_or_referrer_are_sent(feed_server: FeedServer) -> None:
    def tracking(request: RecordedRequest) -> Reply:
        if request.route == "/start":
            return Reply(302, headers={"Location": "/rss", "Set-Cookie": "id=1; Path=/"})
        return Reply(200, body=RSS, headers={"Set-Cookie": "seen=1; Path=/"})

    feed_server.route("/start", handler=tracking)
    feed_server.route("/rss", handler=tracking)
    states = [
        FeedState(url=feed_server.url(p), fetch_url=feed_server.url(p), allow_private=True)
        for p in ("/start", "/rss", "/rss?again")
    ]
    options = PollOptions(max_per_host=1, parse_processes=0, trust_env=False)
    poll_http(states, now=NOW, options=options)

    assert len(feed_server.requests) == 4
    for request in feed_server.requests:
        assert "Cookie" not in request.headers
        assert "Referer" not in request.headers


# ---------------------------------------------------------------- the connect-time guard


def test_the_guard_checks_the_address_actually_connected_to(feed_server: FeedServer) -> None:
    """DNS rebinding: the name is public when checked, loopback when connected. The second
    lookup is the one the connection uses, so it is refused and nothing reaches the server."""
    feed_server.route("/rss", body=RSS)
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    url = f"http://rebind.example:{feed_server.port}/rss"
    options = PollOptions(resolver=rebinding, parse_processes=0, trust_env=False)
    (outcome,) = poll_http([FeedState(url=url, fetch_url=url)], now=NOW, options=options)

    assert outcome.status == "error"
    assert outcome.refused
    assert "127.0.0.1" in (outcome.error or "") and "allow_private" in (outcome.error or "")
    assert feed_server.requests == []


def test_the_guarded_backend_connects_only_to_checked_public_addresses(
    feed_server: FeedServer,
) -> None:
    seen: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        seen.append(host)
        return {"mixed.example": ["93.184.216.34", "10.0.0.7"]}.get(host, ["169.254.169.254"])

    backend = GuardedBackend(resolver)

    async def attempt(host: str) -> None:
        await backend.connect_tcp(host, feed_server.port, timeout=1)

    for host in ("mixed.example", "metadata.example", "127.0.0.1", "[::1]", "::ffff:127.0.0.1"):
        with pytest.raises(PrivateAddressError):
            asyncio.run(attempt(host))
    assert seen == ["mixed.example", "metadata.example"]  # literals need no lookup
    with pytest.raises(PrivateAddressError):
        asyncio.run(backend.connect_unix_socket("/run/docker.sock"))
    assert isinstance(backend, httpcore.AsyncNetworkBackend)


@pytest.mark.parametrize(
    ("address", "allowed_private", "allowed_public_only"),
    [
        ("93.184.216.34", True, True),
        ("127.0.0.1", True, False),
        ("10.1.2.3", True, False),
        ("::1", True, False),
        ("169.254.169.254", False, False),  # cloud metadata: never
        ("::ffff:169.254.169.254", False, False),
        ("fe80::1", False, False),
        ("224.0.0.1", False, False),
    ],
)
def test_allow_private_never_reaches_link_local(
    address: str, allowed_private: bool, allowed_public_only: bool
) -> None:
    parsed = ipaddress.ip_address(address)
    assert is_allowed(parsed, allow_private=True) == allowed_private
    assert is_allowed(parsed, allow_private=False) == allowed_public_only


@pytest.mark.parametrize(
    ("address", "allowed_private", "allowed_public_only"),
    [
        ("64:ff9b::7f00:1", True, False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False, False),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", True, True),  # NAT64 of 8.8.8.8: public
        ("64:ff9b:1::a00:1", True, False),  # local-use NAT64 (RFC 8215)
        ("2002:7f00:1::1", True, False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False, False),  # 6to4 of 169.254.169.254
        ("2002:808:808::1", True, True),  # 6to4 of 8.8.8.8
        ("::7f00:1", True, False),  # IPv4-compatible 127.0.0.1
        ("::a9fe:a9fe", False, False),
        ("::ffff:0:a00:1", True, False),  # SIIT 10.0.0.1
        ("::ffff:0:a9fe:a9fe", False, False),
        ("fd00:ec2::254", False, False),  # AWS IPv6 metadata service
        ("100.100.100.200", False, False),  # Alibaba Cloud metadata service
        ("::ffff:100.100.100.200", False, False),
        ("fd00:ec2::1", True, False),  # another ULA: private, allowed on request
    ],
)
def test_embedded_ipv4_and_metadata_addresses_are_judged_by_what_they_reach(
    address: str, allowed_private: bool, allowed_public_only: bool
) -> None:
    parsed = ipaddress.ip_address(address)
    assert is_allowed(parsed, allow_private=True) == allowed_private
    assert is_allowed(parsed, allow_private=False) == allowed_public_only


@pytest.mark.parametrize(
    ("answer", "allow_private", "words"),
    [
        ("64:ff9b::7f00:1", False, "private address"),
        ("2002:a9fe:a9fe::1", True, "metadata"),
        ("fd00:ec2::254", True, "metadata"),
        ("100.100.100.200", True, "metadata"),
    ],
)
def test_a_name_resolving_to_a_disguised_address_is_refused_before_connecting(
    answer: str, allow_private: bool, words: str
) -> None:
    """A fake resolver gives the address; the backend under GuardedBackend records any connect
    attempt, and none may happen."""
    attempts: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        return [answer]

    class Recording(httpcore.AsyncNetworkBackend):
        async def connect_tcp(self, host: str, port: int, *args: object, **kwargs: object):
            attempts.append(host)
            raise httpcore.ConnectError("the test never connects")

    backend = GuardedBackend(resolver, allow_private=allow_private)
    backend.inner = Recording()  # type: ignore[assignment]
    with pytest.raises(PrivateAddressError, match=words):
        asyncio.run(backend.connect_tcp("disguised.example", 80, timeout=1))
    assert attempts == []
    answer = "93.184.216.34"  # the control: an allowed address reaches the (recording) backend
    with pytest.raises(httpcore.ConnectError):
        asyncio.run(backend.connect_tcp("public.example", 80, timeout=1))
    assert attempts == ["93.184.216.34"]


def test_an_allowed_private_feed_redirecting_to_metadata_is_refused(
    feed_server: FeedServer,
) -> None:
    feed_server.redirect("/rss", "http://169.254.169.254/latest/meta-data/", status=302)
    url = feed_server.url("/rss")
    state = FeedState(url=url, fetch_url=url, allow_private=True)
    options = PollOptions(parse_processes=0, trust_env=False, total_timeout=5)
    (outcome,) = poll_http([state], now=NOW, options=options)
    assert (outcome.status, outcome.refused) == ("error", False)  # the server's doing: backoff
    assert "link-local" in (outcome.error or "")
    assert (outcome.consecutive_errors, outcome.due_reason) == (1, "backoff")


def test_a_version_1_database_keeps_its_schedule_and_backoff_after_the_upgrade(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Schema 2 adds feeds.config_hash as NULL: unknown, not changed. Read as a change, every
    feed of an upgraded database would be due at once with its backoff forgotten."""
    feed_server.route("/rss", body=RSS, headers=VALIDATED)
    url = feed_server.url("/rss")
    path = write_config(tmp_path, f"  - url: {url}\n", "allow_private: true\n")
    backoff_until = NOW + timedelta(hours=2)
    with older_database(tmp_path / "agg.db", 1) as old:
        old.execute(
            "INSERT INTO feeds (url, fetch_url, consecutive_errors, next_due, last_status) "
            "VALUES (?, ?, 3, ?, 'error')",
            (url, url, backoff_until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
        )

    summary, states = run_poll(path, NOW)

    assert (summary.feeds_ok, summary.feeds_failed) == (0, 0)
    assert feed_server.requests == []  # still in backoff
    assert (states[url].consecutive_errors, states[url].next_due) == (3, backoff_until)
    with Store.open(tmp_path / "agg.db") as store:
        assert store.meta("schema_version") == str(aggregator.store.SCHEMA_VERSION)
        assert store.feed_config_hashes()[url] == feed_fingerprint(
            load_config(path), FeedConfig(url, allow_private=True)
        )
    assert "entry changed" not in (status_json(path)[url]["not_due_because"] or "")

    run_poll(path, NOW + timedelta(minutes=5))  # the recorded fingerprint is not a change
    assert feed_server.requests == []


@pytest.mark.parametrize(
    "change",
    [
        "    full_text: true\n",
        "    min_interval_minutes: 120\n",
        "    name: Renamed\n",
    ],
)
def test_settings_that_do_not_change_the_request_keep_the_backoff(
    feed_server: FeedServer, tmp_path: Path, change: str
) -> None:
    feed_server.route("/broken", status=500)
    url = feed_server.url("/broken")
    path = write_config(tmp_path, f"  - url: {url}\n", "allow_private: true\n")
    run_poll(path, NOW)
    path.write_text(path.read_text() + change)
    _, states = run_poll(path, NOW + timedelta(minutes=5))
    assert len(feed_server.requests) == 1
    assert states[url].consecutive_errors == 1


def test_fingerprints_compare_as_unknown_changed_or_new() -> None:
    current = {"a": "f2:1", "b": "f2:2", "c": "f2:3", "d": "f2:4"}
    known = {"a": None, "b": "f2:2", "c": "f2:old", "old-format": "x", "d": "0123abcd"}
    changes = config_changes(known | {"e": "f2:5"}, current | {"new": "f2:6"})
    assert changes.unknown == {"a": "f2:1", "d": "f2:4"}
    assert changes.changed == {"c": "f2:3", "new": "f2:6"}


@pytest.mark.parametrize(
    ("address", "local"),
    [("10.0.0.7", True), ("169.254.169.254", False), ("64:ff9b::a9fe:a9fe", False)],
)
def test_a_refused_redirect_waits_for_config_only_when_allow_private_would_fix_it(
    address: str, local: bool
) -> None:
    """Moved (by the server) to a private address: allow_private fixes it (a config wait, no
    backoff). To a link-local or metadata one: nothing in feeds.yaml can, so it backs off."""
    sent: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        return {"news.example": ["93.184.216.34"]}.get(host, [address])

    async def request(url: str) -> Hop:  # nothing is fetched: the hops are scripted
        sent.append(url)
        return Hop(302, "Found", httpx.Headers({"Location": "http://moved.example/rss"}), None)

    async def walk() -> None:
        await follow_redirects(
            "http://news.example/rss",
            max_redirects=5,
            guard=AddressGuard(resolver),
            allow_private=False,
            request=request,
        )

    with pytest.raises(FetchError) as refused:
        asyncio.run(walk())
    assert refused.value.local is local
    assert sent == ["http://news.example/rss"]  # the refused hop was never requested
