"""The command router: one inbound message in, state changes and outbox rows out.

Order of checks for every message: who is it (identity, customer, engineer),
may they run what they asked (the audience of the declared command), then
the handler. Customers only ever reach their own incidents.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

import bot.handlers  # noqa: F401  (declares every command)
from adapters.channel import Inbound
from bot.commands import ParseError, find, is_command_word, parse_args, split_command, suggestions
from bot.context import Context, Deployment
from bot.handlers.customer import no_credit_answer, today
from bot.i18n import _, format_day
from bot.numbers import MAX_DIGITS, whole_number
from bot.policy import NoCredit, choose_pack
from bot.policy.throttle import Allowance, Window
from bot.services import cases, customers, drafts, engineers
from storage.models import StrangerAnswers

#: An unknown sender gets the "how to buy support / link" answer at most this often.
UNKNOWN_NOTICE_EVERY = timedelta(days=1)
#: Anyone mentioning the bot publicly is pointed to direct messages at most this often.
PUBLIC_NOTICE_EVERY = timedelta(days=1)
#: Whatever an unlinked account sends (help, lang, link with wrong codes …), it gets at most this.
PER_STRANGER = Allowance(5, timedelta(hours=1))
log = logging.getLogger("deskbot.router")
ADD_TO_CASE = re.compile(r"^#([0-9]+)\s*(.*)$", re.DOTALL)


class Router:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def handle(self, session: Session, message: Inbound, now: datetime) -> Context:
        identity, customer = customers.identify(session, message.channel, message.sender, message.sender_name, now)
        ctx = Context(session=session, message=message, now=now, deployment=self.deployment, identity=identity)
        ctx.customer = customer
        engineer = self._engineer(session, message, now)
        if customer is None and engineer in (None, "mismatch"):
            ctx.answer_gate = self._stranger_gate(ctx)
        if engineer == "mismatch":
            self._refuse_unpinned(ctx)
            return ctx
        if engineer:
            ctx.engineer = engineer
            self._engineer_message(ctx)
        elif message.kind == "topic":
            self._stranger_in_topic(ctx)
        elif message.public:
            last = identity.public_notice_at
            if last is None or now - last >= PUBLIC_NOTICE_EVERY or now < last:
                identity.public_notice_at = now
                ctx.reply(_("Please write to me in a direct message, so that your details stay private."))
        else:
            self._customer_message(ctx)
        return ctx

    def _stranger_gate(self, ctx: Context) -> Callable[[str], bool]:
        """Asked before each answer to an unlinked sender: within their hourly allowance, and
        within the fifth of the channel's posting budget that strangers may use together?

        Answers after a successful `link` are the customer's and pass free.
        """
        identity, channel = ctx.identity, ctx.message.channel

        def gate(text: str) -> bool:
            if ctx.customer is not None:
                return True
            allowed, mine = PER_STRANGER.take(Window(identity.answers_since, identity.answers_used), ctx.now)
            if not allowed:
                log.info(
                    "answer to an unlinked account withheld: its hourly allowance is spent",
                    extra={"channel": channel, "identity_id": identity.id},
                )
                return False
            budget = self.deployment.stranger_budgets.get(channel)
            if budget is not None:
                row = ctx.session.get(StrangerAnswers, channel) or StrangerAnswers(channel=channel)
                allowance = Allowance(budget.posts, budget.window)
                allowed, shared = allowance.take(Window(row.since, row.used), ctx.now, budget.posts_for(text))
                if not allowed:
                    log.warning(
                        "answer to an unlinked account withheld: strangers used their share of the "
                        "channel's posting budget",
                        extra={"channel": channel, "identity_id": identity.id},
                    )
                    return False
                row.since, row.used = shared.since, shared.used
                ctx.session.add(row)
            identity.answers_since, identity.answers_used = mine.since, mine.used
            return True

        return gate

    # -- engineers -------------------------------------------------------------

    def _engineer(self, session: Session, message: Inbound, now: datetime) -> str | None:
        """The engineer's email if the sender is one; 'mismatch' if the email is pinned to another account."""
        if (message.channel, message.sender) in self.deployment.trusted_engineers:
            return message.sender
        if message.channel != self.deployment.case_channel or message.channel == "console":
            return None
        email = message.sender.lower()
        if email not in self.deployment.settings.engineer_emails:
            return None
        if message.sender_platform_id is None:
            return email
        if not engineers.pinned_to(session, email, message.sender_platform_id, now):
            return "mismatch"
        return email

    def _refuse_unpinned(self, ctx: Context) -> None:
        """Say why a listed email is refused; its talk in a topic (no slash command) gets no answer."""
        _word, _rest, slash = split_command(ctx.message.text)
        if ctx.message.kind == "topic" and not slash:
            return
        ctx.reply(
            _(
                "You are not authorised to run engineer commands: {email} is pinned to another Zulip account (the first one that wrote with it). If that is wrong, an operator can reset the pin with: deskbot engineers unpin {email}"
            ),
            email=ctx.message.sender.lower(),
        )

    def _engineer_message(self, ctx: Context) -> None:
        word, rest, slash = split_command(ctx.message.text)
        if ctx.message.kind == "topic" and not slash:
            return  # engineers talking among themselves in the topic
        cmd = find("engineer", word, rest)
        if cmd is None:
            self._unknown_command(ctx, "engineer", word)
            return
        self._run(ctx, cmd, rest, slash=True)

    def _stranger_in_topic(self, ctx: Context) -> None:
        word, _rest, slash = split_command(ctx.message.text)
        if slash and is_command_word("engineer", word):
            ctx.reply(_("You are not authorised to run engineer commands."))

    # -- customers -------------------------------------------------------------

    def _customer_message(self, ctx: Context) -> None:
        word, rest, slash = split_command(ctx.message.text)
        cmd = find("customer", word, rest)
        if cmd is None and is_command_word("engineer", word) and slash:
            ctx.reply(_("You are not authorised to run engineer commands."))
            return
        if ctx.customer is None:
            if cmd is not None and cmd.name in ("link", "lang", "help"):
                self._run(ctx, cmd, rest, slash)
            else:
                self._unknown_sender(ctx)
            return
        if cmd is not None:
            self._run(ctx, cmd, rest, slash)
            return
        if slash or (
            " " not in ctx.message.text.strip()
            and suggestions("customer", word, cutoff=0.8)
            and not word.startswith("#")
        ):
            self._unknown_command(ctx, "customer", word)
            return
        match = ADD_TO_CASE.match(ctx.message.text.strip())
        if match:
            number = whole_number(match.group(1))
            if number is None:  # more digits than any number: no incident has it
                ctx.reply(_("You have no incident #{number}."), number=match.group(1)[:MAX_DIGITS] + "…")
                return
            self._add_to_case(ctx, number, match.group(2).strip())
        else:
            self._free_text(ctx, ctx.message.text.strip())

    def _unknown_sender(self, ctx: Context) -> None:
        """Keep what they wrote (as a draft) and answer at most once a day; nothing is charged."""
        text = ctx.message.text.strip()
        if text:
            self._keep_draft(ctx, text)
        last = ctx.identity.unknown_notice_at
        if last is not None and ctx.now - last < UNKNOWN_NOTICE_EVERY:
            return
        ctx.identity.unknown_notice_at = ctx.now
        s = ctx.settings
        ctx.reply_text(
            "\n".join(
                [
                    ctx.t(_("Hello! This is the commercial support desk. I don't know this account yet.")),
                    ctx.t(_("To buy incident-based support, see {url}."), url=s.purchase_url),
                    ctx.t(_("If you already have support, send: link <your activation code>.")),
                    ctx.t(_("Documentation: {docs} · Forum: {forum}"), docs=s.docs_url, forum=s.forum_url),
                ]
            )
        )

    def _add_to_case(self, ctx: Context, number: int, text: str) -> None:
        incident = cases.own_incident(ctx, number)
        if incident is None:
            ctx.reply(_("You have no incident #{number}."), number=number)
            return
        draft = drafts.current(ctx.session, ctx.identity.id, ctx.now)
        if not text and draft is not None:
            text = draft.text
            drafts.discard(ctx.session, draft)
        if not text:
            ctx.reply(_("Write your message after the number, for example: #{number} it works now."), number=number)
            return
        if incident.state == cases.CLOSED or (
            incident.state == cases.RESOLVED
            and incident not in cases.recently_resolved(ctx.session, incident.customer_id, ctx.now)
        ):
            self._keep_draft(ctx, text)
            ctx.reply(
                _(
                    "Incident #{number} is finished, so I kept your message as a draft. Reply open to start a new incident with it."
                ),
                number=number,
            )
            return
        cases.add_inbound(ctx, incident, text)
        ctx.reply(_("Added to incident #{number}."), number=number)

    def _free_text(self, ctx: Context, text: str) -> None:
        assert ctx.customer is not None
        open_ones = cases.customer_incidents(ctx.session, ctx.customer.id, (cases.OPEN,))
        if not open_ones:
            open_ones = cases.recently_resolved(ctx.session, ctx.customer.id, ctx.now)
        if len(open_ones) == 1:
            incident = open_ones[0]
            cases.add_inbound(ctx, incident, text)
            ctx.reply(_("Added to incident #{number}."), number=incident.id)
            return
        self._keep_draft(ctx, text)
        if open_ones:
            listing = ", ".join(f"#{i.id} {i.subject}" for i in open_ones[:10])
            ctx.reply(
                _(
                    "You have several open incidents: {listing}. Which one is this about? Reply #N (for example #{example}) to add it there, or open to start a new one."
                ),
                listing=listing,
                example=open_ones[0].id,
            )
            return
        packs = [customers.as_policy(p) for p in customers.packs_of(ctx.session, ctx.customer.id)]
        choice = choose_pack(packs, today(ctx))
        if isinstance(choice, NoCredit):
            no_credit_answer(ctx, choice)
            return
        summary = customers.credit_summary(ctx.session, ctx.customer.id, today(ctx))
        ctx.reply(
            _(
                "You have no open incident. Reply open to open one with this message: it uses one of your {left} credits (the next expire on {expiry})."
            ),
            left=summary.total_left,
            expiry=format_day(summary.next_expiry, ctx.lang) if summary.next_expiry else "—",
        )

    def _keep_draft(self, ctx: Context, text: str) -> None:
        drafts.keep(ctx.session, ctx.identity.id, text, ctx.now)

    # -- shared ----------------------------------------------------------------

    def _run(self, ctx: Context, cmd, rest: str, slash: bool) -> None:  # noqa: ANN001
        try:
            values = parse_args(cmd, rest, ctx.topic_case, ctx.lang)
        except ParseError as exc:
            ctx.reply_text(
                ctx.t(exc.msgid, **exc.values)
                + " "
                + ctx.t(_("Usage: {usage}"), usage=cmd.usage(slash=cmd.audience == "engineer", lang=ctx.lang))
            )
            return
        cmd.handler(ctx, **values)

    def _unknown_command(self, ctx: Context, audience: str, word: str) -> None:
        close = suggestions(audience, word)  # type: ignore[arg-type]
        prefix = "/" if audience == "engineer" else ""
        # The help word the customer types in their own language (an alias of the same command).
        help_word = f"{prefix}{'ajuda' if ctx.lang == 'pt' and audience == 'customer' else 'help'}"
        if close:
            ctx.reply(
                _("Unknown command {word}. Did you mean {suggestions}? Send {help} for the list."),
                word=f"{prefix}{word}",
                suggestions=" / ".join(f"{prefix}{c}" for c in close),
                help=help_word,
            )
        else:
            ctx.reply(_("Unknown command {word}. Send {help} for the list."), word=f"{prefix}{word}", help=help_word)
