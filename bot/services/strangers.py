"""What accounts not linked to a customer may cost (SPEC §2, §7): strangers are answered,
but never so much that they could hold up customers.

Each unlinked account gets at most `PER_STRANGER` answers an hour, whatever it sends;
all of them together at most the share of a channel's posting budget that
`Deployment.stranger_budgets` gives them; the "who are you" answer once a day, and the
pointer to direct messages for a public mention once a day.

On a channel with an hourly cap of automatic answers (email: SPEC §4, so that two robots can
never loop), a linked customer's answers are capped too (`within_cap`), at two heights: the cap
for what the bot says unasked (an acknowledgement, a question about plain text), and
`COMMAND_ANSWERS` for the answers to commands they type. An answer withheld loses none of their
words, and the engineers hear of it once an hour (`answers_withheld`).

A colleague of a customer (an unknown email address at the domain of exactly one customer's
addresses, not a free-mail provider's: `colleague_of`) is told with the daily answer that the
support team was told, and the engineers read in the alerts topic who wrote and the command that
links the address (`colleague_wrote`): once a day per address, with that answer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session

from adapters.markup import inert
from bot.deployment import Deployment
from bot.i18n import _, format_when, render
from bot.policy.throttle import Allowance, Window
from bot.services import customers, drafts
from storage.models import Customer, Identity, Outbox, StrangerAnswers

if TYPE_CHECKING:  # bot.services.outgoing imports this module (through copies)
    from bot.services.outgoing import Outgoing, Topic

#: An unknown sender gets the "how to buy support / link" answer at most this often.
UNKNOWN_NOTICE_EVERY = timedelta(days=1)
#: Anyone mentioning the bot publicly is pointed to direct messages at most this often.
PUBLIC_NOTICE_EVERY = timedelta(days=1)
#: Whatever an unlinked account sends (help, lang, link with wrong codes …), it gets at most this:
#: room for the daily answer, `help` and every wrong activation code up to the one that says to
#: wait (bot.services.customers.CODE_ATTEMPTS), and still no loop with a robot.
PER_STRANGER = Allowance(10, timedelta(hours=1))
#: The answers a linked customer gets an hour to the commands they type (`status`, `open …`,
#: `severity 1 2`), or the channel's cap if higher. A person asks each one and waits for its
#: answer: with the cap alone (EMAIL_ANSWERS_PER_HOUR, 5) a customer's sixth command of the hour
#: went unanswered. What a robot sends back is text, not commands, and the answers to text (an
#: acknowledgement, a question) keep the channel's cap, so a robot that answers every mail still
#: gets no more; one whose every mail were a command would stop here.
COMMAND_ANSWERS = 30
log = logging.getLogger("deskbot.services.strangers")

#: Domains anyone can have a mailbox at: two people there are no more colleagues than two
#: customers of one shop. Short on purpose (the ones common in Portugal and Europe); none of the
#: packages the project uses keeps such a list. `_FREE_MAIL_NAMES` are providers with a domain
#: per country (yahoo.co.uk, gmx.de, hotmail.pt).
_FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "aol.com",
        "mail.com",
        "web.de",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "tutanota.com",
        "tuta.io",
        "fastmail.com",
        "hushmail.com",
        "qq.com",
        "163.com",
        "sapo.pt",
        "iol.pt",
        "clix.pt",
        "netcabo.pt",
    }
)
_FREE_MAIL_NAMES = frozenset({"yahoo", "ymail", "gmx", "outlook", "hotmail", "live", "libero", "orange", "laposte"})


def _due(last: datetime | None, every: timedelta, now: datetime) -> bool:
    return last is None or now - last >= every or now < last


def unknown_writes(session: Session, identity: Identity, text: str, now: datetime) -> bool:
    """An unlinked account wrote `text` (not a command it may use): kept as its draft, for after
    `link`. Is the "I don't know this account" answer due (and so taken now)? Once a day."""
    if text:
        drafts.keep_unlinked(session, identity.id, text, now)
    last = identity.unknown_notice_at
    if last is not None and now - last < UNKNOWN_NOTICE_EVERY:
        return False
    identity.unknown_notice_at = now
    return True


def due_public_notice(identity: Identity, now: datetime) -> bool:
    """Is the "write me a direct message" answer to a public mention due (and so taken now)? Once a day."""
    if not _due(identity.public_notice_at, PUBLIC_NOTICE_EVERY, now):
        return False
    identity.public_notice_at = now
    return True


def within_cap(identity: Identity, cap: int, now: datetime, *, command: bool = False) -> bool:
    """May `identity` get one more automatic answer this hour, at most `cap` an hour (a channel's
    `answers_per_hour`: email)? Taken if so. Whatever an address sends, a robot answering every
    answer included, it gets no more: two robots can never loop. `command`: the answer to a
    command a linked customer typed, which may go on up to `COMMAND_ANSWERS` (counted in the
    same hour: the answers to their text stop at `cap` with those to commands included)."""
    limit = max(cap, COMMAND_ANSWERS) if command else cap
    allowed, window = Allowance(limit, PER_STRANGER.length).take(
        Window(identity.answers_since, identity.answers_used), now
    )
    if not allowed:
        log.info(
            "automatic answer withheld: the address had its answers this hour",
            extra={"channel": identity.channel, "identity_id": identity.id},
        )
        return False
    identity.answers_since, identity.answers_used = window.since, window.used
    return True


def answers_withheld(
    session: Session,
    deployment: Deployment,
    out: Outgoing,
    topic: Topic,
    identity: Identity,
    customer: Customer,
    cap: int,
    incident_id: int | None = None,
) -> None:
    """`within_cap` withheld an answer to `customer`'s `identity`: the engineers read so in `topic`
    (the case topic of the incident the message was about, else the alerts topic), once in that
    topic for the hour that holds the answers back, however many are withheld. The notice written
    already is the record that it was: the same text, written since that hour began."""
    if identity.answers_since is None:
        return
    until = identity.answers_since + PER_STRANGER.length
    text = (
        f"⚠ Some automatic answers to {inert(customer.name[:200])} ({inert(identity.address[:200])} by "
        f"{identity.channel}) are held back until {format_when(until, 'en', deployment.settings.calendar.tz)}: "
        f"at most {cap} an hour answer what they write, {max(cap, COMMAND_ANSWERS)} their commands, so that "
        "two robots can never answer each other for ever. Nothing they write is lost (it is added to "
        "their incident, or kept as their draft); /reply reaches them as usual."
    )
    told = select(Outbox.id).where(
        Outbox.channel == topic.channel,
        Outbox.recipient.is_(None),  # type: ignore[union-attr]
        Outbox.topic == topic.topic,
        Outbox.created_at >= identity.answers_since,
        Outbox.text == text,
    )
    if session.scalars(told.limit(1)).first() is None:
        out.say(topic, text, incident_id=incident_id)


def may_answer(
    session: Session, deployment: Deployment, identity: Identity, text: str, now: datetime, cap: int | None = None
) -> bool:
    """May the unlinked `identity` get `text` now? Within its hourly allowance (and the channel's
    `cap` an hour, if lower), and within the share of its channel's posting budget that strangers
    may use together; taken if so."""
    channel = identity.channel
    allowance = PER_STRANGER if cap is None or cap >= PER_STRANGER.limit else Allowance(cap, PER_STRANGER.length)
    allowed, mine = allowance.take(Window(identity.answers_since, identity.answers_used), now)
    if not allowed:
        log.info(
            "answer to an unlinked account withheld: its hourly allowance is spent",
            extra={"channel": channel, "identity_id": identity.id},
        )
        return False
    budget = deployment.stranger_budgets.get(channel)
    if budget is not None:
        row = session.get(StrangerAnswers, channel) or StrangerAnswers(channel=channel)
        allowance = Allowance(budget.posts, budget.window)
        allowed, shared = allowance.take(Window(row.since, row.used), now, budget.posts_for(text))
        if not allowed:
            log.warning(
                "answer to an unlinked account withheld: strangers used their share of the channel's posting budget",
                extra={"channel": channel, "identity_id": identity.id},
            )
            return False
        row.since, row.used = shared.since, shared.used
        session.add(row)
    identity.answers_since, identity.answers_used = mine.since, mine.used
    return True


def free_mail(domain: str) -> bool:
    """Is `domain` (lower case) a free-mail provider's? Listed whole, or one of
    `_FREE_MAIL_NAMES` followed by a country's or a generic ending only (`yahoo.com.br`,
    `gmx.net`: labels of at most three letters), so that `outlook.acme.example` is not."""
    if domain in _FREE_MAIL_DOMAINS:
        return True
    name, _dot, ending = domain.partition(".")
    return name in _FREE_MAIL_NAMES and bool(ending) and all(0 < len(label) <= 3 for label in ending.split("."))


def colleague_of(session: Session, identity: Identity) -> Customer | None:
    """The customer an unknown email address may belong to: the only customer with an email
    address at its domain, unless anyone may have a mailbox there (`free_mail`). None for any
    other account, an address that is not one, or a domain of no customer's or of several."""
    # Here, not above: bot.services.copies imports this module.
    from bot.services.copies import email_address

    if identity.channel != customers.EMAIL_CHANNEL or identity.customer_id is not None:
        return None
    if email_address(identity.address) != identity.address:
        return None  # not a plain address: one kept apart as unverified (bot.router.UNVERIFIED)
    domain = customers.email_domain(identity.address)
    if domain is None or free_mail(domain):
        return None
    found = customers.customers_at_domain(session, domain, 2)
    return found[0] if len(found) == 1 else None


def colleague_wrote(out: Outgoing, deployment: Deployment, identity: Identity, customer: Customer) -> bool:
    """The unknown email address `identity`, at the domain of `customer` (`colleague_of`), wrote
    and got its daily answer: the engineers read so in the alerts topic, with the command that
    links it. Said with that answer, so once a day per address; False if no channel carries the
    engineers' topics (nobody was told). The address is the sender's own words: inert, the
    command too (a backtick is allowed in an address)."""
    # Here, not above: bot.services.delivery_notices imports bot.services.outgoing, which imports this module.
    from bot.services.delivery_notices import ALERTS_TOPIC
    from bot.services.outgoing import Topic

    if deployment.case_channel is None:
        return False
    text = render(
        "en",
        _(
            '📨 {address} wrote to the support desk and is linked to no customer; {name} (id {id}) has an email address at the same domain. If it is theirs, link it with {command} (what it wrote then waits for its "open"). The sender was told only that the support team was informed.'
        ),
        address=inert(identity.address[:200]),
        name=inert(customer.name[:200]),
        id=customer.id,
        command=inert(f"/customer link {customer.id} {identity.address[:200]}"),
    )
    out.say(Topic(deployment.case_channel, ALERTS_TOPIC), text)
    return True
