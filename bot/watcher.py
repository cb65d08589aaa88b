"""The response-target watcher: a warning in the case topic 4 business hours before a
target, and one when it is missed — each exactly once per due time, across restarts
(the due time a notice was posted for is stored on the incident). Each mentions the case's
assignee, so that it notifies them (`Deployment.mention`); an unassigned case's, nobody."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.deployment import Deployment
from bot.i18n import format_when
from bot.policy.calendar import BusinessCalendar
from bot.services.incidents import SEVERITIES, awaiting_target_notice, case_topic
from bot.services.outgoing import Outgoing
from storage.models import Incident

WARN_BEFORE = timedelta(hours=4)


def check_targets(out: Outgoing, deployment: Deployment) -> list[tuple[int, str]]:
    """Post the warnings that are due at `out.now`; return (incident, "warning"|"missed") for each posted."""
    session, now = out.session, out.now
    calendar = deployment.settings.calendar
    posted: list[tuple[int, str]] = []
    for incident in awaiting_target_notice(session):
        due = incident.due_at
        assert due is not None
        if now >= due:
            if incident.missed_for != due:
                incident.missed_for = incident.warned_for = due
                _post(
                    out,
                    deployment,
                    incident,
                    f"🔴 Response target missed: the answer was due {_when(due, calendar)}. {_severity(incident)}",
                )
                posted.append((incident.id, "missed"))
        elif now < calendar.subtract_business_hours(due, WARN_BEFORE):
            # Sorted by due time and the threshold is monotonic in it: no later case needs a warning yet.
            break
        elif incident.warned_for != due:
            incident.warned_for = due
            _post(
                out,
                deployment,
                incident,
                f"🟠 Response due {_when(due, calendar)}: 4 business hours left. {_severity(incident)}",
            )
            posted.append((incident.id, "warning"))
    return posted


def _post(out: Outgoing, deployment: Deployment, incident: Incident, text: str) -> None:
    topic = case_topic(deployment, incident)
    if topic is not None:
        # The bot's own words only: no customer text is near the mention.
        mention = deployment.mention(incident.assignee) if incident.assignee else ""
        out.say(topic, f"{text} {mention}" if mention else text, incident_id=incident.id)


def _severity(incident: Incident) -> str:
    return f"(Severity {incident.severity}, {SEVERITIES[incident.severity]}.)"


def _when(due: datetime, calendar: BusinessCalendar) -> str:
    # Formatted only for a warning that is posted: the scan runs every 30 seconds over
    # every open case, and the first format loads Babel's CLDR data (about 0.1 s).
    return format_when(due, "en", calendar.tz)
