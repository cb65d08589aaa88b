"""Receiving Mastodon DMs: the stream, the catch-up polls, the cursor.

A streaming connection to `/api/v1/streaming/user/notification` read by our
own SSE reader (see `stream.py` for why not Mastodon.py's streaming), plus
REST polling of `/api/v1/notifications` with a `min_id` cursor, oldest first,
paging until a page comes back short (`history.mention_pages`). Every
(re)connect first catches up by polling from the cursor, and while the stream
is down the receiver polls every `poll_interval`; it reconnects with back-off
(`MastodonTuning.receive_retry`). Stream and catch-up overlap, so statuses
are deduplicated by id (and the sink is idempotent per message id).

The cursor (`mastodon:notification_min_id`) only moves through the sink: with
`deliver` for a message, with `set_cursor` for a notification that needs no
handling, never backwards. With no stored cursor (the very first start) the
channel starts after the newest mention: the account's history, and the DMs
of notification requests accepted at that start, stay unanswered. A restart
catches up on everything after the stored cursor.

Edits (`edits.py`): the catch-up that follows each (re)connect, and one every
`safety_poll_interval`, reads the newest page of mentions again for statuses
edited since the last look (the notification stream carries no edits).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from mastodon.errors import MastodonError, MastodonUnauthorizedError

from adapters.channel import Inbound, InboundSink, PermanentChannelError, TransientChannelError

from .edits import Edits
from .files import fetch_media, media_urls
from .history import await_merge, mention_pages, mentions_from, newest_mentions
from .inbound import id_key, notification_to_inbound, parse_time
from .startup import dig
from .stream import Closed, Event, Opened, SSEConnection
from .transport import Transport, describe
from .tuning import MastodonTuning

log = logging.getLogger("deskbot.adapters.mastodon")

CURSOR_KEY = "mastodon:notification_min_id"
PAGE_SIZE = 80


class Receiver:
    """The channel's receiving side, built at start: its cursor, the statuses it has seen, the stream."""

    def __init__(
        self,
        transport: Transport,
        http: httpx.Client,
        *,
        tuning: MastodonTuning,
        token: str,
        streaming_url: str,
        own_id: str,
        domain: str,
        accepted: dict[str, datetime],
        closing: threading.Event,
        on_trouble: Callable[[str], None],
        max_attachment_bytes: Callable[[], int] = lambda: 25 * 1024 * 1024,
    ) -> None:
        self.transport = transport
        #: The largest medium a customer's status keeps (`Channel.max_attachment_bytes`).
        self.max_attachment_bytes = max_attachment_bytes
        self.http = http
        self.tuning = tuning
        self._token = token
        self.streaming_url = streaming_url
        self.own_id = own_id
        self.domain = domain
        #: Senders whose notification requests were accepted at start -> when each request last changed.
        self._accepted = accepted
        #: On the first start, the same: their DMs up to then are old, even if merged in late.
        self._old_until: dict[str, datetime] = {}
        #: Set when the channel closes: every wait ends.
        self._closing = closing
        #: Told why an attempt to reach Mastodon failed (the runtime tells an outage once).
        self.on_trouble = on_trouble
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.edits = Edits(transport, own_id=own_id, domain=domain, page_size=PAGE_SIZE, on_trouble=on_trouble)
        #: When edits were last looked for in the newest mentions (`time.monotonic()`).
        self._edits_checked = float("-inf")
        self._cursor: str | None = None
        self._stream: SSEConnection | None = None
        self.stream_open = False
        self.last_poll_ok = 0.0

    def _fetch_media(self, inbound: Inbound, status: dict[str, Any]) -> Inbound:
        """`inbound` with its status's media fetched (a public mention keeps none: it stores no content);
        without them if that fails unexpectedly (the words still count; the failure is logged)."""
        if inbound.public or not status.get("media_attachments"):
            return inbound
        try:
            media, unfetched = fetch_media(self.http, status, self.max_attachment_bytes())
        except Exception:
            log.exception("cannot fetch the media of Mastodon status %s; handled without them", inbound.message_id)
            media, unfetched = (), media_urls(status)
        # A medium that could not be fetched is named by its address, after the words.
        text = "\n\n".join(part for part in (inbound.text, "\n".join(unfetched)) if part)
        return dataclasses.replace(inbound, attachments=media, text=text)

    @property
    def connected(self) -> bool:
        """Streaming, or polled successfully a moment ago."""
        return self.stream_open or time.monotonic() - self.last_poll_ok < 2 * self.tuning.poll_interval + 5

    def close(self) -> None:
        """Stop reading the stream now (the channel's `closing` ends the loop)."""
        stream = self._stream
        if stream is not None:
            stream.close()

    def run(self, sink: InboundSink, stop: threading.Event) -> None:
        """Hand every DM (and public mention) to `sink` until `stop` is set or the channel closes."""
        self._cursor = sink.get_cursor(CURSOR_KEY)
        if self._cursor is None:
            self._start_after_newest(sink, stop)
        else:
            self._fetch_accepted(sink, stop)
        tuning = self.tuning
        tries = 0  # stream connections tried since the last one that opened
        while not stop.is_set() and not self._closing.is_set():
            if tuning.streaming:
                tries = 1 if self._run_stream(sink, stop) else tries + 1  # it was up: reconnect soon
            # The stream is down (or off): poll until it is time to reconnect.
            wait = tuning.receive_retry.seconds(tries) if tuning.streaming else tuning.poll_interval
            deadline = time.monotonic() + wait
            while not stop.is_set() and not self._closing.is_set():
                if time.monotonic() - self.last_poll_ok >= tuning.poll_interval or not tuning.streaming:
                    self._poll(sink, stop)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                stop.wait(min(remaining, tuning.poll_interval))

    def _run_stream(self, sink: InboundSink, stop: threading.Event) -> bool:
        """One streaming connection, from connect to close. True if it opened."""
        connection = SSEConnection(
            self.http,
            self.streaming_url,
            {"Authorization": f"Bearer {self._token}"},
            heartbeat_timeout=self.tuning.heartbeat_timeout,
            connect_timeout=self.tuning.request_timeout,
        ).start()
        self._stream = connection
        opened = False
        try:
            while not stop.is_set() and not self._closing.is_set():
                try:
                    item = connection.items.get(timeout=0.2)
                except queue.Empty:
                    if opened and time.monotonic() - self.last_poll_ok >= self.tuning.safety_poll_interval:
                        self._poll(sink, stop)  # cheap insurance against an event the server never pushed
                    continue
                if isinstance(item, Opened):
                    opened = self.stream_open = True
                    log.info("mastodon: stream connected; catching up from cursor %s", self._cursor)
                    self._poll(sink, stop, edits=True)  # events meanwhile wait in the stream
                elif isinstance(item, Event):
                    if item.name == "notification":
                        self._handle(json.loads(item.data), sink)
                elif isinstance(item, Closed):
                    if item.status == 401:
                        raise PermanentChannelError(f"Mastodon streaming refused the access token ({item.reason})")
                    if opened:
                        log.info("mastodon: stream lost: %s; polling until it is back", item.reason)
                    else:  # reconnecting: told once per outage by the runtime, not at every try
                        self.on_trouble(f"stream refused: {item.reason}")
                    return opened
            return opened
        finally:
            self.stream_open = False
            connection.close()
            self._stream = None

    def _poll(self, sink: InboundSink, stop: threading.Event, *, edits: bool = False) -> None:
        """Catch up from the cursor, oldest first, until a page comes back short; then, if `edits` or
        once every `safety_poll_interval`, look for edits of what is handled (`Edits.catch_up`)."""
        try:
            for page in mention_pages(self.transport, stop, after=self._cursor or "0", page_size=PAGE_SIZE):
                for notification in page:
                    self._handle(notification, sink)
            self.last_poll_ok = time.monotonic()
            if edits or self.last_poll_ok - self._edits_checked >= self.tuning.safety_poll_interval:
                self._edits_checked = self.last_poll_ok
                self.edits.catch_up(sink, stop, self._cursor)
        except MastodonUnauthorizedError as error:
            raise PermanentChannelError(f"Mastodon rejected the access token ({describe(error)})") from None
        except MastodonError as error:
            self.on_trouble(f"polling notifications failed: {describe(error)}")

    def _start_after_newest(self, sink: InboundSink, stop: threading.Event) -> None:
        """First start (no stored cursor): answer only what arrives from now on.

        Answering the account's mention history would open incidents, and spend
        credits, for messages that may be years old. The DMs of requests accepted
        at this start are as old: merged first, they fall behind the cursor, and
        any the merge brings in later are known by their dates (`_old_until`).
        """
        if self._accepted:
            self._old_until, self._accepted = self._accepted, {}
            await_merge(self.transport, self.tuning.merge_wait, stop)
        try:
            newest, earlier = newest_mentions(self.transport, PAGE_SIZE, stop)
        except MastodonUnauthorizedError as error:
            raise PermanentChannelError(f"Mastodon rejected the access token ({describe(error)})") from None
        except MastodonError as error:
            raise TransientChannelError(f"cannot read the newest Mastodon mention: {describe(error)}") from None
        sink.set_cursor(CURSOR_KEY, newest)
        self._cursor = newest
        log.info(
            "mastodon: first start: answering mentions after notification %s; %s earlier mention(s) left unanswered",
            newest,
            earlier,
        )

    def _fetch_accepted(self, sink: InboundSink, stop: threading.Event) -> None:
        """DMs of notification requests accepted at start: older than the cursor, so fetched by sender."""
        if not self._accepted:
            return
        await_merge(self.transport, self.tuning.merge_wait, stop)
        for sender in self._accepted:
            try:
                for notification in mentions_from(self.transport, sender, PAGE_SIZE, stop):
                    self._handle(notification, sink, replay=True)
            except MastodonError as error:
                log.warning("mastodon: fetching accepted requests' DMs failed: %s", describe(error))
        self._accepted = {}

    def _handle(self, notification: dict[str, Any], sink: InboundSink, *, replay: bool = False) -> None:
        """One notification: deliver it, or just move the cursor past it."""
        notification_id = str(notification["id"])
        newer = self._cursor is None or id_key(notification_id) > id_key(self._cursor)
        if not newer and not replay:
            return  # handled before: stream and catch-up overlap
        cursor = (CURSOR_KEY, notification_id) if newer else None
        status = notification.get("status") or {}
        author_id = str(dig(status, "account", "id") or dig(notification, "account", "id") or "")
        status_id = str(status.get("id") or "")
        if (
            notification.get("type") != "mention"
            or not status_id
            or author_id == self.own_id
            or status_id in self._seen
            or self._written_before_first_start(author_id, notification)
        ):
            if cursor:
                sink.set_cursor(*cursor)
        else:
            try:
                inbound = notification_to_inbound(notification, own_account_id=self.own_id, local_domain=self.domain)
            except Exception:
                # A payload this code cannot read would otherwise stop the channel at every restart;
                # log it (with the traceback) and move on, so every other customer is still served.
                log.exception(
                    "cannot read Mastodon notification %s; skipped",
                    notification_id,
                    extra={"channel": "mastodon", "message_id": status_id},
                )
                if cursor:
                    sink.set_cursor(*cursor)
            else:
                sink.deliver(self._fetch_media(inbound, status), cursor=cursor)
                self.edits.read_with(status)
            self._remember(status_id)
        if newer:
            self._cursor = notification_id

    def _written_before_first_start(self, author_id: str, notification: dict[str, Any]) -> bool:
        old_until = self._old_until.get(author_id)
        return old_until is not None and parse_time(notification.get("created_at")) <= old_until

    def _remember(self, status_id: str) -> None:
        self._seen[status_id] = None
        while len(self._seen) > 10_000:
            self._seen.popitem(last=False)
