"""The free reopening (SPEC §2: `reopen N`, free within 7 days of the resolution) ends at the time of
day the case was resolved, 7 calendar days later on the service time zone's clock, whether or not
daylight saving time began or ended in between; and a `reopen N` counts from when it was written.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from adapters.console import console_line
from bot.i18n import format_when
from bot.policy.calendar import days_later
from storage.db import transaction
from storage.models import Incident
from tests.conftest import FakeClock
from tests.desk import Desk

LISBON = ZoneInfo("Europe/Lisbon")
HOUR = timedelta(hours=1)
#: SPEC §2: free within 7 days of the resolution.
WEEK = 7
_ids = itertools.count(1)


def lisbon(*args: int) -> datetime:
    return datetime(*args, tzinfo=LISBON)


# -- the rule ---------------------------------------------------------------------------

# Zones whose clocks change by an hour (or never), at night.
ZONES = st.sampled_from(
    [LISBON, ZoneInfo("America/New_York"), ZoneInfo("Australia/Sydney"), ZoneInfo("Asia/Tokyo"), UTC]
)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC))


def test_resolved_in_summer_time_the_deadline_is_in_winter_time_at_the_same_hour() -> None:
    assert days_later(lisbon(2026, 10, 23, 10), WEEK, LISBON) == lisbon(2026, 10, 30, 10)
    assert days_later(lisbon(2026, 3, 27, 10), WEEK, LISBON) == lisbon(2026, 4, 3, 10)


@given(TIMES, ZONES, st.integers(min_value=-30, max_value=30))
def test_the_same_time_of_day_so_many_days_later(at: datetime, tz: ZoneInfo, days: int) -> None:
    later = days_later(at, days, tz).astimezone(tz)
    local = at.astimezone(tz)
    wall = local.replace(tzinfo=None) + timedelta(days=days)
    exists = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
    # A time the clocks skip that day is read an hour on.
    assert later.replace(tzinfo=None) == (wall if exists else wall + HOUR)
    assert abs(later.astimezone(UTC) - at - timedelta(days=days)) <= HOUR  # elapsed time


@given(TIMES, st.timezones())
def test_a_week_on_the_clock_is_never_a_day_longer_than_seven_times_24_hours(at: datetime, tz: ZoneInfo) -> None:
    """What `incidents.recently_resolved` relies on to narrow its query: resolutions more than
    8 days ago are past their deadline in any zone."""
    assert days_later(at, WEEK, tz) - at <= timedelta(days=WEEK + 1)


# -- through the desk -------------------------------------------------------------------


def _resolved_at(engine, db_url, resolved: datetime) -> Desk:  # noqa: ANN001
    """A desk whose customer Acme had incident #1 resolved at `resolved`."""
    desk = Desk(engine, db_url, FakeClock((resolved - HOUR).astimezone(UTC)))
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open The NAS does not boot")
    desk.clock.now = resolved.astimezone(UTC)
    desk.engineer("/resolve 1 Replaced the disk")
    return desk


def _at(desk: Desk, moment: datetime) -> None:
    desk.clock.now = moment.astimezone(UTC)


def _when(desk: Desk, moment: datetime) -> str:
    return format_when(moment, "en", desk.runtime.settings.calendar.tz)


def _state(desk: Desk, number: int) -> str:
    with transaction(desk.engine) as session:
        return session.get(Incident, number).state


def test_resolved_before_the_clocks_go_back_it_reopens_free_until_the_same_hour(engine, db_url):
    desk = _resolved_at(engine, db_url, lisbon(2026, 10, 23, 10))
    _at(desk, lisbon(2026, 10, 26, 11))
    out = desk.say("Acme", "It does not boot again")
    assert f'To reopen it at no charge until {_when(desk, lisbon(2026, 10, 30, 10))}, reply "reopen 1"' in out
    _at(desk, lisbon(2026, 10, 30, 9, 30))
    assert "Incident #1 is open again, at no charge." in desk.say("Acme", "reopen 1")


def test_resolved_before_the_clocks_go_forward_it_reopens_free_until_the_same_hour(engine, db_url):
    desk = _resolved_at(engine, db_url, lisbon(2026, 3, 27, 10))
    _at(desk, lisbon(2026, 3, 30, 11))
    out = desk.say("Acme", "status 1")
    assert f"You can reopen it at no charge until {_when(desk, lisbon(2026, 4, 3, 10))}" in out
    assert f"reopens it at no charge until {_when(desk, lisbon(2026, 4, 3, 10))}" in desk.say("Acme", "status")
    _at(desk, lisbon(2026, 4, 3, 10))
    assert "more than 7 days ago" in desk.say("Acme", "reopen 1")
    assert _state(desk, 1) == "resolved"


def test_plain_text_goes_to_the_resolved_case_until_the_deadline(engine, db_url):
    """The resolved case is found by the query's cutoff, a day wider than the window; the deadline decides."""
    desk = _resolved_at(engine, db_url, lisbon(2026, 10, 23, 10))
    _at(desk, lisbon(2026, 10, 30, 9, 30))
    out = desk.say("Acme", "It does not boot again")
    assert "Added to incident #1" in out and "it stays resolved" in out
    _at(desk, lisbon(2026, 10, 30, 10, 30))
    assert "You have no open incident" in desk.say("Acme", "Now it beeps")
    assert desk.bodies(1)[-1] == "It does not boot again"


# -- a reopening counts from when it was asked ------------------------------------------


def _written_at(desk: Desk, who: str, text: str, received_at: datetime) -> str:
    start = len(desk.out.getvalue())
    desk.runtime.intake.deliver(console_line(who, text, f"late-{next(_ids)}", received_at.astimezone(UTC)))
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


def _clock_from(desk: Desk, number: int) -> datetime | None:
    with transaction(desk.engine) as session:
        return session.get(Incident, number).clock_from


def test_a_reopen_written_in_time_and_handled_after_the_deadline_is_free(engine, db_url):
    desk = _resolved_at(engine, db_url, lisbon(2026, 10, 23, 10))
    _at(desk, lisbon(2026, 11, 2, 9))  # the bot is back on Monday
    out = _written_at(desk, "Acme", "reopen 1", lisbon(2026, 10, 30, 9, 30))
    assert "Incident #1 is open again, at no charge." in out
    assert _clock_from(desk, 1) == lisbon(2026, 10, 30, 9, 30)


def test_a_reopen_written_before_the_resolution_counts_from_the_resolution(engine, db_url):
    """Held up on one channel while an engineer resolved the case on another: the new due time is
    never counted from before the resolution it undoes."""
    desk = _resolved_at(engine, db_url, lisbon(2026, 10, 23, 17))
    _at(desk, lisbon(2026, 10, 26, 9))
    assert "open again" in _written_at(desk, "Acme", "reopen 1", lisbon(2026, 10, 23, 16))
    assert _clock_from(desk, 1) == lisbon(2026, 10, 23, 17)
