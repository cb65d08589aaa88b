"""What the engineers are told in the case topics about deliveries that went wrong.

The dispatcher (bot.dispatcher) sends; when a delivery goes wrong in a way someone must act on, the
case topic of its incident says so, in the transaction that records what happened: a message that
will never reach the customer, a person copied on it whom the platform refused, files the channel
could not carry after all, a recipient refusing it for now. A post that the case topic itself refused
for good is told in a topic of its own (`ALERTS_TOPIC`).

Each function writes its notice through `Outgoing` and says whether it wrote one (the caller then
wakes the case channel's loop). Addresses, the platforms' error texts and the start of a message not
delivered are untrusted: they are shown as inline code, never as markup. An engineer's answer that
will never reach the customer also gives the case its response clock back (`answer_lost`): the
customer is still waiting for an answer; and `/case` shows it as not delivered (`undelivered`).

An answer (`IncidentMessage` "out") and the outbox row that carries it to the customer are written
together by `/reply` (bot.handlers.engineer.reply), at the same time, and are linked by that:
the row of the incident, direct, a person's words, to one of the customer's accounts on the answer's
channel, written when the answer was (`_answer_rows`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, select
from sqlmodel import Session

from adapters.channel import Outbound
from adapters.markup import inert
from bot.config import Settings
from bot.i18n import _, format_when, render
from bot.services import attachments, incidents
from bot.services.outgoing import Outgoing, Topic
from storage.models import Identity, Incident, IncidentMessage, Outbox

log = logging.getLogger("deskbot.dispatcher")  # the dispatcher's deliveries, in its log

#: Where the engineers hear of a post that no case topic would take (a topic name the
#: platform refuses, a case topic gone): a topic of the support stream of its own.
ALERTS_TOPIC = "deskbot alerts"
#: A message that could not be delivered is named by its start, this many characters at most: enough
#: to tell which answer it was, short enough for one line of the notice.
QUOTED_START = 80


def case_topic(session: Session, case_channel: str | None, message: Outbound) -> tuple[Incident, Topic] | None:
    """The incident a direct row is about and its case topic, if it has one."""
    incident = session.get(Incident, message.case) if message.case is not None else None
    if case_channel is None or incident is None or not incident.topic:
        return None
    return incident, Topic(case_channel, incident.topic)


def refused_copies(
    session: Session, now: datetime, case_channel: str | None, message: Outbound, refused: dict[str, str]
) -> bool:
    """Each person copied on `message` whom the platform refused for good: one notice per address."""
    case = case_topic(session, case_channel, message)
    if case is None:
        return False
    (incident, topic), out = case, Outgoing(session, now)
    for address, reason in refused.items():
        who, why = inert(address[:200]), inert(reason[:200])
        text = (
            f"⚠ The answer was not delivered to {who} (copied on this incident): the {message.channel} "
            f"server refused it{f' ({why})' if why else ''}. Remove them with /cc remove {who}, "
            "or correct the address."
        )
        out.say(topic, text, incident_id=incident.id)
    return True


def unsent_files(
    session: Session, now: datetime, case_channel: str | None, message: Outbound, unsent: dict[int, str]
) -> bool:
    """The files the channel could not carry after all (`Sent.unsent_files`; the customer's message
    named them). Without a case topic they are only logged."""
    files = {file.id: file for file in message.files}
    named = [(files[i].name, files[i].size, inert(why[:200])) for i, why in unsent.items() if i in files]
    case = case_topic(session, case_channel, message)
    if case is None or not named:
        log.warning("outbox %d went without %d of its files: %s", message.outbox_id, len(unsent), unsent)
        return False
    (incident, topic), out = case, Outgoing(session, now)
    out.say(topic, attachments.left_out_notice(message.channel, named, after_all=True), incident_id=incident.id)
    return True


def not_reached_yet(
    session: Session, now: datetime, case_channel: str | None, message: Outbound, error: str, give_up_days: int
) -> bool:
    """The row's recipient refuses it for now (a full mailbox): told at its first refusal."""
    case = case_topic(session, case_channel, message)
    if case is None:
        return False
    who, why = inert((message.recipient or "")[:200]), inert(error[:200])
    text = (
        f"⚠ The answer has not reached {who} yet: the {message.channel} server refuses it for now "
        f"({why}). deskbot tries again for up to {give_up_days} days, and says so here "
        "if it gives up."
    )
    Outgoing(session, now).say(case[1], text, incident_id=case[0].id)
    return True


def failed_for_good(
    session: Session,
    now: datetime,
    case_channel: str | None,
    row: Outbox,
    error: str,
    *,
    settings: Settings | None = None,
) -> bool:
    """A row marked failed: a message to a customer is told in its case topic, a post its case topic
    refused in `ALERTS_TOPIC`; anything else (a direct row about no case) only in the log. An
    engineer's answer gives the case its due time back (`answer_lost`, with `settings`)."""
    incident = session.get(Incident, row.incident_id) if row.incident_id else None
    due = answer_lost(session, settings, row, incident) if settings is not None and incident is not None else None
    if case_channel is None:
        return False
    # Platform error texts may echo what was refused: made inert like every other echoed text.
    reason = inert(" ".join(error.split())[:200]) or render("en", _("(the platform gave no reason)"))
    if row.kind == "direct" and incident is not None and incident.topic:
        lines = [
            render(
                "en",
                _("⚠ Could not deliver a message to the customer via {channel}: {reason}"),
                channel=row.channel,
                reason=reason,
            )
        ]
        # Which one: several answers may be on their way, and the customer's words may be quoted in it.
        start = inert(row.text, QUOTED_START)
        if start:
            lines.append(render("en", _("The message began: {start}"), start=start))
        if due is not None and settings is not None:
            lines.append(
                render(
                    "en",
                    _("The customer did not get this answer, so the case waits on the team again: response due {due}."),
                    due=format_when(due, "en", settings.calendar.tz),
                )
            )
        text = "\n".join(lines)
        topic = incident.topic
    elif row.kind == "topic" and row.topic != ALERTS_TOPIC:
        case = f"case #{incident.id}" if incident is not None else "a case topic"
        text = f"⚠ A message for {case} could not be posted in its topic, for good: {reason}"
        topic = ALERTS_TOPIC
    else:
        return False
    Outgoing(session, now).say(
        Topic(case_channel, topic), text, incident_id=incident.id if incident is not None else None
    )
    return True


def answer_lost(session: Session, settings: Settings, row: Outbox, incident: Incident) -> datetime | None:
    """`row` failed for good: if it carried an engineer's answer (`/reply`) and no other answer since
    the response clock started reached the customer or is on its way, the clock runs again
    (`incidents.resume_clock`; SPEC §3: an answer stops it, and this one never arrived). The due
    time, when it came back."""
    if row.kind != "direct" or row.automatic or incident.clock_from is None:
        return None
    answer = and_(
        IncidentMessage.incident_id == incident.id,
        IncidentMessage.direction == "out",
        IncidentMessage.created_at >= incident.clock_from,
    )
    was_answer = select(IncidentMessage.id).where(
        answer, IncidentMessage.created_at == row.created_at, IncidentMessage.channel == row.channel
    )
    other_answer = exists().where(
        answer,
        _answer_rows(incident),
        Outbox.created_at == IncidentMessage.created_at,
        Outbox.id != row.id,
        Outbox.state != "failed",
    )
    if session.scalar(was_answer.limit(1)) is None or session.scalar(select(other_answer)):
        return None
    return incidents.resume_clock(settings, incident)


def undelivered(session: Session, incident: Incident, messages: Sequence[IncidentMessage]) -> dict[int, str]:
    """Of `messages` (of `incident`), the answers whose row has not reached the customer, by message
    id: to the row's state, "failed" (it never will: `failed_for_good` told the topic) or "pending"
    (not yet: its channel is unreachable, or the row is waiting for a retry)."""
    answers = [message for message in messages if message.direction == "out"]
    if not answers:
        return {}
    rows = session.execute(
        select(Outbox.created_at, Outbox.channel, Outbox.state).where(
            _answer_rows(incident),
            Outbox.created_at.in_({answer.created_at for answer in answers}),
            Outbox.state != "sent",
        )
    )
    states = {(at, channel): state for at, channel, state in rows}
    return {
        answer.id: states[answer.created_at, answer.channel]
        for answer in answers
        if answer.id is not None and (answer.created_at, answer.channel) in states
    }


def _answer_rows(incident: Incident) -> ColumnElement[bool]:
    """The outbox rows that carry a person's words to the customer of `incident`: an answer's row
    among them, found by its time (see the module's docstring). To the customer's accounts only: the
    engineer's own receipt of a `/reply` sent from a DM ("Sent to the customer of #1") is a person's
    row about the incident too, written at the same time, on the same channel when both are on Zulip."""
    return and_(
        Outbox.incident_id == incident.id,
        Outbox.kind == "direct",
        Outbox.automatic.is_(False),
        exists().where(
            Identity.customer_id == incident.customer_id,
            Identity.channel == Outbox.channel,
            Identity.address == Outbox.recipient,
        ),
    )
