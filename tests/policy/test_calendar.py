"""Business calendar: SPEC §1 examples, then properties over several calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.policy.calendar import BusinessCalendar, ServiceHours

LISBON = ZoneInfo("Europe/Lisbon")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
H = timedelta(hours=1)
US = timedelta(microseconds=1)

DEFAULT = BusinessCalendar.from_settings()
LISBOA = BusinessCalendar.from_settings(holidays_spec="PT-11")
ODD_DAYS = BusinessCalendar.from_settings(service_hours="mon,wed,fri 09:00-17:30", holidays_spec="PT-11")
ALWAYS = BusinessCalendar.from_settings(service_hours="mon-sun 00:00-24:00", holidays_spec="none")
# Windows that contain Lisbon's DST changes (01:00 UTC), to stress localisation.
NIGHT = BusinessCalendar.from_settings(service_hours="mon-sun 00:30-02:30", holidays_spec="none")
# Opens inside the spring-forward gap (01:00-02:00 local): that day it is empty.
GAP = BusinessCalendar.from_settings(service_hours="mon-sun 01:45-02:15", holidays_spec="none")
SUN_THU = BusinessCalendar.from_settings("America/New_York", "sun-thu 09:00-17:00", "US")
CALENDARS = [DEFAULT, ODD_DAYS, ALWAYS, NIGHT, GAP, SUN_THU]
CALENDAR_IDS = ["default", "odd-days", "24x7", "night", "dst-gap", "sun-thu-ny"]

# Property tests do a few calendar operations per example; no deadline
# because the first lookup of a year populates its holidays.
policy = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def lisbon(*args: int) -> datetime:
    return datetime(*args, tzinfo=LISBON)


# -- SPEC examples -----------------------------------------------------------


def test_case_opened_friday_afternoon_is_due_tuesday_same_time() -> None:
    assert DEFAULT.due_at(lisbon(2026, 3, 6, 17), 2) == lisbon(2026, 3, 10, 17)


def test_case_opened_on_saturday_starts_monday_and_is_due_tuesday_at_closing() -> None:
    opened = lisbon(2026, 3, 7, 11, 30)
    assert DEFAULT.next_opening(opened) == lisbon(2026, 3, 9, 8)
    assert DEFAULT.due_at(opened, 2) == lisbon(2026, 3, 10, 18)


def test_due_time_may_land_exactly_on_closing_time() -> None:
    assert DEFAULT.add_business_hours(lisbon(2026, 3, 9, 8), 20 * H) == lisbon(2026, 3, 10, 18)


def test_case_opened_at_closing_time_starts_next_morning() -> None:
    assert DEFAULT.due_at(lisbon(2026, 3, 9, 18), 2) == lisbon(2026, 3, 11, 18)


def test_immaculate_conception_is_skipped() -> None:
    assert not DEFAULT.is_open(lisbon(2026, 12, 8, 10))
    assert DEFAULT.due_at(lisbon(2026, 12, 7, 10), 2) == lisbon(2026, 12, 10, 10)


def test_christmas_is_skipped() -> None:
    assert DEFAULT.due_at(lisbon(2026, 12, 24, 9), 2) == lisbon(2026, 12, 29, 9)


def test_restoration_of_independence_pushes_friday_case_to_wednesday() -> None:
    # Tuesday 1 December 2026 is a national holiday.
    assert DEFAULT.due_at(lisbon(2026, 11, 27, 17), 2) == lisbon(2026, 12, 2, 17)


def test_spring_forward_weekend_keeps_clock_time() -> None:
    opened = lisbon(2026, 3, 27, 17)  # WET, UTC+0
    due = DEFAULT.due_at(opened, 2)
    assert due == lisbon(2026, 3, 31, 17)  # WEST, UTC+1
    assert due.astimezone(UTC) == datetime(2026, 3, 31, 16, tzinfo=UTC)
    assert DEFAULT.business_time_between(opened, due) == 20 * H


def test_fall_back_weekend_keeps_clock_time() -> None:
    opened = lisbon(2026, 10, 23, 12)  # WEST
    due = DEFAULT.due_at(opened, 2)
    assert due == lisbon(2026, 10, 27, 12)  # WET
    assert due.utcoffset() == timedelta(0)
    assert DEFAULT.business_time_between(opened, due) == 20 * H


def test_night_before_spring_forward_opens_monday_in_summer_time() -> None:
    opening = DEFAULT.next_opening(lisbon(2026, 3, 28, 23, 30))
    assert opening == lisbon(2026, 3, 30, 8)
    assert opening.utcoffset() == H


def test_service_day_on_a_dst_monday_has_ten_hours() -> None:
    # 2026-10-26 is the first Monday in winter time; 2026-03-30 the first in summer time.
    for day in (date(2026, 3, 30), date(2026, 10, 26)):
        opens = datetime.combine(day, time(8), tzinfo=LISBON)
        closes = datetime.combine(day, time(18), tzinfo=LISBON)
        assert DEFAULT.business_time_between(opens, closes) == 10 * H


def test_saint_anthony_closes_lisbon_subdivision_only() -> None:
    friday = lisbon(2025, 6, 13, 10)
    assert DEFAULT.is_open(friday)
    assert not LISBOA.is_open(friday)
    assert DEFAULT.due_at(lisbon(2025, 6, 12, 10), 2) == lisbon(2025, 6, 16, 10)
    assert LISBOA.due_at(lisbon(2025, 6, 12, 10), 2) == lisbon(2025, 6, 17, 10)


def test_opening_is_inclusive_and_closing_exclusive() -> None:
    assert DEFAULT.is_open(lisbon(2026, 3, 9, 8))
    assert DEFAULT.is_open(lisbon(2026, 3, 9, 17, 59, 59, 999999))
    assert not DEFAULT.is_open(lisbon(2026, 3, 9, 18))
    assert not DEFAULT.is_open(lisbon(2026, 3, 9, 7, 59))
    assert not DEFAULT.is_open(lisbon(2026, 3, 8, 12))  # Sunday


def test_instants_in_other_zones_are_judged_in_lisbon() -> None:
    # 07:30 UTC is 08:30 in Lisbon summer time.
    assert DEFAULT.is_open(datetime(2026, 7, 1, 7, 30, tzinfo=UTC))
    due = DEFAULT.due_at(datetime(2026, 7, 1, 7, 30, tzinfo=UTC), 2)
    assert due == lisbon(2026, 7, 3, 8, 30)
    assert due.tzinfo is LISBON


def test_next_opening_of_an_open_instant_is_itself() -> None:
    at = lisbon(2026, 3, 9, 12, 34, 56)
    assert DEFAULT.next_opening(at) == at


def test_warning_time_is_four_business_hours_before_due() -> None:
    assert DEFAULT.subtract_business_hours(lisbon(2026, 3, 10, 9), 4 * H) == lisbon(2026, 3, 9, 15)
    # Exactly four hours into the day: the warning fires at the opening, not the evening before.
    assert DEFAULT.subtract_business_hours(lisbon(2026, 3, 10, 12), 4 * H) == lisbon(2026, 3, 10, 8)


def test_business_time_between_is_signed() -> None:
    a, b = lisbon(2026, 3, 6, 17), lisbon(2026, 3, 9, 9)
    assert DEFAULT.business_time_between(a, b) == 2 * H
    assert DEFAULT.business_time_between(b, a) == -2 * H


def test_hours_per_day() -> None:
    assert DEFAULT.hours_per_day == 10 * H
    assert ODD_DAYS.hours_per_day == timedelta(hours=8, minutes=30)
    assert ALWAYS.hours_per_day == 24 * H


def test_always_open_counts_real_hours_across_dst() -> None:
    # 24/7 is allowed; across the spring-forward night a day has 23 real hours.
    start = lisbon(2026, 3, 28, 12)
    assert ALWAYS.add_business_hours(start, 24 * H) == lisbon(2026, 3, 29, 13)
    assert ALWAYS.is_open(lisbon(2026, 3, 29, 0))
    assert ALWAYS.next_opening(start) == start


def test_window_swallowed_by_spring_forward_gap_is_empty() -> None:
    day = lisbon(2026, 3, 29)
    assert GAP.business_time_between(day, day + 24 * H) == timedelta(0)
    assert GAP.next_opening(day) == lisbon(2026, 3, 30, 1, 45)
    assert GAP.business_time_between(lisbon(2026, 3, 30), lisbon(2026, 3, 31)) == timedelta(minutes=30)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT.is_open(datetime(2026, 3, 9, 10))


def test_negative_amounts_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        DEFAULT.add_business_hours(lisbon(2026, 3, 9, 10), -H)
    with pytest.raises(ValueError, match="negative"):
        DEFAULT.due_at(lisbon(2026, 3, 9, 10), -1)


def test_calendar_with_no_open_day_fails_instead_of_looping() -> None:
    shut = BusinessCalendar(tz=LISBON, hours=ServiceHours.parse("mon 08:00-18:00"), closed_dates=_Everything())
    with pytest.raises(ValueError, match="no service day"):
        shut.next_opening(lisbon(2026, 3, 9, 10))


class _Everything:
    def __contains__(self, item: object) -> bool:
        return True


# -- parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "weekdays", "opens", "closes"),
    [
        ("mon-fri 08:00-18:00", {0, 1, 2, 3, 4}, time(8), time(18)),
        ("MON,Wed,fri 09:00-17:30", {0, 2, 4}, time(9), time(17, 30)),
        ("mon-sat 08:00-18:00", {0, 1, 2, 3, 4, 5}, time(8), time(18)),
        ("  Monday - Friday   8:00 - 18:00 ", {0, 1, 2, 3, 4}, time(8), time(18)),
        ("sun-thu 09:00-17:00", {6, 0, 1, 2, 3}, time(9), time(17)),
        ("mon-sun 00:00-24:00", set(range(7)), time(0), time(0)),
    ],
)
def test_service_hours_parse(text: str, weekdays: set[int], opens: time, closes: time) -> None:
    hours = ServiceHours.parse(text)
    assert hours == ServiceHours(frozenset(weekdays), opens, closes)
    assert ServiceHours.parse(str(hours)) == hours


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid service hours"),
        ("mon-fri", "invalid service hours"),
        ("mon-fri 8-18", "invalid service hours"),
        ("funday 08:00-18:00", "unknown weekday 'funday'"),
        ("mon,,fri 08:00-18:00", "empty weekday"),
        ("mon-fri 18:00-08:00", "must be after"),
        ("mon-fri 08:00-08:00", "must be after"),
        ("mon-fri 08:00-25:00", "invalid closing time '25:00'"),
        ("mon-fri 24:00-24:00", "invalid opening time '24:00'"),
        ("mon-fri 08:60-18:00", "invalid opening time"),
    ],
)
def test_service_hours_parse_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceHours.parse(text)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"timezone": "../etc/passwd"}, "../etc/passwd"),
        ({"holidays_spec": "XX"}, "XX"),
        ({"holidays_spec": "PT-99"}, "PT-99"),
        ({"service_hours": "weekdays"}, "weekdays"),
    ],
)
def test_from_settings_names_the_bad_value(kwargs: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        BusinessCalendar.from_settings(**kwargs)


# -- properties ----------------------------------------------------------------

ZONES = [UTC, LISBON, NEW_YORK, TOKYO]
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def instants(draw: st.DrawFn, cal: BusinessCalendar) -> datetime:
    """Aware instants in 2024-2030, often on the calendar's round local times."""
    if draw(st.booleans()):
        micros = draw(st.integers(0, 7 * 366 * 24 * 3600 * 10**6))
        instant = _EPOCH + timedelta(microseconds=micros)
    else:
        day = draw(st.dates(date(2024, 1, 1), date(2030, 12, 31)))
        clock = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30])))
        instant = datetime.combine(day, clock, tzinfo=cal.tz)
    return instant.astimezone(draw(st.sampled_from(ZONES)))


def amounts(cal: BusinessCalendar) -> st.SearchStrategy[timedelta]:
    return st.one_of(
        st.timedeltas(timedelta(0), timedelta(hours=200)),
        st.integers(0, 400).map(lambda n: n * timedelta(minutes=30)),
        st.integers(0, 15).map(lambda n: n * cal.hours_per_day),
    )


calendars = pytest.mark.parametrize("cal", CALENDARS, ids=CALENDAR_IDS)


def test_a_due_time_in_the_repeated_hour_of_a_fall_back_night_is_inside_the_window() -> None:
    # Found by the property below: the 01:45-02:15 window of 27 Oct 2024 runs from 00:45 to
    # 02:15 UTC, and the due time is the second 01:15 (fold=1), 01:15 UTC.
    due = GAP.due_at(datetime(2024, 10, 17, 23, 0, tzinfo=UTC), 10)
    assert due.astimezone(UTC) == datetime(2024, 10, 27, 1, 15, tzinfo=UTC)  # (== across zones is False when fold=1)
    assert GAP.is_open(due.astimezone(UTC) - US)


@calendars
@policy
@given(data=st.data())
def test_due_time_falls_inside_service_hours(cal: BusinessCalendar, data: st.DataObject) -> None:
    start = data.draw(instants(cal))
    days = data.draw(st.integers(1, 10))
    due = cal.due_at(start, days)
    # opens < due <= closes on an open day, with half-open [opens, closes) windows. The
    # microsecond is taken off in UTC: aware arithmetic in the local zone drops `fold`, so
    # the second 01:15 of a fall-back night minus 1 µs would land an hour earlier.
    assert cal.is_open(due.astimezone(UTC) - US)
    assert due > start


@policy
@given(data=st.data())
def test_default_due_time_is_on_an_open_day_within_the_window(data: st.DataObject) -> None:
    due = DEFAULT.due_at(data.draw(instants(DEFAULT)), data.draw(st.integers(1, 10)))
    local = due.astimezone(LISBON)
    assert DEFAULT.is_open_day(local.date())
    assert time(8) < local.time() <= time(18)


@policy
@given(data=st.data())
def test_due_is_same_clock_time_n_open_days_later(data: st.DataObject) -> None:
    start = data.draw(instants(DEFAULT)).astimezone(LISBON)
    days = data.draw(st.integers(1, 10))
    in_service = DEFAULT.is_open(start) and start.time() != time(8)
    at_closing = DEFAULT.is_open_day(start.date()) and start.time() == time(18)
    if not (in_service or at_closing):
        return
    expected_day = start.date()
    for _ in range(days):
        expected_day += timedelta(days=1)
        while not DEFAULT.is_open_day(expected_day):
            expected_day += timedelta(days=1)
    due = DEFAULT.due_at(start, days)
    assert (due.date(), due.time()) == (expected_day, start.time())


@calendars
@policy
@given(data=st.data())
def test_business_time_between_start_and_add_is_the_amount(cal: BusinessCalendar, data: st.DataObject) -> None:
    start, amount = data.draw(instants(cal)), data.draw(amounts(cal))
    assert cal.business_time_between(start, cal.add_business_hours(start, amount)) == amount


@calendars
@policy
@given(data=st.data())
def test_adding_is_additive(cal: BusinessCalendar, data: st.DataObject) -> None:
    # Holds from any start: add() picks the earliest instant reaching the
    # amount, so splitting the amount never skips or repeats closed time.
    start = data.draw(instants(cal))
    a, b = data.draw(amounts(cal)), data.draw(amounts(cal))
    assert cal.add_business_hours(cal.add_business_hours(start, a), b) == cal.add_business_hours(start, a + b)


@calendars
@policy
@given(data=st.data())
def test_adding_is_monotonic_in_start_and_amount(cal: BusinessCalendar, data: st.DataObject) -> None:
    s1, s2 = sorted([data.draw(instants(cal)), data.draw(instants(cal))])
    a1, a2 = sorted([data.draw(amounts(cal)), data.draw(amounts(cal))])
    assert cal.add_business_hours(s1, a1) <= cal.add_business_hours(s2, a1)
    assert cal.add_business_hours(s1, a1) <= cal.add_business_hours(s1, a2)


@calendars
@policy
@given(data=st.data())
def test_subtract_undoes_add_back_to_the_clock_start(cal: BusinessCalendar, data: st.DataObject) -> None:
    start = data.draw(instants(cal))
    amount = data.draw(amounts(cal).filter(bool))
    assert cal.subtract_business_hours(cal.add_business_hours(start, amount), amount) == cal.next_opening(start)


@calendars
@policy
@given(data=st.data())
def test_add_undoes_subtract_for_due_times(cal: BusinessCalendar, data: st.DataObject) -> None:
    # Due times (results of add with a positive amount) lie in (opens, closes].
    due = cal.add_business_hours(data.draw(instants(cal)), data.draw(amounts(cal).filter(bool)))
    amount = data.draw(amounts(cal).filter(bool))
    warning = cal.subtract_business_hours(due, amount)
    assert cal.is_open(warning)
    assert cal.business_time_between(warning, due) == amount
    assert cal.add_business_hours(warning, amount) == due


def test_a_time_the_spring_forward_gap_skips_is_open_as_the_instant_it_names() -> None:
    # 01:00 on 31 Mar 2030 does not exist in Lisbon: it names 01:00 UTC, 02:00 on the clock.
    cal = CALENDARS[CALENDAR_IDS.index("24x7")]
    at = lisbon(2030, 3, 31, 1)
    assert cal.is_open(at)
    assert cal.next_opening(at).astimezone(UTC) == at.astimezone(UTC) == datetime(2030, 3, 31, 1, tzinfo=UTC)


@calendars
@policy
@given(data=st.data())
def test_next_opening_is_the_first_open_instant(cal: BusinessCalendar, data: st.DataObject) -> None:
    at = data.draw(instants(cal))
    opening = cal.next_opening(at)
    assert opening >= at
    assert cal.is_open(opening)
    assert cal.business_time_between(at, opening) == timedelta(0)
    assert opening.tzinfo is cal.tz
    # The same instant, compared in UTC: two datetimes sharing one tzinfo compare their wall times,
    # and a time the spring-forward gap skips (01:30 on the last Sunday of March in Lisbon) is the
    # instant 02:30 names, on a different wall time.
    assert (opening.astimezone(UTC) == at.astimezone(UTC)) == cal.is_open(at)


@calendars
@policy
@given(data=st.data())
def test_business_time_matches_counting_quarter_hours(cal: BusinessCalendar, data: st.DataObject) -> None:
    # An independent oracle: every calendar here opens and closes on the quarter hour.
    quarter = timedelta(minutes=15)
    first = _EPOCH + quarter * data.draw(st.integers(0, 7 * 366 * 96))
    last = first + quarter * data.draw(st.integers(0, 6 * 96))
    slots = (last - first) // quarter
    expected = sum(cal.is_open(first + i * quarter) for i in range(slots)) * quarter
    assert cal.business_time_between(first, last) == expected


@pytest.mark.parametrize("spec", ["PT", "PT-11", "PT-30", "ES", "DE-BY"])
def test_holidays_loaded_country_by_country_match_the_librarys_own_loader(spec: str) -> None:
    import holidays

    from bot.policy.calendar import _load_closed_dates

    country, _, subdiv = spec.partition("-")
    ours = _load_closed_dates(spec)
    theirs = holidays.country_holidays(country, subdiv=subdiv or None, language="en_US")
    days = [date(2024, 1, 1) + timedelta(days=n) for n in range(366 * 7)]
    assert [d for d in days if d in ours] == [d for d in days if d in theirs]
    assert ours.get(date(2026, 12, 25)) == theirs.get(date(2026, 12, 25))  # names, in English, too


@pytest.mark.parametrize("spec", ["XX", "PT-99"])
def test_unknown_holiday_settings_are_one_clear_error(spec: str) -> None:
    with pytest.raises(ValueError, match="unknown holidays"):
        BusinessCalendar.from_settings(holidays_spec=spec)
