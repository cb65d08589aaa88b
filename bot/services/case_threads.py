"""Which of a customer's mails the words about their incident answer (SPEC §4: answers are threaded).

An answer to a message (an acknowledgement, a command's answer) continues that message's own
thread (`outgoing.to_sender`). Words about an incident that answer no message (an engineer's
`/reply`, the notice of `/resolve`) continue the incident's thread: on email, not the customer's
latest mail on the incident, which may be a new mail about something else that joined it (the
customer's mail client would file the words there), but their latest mail in the thread of their
first mail on it.

On email a message's `conversation` is the chain of Message-IDs of the thread it continues, its
own last (`adapters.email.inbound.thread_chain`): a mail is in a thread when its chain names one
of the thread's mails. Other channels thread each reply on the message it answers (Mastodon) or
have one conversation per person (Zulip): their latest message is the one answered.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from storage.models import Identity, IncidentMessage

#: The channel whose conversations are mail threads.
EMAIL = "email"


def answered(session: Session, latest: IncidentMessage, customer_id: int) -> IncidentMessage:
    """The customer's message on `latest`'s incident that words about it answer, `latest` being the
    customer's latest there: on email, their latest in the thread of their first mail on it."""
    if latest.channel != EMAIL:
        return latest
    mails = session.scalars(
        select(IncidentMessage)
        .join(Identity, IncidentMessage.identity_id == Identity.id)
        .where(
            IncidentMessage.incident_id == latest.incident_id,
            IncidentMessage.direction == "in",
            IncidentMessage.channel == EMAIL,
            Identity.customer_id == customer_id,
        )
        .order_by(IncidentMessage.id)
    )
    thread: set[str] = set()
    found = latest
    for mail in mails:
        chain = set((mail.conversation or "").split())
        # Oldest first: a reply names mails before it, so one pass finds the whole thread.
        if chain and (not thread or thread & chain):
            thread |= chain
            found = mail
    return found
