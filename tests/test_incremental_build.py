"""Builds render only the pages whose inputs changed, and come out as a full build would.

Hour by hour and day by day through `pipeline.build` on a SQLite file: after each change the
site built incrementally is compared, file by file, with a first build of the same digests
in a new folder. Changes that touch every page (a template of the user's, the site's title,
the time zone) render every page."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator import pipeline, site
from aggregator.cli import main
from aggregator.config import Config, SiteSettings
from aggregator.digest import digest_to_dict
from aggregator.models import Digest
from aggregator.site import builtin_templates_dir, day_page
from aggregator.store import Store
from tests.support.digests import TODAY, at, item, realistic_digests, story


def snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def pages(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.html"))


class Sites:
    """The incremental site (`config`'s output, built after each change) and, for each state,
    a first build of the same digests in a new folder from a second database."""

    def __init__(self, tmp_path: Path, config: Config) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.reference = tmp_path / "reference.db"
        self.builds = 0

    def save(self, *digests: Digest) -> None:
        for database in (self.config.database, self.reference):
            with Store.open(database) as store:
                for digest in digests:
                    day = digest.day.isoformat()
                    store.save_digest(day, digest.generated_at, digest_to_dict(digest))

    def build(self, **options: bool) -> pipeline.BuildSummary:
        """The incremental build, checked against a first build in a new folder."""
        with Store.open(self.config.database) as store:
            summary = pipeline.build(self.config, store, **options)
        self.builds += 1
        fresh = dataclasses.replace(
            self.config, database=self.reference, output=self.tmp_path / f"full-{self.builds}"
        )
        with Store.open(fresh.database) as store:
            pipeline.build(fresh, store)
        assert snapshot(self.config.output) == snapshot(fresh.output)
        return summary


def test_an_incremental_build_is_a_full_build_file_for_file(tmp_path: Path) -> None:
    config = Config(tmp_path / "feeds.yaml", (), tmp_path / "news.db", tmp_path / "site")
    sites = Sites(tmp_path, config)
    digests = realistic_digests(5)
    sites.save(*digests)
    first = sites.build()
    every_page = pages(config.output)
    assert len(first.rendered) == every_page

    # An hour later: today's digest again, with one more report and one more story.
    today = digests[0]
    grown = dataclasses.replace(
        today.stories[0],
        items=(
            *today.stories[0].items,
            item("Coastline News", "Strike: trains run", at(TODAY, 19)),
        ),
    )
    news = story("late-news", "Late news", (item("Summit Post", "Late news", at(TODAY, 19, 5)),))
    an_hour_later = dataclasses.replace(
        today,
        generated_at=today.generated_at + timedelta(hours=1),
        stories=(grown, *today.stories[1:], news),
    )
    sites.save(an_hour_later)
    rendered = set(sites.build().rendered)
    # Today's page, its neighbour's (its link to today), the pages of the stories and outlets
    # today shows and the site's indexes are rendered; the other days' pages stay as they were.
    days = {day_page(d.day) for d in digests}
    assert days & rendered == {day_page(TODAY), day_page(TODAY - timedelta(days=1))}
    assert {"index.html", "archive/index.html", "stories/late-news.html"} <= rendered
    assert len(rendered) < every_page
    assert sites.build(force=True).rendered == ()  # nothing changed since

    # A new day: yesterday's page gets its link to the new one.
    tomorrow = realistic_digests(1, today=TODAY + timedelta(days=1), hostile=False)[0]
    sites.save(tomorrow)
    rendered = set(sites.build().rendered)
    assert days & rendered == {day_page(TODAY)}
    assert day_page(tomorrow.day) in rendered

    # Changes every page shows: each renders every page again.
    mine = tmp_path / "mine"
    mine.mkdir()
    base = (builtin_templates_dir() / "base.html").read_text()
    (mine / "base.html").write_text(base.replace("<body", "<body data-mine", 1))
    for change in (
        {"templates": mine},
        {"site": SiteSettings(title="Another title")},
        {"site": SiteSettings(title="Another title", timezone="Asia/Tokyo")},
        {"templates": None},
    ):
        sites.config = dataclasses.replace(sites.config, **change)
        assert len(sites.build().rendered) == pages(config.output), change
    assert "data-mine" not in (config.output / "index.html").read_text()

    # A page changed by hand is rendered again (the others stay); `full` renders them all.
    oldest = config.output / day_page(digests[-1].day)
    oldest.write_text("edited")
    assert sites.build(force=True).rendered == (day_page(digests[-1].day),)
    assert len(sites.build(full=True).rendered) == pages(config.output)


def test_a_build_in_another_process_with_nothing_new_is_skipped(tmp_path: Path) -> None:
    """Hourly runs are new processes, whose string hashes differ: a feed's tags, held as a set,
    came out in another order in the build's fingerprint in each, so with coverage tags no
    build was ever skipped as unchanged."""
    import subprocess
    import sys

    (tmp_path / "feeds.yaml").write_text(
        "database: news.db\noutput: site\ncoverage:\n  lean: [left, right]\n"
        "  region: [uk, us, world]\nfeeds:\n"
        "  - url: https://a.example/feed\n    tags: [left, uk, world, politics, news]\n"
        "  - url: https://b.example/feed\n    tags: [right, us, business, tech]\n"
    )
    with Store.open(tmp_path / "news.db") as store:
        for digest in realistic_digests(2):
            store.save_digest(digest.day.isoformat(), digest.generated_at, digest_to_dict(digest))
    outputs = []
    for seed in ("1", "2", "3"):
        built = subprocess.run(
            [sys.executable, "-m", "aggregator", "build", "-c", str(tmp_path / "feeds.yaml")],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=120,
        )
        assert built.returncode == 0, built.stderr
        outputs.append(built.stdout)
    assert "unchanged" not in outputs[0]
    assert ["unchanged" in out for out in outputs[1:]] == [True, True], outputs


def test_build_full_renders_every_page(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(
        "database: news.db\noutput: site\nfeeds:\n  - url: https://a.example/feed\n"
    )
    with Store.open(tmp_path / "news.db") as store:
        for digest in realistic_digests(3):
            store.save_digest(digest.day.isoformat(), digest.generated_at, digest_to_dict(digest))
    runner = CliRunner()
    command = ["build", "-c", str(tmp_path / "feeds.yaml")]
    first = runner.invoke(main, command)
    assert first.exit_code == 0, first.output
    every_page = pages(tmp_path / "site")
    assert f"{every_page} pages rendered" in first.output
    again = runner.invoke(main, [*command, "--force"])
    assert "0 pages rendered" in again.output
    full = runner.invoke(main, [*command, "--full"])
    assert full.exit_code == 0 and f"{every_page} pages rendered" in full.output


def test_a_template_in_a_symlinked_folder_of_the_users_is_an_input_of_every_page(
    tmp_path: Path,
) -> None:
    """A user's templates folder may link a folder of partials shared by several sites
    (`partials -> ../shared`); jinja reads through the link. The fingerprints only looked at
    the files pathlib's rglob lists, which leaves out what a linked folder holds: a changed
    partial was no change, the build said "unchanged" and, once news came, every page but the
    new ones kept the old partial."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "footer.html").write_text("<p>footer one</p>\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "partials").symlink_to(shared, target_is_directory=True)
    (mine / "loop").symlink_to(mine, target_is_directory=True)  # a link loop ends the walk
    base = (builtin_templates_dir() / "base.html").read_text()
    footer = '{% include "partials/footer.html" %}</body>'
    (mine / "base.html").write_text(base.replace("</body>", footer, 1))
    config = Config(tmp_path / "feeds.yaml", (), tmp_path / "news.db", tmp_path / "site")
    sites = Sites(tmp_path, dataclasses.replace(config, templates=mine))
    digests = realistic_digests(3)
    sites.save(*digests[1:])
    sites.build()
    oldest = config.output / day_page(digests[-1].day)
    assert "footer one" in oldest.read_text()

    (shared / "footer.html").write_text("<p>footer two</p>\n")  # and news comes
    sites.save(digests[0])
    assert len(sites.build().rendered) == pages(config.output)
    assert "footer two" in oldest.read_text()

    (shared / "footer.html").write_text("<p>footer three</p>\n")  # alone
    summary = sites.build()
    assert not summary.skipped and len(summary.rendered) == pages(config.output)
    assert "footer three" in oldest.read_text()


def test_a_build_with_nothing_new_puts_back_what_was_deleted_or_edited_by_hand(
    tmp_path: Path,
) -> None:
    """A build whose data, settings and templates had not changed said "unchanged" as soon as
    index.html existed: a past day's page deleted or edited by hand, or feed.xml deleted,
    stayed so until news came (and a page forever, once its record said it was in place)."""
    (tmp_path / "feeds.yaml").write_text(
        "database: news.db\noutput: site\nfeeds:\n  - url: https://a.example/feed\n"
    )
    with Store.open(tmp_path / "news.db") as store:
        for digest in realistic_digests(3):
            store.save_digest(digest.day.isoformat(), digest.generated_at, digest_to_dict(digest))
    command = ["build", "-c", str(tmp_path / "feeds.yaml")]
    assert CliRunner().invoke(main, command).exit_code == 0
    folder = tmp_path / "site"
    before = snapshot(folder)
    again = CliRunner().invoke(main, command)
    assert "(unchanged)" in again.output  # nothing changed: nothing to do
    oldest, middle = sorted(folder.glob("20*/*/*/index.html"))[:2]
    oldest.unlink()
    middle.write_text("edited")
    (folder / "feed.xml").unlink()
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "(unchanged)" not in result.output and "2 pages rendered" in result.output
    assert snapshot(folder) == before


def test_another_machines_output_folder_is_not_taken_for_the_one_built(tmp_path: Path) -> None:
    """Publishing workers on two machines share the store, not the output folder, which has
    the same path on both (`output: site` beside feeds.yaml). A worker taking over publishing
    found the build fingerprint of the other's last build and its own folder's index.html, and
    left that folder as it was days ago: without today's page."""
    config = Config(tmp_path / "feeds.yaml", (), tmp_path / "news.db", tmp_path / "site")
    sites = Sites(tmp_path, config)
    digests = realistic_digests(3)
    sites.save(*digests[1:])
    sites.build()
    config.output.rename(tmp_path / "other-machine")  # this one's folder, as it was then
    sites.save(digests[0])
    sites.build()  # the other machine's build
    shutil.rmtree(config.output)
    (tmp_path / "other-machine").rename(config.output)
    summary = sites.build()  # compared with a first build of the same digests
    assert not summary.skipped and (config.output / day_page(TODAY)).is_file()


def test_a_page_recorded_without_its_file_is_rendered(tmp_path: Path) -> None:
    """A page whose file was gone (or no plain file) as its build recorded it has an empty
    signature in its record, which a missing file matched: the next build took the page as
    in place, wrote nothing, and listed it in the manifest."""
    config = Config(tmp_path / "feeds.yaml", (), tmp_path / "news.db", tmp_path / "site")
    sites = Sites(tmp_path, config)
    digests = realistic_digests(3)
    sites.save(*digests[1:])
    sites.build()
    oldest = day_page(digests[-1].day)
    with Store.open(config.database) as store:
        records = json.loads(store.meta(pipeline.SITE_PAGES_KEY))
        fingerprint = records[oldest].split(" ")[0]
        records[oldest] = f"{fingerprint} "  # deleted as the build recorded it
        store.set_meta(pipeline.SITE_PAGES_KEY, json.dumps(records))
    (config.output / oldest).unlink()
    sites.save(digests[0])
    assert oldest in sites.build().rendered  # and the site is a full build's


def test_a_page_another_build_replaces_as_this_one_installs_is_not_recorded_as_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builds into one folder at once (`aggregator build` by hand beside a publishing
    worker): the other one's page, renamed into place just after this build's, had its
    signature recorded with this build's fingerprint. Built from other data, it was taken
    for this build's page from then on: a past day's page kept the other build's version
    until its inputs changed, which they may never do."""
    config = Config(tmp_path / "feeds.yaml", (), tmp_path / "news.db", tmp_path / "site")
    sites = Sites(tmp_path, config)
    digests = realistic_digests(3)
    sites.save(*digests)
    oldest = config.output / day_page(digests[-1].day)
    real_install = site._install

    def install_then_the_other_build_installs(staging: Path, output: Path, paths) -> object:
        installed = real_install(staging, output, paths)
        other = oldest.with_name("other-build.tmp")
        other.write_text("the other build's page")
        os.replace(other, oldest)  # as the other build does: a rename into place
        return installed

    with monkeypatch.context() as patched:
        patched.setattr(site, "_install", install_then_the_other_build_installs)
        with Store.open(config.database) as store:
            pipeline.build(config, store)
    assert oldest.read_text() == "the other build's page"
    sites.build(force=True)  # this build's page again, as a full build writes it


def test_an_update_of_the_time_zone_rules_renders_every_page_again(tmp_path: Path) -> None:
    """A time zone database update that moves a country's clocks (rules changed at short notice)
    changes the times the pages show, as a full build would show them: the zone's rules are an
    input of every page. The database here is a folder of the test's, whose Europe/Dublin file
    takes Asia/Tokyo's rules."""
    import zoneinfo

    database = tmp_path / "zoneinfo"
    (database / "Europe").mkdir(parents=True)
    (database / "Europe/Dublin").write_bytes(zone_file("Europe/Dublin"))
    zoneinfo.reset_tzpath(to=[str(database)])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        config = Config(
            tmp_path / "feeds.yaml",
            (),
            tmp_path / "news.db",
            tmp_path / "site",
            site=SiteSettings(timezone="Europe/Dublin"),
        )
        sites = Sites(tmp_path, config)
        sites.save(*realistic_digests(3))
        sites.build()
        assert sites.build().rendered == ()

        before = snapshot(config.output)
        # in this process, which read the old rules (a worker runs for days)
        (database / "Europe/Dublin").write_bytes(zone_file("Asia/Tokyo"))
        assert len(sites.build().rendered) == pages(config.output)
        assert snapshot(config.output)["index.html"] != before["index.html"]  # 9 hours later
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


def zone_file(key: str) -> bytes:
    """A zone's file as zoneinfo finds it: the system's database, else the tzdata package."""
    import importlib.resources
    import zoneinfo

    for root in zoneinfo.TZPATH:
        if Path(root, key).is_file():
            return Path(root, key).read_bytes()
    return importlib.resources.files("tzdata.zoneinfo").joinpath(*key.split("/")).read_bytes()


def test_what_other_days_decide_reaches_every_page_that_shows_it(tmp_path: Path) -> None:
    """A page is keyed by what its views are made of: its day's digest as stored, and what the
    other digests decide about the names in it (a story's first report and first day, an
    outlet's page, whether a story it names has a page), not by walking every view. Each
    change below comes from another day's digest than the pages it must reach."""
    config = Config(tmp_path / "feeds.yaml", (), tmp_path / "news.db", tmp_path / "site")
    sites = Sites(tmp_path, config)
    digests = realistic_digests(5)
    sites.save(*digests)
    sites.build()
    days = {d.day: d for d in digests}
    yesterday, oldest = TODAY - timedelta(days=1), TODAY - timedelta(days=4)

    # A later `cluster` run makes a past day's digest again, with another headline.
    past = days[TODAY - timedelta(days=3)]
    edited = dataclasses.replace(past.stories[1], headline="A headline put right")
    past = days[past.day] = dataclasses.replace(
        past, stories=(past.stories[0], edited, *past.stories[2:])
    )
    sites.save(past)
    rendered = set(sites.build().rendered)
    assert day_page(past.day) in rendered and day_page(yesterday) not in rendered

    # A past day's digest gains an earlier report of a story only today showed: today's page
    # says "developing since" that day, the story's page has its history.
    only_today = next(
        s
        for s in digests[0].stories
        if all(s.id not in {t.id for t in d.stories} for d in digests[1:])
    )
    earlier = dataclasses.replace(
        only_today, items=(item("Harbour Times", "First word", at(oldest, 9)),), status="new"
    )
    first = days[oldest] = dataclasses.replace(
        days[oldest], stories=(*days[oldest].stories, earlier)
    )
    sites.save(first)
    rendered = set(sites.build().rendered)
    assert day_page(TODAY) in rendered and day_page(TODAY - timedelta(days=2)) not in rendered

    # A name with the plain page of another ("SUMMIT POST", "Summit Post": one slug) shown on
    # an earlier day takes that page: every page linking the other one changes.
    shouting = story("shouting", "Loud news", (item("SUMMIT POST", "Loud news", at(oldest, 8)),))
    first = days[oldest] = dataclasses.replace(first, stories=(*first.stories, shouting))
    sites.save(first)
    sites.build()

    # A past story says which story it was kept apart from; that one's page comes later.
    middle = days[TODAY - timedelta(days=2)]
    apart = dataclasses.replace(
        middle.stories[1],  # a story of that day alone: its page shows this day's version
        why_not="different places",
        why_not_story="coming-later",
        why_not_headline="Later story",
    )
    middle = dataclasses.replace(middle, stories=(middle.stories[0], apart, *middle.stories[2:]))
    sites.save(middle)
    sites.build()
    tomorrow = TODAY + timedelta(days=1)
    later = story("coming-later", "Later story", (item("Metro Morning", "Later", at(tomorrow, 7)),))
    sites.save(Digest(day=tomorrow, generated_at=at(tomorrow, 18), stories=(later,)))
    rendered = set(sites.build().rendered)
    assert day_page(middle.day) in rendered and day_page(oldest) not in rendered
    page = f"stories/{apart.id}.html"
    assert page in rendered and "coming-later.html" in (config.output / page).read_text()
