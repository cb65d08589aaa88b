"""Customer commands (SPEC §2), in direct messages to the bot; what a customer's other messages
do is bot.handlers.customer_text."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.channel import size_text
from adapters.markup import inert
from bot import command_help
from bot.command_help import HELP_TOPIC
from bot.commands import Arg, command
from bot.context import Context
from bot.handlers import case_topic
from bot.handlers.passed_on import add_words, files_wait, mirror, refused_line, writer
from bot.i18n import _, format_day, format_hours, format_moment, format_when, n_, render, zone_time
from bot.policy import CreditSummary, NoCredit
from bot.policy.answers import bare_answer
from bot.services import attachments, conversation, credits, customers, drafts, incidents
from bot.services.incidents import IncidentSummary
from storage.models import Incident

CUSTOMER = "customer"
#: The severity argument of the customer's and the engineer's `severity`: a level, or its name in
#: either language ("severity 12 high", "gravidade 12 alta").
SEVERITY = Arg(
    "severity",
    "choice",
    choices=tuple(str(level) for level in incidents.SEVERITIES),
    label=_("severity"),
    example="2",
    labels=tuple((str(level), name) for level, name in incidents.SEVERITIES.items()),
)
#: Incidents listed by `status` (the latest ones).
STATUS_LIST = 20
#: Latest messages shown by `status N`.
DETAIL_MESSAGES = 5
#: `credits` says how soon a pack with unused credits lapses from this many days before its last day.
LAPSING_SOON_DAYS = 30


@command(
    en="help",
    pt="ajuda",
    aliases=("?",),
    audience=CUSTOMER,
    unlinked=True,
    args=(HELP_TOPIC,),
    help=_("this help; with a command, its details"),
)
def show_help(ctx: Context, topic: str | None = None) -> None:
    if topic is not None:
        _help_for_one(ctx, topic)
        return
    s = ctx.settings
    linked = ctx.customer_id is not None
    lines = [ctx.t(_("Commands (with or without a leading /):"))]
    other = "en" if ctx.lang == "pt" else "pt"
    # Someone not linked yet is shown what they can use now, and how to get the rest.
    for cmd in ctx.commands.of(CUSTOMER):
        if linked or cmd.unlinked:
            also = f" ({cmd.name_in(other)})" if cmd.name_in(other) != cmd.name_in(ctx.lang) else ""
            lines.append(f"• {cmd.usage(slash=False, lang=ctx.lang)}{also} — {ctx.t(cmd.help)}")
    if linked:
        lines.append(ctx.t(_("• #<number> <text> — add a message to that incident")))
        lines.append(ctx.t(_("Any other message goes to your open incident.")))
    else:
        lines.append(ctx.t(_("The other commands (open, status, credits …) work once this account is linked.")))
        lines.append(ctx.t(_("To buy incident-based support, see {url}."), url=s.purchase_url))
    hours = format_hours(s.calendar.hours, ctx.lang)
    zone = zone_time(s.calendar.tz, ctx.lang)
    if len(set(s.response_targets.values())) > 1:
        lines.append(ctx.t(_("Service hours: {hours} ({zone}), except public holidays."), hours=hours, zone=zone))
        lines.append(
            ctx.t(
                _("Response time by severity, in business days: {targets}."),
                targets=", ".join(
                    f"{case_topic.severity_text(ctx.lang, severity)} {days}"
                    for severity, days in s.response_targets.items()
                ),
            )
        )
    else:
        lines.append(
            ctx.tn(
                n_(
                    "Service hours: {hours} ({zone}), except public holidays. We answer within {days} business day.",
                    "Service hours: {hours} ({zone}), except public holidays. We answer within {days} business days.",
                ),
                s.response_target,
                hours=hours,
                zone=zone,
                days=s.response_target,
            )
        )
    lines.append(ctx.t(_("Documentation: {docs} · Forum: {forum}"), docs=s.docs_url, forum=s.forum_url))
    lines.append(command_help.details_line(ctx.commands, CUSTOMER, ctx.lang, lambda cmd: linked or cmd.unlinked))
    ctx.reply_text("\n".join(lines))


def _help_for_one(ctx: Context, topic: str) -> None:
    """`help <command>`: that command alone; `#` too, the one thing customers write that is no
    declared command (bot.router reads "#12 text"). Someone not linked yet may ask about any command,
    and is told when it works only once linked."""
    if topic.startswith("#"):
        lines = [
            ctx.t(_("• #<number> <text> — add a message to that incident")),
            ctx.t(_("For example: {example}"), example="#12 <" + ctx.t(_("text")) + ">"),
        ]
        only_linked = True
    else:
        found = ctx.commands.explained(CUSTOMER, topic)
        if not found:
            ctx.reply_text(command_help.unknown_topic(ctx.commands, CUSTOMER, topic, ctx.theirs(topic[:40]), ctx.lang))
            return
        lines = command_help.explain(ctx.commands, found, ctx.lang)
        only_linked = not found[0].unlinked
    if ctx.customer_id is None and only_linked:
        lines.append(ctx.t(_("It works once this account is linked to your customer record.")))
    ctx.reply_text("\n".join(lines))


@command(
    en="open",
    pt="abrir",
    audience=CUSTOMER,
    args=(Arg("text", "text", required=False, label=_("text")),),
    help=_("open a new incident with this text (uses one credit)"),
)
def open_incident(ctx: Context, text: str | None) -> None:
    if (
        text
        and bare_answer(f"open {text}") in ("yes", "new")
        and drafts.opens(drafts.current(ctx.session, ctx.identity.id, ctx.now))
    ):
        # "open it, please", "abrir, obrigado" while a kept text waits for `open`: the answer to the
        # bot's question, not an incident's text.
        text = None
    opened = conversation.open_with_draft(
        ctx.session, ctx.deployment, ctx.now, writer(ctx), text, ctx.message.subject_hint
    )
    if opened is None:
        ctx.reply(_('Tell us what the incident is about: "open <your question>".'))
        return
    if isinstance(opened, NoCredit | conversation.AskFirst):
        files_wait(ctx)  # the text was kept as a draft
        if isinstance(opened, NoCredit):
            no_credit_answer(ctx, opened)
        else:
            _ask_first(ctx, opened)
        return
    incident, charged, body, dropped_draft = opened.incident, opened.pack, opened.body, opened.dropped_draft
    ctx.counted.incident_opened = True
    ctx.draft_copies = opened.copies
    case_topic.opened(ctx, incident, opened.urgent)
    mirror(ctx, incident, body, opened.files)
    assert ctx.customer is not None
    summary = credits.credit_summary(ctx.session, ctx.customer.id, ctx.today)
    # The credit used names its own pack, and the credits left their own last day: "5 credits left.
    # This pack is valid until <tomorrow>" read as if all 5 lapsed tomorrow.
    used = ctx.t(
        _("One credit used, from the pack valid until {expiry} inclusive."),
        expiry=format_day(charged.valid_until, ctx.lang),
    )
    lines = [
        ctx.t(_("Incident #{number} is open: {subject}"), number=incident.id, subject=ctx.theirs(incident.subject)),
        f"{used} {_credits_left(ctx, summary)}",
        # "<1-4>" after the number read as the level: "severity 1" was sent for "critical". The
        # placeholder is named, and the levels with it, as the answers and `severity` name them.
        ctx.t(
            _('Severity: {severity}. To change it, send "severity {number} <level>" ({levels}).'),
            severity=case_topic.severity_text(ctx.lang, incident.severity),
            number=incident.id,
            levels=", ".join(f"{level} = {ctx.t(name)}" for level, name in incidents.SEVERITIES.items()),
        ),
        *_when_answered(ctx, incident),
        # Text without a number goes to the one open incident; with others open, the bot would ask.
        ctx.t(_("Anything you write now is added to this incident."))
        if len(incidents.latest_incidents(ctx.session, ctx.customer.id, (incidents.OPEN,), 2)) == 1
        else ctx.t(_('To add to it, begin your message with "#{number}".'), number=incident.id),
    ]
    if dropped_draft:
        lines.append(
            ctx.t(_("Your earlier message, kept as a draft, was not included: send it again if it belongs here."))
        )
    if opened.moved_from is not None:
        _moved(ctx, opened.moved_from, incident, body)
        lines.append(ctx.t(_("Your message stays on incident #{number} too."), number=opened.moved_from))
    ctx.reply_text("\n".join(lines))


def _credits_left(ctx: Context, summary: CreditSummary) -> str:
    """How many credits are left and until when: the earliest last day among them, and, when not
    all of them end that day, how many do (the rest last longer)."""
    if summary.next_expiry is None:
        return ctx.t(_("No credits left."))
    expiry = format_day(summary.next_expiry, ctx.lang)
    soonest = sum(status.left for status in summary.packs if status.valid and status.expires_on == summary.next_expiry)
    if soonest == summary.total_left:
        return ctx.tn(
            n_(
                "{left} credit left, valid until {expiry} inclusive.",
                "{left} credits left, valid until {expiry} inclusive.",
            ),
            summary.total_left,
            left=summary.total_left,
            expiry=expiry,
        )
    return ctx.tn(
        n_(
            "{left} credits left: {soonest} valid until {expiry} inclusive, the rest for longer.",
            "{left} credits left: {soonest} valid until {expiry} inclusive, the rest for longer.",
        ),
        soonest,
        left=summary.total_left,
        soonest=soonest,
        expiry=expiry,
    )


def _moved(ctx: Context, old_number: int, incident: Incident, body: str) -> None:
    """The old case's topic learns that the customer took a message of theirs on it to a new case."""
    old = incidents.get_incident(ctx.session, old_number)
    topic = incidents.case_topic(ctx.deployment, old) if old is not None else None
    if topic is not None:
        ctx.out.say(
            topic,
            f"↪ The customer opened a new case, #{incident.id}, with their message {inert(excerpt(body, 120))}"
            " (a separate issue, they say); the message stays here too.",
            incident_id=old_number,
        )


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
        back = calendar.next_opening(ctx.now)
        local = back.astimezone(calendar.tz)
        if (
            local.date() == ctx.now.astimezone(calendar.tz).date()
        ):  # before opening: "on Monday, 7 December" on that Monday
            # TRANSLATORS: the number choosing the form is the hour (0-23): "às 08:00", "à 01:00".
            today = n_(
                "The team is away now and back today at {time} ({zone}).",
                "The team is away now and back today at {time} ({zone}).",
            )
            lines.append(ctx.tn(today, local.hour, time=local.strftime("%H:%M"), zone=zone_time(calendar.tz, ctx.lang)))
        else:
            lines.append(
                ctx.t(_("The team is away now and back on {back}."), back=format_when(back, ctx.lang, calendar.tz))
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
                subject=ctx.theirs(first.subject),
            )
        ]
    else:
        lines = [
            ctx.t(
                _(
                    'You already have open incidents: {listing}. If your message is about one of them, reply "#" and its number (for example "#{example}") to add it there.'
                ),
                listing=listing(ctx, ask.open_incidents),
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
    lines.append(kept_for(ctx))
    ctx.reply_text("\n".join(lines))


def kept_hours() -> int:
    """How many hours a kept text waits (drafts.MAX_AGE)."""
    return int(drafts.MAX_AGE.total_seconds() // 3600)


def kept_for(ctx: Context) -> str:
    """The sentence added wherever the bot keeps a text and asks: how long it waits (SPEC §2), and
    when the credit `open` would use ends sooner, by when to reply to use it (`credit_deadline`)."""
    hours = kept_hours()
    kept = ctx.tn(
        n_("I keep your message for {hours} hour.", "I keep your message for {hours} hours."), hours, hours=hours
    )
    deadline = credit_deadline(ctx)
    return kept if deadline is None else f"{kept} {deadline}"


def credit_deadline(ctx: Context, customer_id: int | None = None, lang: str | None = None) -> str | None:
    """When the credit `open` would use ends before a text kept now does, the sentence that says
    by when to reply to use it; None otherwise, and when no credit could be used. On a pack's last
    evening, "I keep your message for 24 hours" alone was followed after midnight by "your credits
    have expired". For the sender, or for `customer_id` in `lang` (an engineer's link tells them)."""
    customer_id = ctx.customer_id if customer_id is None else customer_id
    lang = lang or ctx.lang
    if customer_id is None:
        return None
    position = credits.could_open(ctx.session, customer_id, ctx.today)
    if isinstance(position, NoCredit) or position.next_expiry is None:
        return None
    # The pack that pays is the valid one that ends first (policy.choose_pack): `next_expiry`.
    ends = position.next_expiry
    if ctx.settings.today(ctx.now + drafts.MAX_AGE) <= ends:
        return None
    zone = zone_time(ctx.settings.calendar.tz, lang)
    if ends == ctx.today:
        return render(
            lang, _('The credit "open" would use ends tonight: reply before midnight ({zone}) to use it.'), zone=zone
        )
    # A later last day ends first only across the 23-hour day when the clocks go forward (or if
    # drafts.MAX_AGE grows past a day).
    return render(
        lang,
        _(
            'The credit "open" would use is valid only until {expiry} inclusive: reply before that day ends ({zone}) to use it.'
        ),
        expiry=format_day(ends, lang),
        zone=zone,
    )


def listing(ctx: Context, found: list[Incident]) -> str:
    return ", ".join(f"#{i.id} {ctx.theirs(i.subject)}" for i in found[:10])


def no_credit_answer(ctx: Context, why: NoCredit, lead: Sequence[str] = ()) -> None:
    """Nothing was opened for want of a valid credit, and the text is kept: why, and what to do.
    `lead`: lines said first (a kept text this one replaced)."""
    if why.reason == "not_yet":
        # A pack bought for later (a renewal dated ahead): wait for it, or buy one valid now.
        assert why.starts is not None
        starts = format_day(why.starts, ctx.lang)
        lines = [
            _("Your support credits are valid from {date}."),
            _("Nothing was opened and your message is kept as a draft."),
            _('From {date}, send "open" followed by your question; to be helped sooner, buy credits at {url}.'),
        ]
        said = [ctx.t(line, date=starts, url=ctx.settings.purchase_url) for line in lines]
        said[1] += " " + kept_for(ctx)
        ctx.reply_text("\n".join([*lead, *said]))
        return
    reasons = {
        "none_bought": _("You have no support credits yet."),
        "all_used": _("All your support credits are used."),
        "all_expired": _("Your support credits have expired."),
    }
    ctx.reply_text(
        "\n".join(
            [
                *lead,
                ctx.t(reasons[why.reason]),
                ctx.t(_("Nothing was opened and your message is kept as a draft.")) + " " + kept_for(ctx),
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
        "subject": ctx.theirs(incident.subject),
        "severity": case_topic.severity_text(ctx.lang, incident.severity),
    }
    if incident.state == incidents.RESOLVED and incident.resolved_at is not None:
        # What a customer wants to know of a resolved incident: when, and until when it reopens free.
        day = format_day(ctx.settings.today(incident.resolved_at), ctx.lang)
        until = incidents.reopen_until(incident, ctx.settings.calendar.tz)
        if until is not None and ctx.now < until:
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
    incident = own(ctx, number)
    if incident is None:
        return
    tz = ctx.settings.calendar.tz
    lines = [
        ctx.t(_("Incident #{number}: {subject}"), number=incident.id, subject=ctx.theirs(incident.subject)),
        ctx.t(_("State: {state}"), state=_state_text(ctx, incident)),
        ctx.t(_("Severity: {severity}"), severity=case_topic.severity_text(ctx.lang, incident.severity)),
        ctx.t(_("Opened: {when}"), when=format_when(incident.opened_at, ctx.lang, tz)),
    ]
    if incident.state == incidents.OPEN:
        lines.append(ctx.t(_("Next answer due: {due}"), due=_due_text(ctx, incident)))
    elif incident.state == incidents.RESOLVED and incident.resolved_at is not None:
        lines.append(ctx.t(_("Resolved: {when}"), when=format_when(incident.resolved_at, ctx.lang, tz)))
        summary = incidents.resolution(ctx.session, incident.id)
        told = _engineers_words(ctx, summary) if summary else ""
        if told:
            lines.append(ctx.t(_("Resolution: {summary}"), summary=excerpt(told)))
        if conversation.may_reopen(incident, ctx.now, tz):
            lines.append(
                ctx.t(
                    _('You can reopen it at no charge until {until}: reply "reopen {number}".'),
                    until=format_when(conversation.reopen_until(incident, tz) or ctx.now, ctx.lang, tz),
                    number=incident.id,
                )
            )
    elif incident.state == incidents.CLOSED and incident.closed_at is not None:
        lines.append(ctx.t(_("Closed: {when}"), when=format_when(incident.closed_at, ctx.lang, tz)))
    messages = incidents.latest_messages(ctx.session, incident.id, DETAIL_MESSAGES)
    if messages:
        # The zone once, in the heading: each line's own "(Lisbon time)" made the list hard to read.
        lines.append(ctx.t(_("Latest messages ({zone}):"), zone=zone_time(tz, ctx.lang)))
    # A message of someone the customer copies (bot.services.copies) is named by its sender's address.
    own_accounts = {i.id for i in customers.identities_of(ctx.session, incident.customer_id)} if messages else set()
    for msg in messages:
        who = (
            ctx.t(_("support"))
            if msg.direction != "in"
            else ctx.t(_("you"))
            if msg.identity_id in own_accounts
            else ctx.theirs(msg.author)
        )
        # Support's words are an engineer's, shown as the reply that brought them was; the rest are
        # the customer's (or their copies').
        body = excerpt(_engineers_words(ctx, msg.body)) if msg.direction != "in" else ctx.theirs(excerpt(msg.body))
        lines.append(f"— {who} ({format_moment(msg.created_at, ctx.lang, tz)}): {body}")
    files = attachments.of_incident(ctx.session, incident.id)
    if files:
        lines.append(ctx.t(_("Files:")))
    for file in files:
        if file.refused_over is None:
            # Whose a file is, as in the messages above: the customer's, or sent to them by support.
            who = ctx.t(_("you")) if file.origin == "in" else ctx.t(_("support"))
            name = ctx.theirs(file.name) if file.origin == "in" else file.name
            lines.append(f"— {who}: {name} ({file.media_type}, {size_text(file.size)})")
        else:
            lines.append("— " + refused_line(ctx, file))
    ctx.reply_text("\n".join(lines))


def _engineers_words(ctx: Context, text: str) -> str:
    """What an engineer wrote (a reply, a resolution's summary) as stored, made what the customer
    may read on the channel this answer goes to, as `/reply` and `/resolve` made it: without
    links into the organisation (other customers' topics) or wildcards, and off Zulip without
    its markup (SPEC §2)."""
    return ctx.deployment.for_customer(text, ctx.message.channel)


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


def excerpt(text: str, limit: int = 300) -> str:
    """`text` on one line, cut to `limit` characters."""
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
    # A pack whose every credit was cancelled before any was used was a grant made by mistake.
    packs = [status for status in summary.packs if status.pack.incidents > 0]
    if not packs:
        ctx.reply(_("You have no support credits yet. Buy them at {url}."), url=ctx.settings.purchase_url)
        return
    lines = [ctx.t(_("Credits left: {left}"), left=summary.total_left)]
    for status in packs:
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
            days = (status.expires_on - ctx.today).days
            if status.left and days <= LAPSING_SOON_DAYS:
                # Unused credits about to lapse are worth a word where the customer counts them.
                # Counted to its last day, which is still a day to use it: "in 1 day" would read as gone tomorrow.
                if days == 0:
                    line += ctx.t(_(" — today is its last day"))
                elif days == 1:
                    line += ctx.t(_(" — tomorrow is its last day"))
                else:
                    line += ctx.tn(
                        n_(" — its last day is in {days} day", " — its last day is in {days} days"), days, days=days
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
    incident = own(ctx, number)
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
    if outcome in ("throttled", "invalid"):
        lines = (
            [] if outcome == "throttled" else [ctx.t(_("That code is not valid: it may be mistyped, used or expired."))]
        )
        again = customers.codes_again_at(ctx.identity)
        if again is not None:
            # Said with the wrong code that used up the tries, not only after: a stranger gets few
            # answers an hour (bot.services.strangers), and a right code typed next must not meet silence.
            lines.append(
                ctx.t(
                    _("Too many wrong codes: you can try again after {when}."),
                    when=format_when(again, ctx.lang, ctx.settings.calendar.tz),
                )
            )
        ctx.reply_text("\n".join(lines))
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
            if summary.total_left
            else ctx.t(
                _(
                    'Welcome, {name}! This account is now linked. You have no credit to use today ("credits" says more). Write "help" to see what I can do.'
                ),
                name=outcome.name,
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
            excerpt=ctx.theirs(excerpt(kept.text, 200)),
        ),
        *filter(None, [credit_deadline(ctx)]),
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
        SEVERITY,
    ),
    help=_("set an incident's severity: 1 critical, 2 high, 3 normal, 4 low"),
)
def set_severity(ctx: Context, number: int, severity: str) -> None:
    incident = own(ctx, number)
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
    args=(Arg("number", "case", label=_("number")), Arg("text", "text", required=False, label=_("text"))),
    help=_("reopen an incident resolved in the last 7 days, at no charge (with what you write after the number)"),
)
def reopen(ctx: Context, number: int, text: str | None = None) -> None:
    incident = own(ctx, number)
    if incident is None:
        return
    resolved_on = incident.resolved_at
    outcome = conversation.customer_reopen(ctx.session, ctx.settings, ctx.now, writer(ctx), incident)
    if text and outcome != "reopened":
        # Not reopened ("reopen 3 it broke again" on a case open already, closed, or resolved too long
        # ago): the words are the customer's all the same, and go where "#3 it broke again" would.
        from bot.handlers.customer_text import add_to_case  # it builds on this module

        add_to_case(ctx, number, text, command=True)
    elif outcome == "open":
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
        if text:
            add_words(ctx, incident, text)
            lines.append(ctx.t(_("Your message was added to it.")))
        ctx.reply_text("\n".join([*lines, *_when_answered(ctx, incident)]))


#: In the order `help` lists them.
COMMANDS = (show_help, open_incident, status, set_severity, reopen, show_credits, close, link, lang)


def own(ctx: Context, number: int) -> Incident | None:
    """The customer's incident `number`; None, and the sender told, when they have none by that number."""
    incident = incidents.own_incident(ctx.session, ctx.customer, number)
    if incident is None:
        ctx.reply(_("You have no incident #{number}."), number=number)
    else:
        ctx.incident_id = incident.id
    return incident
