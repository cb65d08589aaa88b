"""The Mastodon channel: direct messages in and out, through Mastodon.py.

Receiving: a streaming connection to `/api/v1/streaming/user/notification`
read by our own SSE reader (see `stream.py` for why not Mastodon.py's
streaming), plus REST polling of `/api/v1/notifications` with a `min_id`
cursor, oldest first, paging until empty. Every (re)connect first catches up
by polling from the cursor, and while the stream is down the channel polls
every `poll_interval`. Stream and catch-up overlap, so statuses are
deduplicated by id (and the sink is idempotent per message id).

The cursor (`mastodon:notification_min_id`) only moves through the sink: with
`deliver` for a message, with `set_cursor` for a notification that needs no
handling, never backwards. With no stored cursor (the very first start) the
channel starts after the newest mention: the account's history, and the DMs
of notification requests accepted at that start, stay unanswered. A restart
catches up on everything after the stored cursor.

Sending (`outbound.py`): one `direct` status per part of the reply, each
starting with the customer's mention and replying to the previous part, each
with the Idempotency-Key `deskbot-<outbox id>-<part>`. Mastodon keeps a key
one hour, and a repeated key may even answer HTTP 500 although the status
exists (mastodon/mastodon#40399), so a retried row (`attempt > 1`) first
looks up the parts already posted and posts only the missing ones.

Errors and limits: requests are paced by the `X-RateLimit-*` headers and the
posting budget (`pacing.py`); 5xx answers and network errors are retried with
jittered exponential back-off (tenacity), a bounded number of times;
anything else the server refuses is reported, not retried.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import httpx
from mastodon.errors import (
    MastodonError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from adapters.backoff import Backoff
from adapters.channel import (
    Channel,
    InboundSink,
    Outbound,
    PermanentChannelError,
    TransientChannelError,
)

from .history import await_merge, mention_pages, mentions_from, newest_mentions
from .inbound import id_key, notification_to_inbound, parse_time
from .outbound import ReplyPoster
from .pacing import API, Pacer
from .startup import check_reads_own_statuses, dig, open_to_strangers, read_instance
from .stream import Closed, Event, Opened, SSEConnection
from .transport import Transport, describe

log = logging.getLogger("deskbot.adapters.mastodon")

CURSOR_KEY = "mastodon:notification_min_id"
PAGE_SIZE = 80


@dataclass(frozen=True)
class MastodonTuning:
    """The Mastodon channel's knobs: the defaults suit production; tests shorten them."""

    #: Seconds for an ordinary request.
    request_timeout: float = 30.0
    #: The bounded, jittered retries of one request: a post's `attempts` tries (a receiving call
    #: gives up after 3; the next poll tries again).
    send_retry: Backoff = Backoff(initial=0.25, maximum=8.0, jitter=0.5, attempts=4)
    #: Between stream reconnects (unbounded); polling goes on meanwhile.
    receive_retry: Backoff = Backoff(initial=1.0, maximum=5.0, jitter=0.0)
    #: The longest a call waits for a rate limit; beyond it a send raises `TransientSendError` with
    #: `retry_after`.
    max_rate_wait: float = 15.0
    #: Receive by streaming (and poll while the stream is down); False: poll only.
    streaming: bool = True
    #: Seconds between polls while the stream is down (or off).
    poll_interval: float = 5.0
    #: A poll now and then even while streaming, against an event the server never pushed.
    safety_poll_interval: float = 300.0
    #: A stream silent this long is dead (Mastodon sends a heartbeat every 15 s).
    heartbeat_timeout: float = 45.0
    #: Requests of each rate-limit window left to other clients of the account.
    ratelimit_reserve: int = 1
    #: Mastodon's posting budget: 300 statuses per 3 hours.
    posting_budget: int = 300
    posting_window: float = 3 * 3600.0
    #: Change the notification policy so that DMs from accounts the bot does not follow arrive.
    accept_strangers: bool = True
    #: How long to wait for Mastodon to merge the DMs of requests accepted at start into the notifications.
    merge_wait: float = 10.0
    user_agent: str = "deskbot (support desk bot)"


class MastodonChannel(Channel):
    """Customers' direct messages on one Mastodon account."""

    name: ClassVar[str] = "mastodon"
    #: Mastodon's statuses limit: 300 per 3 hours per account; a reply is split into statuses of
    #: max_characters (500 on most instances, the smallest allowed).
    posting_budget: ClassVar[tuple[int, float] | None] = (300, 3 * 3600.0)
    post_size: ClassVar[int | None] = 500

    def __init__(self, api_base_url: str, access_token: str, *, tuning: MastodonTuning = MastodonTuning()) -> None:
        """`api_base_url` and `access_token` are the settings; `tuning` holds the knobs (`MastodonTuning`)."""
        if not api_base_url or not access_token:
            raise PermanentChannelError("Mastodon needs both an API base URL and an access token")
        self._base_url = api_base_url.rstrip("/")
        self._token = access_token
        self.tuning = tuning
        self._pacer = Pacer(
            reserve=tuning.ratelimit_reserve, posting_budget=tuning.posting_budget, posting_window=tuning.posting_window
        )
        self._closing = threading.Event()
        self._transport: Transport | None = None
        self._http: httpx.Client | None = None
        self._stream: SSEConnection | None = None
        self._poster: ReplyPoster | None = None
        self._me: dict[str, str] = {}
        #: Senders whose notification requests were accepted at start -> when each request last changed.
        self._accepted: dict[str, datetime] = {}
        #: On the first start, the same: their DMs up to then are old, even if merged in late.
        self._old_until: dict[str, datetime] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cursor: str | None = None
        self._stream_open = False
        self._last_poll_ok = 0.0
        self.domain = ""
        self.max_characters = 500
        self.streaming_url = ""

    def __repr__(self) -> str:  # never show the token
        return f"MastodonChannel({self._base_url!r})"

    # -- start ----------------------------------------------------------------

    def start(self) -> None:
        """Check the token, read the instance's limits, make sure strangers' DMs arrive."""
        self._transport = Transport(
            self._base_url,
            self._token,
            self._pacer,
            user_agent=self.tuning.user_agent,
            request_timeout=self.tuning.request_timeout,
            retry=self.tuning.send_retry,
            max_rate_wait=self.tuning.max_rate_wait,
            on_wait=self.report_rate_limit_wait,
        )
        try:
            me = self._transport.paced(API, self._transport.recv.account_verify_credentials, self._closing)
        except MastodonUnauthorizedError as error:
            raise PermanentChannelError(
                f"Mastodon at {self._base_url} rejected the access token ({describe(error)}): check MASTODON_ACCESS_TOKEN"
            ) from None
        except (MastodonNetworkError, MastodonServerError, MastodonRatelimitError) as error:
            raise TransientChannelError(f"cannot reach Mastodon at {self._base_url}: {describe(error)}") from None
        except MastodonError as error:
            raise PermanentChannelError(f"Mastodon at {self._base_url} refused the bot: {describe(error)}") from None
        self._me = {"id": str(me["id"]), "acct": str(me["acct"]), "url": str(me.get("url") or "")}
        facts = read_instance(self._transport, self._base_url, self._closing)
        self.max_characters, self.domain, self.streaming_url = facts.max_characters, facts.domain, facts.streaming_url
        self._accepted = open_to_strangers(self._transport, self._base_url, self.tuning.accept_strangers, self._closing)
        check_reads_own_statuses(self._transport, self._base_url, self._me["id"], self._closing)
        self._poster = ReplyPoster(
            self._transport,
            self._pacer,
            own_id=self._me["id"],
            domain=self.domain,
            max_characters=self.max_characters,
            max_rate_wait=self.tuning.max_rate_wait,
            attempts=self.tuning.send_retry.attempts,
            stop=self._closing,
        )
        self._http = httpx.Client(headers={"User-Agent": self.tuning.user_agent})
        log.info(
            "mastodon: signed in as @%s@%s, max_characters=%d",
            self._me["acct"],
            self.domain,
            self.max_characters,
        )

    # -- receive ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._stream_open or time.monotonic() - self._last_poll_ok < 2 * self.tuning.poll_interval + 5

    def receive(self, sink: InboundSink, stop: threading.Event) -> None:
        """Hand every DM (and public mention) to `sink` until `stop` is set.

        Exceptions raised by the sink propagate; the cursor has not moved past
        the message, so calling `receive` again delivers it again.
        """
        if self._transport is None:
            raise RuntimeError("MastodonChannel.start() was not called")
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
                if time.monotonic() - self._last_poll_ok >= tuning.poll_interval or not tuning.streaming:
                    self._poll(sink, stop)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                stop.wait(min(remaining, tuning.poll_interval))

    def _run_stream(self, sink: InboundSink, stop: threading.Event) -> bool:
        """One streaming connection, from connect to close. True if it opened."""
        assert self._http is not None
        connection = SSEConnection(
            self._http,
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
                    if opened and time.monotonic() - self._last_poll_ok >= self.tuning.safety_poll_interval:
                        self._poll(sink, stop)  # cheap insurance against an event the server never pushed
                    continue
                if isinstance(item, Opened):
                    opened = self._stream_open = True
                    log.info("mastodon: stream connected; catching up from cursor %s", self._cursor)
                    self._poll(sink, stop)  # events meanwhile wait in the stream
                elif isinstance(item, Event):
                    if item.name == "notification":
                        self._handle(json.loads(item.data), sink)
                elif isinstance(item, Closed):
                    if item.status == 401:
                        raise PermanentChannelError(f"Mastodon streaming refused the access token ({item.reason})")
                    if opened:
                        log.info("mastodon: stream lost: %s; polling until it is back", item.reason)
                    else:  # reconnecting: told once per outage by the runtime, not at every try
                        self.report_trouble(f"stream refused: {item.reason}")
                    return opened
            return opened
        finally:
            self._stream_open = False
            connection.close()
            self._stream = None

    def _poll(self, sink: InboundSink, stop: threading.Event) -> None:
        """Catch up from the cursor, oldest first, until a page comes back short."""
        assert self._transport is not None
        try:
            for page in mention_pages(self._transport, stop, after=self._cursor or "0", page_size=PAGE_SIZE):
                for notification in page:
                    self._handle(notification, sink)
            self._last_poll_ok = time.monotonic()
        except MastodonUnauthorizedError as error:
            raise PermanentChannelError(f"Mastodon rejected the access token ({describe(error)})") from None
        except MastodonError as error:
            self.report_trouble(f"polling notifications failed: {describe(error)}")

    def _start_after_newest(self, sink: InboundSink, stop: threading.Event) -> None:
        """First start (no stored cursor): answer only what arrives from now on.

        Answering the account's mention history would open incidents, and spend
        credits, for messages that may be years old. The DMs of requests accepted
        at this start are as old: merged first, they fall behind the cursor, and
        any the merge brings in later are known by their dates (`_old_until`).
        """
        assert self._transport is not None
        if self._accepted:
            self._old_until, self._accepted = self._accepted, {}
            await_merge(self._transport, self.tuning.merge_wait, stop)
        try:
            newest, earlier = newest_mentions(self._transport, PAGE_SIZE, stop)
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
        assert self._transport is not None
        if not self._accepted:
            return
        await_merge(self._transport, self.tuning.merge_wait, stop)
        for sender in self._accepted:
            try:
                for notification in mentions_from(self._transport, sender, PAGE_SIZE, stop):
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
            or author_id == self._me["id"]
            or status_id in self._seen
            or self._written_before_first_start(author_id, notification)
        ):
            if cursor:
                sink.set_cursor(*cursor)
        else:
            try:
                inbound = notification_to_inbound(notification, own_account_id=self._me["id"], local_domain=self.domain)
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
                sink.deliver(inbound, cursor=cursor)
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

    # -- send ---------------------------------------------------------------------

    def send(self, message: Outbound) -> list[str]:
        """Post the reply as a thread of direct statuses; return their ids (see `outbound.py`)."""
        if self._poster is None:
            raise RuntimeError("MastodonChannel.start() was not called")
        return self._poster.send(message)

    def close(self) -> None:
        self._closing.set()
        if self._stream is not None:
            self._stream.close()
        if self._http is not None:
            self._http.close()
