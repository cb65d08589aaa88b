"""Staying under Mastodon's rate limits instead of running into 429s.

Mastodon reports on every response the limit closest to being hit in
`X-RateLimit-Limit`, `-Remaining` and `-Reset` (ISO 8601, or epoch seconds on
some servers). `POST /api/v1/statuses` reports the posting budget (300
statuses per 3 hours per account); every other route reports the API limit
(300 requests per 5 minutes per token). The pacer keeps one window per
family, reserves a request before it is made (so two threads cannot both take
the last one), and says how long to wait when a window is used up. It also
keeps its own count of statuses posted, in case the server's headers say
nothing.

The headers are read by `adapters.ratelimit`; the reset time is moved to this
machine's clock with the response's `Date` header, as Mastodon.py does, so a
skewed clock neither waits too little nor hours too long.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapters.ratelimit import read_rate_limit

API = "api"
STATUSES = "statuses"
#: While a window's state is unknown, how often to look whether the probe was answered.
PROBE_WAIT = 0.02
#: A probe unanswered for this long is presumed lost.
PROBE_TIMEOUT = 10.0


def family_of(method: str, path: str) -> str:
    return STATUSES if method.upper() == "POST" and path.rstrip("/").endswith("/api/v1/statuses") else API


@dataclass
class _Window:
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # local epoch seconds
    #: When the one request allowed while `remaining` is unknown went out.
    probe_since: float | None = None

    def expire(self, now: float) -> None:
        if self.reset is not None and now >= self.reset:
            self.remaining, self.reset = None, None


class Pacer:
    """Thread-safe. `reserve` requests of each window are left for other clients of the account."""

    def __init__(
        self,
        *,
        reserve: int = 1,
        posting_budget: int = 300,
        posting_window: float = 3 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reserve = reserve
        self._budget = posting_budget
        self._budget_window = posting_window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows = {API: _Window(), STATUSES: _Window()}
        self._posted: deque[float] = deque()

    def acquire(self, family: str) -> float:
        """Reserve one request of `family`: 0.0 if it may go now, else seconds to wait (nothing reserved)."""
        now = self._clock()
        with self._lock:
            families = (API, STATUSES) if family == STATUSES else (API,)
            waits = [self._wait(self._windows[f], now) for f in families]
            if family == STATUSES:
                while self._posted and self._posted[0] <= now - self._budget_window:
                    self._posted.popleft()
                if len(self._posted) >= self._budget:
                    waits.append(self._posted[0] + self._budget_window - now)
            own = self._windows[family]
            if own.remaining is None and own.probe_since is not None and now - own.probe_since < PROBE_TIMEOUT:
                # A new window: until the first answer says how much of it is
                # left, one request at a time, or concurrent requests could
                # spend more than the answer will admit to.
                waits.append(PROBE_WAIT)
            wait = max(waits)
            if wait > 0:
                return wait
            if own.remaining is None:
                own.probe_since = now
            for f in families:
                window = self._windows[f]
                if window.remaining is not None:
                    window.remaining -= 1
            if family == STATUSES:
                self._posted.append(now)
            return 0.0

    def _wait(self, window: _Window, now: float) -> float:
        window.expire(now)
        if window.remaining is None or window.reset is None:
            return 0.0
        if window.remaining > self._reserve:
            return 0.0
        return max(0.0, window.reset - now)

    def observe(self, method: str, path: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response's headers (a `requests` response hook calls this)."""
        family = family_of(method, path)
        now = self._clock()
        seen = read_rate_limit(headers)
        remaining = seen.remaining
        reset_in = seen.reset_in(now)
        reset = now + reset_in if reset_in is not None else None
        if status == 429 and remaining is None:
            remaining = 0
        if remaining is None or reset is None:
            self.abandon(family)
            return
        with self._lock:
            window = self._windows[family]
            window.probe_since = None
            window.limit = seen.limit or window.limit
            same_window = window.reset is not None and abs(window.reset - reset) < 1.5
            # Answers to concurrent requests arrive in any order: within one
            # window the smallest count seen (or reserved) is the true one.
            if same_window and window.remaining is not None:
                window.remaining = min(window.remaining, remaining)
            else:
                window.remaining = remaining
            window.reset = max(reset, window.reset or 0.0) if same_window else reset

    def abandon(self, family: str) -> None:
        """A request of `family` got no usable answer (network error, no headers)."""
        with self._lock:
            self._windows[family].probe_since = None

    def statuses_wait(self, needed: int) -> float:
        """Seconds until `needed` statuses may be posted one after another (0.0: now)."""
        now = self._clock()
        with self._lock:
            while self._posted and self._posted[0] <= now - self._budget_window:
                self._posted.popleft()
            waits = [0.0]
            excess = len(self._posted) + needed - self._budget
            if excess > 0:
                waits.append(self._posted[min(excess, len(self._posted)) - 1] + self._budget_window - now)
            window = self._windows[STATUSES]
            window.expire(now)
            if window.remaining is not None and window.reset is not None and window.remaining - self._reserve < needed:
                waits.append(window.reset - now)
            return max(waits)

    def retry_after(self, family: str) -> float | None:
        """Seconds until the window of `family` resets, if known."""
        with self._lock:
            window = self._windows[family]
            if window.reset is None:
                return None
            return max(0.0, window.reset - self._clock())
