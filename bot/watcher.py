"""The response-target watcher: a warning in the case topic 4 business hours before a
target, and one when it is missed — each exactly once per due time, across restarts
(the due time a notice was posted for is stored on the incident)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlmodel import Session

from bot.context import Deployment
from bot.i18n import format_when
from bot.policy.calendar import BusinessCalendar
from bot.services.cases import OPEN, post_to_topic
from storage.models import Incident

WARN_BEFORE = timedelta(hours=4)


def check_targets(session: Session, deployment: Deployment, now: datetime) -> list[tuple[int, str]]:
    """Post the warnings that are due now; return (incident, "warning"|"missed") for each posted."""
    calendar = deployment.settings.calendar
    posted: list[tuple[int, str]] = []
    # Cases already told they missed this due time need nothing more: leave them out of the scan.
    query = (
        select(Incident)
        .where(
            Incident.state == OPEN,
            Incident.due_at.is_not(None),
            or_(Incident.missed_for.is_(None), Incident.missed_for != Incident.due_at),
        )
        .order_by(Incident.due_at)
    )
    if deployment.settings.database_url.startswith("postgresql"):
        query = query.with_for_update(skip_locked=True)
    for incident in session.scalars(query):
        due = incident.due_at
        assert due is not None
        if now >= due:
            if incident.missed_for != due:
                incident.missed_for = incident.warned_for = due
                post_to_topic(
                    session,
                    deployment,
                    incident,
                    f"🔴 Response target missed: the answer was due {_when(due, calendar)}.",
                    now,
                )
                posted.append((incident.id, "missed"))
        elif now < calendar.subtract_business_hours(due, WARN_BEFORE):
            # Sorted by due time and the threshold is monotonic in it: no later case needs a warning yet.
            break
        elif incident.warned_for != due:
            incident.warned_for = due
            post_to_topic(
                session, deployment, incident, f"🟠 Response due {_when(due, calendar)}: 4 business hours left.", now
            )
            posted.append((incident.id, "warning"))
    return posted


def _when(due: datetime, calendar: BusinessCalendar) -> str:
    # Formatted only for a warning that is posted: the scan runs every 30 seconds over
    # every open case, and the first format loads Babel's CLDR data (about 0.1 s).
    return format_when(due, "en", calendar.tz)
