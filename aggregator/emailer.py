"""The daily email: one multipart/alternative message (plain text + HTML with inlined CSS).

Feed text reaches headers only through `feed_header_text`, which strips CR/LF and control
characters and breaks RFC 2047 encoded words before the `email` package's policy folds and
encodes it.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import os
import re
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Protocol

import css_inline

from aggregator.coverage import CoverageSpec
from aggregator.feedvalue import FeedValue, delay_text
from aggregator.models import Digest
from aggregator.site import (
    ReportDay,
    SiteSettingsLike,
    StoryView,
    as_utc,
    checked_base_url,
    clean_text,
    email_view,
    make_environment,
    short_date,
    template_problems,
)
from aggregator.text import plural, shortened

_SECURITY_MODES = ("none", "starttls", "ssl")
_TIMEOUT_SECONDS = 30.0


class EmailSettingsLike(Protocol):
    """What the email needs from `aggregator.config.EmailSettings`."""

    @property
    def to(self) -> tuple[str, ...]: ...
    @property
    def sender(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def smtp_host(self) -> str: ...
    @property
    def smtp_port(self) -> int: ...
    @property
    def security(self) -> str: ...
    @property
    def username_env(self) -> str | None: ...
    @property
    def password_env(self) -> str | None: ...
    @property
    def max_stories(self) -> int: ...


class EmailError(RuntimeError):
    """The email cannot be sent as configured (the message says what to change)."""


def header_text(value: object, limit: int = 200) -> str:
    """One line of header text: no CR/LF or other control characters, length capped."""
    return clean_text(value, limit)


def feed_header_text(value: object, limit: int = 200) -> str:
    """`header_text` of a feed's text, which also spells no RFC 2047 encoded word. The `email`
    package decodes "=?utf-8?b?...?=" in a value it is given, so a title spelling one put
    whatever it encodes in the header: CR/LF and a Bcc: or Reply-To: header of the feed's
    choosing. A word joiner between "=" and "?" keeps the text as it reads and is no encoded
    word (the package then encodes that word itself). The user's own settings (a sender's
    encoded display name) keep theirs."""
    return header_text(value, limit).replace("=?", "=\u2060?")


def _shorten(text: str, limit: int) -> str:
    return shortened(text, limit, strip=" ,;:-")


def _subject(base: str, digest_day: str, stories: Sequence[StoryView]) -> str:
    parts = [header_text(base, 80) or "Daily digest", digest_day]
    if stories:
        parts.append(feed_header_text(_shorten(stories[0].headline, 80)))
    return " · ".join(parts)


def _ascii_domain(address: str) -> str:
    """``address`` with its domain in the form the DNS knows (IDNA: příklad.cz is
    xn--pklad-zsa96e.cz): headers may not carry it encoded, and other mail never reached it."""
    name, mailbox = parseaddr(address)
    user, at, domain = mailbox.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:  # no domain the DNS could hold: left for the server to refuse
        return address
    return formataddr((name, f"{user}@{domain}"))


def _message_id(digest: Digest, sender: str) -> str:
    """Same digest run, same id; a re-generated digest gets a new one (some servers dedupe)."""
    domain = parseaddr(_ascii_domain(header_text(sender)))[1].rpartition("@")[2]
    domain = re.sub(r"[^A-Za-z0-9.-]", "", domain).strip(".-") or "localhost"
    seed = f"{digest.day.isoformat()}|{as_utc(digest.generated_at).isoformat()}"
    token = hashlib.sha256(seed.encode()).hexdigest()[:16]
    return f"<digest-{digest.day:%Y%m%d}-{token}@{domain}>"


def _recipient_message_id(message_id: str, address: str) -> str:
    """The id of the message to one recipient: each message has its own (RFC 5322), from the
    digest's and the address (a hash, which does not spell the address)."""
    local, _, domain = message_id.strip("<>").rpartition("@")
    token = hashlib.sha256(f"{local}|{address}".encode()).hexdigest()[:8]
    return f"<{local}.{token}@{domain}>"


_UNDISCLOSED = "undisclosed-recipients:;"  # RFC 5322: a group of no address


def _to_header(recipients: Sequence[str]) -> str:
    """To: of one message: the one recipient, or for several none of them (each is sent a
    message of its own; a file for several names no one)."""
    if len(recipients) == 1:
        return _ascii_domain(header_text(recipients[0]))
    return _UNDISCLOSED


def _addressed(message: EmailMessage, address: str, date: datetime) -> EmailMessage:
    """A copy of ``message`` for one recipient: To: that address alone, its own Message-ID,
    Date: ``date`` (when it is sent)."""
    own = copy.deepcopy(message)
    headers = {
        "To": _to_header([address]),
        "Message-ID": _recipient_message_id(message["Message-ID"] or "", address),
        "Date": format_datetime(as_utc(date)),
    }
    for name, value in headers.items():
        if name in own:
            own.replace_header(name, value)  # in its place
        else:
            own[name] = value
    return own


def _story_link(story: StoryView, base: str | None) -> str | None:
    """The story page when the site has a public address, else the headline's article."""
    return base + story.page if base else story.href


TIMELINE_DAYS = 7  # the email's timeline line shows a story's last week
FOOTER_FEEDS = 3  # "Your feeds": the feeds that added least


def timeline_text(days: Sequence[ReportDay]) -> str:
    """'27 Nov: 4 reports (BBC, AP) · 28 Nov: 2 (+Reuters) · 29 Nov: 5': reports per day, and
    the outlets that joined that day (the colon: "7 Dec 13" read as a date of 2013)."""
    parts = []
    for index, day in enumerate(days[-TIMELINE_DAYS:]):
        count = plural(day.reports, "report") if index == 0 else str(day.reports)
        part = f"{short_date(day.day).rsplit(' ', 1)[0]}: {count}"
        if day.joined:
            names = ", ".join(clean_text(n, 60) for n in day.joined[:3])
            more = f" +{len(day.joined) - 3}" if len(day.joined) > 3 else ""
            part += f" ({'' if index == 0 else '+'}{names}{more})"
        parts.append(part)
    return ("… · " if len(days) > TIMELINE_DAYS else "") + " · ".join(parts)


def keep_dots(text: str) -> str:
    """A no-break space before each " · ", so a wrapped line never starts with the dot."""
    return text.replace(" · ", "\u00a0· ")


def feed_value_text(value: FeedValue) -> str:
    """'Bravo: 2 items in 2 stories, 1 first, 1 copy, 18 h behind': one feed's figures."""
    figures = [f"{plural(value.items, 'item')} in {plural(value.stories, 'story', 'stories')}"]
    if value.first_reports:
        figures.append(f"{value.first_reports} first")
    if value.exclusives:
        figures.append(f"{value.exclusives} exclusive")
    if value.copies:
        figures.append(plural(value.copies, "copy", "copies"))
    if value.median_delay_minutes:
        figures.append(f"{delay_text(value.median_delay_minutes)} behind")
    if value.errors:
        figures.append(f"{plural(value.errors, 'failed fetch', 'failed fetches')} in a row")
    return f"{clean_text(value.name, 80)}: {', '.join(figures)}"


def render_email(
    digest: Digest,
    settings: EmailSettingsLike,
    site: SiteSettingsLike,
    templates_dir: Path | None = None,
    earlier: Sequence[Digest] = (),
    coverage: CoverageSpec | None = None,
    feed_values: Sequence[FeedValue] = (),
    value_days: int = 30,
    now: datetime | None = None,
) -> EmailMessage:
    """The day's email, ready for `send_email` or `write_eml`, dated ``now`` (default: the
    clock), when it is written; `send_email` dates each message when it sends it.

    `earlier` digests mark the stories developing since an earlier day (with their reports per
    day); `coverage` adds each story's outlets per tag and the day's blind spots, as plain
    figures; `feed_values` (least adding first, over `value_days`) give a "Your feeds" footer
    naming the few that added least. With several recipients it is addressed to
    "undisclosed-recipients:;": `send_email` sends each a copy addressed to them alone."""
    env = make_environment(templates_dir, site.timezone)
    day, report_days = email_view(digest, earlier, coverage, site.timezone)
    stories = day.stories[: max(0, settings.max_stories)]
    base = checked_base_url(site.base_url)
    env.filters["story_link"] = lambda story: _story_link(story, base)
    # the story page, where all its reports are (none without a public address)
    env.filters["story_page_url"] = lambda story: base + story.page if base else None
    env.filters["keep_dots"] = keep_dots
    env.filters["shorten"] = _shorten  # at a word's end, or inside a long word, then "…"
    context = {
        "site": {"title": clean_text(site.title, 200) or "Daily digest", "base_url": base},
        "digest": day,
        "stories": stories,
        "more": len(day.stories) - len(stories),
        "day_url": base + day.page if base else None,
        "timelines": {slug: timeline_text(days) for slug, days in report_days.items()},
        "weakest_feeds": [feed_value_text(v) for v in feed_values[:FOOTER_FEEDS]]
        if len(feed_values) > 1
        else [],
        "value_days": value_days,
        "feed_count": len(feed_values),
    }
    with template_problems(env, templates_dir):
        text = env.get_template("email.txt").render(context)
        html = env.get_template("email.html").render(context)
    # Inline everything for clients that strip <style>; keep @media for dark mode where allowed.
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    html = inliner.inline(html)

    message = EmailMessage(policy=SMTP)
    message["Subject"] = _subject(settings.subject, short_date(day.day), stories)
    message["From"] = _ascii_domain(header_text(settings.sender))
    if settings.to:
        message["To"] = _to_header(settings.to)
    message["Date"] = format_datetime(as_utc(now or datetime.now(UTC)))
    message["Message-ID"] = _message_id(digest, settings.sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    # A boundary from the content instead of a random one: the same digest gives the same bytes.
    # Quoted-printable bodies encode "=" as "=3D", so "=_" can never occur inside them.
    message.set_boundary("=_digest_" + hashlib.sha256((text + html).encode()).hexdigest()[:32])
    return message


# ---------------------------------------------------------------- delivery


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _credentials(settings: EmailSettingsLike) -> tuple[str, str] | None:
    """(user, password) from the environment variables named in the settings, or None."""
    names = (settings.username_env, settings.password_env)
    if not any(names):
        return None
    if not all(names):
        raise EmailError("set both email.username_env and email.password_env, or neither")
    values = [os.environ.get(name or "") for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        setting = "email.username_env" if missing[0] == names[0] else "email.password_env"
        raise EmailError(
            f"environment variable {missing[0]} (named by {setting}) is not set: export it "
            "where the command runs (cron and systemd start with few variables)"
        )
    if settings.security == "none" and not _is_loopback(settings.smtp_host):
        raise EmailError("refusing to send a password unencrypted: use security starttls or ssl")
    return values[0] or "", values[1] or ""


def _connect(settings: EmailSettingsLike) -> smtplib.SMTP:
    host, port = settings.smtp_host, settings.smtp_port
    if settings.security == "ssl":
        context = ssl.create_default_context()
        return smtplib.SMTP_SSL(host, port, timeout=_TIMEOUT_SECONDS, context=context)
    return smtplib.SMTP(host, port, timeout=_TIMEOUT_SECONDS)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of the day's email: who has it, who the server refused for good (a 5xx:
    a mistyped address), and who is left for the next run (a 4xx, or the connection lost
    before their turn), each with the server's reason."""

    delivered: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)


def send_email(
    msg: EmailMessage, settings: EmailSettingsLike, recipients: Sequence[str] | None = None
) -> Delivery:
    """Deliver `msg` to each of `recipients` (default `settings.to`) through the configured
    SMTP server, a message each (To: that address alone, so no recipient sees the others; its
    own Message-ID; Date: when it is sent). One recipient's refusal leaves the others theirs.
    Raises EmailError, whose message names the setting to change (a refused connection, a
    server without STARTTLS, a refused login, a failed TLS handshake, every address refused),
    when no one got it."""
    if settings.security not in _SECURITY_MODES:
        raise EmailError(f"email.security must be one of {', '.join(_SECURITY_MODES)}")
    recipients = tuple(settings.to if recipients is None else recipients)
    if not recipients:
        raise EmailError("no recipients: set email.to")
    credentials = _credentials(settings)
    delivered: list[str] = []
    refused: dict[str, tuple[int, bytes]] = {}
    deferred: dict[str, str] = {}
    at_rcpt: set[str] = set()
    failure: OSError | None = None
    step = "connect"
    try:
        with _connect(settings) as smtp:
            if settings.security == "starttls":
                step = "starttls"
                smtp.starttls(context=ssl.create_default_context())
            if credentials:
                step = "login"
                smtp.login(*credentials)
            step = "send"
            for k, address in enumerate(recipients):
                own = _addressed(msg, address, datetime.now(UTC))
                try:
                    smtp.send_message(own, to_addrs=[_ascii_domain(address)])
                except smtplib.SMTPRecipientsRefused as exc:  # this one: the others get theirs
                    refused[address] = next(iter(exc.recipients.values()), (550, b""))
                    at_rcpt.add(address)
                    failure = exc
                    continue
                except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
                    refused[address] = (exc.smtp_code, exc.smtp_error)
                    failure = exc
                    continue
                except OSError as exc:  # the connection is gone: the rest wait for next run
                    if not delivered:
                        raise
                    why = _smtp_reason(exc)
                    deferred.update((a, why) for a in recipients[k:])
                    break
                delivered.append(address)
            if not delivered:  # one reason for all: every address refused, or the last
                if at_rcpt == set(recipients):
                    raise smtplib.SMTPRecipientsRefused(refused)
                raise failure or smtplib.SMTPException("nothing was sent")
            step = "sent"
    except OSError as exc:  # smtplib's and ssl's errors are OSErrors too
        if step != "sent":  # after it only the goodbye (QUIT) failed: the server took them
            raise EmailError(smtp_problem(exc, settings, step)) from exc
    later = {a: _smtp_reply(*reply) for a, reply in refused.items() if 400 <= reply[0] < 500}
    return Delivery(
        delivered=tuple(delivered),
        refused={a: _smtp_reply(*r) for a, r in refused.items() if a not in later},
        deferred={**later, **deferred},
    )


_TLS_FROM_THE_START = "set `security: ssl` under `email:` (usually with port 465)"
_TLS_AFTER_HELLO = "set `security: starttls` under `email:` (usually with port 587)"


def smtp_problem(exc: OSError, settings: EmailSettingsLike, step: str) -> str:
    """One line for a failed delivery: what went wrong at which step, the settings involved
    with their values, and what to change. Never a credential: the variables' names only."""
    host, port, security = settings.smtp_host, settings.smtp_port, settings.security
    server = f"email.smtp_host {host}, email.smtp_port {port}"
    why = _smtp_reason(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the TLS certificate of {host} is not trusted ({why}): set email.smtp_host to the "
            "name the certificate is for, or give the server a certificate your system trusts"
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f"the server refused the login ({why}): check the user name and password in the "
            f"environment variables {settings.username_env} and {settings.password_env} "
            "(named by email.username_env and email.password_env)"
        )
    if step == "starttls" and isinstance(exc, smtplib.SMTPNotSupportedError):
        return (
            f"the server at {server} does not offer STARTTLS (email.security: starttls): "
            f"{_TLS_FROM_THE_START} if it expects TLS from the first byte, or `security: none` "
            "for a server on this machine"
        )
    if step == "login" and isinstance(exc, smtplib.SMTPNotSupportedError):
        fix = (
            "many servers offer a login only over TLS: " + _TLS_AFTER_HELLO
            if security == "none"
            else "check email.smtp_host and email.smtp_port"
        )
        return (
            f"the server at {server} does not accept a login (email.username_env and "
            f"email.password_env are set): {fix}, or remove both settings"
        )
    if isinstance(exc, ssl.SSLError):
        if security == "ssl":
            fix = f"if the server starts in plain text, {_TLS_AFTER_HELLO}"
        else:
            fix = f"if the server expects TLS from the first byte, {_TLS_FROM_THE_START}"
        return f"TLS handshake with {server} failed ({why}; email.security: {security}): {fix}"
    if isinstance(exc, socket.gaierror):
        return f"email.smtp_host {host} cannot be found ({why}): fix the host name under `email:`"
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"nothing answers at {server} (connection refused): start the SMTP server there, "
            "or set smtp_host and smtp_port under `email:` to your mail provider's"
        )
    if step == "connect" and isinstance(exc, TimeoutError | smtplib.SMTPServerDisconnected):
        tls = (
            ""
            if security == "ssl"
            else f"; if that port expects TLS from the first byte, {_TLS_FROM_THE_START}"
        )
        return (
            f"no greeting from {server} ({why}): check both under `email:` (a firewall may "
            f"drop the connection){tls}"
        )
    if step == "login":  # e.g. the server hung up on a wrong password
        return (
            f"the login to {server} failed ({why}): check the user name and password in the "
            f"environment variables {settings.username_env} and {settings.password_env} "
            "(named by email.username_env and email.password_env)"
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(
            f"{address}: {_smtp_reply(code, text)}"
            for address, (code, text) in exc.recipients.items()
        )
        return f"the server refused every address in email.to ({refused}): fix email.to"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return (
            f"the server refused the sender email.from {settings.sender} ({why}): set `from:` "
            "under `email:` to an address the server accepts from you"
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server at {server} refused the message ({why})"
    return f"cannot send through {server} ({why}): check both and email.security ({security})"


def _smtp_reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return header_text(f"{code} {text}", 200)


def _smtp_reason(exc: OSError) -> str:
    """The failure in a few words: the server's reply, or the system's reason."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return _smtp_reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return header_text(exc.verify_message, 200)
    if isinstance(exc, ssl.SSLError):  # "WRONG_VERSION_NUMBER": "wrong version number"
        reason = exc.reason.replace("_", " ").lower() if exc.reason else exc.strerror or str(exc)
        return header_text(reason, 200)
    if isinstance(exc, TimeoutError) and not exc.strerror:
        return f"timed out after {_TIMEOUT_SECONDS:g} s"
    return header_text(exc.strerror or str(exc) or type(exc).__name__, 200)


def write_eml(msg: EmailMessage, path: Path) -> None:
    """Write `msg` as an .eml file (replaced atomically), for `--to-file` and previews."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\n"))
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(data)
    try:
        os.chmod(f.name, 0o644)
        os.replace(f.name, path)
    except BaseException:
        os.unlink(f.name)
        raise


__all__ = [
    "EmailError",
    "EmailSettingsLike",
    "header_text",
    "render_email",
    "send_email",
    "write_eml",
]
