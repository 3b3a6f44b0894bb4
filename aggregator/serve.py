"""Preview the built site over HTTP on this machine (not meant for production hosting)."""

from __future__ import annotations

import contextlib
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
)


class _PreviewHandler(SimpleHTTPRequestHandler):
    """Static files with strict headers."""

    extensions_map = {  # noqa: RUF012 - class attribute the base class reads
        **SimpleHTTPRequestHandler.extensions_map,
        ".xml": "application/xml",
        ".json": "application/json",
        ".css": "text/css; charset=utf-8",
        ".html": "text/html; charset=utf-8",
    }

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        # The site ships no scripts: forbid them outright, as a static host should too.
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


def make_server(output: Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server for `output`, not yet running (port 0 picks a free port)."""
    handler = functools.partial(_PreviewHandler, directory=str(Path(output).resolve()))
    return ThreadingHTTPServer((host, port), handler)


def serve(output: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `output` until Ctrl-C (the CLI prints the address)."""
    # Ctrl-C is the normal way to stop, not an error.
    with make_server(output, host, port) as server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
