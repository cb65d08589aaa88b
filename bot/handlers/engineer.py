"""Engineer commands (SPEC §3), in a case topic (number optional; another case's there written
`#N`: `_which_case`) or a DM to the bot."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from sqlmodel import Session

from adapters.channel import ChannelError, OutboundFile, Said, size_text
from adapters.markup import inert
from bot import command_help
from bot.command_help import HELP_SUBCOMMAND, HELP_TOPIC
from bot.commands import Arg, OtherCase, command, fold, split_command
from bot.config import Settings
from bot.context import Context
from bot.handlers import case_topic
from bot.handlers import copied as copied_handlers
from bot.handlers.customer import SEVERITY
from bot.i18n import Plural, _, format_day, format_when, n_, render, render_plural
from bot.policy.language import reply_language
from bot.services import attachments, case_records, copies, credits, customers, delivery_notices, incidents
from bot.services.outgoing import to_sender
from storage.models import Incident, IncidentAttachment, IncidentMessage

ENGINEER = "engineer"
CASE = Arg("number", "case")
#: `/cases` lists this many; more would not fit one Zulip message, and it says how many it left out.
CASES_SHOWN = 50
#: `/case` shows the latest messages of the case, this many.
CASE_MESSAGES_SHOWN = 3
#: A command written again for the engineer to send (`_which_case`) is cut to this many characters:
#: enough to recognise it, and the engineer sends their own whole line anyway.
COMMAND_SHOWN = 60


def _case(ctx: Context, number: int | OtherCase) -> Incident | None:
    """The case `number` names, or None after telling the engineer why not: there is none, or the
    number may not be meant for it (`OtherCase`: nothing is done to either case)."""
    if isinstance(number, OtherCase):
        _which_case(ctx, number)
        return None
    incident = incidents.get_incident(ctx.session, number)
    if incident is None:
        ctx.reply(_("There is no case #{number}."), number=number)
    else:
        ctx.incident_id = incident.id
    return incident


def _which_case(ctx: Context, other: OtherCase) -> None:
    """In #1's topic, "/reply 2 things to try" is "things to try" for #2's customer or "2 things to
    try" for #1's: the engineer is asked where they wrote, with both cases named by number and
    customer, and each meaning written out for them to send. (Another customer reading words meant
    for this one would be far worse than asking.)"""
    here = incidents.get_incident(ctx.session, other.topic_case)
    there = incidents.get_incident(ctx.session, other.number)
    ctx.incident_id = other.topic_case
    for_topic = other.for_topic()
    if there is None and for_topic is None:
        ctx.reply(_("There is no case #{number}."), number=other.number)
        return
    typed = split_command(ctx.message.text).typed
    word = "/" + " ".join([typed, *([other.command.sub] if other.command.sub else [])])

    def shown(arguments: str) -> str:
        return inert(f"{word} {arguments}", COMMAND_SHOWN)

    if there is None:
        lines = [
            ctx.t(
                _("⚠️ Nothing was done: there is no case #{number}, and this topic is #{topic} ({customer})."),
                number=other.number,
                topic=other.topic_case,
                customer=_customer_name(ctx, here),
            )
        ]
    else:
        lines = [
            ctx.t(
                _(
                    "⚠️ Nothing was done: this topic is #{topic} ({customer}), and {number} names another case, #{number} ({other})."
                ),
                topic=other.topic_case,
                customer=_customer_name(ctx, here),
                number=other.number,
                other=_customer_name(ctx, there),
            ),
            ctx.t(
                _("For #{number}: {command}, or write it in #{number}'s topic."),
                number=other.number,
                command=shown(other.for_number()),
            ),
        ]
    if for_topic is not None:
        lines.append(ctx.t(_("For #{topic}: {command}"), topic=other.topic_case, command=shown(for_topic)))
    ctx.reply_text("\n".join(lines))


def _customer_name(ctx: Context, incident: Incident | None) -> str:
    customer = incidents.customer_of(ctx.session, incident) if incident is not None else None
    return inert(customer.name) if customer is not None else "?"


def _in_its_topic(ctx: Context, incident: Incident) -> bool:
    """Was the command written in the case's own topic? There the command itself shows what was done;
    anywhere else (a DM, another case's topic) the engineer is told where they wrote."""
    return ctx.topic_case == incident.id


@command(
    en="help",
    pt="ajuda",
    audience=ENGINEER,
    args=(HELP_TOPIC, HELP_SUBCOMMAND),
    help=_("the engineer commands; with a command, its details"),
    read_only=True,
)
def show_help(ctx: Context, topic: str | None = None, subcommand: str | None = None) -> None:
    def code(words: str) -> str:
        return f"`{words}`"

    if topic is not None:
        found = ctx.commands.explained(ENGINEER, topic, subcommand)
        if found:
            ctx.reply_text("\n".join(command_help.explain(ctx.commands, found, ctx.lang, code)))
        else:
            ctx.reply_text(command_help.unknown_topic(ctx.commands, ENGINEER, topic, ctx.theirs(topic[:40]), ctx.lang))
        return
    lines = [
        ctx.t(
            _(
                "Engineer commands (in a case topic the case number may be left out; there, another case's number is written with #, as in /reply #12):"
            )
        )
    ]
    lines += [f"• `{cmd.usage(slash=True)}` — {ctx.t(cmd.help)}" for cmd in ctx.commands.of(ENGINEER)]
    lines.append(command_help.details_line(ctx.commands, ENGINEER, ctx.lang, code=code))
    ctx.reply_text("\n".join(lines))


@command(
    en="reply",
    pt="responder",
    audience=ENGINEER,
    args=(CASE, Arg("text", "text")),
    help=_("send text to the customer on their latest channel"),
)
def reply(ctx: Context, number: int | OtherCase, text: str) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    assert ctx.engineer is not None
    route = incidents.customer_route(ctx.session, incident)
    if (
        route is not None
        and not ctx.deployment.for_customer(text, route.channel).strip()
        and not ctx.message.attachments
    ):
        # Nothing but links into the organisation, which customers never see: "[#1] " alone would go.
        ctx.reply(
            _(
                "Nothing of that reply would reach the customer (links into Zulip and wildcards are left out), so nothing was sent."
            )
        )
        return
    other = incidents.reply_by_another(ctx.session, incident.id, ctx.engineer, ctx.now - incidents.REPLY_OVERLAP)
    replied = incidents.engineer_reply(ctx.session, ctx.now, ctx.engineer, incident, text)
    if replied is None:
        ctx.reply(_("Case #{number} has no customer message to answer, so nothing was sent."), number=number)
        return
    overlap = _replied_before(ctx, other) if other is not None else None
    resolved = _stays_resolved(ctx, incident) if incident.state == incidents.RESOLVED else None
    notes = [line for line in (overlap, resolved) if line]
    ctx.counted.first_response = replied.first_response
    lang = incidents.customer_lang(ctx.session, incident)
    channel = replied.route.channel
    relayed = render(lang, _("[#{number}] {text}"), number=incident.id, text=ctx.deployment.for_customer(text, channel))
    files = attachments.record(ctx.session, ctx.now, incident, ctx.message, origin="out")
    carried, left_out = attachments.sort_out(files, lambda file: ctx.deployment.cannot_carry(channel, file))
    sent = [*_carried_files(lang, carried), *(_left_out_file(lang, file) for file in left_out)]
    ctx.out.say(replied.route, relayed, files=sent, incident_id=incident.id, lang=reply_language(text, lang))
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is not None:
        said = Said(ctx.engineer, channel, role="engineer")
        ctx.out.say(topic, "\n".join(notes), quote=text, said=said, incident_id=incident.id)
    queued = _said_if_queued(ctx, incident, channel)
    if left_out:
        # The engineer hears it where the case is worked (or where they wrote, without a topic).
        case_topic.files_left_out(ctx, incident, channel, left_out)
    case_topic.files_not_fetched(ctx)
    # Written away from the echo (a DM, another case's topic with "#N"): the engineer reads there
    # whom it went to, so that a reply to the wrong customer is seen at once.
    away = topic is None or not incidents.is_topic(to_sender(ctx.message), topic)
    told = []
    if away and not queued:
        told.append(
            ctx.t(
                _("Sent to the customer of #{number} via {channel} ({customer})."),
                number=incident.id,
                channel=channel,
                customer=_customer_name(ctx, incident),
            )
        )
    if away:
        told += notes
    if told:
        ctx.reply_text("\n".join(told))
    if incident.state == incidents.CLOSED:
        # The customer's answer to it cannot join a closed case: it would wait to open a new one.
        ctx.reply(
            _("#{number} is closed: an answer from the customer would not join it. To go on here, /reopen {number}."),
            number=number,
        )


def _stays_resolved(ctx: Context, incident: Incident) -> str:
    """The line an answer on a resolved case adds for the engineers: the answer does not reopen it,
    what the customer's answer would lead to (bot.services.conversation), and how to work it again."""
    tz = ctx.settings.calendar.tz
    until = incidents.reopen_until(incident, tz)
    if until is not None and incidents.may_reopen(incident, ctx.now, tz):
        return ctx.t(
            _(
                "ℹ️ #{number} is resolved and stays so: the customer may reopen it at no charge until {until}. To work it again, /reopen {number}."
            ),
            number=incident.id,
            until=format_when(until, ctx.lang, tz),
        )
    return ctx.t(
        _(
            "ℹ️ #{number} is resolved and stays so: it was resolved more than 7 days ago, so an answer from the customer would be offered a new case. To work it again, /reopen {number}."
        ),
        number=incident.id,
    )


def _replied_before(ctx: Context, other: IncidentMessage) -> str:
    """The line that tells an engineer a colleague answered the same customer a moment ago
    (`incidents.REPLY_OVERLAP`): they may be saying the same thing twice."""
    seconds = max(0, int((ctx.now - other.created_at).total_seconds()))
    return ctx.tn(
        n_(
            "⚠️ {who} replied to this customer {seconds} second ago: check that you are not repeating each other.",
            "⚠️ {who} replied to this customer {seconds} seconds ago: check that you are not repeating each other.",
        ),
        seconds,
        who=inert(other.author),
        seconds=seconds,
    )


def _said_if_queued(ctx: Context, incident: Incident, channel: str | None) -> bool:
    """While `channel` cannot reach its platform (`Deployment.is_down`), what was just said to the
    customer on it waits in the outbox: one line says so in the case topic, and where the engineer
    wrote if elsewhere, so that nobody takes it for delivered. Once it goes out, nothing more is
    said; if it never can, the engineers hear it then (bot.services.delivery_notices)."""
    if channel is None or not ctx.deployment.is_down(channel):
        return False
    line = ctx.t(
        _("⏳ {channel} is unreachable right now: this is queued and goes out to the customer when {channel} is back."),
        channel=channel,
    )
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is not None:
        ctx.out.say(topic, line, incident_id=incident.id)
    if topic is None or not incidents.is_topic(to_sender(ctx.message), topic):
        ctx.reply_text(line)
    return True


@command(en="note", pt="nota", audience=ENGINEER, args=(CASE, Arg("text", "text")), help=_("internal note on the case"))
def note(ctx: Context, number: int | OtherCase, text: str) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    assert ctx.engineer is not None
    incidents.add_note(ctx.session, ctx.now, ctx.engineer, incident, text)
    files = attachments.record(ctx.session, ctx.now, incident, ctx.message, origin="note")
    case_topic.files_not_fetched(ctx)
    if not files:
        ctx.reply(_("Note saved on #{number}."), number=number)
        return
    ctx.reply_text(
        ctx.tn(
            n_("Note saved on #{number} with {count} file.", "Note saved on #{number} with {count} files."),
            len(files),
            number=number,
            count=len(files),
        )
    )


def _carried_files(lang: str, rows: list[IncidentAttachment]) -> list[OutboundFile]:
    """The files of a reply that go to the customer, each with the sentence the channel writes
    instead should it not carry it after all (`OutboundFile.unsent`; the engineers are told then)."""
    unsent = render(lang, _("not sent: it could not be delivered here after all. The engineer knows."))
    return [dataclasses.replace(file, unsent=unsent) for file in attachments.shown(rows)]


def _left_out_file(lang: str, left: attachments.LeftOut) -> OutboundFile:
    """A file of a reply that does not reach the customer, with the sentence that tells them so."""
    [file] = attachments.shown([left.row])
    if left.limit is not None:
        told = render(
            lang, _("not sent: it is over the limit of {limit} here. The engineer knows."), limit=size_text(left.limit)
        )
    else:
        told = render(lang, _("not sent: files of this kind cannot be sent here. The engineer knows."))
    return dataclasses.replace(file, refused_over=None, left_out=told)


@command(
    en="assign",
    pt="atribuir",
    audience=ENGINEER,
    args=(CASE, Arg("who", "word", example="me")),
    help=_("set the assignee: me, an email, or nobody"),
)
def assign(ctx: Context, number: int | OtherCase, who: str) -> None:
    assert ctx.engineer is not None
    if isinstance(number, OtherCase):
        _case(ctx, number)  # asks which case was meant, before any look-up of the assignee
        return
    nobody = fold(who) in ("nobody", "none", "ninguem")
    assignee = None if nobody else ctx.engineer if fold(who) in ("me", "eu") else _engineer_at(ctx, who)
    if assignee is None and not nobody:
        return
    # The case after the engineer: a look-up on the platform must not wait with the case's row held.
    incident = _case(ctx, number)
    if incident is None:
        return
    incidents.assign(ctx.session, ctx.now, ctx.engineer, incident, assignee)
    if assignee is None:
        ctx.reply(_("#{number} is assigned to nobody now."), number=number)
        return
    ctx.reply(_("#{number} is assigned to {who}."), number=number, who=inert(assignee))


def _engineer_at(ctx: Context, who: str) -> str | None:
    """The engineer `/assign` names by address, as the name they work under (so that the case is in
    their own `/cases mine`), or None after telling why not."""
    address = who.strip().lower()
    if "@" not in address:
        ctx.reply(
            _('{who} is not an email address: assign "me", an engineer\'s email, or "nobody".'), who=inert(who[:80])
        )
        return None
    try:
        found = ctx.deployment.engineer_at(address, ctx.settings.engineer_emails)
    except ChannelError:
        ctx.reply(_("I cannot check who {who} is right now: try again in a minute."), who=inert(address))
        return None
    if found is None:
        ctx.reply(
            _(
                '{who} is not the address of an engineer I can see (see DESKBOT_ENGINEERS): they can take the case with "/assign me".'
            ),
            who=inert(address),
        )
    return found


class _NoChargeWords(NamedTuple):
    """What `/bug` and `/waive` say of a case's credit, to the engineer and to the customer, per
    `credits.CreditReturn` outcome (the same facts; only why there is no charge differs)."""

    returned: Plural
    expired: str
    not_charged: str
    not_used: str
    told_returned: Plural
    told_expired: str
    told_otherwise: str


_BUG_WORDS = _NoChargeWords(
    returned=n_(
        "#{number} is marked as our bug; its credit went back to its pack, valid until {expiry} inclusive. The customer now has {left} credit left in all.",
        "#{number} is marked as our bug; its credit went back to its pack, valid until {expiry} inclusive. The customer now has {left} credits left in all.",
    ),
    expired=_(
        "#{number} is marked as our bug and not charged, but its credit could not be returned: its pack was valid until {expiry} inclusive and has expired. The customer was told why."
    ),
    not_charged=_("#{number} is marked as our bug; it took no credit, so there is none to return."),
    not_used=_("#{number} is marked as our bug, but no credit was returned: pack {pack} shows no used credit."),
    told_returned=n_(
        "Incident #{number} was caused by a bug in our software: there is no charge and its credit is back. You have {left} credit left.",
        "Incident #{number} was caused by a bug in our software: there is no charge and its credit is back. You have {left} credits left.",
    ),
    told_expired=_(
        "Incident #{number} was caused by a bug in our software, so it is not charged. Its credit could not be given back, though: the pack it came from was valid until {expiry} inclusive and has expired, and an expired pack's credits cannot be used."
    ),
    told_otherwise=_("Incident #{number} was caused by a bug in our software: there is no charge."),
)

_WAIVER_WORDS = _NoChargeWords(
    returned=n_(
        "#{number} is not charged; its credit went back to its pack, valid until {expiry} inclusive. The customer now has {left} credit left in all.",
        "#{number} is not charged; its credit went back to its pack, valid until {expiry} inclusive. The customer now has {left} credits left in all.",
    ),
    expired=_(
        "#{number} is not charged, but its credit could not be returned: its pack was valid until {expiry} inclusive and has expired. The customer was told why."
    ),
    not_charged=_("#{number} is not charged; it took no credit, so there is none to return."),
    not_used=_("#{number} is not charged, but no credit was returned: pack {pack} shows no used credit."),
    told_returned=n_(
        "There is no charge for incident #{number}: its credit is back. You have {left} credit left.",
        "There is no charge for incident #{number}: its credit is back. You have {left} credits left.",
    ),
    told_expired=_(
        "There is no charge for incident #{number}. Its credit could not be given back, though: the pack it came from was valid until {expiry} inclusive and has expired, and an expired pack's credits cannot be used."
    ),
    told_otherwise=_("There is no charge for incident #{number}."),
)


@command(en="bug", audience=ENGINEER, args=(CASE,), help=_("caused by our bug: no charge, the credit goes back"))
def bug(ctx: Context, number: int | OtherCase) -> None:
    _no_charge(ctx, number, _BUG_WORDS, incidents.mark_vendor_bug)


@command(
    en="waive",
    pt="isentar",
    audience=ENGINEER,
    args=(CASE, Arg("reason", "text", required=False)),
    help=_("no charge for another reason than our bug (a duplicate, opened by mistake): the credit goes back"),
)
def waive(ctx: Context, number: int | OtherCase, reason: str | None) -> None:
    _no_charge(ctx, number, _WAIVER_WORDS, functools.partial(incidents.waive_charge, reason=reason))


def _no_charge(
    ctx: Context,
    number: int | OtherCase,
    words: _NoChargeWords,
    mark: Callable[[Session, Settings, datetime, str, Incident], credits.CreditReturn | None],
) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    assert ctx.engineer is not None
    credit = mark(ctx.session, ctx.settings, ctx.now, ctx.engineer, incident)
    if credit is None:
        if incidents.why_not_charged(ctx.session, incident) == "waived":
            ctx.reply(_("#{number} is already not charged: its charge was waived."), number=number)
        else:
            ctx.reply(_("#{number} is already marked as our bug."), number=number)
        return
    customer = incidents.customer_of(ctx.session, incident)
    left = credits.credit_summary(ctx.session, customer.id, ctx.today).total_left if customer else 0
    _tell_customer(ctx, incident, lambda lang: _told(lang, words, incident.id, credit, left))

    def marked(lang: str) -> str:
        expiry = format_day(credit.valid_until, lang) if credit.valid_until else ""
        values = {"number": number, "expiry": expiry, "pack": credit.pack_id}
        if credit.outcome == "returned":
            return render_plural(lang, left, words.returned, left=left, **values)
        return render(lang, getattr(words, credit.outcome), **values)

    case_topic.done_elsewhere(ctx, incident, f"{marked('en')} (By {inert(ctx.engineer)}.)")
    ctx.reply_text(marked(ctx.lang))


def _told(lang: str, words: _NoChargeWords, number: int, credit: credits.CreditReturn, left: int) -> str:
    """What the customer is told of their incident's charge: exactly what became of its credit."""
    if credit.outcome == "returned":
        return render_plural(lang, left, words.told_returned, number=number, left=left)
    if credit.outcome == "expired" and credit.valid_until is not None:
        return render(lang, words.told_expired, number=number, expiry=format_day(credit.valid_until, lang))
    return render(lang, words.told_otherwise, number=number)


@command(
    en="resolve",
    pt="resolver",
    audience=ENGINEER,
    args=(CASE, Arg("summary", "text", required=False)),
    help=_("mark resolved and tell the customer"),
)
def resolve(ctx: Context, number: int | OtherCase, summary: str | None) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    assert ctx.engineer is not None
    if not incidents.resolve(ctx.session, ctx.now, ctx.engineer, incident, summary):
        ctx.reply(_("#{number} is {state}, not open."), number=number, state=incident.state)
        return
    told = _engineers_words(ctx, incident, summary)
    channel = _tell_customer(
        ctx,
        incident,
        lambda lang: "\n".join(
            part
            for part in (
                render(lang, _("Incident #{number} is resolved."), number=incident.id),
                told,
                render(
                    lang,
                    _(
                        'If the problem persists, just write here within 7 days: you can reopen it at no charge with "reopen {number}".'
                    ),
                    number=incident.id,
                ),
            )
            if part
        ),
    )
    by = inert(ctx.engineer)
    case_topic.done_elsewhere(ctx, incident, f"✅ Resolved by {by}; the customer was told.", summary)
    ctx.reply(_("#{number} is resolved; the customer was told."), number=number)
    _said_if_queued(ctx, incident, channel)


@command(en="reopen", pt="reabrir", audience=ENGINEER, args=(CASE,), help=_("reopen a resolved or closed case"))
def reopen(ctx: Context, number: int | OtherCase) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    assert ctx.engineer is not None
    if not incidents.reopen(ctx.session, ctx.settings, ctx.now, ctx.engineer, incident):
        ctx.reply(_("#{number} is already open."), number=number)
        return
    assert incident.due_at is not None
    _tell_customer(
        ctx,
        incident,
        lambda lang: "\n".join(
            [
                render(lang, _("Incident #{number} was reopened by our team."), number=incident.id),
                render(
                    lang,
                    _("We will answer by {due}."),
                    due=format_when(incident.due_at, lang, ctx.settings.calendar.tz),
                ),
            ]
        ),
    )
    case_topic.reopened(ctx, incident, inert(ctx.engineer))
    if not _in_its_topic(ctx, incident):
        ctx.reply(
            _("#{number} is open again; next response due {due}."),
            number=number,
            due=format_when(incident.due_at, "en", ctx.settings.calendar.tz),
        )


@command(
    en="severity",
    pt="gravidade",
    audience=ENGINEER,
    args=(CASE, SEVERITY),
    help=_("set the severity: 1 critical, 2 high, 3 normal, 4 low"),
)
def set_severity(ctx: Context, number: int | OtherCase, severity: str) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    assert ctx.engineer is not None
    due_before = incident.due_at
    change = incidents.set_severity(ctx.session, ctx.settings, ctx.now, ctx.engineer, incident, int(severity))
    shown = case_topic.severity_text("en", incident.severity)
    if change.outcome == "not_open":
        ctx.reply(
            _("#{number} is {state}, not open: reopen it to change its severity."), number=number, state=incident.state
        )
        return
    if change.outcome == "same":
        ctx.reply(_("#{number} already has severity {severity}."), number=number, severity=shown)
        return
    case_topic.severity_changed(ctx, incident, change, inert(ctx.engineer))
    due = incident.due_at if incident.due_at != due_before else None

    def told(lang: str) -> str:
        lines = [
            render(
                lang,
                _("Our team set the severity of incident #{number} to {severity}."),
                number=incident.id,
                severity=case_topic.severity_text(lang, incident.severity),
            )
        ]
        if due is not None:  # the new severity's response target moved the due time
            lines.append(
                render(lang, _("Its answer is due now: the team has been told."))
                if due <= ctx.now
                else render(lang, _("We will answer by {due}."), due=format_when(due, lang, ctx.settings.calendar.tz))
            )
        return "\n".join(lines)

    _tell_customer(ctx, incident, told)
    if not _in_its_topic(ctx, incident):
        ctx.reply(_("#{number} now has severity {severity}."), number=number, severity=shown)


def _tell_customer(ctx: Context, incident: Incident, compose: Callable[[str], str]) -> str | None:
    """Say `compose(language)` to the customer of `incident`, in their language, on their latest
    channel; that channel, or None when the customer never wrote (nothing is said)."""
    route = incidents.customer_route(ctx.session, incident)
    if route is None:
        return None
    lang = incidents.customer_lang(ctx.session, incident)
    ctx.out.say(route, compose(lang), incident_id=incident.id, lang=lang)
    return route.channel


def _engineers_words(ctx: Context, incident: Incident, text: str | None) -> str | None:
    """An engineer's words for the customer of `incident`, as their channel is to show them."""
    route = incidents.customer_route(ctx.session, incident)
    return ctx.deployment.for_customer(text, route.channel) if text and route is not None else text


def _chargeable(ctx: Context, incident: Incident) -> str:
    why = incidents.why_not_charged(ctx.session, incident)
    return "yes" if incident.chargeable else {"bug": "no (our bug)", "waived": "no (waived)"}.get(why or "", "no")


#: How `/case` marks an answer by the state of the outbox row that carries it (`delivery_notices.undelivered`).
_NOT_DELIVERED = {"failed": _("⚠ not delivered"), "pending": _("⏳ not delivered yet")}


@command(en="case", pt="caso", audience=ENGINEER, args=(CASE,), help=_("summary of one case"), read_only=True)
def case(ctx: Context, number: int) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    customer = incidents.customer_of(ctx.session, incident)
    tz = ctx.settings.calendar.tz
    lines = [
        f"**#{incident.id}** {inert(incident.subject)}",
        f"customer: {inert(customer.name) if customer else '?'}"
        f" ({'reads Portuguese' if customer and customer.lang == 'pt' else 'reads English'}) · state: {incident.state} · "
        f"severity: {case_topic.severity_text('en', incident.severity)} · "
        f"chargeable: {_chargeable(ctx, incident)} · assignee: {inert(incident.assignee or '') or '—'}",
        f"opened {format_when(incident.opened_at, 'en', tz)} · due: "
        + (format_when(incident.due_at, "en", tz) if incident.due_at else "—"),
    ]
    # The customer's accounts by name: a Zulip account's address is its user id.
    labels = customers.account_labels(ctx.session, incident.customer_id)
    for event in incidents.latest_events(ctx.session, incident.id, 8):
        lines.append(
            f"— {format_when(event.at, 'en', tz)} {inert(labels.get(event.actor, event.actor))}: {event.action}"
            + (f" ({inert(event.detail)})" if event.detail else "")
        )
    messages = incidents.latest_messages(ctx.session, incident.id, CASE_MESSAGES_SHOWN)
    if messages:
        # What was said last, for an engineer who asks from a DM, away from the case topic.
        lines.append("latest messages:")
    # An answer that did not reach the customer is not what they were told: said beside it.
    undelivered = delivery_notices.undelivered(ctx.session, incident, messages)
    for message in messages:
        who = "customer" if message.direction == "in" else "reply"
        state = undelivered.get(message.id or 0)
        mark = f" ({ctx.t(_NOT_DELIVERED[state])})" if state else ""
        flat = " ".join(message.body.split())
        lines.append(
            f"— {format_when(message.created_at, 'en', tz)} {who} {inert(labels.get(message.author, message.author))}"
            f"{mark}: " + inert(flat if len(flat) <= 200 else flat[:199] + "…")
        )
    for file in attachments.of_incident(ctx.session, incident.id, with_notes=True):
        lines.append(f"📎 {inert(file.name)} · {attachments.described(file)}")
    copied = copies.active(ctx.session, incident.id)
    if copied:
        lines.append("copied: " + ", ".join(inert(c.address) for c in copied))
    ctx.reply_text("\n".join(lines))


@command(
    en="cc",
    audience=ENGINEER,
    args=(
        CASE,
        Arg("action", "choice", choices=("add", "remove"), label=_("action")),
        Arg("address", "word", label=_("email address")),
    ),
    help=_("copy an email address on every answer of the case, or stop copying it"),
)
def cc(ctx: Context, number: int | OtherCase, action: str, address: str) -> None:
    incident = _case(ctx, number)
    if incident is None:
        return
    assert ctx.engineer is not None
    found = copies.email_address(address)
    if found is None:
        ctx.reply(_("{address} is not an email address (for example: ana@example.com)."), address=inert(address[:80]))
        return
    if found in ctx.settings.support_addresses:
        ctx.reply(_("{address} is the support desk's own address: it cannot be copied."), address=inert(found))
        return
    if action == "remove":
        if not copies.remove(ctx.session, incident, copies.EMAIL, found, ctx.now):
            ctx.reply(_("{address} is not copied on #{number}."), address=inert(found), number=number)
            return
        copied_handlers.uncopied(ctx, incident, found, ctx.engineer)
        if not _in_its_topic(ctx, incident):
            ctx.reply(_("{address} is no longer copied on #{number}."), address=inert(found), number=number)
        return
    added = copies.add(ctx.session, incident, copies.EMAIL, found, ctx.engineer, ctx.now)
    if added == "full":
        ctx.reply(
            _("#{number} copies {limit} people already: remove one first."), number=number, limit=copies.MAX_COPIES
        )
        return
    if added == "already":
        ctx.reply(_("{address} is copied on #{number} already."), address=inert(found), number=number)
        return
    copied_handlers.copied(ctx, incident, [found], ctx.engineer)
    if not _in_its_topic(ctx, incident):
        ctx.reply(
            _("{address} is copied on every answer of #{number} from now on."), address=inert(found), number=number
        )


_CASES_FILTER: dict[str, Callable[[Context], case_records.CaseFilter]] = {
    "open": lambda ctx: case_records.CaseFilter(state=incidents.OPEN),
    "mine": lambda ctx: case_records.CaseFilter(state=incidents.OPEN, assignee=ctx.engineer),
    "overdue": lambda ctx: case_records.CaseFilter(overdue_at=ctx.now),
    "unassigned": lambda ctx: case_records.CaseFilter(state=incidents.OPEN, unassigned=True),
    "all": lambda ctx: case_records.CaseFilter(),
}
#: What `/cases <which>` answers when no case is in the list.
_NO_CASES = {
    "open": _("No open cases."),
    "mine": _("No open cases are assigned to you."),
    "overdue": _("No overdue cases."),
    "unassigned": _("No open cases are unassigned."),
    "all": _("No cases yet."),
}
#: The line above the list of `/cases <which>`.
_CASES_HEADING = {
    "open": "open cases",
    "mine": "your open cases",
    "overdue": "overdue cases",
    "unassigned": "unassigned open cases",
    "all": "all cases",
}


@command(
    en="cases",
    pt="casos",
    audience=ENGINEER,
    args=(
        Arg(
            "which",
            "choice",
            required=False,
            choices=("open", "mine", "overdue", "unassigned", "all"),
            label=_("which cases"),
        ),
    ),
    help=_("list cases by severity, then due time"),
    read_only=True,
)
def list_cases(ctx: Context, which: str | None) -> None:
    which = which or "open"
    listing = case_records.list_cases(ctx.session, _CASES_FILTER[which](ctx), CASES_SHOWN)
    if not listing.cases:
        ctx.reply(_NO_CASES[which])
        return
    tz = ctx.settings.calendar.tz
    lines = [f"{_CASES_HEADING[which]}, by severity, then due time:"]
    for incident, customer in listing.cases:
        due = format_when(incident.due_at, "en", tz) if incident.due_at else "—"
        late = " **overdue**" if incident.due_at and incident.due_at < ctx.now else ""
        assignee = inert(incident.assignee or "") or "unassigned"
        lines.append(
            f"• #{incident.id} {inert(incident.subject)} from {inert(customer)}"
            f" · severity {case_topic.severity_text('en', incident.severity)}"
            f" · {incident.state} · due {due}{late} · {assignee}"
        )
    if listing.total > len(listing.cases):
        lines.append(
            f"… and {listing.total - len(listing.cases)} more, not shown: narrow the list (`/cases overdue`, `/cases mine`),"
            " or list them all with `deskbot cases list` where deskbot runs."
        )
    ctx.reply_text("\n".join(lines))


#: In the order `/help` lists them.
COMMANDS = (
    show_help,
    reply,
    note,
    assign,
    bug,
    waive,
    resolve,
    reopen,
    set_severity,
    case,
    cc,
    list_cases,
)
