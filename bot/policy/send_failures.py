"""Is a failing send an outage of the platform, or one message's own fault? (for bot.dispatcher)

A transient failure usually means the platform is down: the dispatcher stops its batch and retries
later, so that no later message overtakes an earlier one. But a row that fails every time (content a
server answers with a 5xx, a channel bug it trips) heads every batch of its channel; taken for an
outage, it would stop that channel for every customer, for good. These rules tell the two apart from
what the dispatcher sees, per channel:

- The channel is *down* from the moment a batch stops at a failure until a row goes again.
- A row that failed before and fails again may let its batch try the rows of other conversations
  (`may_try_others`): always while the channel is not down; while it is down, once every
  PROBE_EVERY, so that an outage costs one more failing attempt now and then, not one a retry
  (each can take seconds of the channel's own retries).
- A row that keeps failing while rows of its kind go is failing alone (`failed_alone`): after
  LONE_GIVE_UP and LONE_FAILURES of that, it is given up, and its conversation's later rows go on.
  Only a row of its own kind counts: a platform may take direct messages while its stream posts
  fail, and an outage of one endpoint is not one row's fault (the dispatcher checks the kind).

Pure: every time comes from the caller. Counted in memory, per process: a restart begins the
count again, which only delays a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

#: A row failing alone is given up after this long and this many such failures. An hour outlasts
#: greylisting.
LONE_GIVE_UP = timedelta(hours=1)
LONE_FAILURES = 10
#: While a channel is down, how often a retry that fails again may still try other rows.
PROBE_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class GivenUp:
    """A row failing alone for long enough: how many times, since when."""

    failures: int
    since: datetime


@dataclass
class SendFailures:
    """What the rules remember for one process: which channels are down, rows failing alone."""

    probe_every: timedelta = PROBE_EVERY
    give_up_after: timedelta = LONE_GIVE_UP
    give_up_failures: int = LONE_FAILURES
    #: Channels whose latest batch stopped at a failure.
    _down: set[str] = field(default_factory=set, init=False)
    #: When `may_try_others` last let a row try others while its channel was down.
    _probed_at: dict[str, datetime] = field(default_factory=dict, init=False)
    #: Rows failing alone: when first seen, how many times.
    _alone: dict[int, tuple[datetime, int]] = field(default_factory=dict, init=False)

    def stopped(self, channel: str) -> None:
        """A batch of `channel` stopped at a failure."""
        self._down.add(channel)

    def went(self, channel: str) -> None:
        """A row of `channel` was delivered: the platform is up."""
        self._down.discard(channel)

    def done(self, row_id: int) -> None:
        """The row went, or failed for good: nothing more to count for it."""
        self._alone.pop(row_id, None)

    def may_try_others(self, channel: str, now: datetime) -> bool:
        """A row that failed before failed again: may its batch go on with other conversations?"""
        if channel not in self._down:
            return True
        probed = self._probed_at.get(channel)
        if probed is not None and now - probed < self.probe_every:
            return False
        self._probed_at[channel] = now
        return True

    def failed_alone(self, row_id: int, now: datetime) -> GivenUp | None:
        """The row failed again and a row of its kind went since: give it up now?"""
        first, count = self._alone.get(row_id, (now, 0))
        count += 1
        if count < self.give_up_failures or now - first < self.give_up_after:
            self._alone[row_id] = (first, count)
            return None
        self._alone.pop(row_id, None)
        return GivenUp(count, first)
