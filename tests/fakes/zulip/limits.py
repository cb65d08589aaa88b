"""Rate limiting and fault injection for the fake Zulip server."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class RateVerdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # absolute unix time, as X-RateLimit-Reset
    retry_after: float


class RateLimiter:
    """`limit` requests per `window` seconds per user (fixed windows, like Zulip's headers say)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def check(self, user: str) -> RateVerdict:
        now = time.time()
        with self._lock:
            start, count = self._windows.get(user, (now, 0))
            if now >= start + self.window:
                start, count = now, 0
            end = start + self.window
            if count >= self.limit:
                self._windows[user] = (start, count)
                return RateVerdict(False, self.limit, 0, math.ceil(end), max(end - now, 0.001))
            count += 1
            self._windows[user] = (start, count)
            return RateVerdict(True, self.limit, self.limit - count, math.ceil(end), 0.0)


@dataclass
class Fault:
    """One injected failure.

    kind: "status" (answer `status`), "drop" (close the connection without an
    answer), "drop_after" (handle the request, then close without answering:
    the lost acknowledgement), "delay" (sleep `seconds`, then answer normally).
    """

    kind: str
    status: int = 502
    body: str = "html"  # "html" like a proxy, or "json"
    path: str | None = None  # API path prefix, e.g. "/messages"
    method: str | None = None
    remaining: int | None = None  # None: until `until`
    until: float | None = None  # time.monotonic() deadline
    seconds: float = 0.0
    #: Only requests whose `content` holds this text (a message the server keeps refusing).
    containing: str | None = None
    served: int = 0

    def matches(self, method: str, path: str, params: dict[str, Any] | None = None) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.containing is not None and self.containing not in str((params or {}).get("content", "")):
            return False
        if self.path is not None and not path.startswith(self.path):
            return False
        if self.until is not None and time.monotonic() >= self.until:
            return False
        return self.remaining is None or self.remaining > 0


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, params: dict[str, Any] | None = None) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.matches(method, path, params):
                    if f.remaining is not None:
                        f.remaining -= 1
                    f.served += 1
                    return f
            return None
