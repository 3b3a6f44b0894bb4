"""The daily email: structure, inlined styles, header safety, and delivery to a real SMTP server."""

from __future__ import annotations

import contextlib
import dataclasses
import email
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import lxml.html
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from aggregator.emailer import EmailError, render_email, send_email, write_eml
from aggregator.site import story_slug
from tests.support.contrast import block, contrast, declarations, rules
from tests.support.coverage import coverage_digests, spec
from tests.support.digests import (
    CRLF_HEADLINE,
    LONG_KEYWORD,
    LONG_OUTLET,
    LONG_URL_HEADLINE,
    LONG_WORD,
    SCRIPT,
    day_digest,
    email_settings,
    long_word_story,
    realistic_digests,
    site_settings,
)

BASE_URL = "https://news.example.org/digest/"


class Inbox:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


class Credentials:
    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(
        self, server: object, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.seen.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Inbox, Credentials]]:
    inbox, credentials = Inbox(), Credentials()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=credentials,
        auth_require_tls=False,  # loopback only, in a test
    )
    controller.start()
    try:
        yield controller, inbox, credentials
    finally:
        controller.stop()


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


@pytest.fixture(scope="module")
def digest():
    return realistic_digests()[0]


def test_message_is_multipart_alternative_with_inlined_styles(digest) -> None:
    message = render_email(digest, email_settings(), site_settings(base_url=BASE_URL))
    assert message.get_content_type() == "multipart/alternative"
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/html"]
    text, html = parts(message)
    doc = lxml.html.fromstring(html)
    # Readable where <style> is stripped: the look lives in style="" attributes.
    assert doc.xpath("//h2[@style]") and doc.xpath("//a[@style]")
    assert 'style="' in html
    assert "<script" not in html.lower()
    headlines = [h.text_content() for h in doc.xpath("//h2")]
    assert headlines[0] == "Regional rail strike called off after overnight talks"
    assert "Regional rail strike called off after overnight talks" in text
    # With a public site, headlines link to its story pages.
    first = doc.xpath("//h2/a")[0].get("href")
    assert first == BASE_URL + "stories/rail-strike-2026.html"
    assert BASE_URL + "stories/rail-strike-2026.html" in text
    assert BASE_URL + "2026/11/28/index.html" in text


def test_without_base_url_headlines_link_to_articles(digest) -> None:
    message = render_email(digest, email_settings(), site_settings(base_url=None))
    _, html = parts(message)
    hrefs = lxml.html.fromstring(html).xpath("//a/@href")
    assert hrefs and all(h.startswith("https://") for h in hrefs)
    assert digest.stories[0].link in hrefs


def test_a_headline_carries_its_feeds_language(digest) -> None:
    """A story from a feed declaring Hebrew: its headline and summary say lang="he" (a
    screen reader's voice), the others the message's own."""
    first = dataclasses.replace(digest.stories[0], lang="he", summary="תקציר")
    hebrew = dataclasses.replace(digest, stories=(first, *digest.stories[1:]))
    _, html = parts(render_email(hebrew, email_settings(), site_settings()))
    doc = lxml.html.fromstring(html)
    languages = [h.get("lang") for h in doc.xpath("//h2[contains(@class, 'headline')]")]
    assert languages[0] == "he" and set(languages[1:]) == {None}
    assert doc.xpath("//p[contains(@class, 'summary')]")[0].get("lang") == "he"


def test_only_http_links_and_escaped_text(digest) -> None:
    _, html = parts(render_email(digest, email_settings(), site_settings()))
    doc = lxml.html.fromstring(html)
    for href in doc.xpath("//@href"):
        assert href.startswith(("http://", "https://")), href
    assert not [a for el in doc.iter() for a in el.attrib if a.lower().startswith("on")]
    assert SCRIPT in doc.text_content()  # shown as text


def test_top_n_stories(digest) -> None:
    message = render_email(digest, email_settings(max_stories=3), site_settings())
    text, html = parts(message)
    assert len(lxml.html.fromstring(html).xpath("//h2")) == 3
    assert f"and {len(digest.stories) - 3} more stories" in text


def test_headers_cannot_be_injected() -> None:
    hostile = day_digest(realistic_digests()[0].day, hostile=True)
    crlf_story = next(s for s in hostile.stories if s.headline == CRLF_HEADLINE)
    digest = dataclasses.replace(hostile, stories=(crlf_story, *hostile.stories))  # in the subject
    settings = email_settings(subject="Digest\r\nBcc: everyone@example.org")
    raw = render_email(digest, settings, site_settings()).as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert "Markets rally" in parsed["Subject"] and "\n" not in parsed["Subject"]
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    names = {line.split(b":", 1)[0] for line in header_block.split(b"\r\n") if line[:1] != b" "}
    assert names == {
        b"Subject",
        b"From",
        b"To",
        b"Date",
        b"Message-ID",
        b"Auto-Submitted",
        b"MIME-Version",
        b"Content-Type",
    }


def test_message_id_is_deterministic_and_the_date_is_when_it_is_written(digest) -> None:
    """The Date: was the digest's build time (18:30), hours before a 07:30 send."""
    now = datetime(2026, 11, 29, 7, 30, 5, tzinfo=UTC)
    first = render_email(digest, email_settings(), site_settings(), now=now)
    second = render_email(digest, email_settings(), site_settings(), now=now)
    assert first.as_bytes() == second.as_bytes()
    assert first["Message-ID"].endswith("@example.org>")
    assert first["Date"] == "Sun, 29 Nov 2026 07:30:05 +0000"
    before = datetime.now(UTC).replace(microsecond=0)
    unstated = render_email(digest, email_settings(), site_settings())["Date"].datetime
    assert before <= unstated <= datetime.now(UTC)
    rerun = dataclasses.replace(digest, generated_at=digest.generated_at.replace(hour=19))
    assert (
        render_email(rerun, email_settings(), site_settings())["Message-ID"] != first["Message-ID"]
    )


def test_send_to_a_real_smtp_server(smtp_server, digest) -> None:
    controller, inbox, _ = smtp_server
    settings = email_settings(smtp_port=controller.port, to=("a@example.org", "b@example.org"))
    send_email(render_email(digest, settings, site_settings(base_url=BASE_URL)), settings)
    envelope = inbox.envelopes[0]
    assert envelope.mail_from == "digest@example.org"
    received = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert received.get_content_type() == "multipart/alternative"
    text, html = parts(received)
    assert 'style="' in html
    assert "Regional rail strike called off after overnight talks" in html
    assert f"{BASE_URL}stories/{story_slug('rail-strike-2026')}.html" in html
    assert "Regional rail strike" in text


def test_each_recipient_gets_a_message_of_their_own(smtp_server, digest) -> None:
    """All of email.to stood in one To: header, so every reader saw the others' addresses: each
    now gets a message addressed to them alone, with its own Message-ID, dated when sent."""
    controller, inbox, _ = smtp_server
    to = ("a@example.org", "Bea <b@example.org>", "c@example.org")
    settings = email_settings(smtp_port=controller.port, to=to)
    message = render_email(
        digest, settings, site_settings(), now=datetime(2026, 11, 28, 19, 0, tzinfo=UTC)
    )
    assert message["To"] == "undisclosed-recipients:;"  # as written by --to-file
    before = datetime.now(UTC).replace(microsecond=0)
    assert send_email(message, settings).delivered == to
    assert [e.rcpt_tos for e in inbox.envelopes] == [
        ["a@example.org"],
        ["b@example.org"],
        ["c@example.org"],
    ]
    received = [
        email.message_from_bytes(e.original_content, policy=policy.default) for e in inbox.envelopes
    ]
    assert [str(m["To"]) for m in received] == list(to)
    for envelope, own in zip(inbox.envelopes, received, strict=True):
        others = {"a@example.org", "b@example.org", "c@example.org"} - set(envelope.rcpt_tos)
        assert not [a for a in others if a.encode() in envelope.original_content]
        assert before <= own["Date"].datetime <= datetime.now(UTC)  # sent now, not at 19:00
        assert own["Message-ID"].endswith("@example.org>")
    assert len({m["Message-ID"] for m in received} | {message["Message-ID"]}) == 4


def test_a_long_summary_ends_where_a_word_does_or_inside_a_long_one(digest) -> None:
    """truncate(220) left out a last word longer than the room left ("Summary with...", the
    rest of the line empty) and ended with "..." where headlines end with "…"."""
    long_word = dataclasses.replace(digest.stories[0], summary="Summary with " + LONG_WORD)
    words = "The council met again on Friday " * 10
    many = dataclasses.replace(digest.stories[1], summary=words)
    message = render_email(
        dataclasses.replace(digest, stories=(long_word, many)), email_settings(), site_settings()
    )
    text, html = parts(message)
    shown = [p.text_content() for p in lxml.html.fromstring(html).xpath("//p[@class='summary']")]
    cut = ("Summary with " + LONG_WORD)[:219] + "…"
    assert shown[0] == cut
    assert shown[1].endswith("…") and len(shown[1]) <= 220
    assert words.startswith(shown[1].removesuffix("…") + " ")  # whole words only
    plain = " ".join(text.split())
    assert cut in plain and shown[1] in plain
    assert "..." not in plain and "..." not in "".join(shown)


def test_plain_text_headlines_wrap_as_summaries_do(digest) -> None:
    """Headlines ran on in lines of 93 and 300 characters where summaries wrap at 72 under an
    indent: they wrap the same way, and a URL or long word stays whole on a line of its own."""
    long_one = "Ministers agree " + "a long and winding compromise on the budget " * 6
    stories = (
        long_word_story(digest.day),
        dataclasses.replace(digest.stories[0], headline=long_one.strip()),
        *digest.stories[1:],
    )
    message = render_email(
        dataclasses.replace(digest, stories=stories), email_settings(), site_settings()
    )
    lines = parts(message)[0].splitlines()
    for number, story in enumerate(stories[:3], 1):
        expected = f"{number}. {story.headline}"
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{number}. "))
        block = [lines[start]]
        while " ".join(block).split() != expected.split():
            block.append(lines[start + len(block)])
            assert len(block) < 10, block
        assert all(line.startswith("   ") for line in block[1:]), block
        assert all(len(line) <= 75 or len(line.split()) == 1 for line in block), block
    url = LONG_URL_HEADLINE.split()[1]
    assert lines[lines.index("1. Breaking:") + 1] == f"   {url}"  # whole, on a line of its own


def test_copies_are_marked_in_words_and_in_grey_in_both_schemes(digest) -> None:
    """Near-identical copies were marked only by a grey (a.copy), which the dark scheme's
    `.sources a {... !important}` made blue like the rest; and with styles stripped a count
    read "14outlets"."""
    text, html = parts(render_email(digest, email_settings(), site_settings()))
    card = lxml.html.fromstring(html).xpath("//td[@class='story']")[0]  # two of 14 are copies
    copies = card.xpath(".//p[@class='sources']/a[contains(@class, 'copy')]")
    assert len(copies) == 2
    assert all(a.tail.startswith("\xa0(copy)") for a in copies)
    sources = card.xpath(".//p[@class='sources']")[0].text_content()
    assert sources.count("(copy)") == 2
    assert card.xpath(".//div[@class='count']")[0].text_content() == "14 outlets"
    story = text[text.index("1. ") : text.index("2. ")]
    assert [f"{a.text} (copy)" in " ".join(story.split()) for a in copies] == [True, True]
    assert story.count("(copy)") == 2
    dark = rules(block(html, "@media (prefers-color-scheme: dark)"))
    grey, link = dark[".sources a.copy"]["color"], dark[".sources a"]["color"]
    assert grey != link and contrast(grey, dark[".container"]["background"]) >= 4.5
    inlined = [declarations(a.get("style"))["color"] for a in copies]  # where <style> is cut
    assert inlined[0] != declarations(card.xpath(".//p/a[not(@class)]")[0].get("style"))["color"]
    assert contrast(inlined[0], "#ffffff") >= 4.5


class RefusingB(Inbox):
    async def handle_RCPT(
        self, server: object, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if address.startswith("b@"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


THREE = ("a@example.org", "b@example.org", "c@example.org")


@contextlib.contextmanager
def serving(inbox: Inbox) -> Iterator[Controller]:
    """An SMTP server on loopback that hands what it gets to ``inbox``."""
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def test_an_address_the_server_refuses_leaves_the_others_their_message(digest) -> None:
    inbox = RefusingB()
    with serving(inbox) as controller:
        settings = email_settings(smtp_port=controller.port, to=THREE)
        message = render_email(digest, settings, site_settings())
        delivery = send_email(message, settings)
        assert delivery.delivered == ("a@example.org", "c@example.org")
        assert list(delivery.refused) == ["b@example.org"] and not delivery.deferred
        only_b = dataclasses.replace(settings, to=("b@example.org",))
        with pytest.raises(EmailError, match=r"refused every address.*b@example\.org: 550"):
            send_email(message, only_b)
    assert [e.rcpt_tos for e in inbox.envelopes] == [["a@example.org"], ["c@example.org"]]


class ClosingAfterOne(Inbox):
    """Takes one message, then answers 421 and closes the connection."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.envelopes:
            return "421 4.7.0 too many messages, closing"
        return await super().handle_DATA(server, session, envelope)


def test_a_connection_closed_after_one_message_leaves_the_rest_for_the_next_run(digest) -> None:
    with serving(ClosingAfterOne()) as controller:
        settings = email_settings(smtp_port=controller.port, to=THREE)
        delivery = send_email(render_email(digest, settings, site_settings()), settings)
    assert delivery.delivered == ("a@example.org",) and not delivery.refused
    assert list(delivery.deferred) == ["b@example.org", "c@example.org"]
    assert delivery.deferred["b@example.org"].startswith("421")


class RudeGoodbye(Inbox):
    async def handle_QUIT(self, server: object, session: Session, envelope: Envelope) -> str:
        return "500 no goodbye"


def test_a_message_the_server_took_is_sent_though_its_goodbye_fails(digest) -> None:
    """smtplib raises when QUIT gets no 221: the message was delivered, and counting that a
    failure sent it again on every run."""
    inbox = RudeGoodbye()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = email_settings(smtp_port=controller.port)
        send_email(render_email(digest, settings, site_settings()), settings)  # no EmailError
    finally:
        controller.stop()
    assert len(inbox.envelopes) == 1


def test_login_uses_credentials_from_the_environment(smtp_server, digest, monkeypatch) -> None:
    controller, inbox, credentials = smtp_server
    monkeypatch.setenv("DIGEST_SMTP_USER", "digest")
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "s3cret")
    settings = email_settings(
        smtp_port=controller.port,
        username_env="DIGEST_SMTP_USER",
        password_env="DIGEST_SMTP_PASSWORD",
    )
    send_email(render_email(digest, settings, site_settings()), settings)
    assert credentials.seen == [(b"digest", b"s3cret")]
    assert len(inbox.envelopes) == 1


def test_missing_credentials_and_plaintext_passwords_are_refused(digest, monkeypatch) -> None:
    monkeypatch.delenv("NOPE_PASSWORD", raising=False)
    monkeypatch.setenv("SOME_USER", "digest")
    settings = email_settings(username_env="SOME_USER", password_env="NOPE_PASSWORD")
    message = render_email(digest, settings, site_settings())
    with pytest.raises(EmailError, match=r"NOPE_PASSWORD \(named by email.password_env\) is not"):
        send_email(message, settings)
    monkeypatch.setenv("NOPE_PASSWORD", "x")
    remote = dataclasses.replace(settings, smtp_host="smtp.example.org")
    with pytest.raises(EmailError, match="unencrypted"):
        send_email(message, remote)
    with pytest.raises(EmailError, match="security"):
        send_email(message, dataclasses.replace(settings, security="tls-please"))


def test_write_eml_round_trips(digest, tmp_path: Path) -> None:
    message = render_email(digest, email_settings(), site_settings())
    path = tmp_path / "out" / "digest.eml"
    write_eml(message, path)
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == message["Subject"]
    assert parts(parsed)[0] == parts(message)[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["digest.eml"]


def test_user_can_override_the_email_template(digest, tmp_path: Path) -> None:
    (tmp_path / "email.txt").write_text("Just {{ stories|length }} stories.\n")
    message = render_email(digest, email_settings(), site_settings(), templates_dir=tmp_path)
    assert parts(message)[0] == f"Just {len(digest.stories)} stories.\n"


def test_links_to_the_site_match_its_pages(digest, tmp_path: Path) -> None:
    from aggregator.site import build_site

    settings = site_settings(base_url=BASE_URL)
    build_site(tmp_path / "site", realistic_digests(), settings)
    _, html = parts(render_email(digest, email_settings(max_stories=50), settings))
    to_site = [h for h in lxml.html.fromstring(html).xpath("//a/@href") if h.startswith(BASE_URL)]
    assert len(to_site) > len(digest.stories)
    for href in to_site:
        assert (tmp_path / "site" / href.removeprefix(BASE_URL)).is_file(), href


# ---------------------------------------------------------------- reading on a phone


def long_word_digest(digest):
    """Today's digest led by a story with a 120-character URL-like headline and an outlet name
    with no space in it."""
    return dataclasses.replace(digest, stories=(long_word_story(digest.day), *digest.stories))


def test_long_words_wrap_in_the_headline_meta_outlets_and_summary(digest) -> None:
    """One unbroken word widened the whole email past a phone's window: the headline, meta
    (its keywords), outlet and summary lines may break anywhere, in the inlined style="" every
    client keeps."""
    _, html = parts(render_email(long_word_digest(digest), email_settings(), site_settings()))
    doc = lxml.html.fromstring(html)
    for cls in ("headline", "meta", "sources", "summary"):
        found = doc.xpath(f"//*[contains(concat(' ', @class, ' '), ' {cls} ')]")
        assert found, cls
        for element in found:
            style = element.get("style").replace(" ", "")
            assert "overflow-wrap:anywhere" in style and "word-break:break-word" in style, cls
    assert LONG_OUTLET in doc.text_content() and LONG_URL_HEADLINE in doc.text_content()
    assert LONG_KEYWORD in doc.text_content()


def test_the_dark_scheme_gives_the_status_words_readable_colours(digest) -> None:
    """ "New" (#14532b) and "Growing" (#6b4200) kept their light-mode colours on the dark card
    (#181b1f), about 1.9:1: the dark @media rule gives them light ones."""
    _, html = parts(render_email(digest, email_settings(), site_settings()))
    dark = rules(block(html, "@media (prefers-color-scheme: dark)"))
    card = dark[".container"]["background"]
    for badge in (".badge-new", ".badge-growing"):
        assert contrast(dark[badge]["color"], card) >= 4.5, badge


def test_a_phone_gets_less_padding_and_separators_that_never_start_a_line(digest) -> None:
    """At 390 px, 28 px of padding each side and a 70 px count column left little for the
    text: a max-width rule narrows both (with !important, to beat the inlined styles). A
    no-break space before each " ·" keeps the dot at the end of a wrapped line."""
    _, html = parts(render_email(digest, email_settings(), site_settings(base_url=BASE_URL)))
    phone = rules(block(html, "@media (max-width: 480px)"))
    for selector in (".masthead", ".story", ".blind", ".footer"):
        assert phone[selector]["padding-left"] == phone[selector]["padding-right"] == "16px"
    assert int(phone[".count-cell"]["width"].removesuffix("px")) < 56
    assert "16px !important" in block(html, "@media (max-width: 480px)")
    # and with the coverage and timeline lines
    today, *earlier = coverage_digests()
    message = render_email(
        today, email_settings(), site_settings(), earlier=earlier, coverage=spec()
    )
    for page in (html, parts(message)[1]):
        doc = lxml.html.fromstring(page)
        lines = doc.xpath("//td//p[not(ancestor::td[@class='footer'])]")
        text = "\n".join(p.text_content() for p in lines)
        assert text.count("·") > 5  # the separators are there
        assert " ·" not in text and "\n·" not in text
    assert "Reports: 26 Nov: 1 report" in text and "lean" in text


def test_an_address_with_a_non_ascii_domain_is_sent_with_its_dns_name(smtp_server, digest) -> None:
    """`from: Zprávy <zpravy@příklad.cz>` made `From: ... <zpravy@=?utf-8?b?...?=.cz>` (no
    encoded word may stand in an address) and a Message-ID of another domain ("pklad.cz")."""
    controller, inbox, _ = smtp_server
    settings = email_settings(
        smtp_port=controller.port, sender="Zprávy <zpravy@příklad.cz>", to=("reader@příklad.cz",)
    )
    message = render_email(digest, settings, site_settings())
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["From"].addresses[0].display_name == "Zprávy"
    assert parsed["From"].addresses[0].domain == "xn--pklad-zsa96e.cz"
    assert message["Message-ID"].endswith("@xn--pklad-zsa96e.cz>")
    send_email(message, settings)
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "zpravy@xn--pklad-zsa96e.cz"
    assert [r.rpartition("@")[2] for r in envelope.rcpt_tos] == ["xn--pklad-zsa96e.cz"]


def test_a_sender_name_written_as_an_encoded_word_is_sent_as_that_name(digest) -> None:
    """Encoded words are broken only in feed text (a headline in the subject): the user's own
    `email.from` may spell its display name as one, as mail tools write it."""
    sender = "=?utf-8?q?J=C3=B6rg?= <digest@example.org>"
    message = render_email(digest, email_settings(sender=sender), site_settings())
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["From"].addresses[0].display_name == "Jörg"


def test_the_text_part_keeps_each_story_under_its_number_and_names_whole() -> None:
    """From story 10 on, a headline's next line started a column before its text; an outlet
    "forums.nba-live.com" was broken at its hyphen; the link to the rest of the day ended in
    the sentence's full stop, which mail programs take into the link."""
    from tests.support.digests import at, item, story

    day = realistic_digests()[0].day
    stories = tuple(
        story(
            f"s{n}",
            f"Story number {n} with a headline long enough to need a second line of its own",
            (
                item("forums.nba-live.com", f"Report {n}", at(day, 9)),
                *(item(f"outlet-{n}-{k}.example-news.com", "R", at(day, 10)) for k in range(6)),
            ),
        )
        for n in range(1, 13)
    )
    digest = dataclasses.replace(day_digest(day), stories=stories)
    settings = email_settings(max_stories=11)
    text, _ = parts(render_email(digest, settings, site_settings(base_url=BASE_URL)))
    lines = text.splitlines()
    ten = lines.index(next(line for line in lines if line.startswith("10. ")))
    assert lines[ten + 1].startswith("    ") and lines[ten + 1][4] != " ", lines[ten : ten + 3]
    nine = lines.index(next(line for line in lines if line.startswith("9. ")))
    assert lines[nine + 1].startswith("   ") and lines[nine + 1][3] != " "
    assert "forums.nba-live.com" in text
    assert not any(line.endswith("nba-") for line in lines)
    more = lines.index(next(line for line in lines if "1 more story" in line))
    assert lines[more + 1].startswith(BASE_URL) and lines[more + 1].endswith(".html"), lines[more:]


def test_more_outlets_than_shown_link_to_the_story_page_where_the_site_is_public() -> None:
    """ "+9 more" was plain text in the email; the site's "all 17 →" is a link."""
    from tests.support.digests import at, item, story

    day = realistic_digests()[0].day
    many = story(
        "many",
        "Harbour bridge closed after crack found",
        tuple(item(f"Outlet {k}", f"Report {k}", at(day, 9)) for k in range(11)),
    )
    digest = dataclasses.replace(day_digest(day), stories=(many,))
    _, html = parts(render_email(digest, email_settings(), site_settings(base_url=BASE_URL)))
    [more] = lxml.html.fromstring(html).xpath("//*[contains(@class, 'more')]")
    page = f"{BASE_URL}stories/{story_slug(many.id)}.html"
    assert more.tag == "a" and more.get("href") == page and "+3 more" in more.text
    _, html = parts(render_email(digest, email_settings(), site_settings()))
    [more] = lxml.html.fromstring(html).xpath("//*[contains(@class, 'more')]")
    assert more.tag == "span"  # no public page to link to
