"""The facts about this running bot that the rules depend on: settings, which channel carries
the case topics and how it names them, who is trusted, what strangers may cost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from adapters.channel import engineer_by_setting
from bot.config import Settings

if TYPE_CHECKING:
    from adapters.channel import Channel, FileRefusal, Inbound, OutboundFile

T = TypeVar("T")
R = TypeVar("R")


def plain_topic(number: int, customer: str, subject: str) -> str:
    """A case topic's name where no channel carries case topics (nothing is posted to it)."""
    return f"#{number} {customer}: {subject}"


def no_engineer(message: Inbound) -> str | None:
    """Where no channel carries case topics, nobody is an engineer there."""
    return None


def as_written(text: str, customer_channel: str) -> str:
    """Where no channel carries case topics, an engineer's words go to the customer as written."""
    return text


def as_they_wrote(channel: str, value: str) -> str:
    """Without channels to ask, a customer's words go into answers as they wrote them."""
    return value


def carries_all(channel: str, file: OutboundFile) -> FileRefusal | None:
    """Without channels to ask, no file is refused."""
    return None


def never_down(channel: str) -> bool:
    """Without a runtime watching the channels, none is known to be down."""
    return False


def no_mention(engineer: str) -> str:
    """Where no channel carries case topics, nobody is notified in one."""
    return ""


@dataclass(frozen=True)
class StrangerBudget:
    posts: int
    window: timedelta
    post_size: int | None = None

    def posts_for(self, text: str) -> int:
        return 1 if not self.post_size else max(1, -(-len(text) // self.post_size))


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    #: The channel that carries case topics ("zulip", or "console" when trying deskbot locally).
    case_channel: str | None = None
    #: How that channel names the topic of case (number, customer, subject) (`Channel.case_topic`).
    case_topic: Callable[[int, str, str], str] = plain_topic
    #: Who the sender of a message on that channel is as an engineer (`Channel.engineer_name`: the
    #: Zulip channel knows engineers by user id), or None.
    engineer_of: Callable[[Inbound], str | None] = no_engineer
    #: An engineer's words (written on that channel) as the customer on a channel is to read them
    #: (`Channel.words_for_customer`: Zulip's markup and links into the organisation made plain).
    for_customer: Callable[[str, str], str] = as_written
    #: A customer's own words inside an answer to them on a channel (`Channel.their_words`: inert
    #: in Zulip markdown), by the channel's name and the value.
    their_words: Callable[[str, str], str] = as_they_wrote
    #: Identities, as (channel, address), that are engineers whatever the channel says (the console's).
    trusted_engineers: frozenset[tuple[str, str]] = frozenset()
    #: The name the engineer with an address works under, given the emails DESKBOT_ENGINEERS names,
    #: or None (`Channel.engineer_at` of the channel that carries case topics).
    engineer_at: Callable[[str, frozenset[str]], str | None] = engineer_by_setting
    #: Whether the account (channel, address) is an engineer's (`Channel.is_engineer`, or trusted).
    is_engineer: Callable[[str, str], bool] = lambda channel, address: False
    #: Per channel: the posts answers to unlinked accounts may use per window, and the
    #: characters one post carries (see `stranger_budgets`). A channel not named is unbounded.
    stranger_budgets: dict[str, StrangerBudget] = field(default_factory=dict)
    #: Why a channel (by name) cannot carry a file to a person, or None (`Channel.cannot_carry`).
    cannot_carry: Callable[[str, OutboundFile], FileRefusal | None] = carries_all
    #: Whether a channel (by name) cannot reach its platform now: what it is to send waits in the
    #: outbox until it can (the runtime's health watch, as `/readyz` tells it).
    is_down: Callable[[str], bool] = never_down
    #: What notifies the engineer working under a name in a case topic (`Channel.mention` of the
    #: channel that carries them), or "".
    mention: Callable[[str], str] = no_mention

    @classmethod
    def of(
        cls,
        settings: Settings,
        channels: list[Channel],
        trusted_engineers: frozenset[tuple[str, str]] = frozenset(),
        is_down: Callable[[str], bool] = never_down,
    ) -> Deployment:
        """The deployment of `channels`: the first that carries case topics carries them."""
        case_channel = next((c for c in channels if c.carries_case_topics), None)
        return cls(
            settings=settings,
            case_channel=case_channel.name if case_channel else None,
            case_topic=case_channel.case_topic if case_channel else plain_topic,
            engineer_of=case_channel.engineer_name if case_channel else no_engineer,
            engineer_at=case_channel.engineer_at if case_channel else engineer_by_setting,
            for_customer=case_channel.words_for_customer if case_channel else as_written,
            their_words=asking(channels, lambda c, value: c.their_words(value), as_they_wrote),
            trusted_engineers=trusted_engineers,
            is_engineer=lambda channel, address: (
                (channel, address) in trusted_engineers
                or (case_channel is not None and channel == case_channel.name and case_channel.is_engineer(address))
            ),
            stranger_budgets=stranger_budgets(channels),
            cannot_carry=asking(channels, lambda c, file: c.cannot_carry(file), carries_all),
            is_down=is_down,
            mention=case_channel.mention if case_channel else no_mention,
        )


def asking(
    channels: list[Channel], ask: Callable[[Channel, T], R], otherwise: Callable[[str, T], R]
) -> Callable[[str, T], R]:
    """A question about a value on a channel, by the channel's name, put to that channel (`ask`);
    a channel not among `channels` is answered by `otherwise`."""
    by_name = {c.name: c for c in channels}

    def asked(channel: str, value: T) -> R:
        found = by_name.get(channel)
        return ask(found, value) if found is not None else otherwise(channel, value)

    return asked


#: The share of a platform's posting budget that answers to strangers may use.
STRANGER_SHARE = 5


def stranger_budgets(channels: list[Channel]) -> dict[str, StrangerBudget]:
    """A fifth of each channel's posting budget, for answers to unlinked accounts."""
    return {
        c.name: StrangerBudget(
            max(1, c.posting_budget[0] // STRANGER_SHARE), timedelta(seconds=c.posting_budget[1]), c.post_size
        )
        for c in channels
        if c.posting_budget is not None
    }
