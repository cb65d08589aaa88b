"""Entitlement rules: credit packs, their validity, and which pack pays for an incident.

Pure functions of the packs and ``today`` (a date the caller supplies, taken in
the desk's time zone). A pack's last valid day, ``Pack.valid_until``, is fixed
when the pack is granted (``pack_expires_on``: the purchase date plus the
months of ``DESKBOT_PACK_VALIDITY_MONTHS`` then in force) and stored with it:
the customer paid for that day, so an operator who changes the setting later
changes the packs granted from then on, never one already sold. Every rule here
reads the stored day; only the grant counts months, and ``months`` has no
default: a grant that forgot it would quietly apply a year. Packs are
immutable; ``consume`` and ``give_back`` return the updated pack for the caller
to store.
"""

from __future__ import annotations

import calendar
import dataclasses
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import MAXYEAR, MINYEAR, date
from typing import Literal

__all__ = [
    "CreditSummary",
    "NoCredit",
    "Pack",
    "PackStatus",
    "choose_pack",
    "consume",
    "credits_left",
    "expiry_reminder_due",
    "give_back",
    "months_after",
    "pack_expires_on",
    "pack_is_valid",
    "summarise",
    "unusable_because",
]


@dataclass(frozen=True)
class Pack:
    """``incidents`` credits bought on ``purchased``, usable through ``valid_until``.

    ``used`` counts credits currently consumed: incidents charged to the pack
    minus credits returned because the incident was a vendor bug.
    ``valid_until`` is the last day the pack may be used, inclusive, fixed at
    the grant (``pack_expires_on``).
    Invariants: ``0 <= used <= incidents``; ``purchased <= valid_until``.
    """

    id: int
    purchased: date
    incidents: int
    used: int = 0
    _: KW_ONLY
    valid_until: date

    def __post_init__(self) -> None:
        if self.valid_until < self.purchased:
            raise ValueError(f"pack {self.id}: valid until {self.valid_until}, before its purchase on {self.purchased}")
        if self.incidents < 0:
            raise ValueError(f"pack {self.id}: incidents must not be negative, got {self.incidents}")
        if not 0 <= self.used <= self.incidents:
            raise ValueError(f"pack {self.id}: used must be between 0 and {self.incidents}, got {self.used}")


def months_after(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months (back when negative): the same day of the month,
    or that month's last day where it has no such day (31 Jan + 1 → 28 or 29 Feb; 29 Feb + 12 →
    28 Feb). Past the dates Python holds: ``date.max`` (``date.min`` going back)."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    if year > MAXYEAR:
        return date.max
    if year < MINYEAR:
        return date.min
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def pack_expires_on(purchased: date, *, months: int) -> date:
    """The last day a pack bought on ``purchased`` and granted while packs last ``months`` is valid,
    its ``valid_until``: ``months`` calendar months later
    (``months_after``; with 12, one calendar year: a pack bought on 29 February expires on
    28 February of the next year).

    A pack whose last day would fall past the last date Python holds expires on ``date.max``
    (such a date can no longer be typed, bot.numbers, but one stored before must not break listings).
    """
    return months_after(purchased, months)


def pack_is_valid(pack: Pack, today: date) -> bool:
    """Whether ``pack`` may pay for an incident opened on ``today``.

    Valid from the purchase date through the expiry date *inclusive*: a
    customer reading "valid until 10 Mar 2027" expects to use it that day.
    A pack dated in the future is not valid yet.
    """
    return pack.purchased <= today <= pack.valid_until


def unusable_because(purchased: date, today: date, *, valid_until: date) -> Literal["expired", "not_yet"] | None:
    """Why a pack bought on ``purchased`` and valid until ``valid_until`` cannot pay for anything
    ``today`` (None: it can, credits permitting). A grant of such a pack is most often a slip of the
    year, which is worth a word."""
    if today > valid_until:
        return "expired"
    if today < purchased:
        return "not_yet"
    return None


def credits_left(pack: Pack) -> int:
    """Credits not yet consumed (whether or not the pack is still valid)."""
    return pack.incidents - pack.used


def expiry_reminder_due(pack: Pack, today: date, days_before: int) -> bool:
    """Whether the customer is to be reminded ``today`` that ``pack``'s unused credits lapse: it
    has some left, may still be used today, and its last valid day is at most ``days_before``
    days away (0: reminders are off). Credits are money paid; a customer told a month ahead can
    still use them, or plan the next pack. A store narrows its query to the packs whose
    ``valid_until`` is from ``today`` to ``days_before`` days on; this rule decides."""
    if days_before <= 0 or credits_left(pack) <= 0 or not pack_is_valid(pack, today):
        return False
    return (pack.valid_until - today).days <= days_before


@dataclass(frozen=True)
class NoCredit:
    """Why no pack can pay for an incident.

    * ``not_yet``: a pack with credits is dated in the future (``starts``: the first such
      date); the customer is to wait for it, not told to buy;
    * ``all_used``: otherwise, some pack is valid today, but all such packs are used up;
    * ``all_expired``: otherwise, some pack has expired;
    * ``none_bought``: no packs at all (or only used-up packs dated in the future).
    """

    reason: Literal["none_bought", "all_used", "all_expired", "not_yet"]
    starts: date | None = None


def _consumption_order(pack: Pack) -> tuple[date, date, int]:
    # Spend the credit that would be lost first; ties go to the older purchase.
    return pack.valid_until, pack.purchased, pack.id


def choose_pack(packs: Sequence[Pack], today: date) -> Pack | NoCredit:
    """The pack to charge for an incident opened on ``today``, or why there is none.

    Among packs valid today with credits left, the one that expires first
    (ties: earlier purchase, then lower id).
    """
    usable = [p for p in packs if pack_is_valid(p, today) and credits_left(p) > 0]
    if usable:
        return min(usable, key=_consumption_order)
    coming = [p.purchased for p in packs if p.purchased > today and credits_left(p) > 0]
    if coming:
        return NoCredit("not_yet", min(coming))
    if any(pack_is_valid(p, today) for p in packs):
        return NoCredit("all_used")
    if any(p.valid_until < today for p in packs):
        return NoCredit("all_expired")
    return NoCredit("none_bought")


def consume(pack: Pack) -> Pack:
    """``pack`` with one more credit used; ``ValueError`` if none is left."""
    if credits_left(pack) <= 0:
        raise ValueError(f"pack {pack.id} has no credits left")
    return dataclasses.replace(pack, used=pack.used + 1)


def give_back(pack: Pack) -> Pack:
    """``pack`` with one credit returned (vendor bug); ``ValueError`` if none is used.

    A credit goes back to its own pack, and only while that pack is valid: an expired
    pack's credits cannot be used, so ``services.credits.return_credit`` gives none back
    to one (and says so).
    """
    if pack.used <= 0:
        raise ValueError(f"pack {pack.id} has no used credit to give back")
    return dataclasses.replace(pack, used=pack.used - 1)


@dataclass(frozen=True)
class PackStatus:
    """One pack as the customer sees it on ``today``."""

    pack: Pack
    left: int
    expires_on: date
    valid: bool


@dataclass(frozen=True)
class CreditSummary:
    """Credits on ``today``.

    ``packs`` lists every pack in consumption order (expiry, purchase, id).
    ``total_left`` counts credits in valid packs only; ``next_expiry`` is the
    earliest expiry among valid packs with credits left, ``None`` if there is
    no such pack.
    """

    total_left: int
    packs: tuple[PackStatus, ...]
    next_expiry: date | None


def summarise(packs: Sequence[Pack], today: date) -> CreditSummary:
    """The credit position on ``today`` (see ``CreditSummary``)."""
    statuses = tuple(
        PackStatus(pack=p, left=credits_left(p), expires_on=p.valid_until, valid=pack_is_valid(p, today))
        for p in sorted(packs, key=_consumption_order)
    )
    spendable = [s for s in statuses if s.valid and s.left > 0]
    return CreditSummary(
        total_left=sum(s.left for s in statuses if s.valid),
        packs=statuses,
        next_expiry=min((s.expires_on for s in spendable), default=None),
    )
