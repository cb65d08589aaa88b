"""Whether a customer's message added to an open incident gets its own "Added to incident #N.".

People write in bursts: a problem, then the log, then "also…", a minute apart; by email each
of those answers would go to everyone copied, too. The first message of a burst is acknowledged
(and that answer says that what follows soon after is added without one); a message that follows
its sender's own previous message on the case within `quiet_for` (DESKBOT_ACK_QUIET_MINUTES,
10 by default) is added silently, and shown in the case topic as always. An answer from the team
in between starts a new burst, and so does a colleague's message (each person's first is
answered), a message that answers one of the bot's questions (a draft sent with `#N`), or one
that came with a command (`reopen N text`).

Pure: no database, no clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

#: Who wrote a case's previous message, as its next message's sender sees it: they did ("sender"),
#: or someone else did (the team, a colleague).
Who = Literal["sender", "other"]


def acknowledge(
    previous: tuple[Who, datetime] | None, now: datetime, quiet_for: timedelta, *, asked: bool = False
) -> bool:
    """Whether to answer a message added to a case at `now`.

    `previous`: who wrote the case's message before it (`Who`), and when (internal notes do
    not count); `quiet_for`: how soon after a sender's previous message their next is part of
    the same burst (zero: none is); `asked`: the message
    answers a question of the bot's, or came with a command, and always gets its answer.
    """
    if asked or previous is None:
        return True
    writer, at = previous
    return writer != "sender" or not timedelta(0) <= now - at < quiet_for
