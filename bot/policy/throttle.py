"""Fixed-window allowances: how many answers a stranger, or all strangers together, may get.

Pure: the state is a `Window` the caller stores and passes back in, with the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Window:
    """`used` units spent since `since` (None: nothing spent yet)."""

    since: datetime | None = None
    used: int = 0


@dataclass(frozen=True)
class Allowance:
    """At most `limit` units per `length` of time."""

    limit: int
    length: timedelta

    def take(self, window: Window, now: datetime, units: int = 1) -> tuple[bool, Window]:
        """(whether `units` may be spent now, the window to store). A refusal spends nothing.

        A window starts at the first unit spent after the previous one ended, so a sender
        who waits a full window always gets a fresh allowance. Units larger than the
        whole limit are never allowed.
        """
        if window.since is None or now - window.since >= self.length or now < window.since:
            window = Window(None, 0)
        if window.used + units > self.limit:
            return False, window
        return True, Window(window.since or now, window.used + units)
