"""What a customer's messages that are not commands do: `#N text` adds to incident N, any other
text goes to their one open (or recently resolved) incident or is kept as a draft while the bot
asks; a bare "yes"/"no" answers the bot's question; strangers and automatic mail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from adapters.channel import Said
from bot.context import Context
from bot.handlers import case_topic
from bot.handlers.customer import (
    credit_deadline,
    excerpt,
    kept_for,
    kept_hours,
    listing,
    no_credit_answer,
    open_incident,
    own,
)
from bot.handlers.passed_on import add_words, files_wait, mirror, writer
from bot.i18n import _, format_day, format_when, n_
from bot.policy import NoCredit
from bot.policy.acknowledgements import acknowledge
from bot.policy.answers import Reply, bare_answer, only_noted, thank_you
from bot.services import attachments, conversation, credits, customers, drafts, incidents, strangers
from bot.services.incidents import Writer
from storage.models import Incident


def add_to_case(ctx: Context, number: int, text: str, *, command: bool = False, before_command: bool = False) -> None:
    """`#N text`: add to the customer's incident N (the draft, if the text is empty). `command`:
    the text came with a command (`reopen N text` on an open case), which is always answered.
    `before_command`: the words after a command's arguments ("close 12 thanks, it works now"),
    added before the command runs: the command says what happens next, so a resolved incident
    takes them without the question of what to do with them (nor a draft kept for its answer),
    and the answer is only that they were added."""
    incident = own(ctx, number)
    if incident is None:
        return
    if before_command and incident.state != incidents.CLOSED:
        add_words(ctx, incident, text, keep=False)
        ctx.reply(_("Added to incident #{number}."), number=incident.id)
        return
    reply = bare_answer(text) if not command and text == ctx.message.text.strip() else None
    if reply is not None and not ctx.message.attachments and _answers_the_question(ctx, reply, text, about=number):
        return
    added = conversation.add_to_incident(
        ctx.session, ctx.settings, ctx.now, writer(ctx), incident, text, with_files=bool(ctx.message.attachments)
    )
    if added.outcome == "empty":
        ctx.reply(_("Write your message after the number, for example: #{number} it works now."), number=number)
    elif added.outcome == "finished":
        files_wait(ctx)
        ctx.reply_text(
            ctx.t(
                _(
                    'Incident #{number} is closed and takes no more messages, so I kept yours as a draft. Reply "open" to start a new incident with it (it uses one credit).'
                ),
                number=number,
            )
            + " "
            + kept_for(ctx)
        )
    else:
        _added(ctx, added, command=command)


def free_text(ctx: Context, text: str, *, command: bool = False) -> None:
    """Any other text: to the one open (or recently resolved) incident; otherwise kept as a draft and
    asked about. `command`: the text is a command written wrong, whose usage the customer is told
    too: where it went is always said (they must not take it for done)."""
    assert ctx.customer is not None
    reply = bare_answer(text)
    if reply is not None and not ctx.message.attachments and _answers_the_question(ctx, reply, text):
        return
    waiting = drafts.current(ctx.session, ctx.identity.id, ctx.now)
    # Only a text kept nowhere else can vanish when this one takes its place (SPEC §2: drafts are never joined).
    earlier = waiting.text if drafts.opens(waiting) and not drafts.on_an_incident(waiting) else None
    added = conversation.add_free_text(
        ctx.session, ctx.settings, ctx.now, writer(ctx), text, with_files=bool(ctx.message.attachments)
    )
    offer = (
        isinstance(added, conversation.AddedTo)
        and added.outcome == "added"
        and added.incident is not None
        # "ok", "thanks" in a mail of their own: no problem to open an incident with.
        and reply is None
        and not thank_you(text)
        and conversation.starts_a_conversation(ctx.session, ctx.message, added.incident)
    )
    if offer:
        assert isinstance(added, conversation.AddedTo) and added.incident is not None
        conversation.offer_new_incident(ctx.session, ctx.now, writer(ctx), added.incident, text)
        files_wait(ctx)
    now_waiting = drafts.current(ctx.session, ctx.identity.id, ctx.now)
    lead = (
        [_replaced(ctx, earlier)]
        if earlier is not None and now_waiting is not None and now_waiting.text != earlier
        else []
    )
    if isinstance(added, conversation.AddedTo):
        _added(ctx, added, command=command, offer=offer, lead=lead)
        return
    if isinstance(added, conversation.NotKept):
        ctx.reply(
            _('You are welcome! If you need help again, send "open" followed by what it is about (it uses one credit).')
            if added.thanks
            else _(
                'There is no incident to add your message to. To open one, send "open" followed by what it is about (it uses one credit).'
            )
        )
        return
    files_wait(ctx)  # the text was kept as a draft
    if added:
        asked = ctx.t(
            _(
                'You have several open incidents: {listing}. Which one is this about? Reply "#" and its number (for example #{example}) to add it there, or "open" to start a new one (it uses one credit).'
            )
            if added[0].state == incidents.OPEN
            else _(
                'You have several incidents resolved in the last 7 days: {listing}. Which one is this about? Reply "#" and its number (for example #{example}) to add it there, or "open" to start a new one (it uses one credit).'
            ),
            listing=listing(ctx, added),
            example=added[0].id,
        )
        ctx.reply_text("\n".join([*lead, f"{asked} {kept_for(ctx)}"]))
        return
    position = credits.could_open(ctx.session, ctx.customer.id, ctx.today)
    if isinstance(position, NoCredit):
        no_credit_answer(ctx, position, lead=lead)
        return
    # The day is that of the pack the credit comes from: beside the count of all the credits it read
    # as the day they all end.
    asked = ctx.tn(
        n_(
            'You have no open incident. Reply "open" to open one with this message: it uses your last credit, valid until {expiry} inclusive.',
            'You have no open incident. Reply "open" to open one with this message: it uses a credit from the pack valid until {expiry} inclusive (you have {left} credits).',
        ),
        position.total_left,
        left=position.total_left,
        expiry=format_day(position.next_expiry, ctx.lang) if position.next_expiry else "—",
    )
    ctx.reply_text("\n".join([*lead, f"{asked} {kept_for(ctx)}"]))


def _replaced(ctx: Context, earlier: str) -> str:
    """The line that says a kept text gave way to the customer's new one (drafts are never joined)."""
    return ctx.t(
        _(
            'This message replaces the one I kept before ("{excerpt}"): "open" would now use this latest one. To send both, write them again in one message.'
        ),
        excerpt=ctx.theirs(excerpt(earlier, 80)),
    )


def _answers_the_question(ctx: Context, reply: Reply, text: str, about: int | None = None) -> bool:
    """A bare "yes", "no" or "a new one" (bot.policy.answers) while a kept text waits for an answer:
    "a new one" is `open`, and so is "yes" to "reply open to open one with it" (or "… to open a new
    incident with it" about a text that joined an open one), whose "no" drops the text; a question
    with two ways on (`#N` or `open`, `reopen N` or `open`) is asked again, plainly, with the text
    still kept. False when nothing waits, or when an engineer wrote to the customer since the bot
    asked (the word answers the engineer): it is text like any other.

    `about`: the word came in the thread of incident `about` (a reply to a mail about it): it
    answers only a question about a text on that incident, asked in that very thread. An "ok" or
    "👍" (`only_noted`) to the offer made in passing beside "Added to incident #N" accepts nothing."""
    draft = drafts.current(ctx.session, ctx.identity.id, ctx.now)
    if not drafts.opens(draft):
        return False
    assert draft is not None and ctx.customer is not None
    if about is not None and (
        draft.incident_id != about or not conversation.in_the_thread_asked(ctx.session, draft, ctx.message)
    ):
        return False
    if incidents.answered_since(ctx.session, ctx.customer.id, draft.created_at):
        return False
    if draft.awaits == drafts.JOINED and only_noted(text):
        return False
    if reply == "new" or (draft.awaits in (drafts.OPEN, drafts.JOINED) and reply == "yes"):
        open_incident(ctx, None)
    elif draft.awaits == drafts.JOINED and draft.incident_id is not None:
        drafts.discard(ctx.session, draft)
        ctx.reply(
            _("All right: nothing was opened. Your message stays on incident #{number}."), number=draft.incident_id
        )
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


def unknown_sender(ctx: Context, kept: str | None = None, asked: str | None = None) -> None:
    """An account not linked to a customer wrote: what they wrote (`kept`, if not all of it) is
    kept as a draft, the answer comes at most once a day, and nothing is charged. `asked`: the
    customer command it tried (`status`): between the daily answers that gets a line saying what to
    do first, rather than silence (within the account's hourly allowance, `strangers.may_answer`).
    An email address at the domain of one customer (`strangers.colleague_of`) is told with the daily
    answer that the support team was told, and the engineers are, with the command that links it."""
    text = ctx.message.text.strip() if kept is None else kept
    if not strangers.unknown_writes(ctx.session, ctx.identity, text, ctx.now):
        if asked is not None and ctx.message.verified:
            ctx.reply(
                _('"{command}" works once this email address is linked: send "link <your activation code>" first.')
                if ctx.identity.channel == customers.EMAIL_CHANNEL
                else _('"{command}" works once this account is linked: send "link <your activation code>" first.'),
                command=asked,
            )
        return
    if not ctx.message.verified:
        # Mail whose sender the trusted server could not vouch for (DMARC): "send link CODE" would
        # be refused too, and its owner may not have written it at all.
        ctx.reply(
            _(
                "I could not verify that this message really comes from this address, so I cannot act on it. Please write again from your usual mail account, or ask the support team."
            )
        )
        return
    s = ctx.settings
    # A colleague of a customer (their organisation's mail domain): the engineers are told, and
    # can link the address. The sender is not verified to be theirs: the answer names nobody.
    colleague = strangers.colleague_of(ctx.session, ctx.identity)
    told = (
        [
            ctx.t(
                _(
                    "I have told the support team that you wrote: if your organisation has support with us, they can link this address to it, and you need not do anything more."
                )
            )
        ]
        if colleague is not None and strangers.colleague_wrote(ctx.out, ctx.deployment, ctx.identity, colleague)
        else []
    )
    ctx.reply_text(
        "\n".join(
            [
                ctx.t(
                    # A mailbox is an address to its owner, not an account.
                    _("Hello! This is the commercial support desk. I don't know this email address yet.")
                    if ctx.identity.channel == customers.EMAIL_CHANNEL
                    else _("Hello! This is the commercial support desk. I don't know this account yet.")
                ),
                *told,
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
    writer = Writer(customer, ctx.identity, ctx.message.conversation, arrived=ctx.arrived)
    incidents.add_message(ctx.session, ctx.settings, ctx.now, writer, incident, text, starts_clock=False)
    files = attachments.record(ctx.session, ctx.now, incident, ctx.message)
    topic = incidents.case_topic(ctx.deployment, incident)
    if topic is not None:
        name = ctx.customer.name if ctx.customer is not None else ctx.identity.display_name or ctx.identity.address
        said = Said(name, ctx.identity.channel, ctx.identity.address, subject=ctx.message.subject_hint)
        shown = attachments.shown(files)
        ctx.out.say(topic, "", quote=text, said=said, files=shown, incident_id=incident.id)
        ctx.out.say(topic, "(An automatic message: it was not answered.)", incident_id=incident.id)


def _added(
    ctx: Context, added: conversation.AddedTo, *, command: bool = False, offer: bool = False, lead: Sequence[str] = ()
) -> None:
    """The text is on the incident (and in its topic); on an open one acknowledged unless it follows
    the customer's own message soon after (`acknowledge`); on a resolved one, the customer is
    asked what next. `offer`: it began a conversation of its own (a new mail thread), and waits
    for `open` as a separate issue (drafts.JOINED): always answered, with that offer. `lead`:
    lines said first (a kept text this one replaced)."""
    incident = added.incident
    assert incident is not None
    ctx.draft_copies = added.copies
    mirror(ctx, incident, added.text, added.files)
    if added.outcome == "added":
        previous = incidents.before_latest(ctx.session, incident.id, ctx.identity.id)
        quiet_for = timedelta(minutes=ctx.settings.ack_quiet_minutes)
        answered = acknowledge(previous, ctx.now, quiet_for, asked=added.from_draft or command or offer)
        if answered and added.asks_nothing:
            # A thanks for the team's answer: nothing is due, so no "we will answer"; the case stays
            # open until someone ends it, and the customer may be the one who knows it is solved.
            thanked = ctx.t(
                _(
                    'Thank you! Your message was added to incident #{number}. If the problem is solved, send "close {number}" to close the incident.'
                ),
                number=incident.id,
            )
            ctx.reply_text("\n".join([*lead, thanked]))
        elif answered:
            lines = [
                *lead,
                ctx.t(
                    _(
                        "Added to incident #{number}. What you write soon after is added too, without an answer each time."
                    ),
                    number=incident.id,
                ),
            ]
            if offer:
                lines.append(
                    ctx.tn(
                        n_(
                            'If this is a separate problem, reply "open" within {hours} hour to open a new incident with this message (it uses one credit).',
                            'If this is a separate problem, reply "open" within {hours} hours to open a new incident with this message (it uses one credit).',
                        ),
                        kept_hours(),
                        hours=kept_hours(),
                    )
                )
                lines += filter(None, [credit_deadline(ctx)])
            ctx.reply_text("\n".join(lines))
        return
    assert incident.resolved_at is not None
    until = added.reopen_until
    case_topic.stays_resolved(ctx, incident, until)
    resolved_on = format_day(ctx.settings.today(incident.resolved_at), ctx.lang)
    if not added.kept:  # a thank-you: nothing kept to open an incident with
        if until is not None:
            ctx.reply(
                _(
                    'Thank you! Your message was added to incident #{number}, which stays resolved. If the problem comes back, reply "reopen {number}" to reopen it at no charge until {until}; for a new, separate issue, send "open" followed by what it is about (it uses one credit).'
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
        asked = ctx.t(
            _(
                'Added to incident #{number}, which was resolved on {date}: it stays resolved. To reopen it at no charge until {until}, reply "reopen {number}". If this is a new, separate issue, reply "open" to open a new incident with your message (it uses one credit).'
            ),
            number=incident.id,
            date=resolved_on,
            until=format_when(until, ctx.lang, ctx.settings.calendar.tz),
        )
        ctx.reply_text("\n".join([*lead, f"{asked} {kept_for(ctx)}"]))
    else:
        asked = ctx.t(
            _(
                'Added to incident #{number}. It was resolved on {date}, more than 7 days ago, so it cannot be reopened at no charge. If the problem is back, reply "open" to open a new incident with your message (it uses one credit).'
            ),
            number=incident.id,
            date=resolved_on,
        )
        ctx.reply_text("\n".join([*lead, f"{asked} {kept_for(ctx)}"]))
