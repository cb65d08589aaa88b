"""A customer's mailbox on the test Dovecot: what they read over IMAP, and mail they write.

`Mailbox(dovecot, address, password)` reads over IMAP (imapclient, implicit TLS verified
against the test CA) with a fresh connection per call, so it keeps working across a
Dovecot restart; it never marks anything `\\Seen` (`BODY.PEEK[]`, folders opened read-only).

Writing: `compose()` builds a realistic customer mail (From with a display name, To/Cc,
Subject, Message-ID, Date, plain text, HTML alternative or HTML only, attachments);
`reply()` answers a message the way common mail clients do (threading headers, "Re:", the
quoted history under the new text in Gmail, Outlook, Apple Mail or Thunderbird style, in
English or Portuguese, an optional signature); `send()` and `send_reply()` put them into
the recipients' mailboxes over LMTP (as mail from the internet arrives) or submit them
through the `SubmissionServer` with STARTTLS and AUTH as the customer (`via="smtp"`).
"""

from __future__ import annotations

import email.utils
import smtplib
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from tests.mail.dovecot import Dovecot
from tests.mail.smtp import SubmissionServer

ReplyStyle = Literal["gmail", "outlook", "apple", "thunderbird"]
Language = Literal["en", "pt"]
Attachment = tuple[str, bytes, str]  # file name, content, MIME type ("application/pdf")

_PT_DAYS = ("seg.", "ter.", "qua.", "qui.", "sex.", "sáb.", "dom.")
_PT_MONTHS = ("jan.", "fev.", "mar.", "abr.", "mai.", "jun.", "jul.", "ago.", "set.", "out.", "nov.", "dez.")


def parse(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def body_text(message: EmailMessage) -> str:
    """The text a person reads: the plain part, else the HTML part's source, with "\n" line ends
    (mail travels with CRLF, and `email` keeps them in the content)."""
    part = message.get_body(preferencelist=("plain", "html"))
    return "" if part is None else part.get_content().replace("\r\n", "\n")


class Mailbox:
    """One user's mailbox; `name` is the display name their mail client puts in From."""

    def __init__(
        self,
        dovecot: Dovecot,
        address: str,
        password: str,
        *,
        name: str = "",
        submission: SubmissionServer | None = None,
        default_to: str | None = None,
    ) -> None:
        self.dovecot = dovecot
        self.address = address
        self.password = password
        self.name = name
        self.submission = submission
        self.default_to = default_to

    def __repr__(self) -> str:
        return f"Mailbox({self.address!r})"

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    # ---- reading ----------------------------------------------------------------------------

    def imap(self) -> IMAPClient:
        """A logged-in IMAP connection over implicit TLS, or plain text to a plain Dovecot
        (the caller logs out)."""
        if self.dovecot.plain:
            client = IMAPClient(self.dovecot.host, port=self.dovecot.imap_port, ssl=False, timeout=30)
        else:
            client = IMAPClient(
                self.dovecot.host,
                port=self.dovecot.imaps_port,
                ssl=True,
                ssl_context=self.dovecot.tls.client_context(),
                timeout=30,
            )
        client.login(self.address, self.password)
        return client

    def raw_messages(self, folder: str = "INBOX") -> dict[int, bytes]:
        """UID → the message's bytes as stored, in UID order."""
        with self.imap() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return {}
            fetched = client.fetch(uids, ["BODY.PEEK[]"])
            return {uid: fetched[uid][b"BODY[]"] for uid in sorted(fetched)}

    def messages(self, folder: str = "INBOX") -> list[EmailMessage]:
        """Every message in `folder`, parsed with `policy.default`, oldest (lowest UID) first."""
        return [parse(raw) for raw in self.raw_messages(folder).values()]

    def wait_for(
        self,
        predicate: Callable[[EmailMessage], bool] = lambda message: True,
        *,
        count: int = 1,
        timeout: float = 10.0,
        folder: str = "INBOX",
    ) -> list[EmailMessage]:
        """Wait until at least `count` messages in `folder` match; return all that match.

        While the server cannot be reached (stopped for a drill) it keeps trying until the
        timeout. On timeout the AssertionError lists what the folder does hold.
        """
        deadline = time.monotonic() + timeout
        messages: list[EmailMessage] = []
        while True:
            try:
                messages = self.messages(folder)
            except (OSError, IMAPClientError):
                if time.monotonic() > deadline:  # Dovecot down (a drill's outage): keep trying
                    raise
                time.sleep(0.2)
                continue
            matching = [m for m in messages if predicate(m)]
            if len(matching) >= count:
                return matching
            if time.monotonic() > deadline:
                held = "\n".join(f"  {m['From']} | {m['Subject']}" for m in messages) or "  (nothing)"
                raise AssertionError(
                    f"{self.address} {folder}: {len(matching)} of {count} expected messages after {timeout} s; it holds:\n{held}"
                )
            time.sleep(0.05)

    def threads(self, folder: str = "INBOX") -> list[list[EmailMessage]]:
        """The folder's conversations as the server threads them (IMAP THREAD=REFERENCES, RFC 5256)."""
        with self.imap() as client:
            client.select_folder(folder, readonly=True)
            tree = client.thread(algorithm="REFERENCES")
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}

        def flatten(node: object) -> list[int]:
            if isinstance(node, int):
                return [node]
            return [uid for child in node for uid in flatten(child)]  # type: ignore[union-attr]

        return [[parse(fetched[uid][b"BODY[]"]) for uid in flatten(thread)] for thread in tree]

    def folders(self) -> list[tuple[tuple[bytes, ...], str]]:
        """LIST: (attributes, name) of every folder."""
        with self.imap() as client:
            return [(flags, name) for flags, _delimiter, name in client.list_folders()]

    # ---- writing ----------------------------------------------------------------------------

    def compose(
        self,
        subject: str,
        text: str | None = None,
        *,
        to: str | Sequence[str] | None = None,
        cc: Sequence[str] = (),
        html: str | None = None,
        attachments: Iterable[Attachment] = (),
        headers: dict[str, str] | None = None,
        message_id: str | None = None,
        date: datetime | None = None,
    ) -> EmailMessage:
        """A new mail from this customer. `html` alone makes an HTML-only mail (as phones send);
        with `text` it becomes the HTML alternative. `headers` adds or replaces headers
        (Auto-Submitted, Authentication-Results …)."""
        recipients = [to] if isinstance(to, str) else list(to or [])
        if not recipients:
            if self.default_to is None:
                raise ValueError("no recipient: pass to= or give the Mailbox a default_to")
            recipients = [self.default_to]
        message = EmailMessage(policy=policy.SMTP)
        message["From"] = Address(self.name, addr_spec=self.address) if self.name else self.address
        message["To"] = ", ".join(recipients)
        if cc:
            message["Cc"] = ", ".join(cc)
        message["Subject"] = subject
        message["Date"] = email.utils.format_datetime(date or datetime.now(UTC))
        message["Message-ID"] = message_id or email.utils.make_msgid(domain=self.domain)
        message["MIME-Version"] = "1.0"
        if text is not None:
            message.set_content(text)
            if html is not None:
                message.add_alternative(html, subtype="html")
        elif html is not None:
            message.set_content(html, subtype="html")
        else:
            raise ValueError("a mail needs text or html")
        for filename, content, mime_type in attachments:
            maintype, subtype = mime_type.split("/", 1)
            message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
        for name, value in (headers or {}).items():
            del message[name]
            message[name] = value
        return message

    def reply(
        self,
        original: EmailMessage,
        text: str,
        *,
        style: ReplyStyle = "gmail",
        language: Language = "en",
        signature: str | None = None,
        quote: bool = True,
        to: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> EmailMessage:
        """This customer's answer to `original`: the new `text` on top, the history quoted below."""
        subject = str(original["Subject"] or "")
        prefix = "RE: " if style == "outlook" else "Re: "
        if not subject.lower().startswith(("re:", "res:")):
            subject = prefix + subject
        body = text
        if signature:
            body += "\n\n-- \n" + signature
        if quote:
            body += "\n\n" + _quoted(original, style, language)
        sender = to or email.utils.parseaddr(str(original.get("Reply-To") or original["From"]))[1]
        reply = self.compose(subject, body, to=sender, headers=headers)
        parent = str(original["Message-ID"]).strip()
        references = str(original.get("References") or "").split()
        del reply["In-Reply-To"], reply["References"]
        reply["In-Reply-To"] = parent
        reply["References"] = " ".join([*references, parent])
        return reply

    def send(
        self,
        subject: str,
        text: str | None = None,
        *,
        via: Literal["lmtp", "smtp"] = "lmtp",
        mail_from: str | None = None,
        **compose: object,
    ) -> EmailMessage:
        """Compose (see `compose`) and send; returns the message as sent."""
        message = self.compose(subject, text, **compose)  # type: ignore[arg-type]
        self.deliver(message, via=via, mail_from=mail_from)
        return message

    def send_reply(
        self, original: EmailMessage, text: str, *, via: Literal["lmtp", "smtp"] = "lmtp", **options: object
    ) -> EmailMessage:
        message = self.reply(original, text, **options)  # type: ignore[arg-type]
        self.deliver(message, via=via)
        return message

    def deliver(
        self, message: EmailMessage, *, via: Literal["lmtp", "smtp"] = "lmtp", mail_from: str | None = None
    ) -> None:
        """Send an already built message to its To and Cc recipients.

        "lmtp": straight into each recipient's mailbox on the Dovecot (recipients that are not
        users there are skipped), envelope sender `mail_from` (default: this address; "" is a
        bounce's null sender). "smtp": through the submission server, STARTTLS and AUTH as this
        customer.
        """
        raw = message.as_bytes(policy=policy.SMTP)
        recipients = [
            address
            for _name, address in email.utils.getaddresses(
                [str(v) for v in (message.get_all("To") or []) + (message.get_all("Cc") or [])]
            )
        ]
        envelope_from = self.address if mail_from is None else mail_from
        if via == "lmtp":
            for rcpt in recipients:
                if rcpt.lower() in self.dovecot.passwords:
                    self.dovecot.deliver(raw, rcpt, mail_from=envelope_from)
            return
        if self.submission is None:
            raise ValueError(f"{self.address} has no submission server to send through")
        with smtplib.SMTP(self.submission.host, self.submission.port, timeout=30) as smtp:
            if not self.submission.plain:
                smtp.starttls(context=self.dovecot.tls.client_context())
            smtp.login(self.address, self.password)
            smtp.sendmail(envelope_from, recipients, raw)


def _quoted(original: EmailMessage, style: ReplyStyle, language: Language) -> str:
    """The history block a mail client puts under a reply."""
    name, address = email.utils.parseaddr(str(original["From"]))
    who = f"{name} <{address}>" if name else address
    when = email.utils.parsedate_to_datetime(str(original["Date"])) if original["Date"] else datetime.now(UTC)
    lines = body_text(original).rstrip("\n").splitlines()
    quoted = "\n".join(f"> {line}" if line else ">" for line in lines)
    pt = language == "pt"
    if style == "gmail":
        if pt:
            stamp = (
                f"{_PT_DAYS[when.weekday()]}, {when.day} de {_PT_MONTHS[when.month - 1]} de {when.year} às {when:%H:%M}"
            )
            return f"Em {stamp}, {who} escreveu:\n\n{quoted}\n"
        return f"On {when:%a}, {when:%b} {when.day}, {when.year} at {when:%-I:%M %p} {who} wrote:\n\n{quoted}\n"
    if style == "outlook":
        # Outlook does not quote with ">": it puts a header block above the untouched history.
        to = str(original["To"] or "")
        subject = str(original["Subject"] or "")
        plain = "\n".join(lines)
        if pt:
            return f"________________________________\nDe: {who}\nEnviado: {when:%d/%m/%Y %H:%M}\nPara: {to}\nAssunto: {subject}\n\n{plain}\n"
        return f"________________________________\nFrom: {who}\nSent: {when:%A, %B} {when.day}, {when.year} {when:%-I:%M %p}\nTo: {to}\nSubject: {subject}\n\n{plain}\n"
    if style == "apple":
        head = (
            f"A {when.day}/{when.month:02d}/{when.year}, às {when:%H:%M}, {who} escreveu:"
            if pt
            else f"On {when.day} {when:%b} {when.year}, at {when:%H:%M}, {who} wrote:"
        )
        return f"> {head}\n> \n{quoted}\n"
    head = (
        f"No dia {when:%d/%m/%Y} às {when:%H:%M}, {who} escreveu:"
        if pt
        else f"On {when:%d/%m/%Y} {when:%H:%M}, {who} wrote:"
    )
    return f"{head}\n{quoted}\n"
