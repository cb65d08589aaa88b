"""The Zulip channel's knobs (`ZulipTuning`): the defaults suit production; tests shorten them."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.backoff import Backoff

from .compose import DEFAULT_MAX_MESSAGE_LENGTH


@dataclass(frozen=True)
class ZulipTuning:
    """The Zulip channel's knobs: the defaults suit production; tests shorten them."""

    #: Seconds for an ordinary request (the zulip client's own default). Zulip answers a post or a
    #: page of messages in well under a second; 15 s leaves ample room for a slow server. A send
    #: does not retry a request that timed out (`transport.retrying`), so a server that hangs
    #: holds the sender for one such timeout, not a minute of retries.
    request_timeout: float = 15.0
    #: One send: a few quick tries, then `TransientSendError` (the dispatcher retries the row later).
    send_retry: Backoff = Backoff(initial=0.5, maximum=8.0, jitter=0.5, attempts=4)
    #: Between reconnection attempts, unbounded. Capped at 5 s: after an outage the bot must notice
    #: the platform is back within seconds (SPEC §7 drills: everything delivered within 10 s of
    #: recovery); one request per 5 s is cheap.
    receive_retry: Backoff = Backoff(initial=1.0, maximum=5.0, jitter=1.0)
    #: The longest a send waits for a rate limit; a longer wait becomes `TransientSendError.retry_after`.
    max_rate_wait: float = 20.0
    #: Seconds to wait for a long-poll answer before calling the server not answering; None: from
    #: Zulip's heartbeat, 60 s (`receive.long_poll_timeout`).
    poll_timeout: float | None = None
    #: Messages a page while catching up.
    catch_up_page: int = 1000
    #: How many of its own newest messages in a conversation the bot searches for an earlier send of a row.
    lookup_depth: int = 100
    #: Until the server says otherwise (`POST /register`).
    max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH
    #: Without a live event queue (another replica receives), how old the support stream's privacy
    #: may be before it is looked up again: case-topic posts never go to a stream made public.
    privacy_max_age: float = 15.0
