"""How long a credit pack is valid (DESKBOT_PACK_VALIDITY_MONTHS): N calendar months from its
purchase date, its last day included, the day clamped to the end of a shorter month — N being the
setting in force when the pack is granted. The day is stored on the pack then (`Pack.valid_until`);
every rule after reads it."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy.entitlements import (
    Pack,
    expiry_reminder_due,
    months_after,
    pack_expires_on,
    pack_is_valid,
    unusable_because,
)

policy = settings(max_examples=300, deadline=None)
#: Every value DESKBOT_PACK_VALIDITY_MONTHS takes.
validity = st.integers(1, 120)
#: Purchase dates people can type (bot.numbers), and then some.
purchases = st.dates(date(1999, 1, 1), date(2101, 12, 31))


def one_calendar_year_later(purchased: date) -> date:
    """The rule before it was a setting, kept here as the reference for the default."""
    if purchased.year == date.max.year:
        return date.max
    if (purchased.month, purchased.day) == (2, 29):
        return date(purchased.year + 1, 2, 28)
    return purchased.replace(year=purchased.year + 1)


@policy
@given(st.dates())
def test_twelve_months_is_the_old_one_year_rule_for_every_date(purchased: date) -> None:
    assert pack_expires_on(purchased, months=12) == one_calendar_year_later(purchased)


@pytest.mark.parametrize(
    ("purchased", "months", "expires"),
    [
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),  # a leap year again: no clamping needed
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 6, 10), 6, date(2026, 12, 10)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 2), 120, date(2036, 12, 2)),
    ],
)
def test_a_pack_expires_n_months_later_on_the_same_day_or_the_months_last(
    purchased: date, months: int, expires: date
) -> None:
    assert pack_expires_on(purchased, months=months) == expires


@policy
@given(purchases, validity)
def test_the_expiry_is_n_months_on_with_the_day_clamped_to_the_months_end(purchased: date, months: int) -> None:
    expires = pack_expires_on(purchased, months=months)
    assert (expires.year - purchased.year) * 12 + expires.month - purchased.month == months
    assert expires.day == min(purchased.day, calendar.monthrange(expires.year, expires.month)[1])
    assert timedelta(days=28 * months) <= expires - purchased <= timedelta(days=31 * months)


@policy
@given(purchases, validity, validity)
def test_a_longer_validity_never_ends_sooner(purchased: date, one: int, other: int) -> None:
    shorter, longer = sorted((one, other))
    first, second = pack_expires_on(purchased, months=shorter), pack_expires_on(purchased, months=longer)
    assert first <= second
    assert (first == second) == (shorter == longer)


@policy
@given(purchases, purchases, validity)
def test_a_later_purchase_never_ends_sooner(one: date, other: date, months: int) -> None:
    earlier, later = sorted((one, other))
    assert pack_expires_on(earlier, months=months) <= pack_expires_on(later, months=months)


@policy
@given(purchases, validity)
def test_a_pack_is_valid_on_its_expiry_day_and_not_the_day_after(purchased: date, months: int) -> None:
    expires = pack_expires_on(purchased, months=months)
    pack = Pack(id=1, purchased=purchased, incidents=1, valid_until=expires)
    assert pack_is_valid(pack, purchased)
    assert pack_is_valid(pack, expires)
    assert not pack_is_valid(pack, expires + timedelta(days=1))
    assert not pack_is_valid(pack, purchased - timedelta(days=1))
    assert unusable_because(purchased, expires, valid_until=expires) is None
    assert unusable_because(purchased, expires + timedelta(days=1), valid_until=expires) == "expired"


@policy
@given(purchases, validity, validity, st.dates(date(1999, 1, 1), date(2112, 12, 31)))
def test_a_pack_answers_to_the_setting_of_its_grant_not_to_a_later_one(
    purchased: date, granted_under: int, set_now: int, today: date
) -> None:
    """The operator changes the setting after the grant: what the pack can do does not change,
    and a pack granted now under the new setting ends as that setting says."""
    old = Pack(id=1, purchased=purchased, incidents=1, valid_until=pack_expires_on(purchased, months=granted_under))
    new = Pack(id=2, purchased=purchased, incidents=1, valid_until=pack_expires_on(purchased, months=set_now))
    assert pack_is_valid(old, today) == (purchased <= today <= months_after(purchased, granted_under))
    assert pack_is_valid(new, today) == (purchased <= today <= months_after(purchased, set_now))
    # Bought the same day: the pack of the longer term is valid whenever the other is.
    shorter, longer = sorted((old, new), key=lambda p: p.valid_until)
    assert not pack_is_valid(shorter, today) or pack_is_valid(longer, today)


@given(st.dates(min_value=date(9990, 1, 1)), validity)
def test_a_pack_whose_end_no_date_holds_expires_on_the_last_day(purchased: date, months: int) -> None:
    # Such a date can no longer be typed (bot.numbers), but one stored before must not break listings.
    expires = pack_expires_on(purchased, months=months)
    past_the_last_year = (purchased.year * 12 + purchased.month - 1 + months) // 12 > date.max.year
    assert (expires == date.max) if past_the_last_year else (purchased < expires < date.max)


@policy
@given(purchases, st.dates(date(2000, 1, 1), date(2100, 12, 31)), st.integers(1, 400), validity)
def test_a_reminder_is_due_by_the_stored_day_alone(purchased: date, today: date, days_before: int, months: int) -> None:
    """A store finds the packs to remind by `today <= valid_until <= today + days_before`: every
    pack a reminder is due for, whatever the setting it was granted under, and none other that
    has credit left and is valid today."""
    expires = pack_expires_on(purchased, months=months)
    pack = Pack(id=1, purchased=purchased, incidents=1, valid_until=expires)
    in_window = today <= expires <= today + timedelta(days=days_before)
    assert expiry_reminder_due(pack, today, days_before) == (in_window and purchased <= today)


def test_months_go_back_as_they_go_forward() -> None:
    assert months_after(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert months_after(date(2027, 2, 28), -12) == date(2026, 2, 28)
    assert months_after(date(2026, 6, 10), -6) == date(2025, 12, 10)
    assert months_after(date(1, 1, 31), -1) == date.min
