"""Erasing a customer's personal data (GDPR art. 17) while keeping what the vendor must keep.

Portuguese law has invoicing records kept for years, so a customer is never deleted: their cases
keep their numbers, dates, states, severity, chargeable flag and pack, their credit packs stay
whole, and the billing report counts them as before, under a neutral name ("erased customer 12").
Everything that says who they are or what they wrote goes: their accounts, activation codes,
drafts, the words of every message on their cases (an engineer's reply or note quotes them too),
their files, the cases' subjects and topic names, the people they copied, and what the outbox
holds for them. `survey` says what that is without changing anything; `erase` does it, in the
caller's transaction, so it happens whole or not at all.

A customer with an open case is refused (`OpenCases`): erasing it would leave the team with a case
they cannot answer. What deskbot cannot reach stays outside: the case topics in Zulip (an
organisation administrator deletes them: `Survey.topics` names them), and whatever was already
sent by mail or posted on Mastodon.

Every table of storage.models is either handled below or left for the reason given:

- `ChannelCursor`, `StrangerAnswers`: a channel's position and its per-channel counters; nobody's.
- `ProcessedInbound`: its key (channel, platform message id) is what keeps a redelivered message
  from being handled twice (SPEC §7), so it stays; only `failed_text`, a message's words, goes.
- `CreditPack`: kept whole; `granted_by` and `cancelled_by` name the vendor's staff, not the customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlmodel import Session

from adapters.markup import inert
from bot.services import credits, incidents
from bot.services.customers import CustomerError
from bot.services.delivery_notices import ALERTS_TOPIC
from storage.models import (
    ActivationCode,
    Customer,
    Draft,
    Identity,
    Incident,
    IncidentAttachment,
    IncidentCopy,
    IncidentEvent,
    IncidentMessage,
    Outbox,
    PostedMessage,
    ProcessedInbound,
)

#: What an erased text (a message body, a file name, an outbox row's text) reads.
ERASED = "[erased]"

#: History entries whose detail the system wrote and that quotes nobody: who a case was assigned to
#: (an engineer), the severity levels, and what became of the credit of a vendor bug. Any other
#: detail is erased: a resolution summary or a waiver's reason is an engineer's free text about the
#: customer's problem, a topic rename quotes the topic's names (the customer's name and subject).
#: The action itself always stays, so "not charged: vendor bug / waived" is still told.
_PLAIN_DETAILS = ("assigned", "severity", incidents.VENDOR_BUG)


def erased_name(customer_id: int) -> str:
    """The neutral name an erased customer keeps: unique (their id), and still found by it."""
    return f"erased customer {customer_id}"


class OpenCases(CustomerError):
    """The customer has cases still open: they are closed or resolved before the erasure."""

    def __init__(self, customer: Customer, numbers: list[int]) -> None:
        self.numbers = numbers
        cases = ", ".join(f"#{n}" for n in numbers)
        super().__init__(
            f"{{name}} has open cases: close or resolve {cases} first; nothing was erased.", name=customer.name
        )


@dataclass(frozen=True)
class Survey:
    """What erasing a customer removes, counted before anything changes."""

    customer_id: int
    #: The customer's name before the erasure (what the operator asked for, and the topics show).
    name: str
    #: (channel, address) of every account erased.
    accounts: list[tuple[str, str]]
    #: The customer's case numbers: kept, emptied of what they said.
    cases: list[int]
    #: The case topics as named before the erasure: Zulip keeps them until an administrator deletes them.
    topics: list[str]
    packs: int
    messages: int
    files: int
    drafts: int
    codes: int
    copies: int
    #: Outbox rows not sent yet (cancelled) and the others (sent or failed: emptied).
    unsent: int
    sent: int
    #: Texts kept of messages whose handling failed (`ProcessedInbound.failed_text`).
    failed_texts: int


class _Scope:
    """Which rows of each table are the customer's, as SQL conditions.

    The identities and the addresses are read once, before anything changes: the statements of
    `erase` empty the very columns (a message's identity, a row's recipient) that point at them.
    """

    def __init__(self, session: Session, customer: Customer) -> None:
        assert customer.id is not None
        self.customer = customer
        self.cases = select(Incident.id).where(Incident.customer_id == customer.id)
        # Their accounts, and accounts linked to nobody now that wrote on their cases: an address
        # they had before (`customers email remove`) or someone writing for them.
        wrote_here = select(IncidentMessage.identity_id).where(
            IncidentMessage.incident_id.in_(self.cases), IncidentMessage.direction == "in"
        )
        theirs = or_(
            Identity.customer_id == customer.id, and_(Identity.customer_id.is_(None), Identity.id.in_(wrote_here))
        )
        found = session.execute(
            select(Identity.id, Identity.channel, Identity.address).where(theirs).order_by(Identity.id)
        )
        rows = found.all()
        self.identity_ids = [row.id for row in rows]
        self.accounts = [(row.channel, row.address) for row in rows]
        # Every form in which their cases' history names them: their addresses, and the authors of
        # their messages (an account re-keyed since, like a Zulip email become a user id, wrote under its old one).
        authors = session.scalars(
            select(IncidentMessage.author).where(
                IncidentMessage.incident_id.in_(self.cases), IncidentMessage.direction == "in"
            )
        )
        self.authors = sorted({*(address for _, address in self.accounts), *authors, *filter(None, [customer.email])})

    def messages(self) -> ColumnElement[bool]:
        # Every message on their cases (replies and notes quote them), and theirs on others' cases
        # (a person copied on another customer's case writes there).
        return or_(IncidentMessage.incident_id.in_(self.cases), IncidentMessage.identity_id.in_(self.identity_ids))

    def files(self) -> ColumnElement[bool]:
        return or_(IncidentAttachment.incident_id.in_(self.cases), self.waiting_files())

    def waiting_files(self) -> ColumnElement[bool]:
        """Files waiting with a draft of theirs (no case yet): they go with the draft."""
        return and_(IncidentAttachment.incident_id.is_(None), IncidentAttachment.waiting_for.in_(self.identity_ids))

    def drafts(self) -> ColumnElement[bool]:
        return or_(Draft.identity_id.in_(self.identity_ids), Draft.incident_id.in_(self.cases))

    def copies(self) -> ColumnElement[bool]:
        """The people copied on their cases, and their own addresses copied on anyone's."""
        return or_(
            IncidentCopy.incident_id.in_(self.cases), self._on_account(IncidentCopy.channel, IncidentCopy.address)
        )

    def outbox(self) -> ColumnElement[bool]:
        """Rows about their cases (to them, or to the case topic), rows to their accounts, and the
        alerts that name them (`deskbot alerts` topic: a stranger at their domain, answers held
        back), found as those alerts write a name or address: as inline code (`inert`)."""
        to_them = and_(Outbox.kind == "direct", self._on_account(Outbox.channel, Outbox.recipient))
        named = [inert(value[:200]) for value in (self.customer.name, *self.authors)]
        alerts = and_(
            Outbox.kind == "topic",
            Outbox.topic == ALERTS_TOPIC,
            Outbox.incident_id.is_(None),
            or_(false(), *(Outbox.text.contains(value, autoescape=True) for value in named)),
        )
        return or_(Outbox.incident_id.in_(self.cases), to_them, alerts)

    def failed_texts(self) -> ColumnElement[bool]:
        """Texts kept of their messages whose handling failed. The record names no sender, but the
        failure path (bot.intake) apologises to the sender in the same transaction, at the same
        instant: the apology's row, to one of their accounts, is what ties the text to them."""
        apology = exists().where(
            Outbox.kind == "direct",
            Outbox.channel == ProcessedInbound.channel,
            Outbox.created_at == ProcessedInbound.processed_at,
            self._on_account(Outbox.channel, Outbox.recipient),
        )
        return and_(ProcessedInbound.failed_text.is_not(None), apology)

    def _on_account(self, channel: ColumnElement[str], address: ColumnElement[str | None]) -> ColumnElement[bool]:
        """`(channel, address)` is one of their accounts (addresses compared without case: mail)."""
        pairs = [and_(channel == c, func.lower(address) == a.lower()) for c, a in self.accounts]
        return or_(false(), *pairs)


def survey(session: Session, customer: Customer) -> Survey:
    """What `erase` would remove, changing nothing; OpenCases if the customer has open cases."""
    return _survey(session, _Scope(session, customer))


def _survey(session: Session, scope: _Scope) -> Survey:
    customer = scope.customer
    assert customer.id is not None
    cases = session.execute(
        select(Incident.id, Incident.state, Incident.topic)
        .where(Incident.customer_id == customer.id)
        .order_by(Incident.id)
    ).all()
    still_open = [number for number, state, _ in cases if state == incidents.OPEN]
    if still_open:
        raise OpenCases(customer, still_open)

    def count(model: type, condition: ColumnElement[bool]) -> int:
        return session.scalar(select(func.count()).select_from(model).where(condition)) or 0

    return Survey(
        customer_id=customer.id,
        name=customer.name,
        accounts=scope.accounts,
        cases=[number for number, _, _ in cases],
        topics=[topic for _, _, topic in cases if topic],
        packs=len(credits.packs_of(session, customer.id)),
        messages=count(IncidentMessage, scope.messages()),
        files=count(IncidentAttachment, scope.files()),
        drafts=count(Draft, scope.drafts()),
        codes=count(ActivationCode, ActivationCode.customer_id == customer.id),
        copies=count(IncidentCopy, scope.copies()),
        unsent=count(Outbox, and_(scope.outbox(), Outbox.state == "pending")),
        sent=count(Outbox, and_(scope.outbox(), Outbox.state != "pending")),
        failed_texts=count(ProcessedInbound, scope.failed_texts()),
    )


def erase(session: Session, customer: Customer) -> Survey:
    """Erase the customer's personal data in the session's transaction (the caller commits): what
    was removed, counted before. OpenCases, with nothing changed, if the customer has open cases.

    Their credit packs are locked first, as opening a case locks them (bot.services.credits): a
    case opened before is seen here, and refused, and none is opened beside the erasure. A message
    of theirs handled at the very moment may still leave its text behind (in a failed message's
    record): erase once the customer has stopped writing.
    """
    assert customer.id is not None
    credits.packs_of(session, customer.id, lock=True)
    scope = _Scope(session, customer)
    done = _survey(session, scope)
    placeholder = erased_name(customer.id)
    number = cast(Incident.id, String)

    # Before the outbox is emptied: the apology rows to their accounts say which texts are theirs.
    session.execute(update(ProcessedInbound).where(scope.failed_texts()).values(failed_text=ERASED))

    # Rows not sent yet never go; every row keeps only what says that something was sent, when, on
    # which channel and about which case (delivery history, metrics): never to whom or what.
    unsent = list(session.scalars(select(Outbox.id).where(scope.outbox(), Outbox.state == "pending")))
    session.execute(
        update(Outbox)
        .where(scope.outbox())
        .values(
            text=ERASED,
            recipient=None,
            conversation=None,
            topic=None,
            quote=None,
            said=None,
            files=None,
            subject=None,
            copies=None,
            secret=None,
            last_error=None,  # a platform's refusal often quotes the address
        )
    )
    if unsent:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(unsent), Outbox.state == "pending")
            .values(state="failed", last_error="cancelled: the customer's personal data was erased")
        )

    # Messages keep their direction, channel and time (the case's course: when it was answered); an
    # engineer's name stays on their replies and notes: the vendor's staff, not the customer.
    session.execute(
        update(IncidentMessage)
        .where(scope.messages())
        .values(
            body=ERASED,
            conversation=None,  # an email thread's Message-IDs, which name the customer's mail server
            identity_id=None,
            author=case((IncidentMessage.direction == "in", placeholder), else_=IncidentMessage.author),
        )
    )
    # Files keep their type, size and SHA-256 (what the case held: a digest tells nothing of the
    # content, yet shows which file it was to whoever holds it); bytes, name and where they were
    # uploaded (a Zulip path holds the name) go. The message id, an email's Message-ID, goes too, but
    # for the prefix that says whose file it was (bot.services.attachments: "out:", "note:").
    origin = case(
        (IncidentAttachment.message_id.like("out:%"), "out:" + ERASED),
        (IncidentAttachment.message_id.like("note:%"), "note:" + ERASED),
        else_=ERASED,
    )
    session.execute(delete(IncidentAttachment).where(scope.waiting_files()))
    session.execute(
        update(IncidentAttachment)
        .where(IncidentAttachment.incident_id.in_(scope.cases))
        .values(data=None, name=ERASED, uploads=None, message_id=origin, waiting_for=None)
    )
    # The history keeps every action and its time: how the case went, what was charged.
    session.execute(
        update(IncidentEvent)
        .where(IncidentEvent.incident_id.in_(scope.cases))
        .values(
            actor=case((IncidentEvent.actor.in_(scope.authors), placeholder), else_=IncidentEvent.actor),
            detail=case((IncidentEvent.action.in_(_PLAIN_DETAILS), IncidentEvent.detail), else_=None),
        )
    )
    session.execute(delete(IncidentCopy).where(scope.copies()))
    # The bot's posts about their cases: a reply to one would join the erased case.
    session.execute(delete(PostedMessage).where(PostedMessage.incident_id.in_(scope.cases)))
    session.execute(delete(Draft).where(scope.drafts()))
    session.execute(delete(ActivationCode).where(ActivationCode.customer_id == customer.id))
    session.execute(update(ActivationCode).where(ActivationCode.used_by.in_(scope.identity_ids)).values(used_by=None))
    # Cases keep number, customer, pack, state, severity, chargeable flag, dates and assignee
    # (an engineer): the invoice's line and the response record.
    session.execute(
        update(Incident)
        .where(Incident.customer_id == customer.id)
        .values(subject=literal("case #") + number + " (erased)", topic=literal("#") + number + " (erased)")
    )
    session.execute(delete(Identity).where(Identity.id.in_(scope.identity_ids)))
    # The record stays, as the invoices' customer: its id and since when it was one.
    customer.name, customer.email, customer.lang = placeholder, None, None
    session.flush()
    return done
