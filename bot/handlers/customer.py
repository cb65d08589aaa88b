"""Customer commands (SPEC §2), in direct messages to the bot."""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from bot.commands import Arg, command, commands
from bot.context import Context
from bot.i18n import _, format_day, format_hours, format_when
from bot.policy import NoCredit, pack_expires_on
from bot.services import cases, customers, drafts
from storage.models import IncidentMessage

CUSTOMER = "customer"
#: Incidents listed by `status` (the latest ones).
STATUS_LIST = 20
#: Latest messages shown by `status N`.
DETAIL_MESSAGES = 5


@command("help", "ajuda", "?", audience=CUSTOMER, help=_("this help"))
def show_help(ctx: Context) -> None:
    s = ctx.settings
    lines = [ctx.t(_("Commands (with or without a leading /):"))]
    other = "en" if ctx.lang == "pt" else "pt"
    for cmd in commands(CUSTOMER):
        also = f" ({cmd.name_in(other)})" if cmd.name_in(other) != cmd.name_in(ctx.lang) else ""
        lines.append(f"• {cmd.usage(slash=False, lang=ctx.lang)}{also} — {ctx.t(cmd.help)}")
    lines.append(ctx.t(_("• #N <text> — add a message to incident N")))
    lines.append(ctx.t(_("Any other message goes to your open incident.")))
    lines.append(
        ctx.t(
            _("Service hours: {hours} ({zone} time), except public holidays. We answer within {days} business days."),
            hours=format_hours(s.calendar.hours, ctx.lang),
            zone=s.timezone,
            days=s.response_target,
        )
    )
    lines.append(ctx.t(_("Documentation: {docs} · Forum: {forum}"), docs=s.docs_url, forum=s.forum_url))
    ctx.reply_text("\n".join(lines))


@command(
    "open",
    "abrir",
    "new",
    "novo",
    audience=CUSTOMER,
    args=(Arg("text", "text", required=False, label=_("text")),),
    help=_("open a new incident with this text (uses one credit)"),
)
def open_incident(ctx: Context, text: str | None) -> None:
    assert ctx.customer is not None
    draft = drafts.current(ctx.session, ctx.identity.id, ctx.now)
    if not text and draft is None:
        ctx.reply(_("Tell us what the incident is about: open <your question>."))
        return
    body = "\n\n".join(part for part in (draft.text if draft else None, text) if part)
    charged = customers.take_credit(ctx.session, ctx.customer.id, today(ctx))
    if isinstance(charged, NoCredit):
        drafts.replace(ctx.session, ctx.identity.id, body, ctx.now)
        no_credit_answer(ctx, charged)
        return
    drafts.discard(ctx.session, draft)
    incident = cases.open_incident(ctx, body, charged.id)
    summary = customers.credit_summary(ctx.session, ctx.customer.id, today(ctx))
    calendar = ctx.settings.calendar
    lines = [
        ctx.t(_("Incident #{number} is open: {subject}"), number=incident.id, subject=incident.subject),
        ctx.t(
            _("One credit used; {left} left. This pack is valid until {expiry}."),
            left=summary.total_left,
            expiry=format_day(pack_expires_on(charged.purchased), ctx.lang),
        ),
        ctx.t(_("We will answer by {due}."), due=format_when(incident.due_at, ctx.lang, calendar.tz)),
    ]
    if not calendar.is_open(ctx.now):
        lines.append(
            ctx.t(
                _("The team is away now and back at {back}."),
                back=format_when(calendar.next_opening(ctx.now), ctx.lang, calendar.tz),
            )
        )
    lines.append(ctx.t(_("Anything you write now is added to this incident.")))
    ctx.reply_text("\n".join(lines))


def no_credit_answer(ctx: Context, why: NoCredit) -> None:
    reasons = {
        "none_bought": _("You have no support credits yet."),
        "all_used": _("All your support credits are used."),
        "all_expired": _("Your support credits have expired."),
    }
    ctx.reply_text(
        "\n".join(
            [
                ctx.t(reasons[why.reason]),
                ctx.t(_("Nothing was opened and your message is kept as a draft.")),
                ctx.t(_("Buy more at {url}, then reply open."), url=ctx.settings.purchase_url),
            ]
        )
    )


@command(
    "status",
    "estado",
    audience=CUSTOMER,
    args=(Arg("number", "case", required=False, label=_("number")),),
    help=_("your incidents, or one incident in detail"),
)
def status(ctx: Context, number: int | None) -> None:
    assert ctx.customer is not None
    if number is not None:
        return _status_one(ctx, number)
    incidents = cases.latest_incidents(ctx.session, ctx.customer.id, (cases.OPEN, cases.RESOLVED), STATUS_LIST)
    if not incidents:
        ctx.reply(_("You have no open incidents."))
        return
    lines = [ctx.t(_("Your incidents:"))]
    for incident in incidents:
        lines.append(
            ctx.t(
                _("#{number} {subject} — {state}; next answer due: {due}"),
                number=incident.id,
                subject=incident.subject,
                state=cases.state_text(incident, ctx.lang),
                due=cases.due_text(incident, ctx.lang, ctx),
            )
        )
    ctx.reply_text("\n".join(lines))


def _status_one(ctx: Context, number: int) -> None:
    incident = cases.own_incident(ctx, number)
    if incident is None:
        ctx.reply(_("You have no incident #{number}."), number=number)
        return
    lines = [
        ctx.t(_("Incident #{number}: {subject}"), number=incident.id, subject=incident.subject),
        ctx.t(_("State: {state}"), state=cases.state_text(incident, ctx.lang)),
        ctx.t(_("Opened: {when}"), when=format_when(incident.opened_at, ctx.lang, ctx.settings.calendar.tz)),
        ctx.t(_("Next answer due: {due}"), due=cases.due_text(incident, ctx.lang, ctx)),
    ]
    messages = list(
        ctx.session.scalars(
            select(IncidentMessage)
            .where(IncidentMessage.incident_id == incident.id, IncidentMessage.direction.in_(("in", "out")))
            .order_by(IncidentMessage.id.desc())
            .limit(DETAIL_MESSAGES)
        )
    )
    if messages:
        lines.append(ctx.t(_("Latest messages:")))
    for msg in reversed(messages):
        who = ctx.t(_("you")) if msg.direction == "in" else ctx.t(_("support"))
        when = format_when(msg.created_at, ctx.lang, ctx.settings.calendar.tz)
        lines.append(f"— {who}, {when}: {_excerpt(msg.body)}")
    ctx.reply_text("\n".join(lines))


def _excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@command("credits", "creditos", "credit", audience=CUSTOMER, help=_("credits left per pack and when each expires"))
def credits(ctx: Context) -> None:
    assert ctx.customer is not None
    summary = customers.credit_summary(ctx.session, ctx.customer.id, today(ctx))
    if not summary.packs:
        ctx.reply(_("You have no support credits yet. Buy them at {url}."), url=ctx.settings.purchase_url)
        return
    lines = [ctx.t(_("Credits left: {left}"), left=summary.total_left)]
    for status in summary.packs:
        template = (
            _("• pack of {size} bought {bought}: {left} left, valid until {expiry}")
            if status.valid
            else _("• pack of {size} bought {bought}: expired on {expiry}")
        )
        lines.append(
            ctx.t(
                template,
                size=status.pack.incidents,
                bought=format_day(status.pack.purchased, ctx.lang),
                left=status.left,
                expiry=format_day(status.expires_on, ctx.lang),
            )
        )
    ctx.reply_text("\n".join(lines))


@command(
    "close",
    "fechar",
    audience=CUSTOMER,
    args=(Arg("number", "case", label=_("number")),),
    help=_("close one of your incidents"),
)
def close(ctx: Context, number: int) -> None:
    incident = cases.own_incident(ctx, number)
    if incident is None:
        ctx.reply(_("You have no incident #{number}."), number=number)
        return
    if incident.state == cases.CLOSED:
        ctx.reply(_("Incident #{number} is already closed."), number=number)
        return
    cases.record(ctx.session, incident, ctx.identity.address, "closed by customer", ctx.now, to_state=cases.CLOSED)
    incident.closed_at, incident.due_at = ctx.now, None
    cases.post_to_topic(ctx.session, ctx.deployment, incident, "The customer closed this case.", ctx.now)
    ctx.reply(_("Incident #{number} is closed. Thank you!"), number=number)


@command(
    "link",
    "ligar",
    audience=CUSTOMER,
    args=(Arg("code", "word", label=_("code")),),
    help=_("link this account to your customer record with a one-time code"),
)
def link(ctx: Context, code: str) -> None:
    if ctx.customer is not None:
        ctx.reply(_("This account is already linked to {name}."), name=ctx.customer.name)
        return
    outcome = customers.redeem_code(ctx.session, ctx.identity, code, ctx.now)
    if outcome == "throttled":
        ctx.reply(_("Too many wrong codes. Please try again in an hour."))
    elif outcome == "invalid":
        ctx.reply(_("That code is not valid: it may be mistyped, used or expired."))
    else:
        ctx.customer = outcome
        ctx.identity.lang = None
        summary = customers.credit_summary(ctx.session, outcome.id, today(ctx))
        ctx.reply(
            _("Welcome, {name}! This account is now linked. Credits left: {left}. Write help to see what I can do."),
            name=outcome.name,
            left=summary.total_left,
        )


@command(
    "lang",
    "idioma",
    "language",
    "lingua",
    audience=CUSTOMER,
    args=(Arg("code", "choice", choices=("en", "pt")),),
    help=_("reply language: en or pt"),
)
def lang(ctx: Context, code: str) -> None:
    if ctx.customer is not None:
        ctx.customer.lang = code
    ctx.identity.lang = code
    ctx.reply(
        _("I will answer in English from now on.") if code == "en" else _("I will answer in Portuguese from now on.")
    )


def today(ctx: Context) -> date:
    """The service time zone's date (pack validity is counted in it)."""
    return ctx.now.astimezone(ctx.settings.calendar.tz).date()
