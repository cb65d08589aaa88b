"""The inside of the test submission server (tests/mail/smtp.py): aiosmtpd's protocol with the
server's switches, the hooks that check AUTH (PLAIN and LOGIN against the Dovecot's passwords,
XOAUTH2 against a `TokenIssuer`), take a transaction and deliver it into Dovecot over LMTP,
and the record of what was accepted. Everything here runs on aiosmtpd's event-loop
threads; `SubmissionHandler` holds the state those threads and the test share, under one lock.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient
from imapclient.imapclient import SENT

from tests.mail.dovecot import Dovecot
from tests.mail.oauth import TokenIssuer

HoldPoint = Literal["command", "reply"]
RefusePoint = Literal["connect", "MAIL", "DATA"]

# What Gmail answers a bad XOAUTH2 token with, after its 334 error challenge.
XOAUTH2_REFUSED = "535 5.7.8 Username and Password not accepted"


@dataclass
class AcceptedMessage:
    """One message the server answered `250` to, as it came in."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None
    tls: bool
    implicit_tls: bool
    delivered: list[str] = field(default_factory=list)  # recipients whose mailbox has it
    elsewhere: list[str] = field(default_factory=list)  # recipients that are not Dovecot users
    mechanism: str | None = None  # the session's AUTH mechanism: PLAIN, LOGIN or XOAUTH2
    mail_options: list[str] = field(default_factory=list)  # what MAIL FROM asked for (SMTPUTF8 …)

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str | None:
        value = self.message["Message-ID"]
        return str(value).strip() if value else None


@dataclass
class Refusal:
    code: int
    text: str
    until: float | None  # monotonic; None: until cleared
    at: RefusePoint = "MAIL"

    def active(self) -> bool:
        return self.until is None or time.monotonic() < self.until

    def reply(self) -> str:
        return f"{self.code} {self.text}"


class QuietSession(Session):
    """aiosmtpd sets the deprecated `login_data` on every AUTH and logs a warning each time.
    The session also keeps its AUTH mechanism, which aiosmtpd does not."""

    auth_mechanism: str | None = None

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class SubmissionProtocol(SMTP):
    """aiosmtpd's SMTP protocol with the server's switches at the greeting and at DATA."""

    def __init__(self, handler: SubmissionHandler, *, implicit_tls: bool, plain: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.implicit_tls = implicit_tls
        if implicit_tls or plain:
            # Implicit TLS: the whole connection is TLS, which aiosmtpd's auth_require_tls (it
            # looks for a STARTTLS) does not see. Plain: there is no TLS to wait for. Set after
            # __init__, which would warn about "AUTH without TLS".
            self._auth_require_tls = False

    def _create_session(self) -> Session:
        return QuietSession(self.loop)

    @property
    def secure(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    async def _handle_client(self) -> None:
        handler: SubmissionHandler = self.event_handler
        handler.count("connections")
        refusal = handler.refusal("connect")
        if refusal is not None:
            handler.count("refused")
            await self.push(refusal.reply())
            if self.transport is not None:
                self.transport.close()  # refused at the greeting: no session follows, whatever the code
            return
        await super()._handle_client()

    async def push(self, status: str | bytes) -> None:
        await super().push(status)
        text = status if isinstance(status, str) else status.decode("ascii", "replace")
        if text.startswith("421") and self.transport is not None:
            self.transport.close()  # RFC 5321 §3.8: 421 closes the transmission channel

    async def smtp_DATA(self, arg: str) -> None:
        handler: SubmissionHandler = self.event_handler
        if self.envelope is not None and self.envelope.rcpt_tos and self.session and self.session.authenticated:
            await handler.wait_at("command")
        await super().smtp_DATA(arg)


class SubmissionHandler:
    """The aiosmtpd hooks and the server's state (touched from two event-loop threads)."""

    def __init__(
        self, dovecot: Dovecot, oauth: TokenIssuer | None = None, oauth_scope: str = "https://mail.google.com/"
    ) -> None:
        self.dovecot = dovecot
        self.oauth = oauth  # None: no XOAUTH2 (SubmissionServer then leaves it out of EHLO)
        self.oauth_scope = oauth_scope  # named in the error challenge, as Gmail names its own
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.accepted: list[AcceptedMessage] = []
        self.refusals: list[Refusal] = []
        self.refused_recipients: dict[str, str] = {}
        self.hold: HoldPoint | None = None
        self.hold_left = 0  # sessions still to hold at `hold`
        self.release = threading.Event()
        self.held = threading.Event()
        self.keep_sent = False
        self.queue: list[tuple[AcceptedMessage, str]] = []
        self.on_accept: Callable[[AcceptedMessage], None] | None = None
        self.lmtp = threading.local()  # .connection: this thread's smtplib.LMTP, or None
        self.lmtp_connections: list[smtplib.LMTP] = []  # every thread's, to close at the end

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def refusal(self, at: RefusePoint) -> Refusal | None:
        with self.lock:
            self.refusals = [r for r in self.refusals if r.active()]
            return next((r for r in self.refusals if r.at == at), None)

    async def wait_at(self, point: HoldPoint) -> None:
        with self.lock:
            if self.hold != point or self.hold_left <= 0:
                return
            self.hold_left -= 1
            self.counts[f"held_{point}"] += 1
        self.held.set()
        while not self.release.is_set():
            await asyncio.sleep(0.01)  # cancelled if the client goes away meanwhile

    # ---- AUTH against the Dovecot's users ---------------------------------------------------

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace").lower()
            password = auth_data.password.decode("utf-8", "replace")
            if self.dovecot.passwords.get(login) == password:
                self.count("auth_ok")
                if isinstance(session, QuietSession):
                    session.auth_mechanism = mechanism
                return AuthResult(success=True, handled=False, auth_data=login)
        self.count("auth_failed")
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """SASL XOAUTH2 as Gmail and Microsoft take it: base64 of
        `user=<user>\\x01auth=Bearer <token>\\x01\\x01`, as the initial response or after an
        empty 334. A token the issuer holds valid for that very user logs the session in; any
        other gets a 334 with the error JSON and, after the client's empty line, a 535."""
        if len(args) == 1:
            response = await server.challenge_auth("")
            if response is MISSING:  # "*" or not base64: challenge_auth has answered 501
                self.count("auth_failed")
                return AuthResult(success=False, handled=True)
        elif args[1] == "=":  # RFC 4954: an empty initial response
            response = b""
        else:
            try:
                response = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                self.count("auth_failed")
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        assert isinstance(response, bytes)
        user, token = parse_xoauth2(response)
        if user is None or token is None:
            self.count("auth_failed")
            await server.push("501 5.5.2 Malformed XOAUTH2 response")
            return AuthResult(success=False, handled=True)
        holder = self.oauth.valid(token) if self.oauth is not None else None
        if holder is not None and holder.lower() == user.lower():
            self.count("auth_ok")
            if isinstance(server.session, QuietSession):
                server.session.auth_mechanism = "XOAUTH2"
            return AuthResult(success=True, handled=False, auth_data=user.lower())
        self.count("auth_failed")
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": self.oauth_scope}, separators=(",", ":"))
        if await server.challenge_auth(error) is MISSING:
            return AuthResult(success=False, handled=True)  # challenge_auth has answered 501
        return AuthResult(success=False, handled=False, message=XOAUTH2_REFUSED)

    # ---- the transaction --------------------------------------------------------------------

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self.refusal("MAIL")
        if refusal is not None:
            self.count("refused")
            return refusal.reply()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            refused = self.refused_recipients.get(address.lower())
        if refused is not None:
            self.count("refused_recipients")
            return refused
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        refusal = self.refusal("DATA")
        if refusal is not None:
            self.count("refused")
            return refusal.reply()
        assert isinstance(server, SubmissionProtocol)
        raw = envelope.original_content or b""
        record = AcceptedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=bytes(raw),
            login=session.auth_data if isinstance(session.auth_data, str) else None,
            tls=server.secure,
            implicit_tls=server.implicit_tls,
            mechanism=getattr(session, "auth_mechanism", None),
            mail_options=list(envelope.mail_options),
        )
        loop = asyncio.get_running_loop()
        for rcpt in record.rcpt_tos:
            if rcpt.lower() not in self.dovecot.passwords:
                record.elsewhere.append(rcpt)
            elif not await loop.run_in_executor(None, self.deliver, record, rcpt):
                with self.lock:
                    self.queue.append((record, rcpt))
        if self.keep_sent and record.login:
            await loop.run_in_executor(None, self.file_in_sent, record)
        with self.lock:
            self.accepted.append(record)
            self.counts["accepted"] += 1
        if self.on_accept is not None:
            self.on_accept(record)
        await self.wait_at("reply")
        return "250 2.0.0 Ok: queued"

    def deliver(self, record: AcceptedMessage, rcpt: str) -> bool:
        """Into the recipient's mailbox now; False if Dovecot cannot take it (it stays queued).

        Each thread keeps its LMTP connection (a new one per message costs Dovecot about as
        much again as the delivery); a stale one (Dovecot restarted) is replaced once.
        """
        for attempt in (1, 2):
            lmtp = getattr(self.lmtp, "connection", None)
            try:
                if lmtp is None:
                    lmtp = self.lmtp.connection = smtplib.LMTP(self.dovecot.host, self.dovecot.lmtp_port, timeout=30)
                    with self.lock:
                        self.lmtp_connections.append(lmtp)
                lmtp.sendmail(record.mail_from, [rcpt], record.raw)
                break
            except (smtplib.SMTPException, OSError):
                self.lmtp.connection = None
                if lmtp is not None:
                    with contextlib.suppress(Exception):
                        lmtp.close()
                if attempt == 2:
                    return False
        with self.lock:
            record.delivered.append(rcpt)
            self.counts["delivered"] += 1
        return True

    def file_in_sent(self, record: AcceptedMessage) -> None:
        assert record.login is not None
        client = IMAPClient(self.dovecot.host, port=self.dovecot.imap_port, ssl=False, timeout=30)
        try:
            client.login(record.login, self.dovecot.passwords[record.login])
            client.append(client.find_special_folder(SENT), record.raw, flags=[b"\\Seen"])
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def redeliver(self) -> None:
        with self.lock:
            waiting, self.queue = self.queue, []
        still = [(record, rcpt) for record, rcpt in waiting if not self.deliver(record, rcpt)]
        with self.lock:
            self.queue[:0] = still


def parse_xoauth2(response: bytes) -> tuple[str | None, str | None]:
    """(user, bearer token) of an XOAUTH2 client response; None for what is not there."""
    try:
        text = response.decode("utf-8")
    except UnicodeDecodeError:
        return None, None
    fields = dict(part.partition("=")[::2] for part in text.split("\x01") if part)
    scheme, _, token = fields.get("auth", "").partition(" ")
    user = fields.get("user") or None
    if scheme.lower() != "bearer" or not token.strip():
        return user, None
    return user, token.strip()


class SubmissionController(Controller):
    def __init__(self, handler: SubmissionHandler, *, implicit_tls: bool, plain: bool = False, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.implicit_tls = implicit_tls
        self.plain = plain

    def factory(self) -> SMTP:
        return SubmissionProtocol(self.handler, implicit_tls=self.implicit_tls, plain=self.plain, **self.SMTP_kwargs)
