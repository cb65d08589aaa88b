"""The Mastodon channel's knobs (`MastodonTuning`): the defaults suit production; tests shorten them."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.backoff import Backoff


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
    #: How long a send waits for media the instance is still processing (then it is tried again
    #: later, uploading nothing again), and how often it looks.
    media_wait: float = 60.0
    media_poll_interval: float = 1.0
