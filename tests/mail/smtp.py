"""A real SMTP submission server (aiosmtpd) that delivers into a `Dovecot` over LMTP.

`SubmissionServer(dovecot)` listens on 127.0.0.1 on two free ports:

* `port`: SMTP offering STARTTLS (the `smtp://` of SPEC §6);
* `tls_port`: SMTP over implicit TLS (`smtps://`; 0 with `plain=True`: no TLS at all).

Both take AUTH PLAIN and LOGIN against the Dovecot's users, and by default only after TLS
(as submission servers in the field do). Every accepted message is recorded (`accepted`) and
put into the mailbox of each recipient that is a Dovecot user, so a mail the bot sends lands
where the customer reads it over IMAP; recipients that are not users are recorded only, as
mail relayed elsewhere. While Dovecot is down, accepted mail waits in a queue and is retried
in the background, as a real mail server's queue would (the drills stop Dovecot for 60 s).

Switches for the failure tests:

* `refuse_all(code=421, for_seconds=…, at="MAIL")`: a temporary (or any) refusal, at the
  greeting, at `MAIL FROM` or after the message's content; a 421 closes the connection.
* `refuse_recipient(address, code=550)`: a permanent refusal of one recipient at `RCPT TO`.
* `hold_data(point, count=1)`: the next `count` sessions wait at `DATA` until
  `release_data()`, so a test can kill the client there (later sessions, such as the
  client's retry after its restart, pass): at "command" the client waits for the 354 and
  nothing has been taken; at "reply" the message has been taken (delivered) and the client
  waits for the 250 it will never see if it is killed.
* `keep_sent_copies(True)`: like Gmail, the server files a copy of every message it accepts
  in the sender's `\\Sent` folder (IMAP APPEND as that user, before the 250); by default it
  keeps nothing, like Dovecot and Postfix set-ups, and the client must append itself.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient
from imapclient.imapclient import SENT

from tests.mail.dovecot import HOST, Dovecot, free_ports
from tests.mail.tls import MailTLS

SERVER_NAME = "mail.example.com"
REDELIVERY_INTERVAL = 0.2
HoldPoint = Literal["command", "reply"]
RefusePoint = Literal["connect", "MAIL", "DATA"]


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

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str | None:
        value = self.message["Message-ID"]
        return str(value).strip() if value else None


@dataclass
class _Refusal:
    code: int
    text: str
    until: float | None  # monotonic; None: until cleared
    at: RefusePoint = "MAIL"

    def active(self) -> bool:
        return self.until is None or time.monotonic() < self.until

    def reply(self) -> str:
        return f"{self.code} {self.text}"


class _QuietSession(Session):
    """aiosmtpd sets the deprecated `login_data` on every AUTH and logs a warning each time."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _Protocol(SMTP):
    """aiosmtpd's SMTP protocol with the server's switches at the greeting and at DATA."""

    def __init__(self, handler: _Handler, *, implicit_tls: bool, plain: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.implicit_tls = implicit_tls
        if implicit_tls or plain:
            # Implicit TLS: the whole connection is TLS, which aiosmtpd's auth_require_tls (it
            # looks for a STARTTLS) does not see. Plain: there is no TLS to wait for. Set after
            # __init__, which would warn about "AUTH without TLS".
            self._auth_require_tls = False

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    @property
    def secure(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    async def _handle_client(self) -> None:
        handler: _Handler = self.event_handler
        handler.count("connections")
        refusal = handler.refusal("connect")
        if refusal is not None:
            handler.count("refused")
            await self.push(refusal.reply())
            return
        await super()._handle_client()

    async def push(self, status: str | bytes) -> None:
        await super().push(status)
        text = status if isinstance(status, str) else status.decode("ascii", "replace")
        if text.startswith("421") and self.transport is not None:
            self.transport.close()  # RFC 5321 §3.8: 421 closes the transmission channel

    async def smtp_DATA(self, arg: str) -> None:
        handler: _Handler = self.event_handler
        if self.envelope is not None and self.envelope.rcpt_tos and self.session and self.session.authenticated:
            await handler.wait_at("command")
        await super().smtp_DATA(arg)


class _Handler:
    """The aiosmtpd hooks and the server's state (touched from two event-loop threads)."""

    def __init__(self, dovecot: Dovecot) -> None:
        self.dovecot = dovecot
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.accepted: list[AcceptedMessage] = []
        self.refusals: list[_Refusal] = []
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

    def refusal(self, at: RefusePoint) -> _Refusal | None:
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
                return AuthResult(success=True, handled=False, auth_data=login)
        self.count("auth_failed")
        return AuthResult(success=False, handled=False)

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
        assert isinstance(server, _Protocol)
        raw = envelope.original_content or b""
        record = AcceptedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=bytes(raw),
            login=session.auth_data if isinstance(session.auth_data, str) else None,
            tls=server.secure,
            implicit_tls=server.implicit_tls,
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


class _Controller(Controller):
    def __init__(self, handler: _Handler, *, implicit_tls: bool, plain: bool = False, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.implicit_tls = implicit_tls
        self.plain = plain

    def factory(self) -> SMTP:
        return _Protocol(self.handler, implicit_tls=self.implicit_tls, plain=self.plain, **self.SMTP_kwargs)


class SubmissionServer:
    """The submission server; `start()` it (or use it as a context manager) after the Dovecot."""

    def __init__(
        self,
        dovecot: Dovecot,
        *,
        tls: MailTLS | None = None,
        auth_required: bool = True,
        auth_require_tls: bool = True,
        data_size_limit: int = 32 * 1024 * 1024,
        plain: bool = False,
    ) -> None:
        """`plain`: no TLS at all (no STARTTLS, no implicit-TLS port; AUTH in plain text), as a
        mail server on the same machine may be set up; what a bot may use only on loopback."""
        self.dovecot = dovecot
        self.plain = plain
        self.tls = tls or dovecot.tls
        self.host = HOST
        self._handler = _Handler(dovecot)
        self._options = dict(
            hostname=self.host,
            server_hostname=SERVER_NAME,
            authenticator=self._handler.authenticate,
            auth_required=auth_required,
            auth_require_tls=auth_require_tls,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=True,
        )
        self._make_controllers()
        self._stop = threading.Event()
        self._redeliverer: threading.Thread | None = None

    def _make_controllers(self) -> None:
        self.port, self.tls_port = free_ports(2)
        if self.plain:
            self.tls_port = 0
            self._controllers = [
                _Controller(self._handler, implicit_tls=False, plain=True, port=self.port, **self._options)
            ]
            return
        context = self.tls.server_context()
        self._controllers = [
            _Controller(self._handler, implicit_tls=False, port=self.port, tls_context=context, **self._options),
            _Controller(self._handler, implicit_tls=True, port=self.tls_port, ssl_context=context, **self._options),
        ]

    # ---- life cycle -------------------------------------------------------------------------

    def start(self) -> SubmissionServer:
        for attempt in (1, 2, 3):
            try:
                for controller in self._controllers:
                    controller.start()
                break
            except OSError:
                # A port taken between choosing and binding (other test runs share the machine).
                for controller in self._controllers:
                    with contextlib.suppress(Exception):
                        controller.stop()
                if attempt == 3:
                    raise
                self._make_controllers()
        with self._handler.lock:
            self._handler.counts.clear()  # the controllers' own readiness probes are not clients
        self._stop.clear()
        self._redeliverer = threading.Thread(target=self._redeliver_loop, name="smtp-redeliver", daemon=True)
        self._redeliverer.start()
        return self

    def _redeliver_loop(self) -> None:
        while not self._stop.wait(REDELIVERY_INTERVAL):
            if self._handler.queue:
                self._handler.redeliver()

    def stop(self) -> None:
        self.release_data()
        self._stop.set()
        for controller in self._controllers:
            with contextlib.suppress(Exception):
                controller.stop()
        if self._redeliverer is not None:
            self._redeliverer.join(timeout=10)
        with self._handler.lock:
            connections, self._handler.lmtp_connections = self._handler.lmtp_connections, []
        for lmtp in connections:
            with contextlib.suppress(Exception):
                lmtp.close()

    def __enter__(self) -> SubmissionServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- what happened ----------------------------------------------------------------------

    @property
    def accepted(self) -> list[AcceptedMessage]:
        with self._handler.lock:
            return list(self._handler.accepted)

    @property
    def counts(self) -> Counter[str]:
        """connections, auth_ok, auth_failed, refused, refused_recipients, accepted, delivered, held_*."""
        with self._handler.lock:
            return Counter(self._handler.counts)

    @property
    def queued(self) -> int:
        """Recipients' copies accepted but not yet in Dovecot (it was down)."""
        with self._handler.lock:
            return len(self._handler.queue)

    def wait_accepted(self, count: int = 1, timeout: float = 10.0) -> list[AcceptedMessage]:
        """Wait until at least `count` messages were accepted in all; return them all."""
        deadline = time.monotonic() + timeout
        while len(accepted := self.accepted) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the SMTP server accepted {len(accepted)} messages in {timeout} s, not {count}")
            time.sleep(0.01)
        return accepted

    def on_accept(self, callback: Callable[[AcceptedMessage], None] | None) -> None:
        """Call `callback(message)` (in the server's thread) when a message is taken, before the 250."""
        self._handler.on_accept = callback

    # ---- switches ---------------------------------------------------------------------------

    def refuse_all(
        self,
        code: int = 421,
        for_seconds: float | None = None,
        *,
        at: RefusePoint = "MAIL",
        text: str | None = None,
    ) -> None:
        """Refuse every transaction with `code` (for `for_seconds`, or until `accept_all()`)."""
        if text is None:
            text = (
                "4.3.2 Service not available, closing transmission channel" if code == 421 else "4.3.0 Try again later"
            )
        until = None if for_seconds is None else time.monotonic() + for_seconds
        with self._handler.lock:
            self._handler.refusals.append(_Refusal(code, text, until, at))

    def accept_all(self) -> None:
        """Clear every `refuse_all`."""
        with self._handler.lock:
            self._handler.refusals.clear()

    def refuse_recipient(self, address: str, code: int = 550, text: str | None = None) -> None:
        text = text or f"5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"
        with self._handler.lock:
            self._handler.refused_recipients[address.lower()] = f"{code} {text}"

    def hold_data(self, point: HoldPoint = "command", count: int = 1) -> threading.Event:
        """Hold the next `count` sessions at DATA until `release_data()`; the returned event
        is set once one is held."""
        with self._handler.lock:
            self._handler.release.clear()
            self._handler.held.clear()
            self._handler.hold = point
            self._handler.hold_left = count
        return self._handler.held

    def keep_sent_copies(self, keep: bool = True) -> None:
        """File a copy of each accepted message in the sender's Sent folder (as Gmail does)."""
        self._handler.keep_sent = keep

    def release_data(self) -> None:
        self._handler.hold = None
        self._handler.release.set()
