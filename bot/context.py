"""What a command handler works with: the transaction, the message, the clock, and who asked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from adapters.channel import Inbound
from bot.commands import case_from_topic
from bot.config import Settings
from bot.i18n import render
from storage import outbox
from storage.models import Customer, Identity


@dataclass(frozen=True)
class Deployment:
    """The facts about this running bot that routing depends on."""

    settings: Settings
    #: The channel that carries case topics ("zulip", or "console" when trying deskbot locally).
    case_channel: str | None = None
    #: Identities, as (channel, address), that are engineers without a Zulip pin (the console's).
    trusted_engineers: frozenset[tuple[str, str]] = frozenset()
    #: Per channel: the posts answers to unlinked accounts may use per window, and the
    #: characters one post carries (see `stranger_budgets`). A channel not named is unbounded.
    stranger_budgets: dict[str, StrangerBudget] = field(default_factory=dict)


@dataclass(frozen=True)
class StrangerBudget:
    posts: int
    window: timedelta
    post_size: int | None = None

    def posts_for(self, text: str) -> int:
        return 1 if not self.post_size else max(1, -(-len(text) // self.post_size))


#: The share of a platform's posting budget that answers to strangers may use.
STRANGER_SHARE = 5


def stranger_budgets(channels: list) -> dict[str, StrangerBudget]:  # noqa: ANN001 — adapters.channel.Channel
    """A fifth of each channel's posting budget, for answers to unlinked accounts."""
    return {
        c.name: StrangerBudget(
            max(1, c.posting_budget[0] // STRANGER_SHARE), timedelta(seconds=c.posting_budget[1]), c.post_size
        )
        for c in channels
        if c.posting_budget is not None
    }


@dataclass
class Context:
    session: Session
    message: Inbound
    now: datetime
    deployment: Deployment
    identity: Identity
    customer: Customer | None = None
    #: Set when the sender is an authorised engineer: their email (or console name).
    engineer: str | None = None
    replies: list[str] = field(default_factory=list)
    #: The incident this message was about, once known (for log lines).
    incident_id: int | None = None
    #: What happened, for metrics once the transaction commits: ("incident_opened", 0), ("first_response", seconds).
    events: list[tuple[str, float]] = field(default_factory=list)
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
    def topic_case(self) -> int | None:
        return case_from_topic(self.message.topic) if self.message.kind == "topic" else None

    def t(self, msgid: str, /, **values: object) -> str:
        """`msgid` in the sender's language."""
        return render(self.lang, msgid, **values)

    def reply(self, msgid: str, /, *, secret: str | None = None, **values: object) -> None:
        """Answer the sender where they wrote (their DM, or the case topic).

        `secret`: a value the answer shows in clear (an activation code); the outbox masks
        it in the stored text once the answer is delivered.
        """
        self.reply_text(self.t(msgid, **values), secret=secret)

    def reply_text(self, text: str, quote: str | None = None, secret: str | None = None) -> None:
        m = self.message
        if self.answer_gate is not None and not self.answer_gate(text):
            self.events.append(("answer_withheld", 0))
            return
        self.replies.append(text)
        if m.kind == "topic":
            outbox.enqueue(
                self.session,
                channel=m.channel,
                kind="topic",
                topic=m.topic,
                text=text,
                quote=quote,
                incident_id=self.incident_id,
                now=self.now,
                secret=secret,
            )
        else:
            outbox.enqueue(
                self.session,
                channel=m.channel,
                kind="direct",
                recipient=m.sender,
                conversation=m.conversation,
                text=text,
                quote=quote,
                incident_id=self.incident_id,
                now=self.now,
                secret=secret,
            )
