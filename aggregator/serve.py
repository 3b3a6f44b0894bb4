"""Preview the built site over HTTP on this machine (not meant for production hosting).

Only regular files inside the output folder are served: a path whose real location (every
symlink followed) is outside it is 404, as is a folder without index.html (no listings) and a
hidden file (a name starting with ".").
"""

from __future__ import annotations

import contextlib
import functools
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

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

    _served: Path  # what send_head vetted for this request, read back by translate_path

    def send_head(self) -> BinaryIO | None:
        served = self._vetted_path()
        if served is None:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        self._served = served
        return super().send_head()  # headers, If-Modified-Since, the redirect to "folder/"

    def translate_path(self, path: str) -> str:
        # The base class's send_head asks for the file here: only ever the one vetted above.
        return str(self._served)

    def list_directory(self, path: str | Path) -> None:
        # Unreachable through send_head (a folder is served by its index.html); never a listing.
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")

    def _vetted_path(self) -> Path | None:
        """The real path the request may get: a regular file inside the served folder (a
        folder's own index.html for "folder/"), or a folder inside it asked for without its
        slash (the base class redirects to "folder/"); None for anything else."""
        root = Path(self.directory)  # resolved by make_server
        url_path = urlsplit(self.path).path
        try:
            # The base class's mapping drops "..", a query and a fragment; resolve() then
            # follows every symlink on the way, so a link out of the folder lands outside it.
            real = Path(super().translate_path(self.path)).resolve()
            if real.is_dir() and url_path.endswith("/"):
                real = (real / "index.html").resolve()
            elif real.is_dir():
                return real if real.is_relative_to(root) else None
            elif url_path.endswith("/"):  # "page.html/": relative links would break
                return None
            is_file = real.is_file()  # not a folder, FIFO or device
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long, a link loop
            return None
        if not is_file or not real.is_relative_to(root):
            return None
        # hidden files (the build's manifest, a user's .git or .env) are no part of the site;
        # .well-known/ is (security.txt, site.static may hold it): static hosts serve it
        parts = real.relative_to(root).parts
        hidden = any(p.startswith(".") for p in (parts[1:] if parts[0] == ".well-known" else parts))
        return None if hidden else real

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
