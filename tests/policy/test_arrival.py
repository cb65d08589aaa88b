"""When a message is taken to have arrived (bot.policy.arrival): the platform's time, within bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.policy.arrival import ARRIVAL_TRUSTED_FOR, arrival

# Aware times in zones with and without daylight saving time: the rule compares instants.
ZONES = st.sampled_from([UTC, ZoneInfo("Europe/Lisbon"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")])
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=ZONES)
# Up to a month either way of the handling time: inside the trusted week and well outside it.
OFFSETS = st.timedeltas(min_value=-timedelta(days=30), max_value=timedelta(days=30))

NOW = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)


@given(TIMES, OFFSETS)
def test_never_after_now(now: datetime, offset: timedelta) -> None:
    assert arrival(now + offset, now) <= now


@given(TIMES, OFFSETS)
def test_never_before_the_trusted_bound(now: datetime, offset: timedelta) -> None:
    assert arrival(now + offset, now) >= now.astimezone(UTC) - ARRIVAL_TRUSTED_FOR


@given(TIMES, st.timedeltas(min_value=timedelta(0), max_value=ARRIVAL_TRUSTED_FOR))
def test_the_platforms_time_inside_the_window(now: datetime, before: timedelta) -> None:
    received = now.astimezone(UTC) - before
    assert arrival(received, now) == received


@given(TIMES, OFFSETS, OFFSETS)
def test_a_later_time_never_arrives_earlier(now: datetime, a: timedelta, b: timedelta) -> None:
    first, second = sorted((a, b))
    assert arrival(now + first, now) <= arrival(now + second, now)


def test_a_weekend_outage_keeps_fridays_time() -> None:
    friday = datetime(2026, 6, 12, 15, 0, tzinfo=UTC)
    assert arrival(friday, NOW) == friday


def test_a_time_from_long_ago_is_the_bound() -> None:
    assert arrival(datetime(1970, 1, 1, tzinfo=UTC), NOW) == NOW - ARRIVAL_TRUSTED_FOR


def test_a_time_ahead_of_ours_is_now() -> None:
    assert arrival(NOW + timedelta(hours=3), NOW) == NOW
