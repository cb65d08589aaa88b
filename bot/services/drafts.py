"""Drafts: text kept while the bot asks a question (SPEC §2), for the one answer it asked for.

A draft is used only by the answer the bot asked for, never glued onto other text, and
expires a day after it was kept. What it waits for (`Draft.awaits`):

- `OPEN`: "reply open to open an incident with it" (no incident open, no credit left, a
  closed incident, a resolved one too old to reopen, after `link`). `open` alone uses it;
  `open <the same text>` too, once.
- `EITHER`: "reply #N to add it there, or open to open a new incident with it" (several
  incidents it may be about, or `open` while an incident is open). `#N` alone or `open`
  alone uses it; `open` spends a second credit only within `CONFIRM_WINDOW` of the question.
- `REOPEN`: the text was added to the resolved incident `incident_id`; "reply reopen N to
  reopen it, or open to open a new incident with it". `reopen N` drops it (the text is on
  the incident already); `open` alone uses it.
- `JOINED`: the text joined the customer's only open incident `incident_id` by the "any other
  text" rule, though its message began a new conversation (a new mail thread): "if this is a
  separate problem, reply open to open a new incident with it (it uses one credit)". `open`
  alone uses it, without asking again about a second credit (that question was the offer); the
  text stays on `incident_id` too.
- `LINK`: what an account not yet linked to a customer wrote; `link CODE` turns it into
  `OPEN` and the welcome mentions it.

A new question replaces the draft: only the text the latest question was about waits.
The files that came with the kept text wait with it (bot.services.attachments), and so do the
people its message copied (`Draft.copies`); they go where it goes and are forgotten with it.
Only a stranger's texts join (nobody asked anything yet): while the draft is fresh and
the joined text stays within `MAX_CHARS` (300 DMs of 10,000 characters must not make a 3 MB draft).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session

from storage.models import Draft, IncidentAttachment

OPEN, EITHER, REOPEN, JOINED, LINK = "open", "either", "reopen", "joined", "link"
#: How long a stranger's joined texts may grow: twice Zulip's longest message, so that a flood does
#: not pile up. One message is kept whole, however long (a log pasted into a mail), as it would be
#: stored on an incident.
MAX_CHARS = 20_000
MAX_AGE = timedelta(days=1)
#: How long "reply open again to open a new incident" holds: later, `open` asks again.
CONFIRM_WINDOW = timedelta(minutes=15)


def current(session: Session, identity_id: int, now: datetime) -> Draft | None:
    """The identity's draft if it is less than a day old (an older one is deleted)."""
    draft = session.get(Draft, identity_id)
    if draft is not None and now - draft.created_at >= MAX_AGE:
        discard(session, draft)
        session.flush()
        return None
    return draft


def keep(
    session: Session,
    identity_id: int,
    text: str,
    now: datetime,
    awaits: str = OPEN,
    incident_id: int | None = None,
    copies: Sequence[str] = (),
) -> Draft:
    """Keep `text` for the answer `awaits`, fresh from now, in place of any earlier draft; `copies`:
    the people the message that brought it copied (kept again, the text keeps those it had too)."""
    draft = session.get(Draft, identity_id)
    if draft is None:
        _forget_files(session, identity_id)
        draft = Draft(identity_id=identity_id, text=text, created_at=now, awaits=awaits, incident_id=incident_id)
        session.add(draft)
    else:
        if draft.text != text:
            _forget_files(session, identity_id)
            draft.copies = None
        draft.text, draft.created_at, draft.awaits, draft.incident_id = text, now, awaits, incident_id
    addresses = list(dict.fromkeys((*waiting_copies(draft), *copies)))
    draft.copies = json.dumps(addresses) if addresses else None
    return draft


def waiting_copies(draft: Draft | None) -> tuple[str, ...]:
    """The people copied by the message(s) whose text waits as `draft`."""
    return tuple(json.loads(draft.copies)) if draft is not None and draft.copies else ()


def keep_unlinked(session: Session, identity_id: int, text: str, now: datetime) -> None:
    """An unlinked account's text, for after `link`: joins its fresh draft while the whole fits."""
    draft = current(session, identity_id, now)
    if draft is None or draft.awaits != LINK or len(draft.text) + 2 + len(text) > MAX_CHARS:
        keep(session, identity_id, text, now, LINK)
    else:
        draft.text = f"{draft.text}\n\n{text}"


def linked(session: Session, identity_id: int, now: datetime) -> Draft | None:
    """The account was just linked: its kept text now waits for `open` (fresh from now)."""
    draft = current(session, identity_id, now)
    if draft is None or draft.awaits != LINK:
        return draft
    draft.awaits, draft.created_at = OPEN, now
    return draft


def opens(draft: Draft | None) -> bool:
    """Does `open` alone use this draft?"""
    return draft is not None and draft.awaits in (OPEN, EITHER, REOPEN, JOINED)


def on_an_incident(draft: Draft | None) -> bool:
    """Is the draft's text on an incident already (so that nothing of it is lost if it goes)?"""
    return draft is not None and draft.awaits in (REOPEN, JOINED)


def joins_a_case(draft: Draft | None) -> bool:
    """Does `#N` alone use this draft?"""
    return draft is not None and draft.awaits == EITHER


def confirmed(draft: Draft | None, now: datetime) -> bool:
    """Was the customer asked, less than `CONFIRM_WINDOW` ago, whether this is a new issue? (A
    `JOINED` draft was offered as one, for a second credit, for as long as it is kept.)"""
    if draft is not None and draft.awaits == JOINED:
        return True
    return draft is not None and draft.awaits == EITHER and now - draft.created_at < CONFIRM_WINDOW


def discard(session: Session, draft: Draft | None) -> None:
    """Forget the draft and the files waiting with it (a draft used has handed them on already)."""
    if draft is not None:
        _forget_files(session, draft.identity_id)
        session.delete(draft)


def _forget_files(session: Session, identity_id: int) -> None:
    session.execute(delete(IncidentAttachment).where(IncidentAttachment.waiting_for == identity_id))
