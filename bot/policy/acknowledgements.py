"""Whether a customer's message added to an open incident gets its own "Added to incident #N.".

People write in bursts: a problem, then the log, then "also…", a minute apart; by email each
of those answers would go to everyone copied, too. The first message of a burst is acknowledged
(and that answer says that what follows soon after is added without one); a message that follows
the customer's own previous message on the case within `quiet_for` (DESKBOT_ACK_QUIET_MINUTES,
10 by default) is added silently, and shown in the case topic as always. An answer from the team in between starts a new burst, as does a
message that answers one of the bot's questions (a draft the customer sent with `#N`).

Pure: no database, no clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

Direction = Literal["in", "out"]


def acknowledge(
    previous: tuple[Direction, datetime] | None, now: datetime, quiet_for: timedelta, *, asked: bool = False
) -> bool:
    """Whether to answer a message added to a case at `now`.

    `previous`: the case's message before it, the customer's ("in") or the team's ("out"), and
    when it was written (internal notes do not count); `quiet_for`: how soon after the customer's
    previous message another is part of the same burst (zero: none is); `asked`: the message
    answers a question of the bot's, or came with a command, and always gets its answer.
    """
    if asked or previous is None:
        return True
    direction, at = previous
    return direction != "in" or not timedelta(0) <= now - at < quiet_for
