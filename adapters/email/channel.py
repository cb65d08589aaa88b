"""The email channel: the support mailbox, read over IMAP and answered over SMTP (SPEC §4 Email).

Starting (`start`): a login to both servers, so that a wrong password, an unknown host or a
failed TLS handshake stops start-up with one line naming the setting, and the look-up of the
Sent folder. Receiving (`receive.py`): IDLE on the folder, a catch-up from the stored cursor
after every (re)connect. Sending (`outbound.py`): one mail per outbox row, threaded, with a
stable Message-ID looked for in Sent before a retried row goes out again.

Loops between robots are the core's to stop, with what the channel says: mail a machine
sent is `Inbound.automatic` (stored, never answered), and the channel's
`answers_per_hour` caps the automatic answers any one address gets.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from dataclasses import dataclass
from typing import ClassVar

from adapters.channel import Channel, FileRefusal, InboundSink, Outbound, OutboundFile, size_text

from .oauth import OAuth2Settings, TokenSource
from .outbound import MailPoster
from .receive import Receiver
from .reconcile import SentFolder
from .servers import MailServer
from .structure import encoded_size
from .transport import Login, close_imap, close_smtp, open_imap, open_smtp
from .tuning import EmailTuning

log = logging.getLogger("deskbot.adapters.email")
#: Room in a message for its headers, its text and the MIME parts around a file.
MAIL_OVERHEAD = 64 * 1024


def _size_limit(smtp: smtplib.SMTP) -> int | None:
    value = smtp.esmtp_features.get("size", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


@dataclass(frozen=True)
class EmailSettings:
    """What the settings say about the mailbox (SPEC §6); `password` and the OAuth 2 secrets are never shown."""

    address: str
    imap: MailServer
    smtp: MailServer
    username: str
    password: str
    display_name: str = "Support"
    authserv_id: str | None = None
    ca_file: str | None = None
    answers_per_hour: int = 5
    #: EMAIL_ALIASES: other addresses that reach the mailbox (never copied; mail from them is the desk's own).
    aliases: tuple[str, ...] = ()
    #: EMAIL_OAUTH2_*: log in with OAuth 2 access tokens (XOAUTH2) instead of `password`.
    oauth2: OAuth2Settings | None = None

    def __repr__(self) -> str:
        return f"EmailSettings({self.address!r}, imap={self.imap}, smtp={self.smtp})"


class EmailChannel(Channel):
    """Customers' mail to the support address."""

    name: ClassVar[str] = "email"

    def __init__(self, settings: EmailSettings, *, tuning: EmailTuning = EmailTuning()) -> None:
        self.settings = settings
        self.tuning = tuning
        self.answers_per_hour = settings.answers_per_hour
        # The token endpoint is the provider's (login.microsoftonline.com): the system's CAs, not EMAIL_CA_FILE's.
        tokens = TokenSource(settings.oauth2, timeout=tuning.request_timeout) if settings.oauth2 else None
        self._login = Login(settings.username, settings.password, settings.ca_file, tuning.request_timeout, tokens)
        self._closing = threading.Event()
        self._receiver: Receiver | None = None
        self._poster: MailPoster | None = None
        #: The largest message the submission server takes (its EHLO `SIZE`), None if it names none.
        self.message_size_limit: int | None = None

    def __repr__(self) -> str:  # never show the password
        return f"EmailChannel({self.settings.address!r})"

    def start(self) -> None:
        """Log in to both servers (one clear line if either refuses) and find the Sent folder."""
        s = self.settings
        imap = open_imap(s.imap, self._login)
        close_imap(imap)
        smtp = open_smtp(s.smtp, self._login)
        self.message_size_limit = _size_limit(smtp)
        close_smtp(smtp)
        sent = SentFolder(s.imap, self._login)
        sent_name = sent.find_name()
        self._poster = MailPoster(
            s.smtp,
            self._login,
            address=s.address,
            display_name=s.display_name,
            sent=sent,
            files=lambda: self.files,
        )
        self._receiver = Receiver(
            s.imap,
            self._login,
            tuning=self.tuning,
            own_address=s.address,
            authserv_id=s.authserv_id,
            closing=self._closing,
            on_trouble=self.report_trouble,
            max_attachment_bytes=lambda: self.max_attachment_bytes,
            aliases=s.aliases,
            customer_command=lambda: self.customer_command,
        )
        log.info(
            "email: %s signed in to %s (folder %s) and %s; sent mail kept in %s",
            s.address,
            s.imap,
            s.imap.folder,
            s.smtp,
            sent_name or "(no Sent folder)",
        )

    def cannot_carry(self, file: OutboundFile) -> FileRefusal | None:
        """A file too large for the submission server's message size limit (its EHLO `SIZE`, RFC
        1870), once base64 has made it a third larger; any type goes by mail."""
        limit = self.message_size_limit
        if limit is None or encoded_size(file.size) + MAIL_OVERHEAD <= limit:
            return None
        largest = max(0, (limit - MAIL_OVERHEAD) * 3 // 4)
        return FileRefusal("size", largest, f"the mail server takes messages up to {size_text(limit)}")

    @property
    def connected(self) -> bool:
        return self._receiver is not None and self._receiver.connected

    def receive(self, sink: InboundSink, stop: threading.Event) -> None:
        """Hand every mail of the folder to `sink` until `stop` is set (see `receive.py`)."""
        if self._receiver is None:
            raise RuntimeError("EmailChannel.start() was not called")
        self._receiver.run(sink, stop)

    def send(self, message: Outbound) -> list[str]:
        """Send the row as one mail; return its Message-ID (see `outbound.py`)."""
        if self._poster is None:
            raise RuntimeError("EmailChannel.start() was not called")
        return self._poster.send(message)

    def close(self) -> None:
        self._closing.set()
        if self._receiver is not None:
            self._receiver.close()
        if self._poster is not None:
            self._poster.close()
