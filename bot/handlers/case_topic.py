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
from bot.i18n import format_day, format_when, render
from bot.services import attachments, credits, incidents
from storage.models import Incident, IncidentState


def severity_text(lang: str, severity: int) -> str:
    """'1 (critical)' / '1 (crítica)'."""
    return f"{severity} ({render(lang, incidents.SEVERITIES[severity])})"


#: A new case's topic names this many of the customer's other cases, the newest.
EARLIER_CASES_SHOWN = 5


def opened(ctx: Context, incident: Incident, urgent: bool) -> None:
    """The line above a new case's first message: what it is, its severity, its due time; then what
    an engineer would otherwise ask `/customer show` for: the customer's credits left, with when
    they expire, and their latest other cases."""
    customer = ctx.customer.name if ctx.customer is not None else "?"
    # `/reply` text reaches the customer as written: the engineer has to know to write Portuguese.
    language = " · the customer reads Portuguese: `/reply` in Portuguese" if ctx.lang == "pt" else ""
    lines = [
        f"📥 New case #{incident.id} from {inert(customer)}: {inert(incident.subject)}"
        f" · severity {severity_text('en', incident.severity)} · {_due(ctx, incident)}{language}",
        _credits_left(ctx, incident.customer_id),
        *_earlier_cases(ctx, incident),
    ]
    _post(ctx, incident, "\n".join(lines), urgent=urgent)


def _credits_left(ctx: Context, customer_id: int) -> str:
    """'credits left: 4 (valid until 7 Dec 2027 inclusive)', each valid pack's with its last day."""
    summary = credits.credit_summary(ctx.session, customer_id, ctx.today)
    packs = [status for status in summary.packs if status.valid and status.left > 0]
    if len(packs) == 1:
        expiry = f" (valid until {format_day(packs[0].expires_on, 'en')} inclusive)"
    elif packs:
        each = ", ".join(f"{status.left} valid until {format_day(status.expires_on, 'en')}" for status in packs)
        expiry = f" ({each}, inclusive)"
    else:
        expiry = ""
    return f"💳 credits left: {summary.total_left}{expiry}"


def _earlier_cases(ctx: Context, incident: Incident) -> list[str]:
    """The customer's other cases, the newest `EARLIER_CASES_SHOWN`, newest first."""
    found = incidents.latest_incidents(ctx.session, incident.customer_id, tuple(IncidentState), EARLIER_CASES_SHOWN + 2)
    others = [other for other in reversed(found) if other.id != incident.id]
    if not others:
        return ["🗂 no earlier cases"]
    lines = ["🗂 earlier cases, newest first:"]
    lines += [f"• #{other.id} {inert(other.subject)} · {other.state}" for other in others[:EARLIER_CASES_SHOWN]]
    if len(others) > EARLIER_CASES_SHOWN:
        lines.append(f"… and older ones: `/customer show {incident.customer_id}`")
    return lines


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
