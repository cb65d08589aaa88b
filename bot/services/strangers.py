"""What accounts not linked to a customer may cost (SPEC §2, §7): strangers are answered,
but never so much that they could hold up customers.

Each unlinked account gets at most `PER_STRANGER` answers an hour, whatever it sends;
all of them together at most the share of a channel's posting budget that
`Deployment.stranger_budgets` gives them; the "who are you" answer once a day, and the
pointer to direct messages for a public mention once a day.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.deployment import Deployment
from bot.policy.throttle import Allowance, Window
from bot.services import drafts
from storage.models import Identity, StrangerAnswers

#: An unknown sender gets the "how to buy support / link" answer at most this often.
UNKNOWN_NOTICE_EVERY = timedelta(days=1)
#: Anyone mentioning the bot publicly is pointed to direct messages at most this often.
PUBLIC_NOTICE_EVERY = timedelta(days=1)
#: Whatever an unlinked account sends (help, lang, link with wrong codes …), it gets at most this:
#: room for the daily answer, `help` and every wrong activation code up to the one that says to
#: wait (bot.services.customers.CODE_ATTEMPTS), and still no loop with a robot.
PER_STRANGER = Allowance(10, timedelta(hours=1))
log = logging.getLogger("deskbot.services.strangers")


def _due(last: datetime | None, every: timedelta, now: datetime) -> bool:
    return last is None or now - last >= every or now < last


def unknown_writes(session: Session, identity: Identity, text: str, now: datetime) -> bool:
    """An unlinked account wrote `text` (not a command it may use): kept as its draft, for after
    `link`. Is the "I don't know this account" answer due (and so taken now)? Once a day."""
    if text:
        drafts.keep_unlinked(session, identity.id, text, now)
    last = identity.unknown_notice_at
    if last is not None and now - last < UNKNOWN_NOTICE_EVERY:
        return False
    identity.unknown_notice_at = now
    return True


def due_public_notice(identity: Identity, now: datetime) -> bool:
    """Is the "write me a direct message" answer to a public mention due (and so taken now)? Once a day."""
    if not _due(identity.public_notice_at, PUBLIC_NOTICE_EVERY, now):
        return False
    identity.public_notice_at = now
    return True


def within_cap(identity: Identity, cap: int, now: datetime) -> bool:
    """May `identity` get one more automatic answer this hour, at most `cap` an hour (a channel's
    `answers_per_hour`: email)? Taken if so. Whatever an address sends, a robot answering every
    answer included, it gets no more: two robots can never loop."""
    allowed, window = Allowance(cap, PER_STRANGER.length).take(
        Window(identity.answers_since, identity.answers_used), now
    )
    if not allowed:
        log.info(
            "automatic answer withheld: the address had its answers this hour",
            extra={"channel": identity.channel, "identity_id": identity.id},
        )
        return False
    identity.answers_since, identity.answers_used = window.since, window.used
    return True


def may_answer(
    session: Session, deployment: Deployment, identity: Identity, text: str, now: datetime, cap: int | None = None
) -> bool:
    """May the unlinked `identity` get `text` now? Within its hourly allowance (and the channel's
    `cap` an hour, if lower), and within the share of its channel's posting budget that strangers
    may use together; taken if so."""
    channel = identity.channel
    allowance = PER_STRANGER if cap is None or cap >= PER_STRANGER.limit else Allowance(cap, PER_STRANGER.length)
    allowed, mine = allowance.take(Window(identity.answers_since, identity.answers_used), now)
    if not allowed:
        log.info(
            "answer to an unlinked account withheld: its hourly allowance is spent",
            extra={"channel": channel, "identity_id": identity.id},
        )
        return False
    budget = deployment.stranger_budgets.get(channel)
    if budget is not None:
        row = session.get(StrangerAnswers, channel) or StrangerAnswers(channel=channel)
        allowance = Allowance(budget.posts, budget.window)
        allowed, shared = allowance.take(Window(row.since, row.used), now, budget.posts_for(text))
        if not allowed:
            log.warning(
                "answer to an unlinked account withheld: strangers used their share of the channel's posting budget",
                extra={"channel": channel, "identity_id": identity.id},
            )
            return False
        row.since, row.used = shared.since, shared.used
        session.add(row)
    identity.answers_since, identity.answers_used = mine.since, mine.used
    return True
