"""The people a customer copies on an incident (issue 17): who they are, how they join, where their
replies go.

A copy is an address on a channel (`IncidentCopy`): learned from a customer's message that joins or
opens an incident (`Inbound.copies`: an email's `To` and `Cc`, never `Bcc`), or added by an
engineer (`/cc`). Every later answer on the incident that goes to the customer on that channel
copies them (`for_row`, used by bot.services.outgoing); a channel that cannot copy anyone ignores
them. An engineer's removal sticks: the customer's mail does not bring a removed address back,
only `/cc add` does.

The people a message copied wait with its text when the bot keeps it as a draft (`Draft.copies`,
bot.services.drafts), and are copied on the incident the draft goes to.

A copied person's message that continues the incident's thread (`copied_incident`) is added to the
incident like the customer's own; it is never answered, never opens an incident and never spends a
credit. Any other message of theirs is an unknown sender's, as before they were copied.

The bot's automatic answers count against each copied address's hourly cap too (`within_cap`), so
that a robot in `Cc` can never loop with the bot.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.services import customers, strangers
from storage import outbox
from storage.models import Incident, IncidentCopy, IncidentMessage

#: An address an engineer may copy: an email addr-spec (what `/cc` takes), one line, no brackets.
_EMAIL = re.compile(r"[^\s<>()\[\]\\,;:@\"]+@[^\s<>()\[\]\\,;:@\".]+(?:\.[^\s<>()\[\]\\,;:@\".]+)+")
#: The most people one incident copies: a mail with a long `To` list (a whole team) stops there.
MAX_COPIES = 20
#: The channel `/cc` adds addresses on.
EMAIL = "email"


def email_address(text: str) -> str | None:
    """`text` as a copied email address (lower case: mailbox names compare case-insensitively), or
    None when it is not one (`mailto:` and angle brackets are taken off first)."""
    value = text.strip().strip("<>").removeprefix("mailto:").strip().lower()
    return value if len(value) <= 254 and _EMAIL.fullmatch(value) else None


def active(session: Session, incident_id: int, channel: str | None = None) -> list[IncidentCopy]:
    """The people copied on the incident now (on `channel`, if given), in the order they were added."""
    query = select(IncidentCopy).where(IncidentCopy.incident_id == incident_id, IncidentCopy.removed_at.is_(None))
    if channel is not None:
        query = query.where(IncidentCopy.channel == channel)
    return list(session.scalars(query.order_by(IncidentCopy.id)))


def _row(session: Session, incident_id: int, channel: str, address: str) -> IncidentCopy | None:
    return session.scalars(
        select(IncidentCopy).where(
            IncidentCopy.incident_id == incident_id, IncidentCopy.channel == channel, IncidentCopy.address == address
        )
    ).first()


def learn(
    session: Session, incident: Incident, channel: str, addresses: Iterable[str], by: str, now: datetime
) -> list[str]:
    """The customer's message on `incident` addressed `addresses` too: those not copied yet are
    (up to `MAX_COPIES`), except any an engineer removed. Returns the addresses newly copied."""
    assert incident.id is not None
    added: list[str] = []
    count = len(active(session, incident.id))
    for address in dict.fromkeys(a.strip().lower() for a in addresses if a.strip()):
        if address == by.lower() or count >= MAX_COPIES:
            continue
        if _row(session, incident.id, channel, address) is not None:
            continue  # copied already, or removed by an engineer: that sticks
        try:
            with session.begin_nested():  # two mails copying the same person at once: one copy
                session.add(
                    IncidentCopy(incident_id=incident.id, channel=channel, address=address, added_by=by, added_at=now)
                )
        except IntegrityError:
            continue
        added.append(address)
        count += 1
    return added


def add(
    session: Session, incident: Incident, channel: str, address: str, by: str, now: datetime
) -> Literal["added", "already", "full"]:
    """An engineer copies `address` on `incident` (again, if it was removed): "added"; "already" if
    it is; "full" if the incident copies `MAX_COPIES` people."""
    assert incident.id is not None
    found = _row(session, incident.id, channel, address)
    if found is not None and found.removed_at is None:
        return "already"
    if len(active(session, incident.id)) >= MAX_COPIES:
        return "full"
    if found is None:
        session.add(IncidentCopy(incident_id=incident.id, channel=channel, address=address, added_by=by, added_at=now))
    else:
        found.removed_at, found.added_by, found.added_at = None, by, now
    session.flush()
    return "added"


def remove(session: Session, incident: Incident, channel: str, address: str, now: datetime) -> bool:
    """`address` is no longer copied on `incident`: later answers leave it out, its replies are an
    unknown sender's, and the customer's mail does not copy it again. False if it was not copied."""
    assert incident.id is not None
    found = _row(session, incident.id, channel, address)
    if found is None or found.removed_at is not None:
        return False
    found.removed_at = now
    return True


def copied_incident(
    session: Session, channel: str, address: str, replies_to: Collection[str], case_hint: int | None
) -> Incident | None:
    """The incident a message from `address` continues as someone copied on it, if any: one of the
    incidents that copy it now, whose thread the message answers (a message the bot sent about it,
    or one of the customer's messages on it) or whose number it names beside its text (an email
    subject's `[#N]`)."""
    numbers = set(
        session.scalars(
            select(IncidentCopy.incident_id).where(
                IncidentCopy.channel == channel, IncidentCopy.address == address, IncidentCopy.removed_at.is_(None)
            )
        )
    )
    if not numbers:
        return None
    found = outbox.posted_incident(session, channel, replies_to)
    if found is None and replies_to:
        found = _answered_customer(session, channel, numbers, set(replies_to))
    if found is None and case_hint in numbers:
        found = case_hint
    return session.get(Incident, found) if found in numbers else None


def _answered_customer(session: Session, channel: str, numbers: set[int], replies_to: set[str]) -> int | None:
    """The incident among `numbers` with a customer's message that one of `replies_to` names: a
    message's `conversation` holds the ids of the thread it continues, its own last (email)."""
    rows = session.execute(
        select(IncidentMessage.incident_id, IncidentMessage.conversation)
        .where(
            IncidentMessage.incident_id.in_(numbers),
            IncidentMessage.channel == channel,
            IncidentMessage.direction == "in",
        )
        .order_by(IncidentMessage.id.desc())
    )
    for number, conversation in rows:
        if conversation and replies_to & set(conversation.split()):
            return number
    return None


def for_row(
    session: Session,
    incident_id: int,
    channel: str,
    recipient: str,
    *,
    automatic: bool,
    cap: int | None,
    now: datetime,
    only: Collection[str] | None = None,
) -> list[str]:
    """Whom a direct row about the incident to `recipient` on `channel` copies: the people copied
    on it there, but the recipient; for the bot's `automatic` answers, only those still within the
    channel's `cap` of automatic answers an hour (each one copied is taken from it). `only`:
    of these addresses alone."""
    found = []
    for copy in active(session, incident_id, channel):
        if copy.address == recipient.lower() or (only is not None and copy.address not in only):
            continue
        if automatic and cap is not None and not within_cap(session, channel, copy.address, cap, now):
            continue
        found.append(copy.address)
    return found


def within_cap(session: Session, channel: str, address: str, cap: int, now: datetime) -> bool:
    """May `address` get one more of the bot's automatic answers this hour (taken if so)? Counted on
    its identity on `channel`, as for anyone who writes (bot.services.strangers.within_cap)."""
    return strangers.within_cap(customers.account(session, channel, address, now), cap, now)
