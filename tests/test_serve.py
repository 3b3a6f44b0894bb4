"""`aggregator serve`'s preview server, a real one on 127.0.0.1: regular files inside the
output folder only, never a folder listing, never a file a symlink leads to outside it."""

from __future__ import annotations

import contextlib
import http.client
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from aggregator.serve import make_server

SECRET = "the private key next to the site"


class Answer(NamedTuple):
    status: int
    body: str
    location: str | None


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """An output folder with a site, and a private folder beside it."""
    output, private = tmp_path / "output", tmp_path / "private"
    (output / "stories").mkdir(parents=True)
    (output / "index.html").write_text("home page")
    (output / "stories" / "index.html").write_text("stories page")
    (output / "stories" / "one.html").write_text("story one")
    (output / "empty").mkdir()
    private.mkdir()
    (private / "key.txt").write_text(SECRET)
    (private / "index.html").write_text(SECRET)
    return output, private


@pytest.fixture
def server(folders: tuple[Path, Path]) -> Iterator[tuple[str, int]]:
    preview = make_server(folders[0], port=0)
    thread = threading.Thread(target=preview.serve_forever, daemon=True)
    thread.start()
    yield preview.server_address[:2]
    preview.shutdown()
    preview.server_close()


def get(server: tuple[str, int], path: str) -> Answer:
    """One GET, redirects not followed; a server that does not answer in 5 s fails the test."""
    connection = http.client.HTTPConnection(*server, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        return Answer(response.status, body, response.getheader("Location"))
    finally:
        connection.close()


def test_a_symlink_leading_out_of_the_output_folder_is_not_found(
    folders: tuple[Path, Path], server: tuple[str, int]
) -> None:
    output, private = folders
    (output / "key.txt").symlink_to(private / "key.txt")
    (output / "elsewhere").symlink_to(private, target_is_directory=True)
    (output / "stories" / "up").symlink_to("../../private", target_is_directory=True)
    (output / "empty" / "index.html").symlink_to(private / "index.html")  # a folder's own page
    for path in ("/key.txt", "/elsewhere/key.txt", "/stories/up/key.txt", "/empty/"):
        answer = get(server, path)
        assert answer.status == 404, path
        assert SECRET not in answer.body, path
    assert get(server, "/elsewhere").status == 404  # not even a redirect to a folder outside
    (output / "latest.html").symlink_to("stories/one.html")  # one within the folder is fine
    assert get(server, "/latest.html") == Answer(200, "story one", None)


def test_a_folder_is_its_index_html_and_never_a_listing(server: tuple[str, int]) -> None:
    assert server[0] == "127.0.0.1"  # the default: a preview for this machine only
    assert get(server, "/") == Answer(200, "home page", None)
    assert get(server, "/stories/") == Answer(200, "stories page", None)
    moved = get(server, "/stories")  # relative links in the page need the slash
    assert (moved.status, moved.location) == (301, "/stories/")
    for path in ("/empty/", "/empty"):
        answer = get(server, path)
        assert answer.status in (301, 404), path
        assert "Directory listing" not in answer.body and "index.html" not in answer.body
    assert get(server, "/empty/").status == 404
    assert get(server, "/stories/one.html/").status == 404  # a file is no folder


def test_a_file_that_is_no_regular_file_is_not_found(
    folders: tuple[Path, Path], server: tuple[str, int]
) -> None:
    """A named pipe in the folder: opening it would hang the request until something writes."""
    pipe = folders[0] / "pipe.html"
    os.mkfifo(pipe)
    try:
        assert get(server, "/pipe.html").status == 404
    finally:
        # A server that did open it waits for a writer: be that writer, so its thread ends.
        with contextlib.suppress(OSError):
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))


def test_odd_paths_are_not_found(server: tuple[str, int]) -> None:
    for path in ("/%00", "/a%00.html", "/" + "a" * 5000, "/../private/key.txt", "/%2e%2e/x"):
        answer = get(server, path)  # a NUL byte failed the request with a traceback
        assert answer.status == 404, path
        assert SECRET not in answer.body, path


def test_hidden_files_are_not_found(folders: tuple[Path, Path], server: tuple[str, int]) -> None:
    """The build's manifest and anything hidden a user keeps there (a .git folder, an .env)
    are no part of the site."""
    output, _ = folders
    (output / ".aggregator-site").write_text(SECRET)
    (output / ".git").mkdir()
    (output / ".git" / "config").write_text(SECRET)
    (output / "stories" / ".env").write_text(SECRET)
    for path in ("/.aggregator-site", "/.git/config", "/.git/", "/stories/.env", "/%2egit/config"):
        answer = get(server, path)
        assert answer.status == 404, path
        assert SECRET not in answer.body, path
    assert get(server, "/stories/one.html").body == "story one"


def test_well_known_files_are_served_as_static_hosts_serve_them(
    folders: tuple[Path, Path], server: tuple[str, int]
) -> None:
    """site.static may hold .well-known/security.txt: the preview answered 404 where the
    user's host serves it. A hidden file inside it stays hidden."""
    output, _ = folders
    (output / ".well-known").mkdir()
    (output / ".well-known" / "security.txt").write_text("Contact: mailto:me@example.org\n")
    (output / ".well-known" / ".env").write_text(SECRET)
    assert get(server, "/.well-known/security.txt").status == 200
    assert get(server, "/.well-known/.env").status == 404
