"""The mailbox's Sent folder: whether a row's mail went out already, and a copy kept there.

SMTP has no idempotency key. A row retried after a crash (`Outbound.attempt > 1`) may have
been accepted by the server before the process died, so its stable Message-ID is looked for
in the Sent folder first. That folder is the one with the `\\Sent` special-use attribute
(RFC 6154), whatever its name ("Sent", "Sent Items", "[Gmail]/Sent Mail", "Itens enviados").

After a send the mail is appended there, unless the server keeps a copy of what its SMTP
server took by itself (Gmail and some other providers do: a second copy would show the
message twice); which it does is learnt from the first sends (`SentFolder.keep`). What cannot be told apart: a crash after the server's `250` and
before the append leaves no copy, so the retry sends once more, with the same Message-ID,
which mail clients fold into one (SPEC §7).

One IMAP session for these look-ups, opened when first needed and again after a failure;
the receiving side keeps its own (it is in IDLE).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import imapclient

from adapters.channel import ChannelError, TransientChannelError, TransientSendError

from .failures import describe
from .servers import MailServer
from .transport import CONNECTION_ERRORS, Login, close_imap, open_imap

log = logging.getLogger("deskbot.adapters.email")
T = TypeVar("T")
#: Sends after which a server that never showed a copy of its own in Sent is taken not to keep any.
LOOKS = 3
#: The special-use attribute of the Sent folder (RFC 6154).
SENT_FLAG = rb"\Sent"


class SentFolder:
    def __init__(self, server: MailServer, login: Login) -> None:
        self.server = server
        self.login = login
        self._client: imapclient.IMAPClient | None = None
        self._name: str | None = None
        self._lock = threading.Lock()
        #: Does the server put a copy of what its SMTP server sends in Sent itself (Gmail)? None: not known yet.
        self.server_keeps: bool | None = None
        self._looked = 0

    def find_name(self) -> str | None:
        """The name of the folder with the `\\Sent` attribute (None: the server names none)."""
        try:
            return self._call(self._folder)
        except ChannelError as error:
            raise TransientChannelError(f"cannot list the folders on {self.server}: {error}") from None

    def contains(self, message_id: str) -> bool:
        """Is a mail with `message_id` in the Sent folder? TransientSendError if that cannot be told."""

        def look(client: imapclient.IMAPClient) -> bool:
            name = self._folder(client)
            if name is None:
                return False
            client.select_folder(name, readonly=True)
            return bool(client.search(["HEADER", "Message-ID", message_id]))

        try:
            return self._call(look)
        except ChannelError as error:
            raise TransientSendError(f"cannot look in the Sent folder on {self.server}: {error}") from None

    def keep(self, message_id: str, raw: bytes) -> None:
        """Append `raw` to the Sent folder unless the server keeps a copy itself. A failure here
        is logged, never raised: the mail went out, and the row must be recorded as sent.

        Whether the server keeps copies is learnt from the first sends (`LOOKS`): one copy found
        there means it does (nothing is appended from then on); none after `LOOKS` sends means it
        does not, and from then on each mail is appended without a look (one command, not three).
        """

        def append(client: imapclient.IMAPClient) -> None:
            name = self._folder(client)
            if name is not None:
                client.append(name, raw, flags=[imapclient.SEEN], msg_time=datetime.now(UTC))

        try:
            if self.server_keeps is None:
                if self.contains(message_id):
                    self.server_keeps = True
                    log.info("email: the server keeps a copy of sent mail in Sent itself; deskbot appends none")
                    return
                self._looked += 1
                if self._looked >= LOOKS:
                    self.server_keeps = False
            if not self.server_keeps:
                self._call(append)
        except ChannelError as error:
            log.warning("email: sent %s, but could not keep a copy in the Sent folder: %s", message_id, error)

    def _call(self, action: Callable[[imapclient.IMAPClient], T]) -> T:
        """`action` on the session, opened if need be. A session kept from earlier may have been
        closed by the server meanwhile (they drop quiet ones after 30 minutes): then it is opened
        again and `action` tried once more. ChannelError (one line) if that fails too."""
        with self._lock:
            if self._client is not None:
                try:
                    return action(self._client)
                except CONNECTION_ERRORS:
                    self._drop()  # gone stale: once more on a fresh session
            try:
                return action(self._connect())
            except CONNECTION_ERRORS as error:
                self._drop()
                raise TransientChannelError(describe(error)) from None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connect(self) -> imapclient.IMAPClient:
        if self._client is None:
            self._client = open_imap(self.server, self.login)
        return self._client

    def _folder(self, client: imapclient.IMAPClient) -> str | None:
        if self._name is None:
            self._name = next((name for flags, _delimiter, name in client.list_folders() if SENT_FLAG in flags), "")
            if not self._name:
                log.warning("email: the mailbox has no folder marked \\Sent; sent mail is not kept there")
        return self._name or None

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            close_imap(client)
