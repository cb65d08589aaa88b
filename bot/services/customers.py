"""Customers, their chat identities and activation codes (their credit packs: bot.services.credits)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, bindparam, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.numbers import is_id, whole_number
from storage.models import ActivationCode, Customer, Identity
from storage.prepared import Prepared

CODE_VALIDITY = timedelta(days=14)
#: Wrong activation codes allowed per account per window before it must wait.
CODE_ATTEMPTS = 5
CODE_WINDOW = timedelta(hours=1)
#: How precisely an identity's "last seen" time is kept.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# No 0/O/1/I/L: codes are read aloud and typed on phones.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


class CustomerError(Exception):
    """A customer operation that cannot be done; the message is one line for a person.

    Values that came from people (names, addresses) stay apart from the sentence, so that
    each view can show them safely: quoted on a terminal (`str`), inert in Zulip (`render`).
    """

    def __init__(self, template: str, **values: str) -> None:
        self.template, self.values = template, values
        super().__init__(self.render(repr))

    def render(self, show: Callable[[str], str]) -> str:
        return self.template.format(**{k: show(v) for k, v in self.values.items()})


def find_customer(session: Session, ref: str) -> Customer | None:
    """By id (digits), exact name, name but for case, or one of the customer's email addresses
    (surrounding quotes ignored)."""
    ref = _bare_ref(ref)
    number = whole_number(ref)
    if is_id(number):
        found = session.get(Customer, number)
        if found is not None:
            return found
    return (
        session.scalars(select(Customer).where(Customer.name == ref)).first()
        or session.scalars(select(Customer).where(_same_name(ref))).first()
        or (_by_email(session, ref) if "@" in ref else None)
    )


def _by_email(session: Session, address: str) -> Customer | None:
    """The customer one of whose email addresses (their email identities, in lower case) this is."""
    query = (
        select(Customer)
        .join(Identity, Identity.customer_id == Customer.id)
        .where(Identity.channel == EMAIL_CHANNEL, Identity.address == address.lower())
    )
    return session.scalars(query).first()


def similar_customers(session: Session, ref: str, limit: int) -> list[Customer]:
    """Customers whose name or email contains `ref` but for case: what an engineer may have meant
    when `find_customer` found nobody (suggested, never acted on)."""
    ref = _bare_ref(ref)
    if not ref:
        return []
    pattern = "%" + _escaped(ref) + "%"
    query = (
        select(Customer)
        .where(_like(Customer.name, pattern) | _like(Customer.email, pattern))
        .order_by(Customer.name, Customer.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _bare_ref(ref: str) -> str:
    return ref.strip().strip('"\u201c\u201d').strip()


def _same_name(name: str):  # noqa: ANN202 (a SQL condition)
    """`Customer.name` equal to `name` but for case: ILIKE with its wildcards escaped (`A_me` is not `Acme`)."""
    return _like(Customer.name, _escaped(name))


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")


def _like(column, pattern: str):  # noqa: ANN001, ANN202 (a SQL condition)
    # A plain String bind: the column's own type would cut a long pattern to the column's length.
    return column.ilike(literal(pattern, String()), escape="\\")


def create_customer(
    session: Session, name: str, email: str | None, lang: str | None, now: datetime
) -> tuple[Customer, str]:
    """A new customer and its one-time activation code (returned in clear only here). `lang`
    None: not chosen yet (`Customer.lang`). CustomerError, before anything is written, for a name
    that cannot be a customer's or an email address another customer has."""
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise CustomerError("A customer name must be 1 to 200 characters.")
    if whole_number(name) is not None:
        raise CustomerError("A customer name cannot be only digits (those are ids).")
    if session.scalars(select(Customer).where(_same_name(name))).first() is not None:
        raise CustomerError("A customer named {name} already exists.", name=name)
    # Before anything is written: a caller that answers the error and commits (an engineer's
    # command) must not keep a customer made without the address it asked for.
    if email and _by_email(session, email.strip()) is not None:
        raise CustomerError(
            "{channel} account {address} is already linked to another customer.",
            channel=EMAIL_CHANNEL,
            address=email.strip().lower(),
        )
    customer = Customer(name=name, email=email, lang=lang, created_at=now)
    session.add(customer)
    session.flush()
    if email:
        set_email(session, customer, email, now)
    return customer, new_activation_code(session, customer, now)


#: The channel a customer's email address is their account on.
EMAIL_CHANNEL = "email"


def set_email(session: Session, customer: Customer, email: str, now: datetime) -> None:
    """Give `customer` the address `email`: mail from it is theirs at once, with no activation code
    (the operator vouched for it), as an email identity linked to them (the address in lower case:
    mailbox names are compared case-insensitively). CustomerError if another customer has it."""
    customer.email = email
    address = email.strip().lower()
    if address:
        link_identity(session, customer, EMAIL_CHANNEL, address, now)


def email_addresses(session: Session, customer: Customer) -> list[str]:
    """The customer's email addresses (their email identities), the contact address first."""
    found = [i.address for i in identities_of(session, customer.id or 0) if i.channel == EMAIL_CHANNEL]
    contact = (customer.email or "").strip().lower()
    return sorted(found, key=lambda address: (address != contact, found.index(address)))


def add_email(session: Session, customer: Customer, email: str, now: datetime) -> bool:
    """Another address of `customer` (issue 17): mail from it is theirs too, at once. The first one
    becomes their contact address. False if it is theirs already; CustomerError if another
    customer's."""
    address = email.strip().lower()
    identity = account(session, EMAIL_CHANNEL, address, now)
    if identity.customer_id == customer.id:
        return False
    link_identity(session, customer, EMAIL_CHANNEL, address, now)
    if not customer.email:
        customer.email = email.strip()
    return True


def remove_email(session: Session, customer: Customer, email: str) -> bool:
    """Mail from `email` is no longer `customer`'s (their history stays); the contact address moves
    to another of their addresses, if any. False if it was not theirs."""
    address = email.strip().lower()
    identity = session.scalars(
        select(Identity).where(
            Identity.channel == EMAIL_CHANNEL, Identity.address == address, Identity.customer_id == customer.id
        )
    ).first()
    if identity is None:
        return False
    identity.customer_id = None
    if (customer.email or "").strip().lower() == address:
        others = [a for a in email_addresses(session, customer) if a != address]
        customer.email = others[0] if others else None
    return True


def new_activation_code(session: Session, customer: Customer, now: datetime) -> str:
    """A fresh one-time code for `customer`, returned in clear; the customer's earlier unused codes are revoked.

    Revoked means expired now: asking for a new code is what an engineer does when the old one
    went astray, so it must stop working.
    """
    session.execute(
        update(ActivationCode)
        .where(
            ActivationCode.customer_id == customer.id,
            ActivationCode.used_at.is_(None),
            ActivationCode.expires_at > now,
        )
        .values(expires_at=now)
    )
    code = "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(3))
    session.add(
        ActivationCode(code_hash=_hash(code), customer_id=customer.id, created_at=now, expires_at=now + CODE_VALIDITY)
    )
    return code


def _hash(code: str) -> str:
    normalised = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normalised.encode()).hexdigest()


def codes_again_at(identity: Identity) -> datetime | None:
    """When the account may try activation codes again, if its wrong codes have run out."""
    if identity.failed_codes < CODE_ATTEMPTS or identity.failed_codes_since is None:
        return None
    return identity.failed_codes_since + CODE_WINDOW


def redeem_code(session: Session, identity: Identity, code: str, now: datetime) -> Customer | str:
    """Link `identity` with the code's customer; or a reason: 'throttled', 'invalid'."""
    if identity.failed_codes_since and now - identity.failed_codes_since > CODE_WINDOW:
        identity.failed_codes, identity.failed_codes_since = 0, None
    if identity.failed_codes >= CODE_ATTEMPTS:
        return "throttled"
    row = session.scalars(select(ActivationCode).where(ActivationCode.code_hash == _hash(code))).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        identity.failed_codes += 1
        identity.failed_codes_since = identity.failed_codes_since or now
        return "invalid"
    row.used_at, row.used_by = now, identity.id
    identity.customer_id = row.customer_id
    identity.failed_codes, identity.failed_codes_since = 0, None
    customer = session.get(Customer, row.customer_id)
    assert customer is not None  # foreign key
    # A language the person chose before linking (`lang pt`) is kept: it becomes the customer's.
    if identity.lang is not None:
        customer.lang = identity.lang
    identity.lang = None
    return customer


def language_label(customer: Customer) -> str:
    """The customer's language as engineers and the operator read it."""
    return customer.lang or "not chosen (English until they write in Portuguese)"


def choose_language(customer: Customer, lang: str | None) -> None:
    """An engineer or the operator chooses for the customer: `en`, `pt`, or None, not chosen
    (English until they write in Portuguese). The customer may still change it with `lang`."""
    customer.lang = lang


def _keep_chosen_language(identity: Identity, customer: Customer) -> None:
    """An account linked by an engineer or the operator: a language it chose, or wrote in, before
    (`lang pt`, a first message in Portuguese) becomes the customer's, unless they have one
    already. From now on the customer's language is the one that counts (the account's own is
    dropped), as after `link`."""
    if customer.lang is None:
        customer.lang = identity.lang
    identity.lang = None


def set_language(identity: Identity, customer: Customer | None, lang: str) -> None:
    """Answer this account (and, once linked, the customer on every account) in `lang`."""
    if customer is not None:
        customer.lang = lang
    identity.lang = lang


def account(session: Session, channel: str, address: str, now: datetime) -> Identity:
    """The identity of an address that need not have written (one linked by an engineer or the
    operator, one copied on an incident), made if new with no "last seen": that is set only by a
    message of its own (`who`), so that "Last seen" never shows when an account was linked, and an
    account copied but never writing is no unknown contact (`unknown_contacts`)."""
    query = select(Identity).where(Identity.channel == channel, Identity.address == address)
    found = session.scalars(query).first()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            identity = Identity(channel=channel, address=address, created_at=now)
            session.add(identity)
        return identity
    except IntegrityError:  # another transaction made it meanwhile
        return session.scalars(query).one()


def get_identity(session: Session, channel: str, address: str, display_name: str | None, now: datetime) -> Identity:
    """The identity of (channel, address) as its ORM object, created if new (`who`)."""
    found, identity = who(session, channel, address, display_name, now)
    return identity if identity is not None else session.get_one(Identity, found.identity_id)


@dataclass(frozen=True, slots=True)
class Who:
    """Who wrote a message, as plain values: what most messages need of their sender.

    The router reads this for every message (`who`); the ORM objects (`Identity`,
    `Customer`) are loaded only by the handlers that use them (bot.context.Context).
    """

    identity_id: int
    customer_id: int | None
    #: The customer's language when the account is linked, else the account's own (None: not chosen).
    lang: str | None


def who(
    session: Session,
    channel: str,
    address: str,
    display_name: str | None,
    now: datetime,
    aliases: tuple[str, ...] = (),
) -> tuple[Who, Identity | None]:
    """The sender (channel, address), its identity created if new: one statement per message,
    two when its "last seen" minute or display name changed. With the new `Identity` if it made one.

    Plain rows, not ORM objects (storage.prepared): this runs for every inbound message, and
    most (`status`, a line for an incident) never touch the objects.

    `aliases`: addresses the identity may be stored under from before `address` was the key (a
    Zulip account was keyed by its email until issue 13, by its user id since): such an identity,
    with its customer, drafts and history, is re-keyed to `address` the first time it writes.
    """
    if session.new or session.dirty or session.deleted:
        session.flush()  # as an ORM query would: what this transaction changed is read back
    connection = session.connection()
    found = _WHO.rows(connection, {"channel": channel, "address": address})
    for alias in aliases:
        if found:
            break
        found = _WHO.rows(connection, {"channel": channel, "address": alias})
        if found:
            _REKEY.rows(connection, {"id": found[0][0], "address": address})
    if not found:
        identity = Identity(
            channel=channel, address=address, display_name=display_name, created_at=now, last_seen_at=now
        )
        session.add(identity)
        session.flush()
        assert identity.id is not None
        return Who(identity.id, None, None), identity
    identity_id, customer_id, lang, customer_lang, seen, name = found[0]
    # "Last seen" is shown to the minute: a customer writing ten messages a minute costs one write.
    stale = seen is None or now - seen >= LAST_SEEN_RESOLUTION
    if stale or (display_name and display_name != name):
        _SEEN.rows(connection, {"id": identity_id, "seen": now if stale else seen, "name": display_name or name})
    return Who(identity_id, customer_id, customer_lang if customer_id is not None else lang), None


_identity, _customer = Identity.__table__, Customer.__table__  # type: ignore[attr-defined]
# Built once: these run for every inbound message.
_WHO = Prepared(
    select(
        _identity.c.id,
        _identity.c.customer_id,
        _identity.c.lang,
        _customer.c.lang,
        _identity.c.last_seen_at,
        _identity.c.display_name,
    )
    .select_from(_identity.outerjoin(_customer, _identity.c.customer_id == _customer.c.id))
    .where(_identity.c.channel == bindparam("channel"), _identity.c.address == bindparam("address"))
)
_SEEN = Prepared(
    update(_identity)
    .where(_identity.c.id == bindparam("id"))
    .values(last_seen_at=bindparam("seen"), display_name=bindparam("name"))
)
_REKEY = Prepared(update(_identity).where(_identity.c.id == bindparam("id")).values(address=bindparam("address")))


def link_identity(session: Session, customer: Customer, channel: str, address: str, now: datetime) -> Identity:
    identity = account(session, channel, address, now)
    if identity.customer_id not in (None, customer.id):
        raise CustomerError(
            "{channel} account {address} is already linked to another customer.", channel=channel, address=address
        )
    identity.customer_id = customer.id
    _keep_chosen_language(identity, customer)
    return identity


def latest_account(session: Session, customer_id: int, channels: Collection[str]) -> Identity | None:
    """Where to tell a customer something unasked: the account on one of `channels` they wrote
    from last; one that never wrote (an email address the operator gave) only when none did."""
    query = (
        select(Identity)
        .where(Identity.customer_id == customer_id, Identity.channel.in_(list(channels)))
        .order_by(Identity.last_seen_at.desc().nulls_last(), Identity.id)
        .limit(1)
    )
    return session.scalars(query).first()


def identities_of(session: Session, customer_id: int) -> list[Identity]:
    """The accounts linked to a customer."""
    return list(session.scalars(select(Identity).where(Identity.customer_id == customer_id)))


def account_labels(session: Session, customer_id: int) -> dict[str, str]:
    """How engineers and the operator read the customer's accounts where messages and history
    name them by address: "Alice Remote (zulip 10)" for a Zulip user id, the address itself where
    the account has no other name. Keyed by address (what `IncidentMessage.author` and a
    customer's `IncidentEvent.actor` hold)."""
    return {
        i.address: f"{i.display_name} ({i.channel} {i.address})"
        if i.display_name and i.display_name != i.address
        else i.address
        for i in identities_of(session, customer_id)
    }


def unknown_contacts(session: Session, limit: int, skip: Callable[[str, str], bool]) -> list[Identity]:
    """Accounts that wrote but are linked to no customer, the most recently seen first (an address
    only copied on an incident, which never wrote, has no "last seen": bot.services.copies), but
    for those `skip(channel, address)` leaves out (engineers: bot.deployment)."""
    query = (
        select(Identity)
        .where(Identity.customer_id.is_(None), Identity.last_seen_at.is_not(None))
        .order_by(Identity.last_seen_at.desc())
        .execution_options(yield_per=limit + 8)
    )
    found: list[Identity] = []
    with session.scalars(query) as rows:  # closed when left early: a server-side cursor on PostgreSQL
        for identity in rows:
            if not skip(identity.channel, identity.address):
                found.append(identity)
                if len(found) == limit:
                    break
    return found


def email_owner(session: Session, address: str) -> Customer | None:
    """The customer the email address `address` is linked to (compared in lower case), if any."""
    return _by_email(session, address.strip())


def link_email(session: Session, customer: Customer, address: str, now: datetime) -> Identity | None:
    """An engineer links the email address `address` to `customer` (`/customer link`): mail from it
    is theirs from now on, as after `link CODE` from it (`link_identity`: a language it chose or
    wrote in before becomes the customer's if they have none). Its identity, or None if the address
    was theirs already (nothing changes); CustomerError if another customer has it."""
    identity = account(session, EMAIL_CHANNEL, address.strip().lower(), now)
    if identity.customer_id == customer.id:
        return None
    return link_identity(session, customer, EMAIL_CHANNEL, identity.address, now)


def email_domain(address: str) -> str | None:
    """The domain of an email address (after its last "@"), in lower case; None if it has none."""
    local, at, domain = address.strip().lower().rpartition("@")
    return domain if at and local and domain else None


def customers_at_domain(session: Session, domain: str, limit: int) -> list[Customer]:
    """Customers with an email address at `domain` (one of their email identities), at most
    `limit` of them, by id. Addresses are stored in lower case (`set_email`, the email channel)."""
    pattern = "%@" + _escaped(domain.strip().lower())
    query = (
        select(Identity.customer_id)
        .where(
            Identity.channel == EMAIL_CHANNEL,
            Identity.customer_id.is_not(None),
            Identity.address.like(literal(pattern, String()), escape="\\"),
        )
        .distinct()
        .order_by(Identity.customer_id)
        .limit(limit)
    )
    return [session.get_one(Customer, customer_id) for customer_id in session.scalars(query)]
