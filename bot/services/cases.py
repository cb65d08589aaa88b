"""Incidents: opening, messages, state changes, the case topic and the reply route.

Every change writes its history row (`record`) and whatever it must say into
the outbox, in the caller's transaction.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlmodel import Session

from bot.context import Context, Deployment
from bot.i18n import _, format_when, render
from bot.markup import inert
from bot.numbers import is_id
from storage import outbox
from storage.models import Customer, Identity, Incident, IncidentEvent, IncidentMessage

TOPIC_LIMIT = 60
SUBJECT_LIMIT = 80
#: A customer message this soon after a resolution reopens the case at no charge.
REOPEN_WINDOW = timedelta(days=7)
OPEN, RESOLVED, CLOSED = "open", "resolved", "closed"


def topic_name(number: int, customer: str, subject: str) -> str:
    """`#N customer: subject`, cut with an ellipsis to Zulip's 60-character topic limit.

    Control and format characters (terminal colour codes, a bell, bidi overrides) are
    dropped: Zulip refuses a topic name with a control character, and every post of the
    case would then fail for good.
    """
    name = f"#{number} {customer}: {subject}"
    name = printable(" ".join(name.split()))
    return name if len(name) <= TOPIC_LIMIT else name[: TOPIC_LIMIT - 1].rstrip() + "…"


def printable(text: str) -> str:
    """`text` without control, format, surrogate, private-use or unassigned characters (category C*)."""
    return "".join(c for c in text if not unicodedata.category(c).startswith("C"))


def printable_lines(text: str) -> str:
    """`printable`, line by line: the line breaks stay."""
    return "\n".join(printable(line) for line in text.splitlines())


def subject_from(text: str, hint: str | None) -> str:
    source = printable_lines(hint or "").strip() or printable_lines(text).strip()
    first = " ".join(source.splitlines()[0].split()) if source else "(no subject)"
    return first if len(first) <= SUBJECT_LIMIT else first[: SUBJECT_LIMIT - 1].rstrip() + "…"


def record(
    session: Session,
    incident: Incident,
    actor: str,
    action: str,
    now: datetime,
    to_state: str | None = None,
    detail: str | None = None,
) -> None:
    """Append to the case history (and move the state, when `to_state` is given)."""
    from_state = incident.state
    if to_state is not None:
        incident.state = to_state
    incident.updated_at = now
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            at=now,
            actor=actor,
            action=action,
            from_state=from_state,
            to_state=incident.state,
            detail=detail,
        )
    )


def post_to_topic(
    session: Session, deployment: Deployment, incident: Incident, text: str, now: datetime, quote: str | None = None
) -> None:
    """Say something in the case topic (when a channel carries case topics)."""
    if deployment.case_channel is None or incident.topic is None:
        return
    outbox.enqueue(
        session,
        channel=deployment.case_channel,
        kind="topic",
        topic=incident.topic,
        text=text,
        quote=quote,
        incident_id=incident.id,
        now=now,
    )


def mirror_customer_text(
    session: Session,
    deployment: Deployment,
    incident: Incident,
    customer: Customer,
    identity: Identity,
    text: str,
    now: datetime,
) -> None:
    """The customer's words in the topic, under a header the bot writes; the channel fences them."""
    header = f"**{inert(customer.name)}** via {identity.channel} ({inert(identity.address)}) wrote:"
    post_to_topic(session, deployment, incident, header, now, quote=text)


def customer_lang(session: Session, incident: Incident) -> str:
    customer = session.get(Customer, incident.customer_id)
    return customer.lang if customer else "en"


def latest_inbound(session: Session, incident_id: int) -> IncidentMessage | None:
    return session.scalars(
        select(IncidentMessage)
        .where(IncidentMessage.incident_id == incident_id, IncidentMessage.direction == "in")
        .order_by(IncidentMessage.id.desc())
        .limit(1)
    ).first()


def tell_customer(session: Session, incident: Incident, text: str, now: datetime) -> str | None:
    """Send `text` to the customer on the channel of their latest message; the channel used, or None."""
    last = latest_inbound(session, incident.id)
    if last is None or last.identity_id is None:
        return None
    identity = session.get(Identity, last.identity_id)
    if identity is None:
        return None
    outbox.enqueue(
        session,
        channel=identity.channel,
        kind="direct",
        recipient=identity.address,
        conversation=last.conversation,
        text=text,
        incident_id=incident.id,
        now=now,
    )
    return identity.channel


def open_incident(ctx: Context, text: str, pack_id: int) -> Incident:
    """A new incident charged to `pack_id`, with its first message, topic and due time."""
    assert ctx.customer is not None
    calendar = ctx.settings.calendar
    incident = Incident(
        customer_id=ctx.customer.id,
        pack_id=pack_id,
        subject=subject_from(text, ctx.message.subject_hint),
        opened_at=ctx.now,
        updated_at=ctx.now,
        due_at=calendar.due_at(ctx.now, ctx.settings.response_target),
    )
    ctx.session.add(incident)
    ctx.session.flush()
    incident.topic = topic_name(incident.id, ctx.customer.name, incident.subject)
    ctx.session.add(
        IncidentEvent(incident_id=incident.id, at=ctx.now, actor=ctx.identity.address, action="opened", to_state=OPEN)
    )
    add_inbound(ctx, incident, text)
    ctx.events.append(("incident_opened", 0.0))
    return incident


def add_inbound(ctx: Context, incident: Incident, text: str) -> None:
    """Store a customer message on `incident`, mirror it, and restart the response clock if needed."""
    assert ctx.customer is not None
    ctx.incident_id = incident.id
    m = ctx.message
    ctx.session.add(
        IncidentMessage(
            incident_id=incident.id,
            direction="in",
            author=ctx.identity.address,
            channel=m.channel,
            identity_id=ctx.identity.id,
            conversation=m.conversation,
            body=text,
            created_at=ctx.now,
        )
    )
    if incident.state == RESOLVED:
        record(ctx.session, incident, ctx.identity.address, "reopened by customer", ctx.now, to_state=OPEN)
        incident.resolved_at = None
    # The earliest unanswered message sets the clock: writing again never pushes a due time out.
    if incident.due_at is None:
        incident.due_at = ctx.settings.calendar.due_at(ctx.now, ctx.settings.response_target)
    incident.updated_at = ctx.now
    mirror_customer_text(ctx.session, ctx.deployment, incident, ctx.customer, ctx.identity, text, ctx.now)


def engineer_reply(ctx: Context, incident: Incident, text: str) -> str | None:
    """Relay an engineer's answer to the customer; echo it in the topic. Returns the channel used."""
    assert ctx.engineer is not None
    lang = customer_lang(ctx.session, incident)
    channel = tell_customer(
        ctx.session, incident, render(lang, _("[#{number}] {text}"), number=incident.id, text=text), ctx.now
    )
    if channel is None:
        return None
    ctx.session.add(
        IncidentMessage(
            incident_id=incident.id,
            direction="out",
            author=ctx.engineer,
            channel=channel,
            body=text,
            created_at=ctx.now,
        )
    )
    if incident.first_response_at is None:
        incident.first_response_at = ctx.now
        ctx.events.append(("first_response", (ctx.now - incident.opened_at).total_seconds()))
    incident.due_at = None
    record(ctx.session, incident, ctx.engineer, "replied", ctx.now)
    post_to_topic(
        ctx.session,
        ctx.deployment,
        incident,
        f"**{ctx.engineer}** replied to the customer via {channel}:",
        ctx.now,
        quote=text,
    )
    return channel


def due_text(incident: Incident | IncidentSummary, lang: str, ctx: Context) -> str:
    if incident.state != OPEN:
        return "—"
    if incident.due_at is None:
        return render(lang, _("waiting for you"))
    return format_when(incident.due_at, lang, ctx.settings.calendar.tz)


def state_text(incident: Incident | IncidentSummary, lang: str) -> str:
    labels = {
        OPEN: _("with the support team") if incident.due_at is not None else _("answered"),
        RESOLVED: _("resolved"),
        CLOSED: _("closed"),
    }
    return render(lang, labels.get(incident.state, incident.state))


def get_incident(session: Session, number: int) -> Incident | None:
    """Incident `number`, or None: a number no id can have (2⁶³ and more cannot even be bound) is just missing."""
    return session.get(Incident, number) if is_id(number) else None


def own_incident(ctx: Context, number: int) -> Incident | None:
    """The sender's incident `number`, or None — another customer's case looks exactly like a missing one."""
    incident = get_incident(ctx.session, number)
    if incident is None or ctx.customer is None or incident.customer_id != ctx.customer.id:
        return None
    return incident


def customer_incidents(session: Session, customer_id: int, states: tuple[str, ...]) -> list[Incident]:
    """A customer's incidents in `states`, oldest first."""
    return list(session.scalars(_INCIDENTS, {"customer_id": customer_id, "states": list(states)}))


class IncidentSummary(NamedTuple):
    """What a listing shows of an incident (read-only)."""

    id: int
    subject: str
    state: str
    due_at: datetime | None


def latest_incidents(session: Session, customer_id: int, states: tuple[str, ...], limit: int) -> list[IncidentSummary]:
    """The customer's `limit` newest incidents in `states`, oldest first (cheap at any history).

    Plain rows, not ORM objects: `status` lists them for every customer who asks.
    """
    params = {"customer_id": customer_id, "states": list(states), "limit": limit}
    rows = session.connection().execute(_LATEST_INCIDENTS, params).all()
    return [IncidentSummary(*row) for row in reversed(rows)]


# Built once (`status` runs them for every message that asks).
_INCIDENTS = (
    select(Incident)
    .where(Incident.customer_id == bindparam("customer_id"), Incident.state.in_(bindparam("states", expanding=True)))
    .order_by(Incident.id)
)
_incident = Incident.__table__  # type: ignore[attr-defined]
_LATEST_INCIDENTS = (
    select(_incident.c.id, _incident.c.subject, _incident.c.state, _incident.c.due_at)
    .where(
        _incident.c.customer_id == bindparam("customer_id"), _incident.c.state.in_(bindparam("states", expanding=True))
    )
    .order_by(_incident.c.id.desc())
    .limit(bindparam("limit"))
)


def recently_resolved(session: Session, customer_id: int, now: datetime) -> list[Incident]:
    """Resolved incidents that a message may still reopen at no charge."""
    return list(
        session.scalars(
            select(Incident)
            .where(
                Incident.customer_id == customer_id,
                Incident.state == RESOLVED,
                Incident.resolved_at >= now - REOPEN_WINDOW,
            )
            .order_by(Incident.id)
        )
    )
