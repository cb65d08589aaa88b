"""An outbox row as a mail (pure): headers, threading, the stable Message-ID.

* `From`: the support address with its display name (`DESKBOT_EMAIL_NAME`).
* Threading (RFC 5322 §3.6.4): a row's `conversation` is the chain of Message-IDs of the
  message it answers (that message's References, then its own id, `inbound.thread_chain`):
  `In-Reply-To` is the last of them, `References` all of them. The subject is
  `Re: [#N] <subject>` for a row about incident N (the tag lets a reply that lost its
  headers find the incident again), else `Re: <subject>` of the message answered.
* `Message-ID`: `<deskbot.<row id>.<written at, µs, base 36>@<support domain>>`, the same
  for every attempt of a row (a repeat after a crash is recognisable, and mail clients
  fold it), and unique across databases: a re-created store numbers rows from 1 again, but
  never at the same microsecond. A row whose subject is the bot's own words (it answers no
  mail and is about no incident: a credit expiry reminder, a link notice; or it has no subject
  and bears the display name) says so in a last part, `.s<digest of the subject>`
  (`subjects.own_subject_mark`): a reply under that subject is not named after it.
* `Cc`: the people copied on the row's incident (`Outbound.copies`); never a `Bcc`.
* Addresses as SMTP carries them (`mail_address`): an internationalised domain in punycode
  (IDNA 2008 with UTS 46, as browsers), in the headers as in the envelope; a local part with
  non-ASCII characters as it is, in UTF-8, which only a server offering SMTPUTF8 (RFC 6531)
  takes (`needs_smtputf8`: the mail is then written with `policy.SMTPUTF8`, `outbound`).
* `Auto-Submitted: auto-replied` (RFC 3834; `auto-generated` on a mail that answers nothing)
  and `X-Auto-Response-Suppress: All` (what
  Exchange's autoresponders read) on the bot's own answers; none on an engineer's words.
* Plain text, UTF-8; an engineer's files attached (`Outbound.files`), and a line under the
  text for each file left out (the sentence the core wrote in the reader's language).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import idna

from adapters.channel import Outbound, OutboundFile, size_text

from .subjects import own_subject_mark

#: A Message-ID in a header or a chain: `<left@right>`.
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
        if not number:
            return text


def message_id(message: Outbound, domain: str, display_name: str) -> str:
    """The row's Message-ID, the same at every attempt (see the module docstring); `display_name`:
    the subject of a row that has none (`subject_line`)."""
    written = message.written_at or datetime(1970, 1, 1, tzinfo=UTC)
    micros = int(written.timestamp()) * 1_000_000 + written.microsecond
    own = f".{own_subject_mark(subject_line(message, display_name))}" if bots_words(message) else ""
    return f"<deskbot.{message.outbox_id}.{_base36(micros)}{own}@{domain}>"


def bots_words(message: Outbound) -> bool:
    """Is the row's subject the bot's own words, not the customer's? So it is when the row answers no
    mail (its subject is then not "Re:" theirs) and is about no incident (whose subject came from
    the customer), or when it has none (the display name stands for it)."""
    return not " ".join((message.subject or "").split()) or (not message.conversation and message.case is None)


def chain(conversation: str | None) -> list[str]:
    """The Message-IDs of a row's `conversation`, oldest first."""
    return MESSAGE_ID.findall(conversation or "")


def subject_line(message: Outbound, fallback: str) -> str:
    """`Re: [#N] subject`, `Re: subject`, or `fallback` for a row that answers nothing."""
    subject = " ".join((message.subject or "").split())
    if message.case is not None:
        subject = f"[#{message.case}] {subject}".rstrip()
    if not subject:
        subject = fallback
    return f"Re: {subject}" if message.conversation else subject


def mail_address(address: str) -> str:
    """`address` as SMTP carries it: a domain with non-ASCII characters in punycode ("ana@café.pt"
    is "ana@xn--caf-dma.pt"); one IDNA refuses, and the local part, as they are."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except (idna.IDNAError, UnicodeError):
        return address


def needs_smtputf8(address: str) -> bool:
    """Can `address` be sent to only through a server that offers SMTPUTF8 (RFC 6531)?"""
    return not mail_address(address).isascii()


def build(
    message: Outbound,
    *,
    address: str,
    display_name: str,
    now: datetime,
    attached: Sequence[tuple[OutboundFile, bytes]] = (),
    not_attached: Sequence[str] = (),
    leave_out: Collection[str] = (),
) -> EmailMessage:
    """The mail for a direct row to `message.recipient` (the caller checked both), with the files
    `attached` (each with its bytes) and a line under the text for each file `not_attached`; the
    copies in `leave_out` are not in its `Cc` (the server cannot take their addresses)."""
    assert message.recipient is not None
    mail = EmailMessage()
    mail["From"] = formataddr((display_name, address))
    mail["To"] = mail_address(message.recipient)
    if copies := [mail_address(a) for a in copied(message, address) if a not in leave_out]:
        mail["Cc"] = ", ".join(copies)
    mail["Subject"] = subject_line(message, display_name)
    mail["Date"] = format_datetime(message.written_at or now)
    mail["Message-ID"] = message_id(message, Address(addr_spec=address).domain, display_name)
    ids = chain(message.conversation)
    if ids:
        mail["In-Reply-To"] = ids[-1]
        mail["References"] = " ".join(ids)
    if message.automatic:
        # RFC 3834: an answer to a mail is auto-replied; one the bot writes of its own accord (a
        # credit expiry reminder) is auto-generated.
        mail["Auto-Submitted"] = "auto-replied" if message.conversation else "auto-generated"
        mail["X-Auto-Response-Suppress"] = "All"
    body = message.text if not message.quote else f"{message.text}\n\n{message.quote}"
    if not_attached:
        body = body.rstrip() + "\n\n" + "\n".join(not_attached)
    mail.set_content(body.rstrip() + "\n", charset="utf-8")
    for file, data in attached:
        maintype, _slash, subtype = file.media_type.partition("/")
        if not (maintype and subtype) or maintype == "multipart":
            maintype, subtype = "application", "octet-stream"
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=attachment_name(file.name))
    if message.lang:
        # RFC 3282: the language mail clients, screen readers and translators go by. Set last: setting
        # the content (or making the mail multipart) moves or drops the Content-* headers set before.
        mail["Content-Language"] = message.lang
    return mail


def copied(message: Outbound, address: str) -> list[str]:
    """Who the row's mail copies (`Cc`): the people copied on its incident, but the recipient and
    the support address itself (never mail to the desk's own mailbox: it would read it back)."""
    skip = {(message.recipient or "").lower(), address.lower()}
    return [a for a in dict.fromkeys(message.copies) if a.lower() not in skip]


def attachment_name(name: str) -> str:
    """A file name as a mail carries it: one line, no path (RFC 2231 encodes the rest)."""
    flat = " ".join(name.replace("/", "_").replace("\\", "_").split())
    return flat[:200] or "file"


def file_note(file: OutboundFile, why: str) -> str:
    """The line under the text for a file the mail does not carry."""
    return f"- {attachment_name(file.name)} ({size_text(file.size)}): {why}"
