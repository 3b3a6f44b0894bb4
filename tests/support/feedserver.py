"""A real HTTP server on 127.0.0.1 for tests that fetch feeds.

    from tests.support.feedserver import FeedServer, Reply, feed_server

    def test_something(feed_server):
        feed_server.route("/rss", body=RSS, headers={"Content-Type": "application/rss+xml"})
        url = feed_server.url("/rss")
        ...
        assert feed_server.requests[0].headers["User-Agent"].startswith("aggregator/")

Scripted behaviour goes through `handler`, which gets the `RecordedRequest` and returns a
`Reply` (or a `(status, headers, body)` tuple):

    def etag_handler(request):
        if request.headers.get("If-None-Match") == '"v1"':
            return Reply(304)
        return Reply(200, body=RSS, headers={"ETag": '"v1"'})

    feed_server.route("/rss", handler=etag_handler)

Unknown paths answer 404. The server counts requests in flight per Host header, so
`max_in_flight(host)` tells a test how many requests a client ran at once against one host;
`url(path, host="localhost")` gives a second host name for the same server.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

Body = bytes | str | Iterable[bytes]


@dataclass(frozen=True)
class RecordedRequest:
    """What the server saw: `headers` is case-insensitive (`httpx.Headers`)."""

    method: str
    path: str  # with the query string, as sent
    headers: httpx.Headers
    time: float  # time.monotonic() when the request arrived
    host: str  # Host header without the port

    @property
    def route(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path


@dataclass
class Reply:
    """One scripted response.

    delay: seconds to wait before sending the status line (a slow server).
    chunk_delay: send the body in `chunk_size` pieces with this pause between (a trickling server).
    abort: close the connection without answering (a broken server).
    body: bytes, str (sent as UTF-8) or an iterable of byte chunks (sent without Content-Length,
    connection closed at the end: for very large bodies that should not sit in memory).
    """

    status: int = 200
    body: Body = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float | None = None
    chunk_size: int = 64
    abort: bool = False


Handler = Callable[[RecordedRequest], "Reply | tuple"]


def _as_reply(value: Reply | tuple) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, int):
        return Reply(value)
    status, *rest = value
    headers = rest[0] if rest else {}
    body = rest[1] if len(rest) > 1 else b""
    return Reply(status, body=body, headers=headers)


class FeedServer:
    """Context manager running a ThreadingHTTPServer on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._in_flight: dict[str, int] = {}
        self._max_in_flight: dict[str, int] = {}
        self._closing = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _RequestHandler)
        self._httpd.feed_server = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping in delays
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------ public API

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str = "/", *, host: str = "127.0.0.1") -> str:
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{host}:{self.port}{path}"

    def route(
        self,
        path: str,
        *,
        status: int = 200,
        body: Body = b"",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        chunk_delay: float | None = None,
        chunk_size: int = 64,
        handler: Handler | None = None,
    ) -> None:
        """Answer `path` (without query; a route with the exact query wins) with a fixed reply,
        or with whatever `handler(request)` returns."""
        if handler is None:
            reply = Reply(
                status,
                body=body,
                headers=dict(headers or {}),
                delay=delay,
                chunk_delay=chunk_delay,
                chunk_size=chunk_size,
            )

            def handler(_request: RecordedRequest, reply: Reply = reply) -> Reply:
                return reply

        with self._lock:
            self._routes[path] = handler

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        """Shortcut: `path` redirects to `to` (a path on this server or an absolute URL)."""
        self.route(path, status=status, headers={"Location": to})

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """Requests whose path (without query) is `path`."""
        return [r for r in self.requests if r.route == path]

    def max_in_flight(self, host: str | None = None) -> int:
        """Most requests handled at the same time for `host` (or any host when None)."""
        with self._lock:
            if host is None:
                return max(self._max_in_flight.values(), default=0)
            return self._max_in_flight.get(host, 0)

    def clear(self) -> None:
        """Forget recorded requests and concurrency counts (routes stay)."""
        with self._lock:
            self._requests.clear()
            self._max_in_flight.clear()

    # ------------------------------------------------------------ used by the handler thread

    def _record(self, request: RecordedRequest) -> Handler | None:
        with self._lock:
            self._requests.append(request)
            count = self._in_flight.get(request.host, 0) + 1
            self._in_flight[request.host] = count
            self._max_in_flight[request.host] = max(self._max_in_flight.get(request.host, 0), count)
            return self._routes.get(request.path) or self._routes.get(request.route)

    def _done(self, host: str) -> None:
        with self._lock:
            self._in_flight[host] -= 1

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server is closing; False means stop."""
        return not self._closing.wait(seconds) if seconds > 0 else not self._closing.is_set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    feed_server: FeedServer

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients closing idle keep-alive connections is normal, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet in tests
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._handle()

    def _handle(self) -> None:
        owner = self.server.feed_server
        # http.server reads header bytes as Latin-1: keep them so, one character per byte
        headers = httpx.Headers([(k, v.encode("latin-1")) for k, v in self.headers.items()])
        headers.encoding = "latin-1"
        host = (headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        request = RecordedRequest(self.command, self.path, headers, time.monotonic(), host)
        handler = owner._record(request)
        finished = False

        def finish() -> None:
            # Counted out just before the response's last bytes go: a client that sends its
            # next request once it has read a whole response is never seen with both in flight
            # (counting out after the write raced with the next request's thread).
            nonlocal finished
            if not finished:
                finished = True
                owner._done(host)

        self._finish = finish
        try:
            self._answer(owner, request, handler)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            finish()

    def _answer(self, owner: FeedServer, request: RecordedRequest, handler: Handler | None) -> None:
        if handler is None:
            reply = Reply(404, body=b"not found", headers={"Content-Type": "text/plain"})
        else:
            try:
                reply = _as_reply(handler(request))
            except Exception as exc:  # a bug in a test handler must show up, not hang
                reply = Reply(500, body=f"handler error: {exc!r}".encode())
        if not owner._sleep(reply.delay) or reply.abort:
            self.close_connection = True
            return
        self._send(owner, reply)

    def _send(self, owner: FeedServer, reply: Reply) -> None:
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        self.send_response_only(reply.status)
        self.send_header("Server", "feedserver")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if "date" not in {k.lower() for k in reply.headers}:  # a test may set the server's clock
            self.send_header("Date", self.date_time_string())
        sized = isinstance(body, bytes)
        if sized and "content-length" not in {k.lower() for k in reply.headers}:
            self.send_header("Content-Length", str(len(body)))
        if not sized:
            self.send_header("Connection", "close")
            self.close_connection = True
        no_body = self.command == "HEAD" or reply.status in (204, 304) or body == b""
        if no_body:
            self._finish()
        self.end_headers()
        if no_body:
            return
        chunks = list(_chunks(body, reply)) if isinstance(body, bytes) else None
        for number, chunk in enumerate(chunks if chunks is not None else _chunks(body, reply)):
            if chunks is not None and number == len(chunks) - 1:
                self._finish()
            self.wfile.write(chunk)
            self.wfile.flush()
            if reply.chunk_delay and not owner._sleep(reply.chunk_delay):
                self.close_connection = True
                return


def _chunks(body: bytes | Iterable[bytes], reply: Reply) -> Iterator[bytes]:
    if not isinstance(body, bytes):
        yield from body
    elif reply.chunk_delay is None:
        yield body
    else:
        for start in range(0, len(body), max(1, reply.chunk_size)):
            yield body[start : start + reply.chunk_size]


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A running FeedServer, closed after the test."""
    with FeedServer() as server:
        yield server
