"""Feeds on several loopback hosts (127.0.0.1..127.0.0.N), counting every request.

For tests with many worker processes: which feed was fetched how often, and the most
requests one host saw at once (politeness holds across processes, not only within one).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aggregator.demo import rss_feed

_NOW = datetime.now(UTC)


class ManyHosts:
    def __init__(self, hosts: int, feeds: int, items: int, delay: float = 0.0) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # url -> requests
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()  # host -> most requests at once
        self.bodies: dict[str, bytes] = {}
        self.servers = [self._server(f"127.0.0.{n}") for n in range(1, hosts + 1)]
        self.urls = []
        for index in range(feeds):
            host, port = self.servers[index % hosts].server_address[:2]
            path = f"/feeds/{index:04d}.xml"
            self.urls.append(f"http://{host}:{port}{path}")
            entries = [
                {"id": f"f{index}-i{n}", "title": f"Feed {index} item {n}",
                 "summary": f"Item {n} of feed {index}.", "url": f"https://example.com/{index}/{n}"}
                for n in range(items)
            ]  # fmt: skip
            self.bodies[f"{host}:{port}{path}"] = rss_feed(f"Outlet {index}", entries, _NOW)

    def _server(self, address: str) -> ThreadingHTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = f"{self.server.server_address[0]}:{self.server.server_address[1]}"
                owner._enter(host, f"http://{host}{self.path}")
                try:
                    time.sleep(owner.delay)
                    body = owner.bodies.get(host + self.path)
                    if body is None:
                        self.send_error(404)
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    owner._leave(host)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((address, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def _enter(self, host: str, url: str) -> None:
        with self.lock:
            self.requests[url] += 1
            self.in_flight[host] += 1
            self.max_in_flight[host] = max(self.max_in_flight[host], self.in_flight[host])

    def _leave(self, host: str) -> None:
        with self.lock:
            self.in_flight[host] -= 1

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@contextmanager
def many_hosts(hosts: int, feeds: int, items: int, delay: float = 0.0) -> Iterator[ManyHosts]:
    server = ManyHosts(hosts, feeds, items, delay)
    try:
        yield server
    finally:
        server.close()
