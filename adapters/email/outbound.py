"""deskbot's `Outbound` rows as mail: each sent once, through SMTP submission.

A row is a direct message to a customer's address (`compose.build`). A retried row
(`attempt > 1`) is first looked for by its Message-ID in the Sent folder
(`reconcile.SentFolder`): found, it is not sent again. After the server took it, a copy is
kept in Sent unless the server keeps one itself.

What the server answers decides what happens to the row:

* `4xx` (421 busy, 451 local error, 452 no room …), a dropped connection, a timeout: worth
  retrying (`TransientSendError`); the dispatcher backs off, and nothing of the channel is
  sent before this row.
* `4xx` on the customer's address at `RCPT TO` (452 4.2.2 mailbox full, 450 greylisting): that
  address is refused for now, not the server: `RecipientDeferred`, retried after a minute, then
  two, four … at most half an hour apart (`DEFERRED_RETRY`), as mail servers retry their queues
  (the dispatcher gives up after five days). Mail to other people goes on meanwhile; later mail
  to the same address waits behind it. People in `Cc` who took the mail are not sent it again.
* `5xx` on the recipient (550 no such user …) or on the message (552, 554): it can never
  go (`PermanentSendError`); the dispatcher marks the row failed and tells the engineers in
  the case topic. A `5xx` on the sender (`MAIL FROM`) is the settings' fault, not the row's:
  retried, like a `4xx`, until they are fixed.
* A refusal of someone in `Cc` only (the customer took the mail): the row is sent, and never sent
  again for them; `send` returns a `Sent` naming each refused copy with the server's reply, and the
  dispatcher tells the engineers in the case topic. Refused for now (`4xx`, greylisting): the
  `Sent` names them apart (`deferred_copies`), and the dispatcher sends them the mail later,
  without the others.

An engineer's files (`Outbound.files`) are attached, their bytes read from `Channel.files`;
once the server took the mail they are recorded as sent by email (and the store drops the
bytes). A file left out by the core is named under the text with the core's sentence. A retried
row whose files are recorded as sent with its own Message-ID went before (the server took it; the
Sent folder has no copy): it is not sent again. A file whose bytes are gone otherwise is named
with the row's `unsent` sentence, and in the `Sent` returned (the engineers are told).

An address with non-ASCII characters before the "@" goes only through a server that offers
SMTPUTF8 (RFC 6531; the mail is then written in UTF-8, `compose`): without it, the customer's
address fails the row for good (the engineers are told, as of a refused recipient), and such a
copy is left out of the mail and named as refused. An internationalised domain is punycode
everywhere and needs nothing of the server.

One SMTP session is kept between sends; one that was quiet for a while is checked with a NOOP
before it sends, and opened again when the server dropped it. An error in the middle of a
transaction the server did not end itself resets the session (`RSET`, else a new session), so
that the next mail never meets the last one's half-done `MAIL FROM` ("503 nested MAIL command").
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address

from adapters.backoff import Backoff
from adapters.channel import (
    ChannelError,
    FileStore,
    Outbound,
    OutboundFile,
    PermanentSendError,
    RecipientDeferred,
    Sent,
    TransientSendError,
    size_text,
)

from .compose import build, copied, file_note, mail_address, message_id, needs_smtputf8
from .failures import describe
from .reconcile import SentFolder
from .servers import MailServer
from .transport import Login, close_smtp, open_smtp

log = logging.getLogger("deskbot.adapters.email")
#: Seconds after which a kept SMTP session is checked before it sends (servers drop quiet ones).
QUIET_SESSION = 30.0
#: A recipient refused for now is tried again after a minute, then two, four … (and up to 30 s more
#: at random) at most half an hour apart: greylisting lets a mail in after a few minutes; a full
#: mailbox may take days.
DEFERRED_RETRY = Backoff(initial=60.0, maximum=1800.0, jitter=30.0)


class MailPoster:
    def __init__(
        self,
        server: MailServer,
        login: Login,
        *,
        address: str,
        display_name: str,
        sent: SentFolder,
        files: Callable[[], FileStore | None] = lambda: None,
    ) -> None:
        self.server = server
        self.login = login
        self.address = address
        self.display_name = display_name
        self.sent = sent
        #: Where the bytes of a row's files wait (`Channel.files`, set by the runtime after start).
        self.files = files
        self.domain = Address(addr_spec=address).domain
        self._smtp: smtplib.SMTP | None = None
        #: When the SMTP session last sent a mail (time.monotonic()).
        self._used = 0.0
        self._lock = threading.Lock()

    def send(self, message: Outbound) -> list[str]:
        """Send the row's mail (once); return its Message-ID (a `Sent`, with the refused copies, when
        the server refused people in `Cc`)."""
        if message.kind != "direct":
            raise PermanentSendError(
                f"the email channel cannot send {message.kind!r} messages, only 'direct' (outbox {message.outbox_id})"
            )
        if not message.recipient:
            raise PermanentSendError(f"outbox {message.outbox_id} has no recipient")
        mail_id = message_id(message, self.domain, self.display_name)
        if message.attempt > 1 and self.sent.contains(mail_id):
            log.info("email: outbox %d was sent before (found in Sent); not sent again", message.outbox_id)
            return [mail_id]
        if message.attempt > 1 and self._files_went_with(message, mail_id):
            log.info("email: outbox %d was sent before (its files went with it); not sent again", message.outbox_id)
            return [mail_id]
        attached, notes, unsent = self._files(message)
        with self._lock:
            unsayable = self._unsayable(message)
            mail = build(
                message,
                address=self.address,
                display_name=self.display_name,
                now=datetime.now(UTC),
                attached=attached,
                not_attached=notes,
                leave_out=unsayable,
            )
            recipients = [message.recipient, *(a for a in copied(message, self.address) if a not in unsayable)]
            utf8 = any(needs_smtputf8(a) for a in recipients)
            # CRLF line ends, as SMTP carries them: smtplib sends bytes as they are.
            raw = mail.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
            refused, deferred = self._submit(message, raw, recipients, utf8=utf8)
        refused.update(unsayable)
        self.sent.keep(mail_id, raw)
        store = self.files()
        for file, _data in attached:
            # The bytes are no longer needed, unless someone copied waits for the mail: the row the
            # dispatcher writes for them attaches the files again (and then records them).
            if store is not None and not deferred:
                store.record_upload(file.id, "email", mail_id)
        if refused or deferred or unsent:
            return Sent([mail_id], refused, deferred, unsent)
        return [mail_id]

    def _files_went_with(self, message: Outbound, mail_id: str) -> bool:
        """Whether the row's files are recorded as sent with this very mail: the server took it
        (they are recorded only then), though the Sent folder keeps no copy of it."""
        store = self.files()
        carried = [file for file in message.files if file.left_out is None and file.refused_over is None]
        return store is not None and any(store.uploaded(file.id, "email") == mail_id for file in carried)

    def _files(self, message: Outbound) -> tuple[list[tuple[OutboundFile, bytes]], list[str], dict[int, str]]:
        """The row's files with their bytes, a line for each one the mail does not carry, and those
        it cannot carry after all, each with why (`Sent.unsent_files`)."""
        attached: list[tuple[OutboundFile, bytes]] = []
        notes: list[str] = []
        unsent: dict[int, str] = {}
        store = self.files()
        for file in message.files:
            if file.left_out is not None:
                notes.append(file_note(file, file.left_out))
                continue
            if file.refused_over is not None:
                notes.append(file_note(file, f"not kept: over the {size_text(file.refused_over)} limit"))
                continue
            if store is None:
                raise TransientSendError(f"outbox row {message.outbox_id}: no file store to read its files from")
            data = store.data(file.id)
            if data is None:  # dropped once another mail carried it (`_files_went_with` found none of this one)
                notes.append(file_note(file, file.unsent or "no longer stored"))
                unsent[file.id] = "its bytes are no longer stored"
                continue
            attached.append((file, data))
        return attached, notes, unsent

    def _unsayable(self, message: Outbound) -> dict[str, str]:
        """The copies whose addresses the server cannot take (non-ASCII before the "@", and no
        SMTPUTF8), each with why; raises `PermanentSendError` when the customer's is one."""
        recipient = message.recipient
        assert recipient is not None
        wanting = [a for a in [recipient, *copied(message, self.address)] if needs_smtputf8(a)]
        if not wanting or self._session().has_extn("smtputf8"):
            return {}
        why = f"the SMTP server {self.server} does not offer SMTPUTF8, which an address with non-ASCII characters before the @ needs"
        if recipient in wanting:
            raise PermanentSendError(f"recipient {recipient} cannot be sent to: {why}")
        for address in wanting:
            log.warning("email: outbox %d: copy to %s left out: %s", message.outbox_id, address, why)
        return {address: f"not sent: {why}" for address in wanting}

    def _session(self) -> smtplib.SMTP:
        """The kept SMTP session, checked if quiet, else a new one. Raises `TransientSendError`."""
        self._check_quiet_session()
        if self._smtp is None:
            try:
                self._smtp = open_smtp(self.server, self.login)
            except ChannelError as error:  # the session could not be opened
                raise TransientSendError(str(error)) from None
        return self._smtp

    def _submit(
        self, message: Outbound, raw: bytes, recipients: list[str], *, utf8: bool = False
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Hand the mail to the server for `recipients` (the customer's address first); return the
        copies (`Cc`) it refused, each with its reply: for good, and for now. `utf8`: an address
        needs SMTPUTF8 (the caller saw that the server offers it)."""
        recipient = recipients[0]
        envelope = [mail_address(a) for a in recipients]  # as SMTP writes them (punycode domains)
        options = ("SMTPUTF8", "BODY=8BITMIME") if utf8 else ()
        try:
            smtp = self._session()
            refused = smtp.sendmail(self.address, envelope, raw, mail_options=options)
            refused = {recipients[envelope.index(a)] if a in envelope else a: v for a, v in refused.items()}
            self._used = time.monotonic()
        except smtplib.SMTPRecipientsRefused as error:  # every recipient refused: nobody has it
            code, reason = error.recipients.get(envelope[0], (550, b""))
            self._refused(message, code, reason)
        except smtplib.SMTPSenderRefused as error:
            self._drop()
            if 500 <= error.smtp_code < 600:
                # The server will never take mail from the support address: the settings are
                # wrong, not this row. Retried with back-off (nothing is lost) until they are fixed.
                raise TransientSendError(
                    f"the SMTP server {self.server} refuses mail from {self.address} ({describe(error)}): "
                    "check EMAIL_ADDRESS and EMAIL_USERNAME"
                ) from None
            raise TransientSendError(f"SMTP server {self.server}: {describe(error)}") from None
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
        except UnicodeError as error:  # an address SMTP cannot write (not known to happen after _unsayable)
            self._reset()
            raise PermanentSendError(f"outbox {message.outbox_id}: an address cannot be sent to: {error}") from None
        except Exception:
            self._reset()
            raise
        if recipient in refused:  # only with several recipients: people in Cc took it
            # A retry copies only those refused for now; those refused for good never take it (the
            # engineers are told of them now, as when the customer takes the mail).
            others = {a: answer for a, answer in refused.items() if a != recipient}
            left = tuple(a for a, (code, _r) in others.items() if 400 <= code < 500)
            gone = {a: _text(*answer).removeprefix("SMTP ") for a, answer in others.items() if a not in left}
            self._refused(message, *refused[recipient], copies_left=left, copies_refused=gone)
        copies: dict[str, str] = {}
        later: dict[str, str] = {}
        for address, (code, reason) in refused.items():
            # The customer has the mail: one refused copy must not send it to them again.
            for_now = 400 <= code < 500
            log.warning(
                "email: outbox %d: copy to %s refused%s: %s",
                message.outbox_id,
                address,
                " for now; sent to them later, without the others" if for_now else "",
                _text(code, reason),
            )
            (later if for_now else copies)[address] = _text(code, reason).removeprefix("SMTP ")
        return copies, later

    def _check_quiet_session(self) -> None:
        """Servers close a session quiet for a few minutes: one kept that long is checked with a
        NOOP first and opened again if it is gone, rather than failing the next mail on it."""
        if self._smtp is not None and time.monotonic() - self._used >= QUIET_SESSION:
            self._kept_if_answered(self._smtp.noop)

    def _reset(self) -> None:
        """End whatever transaction an error left open (`RSET`), or the session if that fails."""
        if self._smtp is not None:
            self._kept_if_answered(self._smtp.rset)

    def _kept_if_answered(self, command: Callable[[], tuple[int, bytes]]) -> None:
        """Keep the session if the server answers `command` (NOOP, RSET) with 250; else drop it."""
        try:
            code, _text = command()
        except (OSError, smtplib.SMTPException):
            code = 0
        if code != 250:
            self._drop()

    def _refused(
        self,
        message: Outbound,
        code: int,
        reason: bytes | str,
        *,
        copies_left: tuple[str, ...] | None = None,
        copies_refused: dict[str, str] | None = None,
    ) -> None:
        """The server refused the customer's address at `RCPT TO`: for good (5xx), or for now (4xx)."""
        why = f"recipient {message.recipient} refused: {_text(code, reason)}"
        if 400 <= code < 500 and code != 421:  # 421: the server is closing the session, not the address
            retry = DEFERRED_RETRY.seconds(message.attempt)
            raise RecipientDeferred(why, retry, copies_left=copies_left, refused_copies=copies_refused)
        self._fail(message, code, why)

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
