"""The response-target warning says how much service time is really left (console desk, both
databases): counted on the service calendar from now to the due time, also when a raised severity
brought the due time nearer than the usual 4 business hours, and across closed time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.services.outgoing import Outgoing
from bot.watcher import check_targets, service_time
from storage.db import transaction
from tests.desk import Desk


def watch(desk: Desk) -> str:
    """One pass of the watcher at the desk's time; what it posted."""
    start = len(desk.out.getvalue())
    with transaction(desk.engine) as session:
        check_targets(Outgoing(session, desk.clock()), desk.runtime.deployment)
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


def test_a_severity_raised_close_to_its_target_is_warned_with_the_time_really_left(engine, db_url, clock) -> None:  # noqa: ANN001
    """Opened Wednesday 10:00 at severity 3 (2 service days: due Friday 10:00); raised to 1 (1 service
    day) on Thursday at 08:30, it is due Thursday 10:00: an hour and a half of service time away."""
    desk = Desk(engine, db_url, clock, DESKBOT_RESPONSE_TARGET="1:1,2")
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Slow disks")
    clock.advance(hours=22, minutes=30)
    desk.engineer("/severity 1 1")
    assert watch(desk) == (
        "[#1 Acme: Slow disks] 🟠 Response due Thursday, 3 December 2026 at 10:00 (Lisbon time):"
        " 1 h 30 min of service time left. (Severity 1, critical.)\n"
    )


def test_time_left_counts_service_hours_only(engine, db_url, clock) -> None:  # noqa: ANN001
    """Due Friday 10:00, warned on Thursday at 17:40: 20 minutes that day, 2 hours on Friday; the night
    in between is no service time."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Slow disks")
    clock.advance(days=1, hours=7, minutes=40)
    assert ": 2 h 20 min of service time left. (Severity 3, normal.)" in watch(desk)


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (timedelta(hours=4), "4 h"),
        (timedelta(hours=1, minutes=30), "1 h 30 min"),
        (timedelta(minutes=25), "25 min"),
        # Rounded up to the minute: never less than is left, never "0 min" before the due time.
        (timedelta(hours=3, minutes=59, seconds=31), "4 h"),
        (timedelta(seconds=1), "1 min"),
    ],
)
def test_service_time_is_said_in_hours_and_minutes(left: timedelta, said: str) -> None:
    assert service_time(left) == said
