"""Customer commands (SPEC §2), in direct messages to the bot, and what a customer's other
messages do: `#N text` adds to incident N, any other text goes to their open incident."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.channel import WHOLE_MESSAGE, Said, size_text
from bot.commands import Arg, command
from bot.context import Context
from bot.handlers import case_topic
from bot.i18n import _, format_day, format_hours, format_when, n_, zone_time
from bot.policy import NoCredit, pack_expires_on
from bot.policy.answers import Reply, bare_answer
from bot.services import attachments, conversation, credits, customers, drafts, incidents, strangers
from bot.services.incidents import IncidentSummary, Writer
from storage.models import Incident, IncidentAttachment

CUSTOMER = "customer"
SEVERITY_LEVELS = ("1", "2", "3", "4")
#: Incidents listed by `status` (the latest ones).
STATUS_LIST = 20
#: Latest messages shown by `status N`.
DETAIL_MESSAGES = 5


@command(en="help", pt="ajuda", aliases=("?",), audience=CUSTOMER, unlinked=True, help=_("this help"))
def show_help(ctx: Context) -> None:
    s = ctx.settings
    lines = [ctx.t(_("Commands (with or without a leading /):"))]
    other = "en" if ctx.lang == "pt" else "pt"
    for cmd in ctx.commands.of(CUSTOMER):
        also = f" ({cmd.name_in(other)})" if cmd.name_in(other) != cmd.name_in(ctx.lang) else ""
        lines.append(f"• {cmd.usage(slash=False, lang=ctx.lang)}{also} — {ctx.t(cmd.help)}")
    lines.append(ctx.t(_("• #N <text> — add a message to incident N")))
    lines.append(ctx.t(_("Any other message goes to your open incident.")))
    lines.append(
        ctx.tn(
            n_(
                "Service hours: {hours} ({zone}), except public holidays. We answer within {days} business day.",
                "Service hours: {hours} ({zone}), except public holidays. We answer within {days} business days.",
            ),
            s.response_target,
            hours=format_hours(s.calendar.hours, ctx.lang),
            zone=zone_time(s.calendar.tz, ctx.lang),
            days=s.response_target,
        )
    )
    if len(set(s.response_targets.values())) > 1:
        lines.append(
            ctx.t(
                _("Response time by severity, in business days: {targets}."),
                targets=", ".join(
                    f"{case_topic.severity_text(ctx.lang, severity)} {days}"
                    for severity, days in s.response_targets.items()
                ),
            )
        )
    lines.append(ctx.t(_("Documentation: {docs} · Forum: {forum}"), docs=s.docs_url, forum=s.forum_url))
    ctx.reply_text("\n".join(lines))


@command(
    en="open",
    pt="abrir",
    audience=CUSTOMER,
    args=(Arg("text", "text", required=False, label=_("text")),),
    help=_("open a new incident with this text (uses one credit)"),
)
def open_incident(ctx: Context, text: str | None) -> None:
    opened = conversation.open_with_draft(
        ctx.session, ctx.deployment, ctx.now, _writer(ctx), text, ctx.message.subject_hint
    )
    if opened is None:
        ctx.reply(_('Tell us what the incident is about: "open <your question>".'))
        return
    if isinstance(opened, NoCredit | conversation.AskFirst):
        _files_wait(ctx)  # the text was kept as a draft
        if isinstance(opened, NoCredit):
            no_credit_answer(ctx, opened)
        else:
            _ask_first(ctx, opened)
        return
    incident, charged, body, dropped_draft = opened.incident, opened.pack, opened.body, opened.dropped_draft
    ctx.counted.incident_opened = True
    ctx.draft_copies = opened.copies
    case_topic.opened(ctx, incident, opened.urgent)
    _mirror(ctx, incident, body, opened.files)
    assert ctx.customer is not None
    summary = credits.credit_summary(ctx.session, ctx.customer.id, ctx.today)
    lines = [
        ctx.t(_("Incident #{number} is open: {subject}"), number=incident.id, subject=incident.subject),
        ctx.tn(
            n_(
                "One credit used; {left} credit left. This pack is valid until {expiry} inclusive.",
                "One credit used; {left} credits left. This pack is valid until {expiry} inclusive.",
            ),
            summary.total_left,
            left=summary.total_left,
            expiry=format_day(pack_expires_on(charged.purchased), ctx.lang),
        ),
        ctx.t(
            _(
                'Severity: {severity}. To change it, send "severity {number} <1-4>" (1 critical, 2 high, 3 normal, 4 low).'
            ),
            severity=case_topic.severity_text(ctx.lang, incident.severity),
            number=incident.id,
        ),
        *_when_answered(ctx, incident),
        ctx.t(_("Anything you write now is added to this incident.")),
    ]
    if dropped_draft:
        lines.append(
            ctx.t(_("Your earlier message, kept as a draft, was not included: send it again if it belongs here."))
        )
    ctx.reply_text("\n".join(lines))


def _when_answered(ctx: Context, incident: Incident) -> list[str]:
    """When the team will answer an incident waiting on it, and whether the team is away now."""
    if incident.due_at is None:
        return []
    calendar = ctx.settings.calendar
    if incident.due_at <= ctx.now:
        lines = [ctx.t(_("Its answer is due now: the team has been told."))]
    else:
        lines = [ctx.t(_("We will answer by {due}."), due=format_when(incident.due_at, ctx.lang, calendar.tz))]
    if not calendar.is_open(ctx.now):
        lines.append(
            ctx.t(
                _("The team is away now and back on {back}."),
                back=format_when(calendar.next_opening(ctx.now), ctx.lang, calendar.tz),
            )
        )
    return lines


def _ask_first(ctx: Context, ask: conversation.AskFirst) -> None:
    """`open` while incidents are open: is this about one of them, or a new issue (a second credit)?"""
    first = ask.open_incidents[0]
    if len(ask.open_incidents) == 1:
        lines = [
            ctx.t(
                _(
                    'You already have an open incident: #{number} {subject}. If your message is about it, reply "#{number}" to add it there.'
                ),
                number=first.id,
                subject=first.subject,
            )
        ]
    else:
        lines = [
            ctx.t(
                _(
                    'You already have open incidents: {listing}. If your message is about one of them, reply "#N" (for example "#{example}") to add it there.'
                ),
                listing=_listing(ask.open_incidents),
                example=first.id,
            )
        ]
    lines.append(
        ctx.t(
            _(
                'If it is a new, separate issue, reply "open" again within {minutes} minutes to open a new incident with it: that uses one more credit (you have {left}).'
            ),
            minutes=int(drafts.CONFIRM_WINDOW.total_seconds() // 60),
            left=ask.credits.total_left,
        )
    )
    ctx.reply_text("\n".join(lines))


def _listing(found: list[Incident]) -> str:
    return ", ".join(f"#{i.id} {i.subject}" for i in found[:10])


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
                ctx.t(
                    _('Buy credits at {url}, then reply "open".')
                    if why.reason == "none_bought"
                    else _('Buy more credits at {url}, then reply "open".'),
                    url=ctx.settings.purchase_url,
                ),
            ]
        )
    )


@command(
    en="status",
    pt="estado",
    audience=CUSTOMER,
    args=(Arg("number", "case", required=False, label=_("number")),),
    help=_("your incidents, or one incident in detail"),
)
def status(ctx: Context, number: int | None) -> None:
    assert ctx.customer_id is not None
    if number is not None:
        return _status_one(ctx, number)
    # One more than is shown: whether older ones exist costs no query of its own.
    found = incidents.latest_incidents(
        ctx.session, ctx.customer_id, (incidents.OPEN, incidents.RESOLVED), STATUS_LIST + 1
    )
    if not found:
        ctx.reply(_("You have no open incidents."))
        return
    lines = [ctx.t(_("Your incidents:"))]
    lines += [_status_line(ctx, incident) for incident in found[-STATUS_LIST:]]
    if len(found) > STATUS_LIST:
        lines.append(ctx.t(_('Older incidents are not listed here: "status <number>" shows any of them.')))
    ctx.reply_text("\n".join(lines))


def _status_line(ctx: Context, incident: IncidentSummary) -> str:
    values = {
        "number": incident.id,
        "subject": incident.subject,
        "severity": case_topic.severity_text(ctx.lang, incident.severity),
    }
    if incident.state == incidents.RESOLVED and incident.resolved_at is not None:
        # What a customer wants to know of a resolved incident: when, and until when it reopens free.
        day = format_day(ctx.settings.today(incident.resolved_at), ctx.lang)
        until = incident.resolved_at + incidents.REOPEN_WINDOW
        if ctx.now < until:
            return ctx.t(
                _(
                    '#{number} {subject} — resolved on {day}, severity {severity}; "reopen {number}" reopens it at no'
                    " charge until {until}"
                ),
                day=day,
                until=format_when(until, ctx.lang, ctx.settings.calendar.tz),
                **values,
            )
        return ctx.t(_("#{number} {subject} — resolved on {day}, severity {severity}"), day=day, **values)
    return ctx.t(
        _("#{number} {subject} — {state}, severity {severity}; next answer due: {due}"),
        state=_state_text(ctx, incident),
        due=_due_text(ctx, incident),
        **values,
    )


def _status_one(ctx: Context, number: int) -> None:
    incident = _own(ctx, number)
    if incident is None:
        return
    tz = ctx.settings.calendar.tz
    lines = [
        ctx.t(_("Incident #{number}: {subject}"), number=incident.id, subject=incident.subject),
        ctx.t(_("State: {state}"), state=_state_text(ctx, incident)),
        ctx.t(_("Severity: {severity}"), severity=case_topic.severity_text(ctx.lang, incident.severity)),
        ctx.t(_("Opened: {when}"), when=format_when(incident.opened_at, ctx.lang, tz)),
    ]
    if incident.state == incidents.OPEN:
        lines.append(ctx.t(_("Next answer due: {due}"), due=_due_text(ctx, incident)))
    elif incident.state == incidents.RESOLVED and incident.resolved_at is not None:
        lines.append(ctx.t(_("Resolved: {when}"), when=format_when(incident.resolved_at, ctx.lang, tz)))
        summary = incidents.resolution(ctx.session, incident.id)
        if summary:
            lines.append(ctx.t(_("Resolution: {summary}"), summary=_excerpt(summary)))
        if conversation.may_reopen(incident, ctx.now):
            lines.append(
                ctx.t(
                    _('You can reopen it at no charge until {until}: reply "reopen {number}".'),
                    until=format_when(conversation.reopen_until(incident) or ctx.now, ctx.lang, tz),
                    number=incident.id,
                )
            )
    elif incident.state == incidents.CLOSED and incident.closed_at is not None:
        lines.append(ctx.t(_("Closed: {when}"), when=format_when(incident.closed_at, ctx.lang, tz)))
    messages = incidents.latest_messages(ctx.session, incident.id, DETAIL_MESSAGES)
    if messages:
        lines.append(ctx.t(_("Latest messages:")))
    # A message of someone the customer copies (bot.services.copies) is named by its sender's address.
    own = {i.id for i in customers.identities_of(ctx.session, incident.customer_id)} if messages else set()
    for msg in messages:
        who = (
            ctx.t(_("support")) if msg.direction != "in" else ctx.t(_("you")) if msg.identity_id in own else msg.author
        )
        lines.append(f"— {who}, {format_when(msg.created_at, ctx.lang, tz)}: {_excerpt(msg.body)}")
    files = attachments.of_incident(ctx.session, incident.id)
    if files:
        lines.append(ctx.t(_("Files:")))
    for file in files:
        if file.refused_over is None:
            # Whose a file is, as in the messages above: the customer's, or sent to them by support.
            who = ctx.t(_("you")) if file.origin == "in" else ctx.t(_("support"))
            lines.append(f"— {who}: {file.name} ({file.media_type}, {size_text(file.size)})")
        else:
            lines.append("— " + _refused_line(ctx, file))
    ctx.reply_text("\n".join(lines))


def _refused_line(ctx: Context, file: IncidentAttachment) -> str:
    """A file not passed on, in a list: over the limit itself, or in a mail over it (only the
    mail's headers were read: every file it carried stays out, however small)."""
    name = ctx.t(_("the whole message")) if file.name == WHOLE_MESSAGE else file.name
    values = {"name": name, "size": size_text(file.size), "limit": size_text(file.refused_over or 0)}
    if file.refused_over is not None and file.size <= file.refused_over:
        return ctx.t(_("{name} ({size}): not passed on, in a message over the limit of {limit}"), **values)
    return ctx.t(_("{name} ({size}): not passed on, over the limit of {limit}"), **values)


def _due_text(ctx: Context, incident: Incident | IncidentSummary) -> str:
    if incident.state != incidents.OPEN:
        return "—"
    if incident.due_at is None:
        return ctx.t(_("waiting for you"))
    return format_when(incident.due_at, ctx.lang, ctx.settings.calendar.tz)


def _state_text(ctx: Context, incident: Incident | IncidentSummary) -> str:
    labels = {
        incidents.OPEN: _("with the support team") if incident.due_at is not None else _("answered"),
        incidents.RESOLVED: _("resolved"),
        incidents.CLOSED: _("closed"),
    }
    return ctx.t(labels[incident.state]) if incident.state in labels else incident.state


def _excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@command(
    en="credits",
    pt="creditos",
    aliases=("credit",),
    audience=CUSTOMER,
    help=_("credits left per pack and when each expires"),
)
def show_credits(ctx: Context) -> None:
    assert ctx.customer is not None
    summary = credits.credit_summary(ctx.session, ctx.customer.id, ctx.today)
    if not summary.packs:
        ctx.reply(_("You have no support credits yet. Buy them at {url}."), url=ctx.settings.purchase_url)
        return
    lines = [ctx.t(_("Credits left: {left}"), left=summary.total_left)]
    for status in summary.packs:
        values = {
            "size": status.pack.incidents,
            "bought": format_day(status.pack.purchased, ctx.lang),
            "left": status.left,
            "expiry": format_day(status.expires_on, ctx.lang),
        }
        if status.valid:
            line = ctx.tn(
                n_(
                    "• pack of {size} bought {bought}: {left} left, valid until {expiry} inclusive",
                    "• pack of {size} bought {bought}: {left} left, valid until {expiry} inclusive",
                ),
                status.left,
                **values,
            )
        elif status.pack.purchased > ctx.today:
            line = ctx.t(_("• pack of {size} bought {bought}: valid from {bought} until {expiry} inclusive"), **values)
        else:
            line = ctx.t(
                _("• pack of {size} bought {bought}: expired (it was valid until {expiry} inclusive)"), **values
            )
        lines.append(line)
    ctx.reply_text("\n".join(lines))


@command(
    en="close",
    pt="fechar",
    audience=CUSTOMER,
    args=(Arg("number", "case", label=_("number")),),
    help=_("close one of your incidents"),
)
def close(ctx: Context, number: int) -> None:
    incident = _own(ctx, number)
    if incident is None:
        return
    if not incidents.close(ctx.session, ctx.now, ctx.identity.address, incident):
        ctx.reply(_("Incident #{number} is already closed."), number=number)
        return
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is not None:
        ctx.out.say(topic, "The customer closed this case.", incident_id=incident.id)
    ctx.reply(_("Incident #{number} is closed. Thank you!"), number=number)


@command(
    en="link",
    pt="ligar",
    aliases=("associar",),
    audience=CUSTOMER,
    unlinked=True,
    args=(Arg("code", "word", label=_("code")),),
    help=_("link this account to your customer record with a one-time code"),
)
def link(ctx: Context, code: str) -> None:
    if not ctx.message.verified:
        ctx.reply(
            _(
                "I could not verify that this message really comes from this address, so I cannot link it. Please write again from your usual mail account, or ask the support team."
            )
        )
        return
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
        summary = credits.credit_summary(ctx.session, outcome.id, ctx.today)
        lines = [
            ctx.tn(
                n_(
                    'Welcome, {name}! This account is now linked. You have {left} credit left. Write "help" to see what I can do.',
                    'Welcome, {name}! This account is now linked. You have {left} credits left. Write "help" to see what I can do.',
                ),
                summary.total_left,
                name=outcome.name,
                left=summary.total_left,
            )
        ]
        lines += _kept_before_linking(ctx)
        ctx.reply_text("\n".join(lines))


def _kept_before_linking(ctx: Context) -> list[str]:
    """What the account wrote before it was linked waits for `open`: the welcome says so."""
    kept = drafts.linked(ctx.session, ctx.identity.id, ctx.now)
    if kept is None:
        return []
    return [
        ctx.t(
            _('Before linking you wrote: "{excerpt}". I kept it for a day: reply "open" to open an incident with it.'),
            excerpt=_excerpt(kept.text, 200),
        )
    ]


@command(
    en="lang",
    pt="idioma",
    aliases=("language", "lingua"),
    audience=CUSTOMER,
    unlinked=True,
    args=(Arg("code", "choice", required=False, choices=("en", "pt"), label=_("language")),),
    help=_("reply language: en or pt"),
)
def lang(ctx: Context, code: str | None) -> None:
    if code is None:  # asked, not set: which it is, and how to change it
        ctx.reply(
            _('I answer you in English. To change it, send "lang pt".')
            if ctx.lang == "en"
            else _('I answer you in Portuguese. To change it, send "lang en".')
        )
        return
    customers.set_language(ctx.identity, ctx.customer, code)
    ctx.reply(
        _("I will answer in English from now on.") if code == "en" else _("I will answer in Portuguese from now on.")
    )


@command(
    en="severity",
    pt="gravidade",
    audience=CUSTOMER,
    args=(
        Arg("number", "case", label=_("number")),
        Arg("severity", "choice", choices=SEVERITY_LEVELS, label=_("severity"), example="2"),
    ),
    help=_("set an incident's severity: 1 critical, 2 high, 3 normal, 4 low"),
)
def set_severity(ctx: Context, number: int, severity: str) -> None:
    incident = _own(ctx, number)
    if incident is None:
        return
    change = incidents.set_severity(ctx.session, ctx.settings, ctx.now, ctx.identity.address, incident, int(severity))
    shown = case_topic.severity_text(ctx.lang, incident.severity)
    if change.outcome == "not_open":
        ctx.reply(_("Incident #{number} is not open, so its severity cannot change."), number=number)
        return
    if change.outcome == "same":
        ctx.reply(_("Incident #{number} already has severity {severity}."), number=number, severity=shown)
        return
    case_topic.severity_changed(ctx, incident, change, case_topic.the_customer(ctx))
    lines = [ctx.t(_("Incident #{number} now has severity {severity}."), number=number, severity=shown)]
    ctx.reply_text("\n".join([*lines, *_when_answered(ctx, incident)]))


@command(
    en="reopen",
    pt="reabrir",
    audience=CUSTOMER,
    args=(Arg("number", "case", label=_("number")),),
    help=_("reopen an incident resolved in the last 7 days, at no charge"),
)
def reopen(ctx: Context, number: int) -> None:
    incident = _own(ctx, number)
    if incident is None:
        return
    resolved_on = incident.resolved_at
    outcome = conversation.customer_reopen(ctx.session, ctx.settings, ctx.now, _writer(ctx), incident)
    if outcome == "open":
        ctx.reply(_("Incident #{number} is already open."), number=number)
    elif outcome == "closed":
        ctx.reply(
            _(
                'Incident #{number} is closed, so it cannot be reopened. To go on, open a new incident: "open <your question>".'
            ),
            number=number,
        )
    elif outcome == "too_late":
        assert resolved_on is not None
        ctx.reply(
            _(
                'Incident #{number} was resolved on {date}, more than 7 days ago, so it cannot be reopened at no charge. To go on, open a new incident: "open <your question>" (it uses one credit).'
            ),
            number=number,
            date=format_day(ctx.settings.today(resolved_on), ctx.lang),
        )
    else:
        case_topic.reopened(ctx, incident, case_topic.the_customer(ctx))
        lines = [ctx.t(_("Incident #{number} is open again, at no charge."), number=number)]
        ctx.reply_text("\n".join([*lines, *_when_answered(ctx, incident)]))


#: In the order `help` lists them.
COMMANDS = (show_help, open_incident, status, set_severity, reopen, show_credits, close, link, lang)


# -- messages that are not commands -----------------------------------------------------


def add_to_case(ctx: Context, number: int, text: str) -> None:
    """`#N text`: add to the customer's incident N (the draft, if the text is empty)."""
    incident = _own(ctx, number)
    if incident is None:
        return
    added = conversation.add_to_incident(
        ctx.session, ctx.settings, ctx.now, _writer(ctx), incident, text, with_files=bool(ctx.message.attachments)
    )
    if added.outcome == "empty":
        ctx.reply(_("Write your message after the number, for example: #{number} it works now."), number=number)
    elif added.outcome == "finished":
        _files_wait(ctx)
        ctx.reply(
            _(
                'Incident #{number} is closed and takes no more messages, so I kept yours as a draft. Reply "open" to start a new incident with it (it uses one credit).'
            ),
            number=number,
        )
    else:
        _added(ctx, added)


def free_text(ctx: Context, text: str) -> None:
    """Any other text: to the one open (or recently resolved) incident; otherwise kept as a draft and asked about."""
    assert ctx.customer is not None
    reply = bare_answer(text)
    if reply is not None and not ctx.message.attachments and _answers_the_question(ctx, reply):
        return
    added = conversation.add_free_text(ctx.session, ctx.settings, ctx.now, _writer(ctx), text)
    if isinstance(added, conversation.AddedTo):
        _added(ctx, added)
        return
    _files_wait(ctx)  # the text was kept as a draft
    if added:
        ctx.reply(
            _(
                'You have several open incidents: {listing}. Which one is this about? Reply #N (for example #{example}) to add it there, or "open" to start a new one (it uses one credit).'
            )
            if added[0].state == incidents.OPEN
            else _(
                'You have several incidents resolved in the last 7 days: {listing}. Which one is this about? Reply #N (for example #{example}) to add it there, or "open" to start a new one (it uses one credit).'
            ),
            listing=_listing(added),
            example=added[0].id,
        )
        return
    position = credits.could_open(ctx.session, ctx.customer.id, ctx.today)
    if isinstance(position, NoCredit):
        no_credit_answer(ctx, position)
        return
    ctx.reply_text(
        ctx.tn(
            n_(
                'You have no open incident. Reply "open" to open one with this message: it uses your last credit, valid until {expiry} inclusive.',
                'You have no open incident. Reply "open" to open one with this message: it uses one of your {left} credits, from the pack valid until {expiry} inclusive.',
            ),
            position.total_left,
            left=position.total_left,
            expiry=format_day(position.next_expiry, ctx.lang) if position.next_expiry else "—",
        )
    )


def _answers_the_question(ctx: Context, reply: Reply) -> bool:
    """A bare "yes", "no" or "a new one" (bot.policy.answers) while a kept text waits for an answer:
    "a new one" is `open`, and so is "yes" to "reply open to open one with it", whose "no" drops the
    text; a question with two ways on (`#N` or `open`, `reopen N` or `open`) is asked again,
    plainly, with the text still kept. False when nothing waits, or when an engineer wrote to the
    customer since the bot asked (the word answers the engineer): it is text like any other."""
    draft = drafts.current(ctx.session, ctx.identity.id, ctx.now)
    if not drafts.opens(draft):
        return False
    assert draft is not None and ctx.customer is not None
    if incidents.answered_since(ctx.session, ctx.customer.id, draft.created_at):
        return False
    if reply == "new" or (draft.awaits == drafts.OPEN and reply == "yes"):
        open_incident(ctx, None)
    elif draft.awaits == drafts.OPEN:
        drafts.discard(ctx.session, draft)
        ctx.reply(_("All right: nothing was opened, and your message was not kept."))
    elif draft.awaits == drafts.REOPEN and draft.incident_id is not None:
        ctx.reply(
            _(
                'To reopen incident #{number} at no charge, reply "reopen {number}"; to open a new incident with your message, reply "open" (it uses one credit).'
            ),
            number=draft.incident_id,
        )
    else:
        # Asked again: "open" now still counts as the answer to a fresh question (drafts.CONFIRM_WINDOW).
        drafts.keep(ctx.session, ctx.identity.id, draft.text, ctx.now, draft.awaits, draft.incident_id)
        latest = incidents.latest_incidents(ctx.session, ctx.customer.id, (incidents.OPEN, incidents.RESOLVED), 1)
        ctx.reply(
            _(
                'To add your message to an incident, reply "#" and its number (for example "#{example}"); to open a new incident with it, reply "open" (it uses one credit).'
            ),
            example=latest[0].id if latest else 1,
        )
    return True


def unknown_sender(ctx: Context) -> None:
    """An account not linked to a customer wrote: what they wrote is kept (as a draft), the
    answer comes at most once a day, and nothing is charged."""
    if not strangers.unknown_writes(ctx.session, ctx.identity, ctx.message.text.strip(), ctx.now):
        return
    s = ctx.settings
    ctx.reply_text(
        "\n".join(
            [
                ctx.t(
                    # A mailbox is an address to its owner, not an account.
                    _("Hello! This is the commercial support desk. I don't know this email address yet.")
                    if ctx.identity.channel == customers.EMAIL_CHANNEL
                    else _("Hello! This is the commercial support desk. I don't know this account yet.")
                ),
                ctx.t(_("To buy incident-based support, see {url}."), url=s.purchase_url),
                ctx.t(_('If you already have support, send "link <your activation code>".')),
                ctx.t(_("Documentation: {docs} · Forum: {forum}"), docs=s.docs_url, forum=s.forum_url),
            ]
        )
    )


def record_automatic(ctx: Context, incident: Incident) -> None:
    """A machine's message about `incident` (a customer's autoresponder, or a bounce of the bot's
    mail from their server): kept on it and shown in its topic, owing no answer; nothing is said
    to the sender and the response clock does not start."""
    ctx.incident_id = incident.id
    customer = ctx.customer or incidents.customer_of(ctx.session, incident)
    assert customer is not None  # foreign key
    text = ctx.message.text.strip()
    writer = Writer(customer, ctx.identity, ctx.message.conversation)
    incidents.add_message(ctx.session, ctx.settings, ctx.now, writer, incident, text, starts_clock=False)
    files = attachments.record(ctx.session, ctx.now, incident, ctx.message)
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is not None:
        name = ctx.customer.name if ctx.customer is not None else ctx.identity.display_name or ctx.identity.address
        said = Said(name, ctx.identity.channel, ctx.identity.address, subject=ctx.message.subject_hint)
        shown = attachments.shown(files)
        ctx.out.say(topic, "", quote=text, said=said, files=shown, incident_id=incident.id)
        ctx.out.say(topic, "(An automatic message: it was not answered.)", incident_id=incident.id)


def _added(ctx: Context, added: conversation.AddedTo) -> None:
    """The text is on the incident (and in its topic); on a resolved one, the customer is asked what next."""
    incident = added.incident
    assert incident is not None
    ctx.draft_copies = added.copies
    _mirror(ctx, incident, added.text, added.files)
    if added.outcome == "added":
        ctx.reply(_("Added to incident #{number}."), number=incident.id)
        return
    assert incident.resolved_at is not None
    until = conversation.reopen_until(incident) if added.outcome == "resolved" else None
    case_topic.stays_resolved(ctx, incident, until)
    resolved_on = format_day(ctx.settings.today(incident.resolved_at), ctx.lang)
    if not added.kept:  # a thank-you: nothing kept to open an incident with
        if until is not None:
            ctx.reply(
                _(
                    'Thank you! Your message was added to incident #{number}, which stays resolved. If the problem comes back, reply "reopen {number}" to reopen it at no charge (until {until}); for a new, separate issue, send "open" followed by what it is about (it uses one credit).'
                ),
                number=incident.id,
                until=format_when(until, ctx.lang, ctx.settings.calendar.tz),
            )
        else:
            ctx.reply(
                _(
                    'Thank you! Your message was added to incident #{number}, resolved on {date}. For a new issue, send "open" followed by what it is about (it uses one credit).'
                ),
                number=incident.id,
                date=resolved_on,
            )
    elif until is not None:
        ctx.reply(
            _(
                'Added to incident #{number}, which was resolved on {date}: it stays resolved. To reopen it at no charge, reply "reopen {number}" (until {until}). If this is a new, separate issue, reply "open" to open a new incident with your message (it uses one credit).'
            ),
            number=incident.id,
            date=resolved_on,
            until=format_when(until, ctx.lang, ctx.settings.calendar.tz),
        )
    else:
        ctx.reply(
            _(
                'Added to incident #{number}. It was resolved on {date}, more than 7 days ago, so it cannot be reopened at no charge. If the problem is back, reply "open" to open a new incident with your message (it uses one credit).'
            ),
            number=incident.id,
            date=resolved_on,
        )


def _own(ctx: Context, number: int) -> Incident | None:
    """The customer's incident `number`; None, and the sender told, when they have none by that number."""
    incident = incidents.own_incident(ctx.session, ctx.customer, number)
    if incident is None:
        ctx.reply(_("You have no incident #{number}."), number=number)
    else:
        ctx.incident_id = incident.id
    return incident


def _writer(ctx: Context) -> Writer:
    assert ctx.customer is not None
    return Writer(ctx.customer, ctx.identity, ctx.message.conversation, ctx.message.copies)


def _files_wait(ctx: Context) -> None:
    """The message's text was kept as a draft: its files wait with it, for the incident it goes to."""
    if ctx.message.attachments:
        attachments.wait_with_draft(ctx.session, ctx.now, ctx.identity.id, ctx.message)


def _mirror(ctx: Context, incident: Incident, text: str, waited: Sequence[IncidentAttachment] = ()) -> None:
    """The customer's words in the case topic, with the files that came with them (`waited`: those
    that waited with them as a draft); the channel writes the header and keeps the words inert."""
    ctx.incident_id = incident.id
    files = [*waited, *attachments.record(ctx.session, ctx.now, incident, ctx.message)]
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is not None:
        assert ctx.customer is not None
        # A file within our limit may still be over the case topic's own (Zulip's upload limit):
        # it is then not kept either, and the customer is told below, as for ours.
        attachments.hold_to_limit(files, lambda file: ctx.deployment.cannot_carry(topic.channel, file))
        said = Said(ctx.customer.name, ctx.identity.channel, ctx.identity.address, subject=ctx.message.subject_hint)
        ctx.out.say(topic, "", quote=text, said=said, files=attachments.shown(files), incident_id=incident.id)
    _tell_refused(ctx, [file for file in files if file.refused_over is not None])


def _tell_refused(ctx: Context, refused: Sequence[IncidentAttachment]) -> None:
    """One answer for the files of a message that were not passed on, however many (a mail may
    carry dozens, and each answer is a mail of its own there); for a mail too large to read, also
    that its text never came, so that the sender sends it again."""
    too_large = ctx.message.too_large
    if len(refused) == 1 and not too_large and refused[0].size > (refused[0].refused_over or 0):
        (file,) = refused
        ctx.reply(
            _(
                'Your file "{name}" ({size}) was not passed on: it is over the limit of {limit}. The engineers know; please send a smaller file or a link to it.'
            ),
            name=file.name,
            size=size_text(file.size),
            limit=size_text(file.refused_over or 0),
        )
        return
    if not refused and not too_large:
        return
    if too_large:
        header = _(
            "Your message was over the size limit, so neither its text nor its files were passed on. The engineers know; please send the text again, with smaller files or links to them."
        )
    else:
        header = _("Not passed on (the engineers know; please send smaller files or links to them):")
    ctx.reply_text("\n".join([ctx.t(header), *("— " + _refused_line(ctx, file) for file in refused)]))
