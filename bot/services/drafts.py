"""Drafts: text kept while the bot asks a question (SPEC §2), bounded in size and age.

Anyone can write without limit, strangers included; a draft must not grow with
them (300 DMs of 10,000 characters made a 3 MB draft and every message slower).
A draft lives a day from its first text: later texts join it only while it is
fresh and the whole stays within `MAX_CHARS`; otherwise the newest text starts
a new draft.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from storage.models import Draft

#: Twice Zulip's longest message: any one message fits, a flood does not pile up.
MAX_CHARS = 20_000
MAX_AGE = timedelta(days=1)


def current(session: Session, identity_id: int, now: datetime) -> Draft | None:
    """The identity's draft if it is less than a day old (an older one is deleted)."""
    draft = session.get(Draft, identity_id)
    if draft is not None and now - draft.created_at >= MAX_AGE:
        session.delete(draft)
        session.flush()
        return None
    return draft


def keep(session: Session, identity_id: int, text: str, now: datetime) -> None:
    """Add `text` to the draft (see the module docstring for when it starts a new one)."""
    draft = session.get(Draft, identity_id)
    text = text[:MAX_CHARS]
    if draft is None:
        session.add(Draft(identity_id=identity_id, text=text, created_at=now))
    elif now - draft.created_at >= MAX_AGE or len(draft.text) + 2 + len(text) > MAX_CHARS:
        draft.text, draft.created_at = text, now
    else:
        draft.text = f"{draft.text}\n\n{text}"


def replace(session: Session, identity_id: int, text: str, now: datetime) -> None:
    """Make `text` the whole draft, fresh from now."""
    draft = session.get(Draft, identity_id)
    text = text[:MAX_CHARS]
    if draft is None:
        session.add(Draft(identity_id=identity_id, text=text, created_at=now))
    else:
        draft.text, draft.created_at = text, now


def discard(session: Session, draft: Draft | None) -> None:
    if draft is not None:
        session.delete(draft)
