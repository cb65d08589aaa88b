"""The command router: one inbound message in, state changes and outbox rows out.

Order of checks for every message: who is it (identity, customer, engineer), may
they run what they asked (the audience of the declared command, and whether an
unlinked account may use it), then the handler. Customers only ever reach their
own incidents. The router holds no command of its own: they are declared once
in bot.handlers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import NamedTuple

from sqlmodel import Session

from adapters.channel import Inbound
from bot import handlers
from bot.commands import (
    Audience,
    Command,
    CommandLine,
    ParseError,
    Registry,
    WithWords,
    parse_args,
    reads_as_prose,
    split_command,
    with_words,
    without_leading_mentions,
)
from bot.context import Context, Counted
from bot.deployment import Deployment
from bot.handlers import copied as copied_handlers
from bot.handlers import customer_text, edits
from bot.i18n import _, quoted
from bot.numbers import MAX_DIGITS, whole_number
from bot.policy.answers import bare_answer, thank_you
from bot.policy.language import written_in_portuguese
from bot.services import copies, customers, incidents, strangers
from bot.services.delivery_notices import ALERTS_TOPIC
from bot.services.outgoing import Outgoing, Topic
from storage import outbox
from storage.models import Incident
from storage.outbox import NewRow

#: `#12 text`; the colon, dash, full stop or bracket people put after the number is not text
#: ("#12: it works now", "#12 - it works", "#12) done"); one that begins a word is ("#12 -5 °C", "#12 :)").
ADD_TO_CASE = re.compile(r"^#([0-9]+)(?:[ \t]*[:.)\-\u2013\u2014](?=\s|$))?\s*(.*)$", re.DOTALL)


class Handled(NamedTuple):
    """What one message did, for the log line and metrics, and what it said (`out`)."""

    incident_id: int | None
    replies: list[str]
    counted: Counted
    out: Outgoing

    @property
    def rows(self) -> list[NewRow]:
        """The outbox rows it wrote, in order (with `deferred`, once the caller wrote them)."""
        return self.out.rows


#: How an identity is keyed for a message its channel could not verify (`Inbound.verified`): apart
#: from the sender's own, so that it is linked to no customer and touches none of their drafts.
UNVERIFIED = "unverified:"
#: Zulip's own slash commands (its compose box runs them; the bot never sees most): never ours.
ZULIPS_OWN = frozenset({"me", "poll", "todo", "dark", "light", "day", "night", "fluid-width", "fixed-width"})


class Router:
    def __init__(
        self, deployment: Deployment, commands: Registry | None = None, answer_caps: dict[str, int] | None = None
    ) -> None:
        self.deployment = deployment
        self.commands = commands or handlers.registry()
        #: Per channel: the most automatic answers one address gets an hour (`Channel.answers_per_hour`).
        self.answer_caps = answer_caps or {}

    def handle(
        self, session: Session, message: Inbound, now: datetime, leased: str | None = None, *, deferred: bool = False
    ) -> Handled:
        """Handle `message` in the caller's transaction; `leased`: the channel whose rows go to
        the caller to send right after the commit; `deferred`: the caller writes the outbox rows
        (`Outgoing.pending`) itself (see bot.services.outgoing)."""
        address = message.sender if message.verified else UNVERIFIED + message.sender
        aliases = message.sender_aliases if message.verified else ()
        who, new_identity = customers.who(session, message.channel, address, message.sender_name, now, aliases)
        ctx = Context(
            session=session,
            message=message,
            now=now,
            deployment=self.deployment,
            who=who,
            out=Outgoing(session, now, leased, self.answer_caps, deferred=deferred),
            commands=self.commands,
            loaded_identity=new_identity,
        )
        engineer = self._engineer(message) if message.verified else None
        cap = self.answer_caps.get(message.channel)
        if who.customer_id is None and engineer is None:
            # Answers after a successful `link` are the customer's (within the channel's cap).
            ctx.answer_gate = lambda text: (
                strangers.may_answer(session, self.deployment, ctx.identity, text, now, cap)
                if ctx.customer_id is None
                else cap is None or strangers.within_cap(ctx.identity, cap, now)
            )
        elif engineer is None and cap is not None:
            ctx.answer_gate = CustomerAnswers(ctx, cap)
        if engineer:
            ctx.engineer = engineer
            ctx.out.by_person = True
            self._engineer_message(ctx)
        elif message.automatic:
            self._automatic_message(ctx)
        elif message.kind == "topic":
            self._stranger_in_topic(ctx)
        elif message.public:
            if strangers.due_public_notice(ctx.identity, now):
                ctx.reply(_("Please write to me in a direct message, so that your details stay private."))
        elif (copied := self._copied(ctx)) is not None:
            copied_handlers.add_reply(ctx, copied)
        else:
            self._customer_message(ctx)
            self._learn_copies(ctx)
        return Handled(ctx.incident_id, ctx.replies, ctx.counted, ctx.out)

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
        line = split_command(ctx.message.text)
        word, rest, slash = line.word, line.rest, line.slash
        if ctx.message.kind == "topic" and not slash:
            return  # engineers talking among themselves in the topic
        cmd = self.commands.find("engineer", word, rest)
        if ctx.message.edit_of is not None:
            # An edited command is never run again: a `/reply` could reach the customer twice.
            if cmd is not None:
                edits.command_edited(ctx, cmd)
            return
        if cmd is None:
            # In a topic, a line that begins with "/" is often no command of ours: Zulip's own
            # (`/me`, `/poll`, `/todo`) or a path (`/etc/cups/printers.conf is wrong`). Only a word
            # that is ours, or close to one (a typo), is answered there.
            if (
                ctx.message.kind != "topic"
                or self.commands.is_command_word("engineer", word)
                or (word not in ZULIPS_OWN and self.commands.suggestions("engineer", word, cutoff=0.8))
            ):
                self._unknown_command(ctx, "engineer", line)
            return
        self._run(ctx, cmd, rest, slash=True)

    def _stranger_in_topic(self, ctx: Context) -> None:
        line = split_command(ctx.message.text)
        if line.slash and self.commands.is_command_word("engineer", line.word):
            ctx.reply(_("You are not authorised to run engineer commands."))

    # -- customers -------------------------------------------------------------

    def _thread(self, ctx: Context) -> int | None:
        """The incident of the sender's customer that the message belongs to without naming it in
        its text: the one of a bot's message it answers, else the one the channel read beside the
        text (an email subject's `[#N]`). Another customer's incident is no match."""
        message = ctx.message
        if ctx.customer_id is None:
            return None
        for number in (
            outbox.posted_incident(ctx.session, message.channel, message.replies_to),
            message.case_hint,
        ):
            if number is not None and incidents.own_incident(ctx.session, ctx.customer, number) is not None:
                return number
        return None

    def _copied(self, ctx: Context) -> Incident | None:
        """The incident whose thread the message continues as from someone copied on it (not the
        customer's own: those are theirs to route). Only a reply in a thread, or a message naming an
        incident beside its text, can be one: anything else of theirs is an unknown sender's."""
        message = ctx.message
        if not message.verified or not (message.replies_to or message.case_hint is not None):
            return None
        if ctx.customer_id is not None and self._thread(ctx) is not None:
            return None
        return copies.copied_incident(
            ctx.session, message.channel, message.sender, message.replies_to, message.case_hint
        )

    def _learn_copies(self, ctx: Context) -> None:
        """The people a customer's message was addressed to besides the desk are copied on the
        incident it joined or opened, and the answers written already copy them too; with those
        of the draft it used (`Context.draft_copies`). A message whose text is kept as a draft
        keeps them with it (bot.services.drafts)."""
        message = ctx.message
        if ctx.customer_id is None or ctx.incident_id is None:
            return
        addresses = (*ctx.draft_copies, *message.copies)
        incident = incidents.get_incident(ctx.session, ctx.incident_id)
        if not addresses or incident is None or incident.customer_id != ctx.customer_id:
            return
        added = copies.learn(ctx.session, incident, message.channel, addresses, message.sender, ctx.now)
        if added:
            ctx.out.copy_new(incident.id, message.channel, added)
            copied_handlers.copied(ctx, incident, added, ctx.customer.name)

    def _automatic_message(self, ctx: Context) -> None:
        """Mail a machine sent (an autoresponder, a bounce): recorded on the incident it names, if any,
        so that engineers see it; never answered, never opening or keeping anything.

        A bounce comes from the customer's mail server, not from them: it names the incident by the
        bot's message it returns (only someone who got that message knows its id)."""
        ctx.answer_gate = lambda _text: False  # not even a note about a file it carried
        number = self._thread(ctx)
        if number is None and ctx.customer_id is None:
            number = outbox.posted_incident(ctx.session, ctx.message.channel, ctx.message.replies_to)
        incident = incidents.get_incident(ctx.session, number) if number is not None else None
        if incident is not None:
            customer_text.record_automatic(ctx, incident)

    def _customer_message(self, ctx: Context) -> None:
        line = split_command(ctx.message.text)
        word, rest, slash = line.word, line.rest, line.slash
        thread = self._thread(ctx)
        cmd = self.commands.find("customer", word, rest)
        engineers = self.commands.find("engineer", word, rest) if slash else None
        if slash and (
            (cmd is None and self.commands.is_command_word("engineer", word))
            # "/credits grant Acme 5": the customer's `credits` word, an engineer's sub-command.
            or (engineers is not None and engineers.sub is not None)
        ):
            ctx.reply(_("You are not authorised to run engineer commands."))
            return
        if ctx.who.lang is None and (
            cmd.names.get("pt") == word if cmd is not None else written_in_portuguese(ctx.message.text)
        ):
            # Nobody chose a language for this account or its customer, and this message is plainly
            # Portuguese ("ajuda", "Olá, preciso de ajuda"): answered, and from now on, in
            # Portuguese, as after "idioma pt" (linking keeps it).
            customers.set_language(ctx.identity, ctx.customer, "pt")
        if ctx.customer_id is None:
            if cmd is not None and cmd.unlinked:
                # A sentence that begins with "help" or "link" is a stranger's text like any other.
                greet = partial(customer_text.unknown_sender, ctx) if reads_as_prose(line) else None
                self._run(ctx, cmd, rest, slash, otherwise=greet)
            else:
                kept, meant = _kept_from_stranger(cmd, line, ctx.message.text.strip())
                customer_text.unknown_sender(ctx, kept, meant.name_in(ctx.lang) if meant else None)
            return
        text = ctx.message.text.strip()
        if not text and not ctx.message.attachments:
            # A status that only mentions the bot, an empty mail: nothing to add anywhere.
            ctx.reply(_('Your message was empty. Send "help" to see what I can do.'))
            return
        if cmd is not None and ctx.message.edit_of is not None and [a.kind for a in cmd.args] == ["text"]:
            # An edited `open …` (a detail added, a typo fixed): its words go where any text of
            # theirs would, to the incident it opened, rather than asking about a second one.
            if rest:
                customer_text.free_text(ctx, rest)
            return
        if cmd is not None:
            # Its arguments fit, then the customer explains ("severity 12 1 production is down"):
            # both are meant, when the number is one of their incidents.
            said = with_words(cmd, rest)
            if said is not None and incidents.own_incident(ctx.session, ctx.customer, said.number) is not None:
                self._run_with_words(ctx, cmd, said)
                return
            if thread is not None:
                self._in_thread(ctx, cmd, line, thread)
                return
            # A sentence that only begins with a command word ("close to losing data here"), or
            # that names a number no incident of theirs has ("status 3 servers are down": three
            # servers, not incident #3), is what the customer says, as any other text. One that goes
            # on as the command's arguments do ("Severity: critical, production is down", with no
            # number) meant the command: filed as text alone, it read as done ("Added to incident
            # #1." and the severity unchanged), so the usage says how to write it, and the text is
            # kept as any other text would be.
            otherwise = kept = None
            if reads_as_prose(line):
                if _begins_as_arguments(cmd, rest):
                    kept = partial(customer_text.free_text, ctx, text, command=True)
                else:
                    otherwise = partial(customer_text.free_text, ctx, text)
            self._run(ctx, cmd, rest, slash, otherwise=otherwise, kept=kept)
            return
        addressed = without_leading_mentions(text)
        if thread is not None and not slash and not ADD_TO_CASE.match(addressed):
            customer_text.add_to_case(ctx, thread, text)
            return
        if slash or (
            " " not in text and self.commands.suggestions("customer", word, cutoff=0.8) and not word.startswith("#")
        ):
            self._unknown_command(ctx, "customer", line)
            return
        match = ADD_TO_CASE.match(addressed)
        if match is None:
            customer_text.free_text(ctx, text)
            return
        number = whole_number(match.group(1))
        if number is None:  # more digits than any number: no incident has it
            ctx.reply(_("You have no incident #{number}."), number=match.group(1)[:MAX_DIGITS] + "…")
            return
        customer_text.add_to_case(ctx, number, match.group(2).strip())

    def _in_thread(self, ctx: Context, cmd: Command, line: CommandLine, thread: int) -> None:
        """A customer's command in the thread of their incident `thread` (a reply to a mail about it,
        a `[#N]` subject): the incident a command needs and was not given is that one. Answering
        "Incident #1 is open … send "severity 1 <level>"" with `severity 1`, `severity critical`,
        `reopen`, `close`, or "Reabrir, por favor. Voltou a falhar." (its words added, as after
        `reopen 1`), the customer meant incident #1, whose number the thread already says. A
        command that fits as written keeps its meaning: a number of theirs is theirs to name
        (`status 2`, `severity 2 1`), and `status` alone lists their incidents (SPEC §2); where the
        one number does not fit as the incident's ("severity 1" asks for two), it is the next
        argument.

        Words after arguments that fit are added, as `with_words` adds them (`severity critical,
        production is down`), when the customer wrote some of the arguments or the words are only
        courtesy ("Close, thanks!", "Status, please"): a sentence that merely begins with a command
        word ("close to losing data here", "Status: still down") is what the customer says about
        the incident, and is added to it. Anything else is a command written wrong: its text goes
        on the incident too (filed silently it read as done), and the answer says how to write it."""
        rest = line.rest
        # The thread's number goes first, where a command's number goes ("severity 1" is
        # "severity <thread> 1"); a command that fits as written ("status 2", "status") keeps it.
        takes_case = any(arg.kind == "case" for arg in cmd.args)
        filled = f"{thread} {rest}".rstrip() if takes_case and not _parses(cmd, rest, ctx.lang) else None
        if filled is not None:
            said = with_words(cmd, filled)
            if said is not None and (said.words != rest or _only_courtesy(said.words)):
                self._run_with_words(ctx, cmd, said)
                return
        otherwise = kept = None
        if reads_as_prose(line) and not _begins_as_arguments(cmd, rest):
            otherwise = partial(self._to_case, ctx, thread)
        else:
            kept = partial(customer_text.add_to_case, ctx, thread, ctx.message.text.strip(), before_command=True)
        # Run with the thread's number where it was needed: what fits runs ("severity critical",
        # "reopen"); what does not, the usage says what is wrong with the rest.
        self._run(ctx, cmd, filled or rest, line.slash, otherwise=otherwise, kept=kept)

    # -- shared ----------------------------------------------------------------

    def _to_case(self, ctx: Context, number: int) -> None:
        customer_text.add_to_case(ctx, number, ctx.message.text.strip())

    def _run_with_words(self, ctx: Context, cmd: Command, said: WithWords) -> None:
        """A customer's command with their words after it ("close 12 thanks, it works now"): the
        words are added to the incident as `#12 thanks, it works now` would add them, then the
        command runs, and the answer says both. Words first, whatever the command: they are on
        the case before anything the command changes (the thanks before `close` closes it, the
        explanation before `severity 12 1` calls the engineers to it), and `status 12` shows them
        among its latest messages; one order for every command, none named here."""
        CustomerAnswers.to_command(ctx)
        # A command's words are always answered (bot.policy.acknowledgements), as `reopen N text`'s are.
        customer_text.add_to_case(ctx, said.number, said.words, before_command=True)
        cmd.handler(ctx, **said.values)

    def _run(
        self,
        ctx: Context,
        cmd: Command,
        rest: str,
        slash: bool,
        otherwise: Callable[[], None] | None = None,
        kept: Callable[[], None] | None = None,
    ) -> None:
        """Run `cmd`; when its arguments do not parse, `otherwise` (if given) instead of the usage,
        else `kept` (if given: the customer's text kept, said before the usage) and the usage."""
        try:
            values = parse_args(cmd, rest, ctx.topic_case, ctx.lang)
        except ParseError as exc:
            if otherwise is not None:
                otherwise()
                return
            CustomerAnswers.to_command(ctx)
            if kept is not None:
                kept()
            wrong = ctx.t(exc.msgid, **exc.values)  # may begin with an argument's name: "severity must be …"
            ctx.reply_text(
                wrong[:1].upper()
                + wrong[1:]
                + " "
                + ctx.t(_("Usage: {usage}"), usage=cmd.usage(slash=cmd.audience == "engineer", lang=ctx.lang))
            )
            return
        CustomerAnswers.to_command(ctx)
        cmd.handler(ctx, **values)

    def _unknown_command(self, ctx: Context, audience: Audience, line: CommandLine) -> None:
        close = self.commands.suggestions(audience, line.word)
        prefix = "/" if audience == "engineer" else ""
        # Looked up folded, quoted as typed: "créditoss" is not told it wrote "creditoss".
        word = line.typed
        # The help word in the sender's own language.
        help_word = prefix + self.commands.named(audience, "help").name_in(ctx.lang)
        if subs := self.commands.subs(audience, line.word):
            # The word is a command's, the word after it is none of its sub-commands ("/customer list").
            ctx.reply(
                _("{word} is followed by one of: {subs}. Send {help} for the list."),
                word=quoted(ctx.lang, prefix + word),
                subs=", ".join(subs),
                help=quoted(ctx.lang, help_word),
            )
        elif close:
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


class CustomerAnswers:
    """The gate of a linked customer's automatic answers on a channel with an hourly cap (email).

    The cap is what keeps two robots from answering each other for ever (SPEC §4); a person must
    still get their answers at a person's pace, and lose nothing. So the answers to a command they
    typed go on up to `strangers.COMMAND_ANSWERS` an hour, while everything else the bot says to
    them by itself (an acknowledgement, a question about plain text: all that a robot's mail ever
    earns) stops at the channel's cap. An answer withheld takes nothing with it: their text was
    added to its incident, or kept as a draft, before the answer was written; the engineers are
    told once an hour (`strangers.answers_withheld`), in the case topic or the alerts topic.
    """

    def __init__(self, ctx: Context, cap: int) -> None:
        self.ctx = ctx
        self.cap = cap
        #: The message is a command the customer typed (`to_command`).
        self.command = False
        self._told = False

    @staticmethod
    def to_command(ctx: Context) -> None:
        """What is said from now on answers a command the sender typed."""
        if isinstance(ctx.answer_gate, CustomerAnswers):
            ctx.answer_gate.command = True

    def __call__(self, _text: str) -> bool:
        ctx = self.ctx
        if strangers.within_cap(ctx.identity, self.cap, ctx.now, command=self.command):
            return True
        case_channel = ctx.deployment.case_channel
        if not self._told and case_channel is not None and ctx.customer is not None:
            self._told = True
            incident = incidents.get_incident(ctx.session, ctx.incident_id) if ctx.incident_id is not None else None
            case = incidents.case_topic(ctx.deployment, incident) if incident is not None else None
            strangers.answers_withheld(
                ctx.session,
                ctx.deployment,
                ctx.out,
                case or Topic(case_channel, ALERTS_TOPIC),
                ctx.identity,
                ctx.customer,
                self.cap,
                incident.id if case is not None and incident is not None else None,
            )
        return False


def _parses(cmd: Command, rest: str, lang: str) -> bool:
    """Do the words after the command word fit its arguments, all of them?"""
    try:
        parse_args(cmd, rest, None, lang)
    except ParseError:
        return False
    return True


def _only_courtesy(words: str) -> bool:
    """Words that add nothing to what a command says: "thanks", "please", "ok" (bot.policy.answers)."""
    return thank_you(words) or bare_answer(words) == "yes"


#: Punctuation around a number people write ("#12:", "1,"): not part of it.
_AROUND_A_NUMBER = "#:.,;!?()"


def _begins_as_arguments(cmd: Command, rest: str) -> bool:
    """Do the words after a command word begin as its arguments go on after the incident's number,
    that number written or not? Only a choice tells (a level, by its number or its name:
    "severity: critical, production is down", "severity 1, production is down", "gravidade 2 alta,
    …"): a number alone as often counts something ("status 3 servers are down"), and other words
    begin a sentence ("close to losing data here")."""
    after = [arg for arg in cmd.args if arg.kind != "case"]
    if not after or after[0].kind != "choice":
        return False
    tokens = rest.split()[:2]
    if len(tokens) == 2 and whole_number(tokens[0].strip(_AROUND_A_NUMBER)) is None:
        tokens = tokens[:1]  # only a number may stand before the choice: the incident's
    choice = dataclasses.replace(cmd, args=(after[0],))
    return any(_parses(choice, token, "en") for token in tokens)


def _kept_from_stranger(cmd: Command | None, line: CommandLine, text: str) -> tuple[str, Command | None]:
    """What an unlinked account's message keeps for after `link`: its text; of a customer command it
    may not use yet, only what the customer says in it ("open the disk died": "the disk died"), and
    nothing of a bare "status" or "credits". With the command it asked for, unless the message only
    begins with a command word ("status of my order?")."""
    if cmd is None:
        return text, None
    if [a.kind for a in cmd.args] == ["text"]:
        return line.rest, cmd
    try:
        parse_args(cmd, line.rest, None)
    except ParseError:
        if reads_as_prose(line):
            return text, None
    return "", cmd
