"""`aggregator email` end to end: a real SMTP server on loopback, once a day unless --force."""

from __future__ import annotations

import email
import smtplib
from datetime import UTC, date, datetime
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.digest import digest_to_dict
from aggregator.models import Digest, DigestItem, DigestStory
from aggregator.store import Store
from tests.test_email import Inbox, free_port, smtp_server  # noqa: F401  (fixture)

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def stored_digest(database: Path) -> None:
    item = DigestItem(
        title="Rail strike called off",
        link="https://a.example/1",
        outlet="A",
        published=NOW,
        is_copy=False,
    )
    other = DigestItem(
        title="Strike off after talks",
        link="https://b.example/2",
        outlet="B",
        published=NOW,
        is_copy=False,
    )
    story = DigestStory(
        id="s-rail",
        headline="Rail strike called off",
        link="https://a.example/1",
        keywords=("rail",),
        items=(item, other),
        first_seen=NOW,
        last_updated=NOW,
        status="new",
    )
    digest = Digest(day=date(2026, 11, 28), generated_at=NOW, stories=(story,))
    with Store.open(database) as store:
        store.save_digest("2026-11-28", NOW, digest_to_dict(digest))


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "database: news.db\nfeeds:\n  - url: https://a.example/feed\n"
        "email:\n  to: [reader@example.org]\n  from: digest@example.org\n"
        f"  smtp_host: 127.0.0.1\n  smtp_port: {port}\n"
    )
    return path


def test_email_is_sent_once_a_day_unless_forced(smtp_server, tmp_path: Path) -> None:  # noqa: F811
    controller, inbox, _ = smtp_server
    config = write_config(tmp_path, controller.port)
    stored_digest(tmp_path / "news.db")
    runner = CliRunner()

    first = runner.invoke(main, ["email", "-c", str(config)])
    assert first.exit_code == 0, first.output
    assert "sent to reader@example.org" in first.output
    assert len(inbox.envelopes) == 1
    message = email.message_from_bytes(inbox.envelopes[0].content, policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    assert "Rail strike called off" in message.get_body(("plain",)).get_content()
    assert inbox.envelopes[0].rcpt_tos == ["reader@example.org"]

    again = runner.invoke(main, ["email", "-c", str(config)])
    assert again.exit_code == 0
    assert "already sent" in again.output
    assert len(inbox.envelopes) == 1

    forced = runner.invoke(main, ["email", "--force", "-c", str(config)])
    assert forced.exit_code == 0 and len(inbox.envelopes) == 2


def test_an_email_already_sent_is_known_without_reading_every_digest(
    smtp_server,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An hourly `run --email` (or a publish worker's cycle) parsed every stored digest (a
    year: 1 GB, 10 s) before it saw the day's email was sent: the newest digest decides."""
    controller, _inbox, _ = smtp_server
    path = write_config(tmp_path, controller.port)
    stored_digest(tmp_path / "news.db")
    runner = CliRunner()
    assert runner.invoke(main, ["email", "-c", str(path)]).exit_code == 0
    asked: list[int | None] = []
    read = Store.digests

    def digests(self: Store, limit: int | None = None) -> list[dict]:
        asked.append(limit)
        return read(self, limit)

    monkeypatch.setattr(Store, "digests", digests)
    again = runner.invoke(main, ["email", "-c", str(path)])
    assert again.exit_code == 0 and "already sent" in again.output
    assert asked == [1]


def test_email_before_any_digest_fails_so_cron_notices(smtp_server, tmp_path: Path) -> None:  # noqa: F811
    controller, inbox, _ = smtp_server
    config = write_config(tmp_path, controller.port)
    with Store.open(tmp_path / "news.db"):  # a database with no digest in it
        pass
    result = CliRunner().invoke(main, ["email", "-c", str(config)])
    assert result.exit_code == 1, result.output
    assert "no digest yet" in result.output and "aggregator cluster" in result.output
    assert inbox.envelopes == []


def test_email_to_file_writes_an_eml_and_sends_nothing(smtp_server, tmp_path: Path) -> None:  # noqa: F811
    controller, inbox, _ = smtp_server
    config = write_config(tmp_path, controller.port)
    stored_digest(tmp_path / "news.db")
    target = tmp_path / "day.eml"
    result = CliRunner().invoke(main, ["email", "--to-file", str(target), "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"email: written to {target}"  # not "sent to"
    message = email.message_from_bytes(target.read_bytes(), policy=policy.default)
    assert message["To"] == "reader@example.org"
    assert inbox.envelopes == []


def test_an_eml_for_several_recipients_names_none_of_them(tmp_path: Path) -> None:
    """The file named every recipient in one To: header, as the sent message did: for several,
    it is addressed to "undisclosed-recipients:;" (each gets a copy of their own when sent),
    and dated when written, not when the digest was made."""
    from aggregator import pipeline
    from aggregator.config import load_config

    path = write_config(tmp_path, 25)
    path.write_text(path.read_text().replace("[reader@example.org]", "[a@example.org, b@x.org]"))
    stored_digest(tmp_path / "news.db")
    target = tmp_path / "day.eml"
    written = datetime(2026, 11, 28, 9, 15, tzinfo=UTC)
    with Store.open(tmp_path / "news.db") as store:
        assert pipeline.email(load_config(path), store, to_file=target, now=written).sent
    raw = target.read_bytes()
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["To"] == "undisclosed-recipients:;"
    assert b"a@example.org" not in raw and b"b@x.org" not in raw
    assert message["Date"] == "Sat, 28 Nov 2026 09:15:00 +0000"  # NOW (07:00) made the digest


class FailingOnce(Inbox):
    """Takes the first message, answers the next with a temporary failure (a rate limit),
    then takes every other."""

    refusals = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.envelopes and not self.refusals:
            self.refusals += 1
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


def test_a_recipient_refused_for_now_gets_it_at_the_next_run_and_the_others_once(
    tmp_path: Path,
) -> None:
    """A message each: a temporary refusal of the second (a rate limit) left the third
    without the day's email (the loop stopped) and the day counted as sent. Now the third
    gets it at once, the second at the next run, and no one twice."""
    from aiosmtpd.controller import Controller

    inbox = FailingOnce()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        path = write_config(tmp_path, controller.port)
        to = "[a@example.org, b@example.org, c@example.org]"
        path.write_text(path.read_text().replace("[reader@example.org]", to))
        stored_digest(tmp_path / "news.db")
        runner = CliRunner()
        first = runner.invoke(main, ["email", "-c", str(path)])
        assert first.exit_code == 0, first.output
        assert first.stdout.strip() == "email: sent to a@example.org, c@example.org"
        assert "not sent yet to b@example.org (451 4.3.0 try again later)" in first.stderr
        second = runner.invoke(main, ["email", "-c", str(path)])
        assert second.exit_code == 0 and second.stdout.strip() == "email: sent to b@example.org"
        third = runner.invoke(main, ["email", "-c", str(path)])
        assert third.exit_code == 0 and "already sent" in third.output
    finally:
        controller.stop()
    assert [e.rcpt_tos for e in inbox.envelopes] == [
        ["a@example.org"],
        ["c@example.org"],
        ["b@example.org"],
    ]
    with Store.open(tmp_path / "news.db") as store:
        assert store.email_destination("2026-11-28") == (
            "a@example.org, c@example.org, b@example.org"
        )
        assert store.email_pending("2026-11-28") == ()


def test_an_address_the_server_refuses_is_named_on_stderr(tmp_path: Path) -> None:
    """The others get theirs and the command succeeds, but a mistyped address in email.to
    was left out without a word: `email` says which the server refused."""
    from aiosmtpd.controller import Controller

    from tests.test_email import RefusingB

    inbox = RefusingB()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        path = write_config(tmp_path, controller.port)
        path.write_text(
            path.read_text().replace("[reader@example.org]", "[a@example.org, b@example.org]")
        )
        stored_digest(tmp_path / "news.db")
        result = CliRunner().invoke(main, ["email", "-c", str(path)])
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "email: sent to a@example.org"
    assert "the server refused b@example.org (550 no such mailbox): check those" in result.stderr


def test_email_failure_exits_1_with_the_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path, 9)  # nothing listens on port 9
    stored_digest(tmp_path / "news.db")
    result = CliRunner().invoke(main, ["email", "-c", str(config)])
    assert result.exit_code == 1
    assert "email not sent" in result.output


def _failure_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("aggregator: email not sent: ")
    return line


@pytest.mark.parametrize(
    ("security", "says"),
    [
        (
            "none",
            "nothing answers at email.smtp_host 127.0.0.1, email.smtp_port {refused} "
            "(connection refused): start the SMTP server there, or set smtp_host and smtp_port",
        ),
        (
            "starttls",
            "email.smtp_host 127.0.0.1, email.smtp_port {port} does not offer STARTTLS "
            "(email.security: starttls): set `security: ssl`",
        ),
        (
            "ssl",
            "TLS handshake with email.smtp_host 127.0.0.1, email.smtp_port {port} failed "
            "(wrong version number; email.security: ssl): if the server starts in plain text, "
            "set `security: starttls`",
        ),
    ],
)
def test_an_smtp_failure_names_the_settings_their_values_and_the_fix(
    smtp_server,  # noqa: F811
    tmp_path: Path,
    security: str,
    says: str,
) -> None:
    """Was "email not sent: [Errno 111] Connection refused", or "STARTTLS extension not
    supported by server.": neither the setting nor the fix."""
    controller, inbox, _ = smtp_server
    refused = free_port()
    port = refused if security == "none" else controller.port
    config = write_config(tmp_path, port)
    config.write_text(config.read_text() + f"  security: {security}\n")
    stored_digest(tmp_path / "news.db")
    line = _failure_line(CliRunner().invoke(main, ["email", "-c", str(config)]))
    assert says.format(refused=refused, port=controller.port) in line
    assert inbox.envelopes == []


def test_a_refused_login_names_the_variables_never_their_values(
    smtp_server,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_USER", "digest-user")
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "hunter2-secret")

    def refuse(self, user: str, password: str, **kwargs: object) -> None:
        raise smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid")

    monkeypatch.setattr(smtplib.SMTP, "login", refuse)
    config = write_config(tmp_path, smtp_server[0].port)
    config.write_text(
        config.read_text()
        + "  username_env: DIGEST_SMTP_USER\n  password_env: DIGEST_SMTP_PASSWORD\n"
    )
    stored_digest(tmp_path / "news.db")
    line = _failure_line(CliRunner().invoke(main, ["email", "-c", str(config)]))
    assert "the server refused the login (535 5.7.8 Authentication credentials invalid)" in line
    assert "DIGEST_SMTP_USER and DIGEST_SMTP_PASSWORD" in line
    assert "email.username_env and email.password_env" in line
    assert "digest-user" not in line and "hunter2" not in line


def test_already_sent_names_the_command_that_resends(smtp_server, tmp_path: Path) -> None:  # noqa: F811
    """`run --email` and `worker` said "(use --force to resend)": `run --force` re-polls the
    feeds and `worker` has no --force."""
    controller, _, _ = smtp_server
    config = write_config(tmp_path, controller.port)
    stored_digest(tmp_path / "news.db")
    runner = CliRunner()
    assert runner.invoke(main, ["email", "-c", str(config)]).exit_code == 0
    again = runner.invoke(main, ["email", "-c", str(config)])
    assert again.exit_code == 0
    assert "already sent (`aggregator email --force` resends it)" in again.output
    assert "use --force" not in again.output


@pytest.mark.parametrize("once", [["--once"], []], ids=["once", "looping"])
def test_a_worker_whose_email_fails_says_why_in_one_line(tmp_path: Path, once: list[str]) -> None:
    """Was an EmailError traceback out of the worker; a looping one still stops (exit 1)."""
    config = write_config(tmp_path, free_port())  # nothing listens there
    _recent_items(tmp_path / "news.db")  # a digest with no story is not sent at all
    result = CliRunner().invoke(
        main, ["worker", *once, "--role", "publish", "--email", "-c", str(config)]
    )
    assert "nothing answers at email.smtp_host 127.0.0.1" in _failure_line(result)
    assert "publish: 2 stories, site rebuilt; email not sent" in result.stdout


def _recent_items(database: Path) -> None:
    """Two unrelated items of the last hours: a day's digest with stories."""
    from datetime import timedelta

    from tests.support.stored import polled, record
    from tests.test_store import entry

    now = datetime.now(UTC)
    entries = [
        entry(1, title="Rail strike called off", published=now - timedelta(hours=1)),
        entry(2, title="Comet seen over Oslo", summary="Skies", published=now - timedelta(hours=2)),
    ]
    with Store.open(database) as store:
        record(store, polled("https://a.example/feed", entries, now), "A")


def test_a_looping_publisher_says_the_email_was_sent_once_not_every_cycle(
    smtp_server,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`worker --role publish --email` printed "email not sent: ... already sent" every cycle
    (2,880 lines a day at the default 30 s) and rendered the email each time; a loop prints
    only cycles that did something. With --once, what happened is still said."""
    from threading import Event

    import numpy as np

    from aggregator import cli
    from aggregator.config import load_config

    controller, inbox, _ = smtp_server
    config = load_config(write_config(tmp_path, controller.port))

    class Embedder:  # far-apart vectors: each item a story of its own
        model_key = "m"

        def embed(self, texts):
            return np.eye(len(texts), 8, dtype=np.float32)

    def cycle(once: bool) -> str:
        with Store.open(config.database) as store:
            cli._work("publish", config, store, "me", Event(), Embedder(), send=True, once=once)
        return capsys.readouterr().out

    _recent_items(config.database)
    assert "email sent to reader@example.org" in cycle(once=False)
    assert cycle(once=False) == ""  # nothing new: the site unchanged, the email sent before
    assert "already sent" in cycle(once=True)
    assert len(inbox.envelopes) == 1


def test_the_days_email_waits_for_send_after_and_for_a_story(
    smtp_server,  # noqa: F811
    tmp_path: Path,
) -> None:
    """From an hourly cron, `run --email` sent the day's digest at 00:07, dated today and
    holding yesterday's news, and a fresh install's first run sent "0 stories" and used up the
    day's email. Before `email.send_after` nothing is sent, and a digest with no story waits
    for a later run (neither is marked sent); `--force` sends either."""
    from aggregator import pipeline
    from aggregator.config import load_config

    controller, inbox, _ = smtp_server
    path = write_config(tmp_path, controller.port)
    path.write_text(
        path.read_text().replace("email:\n", "site:\n  timezone: Europe/Paris\nemail:\n")
        + '  send_after: "07:00"\n'
    )
    config = load_config(path)
    assert config.email.send_after == "07:00"
    stored_digest(tmp_path / "news.db")
    with Store.open(config.database) as store:
        early = pipeline.email(config, store, now=datetime(2026, 11, 28, 5, 30, tzinfo=UTC))
        assert (early.sent, early.waiting, early.failed) == (False, True, False)
        assert early.reason == "not yet: email.send_after is 07:00 (Europe/Paris), it is 06:30"
        assert not store.email_sent("2026-11-28") and not inbox.envelopes
        later = pipeline.email(config, store, now=datetime(2026, 11, 28, 6, 30, tzinfo=UTC))
        assert later.sent and len(inbox.envelopes) == 1
        digest = Digest(day=date(2026, 11, 29), generated_at=NOW, stories=())
        store.save_digest("2026-11-29", NOW, digest_to_dict(digest))
        empty = pipeline.email(config, store, now=datetime(2026, 11, 29, 9, 0, tzinfo=UTC))
        assert empty.waiting and empty.reason == "the digest for 2026-11-29 has no story yet"
        assert not store.email_sent("2026-11-29") and len(inbox.envelopes) == 1
        forced = pipeline.email(
            config, store, now=datetime(2026, 11, 29, 5, 0, tzinfo=UTC), force=True
        )
        assert forced.sent and len(inbox.envelopes) == 2
