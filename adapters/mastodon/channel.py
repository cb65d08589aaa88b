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
handling, never backwards.

Sending: one `direct` status per part of the reply, each starting with the
customer's mention and replying to the previous part, each with the
Idempotency-Key `deskbot-<outbox id>-<part>`: a retry after a crash gets the
statuses posted the first time instead of posting them again (Mastodon keeps
keys for one hour).

Errors and limits: requests are paced by the `X-RateLimit-*` headers and the
posting budget (`pacing.py`); 5xx answers and network errors are retried with
jittered exponential back-off (tenacity), a bounded number of times;
anything else the server refuses is reported, not retried.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
import requests
from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from adapters.channel import (
    Channel,
    InboundSink,
    Outbound,
    PermanentChannelError,
    PermanentSendError,
    TransientChannelError,
    TransientSendError,
)

from .compose import ReplyTooLong, mention_for, thread_parts
from .inbound import notification_to_inbound
from .pacing import API, STATUSES, Pacer
from .stream import Closed, Event, Opened, SSEConnection

log = logging.getLogger("deskbot.adapters.mastodon")

CURSOR_KEY = "mastodon:notification_min_id"
PAGE_SIZE = 80
#: Policy fields that, set to "filter" or "drop", keep strangers' DMs from the bot.
STRANGER_FILTERS = ("for_private_mentions", "for_not_following", "for_not_followers", "for_new_accounts")
T = TypeVar("T")


class _RateLimited(MastodonRatelimitError):
    """A rate limit the pacer will not wait out here; `wait` is the seconds left."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.0f}s")
        self.wait = wait


def _id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are opaque strings ordered by (length, value)."""
    return len(value), value


def _plain(entity: Any) -> dict[str, Any]:
    """A Mastodon.py entity as the JSON the server sent (ids as strings)."""
    return json.loads(entity.to_json(pretty=False))["_mastopy_data"]


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _describe(error: BaseException) -> str:
    """One line for a Mastodon.py error: status and the server's message."""
    args = getattr(error, "args", ())
    if isinstance(error, MastodonAPIError) and len(args) >= 4:
        return f"HTTP {args[1]}: {args[3] or args[2]}"
    text = " ".join(str(error).split())
    for needle, short in (
        ("refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "host not found"),
        ("nodename nor servname", "host not found"),
        ("RemoteDisconnected", "connection closed by the server"),
        ("Connection aborted", "connection closed by the server"),
    ):
        if needle in text:
            return short
    return text[:200]


class MastodonChannel(Channel):
    """Customers' direct messages on one Mastodon account."""

    name: ClassVar[str] = "mastodon"

    def __init__(
        self,
        api_base_url: str,
        access_token: str,
        *,
        user_agent: str = "deskbot (support desk bot)",
        request_timeout: float = 30.0,
        streaming: bool = True,
        poll_interval: float = 30.0,
        heartbeat_timeout: float = 45.0,
        reconnect_min: float = 1.0,
        reconnect_max: float = 60.0,
        send_attempts: int = 4,
        retry_min: float = 0.5,
        retry_max: float = 8.0,
        max_wait: float = 15.0,
        ratelimit_reserve: int = 1,
        posting_budget: int = 300,
        posting_window: float = 3 * 3600.0,
        accept_strangers: bool = True,
    ) -> None:
        """`max_wait`: the longest a call blocks for a rate limit before giving up
        (send: TransientSendError with `retry_after`). `accept_strangers`: change
        the notification policy so DMs from accounts the bot does not follow arrive."""
        if not api_base_url or not access_token:
            raise PermanentChannelError("Mastodon needs both an API base URL and an access token")
        self._base_url = api_base_url.rstrip("/")
        self._token = access_token
        self._user_agent = user_agent
        self._request_timeout = request_timeout
        self._streaming = streaming
        self._poll_interval = poll_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._reconnect = (reconnect_min, reconnect_max)
        self._send_attempts = send_attempts
        self._retry = (retry_min, retry_max)
        self._max_wait = max_wait
        self._accept_strangers = accept_strangers
        self._pacer = Pacer(reserve=ratelimit_reserve, posting_budget=posting_budget, posting_window=posting_window)
        self._closing = threading.Event()
        self._api_recv: Mastodon | None = None
        self._api_send: Mastodon | None = None
        self._http: httpx.Client | None = None
        self._stream: SSEConnection | None = None
        self._me: dict[str, str] = {}
        self._accepted_senders: list[str] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._cursor: str | None = None
        self._stream_open = False
        self._last_poll_ok = 0.0
        self.domain = ""
        self.max_characters = 500
        self.streaming_url = ""
        self.requests_made = 0

    def __repr__(self) -> str:  # never show the token
        return f"MastodonChannel({self._base_url!r})"

    # -- start ----------------------------------------------------------------

    def start(self) -> None:
        """Check the token, read the instance's limits, make sure strangers' DMs arrive."""
        self._api_recv = self._client()
        self._api_send = self._client()
        try:
            me = self._paced(API, self._api_recv.account_verify_credentials, self._closing)
        except MastodonUnauthorizedError as error:
            raise PermanentChannelError(
                f"Mastodon at {self._base_url} rejected the access token ({_describe(error)}): check MASTODON_ACCESS_TOKEN"
            ) from None
        except (MastodonNetworkError, MastodonServerError, MastodonRatelimitError) as error:
            raise TransientChannelError(f"cannot reach Mastodon at {self._base_url}: {_describe(error)}") from None
        except MastodonError as error:
            raise PermanentChannelError(f"Mastodon at {self._base_url} refused the bot: {_describe(error)}") from None
        self._me = {"id": str(me["id"]), "acct": str(me["acct"]), "url": str(me.get("url") or "")}
        self._read_instance()
        self._http = httpx.Client(headers={"User-Agent": self._user_agent})
        self._apply_policy()
        log.info(
            "mastodon: signed in as @%s@%s, max_characters=%d",
            self._me["acct"],
            self.domain,
            self.max_characters,
        )

    def _client(self) -> Mastodon:
        session = requests.Session()
        session.hooks["response"].append(self._observe)
        return Mastodon(
            access_token=self._token,
            api_base_url=self._base_url,
            version_check_mode="none",
            ratelimit_method="throw",
            request_timeout=self._request_timeout,
            user_agent=self._user_agent,
            session=session,
        )

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests_made += 1
        request = response.request
        self._pacer.observe(
            request.method or "GET", urlsplit(request.url or "").path, response.status_code, response.headers
        )

    def _read_instance(self) -> None:
        assert self._api_recv is not None
        v2: dict[str, Any] = {}
        v1: dict[str, Any] = {}
        try:
            v2 = dict(self._paced(API, self._api_recv.instance_v2, self._closing))
        except MastodonError as error:
            log.info("mastodon: no v2 instance information (%s), trying v1", _describe(error))
        max_characters = _dig(v2, "configuration", "statuses", "max_characters")
        domain = _dig(v2, "domain")
        streaming = _dig(v2, "configuration", "urls", "streaming")
        if max_characters is None or not domain:
            try:
                v1 = dict(self._paced(API, self._api_recv.instance_v1, self._closing))
            except MastodonError as error:
                log.info("mastodon: no v1 instance information either (%s)", _describe(error))
            max_characters = max_characters or _dig(v1, "configuration", "statuses", "max_characters")
            domain = domain or _dig(v1, "uri")
            streaming = streaming or _dig(v1, "urls", "streaming_api")
        self.max_characters = int(max_characters or 500)
        self.domain = str(domain or urlsplit(self._base_url).netloc).lower()
        base = self._base_url
        if streaming:
            parts = urlsplit(str(streaming))
            scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
            if scheme in ("http", "https") and parts.netloc:
                base = f"{scheme}://{parts.netloc}"
        self.streaming_url = base + "/api/v1/streaming/user/notification"

    def _apply_policy(self) -> None:
        assert self._api_recv is not None
        api = self._api_recv
        try:
            policy = dict(self._paced(API, api.notifications_policy, self._closing))
        except MastodonNotFoundError:
            log.info("mastodon: the server has no notification policy (Mastodon < 4.3); nothing to change")
            return
        except MastodonError as error:
            raise self._start_error("read the notification policy", error) from None
        changes = {f: "accept" for f in STRANGER_FILTERS if policy.get(f) not in (None, "accept")}
        if changes and not self._accept_strangers:
            log.warning(
                "mastodon: the notification policy filters DMs from strangers (%s); new customers' DMs will not arrive",
                ", ".join(f"{f}={policy[f]}" for f in changes),
            )
        elif changes:
            try:
                self._paced(API, lambda: api.update_notifications_policy(**changes), self._closing)
            except MastodonError as error:
                raise self._start_error("change the notification policy", error) from None
            log.warning(
                "mastodon: notification policy changed so that DMs from strangers arrive: %s",
                ", ".join(f"{f} {policy[f]} -> accept" for f in changes),
            )
        pending = _dig(policy, "summary", "pending_requests_count") or 0
        if pending and self._accept_strangers:
            self._accept_requests()

    def _accept_requests(self) -> None:
        """Accept filtered notification requests; their DMs are fetched by `receive`."""
        assert self._api_recv is not None
        api = self._api_recv
        try:
            page = self._paced(API, lambda: api.notification_requests(limit=40), self._closing)
            while page:
                for request in page:
                    self._paced(API, partial(api.accept_notification_request, request["id"]), self._closing)
                    self._accepted_senders.append(str(request["account"]["id"]))
                page = self._paced(API, partial(api.fetch_next, page), self._closing)
        except MastodonError as error:
            raise self._start_error("accept pending notification requests", error) from None
        if self._accepted_senders:
            log.warning(
                "mastodon: accepted %d pending notification request(s) from accounts the policy had filtered",
                len(self._accepted_senders),
            )

    def _start_error(self, action: str, error: MastodonError) -> Exception:
        if isinstance(error, (MastodonNetworkError, MastodonServerError, MastodonRatelimitError)):
            return TransientChannelError(f"cannot {action} on Mastodon at {self._base_url}: {_describe(error)}")
        return PermanentChannelError(
            f"cannot {action} on Mastodon at {self._base_url} ({_describe(error)}): "
            "the token needs the read:notifications and write:notifications scopes"
        )

    # -- receive ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._stream_open or time.monotonic() - self._last_poll_ok < 2 * self._poll_interval + 5

    def receive(self, sink: InboundSink, stop: threading.Event) -> None:
        """Hand every DM (and public mention) to `sink` until `stop` is set.

        Exceptions raised by the sink propagate; the cursor has not moved past
        the message, so calling `receive` again delivers it again.
        """
        if self._api_recv is None:
            raise RuntimeError("MastodonChannel.start() was not called")
        self._cursor = sink.get_cursor(CURSOR_KEY)
        self._fetch_accepted(sink, stop)
        delay = self._reconnect[0]
        while not stop.is_set() and not self._closing.is_set():
            if self._streaming:
                if self._run_stream(sink, stop):
                    delay = self._reconnect[0]  # it was up: reconnect soon
            # The stream is down (or off): poll until it is time to reconnect.
            deadline = time.monotonic() + (delay if self._streaming else self._poll_interval)
            while not stop.is_set() and not self._closing.is_set():
                if time.monotonic() - self._last_poll_ok >= self._poll_interval or not self._streaming:
                    self._poll(sink, stop)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                stop.wait(min(remaining, self._poll_interval))
            delay = min(delay * 2, self._reconnect[1])

    def _run_stream(self, sink: InboundSink, stop: threading.Event) -> bool:
        """One streaming connection, from connect to close. True if it opened."""
        assert self._http is not None
        connection = SSEConnection(
            self._http,
            self.streaming_url,
            {"Authorization": f"Bearer {self._token}"},
            heartbeat_timeout=self._heartbeat_timeout,
            connect_timeout=self._request_timeout,
        ).start()
        self._stream = connection
        opened = False
        try:
            while not stop.is_set() and not self._closing.is_set():
                try:
                    item = connection.items.get(timeout=0.2)
                except Exception:  # queue.Empty
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
                    log.warning("mastodon: stream %s: %s", "lost" if opened else "refused", item.reason)
                    return opened
            return opened
        finally:
            self._stream_open = False
            connection.close()
            self._stream = None

    def _poll(self, sink: InboundSink, stop: threading.Event) -> None:
        """Catch up from the cursor, oldest first, until a page comes back short."""
        assert self._api_recv is not None
        api = self._api_recv
        try:
            while not stop.is_set():
                cursor = self._cursor or "0"
                page = self._request(
                    API, partial(api.notifications, types=["mention"], min_id=cursor, limit=PAGE_SIZE), stop=stop
                )
                for notification in sorted((_plain(n) for n in page), key=lambda n: _id_key(str(n["id"]))):
                    self._handle(notification, sink)
                if len(page) < PAGE_SIZE:
                    break
            self._last_poll_ok = time.monotonic()
        except MastodonUnauthorizedError as error:
            raise PermanentChannelError(f"Mastodon rejected the access token ({_describe(error)})") from None
        except MastodonError as error:
            log.warning("mastodon: polling notifications failed, will retry: %s", _describe(error))

    def _fetch_accepted(self, sink: InboundSink, stop: threading.Event) -> None:
        """DMs of notification requests accepted at start: older than the cursor, so fetched by sender."""
        assert self._api_recv is not None
        api = self._api_recv
        if not self._accepted_senders:
            return
        for _ in range(20):  # Mastodon merges accepted requests in a background job
            try:
                if self._paced(API, api.notifications_merged, stop):
                    break
            except MastodonError:
                break
            stop.wait(0.5)
        for sender in self._accepted_senders:
            min_id = "0"
            try:
                while not stop.is_set():
                    page = self._request(
                        API,
                        partial(
                            api.notifications, types=["mention"], account_id=sender, min_id=min_id, limit=PAGE_SIZE
                        ),
                        stop=stop,
                    )
                    items = sorted((_plain(n) for n in page), key=lambda n: _id_key(str(n["id"])))
                    for notification in items:
                        self._handle(notification, sink, replay=True)
                    if len(page) < PAGE_SIZE:
                        break
                    min_id = str(items[-1]["id"])
            except MastodonError as error:
                log.warning("mastodon: fetching accepted requests' DMs failed: %s", _describe(error))
        self._accepted_senders = []

    def _handle(self, notification: dict[str, Any], sink: InboundSink, *, replay: bool = False) -> None:
        """One notification: deliver it, or just move the cursor past it."""
        notification_id = str(notification["id"])
        newer = self._cursor is None or _id_key(notification_id) > _id_key(self._cursor)
        if not newer and not replay:
            return  # handled before: stream and catch-up overlap
        cursor = (CURSOR_KEY, notification_id) if newer else None
        status = notification.get("status") or {}
        author_id = str(_dig(status, "account", "id") or _dig(notification, "account", "id") or "")
        status_id = str(status.get("id") or "")
        if (
            notification.get("type") != "mention"
            or not status_id
            or author_id == self._me["id"]
            or status_id in self._seen
        ):
            if cursor:
                sink.set_cursor(*cursor)
        else:
            inbound = notification_to_inbound(notification, own_account_id=self._me["id"], local_domain=self.domain)
            sink.deliver(inbound, cursor=cursor)
            self._remember(status_id)
        if newer:
            self._cursor = notification_id

    def _remember(self, status_id: str) -> None:
        self._seen[status_id] = None
        while len(self._seen) > 10_000:
            self._seen.popitem(last=False)

    # -- send ---------------------------------------------------------------------

    def send(self, message: Outbound) -> list[str]:
        """Post the reply as a thread of direct statuses; return their ids."""
        if self._api_send is None:
            raise RuntimeError("MastodonChannel.start() was not called")
        if message.kind != "direct":
            raise PermanentSendError(
                f"the mastodon channel cannot send {message.kind!r} messages, only 'direct' (outbox {message.outbox_id})"
            )
        if not message.recipient:
            raise PermanentSendError(f"outbox {message.outbox_id} has no recipient")
        body = message.text if not message.quote else f"{message.text}\n\n{message.quote}"
        try:
            parts = thread_parts(mention_for(message.recipient, self.domain), body, self.max_characters)
        except ReplyTooLong as error:
            raise PermanentSendError(f"outbox {message.outbox_id}: {error}") from None
        ids: list[str] = []
        reply_to = message.conversation
        for number, part in enumerate(parts, 1):
            key = f"deskbot-{message.outbox_id}-{number}"
            status_id = self._post(part, reply_to, key, first=number == 1)
            ids.append(status_id)
            reply_to = status_id
        return ids

    def _post(self, text: str, reply_to: str | None, key: str, *, first: bool) -> str:
        assert self._api_send is not None
        api = self._api_send

        def post(in_reply_to: str | None) -> Callable[[], Any]:
            return lambda: api.status_post(text, in_reply_to_id=in_reply_to, visibility="direct", idempotency_key=key)

        try:
            try:
                status = self._request(STATUSES, post(reply_to), stop=self._closing, attempts=self._send_attempts)
            except MastodonNotFoundError:
                if not (first and reply_to):
                    raise
                # The customer deleted the status we answer: answer outside the thread.
                log.warning("mastodon: status %s is gone; replying without in_reply_to", reply_to)
                status = self._request(STATUSES, post(None), stop=self._closing, attempts=self._send_attempts)
        except _RateLimited as error:
            raise TransientSendError(
                f"Mastodon rate limit: retry in {error.wait:.0f}s", retry_after=error.wait
            ) from None
        except (MastodonNetworkError, MastodonServerError) as error:
            raise TransientSendError(f"Mastodon did not take the status: {_describe(error)}") from None
        except MastodonError as error:
            raise PermanentSendError(f"Mastodon refused the status: {_describe(error)}") from None
        return str(status["id"])

    # -- requests: pacing and retries ----------------------------------------------

    def _request(self, family: str, call: Callable[[], T], *, stop: threading.Event, attempts: int = 3) -> T:
        """Make one API call within the rate limits, retrying transient failures."""

        def retryable(error: BaseException) -> bool:
            if isinstance(error, _RateLimited):
                return error.wait <= self._max_wait
            return isinstance(error, (MastodonNetworkError, MastodonServerError))

        def log_retry(state: Any) -> None:
            log.info("mastodon: %s; retry %d", _describe(state.outcome.exception()), state.attempt_number)

        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_random_exponential(multiplier=self._retry[0], max=self._retry[1]),
            retry=retry_if_exception(retryable),
            sleep=lambda seconds: stop.wait(seconds),
            before_sleep=log_retry,
            reraise=True,
        )
        return retrying(self._paced, family, call, stop)

    def _paced(self, family: str, call: Callable[[], T], stop: threading.Event) -> T:
        while True:
            wait = self._pacer.acquire(family)
            if wait <= 0:
                break
            if wait > self._max_wait:
                raise _RateLimited(wait)
            if stop.wait(wait):
                raise _RateLimited(wait)
        try:
            return call()
        except MastodonRatelimitError:
            raise _RateLimited(self._pacer.retry_after(family) or self._retry[1]) from None

    def close(self) -> None:
        self._closing.set()
        if self._stream is not None:
            self._stream.close()
        if self._http is not None:
            self._http.close()
