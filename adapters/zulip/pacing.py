"""Staying under Zulip's rate limits instead of running into 429s.

Zulip reports on every response what is left of the bot's window in
`X-RateLimit-Limit`, `-Remaining` and `-Reset` (epoch seconds), read by
`adapters.ratelimit`. `RateBudget` keeps the latest word, shared by all of
the channel's clients, and says before each request how long to wait.
"""

from __future__ import annotations

import threading
import time

from adapters.ratelimit import RateLimitHeaders


class RateBudget:
    """What the server's `X-RateLimit-*` headers say is left, shared by all clients.

    Before each request `delay()` says how long to wait: nothing while the
    budget is comfortable, an even spread of the remaining requests over the
    rest of the window once it runs low, and the whole rest of the window
    when nothing is left — so the bot slows down instead of collecting 429s.
    """

    def __init__(self, slow_below: float = 0.2) -> None:
        self.slow_below = slow_below
        self._lock = threading.Lock()
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None  # monotonic
        self._reset_stamp: int | None = None  # the server's absolute value, to order observations

    def observe(self, seen: RateLimitHeaders) -> None:
        """Learn from one response's rate-limit headers (the transport's response hook reads them)."""
        if seen.remaining is None or seen.reset is None:
            return
        remaining, reset = seen.remaining, int(seen.reset)
        # Measured against the server's clock, so a skewed local clock does not matter.
        to_reset = min(max(seen.reset_in(time.time()) or 0.0, 0.0), 3600.0)
        with self._lock:
            if self._reset_stamp is not None and reset < self._reset_stamp:
                return  # a late answer about an older window
            if reset == self._reset_stamp and self._remaining is not None and remaining > self._remaining:
                return  # a long-poll answering late: its count is older than ours
            self._limit, self._remaining, self._reset_stamp = seen.limit or None, remaining, reset
            self._reset_at = time.monotonic() + to_reset

    def delay(self) -> float:
        """Seconds to wait before the next request; counts that request against the budget."""
        with self._lock:
            if self._remaining is None or self._reset_at is None:
                return 0.0
            left = self._reset_at - time.monotonic()
            if left <= 0:
                self._remaining = None
                return 0.0
            if self._remaining <= 0:
                wait = left
            elif self._limit and self._remaining < self._limit * self.slow_below:
                wait = left / (self._remaining + 1)
            else:
                wait = 0.0
            self._remaining -= 1
            return wait

    @property
    def remaining(self) -> int | None:
        return self._remaining
