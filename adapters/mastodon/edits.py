"""Customers' edits of their direct statuses (`Inbound.edit_of`), found by looking again.

Mastodon lets people edit a posted status (`PUT /api/v1/statuses/:id`): the status keeps its id,
gets new content and `edited_at`, and no new notification is made. An edit of a customer's DM to
the bot becomes an Inbound of its own (`edit_to_inbound`): the new text, `edit_of` naming the
status, and an id per edit, the status id and its `edited_at` (`edit_id`), so that the sink handles
each edit once however often it is read.

Where the bot learns of an edit: from the newest page of mention notifications, read again after
each (re)connect and every `safety_poll_interval` (`Edits.catch_up`), where Mastodon renders each
notification's status as it stands, `edited_at` and new content included. No stream tells of it:
Mastodon pushes `status.update` only to the home feeds a status is in, and a direct status is in the
home feed of the accounts it mentions *that follow its author*
(`FanOutOnWriteService#deliver_to_mentioned_followers!`); the bot follows nobody, and it reads the
notification stream, which carries DMs and nothing of its home feed (fewer bytes on every DM's path).

An edit that changes nothing in the words (a content warning or the language switched, a medium's
description changed: Mastodon sets `edited_at` for those too) is not handled: the status's history
(`GET /api/v1/statuses/:id/history`, asked only when an edit is seen) tells the words before it.
The files an edit added are not fetched.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from mastodon.errors import MastodonError

from adapters.channel import Inbound, InboundSink

from .html_text import status_to_text
from .inbound import id_key, notification_to_inbound, parse_time, plain
from .pacing import API
from .transport import Transport, describe

log = logging.getLogger("deskbot.adapters.mastodon")

#: Where the catch-up stores the newest edit time it has looked at (server time, ISO 8601).
EDITS_CURSOR_KEY = "mastodon:edits_seen_until"


def edit_time(status: dict[str, Any]) -> datetime | None:
    """When the status was last edited (None: never). Mastodon.py's datetimes and the stream's
    ISO text alike; the same moment always compares equal."""
    value = status.get("edited_at")
    return parse_time(value).astimezone(UTC) if value else None


def edit_id(status_id: str, edited_at: datetime) -> str:
    """The exactly-once key of one edit: the status and when it was edited (Mastodon's times have
    milliseconds; the stream writes `…Z`, Mastodon.py a datetime: one text for both)."""
    return f"{status_id}:edit:{edited_at.astimezone(UTC).isoformat(timespec='milliseconds')}"


def edit_to_inbound(status: dict[str, Any], *, own_account_id: str, local_domain: str) -> Inbound | None:
    """The edited `status` as an Inbound with its new words, or None where it is no customer's edit
    to handle: never edited, not direct, the bot's own, or not addressed to the bot."""
    edited_at = edit_time(status)
    account = status.get("account") or {}
    if edited_at is None or status.get("visibility") != "direct" or str(account.get("id")) == own_account_id:
        return None
    if not any(str(m.get("id")) == own_account_id for m in status.get("mentions") or []):
        return None
    status_id = str(status["id"])
    inbound = notification_to_inbound(
        {"id": "", "account": account, "status": status}, own_account_id=own_account_id, local_domain=local_domain
    )
    return dataclasses.replace(
        inbound,
        message_id=edit_id(status_id, edited_at),
        received_at=edited_at,
        edit_of=status_id,
        raw={"event": "status.update", "status": status},
    )


class Edits:
    """The receiver's side of edits: which are new, whether their words changed, the catch-up."""

    def __init__(
        self, transport: Transport, *, own_id: str, domain: str, page_size: int, on_trouble: Callable[[str], None]
    ) -> None:
        self.transport = transport
        self.own_id = own_id
        self.domain = domain
        self.page_size = page_size
        self.on_trouble = on_trouble
        #: Status id -> the edit time its words were read with when handled as a message (a poll reads
        #: statuses as they stand): an edit up to then is in those words already.
        self._read_at: OrderedDict[str, datetime] = OrderedDict()
        #: Edit ids handed over by this process: a replay costs no history request.
        self._handed: OrderedDict[str, None] = OrderedDict()

    def read_with(self, status: dict[str, Any]) -> None:
        """The message of `status` was handled with its words as they stood (edits included)."""
        edited_at = edit_time(status)
        if edited_at is not None:
            _bounded_put(self._read_at, str(status["id"]), edited_at)

    def hand_over(self, status: dict[str, Any], sink: InboundSink, stop: threading.Event) -> bool:
        """Deliver the edit `status` tells of, if it is a customer's edit of new words. True if delivered."""
        try:
            edit = edit_to_inbound(status, own_account_id=self.own_id, local_domain=self.domain)
        except Exception:
            # As for a notification (`Receiver._handle`): logged whole, and the channel goes on.
            log.exception("cannot read the edit of Mastodon status %s; skipped", status.get("id"))
            return False
        if edit is None or edit.message_id in self._handed:
            return False
        read_at = self._read_at.get(str(edit.edit_of))
        if read_at is not None and read_at >= edit.received_at:
            return False  # handled already in these words
        if not self._words_changed(status, stop):
            log.info("mastodon: status %s edited without a change of its words; ignored", edit.edit_of)
            return False
        sink.deliver(edit)
        _bounded_put(self._handed, edit.message_id, None)
        return True

    def _words_changed(self, status: dict[str, Any], stop: threading.Event) -> bool:
        """Do the words (text or content warning) of the status's newest version differ from the
        version before it? True when the history cannot be read: a text repeated beats one lost."""
        call = partial(self.transport.recv.status_history, str(status["id"]))
        try:
            versions = [plain(v) for v in self.transport.request(API, call, stop=stop)]
        except MastodonError as error:
            log.info("mastodon: cannot read the history of status %s (%s)", status.get("id"), describe(error))
            return True
        if len(versions) < 2:
            return True
        # A version has no `mentions`: the status's own tell which link is the bot's mention.
        before = {**versions[-2], "mentions": status.get("mentions") or []}
        return words(before, self.own_id) != words(status, self.own_id)

    def catch_up(self, sink: InboundSink, stop: threading.Event, cursor: str | None) -> None:
        """Hand over the edits the newest page of mentions shows that no event told of.

        Of the statuses whose notification is at or before `cursor` (handled already), each edited
        after the newest edit time the last catch-up looked at (`EDITS_CURSOR_KEY`) is handed over;
        that mark then moves to the newest edit time on the page, so a later edit is always later
        than it. With no mark (the first catch-up), nothing is handed over: the mark is set. A
        notification after the cursor is left to the catch-up of messages, which reads its words as
        they stand. A failure to read is told and the mark stays: the next catch-up looks again.
        """
        if cursor is None:
            return
        call = partial(self.transport.recv.notifications, types=["mention"], limit=self.page_size)
        try:
            page = [plain(n) for n in self.transport.request(API, call, stop=stop)]
        except MastodonError as error:
            self.on_trouble(f"reading mentions for edits failed: {describe(error)}")
            return
        stored = sink.get_cursor(EDITS_CURSOR_KEY)
        mark = parse_time(stored) if stored else None
        newest = mark
        for notification in sorted(page, key=lambda n: id_key(str(n["id"]))):
            status = notification.get("status") or {}
            edited_at = edit_time(status)
            if edited_at is None or id_key(str(notification["id"])) > id_key(cursor):
                continue
            if mark is not None and edited_at > mark:
                self.hand_over(status, sink, stop)
            newest = edited_at if newest is None or edited_at > newest else newest
        if newest is not None and newest != mark:
            sink.set_cursor(EDITS_CURSOR_KEY, newest.isoformat(timespec="milliseconds"))
        elif stored is None:
            sink.set_cursor(EDITS_CURSOR_KEY, datetime.fromtimestamp(0, UTC).isoformat(timespec="milliseconds"))


def words(status: dict[str, Any], own_account_id: str) -> tuple[str, str]:
    """What a version of a status says: its text without the bot's mention, and its content warning."""
    return status_to_text(status, own_account_id).strip(), (status.get("spoiler_text") or "").strip()


def _bounded_put(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > 10_000:
        memory.popitem(last=False)
