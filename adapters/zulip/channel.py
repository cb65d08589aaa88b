"""`ZulipChannel`: customers' direct messages and the engineers' case topics on Zulip."""

from __future__ import annotations

import logging
import threading
from typing import ClassVar

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
from adapters.topics import case_topic_name

from .compose import DEFAULT_MAX_MESSAGE_LENGTH, MAX_TOPIC_LENGTH
from .outbound import MessagePoster
from .pacing import RateBudget
from .receive import Receiver
from .startup import check_account, check_support_stream
from .state import ServerState
from .transport import Credentials, RetryPolicy, Transport, ZulipApiError, ZulipUnavailable, load_credentials

log = logging.getLogger("deskbot.adapters.zulip")

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
        self._poster: MessagePoster | None = None

    def __repr__(self) -> str:
        return f"ZulipChannel({self._credentials!r}, stream={self.state.stream_name!r})"

    def case_topic(self, number: int, customer: str, subject: str) -> str:
        """`#N customer: subject` on one line, cut with "…" to Zulip's 60-character limit, without
        the control and format characters Zulip refuses in a topic name (`adapters.topics`)."""
        return case_topic_name(number, customer, subject, MAX_TOPIC_LENGTH)

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
                check_account(transport, self._tx, self._credentials, self.state)
                check_support_stream(transport, self._tx, self.state)
            except ValueError as exc:
                raise PermanentChannelError(str(exc)) from None
            except ZulipUnavailable as exc:
                raise TransientChannelError(f"Zulip at {site} is unreachable: {exc}") from None
            self._poster = self._poster or MessagePoster(
                transport,
                self._tx,
                self.state,
                self._tx_lock,
                retry=self._send_retry,
                lookup_depth=self._lookup_depth,
            )
        self._started = True
        log.info(
            "Zulip channel ready: %s as %s (user %s), stream '%s'",
            site,
            self.state.email,
            self.state.user_id,
            self.state.stream_name,
        )

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
        assert self._poster is not None, "start() builds it"
        return self._poster.send(message)

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
