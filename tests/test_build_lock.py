"""Two builds into one output folder at once (a publishing worker beside `aggregator build`
by hand, two cron jobs overlapping) wait for each other, and leave one build's site.

Real threads, a real SQLite file, the built-in templates. The interleaving is forced, not
left to timing: the first build starts the second at a chosen point and waits until that
build has either finished (it did not wait: the bug) or says it is waiting for the folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator import pipeline, site
from aggregator.cli import main
from aggregator.config import Config
from aggregator.digest import digest_to_dict
from aggregator.models import Digest
from aggregator.site import MARKER_FILE, site_as_recorded, write_site
from aggregator.store import Store
from tests.support.digests import (
    TODAY,
    at,
    day_digest,
    item,
    realistic_digests,
    site_settings,
    story,
)


def save(database: Path, *digests: Digest) -> None:
    with Store.open(database) as store:
        for digest in digests:
            day = digest.day.isoformat()
            store.save_digest(day, digest.generated_at, digest_to_dict(digest))


def site_files(output: Path) -> set[str]:
    """The files a reader of the site gets (hidden ones are the build's own, 404 in serve)."""
    return {
        p.relative_to(output).as_posix()
        for p in output.rglob("*")
        if p.is_file() and not p.relative_to(output).as_posix().startswith(".")
    }


def manifest(output: Path) -> set[str]:
    return set(json.loads((output / MARKER_FILE).read_text())["files"])


class WaitingSeen(logging.Handler):
    """Set once a build says it waits for `output` (another build holds it)."""

    def __init__(self, output: Path) -> None:
        super().__init__()
        self.output = str(output)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "waiting" in message and self.output in message:
            self.seen.set()


class Other:
    """The other build, in a thread of its own with its own connection to the store."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.result: pipeline.BuildSummary | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with Store.open(self.config.database) as store:
                self.result = pipeline.build(self.config, store)
        except BaseException as exc:  # reported by finished()
            self.error = exc

    def start_and_let_it_run_or_wait(self, waiting: WaitingSeen) -> None:
        """Start it; return once it has finished, or is waiting for the folder's lock."""
        self.thread.start()
        deadline = time.monotonic() + 60
        while self.thread.is_alive() and not waiting.seen.is_set():
            assert time.monotonic() < deadline, "the other build neither finished nor waited"
            self.thread.join(0.02)

    def finished(self) -> pipeline.BuildSummary:
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@contextlib.contextmanager
def watching(output: Path) -> Iterator[WaitingSeen]:
    handler = WaitingSeen(output)
    logger = logging.getLogger("aggregator")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def setup(tmp_path: Path) -> tuple[Config, list[Digest]]:
    config = Config(tmp_path / "feeds.yaml", (), tmp_path / "news.db", tmp_path / "site")
    digests = realistic_digests(2, hostile=False)
    save(config.database, *digests)
    return config, digests


def later_digest(today: Digest) -> Digest:
    """Today's digest an hour later, with one more story."""
    news = story("late-news", "Late news", (item("Summit Post", "Late news", at(TODAY, 19, 5)),))
    return dataclasses.replace(
        today,
        generated_at=today.generated_at + timedelta(hours=1),
        stories=(*today.stories, news),
    )


def assert_one_builds_site(config: Config) -> None:
    """The folder holds one build's site: the manifest lists exactly the files there, the
    store's record describes those files (so the next build, with nothing new, is skipped),
    and no staging folder is left."""
    output = config.output
    assert manifest(output) == site_files(output)
    with Store.open(config.database) as store:
        record = pipeline._rendered_pages(store)
        assert site_as_recorded(output, record)
        assert pipeline.build(config, store).skipped
    assert not [p.name for p in output.iterdir() if p.name.startswith(".aggregator-build-")]


def test_a_second_build_waits_and_leaves_the_first_ones_staging_folder(tmp_path: Path) -> None:
    """The second build began by removing every staging folder in the output folder: the
    first build's too, while it was about to install from it (FileNotFoundError, reported
    as a SiteError: the publishing worker's or the cron job's build failed)."""
    config, _ = setup(tmp_path)
    with Store.open(config.database) as store:
        pipeline.build(config, store)
    save(config.database, later_digest(realistic_digests(1, hostile=False)[0]))
    other = Other(config)

    with watching(config.output) as waiting:

        def start_the_other_build() -> None:
            other.start_and_let_it_run_or_wait(waiting)

        with Store.open(config.database) as store:
            first = pipeline.build(config, store, before_swap=start_the_other_build)
        second = other.finished()
    assert not first.skipped
    assert second.skipped  # it found the site the first build left up to date
    assert "late-news" in (config.output / "index.html").read_text()
    assert_one_builds_site(config)
    assert waiting.seen.is_set()


def test_the_stores_record_describes_the_files_of_the_build_that_wrote_last(
    tmp_path: Path,
) -> None:
    """A build that installed its site first but stored its record of the pages last (after
    another build, of newer digests, had installed its own): the record described files no
    longer there, and the build fingerprint was the older data's. The next build rendered
    pages again for nothing, and a later one could take the newer build's files for the
    older one's pages."""
    config, digests = setup(tmp_path)
    newer = later_digest(digests[0])
    other = Other(config)

    with watching(config.output) as waiting:

        def newer_digest_and_the_other_build(real: Callable[[str, str], None]):
            def set_meta(key: str, value: str) -> None:
                if key == pipeline.SITE_PAGES_KEY and not other.thread.is_alive():
                    save(config.database, newer)
                    other.start_and_let_it_run_or_wait(waiting)
                real(key, value)

            return set_meta

        with Store.open(config.database) as store:
            store.set_meta = newer_digest_and_the_other_build(store.set_meta)
            first = pipeline.build(config, store)
        second = other.finished()
    assert not first.skipped and not second.skipped
    assert "late-news" in (config.output / "index.html").read_text()  # the newer digest's
    assert_one_builds_site(config)
    assert waiting.seen.is_set()  # and the other build had waited for this one


def test_many_builds_at_once_each_take_their_turn(tmp_path: Path) -> None:
    """Builds started together (each removes the lock file as it lets go, the next locks the
    one there then) all succeed, one after another, and leave one build's site."""
    config, _ = setup(tmp_path)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def build_twice() -> None:
        try:
            with Store.open(config.database) as store:
                start.wait()
                for _ in range(2):
                    pipeline.build(config, store, force=True)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=build_twice) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert not (config.output / site.LOCK_FILE).exists()
    assert_one_builds_site(config)


@contextlib.contextmanager
def held_by_another_process(output: Path) -> Iterator[int]:
    """`output`'s build lock, held by another process (its pid) until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(output)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        },
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder.pid
    finally:
        holder.communicate("", timeout=30)


ROOT = Path(__file__).resolve().parents[1]
PUBLISH = ("--role", "publish")
HOLD = """
import sys
from pathlib import Path
from aggregator.site import output_lock
with output_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_build_that_waited_too_long_names_the_folder_and_the_process_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`aggregator build` beside a build of the same folder that does not end: exit 75 (as
    for another run holding the database), one line naming the folder, the lock and the
    process holding it; the site stays as it was."""
    (tmp_path / "feeds.yaml").write_text(
        "database: news.db\noutput: site\nfeeds:\n  - url: https://a.example/feed\n"
    )
    save(tmp_path / "news.db", *realistic_digests(2, hostile=False))
    output = tmp_path / "site"
    command = ["build", "-c", str(tmp_path / "feeds.yaml")]
    assert CliRunner().invoke(main, command).exit_code == 0
    before = {p: p.read_bytes() for p in output.rglob("*") if p.is_file()}
    monkeypatch.setattr(site, "BUILD_LOCK_WAIT_SECONDS", 0.3)
    with held_by_another_process(output) as pid:
        result = CliRunner().invoke(main, [*command, "--force"])
    assert result.exit_code == 75, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("aggregator: ")
    assert "feeds.yaml:2: output: another build is writing into " in line
    assert f"{output} (process {pid}: " in line  # and its command line, cut to 100 characters
    assert f"lock {output / site.LOCK_FILE}" in line and "within 0.3 s" in line
    assert {p: p.read_bytes() for p in output.rglob("*") if p.is_file()} == before
    # Once it is done, the folder is free.
    assert CliRunner().invoke(main, [*command, "--force"]).exit_code == 0


def test_the_lock_file_is_the_builds_own(tmp_path: Path) -> None:
    """The lock file is there while a build runs, never after; in no manifest, not among
    the user's files the build reports as kept, not copied from `site.static`. A staging
    folder a killed build left is still removed."""
    output = tmp_path / "site"
    dead = output / ".aggregator-build-killed"
    (dead / "stories").mkdir(parents=True)
    (dead / "stories" / "a.html").write_text("half a build")
    during: list[bool] = []

    def look() -> None:
        during.append((output / site.LOCK_FILE).is_file())

    written = write_site(output, [day_digest(TODAY)], site_settings(), before_swap=look)
    assert during == [True]
    assert not (output / site.LOCK_FILE).exists()
    assert site.LOCK_FILE not in manifest(output)
    assert written.kept == () and written.newly_kept == ()
    assert not dead.exists()
    static = tmp_path / "static"
    static.mkdir()
    (static / site.LOCK_FILE).write_text("mine")
    with pytest.raises(site.SiteConflictError, match=r"\.aggregator-lock"):
        write_site(output, [day_digest(TODAY)], site_settings(), static_dir=static)
    assert not (output / site.LOCK_FILE).exists()


def test_a_publishing_worker_that_waited_too_long_tries_again_next_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's build waits for a build by hand as that one waits for it; past the
    wait, `worker --once` ends in one line (exit 75) and a looping worker warns and builds
    at its next cycle, instead of a traceback."""
    from aggregator import cli, workers

    config = Config(tmp_path / "feeds.yaml", (), tmp_path / "news.db", tmp_path / "site")

    def busy(*args: object, **kwargs: object) -> workers.PublishCycle:
        raise site.SiteBusyError("another build is writing into site")

    monkeypatch.setattr(workers, "publish_cycle", busy)
    with pytest.raises(SystemExit) as ended:
        cli._work("publish", config, None, "me", None, None, False, once=True)
    assert ended.value.code == 75
    assert cli._work("publish", config, None, "me", None, None, False, once=False) is None


@pytest.mark.parametrize("answer", ["ENOLCK", "EOPNOTSUPP", "EBADF"])
def test_a_file_system_that_cannot_lock_files_builds_without_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, answer: str
) -> None:
    """Some network and FUSE file systems answer flock with ENOLCK (NFS, where the file could
    only be opened read-only, with EBADF): the site is built as it was before builds took
    turns, with a warning, not refused as an unwritable folder."""
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        code = getattr(errno, answer)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    output = tmp_path / "site"
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        written = write_site(output, [day_digest(TODAY)], site_settings())
    assert (output / "index.html").is_file() and written.files
    assert "cannot lock files" in caplog.text
    assert not (output / site.LOCK_FILE).exists()


def test_an_error_writing_the_site_is_reported_at_once_not_as_a_busy_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pipeline.build` holds the folder's lock and `write_site` takes it again: an OSError of
    the build (a full disk) is the build's error, at once; it was taken for the lock being
    held, waited for the whole wait, and ended as "another build is writing" naming itself."""
    import errno

    config, _ = setup(tmp_path)
    monkeypatch.setattr(site, "BUILD_LOCK_WAIT_SECONDS", 2.0)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(config.output / "index.html"))

    monkeypatch.setattr(site, "_write_site", disk_full)
    started = time.monotonic()
    with Store.open(config.database) as store, pytest.raises(site.SiteError) as failed:
        pipeline.build(config, store)
    assert not isinstance(failed.value, site.SiteBusyError)
    assert "No space left on device" in str(failed.value)
    assert time.monotonic() - started < 1.5


def test_a_fifo_or_a_link_at_the_lock_files_path_is_named_not_waited_on(tmp_path: Path) -> None:
    """Opening a FIFO waits for a writer: a FIFO put where the lock file goes hung every build,
    whatever its wait. It, and a link (never followed), are named as not the build's file."""
    output = tmp_path / "site"
    output.mkdir()
    lock = output / site.LOCK_FILE
    os.mkfifo(lock)
    outcome: list[BaseException | None] = []

    def build() -> None:
        try:
            write_site(output, [day_digest(TODAY)], site_settings())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=build, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():  # let the old code's open() go, so the test ends
        os.close(os.open(lock, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(20)
    assert outcome and isinstance(outcome[0], site.SiteError), outcome
    assert "is not a regular file" in str(outcome[0])
    lock.unlink()
    (tmp_path / "elsewhere").write_text("not the site's")
    lock.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(site.SiteError, match="is not a regular file"):
        write_site(output, [day_digest(TODAY)], site_settings())
    assert (tmp_path / "elsewhere").read_text() == "not the site's"


def test_a_build_with_nothing_new_into_a_read_only_folder_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site published from a read-only mount (or a folder this user may not write) is
    skipped by a build with nothing new, as before builds took turns: the lock file cannot be
    made there, and a build that writes nothing need not lock. (Opening is made to fail: as
    root, the tests' user, permissions do not stop it.)"""
    import errno

    config, _ = setup(tmp_path)
    with Store.open(config.database) as store:
        pipeline.build(config, store)

    monkeypatch.setattr(os, "open", _refusing_lock_files(os.open, errno.EROFS))
    with Store.open(config.database) as store:
        assert pipeline.build(config, store).skipped


def _refusing_lock_files(real_open: Callable[..., int], code: int) -> Callable[..., int]:
    def opened(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith(site.LOCK_FILE):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)

    return opened


def test_a_publishing_worker_waits_for_another_build_half_its_lease_at_most(
    tmp_path: Path,
) -> None:
    """A worker waiting for the folder past its lease would lose the lease, render all, and
    throw the build away at the swap: it waits half its lease (here 2 s of 4), then leaves
    the build to its next cycle (SiteBusyError), keeping the lease it holds."""
    from aggregator import workers
    from aggregator.config import load_config
    from tests.test_workers import write_config

    config = load_config(
        write_config(tmp_path, tmp_path / "news.db", [], "workers: {lease_seconds: 4}")
    )
    save(config.database, *realistic_digests(2, hostile=False))
    with held_by_another_process(config.output), Store.open(config.database) as store:
        started = time.monotonic()
        with pytest.raises(site.SiteBusyError, match="within 2 s"):
            workers.publish_cycle(config, store, "me")
        assert time.monotonic() - started < 30
        assert store.leader_held(workers.PUBLISH_ROLE, "me", None)


def test_a_file_of_the_users_at_the_lock_files_path_is_not_deleted(tmp_path: Path) -> None:
    """A build removes the lock file it made as it lets go; a file of the user's by that name
    (it has text: a build writes none in its lock file) is locked but kept."""
    output = tmp_path / "site"
    output.mkdir()
    (output / site.LOCK_FILE).write_text("mine")
    write_site(output, [day_digest(TODAY)], site_settings())
    assert (output / site.LOCK_FILE).read_text() == "mine"
    assert site.LOCK_FILE not in manifest(output)


def test_a_publishing_worker_told_to_stop_while_waiting_for_another_build_stops_at_once(
    tmp_path: Path,
) -> None:
    """SIGTERM to a looping publish worker waiting for another build's lock: it waited the
    rest of half its lease (5 minutes by default), then built, before it stopped, long
    past a service manager's stop timeout. It stops now, exit 0, having built nothing."""
    import signal

    from tests.test_workers import write_config

    config = write_config(tmp_path, tmp_path / "news.db", [], "workers: {idle_seconds: 60}")
    output = tmp_path / "site"
    with held_by_another_process(output):
        out, err = tmp_path / "out.txt", tmp_path / "err.txt"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "aggregator", "worker", "-c", str(config), *PUBLISH],
                stdout=stdout,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            try:
                deadline = time.monotonic() + 120
                while "waiting for another build" not in err.read_text():
                    assert process.poll() is None, err.read_text()
                    assert time.monotonic() < deadline, err.read_text()
                    time.sleep(0.05)
                process.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
                assert process.wait(timeout=60) == 0, err.read_text()
                assert time.monotonic() - stopped_at < 10
            finally:
                if process.poll() is None:
                    process.kill()
    assert "stopped while waiting for another build" in out.read_text()
    assert "Traceback" not in err.read_text()
    assert not (output / "index.html").exists()
