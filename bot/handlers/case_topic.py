"""What the bot says in a case topic on its own, for the engineers: a case opened, its severity
changed, reopened, a message on a resolved case; and how a severity is named.

Engineers read English. Customer words in these lines (names, subjects, accounts) are made
inert; `DESKBOT_URGENT_NOTIFY` is the operator's own Zulip mention and is posted as it is,
so that it notifies.
"""

from __future__ import annotations

from datetime import datetime

from adapters.markup import inert
from bot.context import Context
from bot.i18n import format_when, render
from bot.services import attachments, incidents
from storage.models import Incident


def severity_text(lang: str, severity: int) -> str:
    """'1 (critical)' / '1 (crítica)'."""
    return f"{severity} ({render(lang, incidents.SEVERITIES[severity])})"


def opened(ctx: Context, incident: Incident, urgent: bool) -> None:
    """The line above a new case's first message: what it is, its severity, its due time."""
    customer = ctx.customer.name if ctx.customer is not None else "?"
    # `/reply` text reaches the customer as written: the engineer has to know to write Portuguese.
    language = " · the customer reads Portuguese: `/reply` in Portuguese" if ctx.lang == "pt" else ""
    _post(
        ctx,
        incident,
        f"📥 New case #{incident.id} from {inert(customer)}: {inert(incident.subject)}"
        f" · severity {severity_text('en', incident.severity)} · {_due(ctx, incident)}{language}",
        urgent=urgent,
    )


def severity_changed(ctx: Context, incident: Incident, change: incidents.SeverityChange, by: str) -> None:
    _post(
        ctx,
        incident,
        f"Severity now {severity_text('en', incident.severity)}, was {severity_text('en', change.before)};"
        f" set by {by} · {_due(ctx, incident)}",
        urgent=change.urgent,
    )


def reopened(ctx: Context, incident: Incident, by: str) -> None:
    _post(ctx, incident, f"🔁 Reopened by {by} · severity {incident.severity} · {_due(ctx, incident)}")


def stays_resolved(ctx: Context, incident: Incident, until: datetime | None) -> None:
    """A customer wrote on a resolved case (their words are quoted above): it stays resolved."""
    if until is not None:
        text = (
            "The case stays resolved: the customer was asked whether to reopen it"
            f" (free until {_when(ctx, until)}) or to open a new one."
        )
    else:
        text = "The case stays resolved: it was resolved more than 7 days ago, so the customer was offered a new one."
    _post(ctx, incident, text)


def files_left_out(ctx: Context, incident: Incident, channel: str, left_out: list[attachments.LeftOut]) -> None:
    """Files of an engineer's reply that did not go to the customer: named, with why, in the case topic
    (where the engineer wrote, when the case has none); the customer's message says so too."""
    text = attachments.left_out_notice(channel, [(left.row.name, left.row.size, left.why) for left in left_out])
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is None:
        ctx.reply_text(text)
    else:
        ctx.out.say(topic, text, incident_id=incident.id)


def files_not_fetched(ctx: Context) -> None:
    """Files an engineer's command linked that the bot could not fetch: neither sent nor kept, said
    back where they wrote, so that they can upload them again."""
    failed = attachments.unfetched(ctx.message)
    if failed:
        lines = ["⚠️ Could not fetch (neither sent nor kept; upload it again):"]
        lines += [f"- {inert(file.name) or 'file'}: {inert(file.failed or '')}" for file in failed]
        ctx.reply_text("\n".join(lines))


def done_elsewhere(ctx: Context, incident: Incident, line: str, words: str | None = None) -> None:
    """An engineer acted on the case from outside its topic (a DM to the bot, another topic): the
    topic says what was done, with the `words` the customer was sent, so that whoever reads the
    topic knows. In the topic itself, the engineer's command is there for all to see."""
    if ctx.topic_case == incident.id:
        return
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is not None:
        ctx.out.say(topic, line, quote=words, incident_id=incident.id)


def the_customer(ctx: Context) -> str:
    """Who acted, as a topic line names the customer."""
    name = ctx.customer.name if ctx.customer is not None else ctx.identity.address
    return f"the customer ({inert(name)})"


def _due(ctx: Context, incident: Incident) -> str:
    if incident.due_at is None:
        return "waiting on the customer"
    return f"response due {_when(ctx, incident.due_at)}"


def _when(ctx: Context, moment: datetime) -> str:
    return format_when(moment, "en", ctx.settings.calendar.tz)


def _post(ctx: Context, incident: Incident, text: str, urgent: bool = False) -> None:
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is None:
        return
    if urgent:
        text += f"\n🚨 Severity 1: {ctx.settings.urgent_notify}"
    ctx.out.say(topic, text, incident_id=incident.id)
