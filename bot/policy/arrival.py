"""When a customer's message arrived, as far as the platform's word for it can be trusted.

A customer who wrote on Friday while the bot was down is owed what Friday gave them: a pack
still valid that day, and a response clock running from Friday, not from the Monday the bot
caught up (SPEC §1: the target applies from when a case opens, and each time the customer
writes). The channels say when a message arrived (`Inbound.received_at`: Zulip's server
timestamp, the mailbox's INTERNALDATE, a Mastodon status's created_at), but not every such time
is the desk's own platform's: a status's time is set by the server it was posted on, which
anyone may run, and a mail the server gave no arrival time carries the sender's own Date header
(adapters.email.inbound). So the time is believed only within bounds.

Pure: the caller passes the time it handles the message at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["ARRIVAL_TRUSTED_FOR", "arrival"]

#: How long before it is handled a message's own time is believed. Long enough for what an outage
#: lasts before someone mends it (a weekend with a holiday beside it, a channel's credentials
#: expired over a holiday week): the platform kept those messages, and their times are its own.
#: Short enough that a time the sender sets (a remote Mastodon server's, a mail's Date header)
#: gains little: a pack that lapsed within the week, a due time at most a week early (due at once).
ARRIVAL_TRUSTED_FOR = timedelta(days=7)


def arrival(received_at: datetime, now: datetime) -> datetime:
    """When a message the platform says arrived at `received_at`, handled at `now`, is taken to
    have arrived: `received_at`, but never after `now` (a sender's clock ahead of ours) and never
    more than `ARRIVAL_TRUSTED_FOR` before it. Both times are aware."""
    earliest = now.astimezone(UTC) - ARRIVAL_TRUSTED_FOR  # elapsed time, whatever zone `now` is in
    return min(max(received_at, earliest), now)
