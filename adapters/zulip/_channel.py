"""`ZulipChannel`: customers' direct messages and the engineers' case topics on Zulip."""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import zulip

from adapters.channel import (
    Channel,
    InboundSink,
    Outbound,
    PermanentChannelError,
    PermanentSendError,
    TransientChannelError,
    TransientSendError,
)

from ._intake import Receiver
from ._relay import DEFAULT_MAX_MESSAGE_LENGTH, clip_topic, compose, find_reference, safe_reference
from ._state import ServerState
from ._transport import (
    Credentials,
    RateBudget,
    RetryPolicy,
    Transport,
    ZulipApiError,
    ZulipRateLimited,
    ZulipUnavailable,
    load_credentials,
)

log = logging.getLogger("deskbot.zulip")

#: `"direct"` as a send type needs Zulip 7.0 (feature level 174); older servers say "private".
DIRECT_FEATURE_LEVEL = 174
#: One send: a few quick tries, then the dispatcher retries the row later.
SEND_RETRY = RetryPolicy()
#: Reconnecting after an outage: unbounded, backing off to a minute.
# Capped at 5 s: after an outage the bot must notice the platform is back within seconds
# (SPEC §7 drills: everything delivered within 10 s of recovery); one request per 5 s is cheap.
RECEIVE_RETRY = RetryPolicy(initial=1.0, maximum=5.0, jitter=1.0)


class ZulipChannel(Channel):
    """The Zulip channel (SPEC §4, issue 3).

    Give either `api_key` (with `site` and `email`) or `config_file` (a
    zuliprc; explicit values override it). `stream` is the private stream
    that carries the case topics. The remaining parameters are tuning knobs
    whose defaults suit production; tests shorten them.

    * `request_timeout`: seconds for an ordinary request.
    * `poll_timeout`: seconds to wait for a long-poll answer; by default the
      server's `event_queue_longpoll_timeout_seconds` plus 10.
    * `send_retry`: attempts and back-off for one `send` before it raises
      `TransientSendError` (the dispatcher then retries the row later).
    * `receive_retry`: back-off between reconnection attempts (unbounded).
    * `lookup_depth`: how many of its own recent messages in a conversation
      the bot searches for an earlier send of a row (`attempt > 1`).
    """

    name: ClassVar[str] = "zulip"
    carries_case_topics: ClassVar[bool] = True
    #: Zulip's default `api_by_user` limit: 200 requests a minute; a message of up to
    #: max_message_length (10,000) characters is one request.
    posting_budget: ClassVar[tuple[int, float] | None] = (200, 60.0)
    post_size: ClassVar[int | None] = 10_000

    def __init__(
        self,
        *,
        site: str | None = None,
        email: str | None = None,
        api_key: str | None = None,
        config_file: str | None = None,
        stream: str = "support",
        request_timeout: float = 15.0,
        poll_timeout: float | None = None,
        send_retry: RetryPolicy = SEND_RETRY,
        receive_retry: RetryPolicy = RECEIVE_RETRY,
        lookup_depth: int = 100,
        catch_up_page: int = 1000,
        max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH,
    ) -> None:
        try:
            self._credentials: Credentials | None = load_credentials(site, email, api_key, config_file)
            self._config_error: str | None = None
        except ValueError as exc:
            self._credentials, self._config_error = None, str(exc)
        self.state = ServerState(stream_name=stream, max_message_length=max_message_length)
        self._budget = RateBudget()
        self._request_timeout = request_timeout
        self._poll_timeout = poll_timeout
        self._send_retry = send_retry
        self._receive_retry = receive_retry
        self._lookup_depth = lookup_depth
        self._catch_up_page = catch_up_page
        self._transport: Transport | None = None
        self._tx: zulip.Client | None = None
        self._tx_lock = threading.Lock()
        self._started = False
        self._receiver: Receiver | None = None

    def __repr__(self) -> str:
        return f"ZulipChannel({self._credentials!r}, stream={self.state.stream_name!r})"

    # -- start-up ---------------------------------------------------------------------
    def start(self) -> None:
        """Check credentials and the support stream; one clear line on failure."""
        if self._config_error is not None:
            raise PermanentChannelError(self._config_error)
        assert self._credentials is not None
        site = self._credentials.site
        with self._tx_lock:
            transport = self._transport or Transport(
                self._credentials,
                request_timeout=self._request_timeout,
                budget=self._budget,
                on_rate_wait=self.report_rate_limit_wait,
            )
            self._transport = transport
            try:
                self._tx = self._tx or transport.new_client()
                self._check_account(transport, self._tx)
                self._check_stream(transport, self._tx)
            except ValueError as exc:
                raise PermanentChannelError(str(exc)) from None
            except ZulipUnavailable as exc:
                raise TransientChannelError(f"Zulip at {site} is unreachable: {exc}") from None
        self._started = True
        log.info(
            "Zulip channel ready: %s as %s (user %s), stream '%s'",
            site,
            self.state.email,
            self.state.user_id,
            self.state.stream_name,
        )

    def _check_account(self, transport: Transport, client: zulip.Client) -> None:
        assert self._credentials is not None
        try:
            me = transport.call(client, "GET", "users/me")
        except ZulipApiError as exc:
            if exc.code in ("INVALID_API_KEY", "UNAUTHORIZED", "USER_DEACTIVATED"):
                raise PermanentChannelError(
                    f"Zulip rejected the API key for {self._credentials.email} at {self._credentials.site} ({exc.code})"
                ) from None
            raise PermanentChannelError(f"Zulip refused GET /users/me: {exc}") from None
        self.state.user_id = int(me["user_id"])
        self.state.email = str(me.get("email", self._credentials.email))
        self.state.full_name = str(me.get("full_name", ""))
        self.state.feature_level = int(getattr(client, "feature_level", 0) or 0)

    def _check_stream(self, transport: Transport, client: zulip.Client) -> None:
        name = self.state.stream_name
        try:
            found = transport.call(client, "GET", "get_stream_id", {"stream": name})
        except ZulipApiError:
            raise PermanentChannelError(
                f"support stream '{name}' does not exist or the bot is not subscribed to it"
            ) from None
        self.state.stream_id = int(found["stream_id"])
        try:
            subs = transport.call(client, "GET", "users/me/subscriptions")
        except ZulipApiError as exc:
            raise PermanentChannelError(f"Zulip refused GET /users/me/subscriptions: {exc}") from None
        mine = next((s for s in subs.get("subscriptions", []) if s.get("stream_id") == self.state.stream_id), None)
        if mine is None:
            raise PermanentChannelError(f"the bot is not subscribed to support stream '{name}'")
        self.state.subscribed = True
        self.state.invite_only = bool(mine.get("invite_only", False))
        self.state.is_web_public = bool(mine.get("is_web_public", False))
        problem = self.state.privacy_problem()
        if problem:
            raise PermanentChannelError(f"refusing to start: {problem}; it must be invite-only and not web-public")

    # -- receiving --------------------------------------------------------------------
    def receive(self, sink: InboundSink, stop: threading.Event) -> None:
        if not self._started:
            self.start()
        assert self._transport is not None
        receiver = Receiver(
            self._transport,
            self.state,
            sink,
            stop,
            policy=self._receive_retry,
            page_size=self._catch_up_page,
            poll_timeout=self._poll_timeout,
            on_trouble=self.report_trouble,
        )
        self._receiver = receiver
        try:
            receiver.run()
        except ValueError as exc:  # the client could not be built: configuration
            raise PermanentChannelError(str(exc)) from None
        except ZulipApiError as exc:
            raise TransientChannelError(f"Zulip refused a request while receiving: {exc}") from None
        finally:
            receiver.close()
            self._receiver = None

    @property
    def connected(self) -> bool:
        return self._receiver is not None and self._receiver.connected

    # -- sending ----------------------------------------------------------------------
    def send(self, message: Outbound) -> list[str]:
        """Post one outbox row (several messages if it is long); return their ids."""
        if not self._started:
            # The runtime dispatches even when start() failed for a transient reason.
            try:
                self.start()
            except TransientChannelError as exc:
                raise TransientSendError(str(exc)) from None
            except PermanentChannelError as exc:
                raise PermanentSendError(str(exc)) from None
        target = self._target(message)
        parts = compose(message.text, message.quote, message.reference, self.state.max_message_length)
        with self._tx_lock:
            client, transport = self._send_client()
            already: dict[int, int] = {}
            if message.attempt > 1:
                already = self._find_earlier_send(transport, client, message, len(parts))
                if already:
                    log.info(
                        "outbox row %s: found %d part(s) already on Zulip; not sending them again",
                        message.outbox_id,
                        len(already),
                    )
            ids = []
            for number, content in enumerate(parts, 1):
                if number in already:
                    ids.append(already[number])
                    continue
                ids.append(self._post(transport, client, message, target, content, number, len(parts)))
        return [str(i) for i in ids]

    def _target(self, message: Outbound) -> dict[str, Any]:
        if message.kind == "direct":
            if not message.recipient:
                raise PermanentSendError(f"outbox row {message.outbox_id}: a direct message needs a recipient")
            kind = "direct" if self.state.feature_level >= DIRECT_FEATURE_LEVEL else "private"
            return {"type": kind, "to": [message.recipient]}
        if message.kind == "topic":
            if not message.topic:
                raise PermanentSendError(f"outbox row {message.outbox_id}: a topic message needs a topic")
            problem = self.state.privacy_problem()
            if problem:
                raise PermanentSendError(f"not mirroring into Zulip: {problem}")
            if self.state.stream_id is None:
                raise PermanentSendError("support stream unknown: the Zulip channel was not started")
            return {"type": "stream", "to": self.state.stream_id, "topic": clip_topic(message.topic)}
        raise PermanentSendError(f"the Zulip channel cannot send {message.kind!r} messages")

    def _send_client(self) -> tuple[zulip.Client, Transport]:
        assert self._transport is not None and self._tx is not None, "start() builds them"
        return self._tx, self._transport

    def _post(
        self,
        transport: Transport,
        client: zulip.Client,
        message: Outbound,
        target: dict[str, Any],
        content: str,
        number: int,
        total: int,
    ) -> int:
        """POST one part with bounded retries; before retrying after an ambiguous failure, look first.

        The first look follows the failure at once: it sends nothing, and a lost answer
        (the post went through) then costs a round trip, not a back-off (0.5-1 s).
        """
        ambiguous = False
        looked = False

        def sleep(seconds: float) -> None:
            nonlocal looked
            if ambiguous and not looked:
                looked = True
                return
            transport.sleep(seconds)

        try:
            for attempt in self._send_retry.retrying(sleep, on_rate_wait=transport.note_rate_wait):
                with attempt:
                    if ambiguous:
                        found = self._find_earlier_send(transport, client, message, total).get(number)
                        if found is not None:
                            return found
                    try:
                        res = transport.call(
                            client,
                            "POST",
                            "messages",
                            {**target, "content": content},
                            max_pause=self._send_retry.max_rate_wait,
                        )
                    except ZulipUnavailable as exc:
                        ambiguous = ambiguous or exc.maybe_processed
                        raise
                    return int(res["id"])
        except ZulipRateLimited as exc:
            raise TransientSendError(f"Zulip rate limit: {exc}", retry_after=exc.retry_after) from None
        except ZulipUnavailable as exc:
            raise TransientSendError(f"Zulip send failed after retries: {exc}") from None
        except ZulipApiError as exc:
            raise PermanentSendError(f"Zulip refused the message: {exc.code}: {exc.msg}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _find_earlier_send(
        self, transport: Transport, client: zulip.Client, message: Outbound, total: int
    ) -> dict[int, int]:
        """{part number: message id} of this row's parts the bot already posted (NOTES §3)."""
        ref = safe_reference(message.reference)
        if message.kind == "direct":
            narrow = [{"operator": "dm", "operand": message.recipient}]
        else:
            narrow = [
                {"operator": "stream", "operand": self.state.stream_id},
                {"operator": "topic", "operand": clip_topic(message.topic or "")},
            ]
        narrow.append({"operator": "sender", "operand": self.state.user_id})
        request = {
            "anchor": "newest",
            "num_before": self._lookup_depth,
            "num_after": 0,
            "narrow": narrow,
            "apply_markdown": False,
        }
        try:
            res = None
            for attempt in self._send_retry.retrying(transport.sleep, on_rate_wait=transport.note_rate_wait):
                with attempt:
                    res = transport.call(client, "GET", "messages", request, max_pause=self._send_retry.max_rate_wait)
        except ZulipRateLimited as exc:
            raise TransientSendError(
                f"Zulip rate limit while checking for an earlier send: {exc}", retry_after=exc.retry_after
            ) from None
        except ZulipUnavailable as exc:
            # Sending blind could double the message: try the whole row later instead.
            raise TransientSendError(f"cannot check for an earlier send: {exc}") from None
        except ZulipApiError as exc:
            raise PermanentSendError(f"Zulip refused the earlier-send lookup: {exc.code}: {exc.msg}") from None
        found: dict[int, int] = {}
        for m in (res or {}).get("messages", []):
            hit = find_reference(str(m.get("content", "")))
            if hit is not None and hit[0] == ref and hit[1] <= total:
                found.setdefault(hit[1], int(m["id"]))
        return found

    # -- shutdown --------------------------------------------------------------------------
    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        receiver = self._receiver
        if receiver is not None:
            receiver.close()
        with self._tx_lock:
            if self._tx is not None and self._tx.session is not None:
                self._tx.session.close()
