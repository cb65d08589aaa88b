"""What a command handler works with: the transaction, the message, the clock, who asked,
the commands there are, and where its answers go."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session

from adapters.channel import Inbound
from bot.commands import Registry
from bot.config import Settings
from bot.deployment import Deployment
from bot.i18n import Plural, render, render_plural
from bot.policy.arrival import arrival
from bot.services import incidents
from bot.services.customers import Who
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
    #: The sender as plain values; `identity` and `customer` load their ORM objects when first asked for.
    who: Who
    #: What this message says, in order (the router hands it back to intake).
    out: Outgoing
    commands: Registry
    #: The sender's identity when already loaded (the router made it: a new account); else `identity` loads it.
    loaded_identity: Identity | None = None
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

    _customer: Customer | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return self.deployment.settings

    @property
    def identity(self) -> Identity:
        """The sender's account (loaded on first use: most messages need only `who`)."""
        if self.loaded_identity is None:
            self.loaded_identity = self.session.get(Identity, self.who.identity_id)
            assert self.loaded_identity is not None  # `who` read it in this transaction
        return self.loaded_identity

    @property
    def customer_id(self) -> int | None:
        return self.who.customer_id

    @property
    def customer(self) -> Customer | None:
        """The sender's customer, if the account is linked (loaded on first use)."""
        if self._customer is None and self.who.customer_id is not None:
            self._customer = self.session.get(Customer, self.who.customer_id)
        return self._customer

    @customer.setter
    def customer(self, customer: Customer) -> None:
        """The account was linked to `customer` by this message."""
        assert customer.id is not None
        self._customer = customer
        self.who = dataclasses.replace(self.who, customer_id=customer.id, lang=customer.lang)

    @property
    def lang(self) -> str:
        if self.engineer:
            return "en"
        # The loaded objects first: a handler may have changed the language in this transaction.
        if self._customer is not None:
            return self._customer.lang or "en"
        if self.who.customer_id is None and self.loaded_identity is not None:
            return self.loaded_identity.lang or "en"
        return self.who.lang or "en"

    @property
    def arrived(self) -> datetime:
        """When the message arrived, as far as the platform's time can be trusted (`policy.arrival`).
        A customer's message counts from it where they are owed what the time they wrote gave
        them: the response clock (an incident opened or reopened, a message that starts the
        clock) and the day whose credit pays (`incidents.Writer.arrived`). All else (drafts,
        answers, quiet windows, engineers' messages) is `now`, when the message is handled."""
        return arrival(self.message.received_at, self.now)

    @property
    def today(self) -> date:
        """The service time zone's date (pack validity is counted in it)."""
        return self.settings.today(self.now)

    @functools.cached_property
    def topic_case(self) -> int | None:
        """The case of the topic the message was written in: the one its name begins with (the channel
        read it), else the one whose topic it is by the store (renamed without its number)."""
        if self.message.kind != "topic":
            return None
        if self.message.case is not None:
            return self.message.case
        return incidents.in_topic(self.session, self.deployment, self.message.channel, self.message.topic)

    def theirs(self, value: str) -> str:
        """A customer's own words (a subject, an excerpt, a file's name) as they are to appear in an
        answer to the sender: on Zulip inert unless plain, so that they cannot act as markdown."""
        return self.deployment.their_words(self.message.channel, value)

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
        self.out.say(to_sender(self.message), text, incident_id=self.incident_id, secret=secret, lang=self.lang)
