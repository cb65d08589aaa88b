"""Engineer commands (SPEC §3), in a case topic (number optional) or a DM to the bot."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from bot.commands import Arg, command, commands
from bot.context import Context
from bot.handlers.customer import today
from bot.i18n import _, format_when, render
from bot.markup import inert
from bot.services import cases, customers
from storage.models import Customer, Identity, Incident, IncidentEvent

ENGINEER = "engineer"
CASE = Arg("number", "case")


def _case(ctx: Context, number: int) -> Incident | None:
    incident = cases.get_incident(ctx.session, number)
    if incident is None:
        ctx.reply(_("There is no case #{number}."), number=number)
    else:
        ctx.incident_id = incident.id
    return incident


def _customer(ctx: Context, ref: str) -> Customer | None:
    customer = customers.find_customer(ctx.session, ref)
    if customer is None:
        ctx.reply(_("No customer {who}."), who=inert(ref))
    return customer


@command("help", "ajuda", audience=ENGINEER, help=_("the engineer commands"))
def show_help(ctx: Context) -> None:
    lines = [ctx.t(_("Engineer commands (in a case topic the case number may be left out):"))]
    lines += [f"• `{cmd.usage(slash=True)}` — {ctx.t(cmd.help)}" for cmd in commands(ENGINEER)]
    ctx.reply_text("\n".join(lines))


@command(
    "reply",
    "responder",
    audience=ENGINEER,
    args=(CASE, Arg("text", "text")),
    help=_("send text to the customer on their latest channel"),
)
def reply(ctx: Context, number: int, text: str) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    channel = cases.engineer_reply(ctx, incident, text)
    if channel is None:
        ctx.reply(_("Case #{number} has no customer message to answer, so nothing was sent."), number=number)
    elif ctx.message.kind != "topic":
        ctx.reply(_("Sent to the customer of #{number} via {channel}."), number=number, channel=channel)


@command("note", "nota", audience=ENGINEER, args=(CASE, Arg("text", "text")), help=_("internal note on the case"))
def note(ctx: Context, number: int, text: str) -> None:
    from storage.models import IncidentMessage

    incident = _case(ctx, number)
    if incident is None:
        return
    ctx.session.add(
        IncidentMessage(incident_id=incident.id, direction="note", author=ctx.engineer, body=text, created_at=ctx.now)
    )
    cases.record(ctx.session, incident, ctx.engineer, "note", ctx.now)
    ctx.reply(_("Note saved on #{number}."), number=number)


@command(
    "assign", "atribuir", audience=ENGINEER, args=(CASE, Arg("who", "word")), help=_("set the assignee: me or an email")
)
def assign(ctx: Context, number: int, who: str) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    assignee = ctx.engineer if who.lower() in ("me", "eu") else who.lower()
    engineers = ctx.settings.engineer_emails
    if engineers and assignee not in engineers and assignee != ctx.engineer:
        ctx.reply(_("{who} is not an engineer (see DESKBOT_ENGINEERS)."), who=inert(assignee))
        return
    incident.assignee = assignee
    cases.record(ctx.session, incident, ctx.engineer, "assigned", ctx.now, detail=assignee)
    ctx.reply(_("#{number} is assigned to {who}."), number=number, who=inert(assignee))


@command("bug", audience=ENGINEER, args=(CASE,), help=_("caused by our bug: no charge, the credit goes back"))
def bug(ctx: Context, number: int) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    if not incident.chargeable:
        ctx.reply(_("#{number} is already marked as our bug."), number=number)
        return
    incident.chargeable = False
    if incident.pack_id is not None:
        customers.return_credit(ctx.session, incident.pack_id)
    cases.record(ctx.session, incident, ctx.engineer, "marked as vendor bug", ctx.now, detail="credit returned")
    lang = cases.customer_lang(ctx.session, incident)
    cases.tell_customer(
        ctx.session,
        incident,
        render(
            lang,
            _("Incident #{number} was caused by a bug in our software: there is no charge and your credit is back."),
            number=incident.id,
        ),
        ctx.now,
    )
    ctx.reply(_("#{number} is marked as our bug; the credit went back to its pack."), number=number)


@command(
    "resolve",
    "resolver",
    audience=ENGINEER,
    args=(CASE, Arg("summary", "text", required=False)),
    help=_("mark resolved and tell the customer"),
)
def resolve(ctx: Context, number: int, summary: str | None) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    if incident.state != cases.OPEN:
        ctx.reply(_("#{number} is {state}, not open."), number=number, state=incident.state)
        return
    cases.record(ctx.session, incident, ctx.engineer, "resolved", ctx.now, to_state=cases.RESOLVED, detail=summary)
    incident.resolved_at, incident.due_at = ctx.now, None
    lang = cases.customer_lang(ctx.session, incident)
    text = render(lang, _("Incident #{number} is resolved."), number=incident.id)
    if summary:
        text += "\n" + summary
    text += "\n" + render(lang, _("If it is not, just write here within 7 days and it reopens at no charge."))
    cases.tell_customer(ctx.session, incident, text, ctx.now)
    ctx.reply(_("#{number} is resolved; the customer was told."), number=number)


@command("reopen", "reabrir", audience=ENGINEER, args=(CASE,), help=_("reopen a resolved or closed case"))
def reopen(ctx: Context, number: int) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    if incident.state == cases.OPEN:
        ctx.reply(_("#{number} is already open."), number=number)
        return
    cases.record(ctx.session, incident, ctx.engineer, "reopened", ctx.now, to_state=cases.OPEN)
    incident.resolved_at = incident.closed_at = None
    incident.due_at = ctx.settings.calendar.due_at(ctx.now, ctx.settings.response_target)
    ctx.reply(
        _("#{number} is open again; next response due {due}."),
        number=number,
        due=format_when(incident.due_at, "en", ctx.settings.calendar.tz),
    )


@command("case", "caso", audience=ENGINEER, args=(CASE,), help=_("summary of one case"))
def case(ctx: Context, number: int) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    customer = ctx.session.get(Customer, incident.customer_id)
    tz = ctx.settings.calendar.tz
    lines = [
        f"**#{incident.id}** {inert(incident.subject)}",
        f"customer: {inert(customer.name) if customer else '?'} · state: {incident.state} · "
        f"chargeable: {'yes' if incident.chargeable else 'no (our bug)'} · assignee: {inert(incident.assignee or '') or '—'}",
        f"opened {format_when(incident.opened_at, 'en', tz)} · due: "
        + (format_when(incident.due_at, "en", tz) if incident.due_at else "—"),
    ]
    events = ctx.session.scalars(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident.id).order_by(IncidentEvent.id.desc()).limit(8)
    )
    for event in reversed(list(events)):
        lines.append(
            f"— {format_when(event.at, 'en', tz)} {inert(event.actor)}: {event.action}"
            + (f" ({inert(event.detail)})" if event.detail else "")
        )
    ctx.reply_text("\n".join(lines))


@command(
    "cases",
    "casos",
    audience=ENGINEER,
    args=(Arg("which", "choice", required=False, choices=("open", "mine", "overdue", "unassigned", "all")),),
    help=_("list cases with their due times"),
)
def list_cases(ctx: Context, which: str | None) -> None:
    which = which or "open"
    query = select(Incident).order_by(Incident.due_at.is_(None), Incident.due_at, Incident.id)
    if which != "all":
        query = query.where(Incident.state == cases.OPEN)
    if which == "mine":
        query = query.where(Incident.assignee == ctx.engineer)
    elif which == "unassigned":
        query = query.where(Incident.assignee.is_(None))
    elif which == "overdue":
        query = query.where(Incident.due_at < ctx.now)
    found = list(ctx.session.scalars(query.limit(50)))
    if not found:
        ctx.reply(_("No {which} cases."), which=which)
        return
    tz = ctx.settings.calendar.tz
    lines = [f"{which} cases:"]
    for incident in found:
        due = format_when(incident.due_at, "en", tz) if incident.due_at else "—"
        late = " **overdue**" if incident.due_at and incident.due_at < ctx.now else ""
        assignee = inert(incident.assignee or "") or "unassigned"
        lines.append(f"• #{incident.id} {inert(incident.subject)} · {incident.state} · due {due}{late} · {assignee}")
    ctx.reply_text("\n".join(lines))


@command(
    "customer",
    "cliente",
    sub="add",
    audience=ENGINEER,
    args=(Arg("name [email]", "text"),),
    help=_("create a customer; answers with a one-time activation code"),
)
def customer_add(ctx: Context, **values: str) -> None:
    name, email = _name_and_email(values["name [email]"])
    try:
        customer, code = customers.create_customer(ctx.session, name, email, "en", ctx.now)
    except customers.CustomerError as exc:
        ctx.reply_text(exc.render(inert))
        return
    ctx.reply(
        _(
            "Customer {name} (id {id}) created. Activation code: {code} (single use, valid 14 days; the customer sends: link {code})"
        ),
        name=inert(customer.name),
        id=customer.id,
        code=code,
        secret=code,
    )


@command(
    "customer",
    "cliente",
    sub="code",
    audience=ENGINEER,
    args=(Arg("who", "text"),),
    help=_("a new one-time activation code for an existing customer"),
)
def customer_code(ctx: Context, who: str) -> None:
    customer = _customer(ctx, who)
    if customer is None:
        return
    code = customers.new_activation_code(ctx.session, customer, ctx.now)
    ctx.reply(
        _("New activation code for {name}: {code} (single use, valid 14 days; the customer sends: link {code})"),
        name=inert(customer.name),
        code=code,
        secret=code,
    )


@command(
    "customer",
    "cliente",
    sub="show",
    audience=ENGINEER,
    args=(Arg("who", "text"),),
    help=_("identities, packs, credits and cases of a customer"),
)
def customer_show(ctx: Context, who: str) -> None:
    customer = _customer(ctx, who)
    if customer is None:
        return
    summary = customers.credit_summary(ctx.session, customer.id, today(ctx))
    identities = ctx.session.scalars(select(Identity).where(Identity.customer_id == customer.id))
    lines = [f"**{inert(customer.name)}** (id {customer.id}) {inert(customer.email or '')} · language {customer.lang}"]
    lines.append("accounts: " + (", ".join(inert(f"{i.channel}:{i.address}") for i in identities) or "none linked"))
    lines.append(f"credits left: {summary.total_left}")
    for status in summary.packs:
        lines.append(
            f"• pack {status.pack.id}: {status.pack.incidents} bought {status.pack.purchased}, {status.left} left, "
            + ("valid until " if status.valid else "expired ")
            + str(status.expires_on)
        )
    latest = cases.latest_incidents(ctx.session, customer.id, (cases.OPEN, cases.RESOLVED, cases.CLOSED), 10)
    for incident in latest:
        lines.append(f"• #{incident.id} {inert(incident.subject)} · {incident.state}")
    ctx.reply_text("\n".join(lines))


@command(
    "credits",
    "creditos",
    sub="grant",
    audience=ENGINEER,
    args=(Arg("customer", "word"), Arg("n", "int"), Arg("purchased", "date", required=False)),
    help=_("add a pack of n credits bought on that date (default today)"),
)
def credits_grant(ctx: Context, customer: str, n: int, purchased: date | None) -> None:
    found = _customer(ctx, customer)
    if found is None:
        return
    try:
        pack = customers.grant_credits(
            ctx.session,
            found,
            n,
            purchased or today(ctx),
            ctx.engineer,
            ctx.now,
        )
    except customers.CustomerError as exc:
        ctx.reply_text(exc.render(inert))
        return
    ctx.reply(
        _("Pack {id}: {n} credits for {name}, bought {date}."),
        id=pack.id,
        n=n,
        name=inert(found.name),
        date=pack.purchased,
    )


@command("contacts", "contactos", audience=ENGINEER, help=_("people who wrote but are not linked to a customer"))
def contacts(ctx: Context) -> None:
    found = list(
        ctx.session.scalars(
            select(Identity).where(Identity.customer_id.is_(None)).order_by(Identity.last_seen_at.desc()).limit(30)
        )
    )
    if not found:
        ctx.reply(_("No unknown contacts."))
        return
    tz = ctx.settings.calendar.tz
    lines = ["Unknown contacts (not linked to a customer):"]
    lines += [
        f"• {inert(f'{i.channel}:{i.address}')} {inert(i.display_name or '')} · last seen {format_when(i.last_seen_at, 'en', tz) if i.last_seen_at else '—'}"
        for i in found
    ]
    ctx.reply_text("\n".join(lines))


def _name_and_email(text: str) -> tuple[str, str | None]:
    words = text.strip().strip('"').split()
    if len(words) > 1 and "@" in words[-1]:
        return " ".join(words[:-1]).strip('"'), words[-1]
    return " ".join(words), None
