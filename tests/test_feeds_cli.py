"""`aggregator feeds ...`, feeds.yaml editing and feed discovery, against a loopback server."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aggregator.config import load_config
from aggregator.feeds_cli import feeds
from aggregator.feedsfile import FeedExistsError, FeedsFileError, add_feed, remove_feed
from aggregator.opml import parse_opml
from aggregator.pipeline import UnknownFeedError, select_feeds
from aggregator.poller import DiscoveryError, PollOptions, discover_feed
from tests.support import feedserver
from tests.support.feedserver import FeedServer

feed_server = feedserver.feed_server  # the fixture, under its own name

DATA = Path(__file__).parent / "data" / "feeds"
RSS = b"<rss version='2.0'><channel><title>Loopback News</title><item><title>a</title><link>https://x.example/a</link></item></channel></rss>"
FEEDS_YAML = """\
# My news sources
database: news.db   # next to this file

feeds:
  # --- world
  - url: https://world.example/rss   # the best
    name: World Daily
    tags: [world]
  - https://short.example/feed
  # --- local
  - url: "https://local.example/atom.xml"
    name: Local Paper

window_hours: 36  # a day and a half
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(FEEDS_YAML)
    return path


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(feeds, [str(a) for a in args], catch_exceptions=False)


def serve_site(server: FeedServer) -> None:
    """A site whose home page links to its feed."""
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/news.rss"></head><body>hi</body></html>'
    server.route("/", body=page, headers={"Content-Type": "text/html"})
    server.route("/news.rss", body=RSS, headers={"Content-Type": "application/rss+xml"})


# ---------------------------------------------------------------- feeds.yaml editing


def test_add_keeps_comments_order_and_layout(config: Path) -> None:
    add_feed(config, "https://new.example/rss", "New: One #1", ["tech", "science"])

    text = config.read_text()
    assert text.startswith(FEEDS_YAML.split("\n\nwindow_hours")[0])  # every old byte in place
    assert text.endswith(
        "    name: Local Paper\n"
        "  - url: https://new.example/rss\n"
        "    name: 'New: One #1'\n"
        "    tags: [tech, science]\n"
        "\n"
        "window_hours: 36  # a day and a half\n"
    )
    loaded = load_config(config)
    assert [f.url for f in loaded.feeds][-1] == "https://new.example/rss"
    assert loaded.feeds[-1].tags == ("tech", "science")
    assert loaded.window_hours == 36


def test_add_existing_url_refuses(config: Path) -> None:
    with pytest.raises(FeedExistsError):
        add_feed(config, "https://short.example/feed")
    assert config.read_text() == FEEDS_YAML


def test_remove_by_name_or_url_keeps_everything_else(config: Path) -> None:
    assert remove_feed(config, "world daily")  # names match without case
    assert remove_feed(config, "https://short.example/feed")
    assert not remove_feed(config, "https://nowhere.example/")

    assert config.read_text() == (
        "# My news sources\n"
        "database: news.db   # next to this file\n"
        "\n"
        "feeds:\n"
        "  # --- world\n"
        "  # --- local\n"
        '  - url: "https://local.example/atom.xml"\n'
        "    name: Local Paper\n"
        "\n"
        "window_hours: 36  # a day and a half\n"
    )


def test_a_name_written_with_invisible_characters_is_found_by_the_name_shown(
    tmp_path: Path,
) -> None:
    """`name: "Reu\u200bters"` is shown and loaded as Reuters: `feeds remove Reuters` and
    `poll --force REUTERS` find it, as the German "Straße" is found as "STRASSE"."""
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n"
        '  - {url: "https://a.example/rss", name: "Reu\\u200bters"}\n'
        '  - {url: "https://b.example/rss", name: "Die Stra\u00dfe"}\n'
        "  - https://c.example/rss\n"
    )
    config = load_config(path)
    assert [f.url for f in select_feeds(config, ["REUTERS", "die strasse"])] == [
        "https://a.example/rss",
        "https://b.example/rss",
    ]
    with pytest.raises(UnknownFeedError):
        select_feeds(config, ["\u200b"])  # a name of invisible characters names no feed
    assert remove_feed(path, "Reuters")
    assert remove_feed(path, "DIE STRASSE")
    assert [f.url for f in load_config(path).feeds] == ["https://c.example/rss"]


@pytest.mark.parametrize(
    "text",
    [
        "feeds:\n"
        "  - url: https://a.example/rss\n"
        "    tags: &world [world, europe]\n"
        "  - url: https://b.example/rss\n"
        "    tags: *world\n",
        "feeds:\n"
        "  - &base\n"
        "    url: https://a.example/rss\n"
        "    tags: [world]\n"
        "  - <<: *base\n"
        "    url: https://b.example/rss\n",
    ],
)
def test_removing_the_entry_that_defines_an_anchor_says_so(tmp_path: Path, text: str) -> None:
    """Cutting the entry that defines `&world` would leave `*world` pointing at nothing: the
    message says which anchor and what to do (it said "could not edit the feeds list safely"),
    and the file is unchanged. The entry that uses the anchor is removed as any other."""
    path = tmp_path / "feeds.yaml"
    path.write_text(text)
    with pytest.raises(FeedsFileError, match=r"feeds.yaml:2: .* anchor &(world|base) .*\*"):
        remove_feed(path, "https://a.example/rss")
    assert path.read_text() == text
    assert remove_feed(path, "https://b.example/rss")
    assert [f.url for f in load_config(path).feeds] == ["https://a.example/rss"]


def test_an_entry_that_only_mentions_or_uses_an_anchor_is_removed() -> None:
    """ "&world" in a comment or a URL of the entry that uses `*world` is no definition: it
    was refused as one."""
    import tempfile

    text = (
        "feeds:\n"
        "  - url: https://a.example/rss\n"
        "    tags: &world [world]\n"
        "    name: &n Alpha\n"
        "  - url: https://b.example/rss?x=1&world\n"
        "    tags: *world  # the tags of &world above\n"
        "    name: *n\n"
    )
    path = Path(tempfile.mkdtemp()) / "feeds.yaml"
    path.write_text(text)
    assert remove_feed(path, "https://b.example/rss?x=1&world")
    assert [f.url for f in load_config(path).feeds] == ["https://a.example/rss"]
    path.write_text(text)
    with pytest.raises(FeedsFileError, match=r"anchor &n, &world that other entries use"):
        remove_feed(path, "https://a.example/rss")


def test_remove_the_last_feed_then_add_again(config: Path) -> None:
    for name in ("World Daily", "https://short.example/feed", "Local Paper"):
        assert remove_feed(config, name)
    assert load_config(config).feeds == ()
    add_feed(config, "https://again.example/rss")
    assert [f.url for f in load_config(config).feeds] == ["https://again.example/rss"]
    assert "# My news sources" in config.read_text()


@pytest.mark.parametrize(
    "text",
    [
        "feeds:\n",
        "feeds: []\n",
        "feeds: [https://a.example/x]  # flow\n",
        "feeds:\n- url: https://a.example/x\n",
    ],
)
def test_add_to_unusual_lists(tmp_path: Path, text: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text)
    add_feed(path, "https://z.example/rss", "Z", ["t"], allow_private=True)
    loaded = load_config(path)
    assert loaded.feeds[-1].url == "https://z.example/rss"
    assert loaded.feeds[-1].allow_private


def test_add_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "feeds.yaml"
    add_feed(path, "https://a.example/rss")
    assert [f.url for f in load_config(path).feeds] == ["https://a.example/rss"]


def test_ambiguous_name_and_broken_yaml(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n  - {url: 'https://a.example/', name: Same}\n  - {url: 'https://b.example/', name: same}\n"
    )
    with pytest.raises(FeedsFileError, match="several feeds"):
        remove_feed(path, "Same")
    path.write_text("feeds: [unclosed\n")
    with pytest.raises(FeedsFileError, match=r"feeds.yaml:2: YAML syntax error: expected"):
        add_feed(path, "https://c.example/")
    path.write_text("feeds:\n  - url:\thttps://a.example/\n    name: 'open\n")
    with pytest.raises(FeedsFileError, match=r"feeds.yaml:\d+: YAML syntax error: .*"):
        remove_feed(path, "https://a.example/")  # was "not valid YAML: while scanning ..."


SETTINGS_FIRST = """\
# my news
site:
    title: Morning    # lined up
    timezone: Europe/Paris
email:
    to:
        - me@example.com
    from: news@example.com
feeds: []   # added below
window_hours: 36
"""


@pytest.mark.parametrize(
    "value", ["[]", "", "[https://x.example/rss, {url: 'https://y.example/rss', name: Y}]"]
)
def test_adding_to_an_empty_or_flow_list_changes_only_that_list(tmp_path: Path, value: str) -> None:
    """A first import after writing the settings (the usual move from another reader)
    re-indented every other block, moved lined-up comments and gave the email's list and the
    feeds the first list's indentation: only the `feeds:` value is written now."""
    path = tmp_path / "feeds.yaml"
    original = SETTINGS_FIRST.replace("feeds: []", f"feeds: {value}".rstrip())
    path.write_text(original)
    add_feed(path, "https://a.example/rss", name="A", tags=["world"])
    text = path.read_text()
    before, after = original.split("feeds:")
    assert text.startswith(before) and text.endswith(after.split("\n", 1)[1])
    config = load_config(path)
    assert config.feeds[-1].url == "https://a.example/rss" and config.window_hours == 36
    assert config.email.to == ("me@example.com",) and config.site.title == "Morning"
    if value == "[]":
        assert "feeds:  # added below\n  - url: https://a.example/rss\n" in text
    remove_feed(path, "https://a.example/rss")
    assert load_config(path).feeds == config.feeds[:-1]
    assert path.read_text().startswith(before)


def test_a_flow_list_closed_at_the_margin_and_a_dash_comment_with_a_hyphen(tmp_path: Path) -> None:
    """A flow list whose "]" stands at column 0 was cut before it (add and remove, which
    worked, refused the file); a lone dash's comment holding a "-" ("- # Reuters - World")
    was taken for the dash."""
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds: [\n  https://a.example/rss,\n  {url: 'https://b.example/rss'}\n]\nwindow_hours: 36\n"
    )
    add_feed(path, "https://c.example/rss")
    assert [f.url for f in load_config(path).feeds][-1] == "https://c.example/rss"
    assert path.read_text().endswith("window_hours: 36\n")
    path.write_text(
        "feeds:\n  - # Reuters - World\n    url: https://a.example/rss\n"
        "  - # BBC - UK\n    url: https://b.example/rss\n"
    )
    add_feed(path, "https://c.example/rss")
    assert remove_feed(path, "https://b.example/rss")
    assert [f.url for f in load_config(path).feeds] == [
        "https://a.example/rss",
        "https://c.example/rss",
    ]
    assert "# Reuters - World" in path.read_text() and "BBC" not in path.read_text()


def test_a_windows_file_keeps_its_line_endings(tmp_path: Path) -> None:
    """add, remove and import wrote a CRLF file back with LF endings: every line changed."""
    path = tmp_path / "feeds.yaml"
    path.write_bytes(b"# mine\r\nfeeds:\r\n  - url: https://a.example/rss\r\n")
    add_feed(path, "https://b.example/rss")
    remove_feed(path, "https://a.example/rss")
    data = path.read_bytes()
    assert data == b"# mine\r\nfeeds:\r\n  - url: https://b.example/rss\r\n"


def test_entries_whose_dash_stands_on_its_own_line_are_edited_whole(tmp_path: Path) -> None:
    """`- # Reuters world` then `url:` on the next line: remove cut the url line and the
    next entry's dash (the comment then named the wrong feed), and add refused the file."""
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n"
        "  - # Reuters world\n    url: https://a.example/rss\n"
        "  - # BBC\n    url: https://b.example/rss\n    name: B\n"
        "  -\n    url: https://c.example/rss\n"
    )
    assert remove_feed(path, "https://a.example/rss")
    assert path.read_text() == (
        "feeds:\n  - # BBC\n    url: https://b.example/rss\n    name: B\n"
        "  -\n    url: https://c.example/rss\n"
    )
    add_feed(path, "https://d.example/rss")
    assert remove_feed(path, "B")
    assert [f.url for f in load_config(path).feeds] == [
        "https://c.example/rss",
        "https://d.example/rss",
    ]
    assert "# BBC" not in path.read_text()


# ---------------------------------------------------------------- discovery


def test_discover_returns_a_feed_url_unchanged(feed_server: FeedServer) -> None:
    serve_site(feed_server)
    url = feed_server.url("/news.rss")
    assert asyncio.run(discover_feed(url, allow_private=True)) == url


def test_discover_follows_the_page_link(feed_server: FeedServer) -> None:
    serve_site(feed_server)
    found = asyncio.run(discover_feed(feed_server.url("/"), allow_private=True))
    assert found == feed_server.url("/news.rss")


def test_discover_tries_the_usual_paths(feed_server: FeedServer) -> None:
    feed_server.route("/blog/", body=b"<html><body>no links</body></html>")
    feed_server.route("/atom.xml", body=RSS)
    found = asyncio.run(discover_feed(feed_server.url("/blog/"), allow_private=True))
    assert found == feed_server.url("/atom.xml")
    assert feed_server.url("/blog/feed") in [feed_server.url(r.path) for r in feed_server.requests]


def test_discover_failures(feed_server: FeedServer) -> None:
    feed_server.route("/", body=b"<html><body>nothing</body></html>")
    with pytest.raises(DiscoveryError, match="no feed found"):
        asyncio.run(discover_feed(feed_server.url("/"), allow_private=True))
    with pytest.raises(DiscoveryError, match="is a private address") as refused:
        asyncio.run(discover_feed(feed_server.url("/")))
    assert refused.value.private and "allow_private" not in str(refused.value)  # the CLI says how
    options = PollOptions(connect_timeout=1, total_timeout=2)
    with pytest.raises(DiscoveryError):
        asyncio.run(discover_feed("http://127.0.0.1:9/", allow_private=True, options=options))


# ---------------------------------------------------------------- the commands


def test_every_command_has_help_with_an_example() -> None:
    for command in ("add", "remove", "list", "import", "export", "check", "status"):
        result = cli(command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output
        assert "--config" in result.output


def test_list(config: Path) -> None:
    result = cli("list", "-c", config)
    assert result.exit_code == 0
    assert "World Daily" in result.output and "https://short.example/feed" in result.output
    as_json = json.loads(cli("list", "-c", config, "--json").output)
    assert as_json[0] == {
        "url": "https://world.example/rss",
        "name": "World Daily",
        "tags": ["world"],
        "allow_private": False,
        "min_interval_minutes": None,
        "full_text": None,
    }


def test_counts_of_one_are_singular(tmp_path: Path) -> None:
    """ "1 feeds, last 1 days" read wrong: every count goes through text.plural."""
    from aggregator.cli import main

    path = tmp_path / "feeds.yaml"
    path.write_text("database: news.db\nfeeds:\n  - https://one.example/rss\n")
    assert "1 feed in " in cli("list", "-c", path).output
    exported = CliRunner().invoke(
        feeds, ["export", "-o", str(tmp_path / "x.opml"), "-c", str(path)]
    )
    assert "Wrote 1 feed to" in exported.output
    value = CliRunner().invoke(main, ["feeds", "value", "--days", "1", "-c", str(path)])
    assert "1 feed, last 1 day;" in value.output, value.output
    several = CliRunner().invoke(main, ["feeds", "value", "--days", "2.5", "-c", str(path)])
    assert "1 feed, last 2.5 days;" in several.output, several.output


def test_group_level_config_option(config: Path) -> None:
    result = CliRunner().invoke(feeds, ["-c", str(config), "list"])
    assert "World Daily" in result.output


def test_add_discovers_the_feed_and_takes_its_title(config: Path, feed_server: FeedServer) -> None:
    serve_site(feed_server)
    result = cli(
        "add",
        feed_server.url("/"),
        "--tag",
        "local",
        "--tag",
        "test",
        "--allow-private",
        "-c",
        config,
    )
    assert result.exit_code == 0, result.output
    added = load_config(config).feeds[-1]
    assert added.url == feed_server.url("/news.rss")
    assert added.name == "Loopback News"
    assert added.tags == ("local", "test")
    assert added.allow_private
    assert "# --- local" in config.read_text()

    # the page again: the feed it links to is named as what the page led to
    again = cli("add", feed_server.url("/"), "--allow-private", "-c", config)
    assert again.exit_code == 2, again.output
    assert (
        f"{feed_server.url('/')} leads to the feed {feed_server.url('/news.rss')}, which is "
        "already in"
    ) in again.output


def test_add_writes_each_tag_once_whatever_its_case(config: Path) -> None:
    """`--tag world --tag World` wrote `tags: [world, World]`: tags ignore case."""
    args = ["--tag", "world", "--tag", "World", "--tag", "uk", "--tag", "WORLD"]
    result = cli("add", "https://tags.example/rss.xml", "--no-discover", *args, "-c", config)
    assert result.exit_code == 0, result.output
    assert load_config(config).feeds[-1].tags == ("world", "uk")
    assert "World" not in config.read_text().split("tags.example")[1]


def test_add_keeps_what_a_server_chose_from_driving_the_terminal_or_breaking_the_file(
    config: Path, feed_server: FeedServer
) -> None:
    """A page linking to a feed URL with a C1 control (CSI on some terminals) and a bidi
    override, a redirect to a URL with U+FFFE (which no OPML export can hold), a title with a
    bidi override: the error lines are clean, and feeds.yaml gets no such URL or name."""
    link = '<link rel="alternate" type="application/rss+xml" href="/f\u009b2J\u202eGNP.exe">'
    feed_server.route(
        "/",
        body=f'<html><head><meta charset="utf-8">{link}</head></html>'.encode(),
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    linked = CliRunner().invoke(
        feeds, ["add", feed_server.url("/"), "--allow-private", "-c", str(config)]
    )
    assert linked.exit_code == 1
    assert "\u009b" not in linked.output and "\u202e" not in linked.output
    assert "links to no feed" in linked.output  # the link is no http(s) URL: left out
    # the bytes of U+FFFE, as a header carries them
    feed_server.route("/moved", status=301, headers={"Location": "/j.json?\xef\xbf\xbe"})
    moved = CliRunner().invoke(
        feeds, ["add", feed_server.url("/moved"), "--allow-private", "-c", str(config)]
    )
    assert moved.exit_code == 1 and "Traceback" not in moved.output
    assert "invalid URL" in moved.output
    assert config.read_text() == FEEDS_YAML
    rss = RSS.replace(b"Loopback News", "Loopback \u202eNews\u202c".encode())
    feed_server.route("/news.rss", body=rss, headers={"Content-Type": "application/rss+xml"})
    titled = cli("add", feed_server.url("/news.rss"), "--allow-private", "-c", config)
    assert titled.exit_code == 0, titled.output
    assert "\u202e" not in config.read_text() and "name: Loopback News" in config.read_text()
    assert cli("export", "-c", config).exit_code == 0


def test_an_error_line_quoting_a_server_is_made_terminal_safe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aggregator.feeds_cli import _fail

    with pytest.raises(SystemExit):
        _fail("no feed at http://x.example/\u009b2J\x1b[31m\u202eexe\nsecond line")
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "second line" in err
    assert not any(c in err for c in "\u009b\x1b\u202e")


def test_add_without_discovery(config: Path) -> None:
    result = cli(
        "add", "https://offline.example/rss", "--no-discover", "--name", "Off", "-c", config
    )
    assert result.exit_code == 0
    assert load_config(config).feed("https://offline.example/rss").name == "Off"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add", "ftp://x.example/feed", "--no-discover"], 2, "not an http(s) URL"),
        (["add", "not a url", "--no-discover"], 2, "not an http(s) URL"),
        (["add", "https://world.example/rss", "--no-discover"], 2, "already in"),
        (["remove", "Nobody"], 2, "no feed with the URL or name"),
        (["check", "nothing-like-a-url"], 2, "is not a feed in"),
    ],
)
def test_bad_input_exits_2(config: Path, args: list[str], code: int, message: str) -> None:
    result = CliRunner().invoke(feeds, [*args, "-c", str(config)])
    assert result.exit_code == code
    assert message in result.output
    assert config.read_text() == FEEDS_YAML


def test_add_when_no_feed_can_be_found_exits_1(config: Path, feed_server: FeedServer) -> None:
    feed_server.route("/", body=b"<html><body>no feed here</body></html>")
    result = CliRunner().invoke(
        feeds, ["add", feed_server.url("/"), "--allow-private", "-c", str(config)]
    )
    assert result.exit_code == 1
    assert "--no-discover" in result.output


def test_invalid_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: notaurl\n")
    for command in (["list"], ["check"], ["status"], ["export"]):
        result = CliRunner().invoke(feeds, [*command, "-c", str(path)])
        assert result.exit_code == 2
        assert str(path) in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_remove(config: Path) -> None:
    result = cli("remove", "Local Paper", "-c", config)
    assert result.exit_code == 0
    assert load_config(config).feed("https://local.example/atom.xml") is None


def test_remove_takes_a_url_as_add_takes_it(config: Path) -> None:
    """`feeds add example.com/a.xml` stores https://example.com/a.xml; `feeds remove
    example.com/a.xml` said there was no such feed."""
    assert cli("add", "local.example/x.xml", "--no-discover", "-c", config).exit_code == 0
    result = cli("remove", "local.example/x.xml", "-c", config)
    assert result.exit_code == 0, result.output
    assert load_config(config).feed("https://local.example/x.xml") is None


def test_import_and_export(config: Path, tmp_path: Path) -> None:
    result = cli("import", DATA / "subscriptions.opml", "-c", config)
    assert result.exit_code == 0
    assert "Imported 3 feeds" in result.output
    assert "Imported 0 feeds" in cli("import", DATA / "subscriptions.opml", "-c", config).output
    bbc = load_config(config).feed("https://feeds.bbci.co.uk/news/world/rss.xml")
    # "World" takes the spelling of the earlier feed's "world": one spelling per tag
    assert bbc is not None and bbc.tags == ("News", "world", "Europe", "uk")

    exported = cli("export", "-c", config)
    assert exported.exit_code == 0
    urls = [f.url for f in parse_opml(exported.stdout_bytes)]
    assert urls[0] == "https://world.example/rss" and len(urls) == 6

    out = tmp_path / "out.opml"
    assert cli("export", "-o", out, "-c", config).exit_code == 0
    assert len(parse_opml(out.read_bytes())) == 6


def test_import_names_the_feeds_it_leaves_out(config: Path, tmp_path: Path) -> None:
    listing = tmp_path / "mixed.opml"
    listing.write_text(
        '<opml version="2.0"><body>'
        '<outline text="Good" xmlUrl="https://good.example/rss"/>'
        '<outline text="Typo" xmlUrl="htps://typo.example/rss"/>'
        '<outline text="Local file" xmlUrl="file:///home/me/feed.xml"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    result = cli("import", listing, "-c", config)
    assert result.exit_code == 0
    assert "Imported 1 feed" in result.output
    assert "left out 2 feeds without an http(s) URL: htps://typo.example/rss, file://" in (
        result.output
    )
    assert load_config(config).feed("https://good.example/rss") is not None


def test_import_merges_a_feed_listed_in_two_folders(config: Path) -> None:
    result = cli("import", DATA / "feedly.opml", "-c", config)

    assert result.exit_code == 0, result.output
    # Ars Technica and Le Monde (its URL spelled two ways) are under Tech and News: one
    # feed each, with both tags; itpc:// and feed:https:// links are their http(s) URLs.
    assert "Imported 4 feeds" in result.output and "(0 already there)" in result.output
    assert "left out" not in result.output
    loaded = load_config(config)
    ars = loaded.feed("https://feeds.arstechnica.com/arstechnica/index")
    assert ars is not None and ars.tags == ("Tech", "News")
    monde = loaded.feed("https://www.lemonde.fr/rss/une.xml?a=1&b=2")
    assert monde is not None and monde.name == "Le Monde & Co" and monde.tags == ("Tech", "News")
    assert "https://www.lemonde.fr/rss/une.xml?a=1&b=2" in config.read_text()  # as `add` writes
    podcast = loaded.feed("http://podcast.example/feed.xml")
    assert podcast is not None and podcast.tags == ("Podcasts",)
    assert loaded.feed("https://safari.example/atom.xml") is not None

    again = cli("import", DATA / "feedly.opml", "-c", config)
    assert "Imported 0 feeds" in again.output and "(4 already there)" in again.output


def test_import_reads_the_feeds_inside_a_feed_outline(config: Path) -> None:
    result = cli("import", DATA / "folder_feed.opml", "-c", config)

    assert result.exit_code == 0, result.output
    assert "Imported 3 feeds" in result.output
    assert "left out 1 feed without an http(s) URL: javascript:alert(1)" in result.output
    loaded = load_config(config)
    cafe = loaded.feed("https://cafe.example/rss")  # ISO-8859-1, as its prolog says
    assert cafe is not None and cafe.name == "Café Society" and cafe.tags == ()
    regulars = loaded.feed("https://regulars.example/rss")
    assert regulars is not None and regulars.tags == ("Café Society",)
    under = loaded.feed("https://under.example/rss")
    assert under is not None and under.tags == ("Café Society", "Broken")


def test_import_of_malformed_xml_names_its_line(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_text(
        '<?xml version="1.0"?>\n<opml version="2.0"><body>\n'
        '<outline text="Caf&eacute;" xmlUrl="https://a.example/rss"/>\n</body></opml>\n'
    )
    result = CliRunner().invoke(feeds, ["import", str(bad), "-c", str(config)])

    assert result.exit_code == 2
    assert result.output == (
        f"aggregator feeds: {bad}:3: not valid XML: Entity 'eacute' not defined (column 27)\n"
    )


def test_tags_with_a_slash_or_comma_survive_export_and_import(tmp_path: Path) -> None:
    source = tmp_path / "feeds.yaml"
    source.write_text(
        'feeds:\n  - url: https://a.example/rss\n    tags: ["Science, tech", world, AI/ML]\n'
    )
    exported = tmp_path / "out.opml"
    assert cli("export", "-o", exported, "-c", source).exit_code == 0

    target = tmp_path / "other" / "feeds.yaml"
    assert cli("import", exported, "-c", target).exit_code == 0
    (feed,) = load_config(target).feeds
    assert feed.tags == ("Science, tech", "world", "AI/ML")  # the first by its folder


def test_export_leaves_out_what_xml_cannot_hold(tmp_path: Path) -> None:
    source = tmp_path / "feeds.yaml"
    source.write_text(  # YAML's "\a" is BEL, a control character XML cannot hold
        'feeds:\n  - url: https://b.example/rss\n    name: "Bell\\a \u05e9\u05dc\u05d5\u05dd \U0001f30d"\n'
    )
    exported = tmp_path / "out.opml"
    result = cli("export", "-o", exported, "-c", source)

    assert result.exit_code == 0, result.output
    target = tmp_path / "other" / "feeds.yaml"
    assert cli("import", exported, "-c", target).exit_code == 0
    assert load_config(target).feeds[0].name == "Bell \u05e9\u05dc\u05d5\u05dd \U0001f30d"


def test_import_of_a_bad_file_exits_2(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_bytes(b"<html>nope</html>")
    result = CliRunner().invoke(feeds, ["import", str(bad), "-c", str(config)])
    assert result.exit_code == 2
    assert config.read_text() == FEEDS_YAML


def write_local_config(tmp_path: Path, server: FeedServer, *paths: str) -> Path:
    path = tmp_path / "feeds.yaml"
    entries = "".join(f"  - url: {server.url(p)}\n    name: Feed {p}\n" for p in paths)
    path.write_text(f"allow_private: true\ndatabase: news.db\nfeeds:\n{entries}")
    return path


def test_check_reports_each_feed_and_stores_nothing(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/ok.rss", body=RSS)
    feed_server.route("/broken.rss", status=500)
    path = write_local_config(tmp_path, feed_server, "/ok.rss", "/broken.rss")

    result = CliRunner().invoke(feeds, ["check", "-c", str(path)])

    assert result.exit_code == 1
    assert "1 entry " in result.output and "Loopback News" in result.output
    assert "1 entries" not in result.output
    assert "HTTP 500" in result.output
    assert "1 ok, 1 failed" in result.output
    assert not (tmp_path / "news.db").exists()

    one = CliRunner().invoke(feeds, ["check", "Feed /ok.rss", "-c", str(path)])
    assert one.exit_code == 0
    assert "1 ok, 0 failed" in one.output


def test_check_allow_private_checks_a_loopback_url_not_in_feeds_yaml(
    config: Path, feed_server: FeedServer
) -> None:
    """A feed on a private or loopback address could not be checked before adding it: the
    refusal said to set allow_private in feeds.yaml, where the feed is not (yet)."""
    feed_server.route("/news.rss", body=RSS)
    url = feed_server.url("/news.rss")

    refused = CliRunner().invoke(feeds, ["check", url, "-c", str(config)])
    assert refused.exit_code == 1
    line = refused.output.splitlines()[0]
    assert "is a private address" in line and "feeds.yaml" not in line, line
    assert line.endswith("; check it with --allow-private if that is intended")
    assert not feed_server.requests

    allowed = CliRunner().invoke(feeds, ["check", url, "--allow-private", "-c", str(config)])
    assert allowed.exit_code == 0, allowed.output
    assert "1 entry" in allowed.output and "Loopback News" in allowed.output
    assert "1 ok, 0 failed" in allowed.output
    assert config.read_text() == FEEDS_YAML  # checked, not added


def test_check_a_url_needs_no_feeds_yaml(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new user checks a feed before writing any feeds.yaml: it said "feeds.yaml: not
    found". A name, or checking every feed, still needs the file; nothing is written."""
    feed_server.route("/news.rss", body=RSS)
    monkeypatch.chdir(tmp_path)
    url = feed_server.url("/news.rss")
    checked = CliRunner().invoke(feeds, ["check", url, "--allow-private"])
    assert checked.exit_code == 0, checked.output
    assert "1 entry" in checked.output and "1 ok, 0 failed" in checked.output
    for args in (["check", "Loopback News"], ["check"]):
        result = CliRunner().invoke(feeds, args)
        assert result.exit_code == 2, result.output
        assert "feeds.yaml: not found" in result.output
    assert list(tmp_path.iterdir()) == []


def test_check_allow_private_leaves_a_listed_feed_to_feeds_yaml(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/news.rss", body=RSS)
    path = tmp_path / "feeds.yaml"
    path.write_text(f"feeds:\n  - url: {feed_server.url('/news.rss')}\n    name: Local\n")
    result = CliRunner().invoke(feeds, ["check", "Local", "--allow-private", "-c", str(path)])
    assert result.exit_code == 1  # as it is polled: the setting in feeds.yaml decides
    assert "set allow_private: true for this feed in feeds.yaml" in result.output
    assert not feed_server.requests


def test_status_before_and_after_a_poll(tmp_path: Path, feed_server: FeedServer) -> None:
    from aggregator.intake import decide
    from aggregator.poller import poll
    from aggregator.store import Store

    feed_server.route("/ok.rss", body=RSS)
    feed_server.route("/broken.rss", status=500)
    path = write_local_config(tmp_path, feed_server, "/ok.rss", "/broken.rss")

    before = json.loads(cli("status", "--json", "-c", path).output)
    assert [h["last_status"] for h in before] == [None, None]

    config = load_config(path)
    with Store.open(config.database) as store:
        for outcome in poll(store.feed_states(config.feeds), now=datetime.now(UTC)):
            store.record_updates([decide(outcome, None)])

    after = json.loads(cli("status", "--json", "-c", path).output)
    assert [h["last_status"] for h in after] == ["ok", "error"]
    assert after[0]["items_7d"] == 1 and after[0]["name"] == "Feed /ok.rss"
    assert after[1]["consecutive_errors"] == 1 and "HTTP 500" in after[1]["last_error"]
    table = cli("status", "-c", path).output
    assert "STATUS" in table and "Feed /broken.rss: HTTP 500" in table


@pytest.mark.parametrize(
    ("span", "shown"),
    [
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=45, seconds=30), "45m"),
        (timedelta(hours=1, minutes=59, seconds=5), "1h59m"),
        (timedelta(hours=3), "3h"),
        (timedelta(days=2, hours=3, minutes=5), "2d3h"),
    ],
)
def test_status_times_keep_their_next_unit(span: timedelta, shown: str) -> None:
    """The NEXT column said "in 1h" of a feed due in 1h59m."""
    from aggregator.feeds_cli import _ago, _until

    now = datetime(2026, 12, 8, 12, tzinfo=UTC)
    assert _until(now + span, now, gone=False) == f"in {shown}"
    assert _ago(now - span, now) == f"{shown} ago"


def test_status_shows_where_a_moved_feed_is_polled(tmp_path: Path, feed_server: FeedServer) -> None:
    """A 301 is followed and remembered by `aggregator poll` too: `feeds status --json` had the
    new address (fetch_url), the table did not say it; feeds.yaml keeps the old one."""
    from aggregator.cli import main

    feed_server.route("/new.rss", body=RSS)
    feed_server.redirect("/old.rss", "/new.rss", 301)
    path = write_local_config(tmp_path, feed_server, "/old.rss")
    polled = CliRunner().invoke(main, ["poll", "-c", str(path)])
    assert polled.exit_code == 0, polled.output
    assert f"moved permanently to {feed_server.url('/new.rss')}" in polled.output

    [health] = json.loads(cli("status", "--json", "-c", path).output)
    assert health["url"] == feed_server.url("/old.rss")
    assert health["fetch_url"] == feed_server.url("/new.rss")
    table = cli("status", "-c", path).output
    assert (
        f"Feed /old.rss: moved permanently to {feed_server.url('/new.rss')}: polled there "
        f"(feeds.yaml keeps {feed_server.url('/old.rss')})"
    ) in table
    assert "old.rss" in path.read_text()
    asked = len(feed_server.requests)
    assert CliRunner().invoke(main, ["poll", "--force", "-c", str(path)]).exit_code == 0
    assert [r.route for r in feed_server.requests[asked:]] == ["/new.rss"]  # not the old URL
    assert "one address" not in table

    # the new address was in feeds.yaml already: both feeds are polled there, each time
    both = write_local_config(tmp_path, feed_server, "/old.rss", "/new.rss")
    assert CliRunner().invoke(main, ["poll", "-c", str(both)]).exit_code == 0
    assert (
        f"Feed /old.rss and Feed /new.rss: polled at one address, {feed_server.url('/new.rss')}, "
        "since a permanent redirect: remove all but one of them from feeds.yaml"
    ) in cli("status", "-c", both).output


def test_a_feed_without_a_name_is_shown_by_its_title_as_on_the_site(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """`name` defaults to the feed's title: the site, the email and `feeds value` said
    "Loopback News", while `feeds list` said "-" and `status` and `export` gave the URL."""
    from aggregator.cli import main

    feed_server.route("/news.rss", body=RSS)
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"allow_private: true\ndatabase: news.db\nfeeds:\n  - {feed_server.url('/news.rss')}\n"
    )
    before = cli("list", "-c", path).output
    assert "Loopback News" not in before and not (tmp_path / "news.db").exists()  # not created
    assert CliRunner().invoke(main, ["poll", "-c", str(path)]).exit_code == 0

    assert "Loopback News" in cli("list", "-c", path).output
    assert "Loopback News" in cli("status", "-c", path).output
    [health] = json.loads(cli("status", "--json", "-c", path).output)
    assert (health["name"], health["shown_as"]) == (None, "Loopback News")
    assert 'text="Loopback News"' in cli("export", "-c", path).output
    assert "name:" not in path.read_text()  # feeds.yaml is not touched

    removed = cli("remove", "loopback news", "-c", path)  # as `feeds list` shows it
    assert removed.exit_code == 0, removed.output
    assert f"Removed loopback news ({feed_server.url('/news.rss')})" in removed.output
    assert load_config(path).feeds == ()


def test_removing_by_a_title_two_unnamed_feeds_show_removes_neither(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    from aggregator.cli import main

    feed_server.route("/a.rss", body=RSS)
    feed_server.route("/b.rss", body=RSS.replace(b"x.example/a", b"x.example/b"))  # same title
    urls = [feed_server.url("/a.rss"), feed_server.url("/b.rss")]
    path = tmp_path / "feeds.yaml"
    listed = "".join(f"  - {url}\n" for url in urls)
    path.write_text(f"allow_private: true\ndatabase: news.db\nfeeds:\n{listed}")
    assert CliRunner().invoke(main, ["poll", "-c", str(path)]).exit_code == 0

    refused = cli("remove", "Loopback News", "-c", path)
    assert refused.exit_code != 0
    assert "2 feeds" in refused.output and all(url in refused.output for url in urls)
    assert [f.url for f in load_config(path).feeds] == urls


def test_a_name_that_an_unnamed_feed_is_shown_as_too_removes_neither(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """An unnamed feed shown by its polled title "Loopback News" beside a feed given that
    name: `feeds remove "Loopback News"` removed the named one in silence (both are listed
    alike); it names both URLs and removes neither, and the removed feed's URL is said."""
    from aggregator.cli import main

    feed_server.route("/a.rss", body=RSS)
    feed_server.route("/b.rss", body=RSS.replace(b"x.example/a", b"x.example/b"))
    unnamed, named = feed_server.url("/a.rss"), feed_server.url("/b.rss")
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "allow_private: true\ndatabase: news.db\nfeeds:\n"
        f"  - {unnamed}\n  - url: {named}\n    name: Loopback News\n"
    )
    assert CliRunner().invoke(main, ["poll", "-c", str(path)]).exit_code == 0
    assert cli("list", "-c", path).output.count("Loopback News") == 2

    refused = cli("remove", "loopback news", "-c", path)
    assert refused.exit_code == 2, refused.output
    assert "2 feeds" in refused.output and unnamed in refused.output and named in refused.output
    assert [f.url for f in load_config(path).feeds] == [unnamed, named]

    removed = cli("remove", named, "-c", path)
    assert removed.exit_code == 0, removed.output
    assert "Removed" in removed.output
    assert [f.url for f in load_config(path).feeds] == [unnamed]


def test_removing_by_name_says_which_url_went(config: Path) -> None:
    result = cli("remove", "Local Paper", "-c", config)
    assert result.exit_code == 0, result.output
    assert "Removed Local Paper (https://local.example/atom.xml)" in result.output


def write_unnamed_config(tmp_path: Path, server: FeedServer, *paths: str) -> Path:
    """feeds.yaml listing the loopback feeds at `paths` without `name`."""
    path = tmp_path / "feeds.yaml"
    listed = "".join(f"  - {server.url(p)}\n" for p in paths)
    path.write_text(f"allow_private: true\ndatabase: news.db\nfeeds:\n{listed}")
    return path


def routes_since(server: FeedServer, asked: int) -> list[str]:
    return sorted(r.route for r in server.requests[asked:] if r.route != "/robots.txt")


def test_a_feed_without_a_name_is_checked_polled_and_fetched_by_its_shown_title(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """`feeds check`, `poll --force` and `fetch-text --feed` said "not a feed" of the title
    `feeds list` shows for a feed without `name` (`feeds remove` took it)."""
    from aggregator.cli import main
    from tests.support.articles import article_page

    story = feed_server.url("/story")
    feed_server.route("/news.rss", body=RSS.replace(b"https://x.example/a", story.encode()))
    feed_server.route("/other.rss", body=RSS.replace(b"Loopback News", b"Other News"))
    feed_server.route("/story", body=article_page("a", ["The council met on Monday."]))
    path = write_unnamed_config(tmp_path, feed_server, "/news.rss", "/other.rss")
    assert CliRunner().invoke(main, ["poll", "-c", str(path)]).exit_code == 0
    assert "Loopback News" in cli("list", "-c", path).output

    asked = len(feed_server.requests)
    checked = cli("check", "loopback news", "-c", path)  # as listed, whatever the case
    assert checked.exit_code == 0, checked.output
    assert "1 ok, 0 failed" in checked.output
    assert routes_since(feed_server, asked) == ["/news.rss"]

    asked = len(feed_server.requests)
    forced = CliRunner().invoke(main, ["poll", "--force", "Loopback News", "-c", str(path)])
    assert forced.exit_code == 0, forced.output
    assert routes_since(feed_server, asked) == ["/news.rss"]

    asked = len(feed_server.requests)
    args = ["fetch-text", "--feed", "Loopback News", "--since", "1", "-c", str(path)]
    fetched = CliRunner().invoke(main, args)
    assert "is not a feed" not in fetched.output, fetched.output
    assert routes_since(feed_server, asked) == ["/story"]


def test_a_feed_polled_with_no_item_of_its_own_is_shown_by_its_title(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A feed without `name` whose poll stored no item (none yet, or all through another
    feed) was shown by its URL, and its title was "not a feed in feeds.yaml"."""
    from aggregator.cli import main

    feed_server.route(
        "/quiet.rss", body=b"<rss version='2.0'><channel><title>Quiet Blog</title></channel></rss>"
    )
    path = write_unnamed_config(tmp_path, feed_server, "/quiet.rss")
    assert CliRunner().invoke(main, ["poll", "-c", str(path)]).exit_code == 0
    assert "Quiet Blog" in cli("list", "-c", path).output
    checked = cli("check", "Quiet Blog", "-c", path)
    assert checked.exit_code == 0, checked.output


def test_a_title_two_feeds_without_name_are_shown_by_checks_both(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """As a `name:` two feeds share names both for a check or a poll (only `remove` refuses
    to choose), so does the title two feeds without name are shown by."""
    from aggregator.cli import main

    feed_server.route("/a.rss", body=RSS)
    feed_server.route("/b.rss", body=RSS.replace(b"x.example/a", b"x.example/b"))  # same title
    path = write_unnamed_config(tmp_path, feed_server, "/a.rss", "/b.rss")
    assert CliRunner().invoke(main, ["poll", "-c", str(path)]).exit_code == 0

    asked = len(feed_server.requests)
    checked = cli("check", "Loopback News", "-c", path)
    assert checked.exit_code == 0, checked.output
    assert "2 ok, 0 failed" in checked.output
    assert routes_since(feed_server, asked) == ["/a.rss", "/b.rss"]

    never_polled = tmp_path / "other.yaml"  # no database: no title to go by yet
    never_polled.write_text(path.read_text().replace("news.db", "other.db"))
    unknown = cli("check", "Loopback News", "-c", never_polled)
    assert unknown.exit_code == 2 and "is not a feed in" in unknown.output
    assert not (tmp_path / "other.db").exists()


def test_tags_that_read_as_yaml_syntax_are_written_so_the_file_still_loads(tmp_path: Path) -> None:
    """`--tag '?later'` was written `tags: [?later]`, and every later command failed on it."""
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: https://a.example/rss\n", encoding="utf-8")
    tags = (
        "?later",
        "a, b",
        "x: y",
        "/r/worldnews",
        "u\u2028v",
        "a #b",
        "2024",
        "world",
        "New York",
    )
    add_feed(path, "https://b.example/rss", tags=tags)
    assert load_config(path).feeds[1].tags == tags
    assert "world, New York]" in path.read_text(encoding="utf-8")  # plain words stay plain


def test_a_blank_tag_is_refused_and_the_file_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: https://a.example/rss\n", encoding="utf-8")
    with pytest.raises(FeedsFileError, match="blank"):
        add_feed(path, "https://b.example/rss", tags=("world", "\t"))
    assert path.read_text(encoding="utf-8") == "feeds:\n  - url: https://a.example/rss\n"


def test_a_linked_feeds_yaml_is_edited_where_it_points_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "srv").mkdir()
    real = tmp_path / "repo" / "feeds.yaml"
    real.write_text("feeds:\n  - url: https://a.example/rss\n", encoding="utf-8")
    link = tmp_path / "srv" / "feeds.yaml"
    link.symlink_to(Path("..") / "repo" / "feeds.yaml")
    add_feed(link, "https://b.example/rss")
    assert link.is_symlink()
    assert [f.url for f in load_config(real).feeds] == [
        "https://a.example/rss",
        "https://b.example/rss",
    ]
    assert remove_feed(link, "https://a.example/rss")
    assert link.is_symlink() and [f.url for f in load_config(real).feeds] == [
        "https://b.example/rss"
    ]
