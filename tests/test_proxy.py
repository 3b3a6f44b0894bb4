"""HTTP_PROXY and friends: honoured although the poller uses its own guarded transport, with the
pre-request private-address check kept. Everything stays on loopback: the proxy is a tiny
forwarding proxy on 127.0.0.1 that sends every request to the test's feed server, whatever
host the URL names, and counts what it forwarded."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from aggregator.models import FeedState
from aggregator.poller import PollOptions, environment_proxies, poll
from tests.support import feedserver
from tests.support.feedserver import FeedServer

feed_server = feedserver.feed_server

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RSS = b"<rss version='2.0'><channel><title>Proxied</title><item><title>A</title></item></channel></rss>"
PUBLIC = "93.184.215.14"  # a public address for the pre-request check; never connected to


class ForwardingProxy:
    """A CONNECT-less HTTP proxy on 127.0.0.1 forwarding every request to `upstream_port`."""

    def __init__(self, upstream_port: int) -> None:
        self.requested: list[str] = []  # the absolute URLs clients asked the proxy for
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.requested.append(self.path)
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=5)
                upstream.request("GET", urlsplit(self.path).path or "/")
                answer = upstream.getresponse()
                body = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type") or "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                upstream.close()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(feed_server: FeedServer) -> Iterator[ForwardingProxy]:
    running = ForwardingProxy(feed_server.port)
    yield running
    running.close()


def resolver_giving(address: str):
    """The pre-request check's lookup gets `address`; any later lookup (a direct connection
    opening, which must not happen through a proxy) gets loopback, which the guarded
    connection refuses before connecting: nothing ever dials `address`."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return [address] if len(calls) == 1 else ["127.0.0.1"]

    return resolve


def options(address: str) -> PollOptions:
    return PollOptions(resolver=resolver_giving(address), parse_processes=0, total_timeout=5)


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_http_proxy_is_used_for_feeds(
    feed_server: FeedServer, proxy: ForwardingProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    feed_server.route("/rss", body=RSS, headers={"Content-Type": "application/rss+xml"})
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
    url = "http://news.example/rss"  # resolved (by the fake) to a public address, never dialled
    (outcome,) = poll([FeedState(url=url, fetch_url=url)], now=NOW, options=options(PUBLIC))
    assert outcome.status == "ok", outcome.error
    assert outcome.feed is not None and outcome.feed.title == "Proxied"
    assert proxy.requested == [url]


def test_through_a_proxy_a_private_address_is_still_refused_before_any_request(
    feed_server: FeedServer, proxy: ForwardingProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
    url = "http://intranet.example/rss"
    (outcome,) = poll([FeedState(url=url, fetch_url=url)], now=NOW, options=options("10.0.0.7"))
    assert outcome.status == "error" and outcome.refused
    assert "private address" in (outcome.error or "")
    assert proxy.requested == []


def test_no_proxy_hosts_go_direct(
    feed_server: FeedServer, proxy: ForwardingProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    feed_server.route("/rss", body=RSS, headers={"Content-Type": "application/rss+xml"})
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
    clean_proxy_env.setenv("NO_PROXY", "localhost,127.0.0.1")
    url = feed_server.url("/rss")
    state = FeedState(url=url, fetch_url=url, allow_private=True)
    (outcome,) = poll([state], now=NOW, options=options("127.0.0.1"))
    assert outcome.status == "ok", outcome.error
    assert proxy.requested == []
    assert len(feed_server.requests) == 1


def test_trust_env_off_ignores_the_proxy(
    feed_server: FeedServer, proxy: ForwardingProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    feed_server.route("/rss", body=RSS, headers={"Content-Type": "application/rss+xml"})
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
    url = feed_server.url("/rss")
    state = FeedState(url=url, fetch_url=url, allow_private=True)
    opts = PollOptions(parse_processes=0, total_timeout=5, trust_env=False)
    (outcome,) = poll([state], now=NOW, options=opts)
    assert outcome.status == "ok", outcome.error
    assert proxy.requested == []


def test_environment_proxies_reads_no_proxy_as_curl_does(
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    clean_proxy_env.setenv("HTTPS_PROXY", "proxy.internal:3128")
    clean_proxy_env.setenv("NO_PROXY", ".corp.example, ::1,localhost,10.1.2.3")
    assert environment_proxies() == {
        "https://": "http://proxy.internal:3128",
        "all://*.corp.example": None,
        "all://[::1]": None,
        "all://localhost": None,
        "all://10.1.2.3": None,
    }
    clean_proxy_env.setenv("NO_PROXY", "*")
    assert environment_proxies() == {}
