"""The command router: one inbound message in, state changes and outbox rows out.

Order of checks for every message: who is it (identity, customer, engineer), may
they run what they asked (the audience of the declared command, and whether an
unlinked account may use it), then the handler. Customers only ever reach their
own incidents. The router holds no command of its own: they are declared once
in bot.handlers.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlmodel import Session

from adapters.channel import Inbound
from bot import handlers
from bot.commands import Audience, Command, ParseError, Registry, parse_args, split_command
from bot.context import Context
from bot.deployment import Deployment
from bot.handlers import customer as customer_handlers
from bot.i18n import _, quoted
from bot.numbers import MAX_DIGITS, whole_number
from bot.services import customers, strangers
from bot.services.outgoing import Outgoing
from storage.outbox import NewRow

ADD_TO_CASE = re.compile(r"^#([0-9]+)\s*(.*)$", re.DOTALL)


class Handled(NamedTuple):
    """What one message did, for the log line and metrics, and the rows it wrote, in order."""

    incident_id: int | None
    replies: list[str]
    #: ("incident_opened", 0), ("first_response", seconds), ("answer_withheld", 0).
    events: list[tuple[str, float]]
    rows: list[NewRow]


class Router:
    def __init__(self, deployment: Deployment, commands: Registry | None = None) -> None:
        self.deployment = deployment
        self.commands = commands or handlers.registry()

    def handle(self, session: Session, message: Inbound, now: datetime, leased: str | None = None) -> Handled:
        """Handle `message` in the caller's transaction; `leased`: the channel whose rows go to
        the caller to send right after the commit (see bot.services.outgoing)."""
        identity, customer = customers.identify(
            session, message.channel, message.sender, message.sender_name, now, message.sender_aliases
        )
        ctx = Context(
            session=session,
            message=message,
            now=now,
            deployment=self.deployment,
            identity=identity,
            out=Outgoing(session, now, leased),
            commands=self.commands,
            customer=customer,
        )
        engineer = self._engineer(message)
        if customer is None and engineer is None:
            # Answers after a successful `link` are the customer's and pass free.
            ctx.answer_gate = lambda text: (
                ctx.customer is not None or strangers.may_answer(session, self.deployment, identity, text, now)
            )
        if engineer:
            ctx.engineer = engineer
            self._engineer_message(ctx)
        elif message.kind == "topic":
            self._stranger_in_topic(ctx)
        elif message.public:
            if strangers.due_public_notice(identity, now):
                ctx.reply(_("Please write to me in a direct message, so that your details stay private."))
        else:
            self._customer_message(ctx)
        return Handled(ctx.incident_id, ctx.replies, ctx.events, ctx.out.rows)

    # -- engineers -------------------------------------------------------------

    def _engineer(self, message: Inbound) -> str | None:
        """The name the sender works under if they are an engineer: the channel that carries the case
        topics knows its engineers (Zulip: by user id, never by the email a message shows)."""
        if (message.channel, message.sender) in self.deployment.trusted_engineers:
            return message.sender
        if message.channel != self.deployment.case_channel:
            return None
        return self.deployment.engineer_of(message)

    def _engineer_message(self, ctx: Context) -> None:
        word, rest, slash = split_command(ctx.message.text)
        if ctx.message.kind == "topic" and not slash:
            return  # engineers talking among themselves in the topic
        cmd = self.commands.find("engineer", word, rest)
        if cmd is None:
            self._unknown_command(ctx, "engineer", word)
            return
        self._run(ctx, cmd, rest, slash=True)

    def _stranger_in_topic(self, ctx: Context) -> None:
        word, _rest, slash = split_command(ctx.message.text)
        if slash and self.commands.is_command_word("engineer", word):
            ctx.reply(_("You are not authorised to run engineer commands."))

    # -- customers -------------------------------------------------------------

    def _customer_message(self, ctx: Context) -> None:
        word, rest, slash = split_command(ctx.message.text)
        cmd = self.commands.find("customer", word, rest)
        if cmd is None and slash and self.commands.is_command_word("engineer", word):
            ctx.reply(_("You are not authorised to run engineer commands."))
            return
        if ctx.customer is None:
            if cmd is not None and cmd.unlinked:
                self._run(ctx, cmd, rest, slash)
            else:
                customer_handlers.unknown_sender(ctx)
            return
        if cmd is not None:
            self._run(ctx, cmd, rest, slash)
            return
        text = ctx.message.text.strip()
        if slash or (
            " " not in text and self.commands.suggestions("customer", word, cutoff=0.8) and not word.startswith("#")
        ):
            self._unknown_command(ctx, "customer", word)
            return
        match = ADD_TO_CASE.match(text)
        if match is None:
            customer_handlers.free_text(ctx, text)
            return
        number = whole_number(match.group(1))
        if number is None:  # more digits than any number: no incident has it
            ctx.reply(_("You have no incident #{number}."), number=match.group(1)[:MAX_DIGITS] + "…")
            return
        customer_handlers.add_to_case(ctx, number, match.group(2).strip())

    # -- shared ----------------------------------------------------------------

    def _run(self, ctx: Context, cmd: Command, rest: str, slash: bool) -> None:
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

    def _unknown_command(self, ctx: Context, audience: Audience, word: str) -> None:
        close = self.commands.suggestions(audience, word)
        prefix = "/" if audience == "engineer" else ""
        # The help word in the sender's own language.
        help_word = prefix + self.commands.named(audience, "help").name_in(ctx.lang)
        if close:
            ctx.reply(
                _("Unknown command {word}. Did you mean {suggestions}? Send {help} for the list."),
                word=quoted(ctx.lang, prefix + word),
                suggestions=" / ".join(quoted(ctx.lang, prefix + c) for c in close),
                help=quoted(ctx.lang, help_word),
            )
        else:
            ctx.reply(
                _("Unknown command {word}. Send {help} for the list."),
                word=quoted(ctx.lang, prefix + word),
                help=quoted(ctx.lang, help_word),
            )
