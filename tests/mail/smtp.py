"""A real SMTP submission server (aiosmtpd) that delivers into a `Dovecot` over LMTP.

`SubmissionServer(dovecot)` listens on 127.0.0.1 on two free ports (one with `plain=True`):

* `port`: SMTP offering STARTTLS (the `smtp://` of SPEC §6);
* `tls_port`: SMTP over implicit TLS (`smtps://`; 0 with `plain=True`: no TLS at all).

Both take AUTH PLAIN and LOGIN against the Dovecot's users, and by default only after TLS
(as submission servers in the field do); given a `TokenIssuer` (`oauth`), also AUTH XOAUTH2
with its tokens, refusing a bad one as Gmail does (a 334 with the error JSON, then 535).
Every accepted message is recorded (`accepted`, with the login and its AUTH mechanism) and put
into the mailbox of each recipient that is a Dovecot user, so a mail the bot sends lands where
the customer reads it over IMAP; recipients that are not users are recorded only, as mail
relayed elsewhere. While Dovecot is down, accepted mail waits in a queue and is retried
in the background, as a real mail server's queue would (the drills stop Dovecot for 60 s).

Switches for the failure tests:

* `refuse_all(code=421, for_seconds=…, at="MAIL")`: a temporary (or any) refusal, at the
  greeting, at `MAIL FROM` or after the message's content; a 421 closes the connection.
* `refuse_recipient(address, code=550)`: a refusal of one recipient at `RCPT TO` (permanent, or
  for now with a 4xx code) until `accept_recipient(address)`.
* `hold_data(point, count=1)`: the next `count` sessions wait at `DATA` until
  `release_data()`, so a test can kill the client there (later sessions, such as the
  client's retry after its restart, pass): at "command" the client waits for the 354 and
  nothing has been taken; at "reply" the message has been taken (delivered) and the client
  waits for the 250 it will never see if it is killed.
* `offer_smtputf8(False)`: new sessions are not offered SMTPUTF8 (RFC 6531), as many servers
  still offer it not; by default they are.
* `keep_sent_copies(True)`: like Gmail, the server files a copy of every message it accepts
  in the sender's `\\Sent` folder (IMAP APPEND as that user, before the 250); by default it
  keeps nothing, like Dovecot and Postfix set-ups, and the client must append itself.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable

from tests.mail.dovecot import HOST, Dovecot, free_ports
from tests.mail.oauth import TokenIssuer
from tests.mail.smtp_protocol import (
    AcceptedMessage,
    HoldPoint,
    Refusal,
    RefusePoint,
    SubmissionController,
    SubmissionHandler,
)
from tests.mail.tls import MailTLS

__all__ = ["AcceptedMessage", "SubmissionServer"]

SERVER_NAME = "mail.example.com"
REDELIVERY_INTERVAL = 0.2


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
        oauth: TokenIssuer | None = None,
        oauth_scope: str = "https://mail.google.com/",
    ) -> None:
        """`plain`: no TLS at all (no STARTTLS, no implicit-TLS port; AUTH in plain text), as a
        mail server on the same machine may be set up; what a bot may use only on loopback.

        `oauth`: take AUTH XOAUTH2 with the tokens it holds valid (`oauth_scope` is named in
        the error challenge); without it XOAUTH2 is neither offered nor taken."""
        self.dovecot = dovecot
        self.plain = plain
        self.tls = tls or dovecot.tls
        self.host = HOST
        self.oauth = oauth
        self._handler = SubmissionHandler(dovecot, oauth, oauth_scope)
        self._options = dict(
            hostname=self.host,
            server_hostname=SERVER_NAME,
            authenticator=self._handler.authenticate,
            auth_required=auth_required,
            auth_require_tls=auth_require_tls,
            auth_exclude_mechanism=[] if oauth is not None else ["XOAUTH2"],
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
                SubmissionController(self._handler, implicit_tls=False, plain=True, port=self.port, **self._options)
            ]
            return
        context = self.tls.server_context()
        self._controllers = [
            SubmissionController(
                self._handler, implicit_tls=False, port=self.port, tls_context=context, **self._options
            ),
            SubmissionController(
                self._handler, implicit_tls=True, port=self.tls_port, ssl_context=context, **self._options
            ),
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
            self._handler.refusals.append(Refusal(code, text, until, at))

    def accept_all(self) -> None:
        """Clear every `refuse_all`."""
        with self._handler.lock:
            self._handler.refusals.clear()

    def refuse_recipient(self, address: str, code: int = 550, text: str | None = None) -> None:
        text = text or f"5.1.1 <{address}>: Recipient address rejected: User unknown in local recipient table"
        with self._handler.lock:
            self._handler.refused_recipients[address.lower()] = f"{code} {text}"

    def accept_recipient(self, address: str) -> None:
        """Clear a `refuse_recipient` of `address`."""
        with self._handler.lock:
            self._handler.refused_recipients.pop(address.lower(), None)

    def hold_data(self, point: HoldPoint = "command", count: int = 1) -> threading.Event:
        """Hold the next `count` sessions at DATA until `release_data()`; the returned event
        is set once one is held."""
        with self._handler.lock:
            self._handler.release.clear()
            self._handler.held.clear()
            self._handler.hold = point
            self._handler.hold_left = count
        return self._handler.held

    def offer_smtputf8(self, offer: bool = True) -> None:
        """Offer SMTPUTF8 in the EHLO of the sessions opened from now on (or not)."""
        for controller in self._controllers:
            controller.SMTP_kwargs["enable_SMTPUTF8"] = offer

    def keep_sent_copies(self, keep: bool = True) -> None:
        """File a copy of each accepted message in the sender's Sent folder (as Gmail does)."""
        self._handler.keep_sent = keep

    def release_data(self) -> None:
        self._handler.hold = None
        self._handler.release.set()
