"""Engineer pins: each email of `DESKBOT_ENGINEERS` is tied to one Zulip account.

Trust on first use: the first Zulip account (user id) that writes with a
listed email is pinned to it, and from then on that email runs engineer
commands only from that account. A pin is never changed by a message; an
operator lists and resets pins with `deskbot engineers …` (bot/cli/engineers.py).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from storage.models import EngineerPin

log = logging.getLogger("deskbot.engineers")


def pinned_to(session: Session, email: str, platform_user_id: str, now: datetime) -> bool:
    """Whether `platform_user_id` may act as engineer `email`; pins it when the email has no pin yet."""
    email = email.lower()
    pin = session.get(EngineerPin, email)
    if pin is None:
        session.add(EngineerPin(email=email, platform_user_id=platform_user_id, pinned_at=now))
        log.info("engineer %s pinned to Zulip user id %s (first use)", email, platform_user_id)
        return True
    if pin.platform_user_id == platform_user_id:
        return True
    log.warning(
        "engineer commands refused: %s is pinned to Zulip user id %s, not %s (reset: deskbot engineers unpin %s)",
        email,
        pin.platform_user_id,
        platform_user_id,
        email,
    )
    return False


def pins(session: Session) -> list[EngineerPin]:
    """Every pin, by email."""
    return list(session.scalars(select(EngineerPin).order_by(EngineerPin.email)))


def pin(session: Session, email: str, platform_user_id: str, now: datetime) -> EngineerPin:
    """Pin `email` to `platform_user_id`, replacing any earlier pin (an operator's choice, not first use)."""
    email = email.strip().lower()
    found = session.get(EngineerPin, email)
    if found is None:
        found = EngineerPin(email=email, platform_user_id=platform_user_id, pinned_at=now)
        session.add(found)
    else:
        found.platform_user_id, found.pinned_at = platform_user_id, now
    return found


def unpin(session: Session, email: str) -> EngineerPin | None:
    """Remove the pin of `email` (the next account to write with it is pinned); the removed pin, or None."""
    pin = session.get(EngineerPin, email.strip().lower())
    if pin is not None:
        session.delete(pin)
    return pin
