"""Entitlement rules: SPEC §1 examples, then properties over random packs and histories."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.policy.entitlements import (
    NoCredit,
    Pack,
    PackStatus,
    choose_pack,
    consume,
    credits_left,
    expiry_reminder_due,
    give_back,
    pack_expires_on,
    pack_is_valid,
    summarise,
    unusable_because,
)

policy = settings(max_examples=150, deadline=None)
#: The vendor's validity, one calendar year (DESKBOT_PACK_VALIDITY_MONTHS' default).
YEAR = 12


def bought(pack_id: int, purchased: date, incidents: int, used: int = 0, *, months: int = YEAR) -> Pack:
    """A pack as granted while packs last `months`: its last day fixed then (`pack_expires_on`)."""
    return Pack(pack_id, purchased, incidents, used, valid_until=pack_expires_on(purchased, months=months))


# -- expiry and validity -------------------------------------------------------


@pytest.mark.parametrize(
    ("purchased", "expires"),
    [
        (date(2026, 3, 10), date(2027, 3, 10)),
        (date(2024, 2, 29), date(2025, 2, 28)),
        (date(2028, 2, 29), date(2029, 2, 28)),
        (date(2023, 2, 28), date(2024, 2, 28)),
        (date(2025, 12, 31), date(2026, 12, 31)),
    ],
)
def test_pack_expires_one_calendar_year_later(purchased: date, expires: date) -> None:
    assert pack_expires_on(purchased, months=YEAR) == expires
    assert bought(1, purchased, 1).valid_until == expires


@given(st.dates(min_value=date(9999, 1, 1)))
def test_a_pack_of_the_last_year_a_date_holds_expires_on_the_last_day(purchased: date) -> None:
    # Such a date can no longer be typed (bot.numbers), but one stored before must not break listings.
    assert pack_expires_on(purchased, months=YEAR) == date.max


def test_pack_is_valid_from_purchase_through_expiry_day() -> None:
    pack = bought(1, date(2026, 3, 10), 5, used=0)
    assert not pack_is_valid(pack, date(2026, 3, 9))
    assert pack_is_valid(pack, date(2026, 3, 10))
    assert pack_is_valid(pack, date(2027, 3, 10))
    assert not pack_is_valid(pack, date(2027, 3, 11))


@policy
@given(
    st.dates(date(2000, 1, 1), date(2100, 1, 1)),
    st.integers(0, 5000),
    st.dates(date(2000, 1, 1), date(2100, 1, 1)),
)
def test_a_pack_is_unusable_exactly_when_it_is_not_valid_and_says_which_way(
    purchased: date, lasts: int, today: date
) -> None:
    # Any stored day, not only one a setting gives: the rules read the day, never count it.
    valid_until = purchased + timedelta(days=lasts)
    why = unusable_because(purchased, today, valid_until=valid_until)
    pack = Pack(1, purchased, 1, valid_until=valid_until)
    assert (why is None) == pack_is_valid(pack, today) == (purchased <= today <= valid_until)
    assert why != "expired" or today > valid_until
    assert why != "not_yet" or today < purchased


@policy
@given(st.dates(date(2000, 1, 1), date(2100, 1, 1)), st.integers(1, 120), st.dates(date(2000, 1, 1), date(2110, 1, 1)))
def test_a_pack_granted_under_a_setting_is_valid_as_that_setting_always_said(
    purchased: date, months: int, today: date
) -> None:
    """The day fixed at the grant is the day the setting gave before it was stored: while the
    setting does not change, nothing a customer sees changes."""
    pack = bought(1, purchased, 1, months=months)
    assert pack_is_valid(pack, today) == (purchased <= today <= pack_expires_on(purchased, months=months))


def test_leap_day_pack_is_valid_until_28_february() -> None:
    pack = bought(1, date(2024, 2, 29), 1, used=0)
    assert pack_is_valid(pack, date(2025, 2, 28))
    assert not pack_is_valid(pack, date(2025, 3, 1))


@pytest.mark.parametrize(("incidents", "used"), [(-1, 0), (3, -1), (3, 4)])
def test_inconsistent_packs_are_rejected(incidents: int, used: int) -> None:
    with pytest.raises(ValueError, match="pack 7"):
        bought(7, date(2026, 1, 1), incidents, used)


def test_a_pack_cannot_end_before_it_is_bought() -> None:
    with pytest.raises(ValueError, match="pack 7: valid until 2025-12-31, before its purchase on 2026-01-01"):
        Pack(7, date(2026, 1, 1), 1, valid_until=date(2025, 12, 31))
    assert pack_is_valid(Pack(8, date(2026, 1, 1), 1, valid_until=date(2026, 1, 1)), date(2026, 1, 1))


# -- choosing, consuming, giving back --------------------------------------------

TODAY = date(2026, 6, 1)


def test_choose_pack_takes_the_one_expiring_first() -> None:
    older = bought(2, date(2025, 9, 1), 3, used=1)
    newer = bought(1, date(2026, 1, 1), 10, used=0)
    assert choose_pack([newer, older], TODAY) == older


def test_choose_pack_breaks_ties_by_lower_id() -> None:
    a = bought(5, date(2026, 1, 1), 1, used=0)
    b = bought(4, date(2026, 1, 1), 1, used=0)
    assert choose_pack([a, b], TODAY) == b


def test_choose_pack_breaks_expiry_ties_by_earlier_purchase() -> None:
    # 28 Feb and 29 Feb purchases both expire on 28 Feb of the next year.
    leap = bought(1, date(2024, 2, 29), 1, used=0)
    eve = bought(2, date(2024, 2, 28), 1, used=0)
    assert choose_pack([leap, eve], date(2024, 6, 1)) == eve


def test_choose_pack_skips_expired_and_empty_packs() -> None:
    expired = bought(1, date(2025, 5, 31), 5, used=0)
    empty = bought(2, date(2025, 7, 1), 2, used=2)
    good = bought(3, date(2026, 5, 1), 2, used=0)
    assert choose_pack([expired, empty, good], TODAY) == good


@pytest.mark.parametrize(
    ("packs", "reason"),
    [
        ([], "none_bought"),
        ([bought(1, date(2026, 7, 1), 5, used=2)], "not_yet"),
        ([bought(1, date(2026, 7, 1), 5, used=5)], "none_bought"),
        (
            [
                bought(1, date(2026, 1, 1), 2, used=2),
                bought(2, date(2026, 7, 1), 1, used=0),
            ],
            "not_yet",
        ),
        ([bought(1, date(2026, 1, 1), 2, used=2)], "all_used"),
        ([bought(1, date(2025, 1, 1), 2, used=0)], "all_expired"),
        (
            [
                bought(1, date(2025, 1, 1), 2, used=0),
                bought(2, date(2026, 1, 1), 1, used=1),
            ],
            "all_used",
        ),
    ],
    ids=[
        "no-packs",
        "future-pack",
        "used-up-future-pack",
        "used-up-and-future-pack",
        "used-up",
        "expired",
        "expired-and-used-up",
    ],
)
def test_no_credit_says_why(packs: list[Pack], reason: str) -> None:
    chosen = choose_pack(packs, TODAY)
    assert isinstance(chosen, NoCredit) and chosen.reason == reason
    assert chosen.starts == (date(2026, 7, 1) if reason == "not_yet" else None)


def test_consume_and_give_back_move_one_credit() -> None:
    pack = bought(1, TODAY, 2, used=0)
    once = consume(pack)
    assert (once.used, credits_left(once)) == (1, 1)
    assert give_back(once) == pack


def test_consume_refuses_an_empty_pack() -> None:
    with pytest.raises(ValueError, match="no credits left"):
        consume(bought(1, TODAY, 1, used=1))


def test_give_back_refuses_an_unused_pack() -> None:
    with pytest.raises(ValueError, match="no used credit"):
        give_back(bought(1, TODAY, 1, used=0))


def test_summary_counts_valid_packs_only() -> None:
    expired = bought(1, date(2025, 5, 1), 5, used=1)
    empty = bought(2, date(2025, 8, 1), 2, used=2)
    later = bought(3, date(2026, 2, 1), 10, used=3)
    summary = summarise([later, empty, expired], TODAY)
    assert summary.total_left == 7
    assert summary.next_expiry == date(2027, 2, 1)
    assert summary.packs == (
        PackStatus(expired, 4, date(2026, 5, 1), False),
        PackStatus(empty, 0, date(2026, 8, 1), True),
        PackStatus(later, 7, date(2027, 2, 1), True),
    )


def test_summary_of_nothing() -> None:
    summary = summarise([], TODAY)
    assert (summary.total_left, summary.packs, summary.next_expiry) == (0, (), None)


def test_expiry_reminder_from_30_days_before_the_last_valid_day() -> None:
    pack = bought(1, date(2026, 1, 10), 3, used=1)  # last valid day 10 Jan 2027
    assert not expiry_reminder_due(pack, date(2026, 12, 10), 30)  # 31 days before
    assert expiry_reminder_due(pack, date(2026, 12, 11), 30)
    assert expiry_reminder_due(pack, date(2027, 1, 10), 30)  # the last day itself
    assert not expiry_reminder_due(pack, date(2027, 1, 11), 30)  # lapsed: nothing to use any more
    assert not expiry_reminder_due(bought(2, date(2026, 1, 10), 3, used=3), date(2026, 12, 20), 30)  # all used
    assert not expiry_reminder_due(pack, date(2026, 12, 20), 0)  # off


# -- properties ------------------------------------------------------------------

days = st.dates(date(2023, 1, 1), date(2028, 12, 31))
#: DESKBOT_PACK_VALIDITY_MONTHS: the rules hold for any validity the setting takes.
validity = st.integers(1, 120)


@st.composite
def packs(draw: st.DrawFn) -> list[Pack]:
    """A customer's packs, each granted under a setting of its own (the operator changed it between
    grants): packs of one customer may end in any order of their purchases."""
    result = []
    for pack_id in draw(st.lists(st.integers(1, 50), unique=True, max_size=6)):
        incidents = draw(st.integers(0, 5))
        used = draw(st.integers(0, incidents))
        result.append(bought(pack_id, draw(days), incidents, used, months=draw(validity)))
    return result


@policy
@given(packs(), days)
def test_choose_pack_picks_a_valid_non_empty_pack_expiring_first(owned: list[Pack], today: date) -> None:
    chosen = choose_pack(owned, today)
    usable = [p for p in owned if pack_is_valid(p, today) and credits_left(p) > 0]
    if isinstance(chosen, NoCredit):
        assert not usable
        return
    assert chosen in owned
    assert pack_is_valid(chosen, today) and credits_left(chosen) > 0
    assert all(chosen.valid_until <= p.valid_until for p in usable)


@policy
@given(packs(), days)
def test_no_credit_reason_matches_the_packs(owned: list[Pack], today: date) -> None:
    chosen = choose_pack(owned, today)
    if not isinstance(chosen, NoCredit):
        return
    coming = [p for p in owned if p.purchased > today and credits_left(p) > 0]
    if chosen.reason == "not_yet":
        assert coming and chosen.starts == min(p.purchased for p in coming)
        return
    assert not coming
    if chosen.reason == "all_used":
        assert any(pack_is_valid(p, today) for p in owned)
    elif chosen.reason == "all_expired":
        assert not any(pack_is_valid(p, today) for p in owned)
        assert any(p.valid_until < today for p in owned)
    else:
        assert all(p.purchased > today for p in owned)


@policy
@given(packs(), days)
def test_summary_agrees_with_choose_pack(owned: list[Pack], today: date) -> None:
    summary = summarise(owned, today)
    chosen = choose_pack(owned, today)
    assert (summary.total_left > 0) == isinstance(chosen, Pack)
    if isinstance(chosen, Pack):
        assert summary.next_expiry == chosen.valid_until
    else:
        assert summary.next_expiry is None
    assert sorted(s.pack.id for s in summary.packs) == sorted(p.id for p in owned)
    assert all(s.expires_on == s.pack.valid_until for s in summary.packs)


class CreditLedger(RuleBasedStateMachine):
    """A customer's packs through random grants (under a validity setting that changes between
    them), incidents, bug refunds and days passing."""

    def __init__(self) -> None:
        super().__init__()
        self.today = date(2026, 1, 1)
        self.packs: dict[int, Pack] = {}
        self.bought = 0
        self.charged: list[int] = []  # pack ids of incidents still charged
        self.granted_until: dict[int, date] = {}  # each pack's last day as granted

    @rule(incidents=st.integers(1, 4), age=st.integers(0, 400), months=validity)
    def grant(self, incidents: int, age: int, months: int) -> None:
        pack_id = len(self.packs) + 1
        self.packs[pack_id] = bought(pack_id, self.today - timedelta(days=age), incidents, 0, months=months)
        self.granted_until[pack_id] = self.packs[pack_id].valid_until
        self.bought += incidents

    @rule()
    def open_incident(self) -> None:
        chosen = choose_pack(list(self.packs.values()), self.today)
        if isinstance(chosen, Pack):
            assert pack_is_valid(chosen, self.today) and credits_left(chosen) > 0
            self.packs[chosen.id] = consume(chosen)
            self.charged.append(chosen.id)

    @precondition(lambda self: self.charged)
    @rule(data=st.data())
    def mark_bug(self, data: st.DataObject) -> None:
        pack_id = self.charged.pop(data.draw(st.integers(0, len(self.charged) - 1)))
        self.packs[pack_id] = give_back(self.packs[pack_id])

    @rule(days=st.integers(1, 120))
    def time_passes(self, days: int) -> None:
        self.today += timedelta(days=days)

    @invariant()
    def a_pack_keeps_the_day_it_was_granted_with(self) -> None:
        # Consuming and giving back never move it: only the grant sets it.
        assert all(p.valid_until == self.granted_until[p.id] for p in self.packs.values())

    @invariant()
    def credits_are_never_negative(self) -> None:
        assert all(credits_left(p) >= 0 and p.used >= 0 for p in self.packs.values())

    @invariant()
    def consumed_plus_left_equals_bought(self) -> None:
        used = sum(p.used for p in self.packs.values())
        left = sum(credits_left(p) for p in self.packs.values())
        assert used == len(self.charged)
        assert used + left == self.bought

    @invariant()
    def summary_counts_valid_credit(self) -> None:
        summary = summarise(list(self.packs.values()), self.today)
        valid = [p for p in self.packs.values() if pack_is_valid(p, self.today)]
        assert summary.total_left == sum(credits_left(p) for p in valid)


@policy
@given(
    st.dates(date(2023, 1, 1), date(2028, 12, 31)),
    st.integers(1, 5),
    st.integers(0, 5),
    days,
    st.integers(0, 400),
    validity,
)
def test_an_expiry_reminder_is_due_only_for_credits_that_can_still_be_used(
    purchased: date, incidents: int, used: int, today: date, days_before: int, months: int
) -> None:
    pack = bought(1, purchased, incidents, min(used, incidents), months=months)
    due = expiry_reminder_due(pack, today, days_before)
    # Never for nothing: the customer can use a credit of this pack today.
    assert not due or (credits_left(pack) > 0 and choose_pack([pack], today) == pack)
    # Due exactly within the window before the last valid day, for a pack with credit that is valid.
    in_window = 0 <= (pack.valid_until - today).days <= days_before and purchased <= today
    assert due == (in_window and credits_left(pack) > 0 and days_before > 0)
    # So a store finds every pack due by its stored day alone (`services.credits.packs_to_remind`).
    assert not due or today <= pack.valid_until <= today + timedelta(days=days_before)
    # Once due, due on every later day the pack is still valid (a missed pass is made up later).
    later = today + timedelta(days=1)
    if due and pack_is_valid(pack, later):
        assert expiry_reminder_due(pack, later, days_before)


CreditLedger.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_credit_ledger = CreditLedger.TestCase
