"""The response-target watcher: a warning in the case topic 4 business hours before a
target (saying how much service time is left: less, when a raised severity brought the
target nearer), and one when it is missed — each exactly once per due time, across restarts
(the due time a notice was posted for is stored on the incident). Each mentions the case's
assignee, so that it notifies them (`Deployment.mention`); an unassigned case's, nobody.

A mention may be looked up on the platform (Zulip asks its server, for up to seconds), so
every look-up is made before any case is locked: the cases due a notice are read first, on
a connection of their own, and their assignees' mentions resolved; only then are the cases
locked and the notices posted."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, Engine

from bot.deployment import Deployment
from bot.i18n import _, format_when, render
from bot.policy.calendar import BusinessCalendar
from bot.services.incidents import SEVERITIES, awaiting_target_notice, case_topic, notices_ahead
from bot.services.outgoing import Outgoing
from storage.models import Incident

WARN_BEFORE = timedelta(hours=4)

Notice = Literal["missed", "warning"]


def check_targets(out: Outgoing, deployment: Deployment) -> list[tuple[int, str]]:
    """Post the warnings that are due at `out.now`; return (incident, "warning"|"missed") for each posted.

    Called before `out.session` has locked anything (its transaction holds no case while the
    mentions are looked up). A case assigned to someone else between the look-ups and the lock
    gets its notice in the next pass, mentioning who holds it then."""
    session, now = out.session, out.now
    calendar = deployment.settings.calendar
    mentions = _mentions(deployment, now, calendar, session.get_bind())
    posted: list[tuple[int, str]] = []
    for incident in awaiting_target_notice(session):
        due = incident.due_at
        assert due is not None
        notice = _notice(due, incident.warned_for, incident.missed_for, now, calendar)
        if notice == "later":
            # Sorted by due time and the threshold is monotonic in it: no later case needs a warning yet.
            break
        if notice is None:
            continue
        mention = mentions.get(incident.assignee) if incident.assignee else ""
        if mention is None:
            continue  # assigned since the look-ups: its notice waits for the next pass
        if notice == "missed":
            incident.missed_for = incident.warned_for = due
            text = render(
                "en",
                _("🔴 Response target missed: the answer was due {due}. {severity}"),
                due=_when(due, calendar),
                severity=_severity(incident),
            )
        else:
            incident.warned_for = due
            # What is left, not `WARN_BEFORE`: a raised severity that brought the due time nearer
            # has the case warned at once, with less time left than that.
            text = render(
                "en",
                _("🟠 Response due {due}: {left} of service time left. {severity}"),
                due=_when(due, calendar),
                left=service_time(calendar.business_time_between(now, due)),
                severity=_severity(incident),
            )
        _post(out, deployment, incident, text, mention)
        posted.append((incident.id, notice))
    return posted


def _notice(
    due: datetime, warned_for: datetime | None, missed_for: datetime | None, now: datetime, calendar: BusinessCalendar
) -> Notice | Literal["later"] | None:
    """The notice a case due at `due` is owed now; "later" when its warning is not due yet, None
    when it has had the notice it is owed."""
    if now >= due:
        return "missed" if missed_for != due else None
    if now < calendar.subtract_business_hours(due, WARN_BEFORE):
        return "later"
    return "warning" if warned_for != due else None


def _mentions(
    deployment: Deployment, now: datetime, calendar: BusinessCalendar, bind: Engine | Connection
) -> dict[str, str]:
    """The mention of the assignee of each case owed a notice now, by the name they work under
    (`Deployment.mention`: "" for one the platform cannot place)."""
    assignees: set[str] = set()
    for ahead in notices_ahead(bind):
        notice = _notice(ahead.due_at, ahead.warned_for, ahead.missed_for, now, calendar)
        if notice == "later":
            break
        if notice is not None and ahead.assignee:
            assignees.add(ahead.assignee)
    return {assignee: deployment.mention(assignee) for assignee in sorted(assignees)}


def _post(out: Outgoing, deployment: Deployment, incident: Incident, text: str, mention: str) -> None:
    topic = case_topic(deployment, incident)
    if topic is not None:
        # The bot's own words only: no customer text is near the mention.
        out.say(topic, f"{text} {mention}" if mention else text, incident_id=incident.id)


def _severity(incident: Incident) -> str:
    return render(
        "en",
        _("(Severity {severity}, {name}.)"),
        severity=incident.severity,
        name=render("en", SEVERITIES[incident.severity]),
    )


def service_time(left: timedelta, lang: str = "en") -> str:
    """Business time as people say it: "4 h", "1 h 30 min", "25 min". Whole minutes, rounded up, so
    that a warning never says less is left than is (nor "0 min" while a second remains)."""
    hours, minutes = divmod(max(0, math.ceil(left / timedelta(minutes=1))), 60)
    if hours and minutes:
        return render(lang, _("{hours} h {minutes} min"), hours=hours, minutes=minutes)
    if hours:
        return render(lang, _("{hours} h"), hours=hours)
    return render(lang, _("{minutes} min"), minutes=minutes)


def _when(due: datetime, calendar: BusinessCalendar) -> str:
    # Formatted only for a warning that is posted: the scan runs every 30 seconds over
    # every open case, and the first format loads Babel's CLDR data (about 0.1 s).
    return format_when(due, "en", calendar.tz)
