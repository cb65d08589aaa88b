"""Exponential back-off with jitter, the one rule every adapter waits by between tries (SPEC §7).

Wait n (from 1) is `initial * 2 ** (n - 1)` plus up to `jitter` seconds at
random, never more than `maximum`: a floor that grows, so that a platform that
is down is not hammered, and a spread, so that clients do not come back in
step. `jitter=0` gives plain doubling. The transports hand `tenacity_wait()`
to tenacity; a loop of its own asks `seconds(n)`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import tenacity


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.5
    #: Tries of one operation before it gives up (a loop that never gives up does not read it).
    attempts: int = 4

    def seconds(self, attempt: int) -> float:
        """How long to wait after try `attempt` (1 for the first) failed."""
        try:
            grown = self.initial * 2 ** max(attempt - 1, 0)
        except OverflowError:
            grown = self.maximum
        return min(grown + random.uniform(0, self.jitter), self.maximum)

    def tenacity_wait(self) -> tenacity.wait.wait_base:
        """`seconds` as a tenacity wait strategy."""
        return _Wait(self)


class _Wait(tenacity.wait.wait_base):
    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.backoff.seconds(retry_state.attempt_number)
