"""Whether each channel reaches its platform, told once per outage: for the log, /readyz and /metrics.

A platform that stops answering is retried by its channel with back-off, every few seconds, for as
long as it takes. Logging every retry would bury everything else in the log, so channels report
each failed attempt through `Channel.report_trouble` (which lands in `trouble` here) and log it at
DEBUG only; the runtime says what it sees (`failing` / `reached`: a receiving channel's
`connected`, a send's result) and calls `tick` every second. Then, per channel:

* An outage starts when the channel has been failing for `GRACE_SECONDS` with no success in
  between (a re-registered event queue or one lost request is no outage): one WARNING, with the
  latest reason.
* While it lasts: a WARNING reminder at most once every `REMINDER_SECONDS`.
* When the platform answers again: one INFO line saying how long it was down.

`on_change(channel, up)` is called at each start and end of an outage (the runtime sets
`deskbot_channel_up` with it); `outages()` names the channels that are down, for `/readyz`.

The runtime keeps a second one for the database (`what="the database"`): every loop that meets
the store gone (receiving, sending, the watcher) reports there, not as its channel's outage, so
that a database outage is one warning and a reminder a minute, not a traceback a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger("deskbot.channels")

#: Failing this long without a success is an outage (shorter: a blip, logged at DEBUG only).
GRACE_SECONDS = 5.0
#: While an outage lasts, one reminder per this many seconds at most.
REMINDER_SECONDS = 60.0
#: A reason reported this long before the failing began is stale: it belongs to an earlier blip.
STALE_REASON_SECONDS = 30.0


def seconds_text(seconds: float) -> str:
    """`45s`, `2m 5s`, `3h 20m`: a duration for a log line."""
    total = int(round(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60}s"
    return f"{total // 3600}h {total % 3600 // 60}m"


@dataclass
class _Health:
    #: When the channel began failing (monotonic), None while it is fine.
    failing_since: float | None = None
    #: When the outage was announced, None while there is none.
    down_since: float | None = None
    reminded_at: float = 0.0
    reason: str = ""
    reason_at: float = 0.0


class ChannelHealth:
    def __init__(
        self,
        channels: Iterable[str],
        on_change: Callable[[str, bool], None] | None = None,
        *,
        grace: float = GRACE_SECONDS,
        remind_every: float = REMINDER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        what: str = "the platform",
        field: str = "channel",
    ) -> None:
        self._health = {name: _Health() for name in channels}
        #: What the watched things fail to reach, as the log lines say it, and the log field naming them.
        self._what = what
        self._field = field
        self._on_change = on_change
        self._grace = grace
        self._remind_every = remind_every
        self._clock = clock
        self._lock = threading.Lock()

    def trouble(self, channel: str, reason: str) -> None:
        """A channel's attempt to reach its platform failed because of `reason` (any thread)."""
        log.debug("%s: %s", channel, reason, extra={"channel": channel})
        with self._lock:
            health = self._health[channel]
            health.reason, health.reason_at = " ".join(reason.split())[:300], self._clock()

    def failing(self, channel: str, reason: str | None = None) -> None:
        """The channel is not reaching its platform now (its connection is down, a send failed)."""
        if reason:
            self.trouble(channel, reason)
        with self._lock:
            health = self._health[channel]
            if health.failing_since is None:
                health.failing_since = self._clock()

    def reached(self, channel: str) -> None:
        """The channel reached its platform (it is connected, a send went through)."""
        with self._lock:
            health = self._health[channel]
            down_since = health.down_since
            health.failing_since = health.down_since = None
            if down_since is None:
                return
            lasted = self._clock() - down_since + self._grace
        log.info(
            "%s: reaching %s again after %s down",
            channel,
            self._what,
            seconds_text(lasted),
            extra={self._field: channel, "down_seconds": round(lasted, 1)},
        )
        if self._on_change is not None:
            self._on_change(channel, True)

    def tick(self) -> None:
        """Announce outages that passed the grace period, and remind of those that go on."""
        now = self._clock()
        started: list[tuple[str, str]] = []
        going_on: list[tuple[str, str, float]] = []
        with self._lock:
            for name, health in self._health.items():
                if health.failing_since is None:
                    continue
                if health.down_since is None:
                    if now - health.failing_since >= self._grace:
                        health.down_since = health.reminded_at = now
                        started.append((name, self._reason(health)))
                elif now - health.reminded_at >= self._remind_every:
                    health.reminded_at = now
                    going_on.append((name, self._reason(health), now - health.down_since + self._grace))
        for name, reason in started:
            log.warning(
                "%s: cannot reach %s: %s; retrying with back-off, quietly "
                "(a reminder once a minute while it lasts, one line when it is back)",
                name,
                self._what,
                reason,
                extra={self._field: name},
            )
            if self._on_change is not None:
                self._on_change(name, False)
        for name, reason, lasted in going_on:
            log.warning(
                "%s: still cannot reach %s after %s: %s",
                name,
                self._what,
                seconds_text(lasted),
                reason,
                extra={self._field: name, "down_seconds": round(lasted, 1)},
            )

    def stopped(self, channel: str) -> None:
        """The channel stopped for good (its own line said why): no outage of it is told any more."""
        with self._lock:
            self._health[channel] = _Health()

    def is_down(self, channel: str) -> bool:
        with self._lock:
            return self._health[channel].down_since is not None

    def outages(self) -> dict[str, str]:
        """{channel: "unreachable for 2m 5s: connection refused"} for each channel in an outage."""
        now = self._clock()
        with self._lock:
            return {
                name: f"unreachable for {seconds_text(now - h.down_since + self._grace)}: {self._reason(h)}"
                for name, h in self._health.items()
                if h.down_since is not None
            }

    def _reason(self, health: _Health) -> str:
        fresh = health.reason and (
            health.failing_since is None or health.reason_at >= health.failing_since - STALE_REASON_SECONDS
        )
        return health.reason if fresh else "not connected"
