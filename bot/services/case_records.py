"""Read-only views of cases: a filtered listing and a case's whole conversation.

Used by `deskbot cases list | show | export` and the engineers' `/cases`. Nothing here writes; the clock is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from bot.services import attachments, customers, incidents
from bot.services.attachments import FileSummary
from storage.models import Customer, Incident, IncidentEvent, IncidentMessage

#: `deskbot cases list` shows this many cases unless told otherwise.
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class CaseFilter:
    """Which cases to list; None means any."""

    state: str | None = None
    customer_id: int | None = None
    #: Only open cases whose response was due before this instant.
    overdue_at: datetime | None = None
    severity: int | None = None
    #: Only cases assigned to this engineer (`/cases mine`).
    assignee: str | None = None
    #: Only cases assigned to nobody (`/cases unassigned`).
    unassigned: bool = False


@dataclass(frozen=True)
class CaseListing:
    cases: list[tuple[Incident, str]]  # by severity, then due time, then newest first; with the customer's name
    total: int  # how many match, before the limit


def list_cases(session: Session, which: CaseFilter, limit: int) -> CaseListing:
    """The first `limit` cases matching `which`, and how many match in all.

    In the order cases are worked: by severity, then due time (cases with none last), then
    newest first (highest number).
    """
    query = select(Incident, Customer.name).join(Customer, Customer.id == Incident.customer_id)
    if which.state is not None:
        query = query.where(Incident.state == which.state)
    if which.customer_id is not None:
        query = query.where(Incident.customer_id == which.customer_id)
    if which.overdue_at is not None:
        query = query.where(Incident.state == incidents.OPEN, Incident.due_at < which.overdue_at)
    if which.severity is not None:
        query = query.where(Incident.severity == which.severity)
    if which.assignee is not None:
        query = query.where(Incident.assignee == which.assignee)
    if which.unassigned:
        query = query.where(Incident.assignee.is_(None))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    order = (Incident.severity, Incident.due_at.is_(None), Incident.due_at, Incident.id.desc())
    found = session.execute(query.order_by(*order).limit(limit)).all()
    return CaseListing([(incident, name) for incident, name in found], total)


@dataclass(frozen=True)
class Conversation:
    """A case with everything said and done on it, each in the order it happened."""

    incident: Incident
    customer: str
    messages: list[IncidentMessage]  # customer messages ("in"), replies ("out") and internal notes ("note")
    events: list[IncidentEvent]  # its history: opened, assigned, resolved …
    files: list[FileSummary] = field(default_factory=list)  # the customer's files, oldest first
    #: The customer's accounts as people read them (`customers.account_labels`), by address.
    labels: dict[str, str] = field(default_factory=dict)

    def who(self, address: str) -> str:
        """An author or actor as people read it: the customer's account by its name, anyone else as stored."""
        return self.labels.get(address, address)


def conversation(session: Session, number: int) -> Conversation | None:
    """Case `number` with its messages and history; None when there is no such case."""
    incident = incidents.get_incident(session, number)
    if incident is None:
        return None
    customer = session.get(Customer, incident.customer_id)
    messages = session.scalars(
        select(IncidentMessage).where(IncidentMessage.incident_id == number).order_by(IncidentMessage.id)
    )
    events = session.scalars(
        select(IncidentEvent).where(IncidentEvent.incident_id == number).order_by(IncidentEvent.id)
    )
    files = attachments.of_incident(session, number, with_notes=True)
    labels = customers.account_labels(session, incident.customer_id)
    return Conversation(incident, customer.name if customer else "?", list(messages), list(events), files, labels)


#: How each kind of message is headed in an export.
MESSAGE_KINDS = {"in": "customer", "out": "reply to the customer", "note": "internal note"}


def conversation_markdown(case: Conversation, tz: ZoneInfo) -> str:
    """The whole case as a Markdown document; what people wrote is kept verbatim in code fences."""
    incident = case.incident

    def when(moment: datetime | None) -> str:
        return "—" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    lines = [
        f"# Case #{incident.id}: {_one_line(incident.subject)}",
        "",
        f"- Customer: {_one_line(case.customer)} (id {incident.customer_id})",
        f"- State: {incident.state}",
        f"- Severity: {incident.severity} ({incidents.SEVERITIES[incident.severity]})",
        f"- Chargeable: {'yes' if incident.chargeable else 'no'}",
        f"- Assignee: {_one_line(incident.assignee or '—')}",
        f"- Opened: {when(incident.opened_at)}",
        f"- Response due: {when(incident.due_at) if incident.state == incidents.OPEN else '—'}",
        f"- First response: {when(incident.first_response_at)}",
        f"- Resolved: {when(incident.resolved_at)}",
        f"- Closed: {when(incident.closed_at)}",
        "",
        "## Conversation",
        "",
    ]
    if not case.messages:
        lines += ["No messages.", ""]
    for message in case.messages:
        kind = MESSAGE_KINDS.get(message.direction, message.direction)
        via = f" via {message.channel}" if message.channel else ""
        lines += [f"### {when(message.created_at)} · {kind} · {_one_line(case.who(message.author))}{via}", ""]
        lines += [*_fenced(message.body), ""]
    if case.files:
        lines += ["## Files", ""]
        lines += [f"- {when(f.at)} · {_one_line(f.name)} · {attachments.described(f)}" for f in case.files]
        lines += [""]
    lines += ["## History", ""]
    if not case.events:
        lines += ["No events.", ""]
    for event in case.events:
        change = ""
        if event.to_state and event.to_state != event.from_state:
            change = f" ({event.from_state} → {event.to_state})" if event.from_state else f" (→ {event.to_state})"
        detail = f": {_one_line(event.detail)}" if event.detail else ""
        lines.append(f"- {when(event.at)} · {_one_line(case.who(event.actor))} · {event.action}{change}{detail}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fenced(text: str) -> list[str]:
    """`text` in a code fence that none of its lines can close (a backtick run longer than any inside)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", *text.splitlines(), fence]
