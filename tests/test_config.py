"""feeds.yaml validation: every mistake names the file, the entry and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config import ConfigError, load_config

GOOD = """\
# my feeds
database: news.db
output: site
window_hours: 36
site:
  title: My news
  base_url: https://news.example.org
  timezone: Europe/Paris
model: all-MiniLM-L6-v2
email:
  to: [me@example.org]
  from: digest@example.org
  security: starttls
  password_env: SMTP_PASSWORD
feeds:
  - url: https://feeds.example.org/world.xml
    name: Example World
    tags: [world]
  - https://other.example.net/rss
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.database == (tmp_path / "news.db").resolve()
    assert config.output == (tmp_path / "site").resolve()
    assert config.window_hours == 36
    assert config.site.base_url == "https://news.example.org/"
    assert config.email.smtp_port == 587
    assert config.email.password_env == "SMTP_PASSWORD"
    assert [f.url for f in config.feeds] == [
        "https://feeds.example.org/world.xml",
        "https://other.example.net/rss",
    ]
    assert config.feeds[0].tags == ("world",)
    assert config.feeds[0].allow_private is False


def test_invisible_characters_in_a_feeds_name_are_dropped(tmp_path: Path) -> None:
    """`name: "Reu\\u200bters"` is Reuters, the name the site shows; a name of invisible
    characters only is none (the feed's own title names it, as without `name:`)."""
    text = (
        "feeds:\n"
        '  - {url: https://a.example/rss, name: "Reu\\u200bters\\u202e"}\n'
        '  - {url: https://b.example/rss, name: "\\u200b\\ufeff\\u2060"}\n'
    )
    config = load_config(write(tmp_path, text))
    assert [f.name for f in config.feeds] == ["Reuters", None]


def test_joiners_that_spell_a_name_stay_in_it(tmp_path: Path) -> None:
    """A zero-width non-joiner in a Persian name and a joiner in an emoji sequence are part of
    how it is written; beside a Latin letter a joiner only hides one and goes."""
    text = (
        "feeds:\n"
        '  - {url: https://a.example/rss, name: "\u062e\u0628\u0631\u200c\u0641\u0627\u0631\u0633"}\n'
        '  - {url: https://b.example/rss, name: "Family \U0001f468\u200d\U0001f469 News"}\n'
        '  - {url: https://c.example/rss, name: "Reu\u200dters\u200c"}\n'
    )
    config = load_config(write(tmp_path, text))
    assert [f.name for f in config.feeds] == [
        "\u062e\u0628\u0631\u200c\u0641\u0627\u0631\u0633",
        "Family \U0001f468\u200d\U0001f469 News",
        "Reuters",
    ]


def test_top_level_allow_private_applies_to_every_feed(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "allow_private: true\nfeeds:\n  - url: http://127.0.0.1/x\n")
    )
    assert all(f.allow_private for f in config.feeds)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feeds:\n  - url: https://a.example/x\n    nmae: A\n", "feeds[0]: unknown key 'nmae'"),
        ("feeds:\n  - name: A\n", "feeds[0]: missing `url:`"),
        (
            "feeds:\n  - url: https://a.example/x\n  - url: https://a.example/x\n",
            "duplicates feeds[0]",
        ),
        ("feeds:\n  - url: [unclosed\n", "YAML syntax error"),
        ("feeds:\n  - url: ftp://a.example/x\n", "is not an http(s) URL"),
        ("window_hours: soon\nfeeds: []\n", "window_hours: must be a number"),
        ("window_hours: -3\nfeeds: []\n", "must be greater than 0"),
        ("window_hours: true\nfeeds: []\n", "window_hours: must be a number"),
        ("colour: blue\nfeeds: []\n", "unknown key 'colour'"),
        ("site:\n  timezone: Mars/Olympus\nfeeds: []\n", "unknown time zone"),
        ("email:\n  to: not-an-address\nfeeds: []\n", "email.to"),
        ("email:\n  password: hunter2\nfeeds: []\n", "name an environment variable"),
        ("email:\n  security: tls\nfeeds: []\n", "email.security"),
        ("feeds:\n  - url: https://a.example/x\n    tags: 5\n", "tags: must be a list"),
        ("feeds:\n  - url: https://a.example/x\n    allow_private: yes please\n", "allow_private"),
        ("embedding:\n  backend: gpu\nfeeds: []\n", "embedding.backend"),
        ("poll:\n  per_host: 0\nfeeds: []\n", "poll.per_host"),
        ("feeds:\n  - https://a.example/" + "x" * 2100 + "\n", "longer than 2,048 bytes"),
        ("database: 5\nfeeds: []\n", ": database: must be a string"),
        ("- just a list\n", "top level must be a mapping"),
        ("output: out\n", "missing: add a `feeds:`"),
    ],
)
def test_bad_config_names_file_entry_and_fix(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "other",
    [
        "http://127.0.0.1:8765/./same.xml",
        "http://127.0.0.1:8765/news/../same.xml",
        "http://127.0.0.1:8765/%73ame.xml",
        "http://127.1:8765/same.xml",
        "http://2130706433:8765/same.xml",
        "http://[::ffff:127.0.0.1]:8765/same.xml",
        "https://a.example/same.xml",
    ],
)
def test_one_feed_spelt_two_ways_is_a_duplicate(tmp_path: Path, other: str) -> None:
    """Each of these ran as a second feed beside its first spelling, the file fetched twice a
    poll: RFC 3986 compares paths without dot segments and with escaped unreserved characters
    decoded, and an IP address is one address however it is written."""
    first = "https://a.example/./same.xml" if other.startswith("https") else ""
    first = first or "http://127.0.0.1:8765/same.xml"
    path = write(tmp_path, f"feeds:\n  - url: {first}\n  - url: {other}\n")
    with pytest.raises(ConfigError, match="is the same feed as"):
        load_config(path)


def test_urls_alike_but_for_what_rfc_3986_keeps_are_two_feeds(tmp_path: Path) -> None:
    """An escaped slash is no path separator, a path's case and a query are the server's."""
    urls = [
        "https://a.example/x%2Fy.xml",
        "https://a.example/x/y.xml",
        "https://a.example/X/y.xml",
        "https://a.example/x/y.xml?page=2",
        "https://127.0.0.2/x/y.xml",
    ]
    path = write(tmp_path, "feeds:\n" + "".join(f"  - url: {url}\n" for url in urls))
    assert [f.url for f in load_config(path).feeds] == urls


def test_error_message_carries_the_line_number(tmp_path: Path) -> None:
    path = write(
        tmp_path, "feeds:\n  - url: https://a.example/x\n  - url: https://b.example/y\n    bad: 1\n"
    )
    with pytest.raises(ConfigError, match=r"feeds\.yaml:4: feeds\[1\]"):
        load_config(path)


@pytest.mark.parametrize("block", ["poll", "email", "site", "embedding", "workers", "grouping"])
def test_a_block_given_as_a_plain_value_names_its_line(tmp_path: Path, block: str) -> None:
    """`poll: 5` said "feeds.yaml: poll: must be a mapping", with no line to look at."""
    path = write(tmp_path, f"feeds: []\n\n{block}: 5\n")
    with pytest.raises(ConfigError, match=rf"feeds\.yaml:3: {block}: must be a mapping"):
        load_config(path)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("command", ["poll", "cluster", "build", "run", "email"])
def test_cli_exits_2_with_one_line_on_bad_config(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, "feeds:\n  - url: https://a.example/x\n  - url: https://a.example/x\n")
    result = CliRunner().invoke(main, [command, "-c", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "duplicates" in lines[0] and str(path) in lines[0]


FIELDS = [
    ("database", "database: [x]"),
    ("output", "output: {a: 1}"),
    ("window_hours", "window_hours: [24]"),
    ("model", "model: 3"),
    ("templates", "templates: 7"),
    ("templates", "templates: no-such-folder"),
    ("allow_private", "allow_private: 'maybe'"),
    ("site.title", "site: {title: [a]}"),
    ("site.base_url", "site: {base_url: 'not a url'}"),
    ("site.timezone", "site: {timezone: 5}"),
    ("email.to", "email: {to: 5}"),
    ("email.from", "email: {from: 'nobody'}"),
    ("email.subject", "email: {subject: [a]}"),
    ("email.smtp_host", "email: {smtp_host: 25}"),
    ("email.smtp_port", "email: {smtp_port: 'twenty-five'}"),
    ("email.security", "email: {security: 1}"),
    ("email.username_env", "email: {username_env: 'not a name'}"),
    ("email.password_env", "email: {password_env: 'a-b'}"),
    ("email.max_stories", "email: {max_stories: 0}"),
    ("embedding.backend", "embedding: {backend: 3}"),
    ("embedding.max_tokens", "embedding: {max_tokens: 1.5}"),
    ("embedding.threads", "embedding: {threads: -1}"),
    ("poll.concurrency", "poll: {concurrency: 'many'}"),
    ("poll.per_host", "poll: {per_host: 2.5}"),
    ("poll.timeout_seconds", "poll: {timeout_seconds: -1}"),
    ("poll.max_body_mb", "poll: {max_body_mb: [10]}"),
    ("poll.max_items", "poll: {max_items: 0}"),
    ("feeds[0].name", "feeds: [{url: 'https://a.example/x', name: [1]}]"),
    ("feeds[0]", "feeds: [5]"),
    ("site", "site: [1]"),
    ("email", "email: 'me@example.org'"),
    ("grouping", "grouping: [1]"),
]


@pytest.mark.parametrize(("name", "line"), FIELDS, ids=[f[0] for f in FIELDS])
def test_every_field_with_a_wrong_value_is_named(tmp_path: Path, name: str, line: str) -> None:
    text = line + "\n" + ("" if line.startswith("feeds:") else "feeds: []\n")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert name in str(caught.value)


OUT_OF_RANGE = [
    ("grouping:\n  min_similarity: 1.5\n", "grouping.min_similarity: must be from 0 to 1, got 1.5"),
    ("grouping:\n  duplicate_jaccard: -1\n", "grouping.duplicate_jaccard: must be greater than 0"),
    ("grouping:\n  neighbors: 0\n", "grouping.neighbors: must be a whole number of at least 1"),
    ("grouping:\n  min_cluster_size: 1\n", "grouping.min_cluster_size: must be a whole number of"),
    ("grouping:\n  merge_probability: 1\n", "grouping.merge_probability: must be greater than 0"),
    ("grouping:\n  clusterer: dbscan\n", "grouping.clusterer: must be knn-hdbscan, hdbscan or"),
    ("email:\n  smtp_port: 99999\n", "email.smtp_port: must be a whole number from 1 to 65535"),
    ("embedding:\n  max_tokens: 1\n", "embedding.max_tokens: must be a whole number of at least 2"),
    ("window_hours: 0\n", "window_hours: must be greater than 0 and at most 1000000, got 0"),
    ("window_hours: 1e9\n", "window_hours: must be greater than 0 and at most 1000000"),
    ("window_hours: .nan\n", "window_hours: must be a finite number greater than 0"),
    ("poll:\n  timeout_seconds: .inf\n", "poll.timeout_seconds: must be a finite number greater"),
    ("workers:\n  idle_seconds: .nan\n", "workers.idle_seconds: must be a finite number greater"),
    ("email:\n  max_stories: 0\n", "email.max_stories: must be a whole number greater than 0"),
    ("keep_full_text_days: 0\n", "keep_full_text_days: must be greater than 0"),
    # the window's items are grouped with their article text
    (
        "window_hours: 72\nkeep_full_text_days: 2\n",
        "keep_full_text_days: 2 days is shorter than the window (window_hours: 72), whose "
        "items are grouped with their article text; keep it at least 3 days",
    ),
]


def test_article_text_is_kept_for_good_unless_a_number_of_days_is_given(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "feeds: []\n")).keep_full_text_days is None
    path = write(tmp_path, "feeds: []\nkeep_full_text_days: 30\n")
    assert load_config(path).keep_full_text_days == 30.0


@pytest.mark.parametrize(
    ("text", "expected"), OUT_OF_RANGE, ids=[e.split(":")[0] for _, e in OUT_OF_RANGE]
)
def test_a_value_out_of_range_names_the_key_its_line_and_the_range(
    tmp_path: Path, text: str, expected: str
) -> None:
    """min_similarity 1.5 (no pair is ever a neighbour), a port past 65535, a window of nan
    hours: each was taken in silence, and failed later or grouped nothing."""
    path = write(tmp_path, "feeds: []\n" + text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    last_line = len(text.splitlines()) + 1  # the key's own line, not its block's
    assert f"feeds.yaml:{last_line}: {expected}" in str(caught.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("window_hours: 24\n", None),
        ("window_hours: soon\n", "window_hours: must be a number, got 'soon' (a string)"),
        ("model: 5\n", "model: must be a string, got 5 (a whole number)"),
        ("full_text: 1\n", "full_text: must be true or false, got 1 (a whole number)"),
        ("embedding:\n  threads: 2.5\n", "threads: must be a whole number, got 2.5 (a number with"),
        ("window_hours: 2024-01-01\n", "window_hours: must be a number, got 2024-01-01 (a date)"),
        ("colour: blue\n", "feeds.yaml:2: unknown key 'colour' (allowed: allow_private,"),
    ],
)
def test_messages_name_keys_as_written_and_values_in_plain_words(
    tmp_path: Path, line: str, expected: str | None
) -> None:
    """Top-level keys are named as the user writes them (`window_hours`, not
    `settings.window_hours`), and a wrong value by what YAML read it as, never by a Python or
    ruamel type name (ScalarFloat)."""
    path = write(tmp_path, "feeds: []\n" + line)
    if expected is None:
        assert load_config(path).window_hours == 24
        return
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert expected in message
    assert "settings" not in message and "Scalar" not in message and " int " not in message


def test_an_empty_grouping_key_keeps_its_default(tmp_path: Path) -> None:
    path = write(tmp_path, "feeds: []\ngrouping:\n  merge_probability:\n  neighbors: 12\n")
    assert load_config(path).grouping == {"neighbors": 12}


def test_database_may_be_a_postgresql_url_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGGREGATOR_DATABASE", raising=False)
    url = "postgresql://news@db.example:5432/news"
    path = write(tmp_path, f"database: {url}\nfeeds: []\n")
    assert load_config(path).database == url
    monkeypatch.setenv("AGGREGATOR_DATABASE", "postgresql://other@127.0.0.1/other")
    assert load_config(path).database == "postgresql://other@127.0.0.1/other"
    monkeypatch.setenv("AGGREGATOR_DATABASE", "local.db")
    assert load_config(path).database == (Path.cwd() / "local.db").resolve()


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        ("postgresql://news:hunter2@db.example/news", "PGPASSWORD or ~/.pgpass"),
        ("postgresql://news@db.example/news?password=hunter2", "PGPASSWORD or ~/.pgpass"),
        ("postgresql://news@db.example/news?sslmode=require&PASSWORD=hunter2", "PGPASSWORD"),
        ("mysql://db.example/news", "not a supported database"),
    ],
)
def test_bad_database_urls_are_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str, expected: str
) -> None:
    monkeypatch.delenv("AGGREGATOR_DATABASE", raising=False)
    path = write(tmp_path, f"database: {database}\nfeeds: []\n")
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(path)
    assert "hunter2" not in str(error.value) and "\n" not in str(error.value)
    assert "feeds.yaml:1: database" in str(error.value)
    result = CliRunner().invoke(main, ["poll", "-c", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_an_unreachable_database_server_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("AGGREGATOR_DATABASE", raising=False)
    path = write(tmp_path, "database: postgresql://nobody@127.0.0.1:1/none\nfeeds: []\n")
    copy = ["store", "copy", "--to", str(tmp_path / "copy.db")]
    for command in (["poll"], ["feeds", "status"], ["worker", "--once"], copy):
        result = CliRunner().invoke(main, [*command, "-c", str(path)])
        assert result.exit_code == 1, (command, result.output)
        assert "cannot connect to PostgreSQL" in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize(
    "value",
    ["postgresql://news@db.example/news?password=hunter2", "host=db.example password=hunter2"],
)
def test_the_environment_database_is_checked_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    path = write(tmp_path, "feeds: []\n")
    monkeypatch.setenv("AGGREGATOR_DATABASE", value)
    result = CliRunner().invoke(main, ["poll", "-c", str(path)])
    assert result.exit_code == 2, result.output
    assert "AGGREGATOR_DATABASE" in result.output and "hunter2" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    if value.startswith("host="):
        assert "postgresql://user@host:5432/dbname" in result.output
    assert not list(tmp_path.glob("*hunter2*")) and not list(Path.cwd().glob("host=*"))


def test_redact_drops_the_password_from_user_part_and_query() -> None:
    from aggregator.db import redact

    assert redact("postgresql://u:pw@h:5/db?password=pw&sslmode=require") == (
        "postgresql://u@h:5/db?sslmode=require"
    )
    assert "pw" not in redact("postgresql://u@h/db?Password=pw")


def test_poll_max_items_reaches_the_poller(tmp_path: Path) -> None:
    from aggregator.pipeline import poll_options

    assert poll_options(load_config(write(tmp_path, "feeds: []\n"))).max_items == 500
    configured = load_config(write(tmp_path, "poll: {max_items: 40}\nfeeds: []\n"))
    assert poll_options(configured).max_items == 40


def test_a_name_with_a_lone_surrogate_loses_it(tmp_path: Path) -> None:
    """YAML's "\ud800" escape makes a lone surrogate, which no database or file can hold:
    `poll` stopped with a traceback storing the name."""
    text = 'feeds:\n  - url: https://a.example/rss\n    name: "Re\\ud800uters"\n'
    assert load_config(write(tmp_path, text)).feeds[0].name == "Reuters"


def test_tags_written_without_brackets_are_refused_with_the_list_to_write(tmp_path: Path) -> None:
    """`tags: world, europe` is one tag "world, europe" in YAML: sections, coverage and the
    export's folders silently used it whole, and `feeds list` showed it as two."""
    path = write(tmp_path, "feeds:\n  - url: https://a.example/rss\n    tags: world, europe\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert f"{path}:3: feeds[0].tags: a list is written in brackets: `tags: [world, europe]`" in (
        str(raised.value)
    )
    path.write_text("feeds:\n  - url: https://a.example/rss\n    tags: world\n")
    assert load_config(path).feeds[0].tags == ("world",)
    path.write_text('feeds:\n  - url: https://a.example/rss\n    tags: "Washington, D.C."\n')
    assert load_config(path).feeds[0].tags == ("Washington, D.C.",)  # quoted: meant as written


@pytest.mark.parametrize("codec", ["latin-1", "utf-16"])
def test_a_feeds_yaml_not_in_utf8_says_to_save_it_so(tmp_path: Path, codec: str) -> None:
    """It said "cannot read: 'utf-8' codec can't decode byte 0xe9 in position 38"."""
    path = tmp_path / "feeds.yaml"
    path.write_bytes("site:\n  title: Café\nfeeds:\n  - url: https://a.example/\n".encode(codec))
    with pytest.raises(
        ConfigError, match=r"feeds.yaml:\d+: not UTF-8 text: save the file as UTF-8"
    ):
        load_config(path)


def test_send_after_is_a_time_of_day(tmp_path: Path) -> None:
    path = write(tmp_path, 'email:\n  send_after: "7am"\nfeeds:\n  - url: https://a.example/\n')
    with pytest.raises(
        ConfigError, match=r':2: email.send_after: must be a time of day such as "07:00"'
    ):
        load_config(path)
    path.write_text("email:\n  send_after: 6:30\nfeeds:\n  - url: https://a.example/\n")
    assert load_config(path).email.send_after == "06:30"
