"""deskbot's `Outbound` rows as mail: each sent once, through SMTP submission.

A row is a direct message to a customer's address (`compose.build`). A retried row
(`attempt > 1`) is first looked for by its Message-ID in the Sent folder
(`reconcile.SentFolder`): found, it is not sent again. After the server took it, a copy is
kept in Sent unless the server keeps one itself.

What the server answers decides what happens to the row:

* `4xx` (421 busy, 451 local error, 452 no room …), a dropped connection, a timeout: worth
  retrying (`TransientSendError`); the dispatcher backs off, and nothing of the channel is
  sent before this row.
* `5xx` on the recipient (550 no such user …) or on the message (552, 554): it can never
  go (`PermanentSendError`); the dispatcher marks the row failed and tells the engineers in
  the case topic.

One SMTP session is kept between sends and opened again when the server dropped it.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from datetime import UTC, datetime
from email.headerregistry import Address

from adapters.channel import ChannelError, Outbound, PermanentSendError, TransientSendError

from .compose import build, message_id
from .reconcile import SentFolder
from .servers import MailServer
from .transport import Login, close_smtp, describe, open_smtp

log = logging.getLogger("deskbot.adapters.email")


class MailPoster:
    def __init__(self, server: MailServer, login: Login, *, address: str, display_name: str, sent: SentFolder) -> None:
        self.server = server
        self.login = login
        self.address = address
        self.display_name = display_name
        self.sent = sent
        self.domain = Address(addr_spec=address).domain
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def send(self, message: Outbound) -> list[str]:
        """Send the row's mail (once); return its Message-ID."""
        if message.kind != "direct":
            raise PermanentSendError(
                f"the email channel cannot send {message.kind!r} messages, only 'direct' (outbox {message.outbox_id})"
            )
        if not message.recipient:
            raise PermanentSendError(f"outbox {message.outbox_id} has no recipient")
        mail_id = message_id(message, self.domain)
        if message.attempt > 1 and self.sent.contains(mail_id):
            log.info("email: outbox %d was sent before (found in Sent); not sent again", message.outbox_id)
            return [mail_id]
        mail = build(message, address=self.address, display_name=self.display_name, now=datetime.now(UTC))
        raw = mail.as_bytes()
        with self._lock:
            self._submit(message, raw)
        self.sent.keep(mail_id, raw)
        return [mail_id]

    def _submit(self, message: Outbound, raw: bytes) -> None:
        recipient = message.recipient
        assert recipient is not None
        try:
            if self._smtp is None:
                self._smtp = open_smtp(self.server, self.login)
            refused = self._smtp.sendmail(self.address, [recipient], raw)
        except smtplib.SMTPRecipientsRefused as error:
            code, reason = error.recipients.get(recipient, (550, b""))
            self._fail(message, code, f"recipient {recipient} refused: {_text(code, reason)}")
        except smtplib.SMTPResponseException as error:
            if error.smtp_code == 421 or not 500 <= error.smtp_code < 600:
                self._drop()
            self._fail(message, error.smtp_code, describe(error))
        except ChannelError as error:  # the session could not be opened
            self._drop()
            raise TransientSendError(str(error)) from None
        except (OSError, smtplib.SMTPException) as error:
            self._drop()
            raise TransientSendError(f"SMTP server {self.server}: {describe(error)}") from None
        if refused:  # only with several recipients; one is all we send to
            code, reason = refused.get(recipient, (550, b""))
            self._fail(message, code, f"recipient {recipient} refused: {_text(code, reason)}")

    def _fail(self, message: Outbound, code: int, reason: str) -> None:
        if 500 <= code < 600:
            raise PermanentSendError(reason)
        raise TransientSendError(reason)

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        close_smtp(smtp)

    def close(self) -> None:
        with self._lock:
            self._drop()
        self.sent.close()


def _text(code: int, reason: bytes | str) -> str:
    text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    return f"SMTP {code} {' '.join(text.split())[:200]}".rstrip()
