"""Rate limits and injected faults of the fake server.

Rate limits follow Mastodon: fixed windows aligned on multiples of the period
(Rack::Attack and `RateLimiter` both align), the count includes the request
being answered, and the `X-RateLimit-*` headers describe the API limit except
on `POST /api/v1/statuses`, whose headers describe the statuses family (the
posting budget, 300 per 3 hours by default).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: float  # epoch seconds

    def headers(self) -> dict[str, str]:
        moment = datetime.fromtimestamp(self.reset, UTC)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }


class WindowLimit:
    """`limit` hits per aligned window of `period` seconds, per key."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._counts: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def _window(self, now: float) -> int:
        return int(now // self.period)

    def hit(self, key: str, now: float | None = None) -> Verdict:
        now = time.time() if now is None else now
        window = self._window(now)
        with self._lock:
            self._counts[(key, window)] += 1
            count = self._counts[(key, window)]
        return Verdict(count <= self.limit, self.limit, max(0, self.limit - count), (window + 1) * self.period)

    def peek(self, key: str, now: float | None = None) -> Verdict:
        now = time.time() if now is None else now
        window = self._window(now)
        with self._lock:
            count = self._counts[(key, window)]
        return Verdict(count < self.limit, self.limit, max(0, self.limit - count), (window + 1) * self.period)


@dataclass
class Fault:
    """Answer matching requests with `status` (None: drop the connection).

    Applies to the next `count` matching requests, or to every matching
    request until `until` (epoch seconds). With `after_handling`, the request
    is handled first (a status really gets posted) and only the answer is
    lost, as when a proxy dies on the way back.
    """

    status: int | None = 503
    count: int | None = None
    until: float | None = None
    method: str | None = None
    path_prefix: str | None = None
    after_handling: bool = False
    #: Let this many matching requests through first.
    skip: int = 0
    served: int = field(default=0)

    def matches(self, method: str, path: str, now: float) -> bool:
        if self.method and self.method != method:
            return False
        if self.path_prefix and not path.startswith(self.path_prefix):
            return False
        if self.count is not None and self.served >= self.count:
            return False
        return self.until is None or now < self.until

    @property
    def spent(self) -> bool:
        return (self.count is not None and self.served >= self.count) or (
            self.until is not None and time.time() >= self.until
        )


class FaultPlan:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault that applies to this request, if any (and count it as served)."""
        now = time.time()
        with self._lock:
            self._faults = [f for f in self._faults if not f.spent]
            for fault in self._faults:
                if fault.matches(method, path, now):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.served += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
