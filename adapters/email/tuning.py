"""The email channel's knobs (`EmailTuning`): the defaults suit production; tests shorten them."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.backoff import Backoff


@dataclass(frozen=True)
class EmailTuning:
    """The email channel's knobs: the defaults suit production; tests shorten them."""

    #: Seconds for a connection and each command on it.
    request_timeout: float = 30.0
    #: Between reconnects of the receiving session (unbounded; told once per outage).
    receive_retry: Backoff = Backoff(initial=1.0, maximum=5.0, jitter=1.0)
    #: Seconds an IDLE lasts before a NOOP, a catch-up and a fresh IDLE: well within the 29
    #: minutes servers allow (RFC 2177), and short enough that a connection a NAT box dropped
    #: silently is noticed.
    idle_renew: float = 600.0
    #: How long one wait inside IDLE lasts (how soon `stop` is noticed).
    idle_check: float = 1.0
    #: Messages handed to the sink in one transaction while catching up.
    page_size: int = 50
