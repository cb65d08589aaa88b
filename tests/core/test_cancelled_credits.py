"""Cancelling a grant made by mistake (`/credits cancel PACK`, `deskbot credits cancel`): the
pack's unused credits are gone, its used ones stay on record; the customer sees the pack as it
really was, a pack cancelled before any use not at all; nothing reminds them of cancelled credits.
Through the console desk, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from storage.db import transaction
from storage.models import CreditPack
from tests.desk import Desk


def _packs(desk: Desk) -> list[tuple[int, int, int]]:
    with transaction(desk.engine) as s:
        return [(p.incidents, p.cancelled, p.used) for p in s.scalars(select(CreditPack).order_by(CreditPack.id))]


def test_an_engineer_cancels_the_unused_credits_of_a_pack_granted_by_mistake(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme")
    desk.engineer("/credits grant Acme 30")  # meant 3
    assert "Incident #1 is open" in desk.say("Acme", "open The NAS is slow")

    out = desk.engineer("/credits cancel 1")
    assert "Pack 1 of `Acme`: 29 unused credits cancelled (used, and kept on record: 1). `Acme` has 0 credits" in out
    assert "Cancelled by mistake? `/credits grant 1 29 2026-12-02` gives them back as a new pack." in out
    assert _packs(desk) == [(30, 29, 1)]
    shown = desk.engineer("/customer show Acme")
    assert "• pack 1: 30 bought 2 Dec 2026, 29 cancelled on 2 Dec 2026 by `engineer@console`, 0 left" in shown
    assert "Pack 1 of `Acme` has no unused credits: nothing to cancel." in desk.engineer("/credits cancel 1")
    assert _packs(desk) == [(30, 29, 1)]

    # The customer sees the pack as it really was, and cannot open with credits that are gone.
    assert "• pack of 1 bought 2 Dec 2026: 0 left, valid until 2 Dec 2027 inclusive" in desk.say("Acme", "credits")
    assert "All your support credits are used." in desk.say("Acme", "open Another problem")

    # The incident that used the pack's credit was our bug: that credit, paid for, comes back.
    desk.engineer("/bug 1")
    assert _packs(desk) == [(30, 29, 0)]
    assert "Credits left: 1" in desk.say("Acme", "credits")
    # The undo the answer offered works as written.
    assert "Pack 2: 29 credits for `Acme`" in desk.engineer("/credits grant 1 29 2026-12-02")
    assert "Credits left: 30" in desk.say("Acme", "credits")


def test_a_pack_cancelled_before_any_use_is_not_shown_to_the_customer_or_reminded(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme")
    desk.engineer("/credits grant Acme 5 2025-12-20")  # to the wrong customer, and lapsing this month
    desk.engineer("/credits cancel 1")
    assert _packs(desk) == [(5, 5, 0)]
    assert "You have no support credits yet." in desk.say("Acme", "credits")
    start = len(desk.out.getvalue())
    desk.runtime.watch_once()
    desk.runtime.dispatcher.drain("console")
    assert "A reminder" not in desk.out.getvalue()[start:]


def test_cancel_says_what_is_wrong(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    assert "There is no pack 7. /customer show lists a customer's packs." in desk.engineer("/credits cancel 7")
    assert "There is no pack 99999999999." in desk.engineer("/credits cancel 99999999999")
    assert "Missing <pack>. Usage: /credits cancel <pack>" in desk.engineer("/credits cancel")
    assert "<pack> must be a whole number." in desk.engineer("/credits cancel 1x")
