"""The incident lifecycle (SPEC §1–§3): every transition of a case, and the queries about cases.

What a customer's message does on the way (which incident it joins, the draft kept while
the bot asks, asking before a second credit, reopening) is bot.services.conversation.

Each transition takes what it needs (the session, the time, who acts, the incident) and
returns what happened; it writes the case history (`record`) but says nothing: the
command handlers render the result and say it (bot.services.outgoing). Where a case's
words go is decided here: `customer_route` (the customer's latest channel) and
`case_topic` (the case's topic, named by the channel that carries topics).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Select, bindparam, func, or_, select, update
from sqlmodel import Session

from adapters.printable import printable
from bot.config import DEFAULT_SEVERITY, Settings
from bot.deployment import Deployment
from bot.i18n import _
from bot.numbers import is_id
from bot.policy.acknowledgements import Who
from bot.policy.calendar import days_later
from bot.policy.response_clock import starts_response_clock
from bot.services import case_threads, credits
from bot.services.outgoing import Direct, Topic
from storage.db import for_update
from storage.models import Customer, Identity, Incident, IncidentEvent, IncidentMessage, IncidentState, Outbox
from storage.prepared import Prepared

OPEN, RESOLVED, CLOSED = IncidentState.OPEN, IncidentState.RESOLVED, IncidentState.CLOSED
SUBJECT_LIMIT = 80
#: The customer may reopen a resolved incident at no charge (`reopen N`) for this many calendar days
#: after its resolution, up to the same time of day in the service time zone (`reopen_until`).
REOPEN_DAYS = 7
#: Severities (SPEC §1), most urgent first, with their names (msgids: engineers read them in
#: English, customers in their language).
SEVERITIES = {1: _("critical"), 2: _("high"), 3: _("normal"), 4: _("low")}


@dataclass(frozen=True)
class Writer:
    """A customer writing on one of their accounts; `conversation` is what a reply answers;
    `copies`: the people the message was addressed to besides the desk (`Inbound.copies`);
    `arrived`: when the message arrived (`Context.arrived`), None: when it is handled."""

    customer: Customer
    identity: Identity
    conversation: str
    copies: tuple[str, ...] = ()
    arrived: datetime | None = None

    def wrote_at(self, now: datetime) -> datetime:
        """When the customer wrote, for what they are owed from then: the response clock of an
        incident opened, reopened or written to, and the day whose credit pays. A message held up
        (the bot down over a weekend) is not the customer's delay. Everything else of its handling
        (its record, drafts, answers) is at `now`."""
        return now if self.arrived is None else self.arrived


# -- subjects and history ------------------------------------------------------------


def subject_from(text: str, hint: str | None) -> str:
    """The subject of a new incident: the hint (a Mastodon content warning) or the first line, shortened."""

    def lines(value: str) -> str:
        return "\n".join(printable(line) for line in value.splitlines()).strip()

    source = lines(hint or "") or lines(text)
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


# -- where a case's words go ---------------------------------------------------------


def case_topic(deployment: Deployment, incident: Incident) -> Topic | None:
    """The case's topic, when a channel carries case topics."""
    if deployment.case_channel is None or incident.topic is None:
        return None
    return Topic(deployment.case_channel, incident.topic)


def same_topic(a: str, b: str) -> bool:
    """Whether two topic names name one topic: Zulip compares them regardless of case (its database
    matches `UPPER(subject)`, its Python and web app `lower()`), so "#1 acme: x" is "#1 Acme: x"."""
    return a.lower() == b.lower()


def is_topic(address: Topic | Direct, topic: Topic) -> bool:
    """Whether `address` is the topic `topic` (`same_topic`)."""
    return isinstance(address, Topic) and address.channel == topic.channel and same_topic(address.topic, topic.topic)


def _cases_in(session: Session, topic: str) -> list[int]:
    """The cases whose stored topic is `topic` as Zulip compares names (`same_topic`), by number.
    The database narrows them by its own `lower()` on both sides, through the index on it
    (`ix_incident_topic_lower`: a store of a million cases is not scanned for each command), and
    Python decides: SQLite's `lower()` folds ASCII letters only, so there a name that differs only
    in the case of a non-ASCII letter ("É" for "é") is not found."""
    found = session.execute(
        select(Incident.id, Incident.topic).where(func.lower(Incident.topic) == func.lower(topic)).order_by(Incident.id)
    )
    return [number for number, stored in found if stored is not None and same_topic(stored, topic)]


def in_topic(session: Session, deployment: Deployment, channel: str, topic: str | None) -> int | None:
    """The case whose topic (as stored, whatever its case: `same_topic`) is `topic` on `channel`,
    when exactly one case's is: a topic renamed without its number (`follow_topic`) is still its
    case's. Two cases whose topics were merged into one share its name: neither is meant, and a
    command there names its case."""
    if topic is None or channel != deployment.case_channel:
        return None
    found = _cases_in(session, topic)
    return found[0] if len(found) == 1 else None


#: The history's name for a case that followed its topic to a new name (`follow_topic`).
TOPIC_RENAMED = "topic renamed"


def follow_topic(
    session: Session, deployment: Deployment, now: datetime, channel: str, old: str, new: str
) -> list[int]:
    """Every message of topic `old` on `channel` was moved to topic `new` (renamed, marked resolved
    with Zulip's "✔ ", merged into another): the cases whose topic is `old` (`same_topic`) take
    `new`, each with "topic renamed" in its history (the channel is the actor: the move does not
    say who made it), and the posts still waiting to go to `old` go to `new`, so that the bot never
    opens `old` again beside it. The numbers of the cases that moved; none when `old` is no case's
    topic, or when told again."""
    if channel != deployment.case_channel:
        return []
    moved = []
    for number in _cases_in(session, old):
        incident = session.get(Incident, number)
        if incident is None or incident.topic == new:
            continue
        detail = f"from “{incident.topic}” to “{new}”"
        incident.topic = new
        record(session, incident, channel, TOPIC_RENAMED, now, detail=detail)
        moved.append(number)
    waiting = (Outbox.channel == channel) & (Outbox.kind == "topic") & (Outbox.state == "pending")
    named = func.lower(Outbox.topic) == func.lower(old)
    rows = session.execute(select(Outbox.id, Outbox.topic).where(waiting, named))
    follow = [row_id for row_id, topic in rows if topic is not None and same_topic(topic, old) and topic != new]
    if follow:
        session.execute(update(Outbox).where(Outbox.id.in_(follow)).values(topic=new))
    return moved


def customer_route(session: Session, incident: Incident) -> Direct | None:
    """The customer of `incident` on the channel of their latest message on it (a message of someone
    they copy is on the incident too, but answers go to the customer: bot.services.copies), in the
    incident's thread there (`case_threads.answered`)."""
    last = latest_inbound(session, incident.id, customer_id=incident.customer_id)
    if last is None or last.identity_id is None:
        return None
    identity = session.get(Identity, last.identity_id)
    if identity is None:
        return None
    return Direct(
        identity.channel, identity.address, case_threads.answered(session, last, incident.customer_id).conversation
    )


# -- transitions ---------------------------------------------------------------------


def open_incident(
    session: Session,
    deployment: Deployment,
    now: datetime,
    writer: Writer,
    text: str,
    pack_id: int,
    subject_hint: str | None = None,
    severity: int = DEFAULT_SEVERITY,
) -> Incident:
    """A new incident charged to `pack_id`, with its first message, topic name, severity and due time;
    opened, in its history too, when the customer wrote (`Writer.wrote_at`)."""
    settings = deployment.settings
    opened = writer.wrote_at(now)
    incident = Incident(
        customer_id=writer.customer.id,
        pack_id=pack_id,
        subject=subject_from(text, subject_hint),
        severity=severity,
        opened_at=opened,
        updated_at=now,
    )
    start_clock(settings, opened, incident)
    session.add(incident)
    session.flush()
    incident.topic = deployment.case_topic(incident.id, writer.customer.name, incident.subject)
    session.add(
        IncidentEvent(incident_id=incident.id, at=opened, actor=writer.identity.address, action="opened", to_state=OPEN)
    )
    add_message(session, settings, now, writer, incident, text)
    return incident


def start_clock(settings: Settings, start: datetime, incident: Incident) -> None:
    """The team owes an answer from `start`: due within the target of the incident's severity."""
    incident.clock_from = start
    incident.due_at = settings.calendar.due_at(start, settings.target_days(incident.severity))


def add_message(
    session: Session,
    settings: Settings,
    now: datetime,
    writer: Writer,
    incident: Incident,
    text: str,
    *,
    starts_clock: bool = True,
    with_files: bool = False,
) -> None:
    """Store a customer message on `incident`; on an open one, start the response clock if it is not
    running, from when the customer wrote (`Writer.wrote_at`), unless the message asks the team for
    nothing (a bare thank-you, without files: `starts_response_clock`).

    A resolved incident stays resolved: only `reopen` opens it again. `starts_clock` False: a
    message a machine sent on the customer's behalf (an autoresponder's) is kept but owes no answer.
    `with_files`: files came with the message (a thank-you with the log asked for asks for a look).
    """
    session.add(
        IncidentMessage(
            incident_id=incident.id,
            direction="in",
            author=writer.identity.address,
            channel=writer.identity.channel,
            identity_id=writer.identity.id,
            conversation=writer.conversation,
            body=text,
            created_at=now,
        )
    )
    if (
        starts_clock
        and incident.state == OPEN
        and starts_response_clock(text, with_files=with_files, clock_running=incident.due_at is not None)
    ):
        start_clock(settings, writer.wrote_at(now), incident)
    incident.updated_at = now


class Replied(NamedTuple):
    route: Direct
    #: Seconds from opening to this answer, when it is the case's first response.
    first_response: float | None


def engineer_reply(session: Session, now: datetime, engineer: str, incident: Incident, text: str) -> Replied | None:
    """Record an engineer's answer to the customer; None when the customer never wrote (no route)."""
    route = customer_route(session, incident)
    if route is None:
        return None
    session.add(
        IncidentMessage(
            incident_id=incident.id, direction="out", author=engineer, channel=route.channel, body=text, created_at=now
        )
    )
    first = None
    if incident.first_response_at is None:
        incident.first_response_at = now
        first = (now - incident.opened_at).total_seconds()
    incident.due_at = None
    record(session, incident, engineer, "replied", now)
    return Replied(route, first)


#: Two engineers' answers to one case this close together may say the same thing twice: the later
#: one's echo names the earlier (`reply_by_another`). Nothing stops either.
REPLY_OVERLAP = timedelta(minutes=2)


def reply_by_another(session: Session, incident_id: int, engineer: str, since: datetime) -> IncidentMessage | None:
    """The latest answer to the customer of the case that an engineer other than `engineer` wrote
    after `since`, or None."""
    query = (
        select(IncidentMessage)
        .where(
            IncidentMessage.incident_id == incident_id,
            IncidentMessage.direction == "out",
            IncidentMessage.author != engineer,
            IncidentMessage.created_at > since,
        )
        .order_by(IncidentMessage.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def resume_clock(settings: Settings, incident: Incident) -> datetime | None:
    """The team's answer that stopped the response clock never reached the customer: on an open
    case waiting on the customer, the clock runs again from when it started (by the severity now),
    as if the answer had not been given. The due time, or None when nothing changed."""
    if incident.state != OPEN or incident.due_at is not None or incident.clock_from is None:
        return None
    incident.due_at = settings.calendar.due_at(incident.clock_from, settings.target_days(incident.severity))
    return incident.due_at


def add_note(session: Session, now: datetime, engineer: str, incident: Incident, text: str) -> None:
    session.add(IncidentMessage(incident_id=incident.id, direction="note", author=engineer, body=text, created_at=now))
    record(session, incident, engineer, "note", now)


def assign(session: Session, now: datetime, engineer: str, incident: Incident, assignee: str | None) -> None:
    """Set the case's assignee; None: nobody (the case shows in `/cases unassigned` again)."""
    incident.assignee = assignee
    if assignee is None:
        record(session, incident, engineer, "unassigned", now)
    else:
        record(session, incident, engineer, "assigned", now, detail=assignee)


#: The history's names for the two ways a case stops being charged.
VENDOR_BUG = "marked as vendor bug"
WAIVED = "charge waived"


def mark_vendor_bug(
    session: Session, settings: Settings, now: datetime, engineer: str, incident: Incident
) -> credits.CreditReturn | None:
    """No charge for a case our bug caused: its credit goes back to its pack while that pack is
    valid (`credits.return_credit`). What became of the credit; None if it was not charged already."""
    return _no_charge(session, settings, now, engineer, incident, VENDOR_BUG, None)


def waive_charge(
    session: Session, settings: Settings, now: datetime, engineer: str, incident: Incident, reason: str | None
) -> credits.CreditReturn | None:
    """No charge for a case for another reason than our bug (a duplicate of another case, opened by
    mistake, goodwill): the credit goes back as for a bug. None if it was not charged already."""
    return _no_charge(session, settings, now, engineer, incident, WAIVED, reason)


def _no_charge(
    session: Session,
    settings: Settings,
    now: datetime,
    engineer: str,
    incident: Incident,
    action: str,
    reason: str | None,
) -> credits.CreditReturn | None:
    if not incident.chargeable:
        return None
    incident.chargeable = False
    returned = credits.return_credit(session, incident.pack_id, settings.today(now))
    details = {
        "returned": "credit returned",
        "expired": f"credit not returned: pack {returned.pack_id} was valid until {returned.valid_until} and has expired",
        "not_charged": "no credit was taken",
        "not_used": f"credit not returned: pack {returned.pack_id} has no used credit",
    }
    detail = details[returned.outcome] if reason is None else f"{reason}; {details[returned.outcome]}"
    record(session, incident, engineer, action, now, detail=detail)
    return returned


def why_not_charged(session: Session, incident: Incident) -> Literal["bug", "waived"] | None:
    """Why a case is not charged, from its history (None while it is charged, or when its history
    does not say)."""
    if incident.chargeable:
        return None
    query = (
        select(IncidentEvent.action)
        .where(IncidentEvent.incident_id == incident.id, IncidentEvent.action.in_((VENDOR_BUG, WAIVED)))
        .order_by(IncidentEvent.id.desc())
        .limit(1)
    )
    return {VENDOR_BUG: "bug", WAIVED: "waived"}.get(session.scalar(query) or "")


def resolve(session: Session, now: datetime, engineer: str, incident: Incident, summary: str | None) -> bool:
    """Resolve an open case (False when it is not open)."""
    if incident.state != OPEN:
        return False
    record(session, incident, engineer, "resolved", now, to_state=RESOLVED, detail=summary)
    incident.resolved_at, incident.due_at = now, None
    return True


def resolution(session: Session, incident_id: int) -> str | None:
    """The summary the engineer gave when they last resolved the case (None without one)."""
    query = (
        select(IncidentEvent.detail)
        .where(IncidentEvent.incident_id == incident_id, IncidentEvent.action == "resolved")
        .order_by(IncidentEvent.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def reopen(
    session: Session,
    settings: Settings,
    now: datetime,
    actor: str,
    incident: Incident,
    action: str = "reopened",
    *,
    asked_at: datetime | None = None,
) -> bool:
    """Reopen a resolved or closed case with a new due time (False when it is open already).

    `asked_at`: when the customer asked for it (`Writer.wrote_at`), which the new due time and the
    history count from; never before the case was resolved or closed (a message held up on one
    channel while an engineer resolved the case on another). None: `now` (an engineer's reopening).
    """
    if incident.state == OPEN:
        return False
    start = now if asked_at is None else asked_at
    ended = incident.resolved_at or incident.closed_at
    if ended is not None and start < ended:
        start = ended
    record(session, incident, actor, action, start, to_state=OPEN)
    incident.updated_at = now
    incident.resolved_at = incident.closed_at = None
    start_clock(settings, start, incident)
    return True


class SeverityChange(NamedTuple):
    """What `set_severity` did: "changed", "same" (it had that severity), "not_open" (nothing changed)."""

    outcome: Literal["changed", "same", "not_open"]
    before: int
    #: Mention `DESKBOT_URGENT_NOTIFY` now (the case became severity 1: see `take_urgent_notice`).
    urgent: bool = False


def set_severity(
    session: Session, settings: Settings, now: datetime, actor: str, incident: Incident, severity: int
) -> SeverityChange:
    """Set the severity of an open case. A case waiting on the team gets the due time of the new
    severity's target, counted from when its clock started (so it may be due at once)."""
    before = incident.severity
    if incident.state != OPEN:
        return SeverityChange("not_open", before)
    if severity == before:
        return SeverityChange("same", before)
    incident.severity = severity
    if incident.due_at is not None:
        start = incident.clock_from or now
        incident.clock_from = start
        incident.due_at = settings.calendar.due_at(start, settings.target_days(severity))
    record(session, incident, actor, "severity", now, detail=f"{before} → {severity}")
    return SeverityChange("changed", before, take_urgent_notice(settings, now, incident))


#: A case raised to severity 1 again this soon after its last urgent mention is the same emergency:
#: lowered and raised within the hour (by a customer unsure of the level, say), the on-call engineers
#: are not called twice. After that, each raise calls them again (SPEC §3: "a case raised to 1
#: notifies"), as an opening at severity 1 does.
URGENT_REPEAT = timedelta(hours=1)


def take_urgent_notice(settings: Settings, now: datetime, incident: Incident) -> bool:
    """Is `DESKBOT_URGENT_NOTIFY` to be mentioned for `incident` now, as it becomes severity 1?"""
    if incident.severity != 1 or not settings.urgent_notify:
        return False
    last = incident.urgent_notified_at
    if last is not None and now - last < URGENT_REPEAT:
        return False
    incident.urgent_notified_at = now
    return True


def close(session: Session, now: datetime, actor: str, incident: Incident) -> bool:
    """The customer closes their case (False when it is closed already)."""
    if incident.state == CLOSED:
        return False
    record(session, incident, actor, "closed by customer", now, to_state=CLOSED)
    incident.closed_at, incident.due_at = now, None
    return True


# -- queries -------------------------------------------------------------------------


def customer_of(session: Session, incident: Incident) -> Customer | None:
    return session.get(Customer, incident.customer_id)


def customer_lang(session: Session, incident: Incident) -> str:
    customer = customer_of(session, incident)
    return (customer.lang if customer else None) or "en"


def latest_inbound(session: Session, incident_id: int, customer_id: int | None = None) -> IncidentMessage | None:
    """The latest message on the incident from outside; with `customer_id`, the latest that
    customer wrote from one of their own accounts."""
    query = select(IncidentMessage).where(IncidentMessage.incident_id == incident_id, IncidentMessage.direction == "in")
    if customer_id is not None:
        query = query.join(Identity, IncidentMessage.identity_id == Identity.id).where(
            Identity.customer_id == customer_id
        )
    return session.scalars(query.order_by(IncidentMessage.id.desc()).limit(1)).first()


def latest_messages(session: Session, incident_id: int, limit: int) -> list[IncidentMessage]:
    """The customer's messages and the answers of a case, the latest `limit`, oldest first."""
    found = session.scalars(
        select(IncidentMessage)
        .where(IncidentMessage.incident_id == incident_id, IncidentMessage.direction.in_(("in", "out")))
        .order_by(IncidentMessage.id.desc())
        .limit(limit)
    )
    return list(reversed(list(found)))


def before_latest(session: Session, incident_id: int, identity_id: int | None) -> tuple[Who, datetime] | None:
    """Who wrote the case's message before its latest one, as seen by the latest's writer (the
    identity `identity_id`): "sender" (they did), or "other" (the team, a colleague copied);
    and when. None when the latest is the case's first."""
    found = latest_messages(session, incident_id, 2)
    if len(found) < 2:
        return None
    before = found[0]
    same = before.direction == "in" and identity_id is not None and before.identity_id == identity_id
    return ("sender" if same else "other"), before.created_at


def latest_events(session: Session, incident_id: int, limit: int) -> list[IncidentEvent]:
    """The latest `limit` entries of a case's history, oldest first."""
    found = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.id.desc())
        .limit(limit)
    )
    return list(reversed(list(found)))


def get_incident(session: Session, number: int) -> Incident | None:
    """Incident `number`, or None: a number no id can have (2⁶³ and more cannot even be bound) is just missing."""
    return session.get(Incident, number) if is_id(number) else None


def answered_since(session: Session, customer_id: int, since: datetime) -> bool:
    """Has an engineer written to the customer, on any of their incidents, after `since`?"""
    query = (
        select(IncidentMessage.id)
        .join(Incident, Incident.id == IncidentMessage.incident_id)
        .where(
            Incident.customer_id == customer_id, IncidentMessage.direction == "out", IncidentMessage.created_at > since
        )
        .limit(1)
    )
    return session.scalar(query) is not None


def own_incident(session: Session, customer: Customer | None, number: int) -> Incident | None:
    """The customer's incident `number`, or None — another customer's case looks exactly like a missing one."""
    incident = get_incident(session, number)
    if incident is None or customer is None or incident.customer_id != customer.id:
        return None
    return incident


def customer_incidents(session: Session, customer_id: int, states: tuple[str, ...]) -> list[Incident]:
    """A customer's incidents in `states`, oldest first."""
    return list(session.scalars(_INCIDENTS, {"customer_id": customer_id, "states": list(states)}))


def free_text_candidates(session: Session, settings: Settings, customer_id: int, now: datetime) -> list[Incident]:
    """The incidents a message without a number may be about: the open ones, else the recently resolved."""
    return customer_incidents(session, customer_id, (OPEN,)) or recently_resolved(
        session, customer_id, now, settings.calendar.tz
    )


class IncidentSummary(NamedTuple):
    """What a listing shows of an incident (read-only)."""

    id: int
    subject: str
    state: str
    due_at: datetime | None
    severity: int
    resolved_at: datetime | None


def latest_incidents(session: Session, customer_id: int, states: tuple[str, ...], limit: int) -> list[IncidentSummary]:
    """The customer's `limit` newest incidents in `states`, oldest first (cheap at any history).

    Plain rows, not ORM objects: `status` lists them for every customer who asks.
    """
    params = {"customer_id": customer_id, "limit": limit} | {f"state_{i}": state for i, state in enumerate(states)}
    rows = _latest_incidents(len(states)).rows(session.connection(), params)
    return [IncidentSummary(*row) for row in reversed(rows)]


def _awaiting_target_notice(*columns: object) -> Select:
    """Open cases with a due time not yet told missed, soonest due first."""
    return (
        select(*columns)
        .where(
            Incident.state == OPEN,
            Incident.due_at.is_not(None),
            or_(Incident.missed_for.is_(None), Incident.missed_for != Incident.due_at),
        )
        .order_by(Incident.due_at)
    )


class NoticeDue(NamedTuple):
    """What the watcher reads of a case before it locks any (`notices_ahead`)."""

    due_at: datetime
    warned_for: datetime | None
    missed_for: datetime | None
    assignee: str | None


def notices_ahead(bind: Engine | Connection) -> list[NoticeDue]:
    """`awaiting_target_notice`'s cases as they are now, read on a connection of their own, outside
    any transaction of the caller's and locking nothing: what the watcher prepares from them
    (looking up whom to mention, which may wait on a platform) holds no case."""
    with Session(bind) as peek:
        found = peek.execute(
            _awaiting_target_notice(Incident.due_at, Incident.warned_for, Incident.missed_for, Incident.assignee)
        )
        return [NoticeDue(*row) for row in found]


def awaiting_target_notice(session: Session) -> list[Incident]:
    """Open cases with a due time not yet told missed, soonest due first; locked, and those another
    replica's watcher holds left out (PostgreSQL)."""
    return list(session.scalars(for_update(_awaiting_target_notice(Incident), session, skip_locked=True)))


# Built once (`status` runs them for every message that asks).
_INCIDENTS = (
    select(Incident)
    .where(Incident.customer_id == bindparam("customer_id"), Incident.state.in_(bindparam("states", expanding=True)))
    .order_by(Incident.id)
)
_incident = Incident.__table__  # type: ignore[attr-defined]


@functools.cache
def _latest_incidents(states: int) -> Prepared:
    """The listing for `states` states (one IN list of that length; two lengths are in use)."""
    return Prepared(
        select(
            _incident.c.id,
            _incident.c.subject,
            _incident.c.state,
            _incident.c.due_at,
            _incident.c.severity,
            _incident.c.resolved_at,
        )
        .where(
            _incident.c.customer_id == bindparam("customer_id"),
            _incident.c.state.in_([bindparam(f"state_{i}") for i in range(states)]),
        )
        .order_by(_incident.c.id.desc())
        .limit(bindparam("limit"))
    )


def reopen_until(incident: Incident | IncidentSummary, tz: ZoneInfo) -> datetime | None:
    """Until when the customer may reopen `incident` at no charge (None unless it is resolved): the
    time of day it was resolved, `REOPEN_DAYS` calendar days later, in `tz` (the service time zone,
    `Settings.calendar.tz`): the deadline the customer is told, the same on the clock they read
    whether or not daylight saving time changed in between."""
    if incident.state != RESOLVED or incident.resolved_at is None:
        return None
    return days_later(incident.resolved_at, REOPEN_DAYS, tz)


def may_reopen(incident: Incident | IncidentSummary, at: datetime, tz: ZoneInfo) -> bool:
    """Whether the customer may reopen `incident` at no charge at `at` (`reopen_until`, exclusive)."""
    until = reopen_until(incident, tz)
    return until is not None and at < until


#: A wall-clock span of days is never a day longer than as many times 24 hours, whatever the zone's
#: clock changes (an hour, usually): resolutions this much further back are read, `may_reopen` decides.
_REOPEN_CUTOFF = timedelta(days=REOPEN_DAYS + 1)


def recently_resolved(session: Session, customer_id: int, now: datetime, tz: ZoneInfo) -> list[Incident]:
    """Resolved incidents that the customer may still reopen at no charge at `now` (`may_reopen`)."""
    found = session.scalars(
        select(Incident)
        .where(
            Incident.customer_id == customer_id,
            Incident.state == RESOLVED,
            Incident.resolved_at >= now - _REOPEN_CUTOFF,
        )
        .order_by(Incident.id)
    )
    return [incident for incident in found if may_reopen(incident, now, tz)]
