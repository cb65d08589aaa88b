"""Credit packs: granting them (and cancelling a grant made by mistake), and taking and giving
back a credit (SPEC §1).

Which pack pays, and the arithmetic of a pack, are the pure rules of
bot.policy.entitlements (`choose_pack`, `consume`, `give_back`, `summarise`);
this module applies them to the stored packs, locking them on PostgreSQL.
A pack's last valid day is fixed when it is granted (`grant_credits`, from the `months` of
`Settings.pack_validity_months` then in force) and stored on it; every rule reads that day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlmodel import Session

from bot.numbers import DAYS, FIRST_DAY, LAST_DAY, is_id
from bot.policy import (
    CreditSummary,
    NoCredit,
    Pack,
    choose_pack,
    consume,
    expiry_reminder_due,
    give_back,
    pack_expires_on,
    summarise,
)
from bot.services.customers import CustomerError
from storage.db import for_update
from storage.models import CreditPack, Customer

log = logging.getLogger("deskbot.services.credits")


def packs_of(session: Session, customer_id: int, lock: bool = False) -> list[CreditPack]:
    query = select(CreditPack).where(CreditPack.customer_id == customer_id).order_by(CreditPack.id)
    return list(session.scalars(for_update(query, session) if lock else query))


def as_policy(pack: CreditPack) -> Pack:
    """The pack as the rules see it: its cancelled credits were never the customer's."""
    return Pack(
        id=pack.id,
        purchased=pack.purchased,
        incidents=pack.incidents - pack.cancelled,
        used=pack.used,
        valid_until=pack.valid_until,
    )


def left_in(pack: CreditPack) -> int:
    """Credits of the pack not used and not cancelled (whether it is still valid aside)."""
    return pack.incidents - pack.cancelled - pack.used


def credit_summary(session: Session, customer_id: int, today: date) -> CreditSummary:
    return summarise([as_policy(p) for p in packs_of(session, customer_id)], today)


def could_open(session: Session, customer_id: int, today: date) -> CreditSummary | NoCredit:
    """Could the customer open an incident today? Their credits if so, or why not (nothing taken)."""
    packs = [as_policy(p) for p in packs_of(session, customer_id)]
    choice = choose_pack(packs, today)
    return choice if isinstance(choice, NoCredit) else summarise(packs, today)


def take_credit(session: Session, customer_id: int, today: date) -> CreditPack | NoCredit:
    """Consume one credit from the pack the rules choose (`policy.choose_pack`; rows locked on PostgreSQL)."""
    packs = packs_of(session, customer_id, lock=True)
    choice = choose_pack([as_policy(p) for p in packs], today)
    if isinstance(choice, NoCredit):
        return choice
    row = next(p for p in packs if p.id == choice.id)
    row.used = consume(choice).used
    return row


@dataclass(frozen=True)
class CreditReturn:
    """What became of an incident's credit when it was found to be our bug (`return_credit`).

    * ``returned``: back in its pack, usable again until ``valid_until`` (inclusive);
    * ``expired``: its pack was valid until ``valid_until`` and has expired since: an expired
      pack's credits cannot be used, so nothing is given back (SPEC §1: unused credits expire
      with their pack);
    * ``not_charged``: the incident took no credit (``pack_id`` None), so there is none to return;
    * ``not_used``: the pack is gone or shows no used credit (a store inconsistency, logged).
    """

    outcome: Literal["returned", "expired", "not_charged", "not_used"]
    pack_id: int | None = None
    valid_until: date | None = None

    @property
    def returned(self) -> bool:
        return self.outcome == "returned"


def return_credit(session: Session, pack_id: int | None, today: date) -> CreditReturn:
    """Give a credit back to its pack (`policy.give_back`) if that pack is still valid on `today`."""
    if pack_id is None:
        return CreditReturn("not_charged")
    query = for_update(select(CreditPack).where(CreditPack.id == pack_id), session)
    pack = session.scalars(query).first()
    if pack is None:
        log.warning("credit not returned: pack %s does not exist", pack_id)
        return CreditReturn("not_used", pack_id)
    valid_until = pack.valid_until
    if valid_until < today:
        return CreditReturn("expired", pack_id, valid_until)
    try:
        pack.used = give_back(as_policy(pack)).used
    except ValueError:
        log.warning("credit not returned: pack %s has no used credit", pack_id)
        return CreditReturn("not_used", pack_id, valid_until)
    return CreditReturn("returned", pack_id, valid_until)


def grant_credits(
    session: Session,
    customer: Customer,
    incidents: int,
    purchased: date,
    granted_by: str,
    now: datetime,
    *,
    months: int,
) -> CreditPack:
    """A new pack of `incidents` credits bought on `purchased`, valid for `months` (the setting in
    force now: the pack keeps the day it gets here whatever the setting becomes). CustomerError if
    either is out of range (the parsers refuse such dates first: a pack of 9999-12-31 would be valid
    into a year no date holds, and every credit listing of its customer would fail)."""
    if incidents < 1 or incidents > 10_000:
        raise CustomerError("The number of incidents must be between 1 and 10000.")
    if not FIRST_DAY <= purchased <= LAST_DAY:
        raise CustomerError(f"The purchase date must be from {DAYS}.")
    pack = CreditPack(
        customer_id=customer.id,
        purchased=purchased,
        valid_until=pack_expires_on(purchased, months=months),
        incidents=incidents,
        granted_by=granted_by,
        created_at=now,
    )
    session.add(pack)
    session.flush()
    return pack


@dataclass(frozen=True)
class Cancelled:
    """What `cancel_unused` did: the pack, its customer, and how many credits it cancelled now."""

    pack: CreditPack
    customer: Customer
    count: int


def cancel_unused(session: Session, pack_id: int, by: str, now: datetime) -> Cancelled | None:
    """Cancel the unused credits of a pack granted by mistake (to the wrong customer, or too many);
    None when there is no such pack. Used credits stay: they paid for incidents that happened (the
    billing report counts incidents, not packs). A credit given back later (`/bug`) can be used
    again, as any credit a customer paid for. Cancelling a pack with nothing left cancels 0."""
    if not is_id(pack_id):
        return None
    pack = session.scalars(for_update(select(CreditPack).where(CreditPack.id == pack_id), session)).first()
    if pack is None:
        return None
    count = left_in(pack)
    if count > 0:
        pack.cancelled += count
        pack.cancelled_at, pack.cancelled_by = now, by
    customer = session.get_one(Customer, pack.customer_id)
    log.info("credits cancelled", extra={"pack_id": pack.id, "customer_id": customer.id, "count": count})
    return Cancelled(pack, customer, count)


def packs_to_remind(session: Session, today: date, days_before: int) -> list[CreditPack]:
    """Packs whose customer is to be reminded today that unused credits lapse (the policy's
    `expiry_reminder_due`), not reminded yet; locked, and those another replica holds left out."""
    if days_before <= 0:
        return []
    query = (
        select(CreditPack)
        .where(
            CreditPack.expiry_reminded_at.is_(None),
            CreditPack.used + CreditPack.cancelled < CreditPack.incidents,
            CreditPack.valid_until >= today,
            CreditPack.valid_until <= today + timedelta(days=days_before),
        )
        .order_by(CreditPack.purchased, CreditPack.id)
    )
    found = session.scalars(for_update(query, session, skip_locked=True))
    return [pack for pack in found if expiry_reminder_due(as_policy(pack), today, days_before)]


def claim_reminder(session: Session, pack: CreditPack, now: datetime) -> bool:
    """Record that `pack`'s customer is being reminded, unless another pass did it first (one
    conditional UPDATE: on SQLite, where `packs_to_remind` locks nothing, two passes that read
    the pack together still remind once)."""
    claimed = session.execute(
        update(CreditPack)
        .where(CreditPack.id == pack.id, CreditPack.expiry_reminded_at.is_(None))
        .values(expiry_reminded_at=now)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1  # type: ignore[attr-defined]
