"""Receiving mail: the folder read over IMAP, IDLE, the cursor, the catch-up.

One IMAP session at a time, in the folder `EMAIL_IMAP_URL` names (INBOX by default):

* After every (re)connect it catches up from the stored cursor, `UIDVALIDITY:UID:DAY`
  (`Cursor`): `UID SEARCH UID n+1:*` (whose answer always holds the highest UID, even
  below n+1: filtered), oldest first, a page at a time. Each message is fetched with
  `BODY.PEEK[]`, which leaves `\\Seen` alone, after its `RFC822.SIZE` was checked against
  the whole-message bound (`whole_message_bound`): a mail carrying a file at the attachment
  limit, base64-encoded, and its text, always passes, and so does any mail up to
  `WHOLE_MESSAGE_FLOOR` however its files share it; the attachment limit is then applied
  to each file (`attachments`). A page's mail is fetched `FETCH_BYTES` at a time (one
  larger mail alone). Over the bound, only its header block, its `BODYSTRUCTURE` and its
  inline text parts are fetched (`structure.text_sections`): its words are passed on, and
  its files named from the structure as not kept; when no text part can be fetched (a
  single part, or text parts over `structure.MAX_TEXT_PART`), it is handed over with a note
  naming its files, its body never read. A page goes to the sink in one transaction with the
  cursor of its last message; only then are its messages flagged `\\Seen`.
* Then it IDLEs (RFC 2177). Anything the server says ends the IDLE for a catch-up (also
  what it said with the `+ idling` continuation, which imaplib buffers). Every
  `idle_renew` seconds, well within the 29 minutes servers allow, the IDLE ends, a
  `NOOP` checks that the connection still answers (NAT boxes drop quiet ones silently),
  a catch-up runs, and a fresh IDLE begins.
* A lost connection (server restarted, network gone) is reconnected with back-off
  (`EmailTuning.receive_retry`), told once per outage through `on_trouble`.
* A changed `UIDVALIDITY` voids every stored UID: the folder is read again from its
  start, but no mail older than the day of the first start (`Cursor.since`), and mail
  handled before is recognised by its Message-ID (the store's key, `inbound.py`).
* The very first start (no cursor) answers only mail that arrives from then on, like the
  other channels: the mail already in the folder is left alone, and the log says how much.

The reading of a message (`reading.read_mail`) never raises by contract; should it, the
message is logged with its traceback and skipped, so that one mail never stops the channel.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, ProtocolError

from adapters.channel import (
    CommandShape,
    Inbound,
    InboundSink,
    PermanentChannelError,
    TransientChannelError,
)

from .failures import describe
from .inbound import mail_to_inbound
from .reading import read_headers, read_mail, read_text_parts
from .servers import MailServer
from .structure import encoded_size, listed_files, oversized, text_only_body, text_sections
from .transport import CONNECTION_ERRORS, Login, close_imap, open_imap
from .tuning import EmailTuning

log = logging.getLogger("deskbot.adapters.email")

CURSOR_KEY = "email:uid"
#: Room in a mail beside a file at the attachment limit: its headers, its text, the MIME around.
MESSAGE_ROOM = 2 * 2**20
#: Mail up to this size is fetched whole, however many files share it (within memory: one such
#: mail is held at a time, with its parsed parts and decoded files, a few times its size).
WHOLE_MESSAGE_FLOOR = 64 * 2**20
#: Mail fetched in one command, in bytes as sent (a larger mail is fetched alone).
FETCH_BYTES = 64 * 2**20


def whole_message_bound(limit: int) -> int:
    """The largest mail fetched whole, for an attachment limit of `limit` bytes per file: one
    file at the limit base64-encoded and `MESSAGE_ROOM`, at least `WHOLE_MESSAGE_FLOOR`."""
    return max(encoded_size(limit) + MESSAGE_ROOM, WHOLE_MESSAGE_FLOOR)


@dataclass(frozen=True)
class Cursor:
    """Where reading stands: the folder's UIDVALIDITY, the last UID handled, the first start's day."""

    validity: int
    uid: int
    since: date

    def value(self) -> str:
        return f"{self.validity}:{self.uid}:{self.since.isoformat()}"

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        if not value:
            return None
        try:
            validity, uid, since = value.split(":")
            return cls(int(validity), int(uid), date.fromisoformat(since))
        except ValueError:
            log.warning("email: the stored cursor %r is not one of ours; reading as after a first start", value)
            return None


class Receiver:
    """The channel's receiving side: one IMAP session at a time, reconnected until the channel closes."""

    def __init__(
        self,
        server: MailServer,
        login: Login,
        *,
        tuning: EmailTuning,
        own_address: str,
        authserv_id: str | None,
        closing: threading.Event,
        on_trouble: Callable[[str], None],
        max_attachment_bytes: Callable[[], int],
        aliases: tuple[str, ...] = (),
        customer_command: Callable[[], Callable[[str], CommandShape | None] | None] = lambda: None,
    ) -> None:
        self.server = server
        #: EMAIL_ALIASES: other addresses of the mailbox (mail from them is the desk's own).
        self.aliases = tuple(a.lower() for a in aliases)
        self.login = login
        self.tuning = tuning
        self.own_address = own_address.lower()
        self.authserv_id = authserv_id
        self._closing = closing
        self.on_trouble = on_trouble
        self.max_attachment_bytes = max_attachment_bytes
        #: `Channel.customer_command`, as the runtime set it (a new mail's subject may be a command).
        self.customer_command = customer_command
        self.connected = False
        #: Did the current session get as far as reading the folder?
        self._reached = False
        self._client: imapclient.IMAPClient | None = None

    def run(self, sink: InboundSink, stop: threading.Event) -> None:
        """Hand every message of the folder to `sink` until `stop` is set or the channel closes."""
        failures = 0
        while not self._stopping(stop):
            self._reached = False
            try:
                self._session(sink, stop)
                return
            except PermanentChannelError:
                raise
            except TransientChannelError as error:
                self.on_trouble(str(error))
            except CONNECTION_ERRORS as error:
                self.on_trouble(f"IMAP connection to {self.server} lost: {describe(error)}")
            finally:
                self.connected = False
            failures = 1 if self._reached else failures + 1  # a session that worked starts the count anew
            self._wait(stop, self.tuning.receive_retry.seconds(failures))

    def close(self) -> None:
        """Drop the connection now (the channel's `closing` ends the loop)."""
        client = self._client
        if client is not None:
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001 — closing a connection that may be gone
                pass

    def _stopping(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._closing.is_set()

    def _wait(self, stop: threading.Event, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping(stop) and time.monotonic() < deadline:
            stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))

    # -- one session ----------------------------------------------------------------

    def _session(self, sink: InboundSink, stop: threading.Event) -> None:
        client = open_imap(self.server, self.login)
        self._client = client
        try:
            try:
                folder = client.select_folder(self.server.folder)
            except IMAPClientError as error:
                raise PermanentChannelError(
                    f"cannot open the folder {self.server.folder!r} on {self.server} ({describe(error)}): check EMAIL_IMAP_URL"
                ) from None
            cursor = self._cursor(client, folder, sink)
            self.connected = self._reached = True
            cursor = self._catch_up(client, sink, cursor, stop)
            while not self._stopping(stop):
                told = self._idle(client, stop)
                if self._stopping(stop):
                    break
                if not told:
                    client.noop()  # the connection answers, or this raises and we reconnect
                cursor = self._catch_up(client, sink, cursor, stop)
        finally:
            self._client = None
            self.connected = False
            close_imap(client)

    def _cursor(self, client: imapclient.IMAPClient, folder: dict[bytes, Any], sink: InboundSink) -> Cursor:
        validity = int(folder[b"UIDVALIDITY"])
        stored = Cursor.parse(sink.get_cursor(CURSOR_KEY))
        if stored is not None and stored.validity == validity:
            return stored
        if stored is not None:
            log.warning(
                "email: the UIDVALIDITY of %s changed (%d -> %d): reading the folder again from %s; "
                "mail handled before is known by its Message-ID",
                self.server.folder,
                stored.validity,
                validity,
                stored.since.isoformat(),
            )
            rescan = Cursor(validity, 0, stored.since)
            sink.set_cursor(CURSOR_KEY, rescan.value())  # a restart mid-way goes on with the re-scan
            return rescan
        present = client.search(["ALL"])
        top = int(folder.get(b"UIDNEXT", 0)) - 1
        top = max([top, *present]) if present or top > 0 else 0
        cursor = Cursor(validity, max(top, 0), datetime.now(UTC).date())
        sink.set_cursor(CURSOR_KEY, cursor.value())
        log.info(
            "email: first start: answering mail that arrives from now on; %d message(s) already in %s left alone",
            len(present),
            self.server.folder,
        )
        return cursor

    def _idle(self, client: imapclient.IMAPClient, stop: threading.Event) -> bool:
        """IDLE until the server tells something (True), `idle_renew` seconds pass, or `stop`.

        Mail that came after the last command is told at once when IDLE begins, often in the
        packet of the `+ idling` continuation: imaplib then holds it in its read buffer, where
        `idle_check` (which polls the socket) never looks (tests/mail/test_servers.py).
        """
        client.idle()
        began = time.monotonic()
        try:
            if _buffered(client):
                return True
            while not self._stopping(stop) and time.monotonic() - began < self.tuning.idle_renew:
                asked = time.monotonic()
                responses = client.idle_check(timeout=self.tuning.idle_check)
                if any(_says(r, b"BYE") for r in responses):
                    raise TransientChannelError(f"the IMAP server {self.server} closed the session")
                if responses:
                    return True
                if time.monotonic() - asked < self.tuning.idle_check / 2:
                    # Nothing, at once: the socket was readable but held no line. That is how a
                    # connection closed without a BYE looks (a server killed, a NAT box's reset):
                    # imapclient swallows the EOF, and every idle_check would return at once, a
                    # busy loop. Leave IDLE: its DONE fails on a dead connection and the session
                    # is opened again; on a live one, a catch-up finds nothing and IDLE resumes.
                    return True
            return False
        finally:
            client.idle_done()

    # -- catch-up -----------------------------------------------------------------

    def _catch_up(
        self, client: imapclient.IMAPClient, sink: InboundSink, cursor: Cursor, stop: threading.Event
    ) -> Cursor:
        """Hand over every message after `cursor`, a page at a time; return the new cursor.

        Searched again after every page until nothing new is found: mail that arrives while the
        bot fetches or flags is told in the answer to that command, and the server does not
        tell it again in IDLE.
        """
        while not self._stopping(stop):
            criteria: list[Any] = ["UID", f"{cursor.uid + 1}:*"]
            if cursor.uid == 0:
                criteria += ["SINCE", cursor.since]  # a re-scan reads nothing older than the first start
            uids = sorted(uid for uid in client.search(criteria) if uid > cursor.uid)
            if not uids:
                break
            cursor = self._page(client, sink, cursor, uids[: self.tuning.page_size])
        return cursor

    def _page(self, client: imapclient.IMAPClient, sink: InboundSink, cursor: Cursor, uids: list[int]) -> Cursor:
        limit = self.max_attachment_bytes()
        bound = whole_message_bound(limit)
        facts = client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"])
        present = [uid for uid in uids if uid in facts]  # expunged meanwhile: gone
        sizes = {uid: int(facts[uid].get(b"RFC822.SIZE", 0)) for uid in present}
        small = [uid for uid in present if sizes[uid] <= bound]
        large = [uid for uid in present if uid not in small]
        bodies: dict[int, dict[bytes, Any]] = {}
        for batch in _batches(small, sizes):
            bodies.update(client.fetch(batch, ["BODY.PEEK[]"]))
        headers = self._headers(client, large) if large else {}
        texts = {uid: self._texts(client, uid, headers[uid]) for uid in large if uid in headers}
        items: list[tuple[Inbound, tuple[str, str] | None]] = []
        last = cursor
        for uid in present:
            last = Cursor(cursor.validity, uid, cursor.since)
            inbound = self._read(
                uid, cursor.validity, facts[uid], bodies.get(uid), headers.get(uid), texts.get(uid), limit
            )
            if inbound is not None:
                items.append((inbound, (CURSOR_KEY, last.value())))
        if items:
            sink.deliver_many(items)
        if last != cursor and (not items or items[-1][1] != (CURSOR_KEY, last.value())):
            sink.set_cursor(CURSOR_KEY, last.value())  # the page ended with mail that was skipped
        if present:
            client.add_flags(present, [imapclient.SEEN])  # only now: their effects are stored
        return Cursor(cursor.validity, max(uids), cursor.since) if uids else cursor

    def _headers(self, client: imapclient.IMAPClient, uids: list[int]) -> dict[int, dict[bytes, Any]]:
        """The header blocks of mail over the limit, with their BODYSTRUCTURE (which names the files)
        in the same command. A structure imapclient cannot parse (`ProtocolError`, nesting past the
        parser's recursion) costs only the file names: the header blocks are fetched alone."""
        try:
            return client.fetch(uids, ["BODY.PEEK[HEADER]", "BODYSTRUCTURE"])
        except (ProtocolError, RecursionError) as error:
            log.warning("email: the BODYSTRUCTURE of UIDs %s could not be read (%s): headers only", uids, error)
            return client.fetch(uids, ["BODY.PEEK[HEADER]"])

    def _texts(self, client: imapclient.IMAPClient, uid: int, header: dict[bytes, Any]) -> bytes | None:
        """The inline text parts of a mail over the bound, put together in their multiparts (see
        `structure.text_only_body`); None when it has none that can be fetched."""
        structure = header.get(b"BODYSTRUCTURE")
        sections = text_sections(structure)
        if not sections:
            return None
        wanted = [item for section in sections for item in (f"BODY.PEEK[{section}.MIME]", f"BODY.PEEK[{section}]")]
        try:
            fetched = client.fetch([uid], wanted).get(uid, {})
        except (IMAPClientError, ProtocolError) as error:
            if isinstance(error, imaplib.IMAP4.abort):
                raise  # the connection is gone: reconnected and read again
            log.warning("email: the text parts of UID %d could not be fetched (%s): headers only", uid, error)
            return None
        parts = {}
        for section in sections:
            mime, content = fetched.get(f"BODY[{section}.MIME]".encode()), fetched.get(f"BODY[{section}]".encode())
            if isinstance(mime, bytes) and isinstance(content, bytes):
                parts[section] = mime + content
        return text_only_body(structure, parts) or None

    def _read(
        self,
        uid: int,
        validity: int,
        facts: dict[bytes, Any],
        body: dict[bytes, Any] | None,
        header: dict[bytes, Any] | None,
        texts: bytes | None,
        limit: int,
    ) -> Inbound | None:
        uid_key = f"uid:{validity}:{uid}"
        arrived = facts.get(b"INTERNALDATE")
        received_at = arrived.astimezone(UTC) if isinstance(arrived, datetime) and arrived.tzinfo else None
        own = (self.own_address, *self.aliases)
        common = {
            "own_address": self.own_address,
            "uid_key": uid_key,
            "received_at": received_at,
            "authserv_id": self.authserv_id,
            "aliases": self.aliases,
            "customer_command": self.customer_command(),
        }
        try:
            if body is not None:
                raw = body.get(b"BODY[]") or b""
                mail = read_mail(raw, own_addresses=own, authserv_id=self.authserv_id, max_attachment_bytes=limit)
                return mail_to_inbound(mail, **common)
            raw_header = (header or {}).get(b"BODY[HEADER]") or b""
            size = int(facts.get(b"RFC822.SIZE", 0))
            listed = listed_files((header or {}).get(b"BODYSTRUCTURE"))
            note, refused = oversized(size, limit, listed, text_read=texts is not None)
            if texts is not None:
                mail = read_text_parts(
                    raw_header,
                    texts,
                    size=size,
                    carries_files=bool(refused),
                    own_addresses=own,
                    authserv_id=self.authserv_id,
                )
            else:
                mail = read_headers(raw_header, size=size, own_addresses=own, authserv_id=self.authserv_id)
            return mail_to_inbound(mail, **common, note=note, refused=refused)
        except Exception:
            log.exception(
                "cannot read the mail with UID %d; skipped", uid, extra={"channel": "email", "message_id": uid_key}
            )
            return None


def _batches(uids: list[int], sizes: dict[int, int]) -> list[list[int]]:
    """`uids` in order, in runs of at most FETCH_BYTES of mail (a larger mail alone)."""
    batches: list[list[int]] = []
    total = 0
    for uid in uids:
        if not batches or total + sizes[uid] > FETCH_BYTES:
            batches.append([])
            total = 0
        batches[-1].append(uid)
        total += sizes[uid]
    return batches


def _buffered(client: imapclient.IMAPClient) -> bool:
    """Has the server said something that imaplib already read into its buffer? (imapclient has
    no public way to look: imaplib's file object is peeked at without waiting for the socket.)"""
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(client._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)


def _says(response: Any, word: bytes) -> bool:
    """Does an untagged IDLE response (`(3, b'EXISTS')`, `(b'BYE', b'…')`) carry `word`?"""
    return isinstance(response, tuple) and any(part == word for part in response[:2])
