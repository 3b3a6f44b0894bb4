"""`aggregator email` end to end: a real SMTP server on loopback, once a day unless --force."""

from __future__ import annotations

import email
from datetime import UTC, date, datetime
from email import policy
from pathlib import Path

from click.testing import CliRunner

from aggregator.cli import main
from aggregator.digest import digest_to_dict
from aggregator.models import Digest, DigestItem, DigestStory
from aggregator.store import Store
from tests.test_email import Inbox, smtp_server  # noqa: F401  (fixture)

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
        "database: news.db\nfeeds: []\n"
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
    message = email.message_from_bytes(target.read_bytes(), policy=policy.default)
    assert message["To"] == "reader@example.org"
    assert inbox.envelopes == []


def test_email_failure_exits_1_with_the_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path, 9)  # nothing listens on port 9
    stored_digest(tmp_path / "news.db")
    result = CliRunner().invoke(main, ["email", "-c", str(config)])
    assert result.exit_code == 1
    assert "email not sent" in result.output
