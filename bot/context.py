"""What a command handler works with: the transaction, the message, the clock, who asked,
the commands there are, and where its answers go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session

from adapters.channel import Inbound
from bot.commands import Registry
from bot.config import Settings
from bot.deployment import Deployment
from bot.i18n import Plural, render, render_plural
from bot.services.outgoing import Outgoing, to_sender
from storage.models import Customer, Identity


@dataclass
class Counted:
    """What a message did that the metrics count, once its transaction has committed."""

    incident_opened: bool = False
    #: Seconds from the customer's message to the engineer's first answer, when this was it.
    first_response: float | None = None


@dataclass
class Context:
    session: Session
    message: Inbound
    now: datetime
    deployment: Deployment
    identity: Identity
    #: What this message says, in order (the router hands it back to intake).
    out: Outgoing
    commands: Registry
    customer: Customer | None = None
    #: Set when the sender is an authorised engineer: their email (or console name).
    engineer: str | None = None
    replies: list[str] = field(default_factory=list)
    #: The incident this message was about, once known (for log lines).
    incident_id: int | None = None
    #: The people copied by the message whose text, kept as a draft, this message sent to that
    #: incident (`open`, `#N` alone): they are copied on it too.
    draft_copies: tuple[str, ...] = ()
    #: What happened, for the metrics once the transaction commits.
    counted: Counted = field(default_factory=Counted)
    #: Set by the router for an unlinked sender: asked before each answer, False withholds it.
    answer_gate: Callable[[str], bool] | None = None

    @property
    def settings(self) -> Settings:
        return self.deployment.settings

    @property
    def lang(self) -> str:
        if self.engineer:
            return "en"
        if self.customer is not None:
            return self.customer.lang
        return self.identity.lang or "en"

    @property
    def today(self) -> date:
        """The service time zone's date (pack validity is counted in it)."""
        return self.settings.today(self.now)

    @property
    def topic_case(self) -> int | None:
        """The case of the topic the message was written in (the channel read it from the topic's name)."""
        return self.message.case if self.message.kind == "topic" else None

    def t(self, msgid: str, /, **values: object) -> str:
        """`msgid` in the sender's language."""
        return render(self.lang, msgid, **values)

    def tn(self, message: Plural, n: int, /, **values: object) -> str:
        """`message` in the sender's language, in the form the number `n` asks for."""
        return render_plural(self.lang, n, message, **values)

    def reply(self, msgid: str, /, *, secret: str | None = None, **values: object) -> None:
        """Answer the sender where they wrote (their DM, or the case topic).

        `secret`: a value the answer shows in clear (an activation code); the outbox masks
        it in the stored text once the answer is delivered.
        """
        self.reply_text(self.t(msgid, **values), secret=secret)

    def reply_text(self, text: str, secret: str | None = None) -> None:
        if self.answer_gate is not None and not self.answer_gate(text):
            return
        self.replies.append(text)
        self.out.say(to_sender(self.message), text, incident_id=self.incident_id, secret=secret)
