"""A customer's message counts from when it arrived, not from when the bot got to it (bot.policy.arrival):
the response clock and the credit that pays are those of the time the customer wrote, as the platform
says it, but never later than now nor more than `ARRIVAL_TRUSTED_FOR` earlier. The bot was down over a
weekend here: messages written on Friday afternoon are handled on Monday morning.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from adapters.channel import Inbound
from adapters.console import console_line
from bot.i18n import format_when
from bot.policy.arrival import ARRIVAL_TRUSTED_FOR
from bot.services import credits, customers
from storage.db import transaction
from storage.models import Incident, IncidentEvent, IncidentMessage
from tests.conftest import FakeClock
from tests.desk import Desk

LISBON = ZoneInfo("Europe/Lisbon")
_ids = itertools.count(1)


def lisbon(*args: int) -> datetime:
    return datetime(*args, tzinfo=LISBON)


#: Monday 15 June 2026, 09:00 in Lisbon: the bot is back after the weekend.
MONDAY = lisbon(2026, 6, 15, 9)
#: Friday 12 June 2026, 16:00 in Lisbon: when the customer wrote.
FRIDAY = lisbon(2026, 6, 12, 16)


def _desk(engine, db_url) -> Desk:  # noqa: ANN001
    return Desk(engine, db_url, FakeClock(MONDAY.astimezone(UTC)))


def _written_at(desk: Desk, who: str, text: str, received_at: datetime) -> str:
    """`text` from `who` that the platform says arrived at `received_at`, handled now; what the console printed."""
    start = len(desk.out.getvalue())
    desk.runtime.intake.deliver(console_line(who, text, f"late-{next(_ids)}", received_at.astimezone(UTC)))
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


def _when(desk: Desk, moment: datetime) -> str:
    return format_when(moment, "en", desk.runtime.settings.calendar.tz)


def _incident(desk: Desk, number: int) -> Incident:
    with transaction(desk.engine) as session:
        incident = session.get(Incident, number)
        session.expunge(incident)
        return incident


def test_a_pack_valid_on_the_day_the_customer_wrote_pays(engine, db_url):
    desk = _desk(engine, db_url)
    # Bought on 12 June 2025: valid through Friday 12 June 2026 inclusive, expired by Monday.
    desk.customer("Acme", credits=2, purchased=date(2025, 6, 12))
    out = _written_at(desk, "Acme", "open The NAS does not boot", FRIDAY)
    assert "Incident #1 is open: The NAS does not boot" in out
    assert "have expired" not in out
    assert desk.credits_used() == 1
    assert "valid until 12 Jun 2026 inclusive" in out
    assert _incident(desk, 1).due_at == lisbon(2026, 6, 16, 16)


def test_the_due_time_counts_from_when_the_customer_wrote(engine, db_url):
    desk = _desk(engine, db_url)
    desk.customer("Acme", credits=2, purchased=date(2026, 6, 1))
    out = _written_at(desk, "Acme", "open The NAS does not boot", FRIDAY)
    # 20 business hours from Friday 16:00: 2 on Friday, 10 on Monday, 8 on Tuesday.
    assert f"We will answer by {_when(desk, lisbon(2026, 6, 16, 16))}." in out
    incident = _incident(desk, 1)
    assert incident.opened_at == incident.clock_from == FRIDAY
    with transaction(desk.engine) as session:
        opened = session.scalar(select(IncidentEvent.at).where(IncidentEvent.action == "opened"))
        recorded = session.scalar(select(IncidentMessage.created_at))
    # The history's opening matches the clock; the message is recorded when it was handled.
    assert opened == FRIDAY
    assert recorded == MONDAY


def test_a_message_on_an_answered_case_starts_the_clock_when_written(engine, db_url):
    desk = _desk(engine, db_url)
    desk.customer("Acme", credits=1, purchased=date(2026, 6, 1))
    desk.clock.now = lisbon(2026, 6, 12, 10).astimezone(UTC)
    desk.say("Acme", "open The NAS does not boot")
    desk.engineer("/reply 1 Which model is it?")
    assert _incident(desk, 1).due_at is None
    desk.clock.now = MONDAY.astimezone(UTC)
    _written_at(desk, "Acme", "It is the DS920+", FRIDAY)
    assert _incident(desk, 1).due_at == lisbon(2026, 6, 16, 16)


def test_a_time_from_before_the_bound_counts_as_the_bound(engine, db_url):
    desk = _desk(engine, db_url)
    # Valid through 20 May 2026: when the message claims to be from, not within the week before Monday.
    desk.customer("Acme", credits=1, purchased=date(2025, 5, 20))
    out = _written_at(desk, "Acme", "open The NAS does not boot", lisbon(2026, 5, 1, 10))
    assert "Your support credits have expired." in out
    assert desk.incident_count() == 0 and desk.credits_used() == 0

    desk.customer("Bolt", credits=1, purchased=date(2026, 6, 1))
    out = _written_at(desk, "Bolt", "open The NAS does not boot", lisbon(2026, 5, 1, 10))
    earliest = MONDAY - ARRIVAL_TRUSTED_FOR
    incident = _incident(desk, 1)
    assert incident.clock_from == earliest
    assert incident.due_at == desk.runtime.settings.calendar.due_at(earliest, 2)
    assert "Its answer is due now" in out


def test_a_time_ahead_of_the_bots_counts_as_now(engine, db_url):
    desk = _desk(engine, db_url)
    # A pack from Wednesday: a message dated Wednesday is not let in on it on Monday.
    desk.customer("Acme", credits=1, purchased=date(2026, 6, 17))
    out = _written_at(desk, "Acme", "open The NAS does not boot", lisbon(2026, 6, 17, 10))
    assert "Your support credits are valid from 17 Jun 2026." in out
    assert desk.incident_count() == 0

    desk.customer("Bolt", credits=1, purchased=date(2026, 6, 1))
    out = _written_at(desk, "Bolt", "open The NAS does not boot", MONDAY + timedelta(days=2))
    assert f"We will answer by {_when(desk, lisbon(2026, 6, 17, 9))}." in out
    assert _incident(desk, 1).clock_from == MONDAY


def test_a_pack_dated_ahead_that_became_valid_since_pays(engine, db_url):
    desk = _desk(engine, db_url)
    # The renewal starts on Monday: on Friday it was not valid yet, and on Monday it is.
    desk.customer("Acme", credits=1, purchased=date(2026, 6, 15))
    out = _written_at(desk, "Acme", "open The NAS does not boot", FRIDAY)
    assert "Incident #1 is open" in out and "valid from" not in out
    assert _incident(desk, 1).due_at == lisbon(2026, 6, 16, 16)


def test_a_reply_of_someone_copied_starts_the_clock_when_written(engine, db_url):
    """Their message owes an answer as the customer's does (bot.handlers.copied), from when they wrote."""
    desk = _desk(engine, db_url)
    desk.clock.now = lisbon(2026, 6, 12, 10).astimezone(UTC)
    with transaction(engine) as session:
        customer, _code = customers.create_customer(session, "Acme", "ana@acme.example", "en", desk.clock())
        credits.grant_credits(session, customer, 1, date(2026, 6, 1), "test", desk.clock(), months=12)

    def mail(sender: str, text: str, number: int, received_at: datetime, cc=(), case=None) -> None:  # noqa: ANN001
        desk.runtime.intake.deliver(
            Inbound(
                channel="email",
                sender=sender,
                conversation=f"<m{number}@acme.example>",
                text=text,
                message_id=f"<m{number}@acme.example>",
                received_at=received_at.astimezone(UTC),
                copies=cc,
                case_hint=case,
            )
        )

    mail("ana@acme.example", "open\nThe NAS does not boot", 1, desk.clock(), cc=("carla@acme.example",))
    desk.engineer("/reply 1 Which model is it?")
    desk.clock.now = MONDAY.astimezone(UTC)
    mail("carla@acme.example", "It is the DS920+", 2, FRIDAY, case=1)
    assert desk.bodies(1)[-1] == "It is the DS920+"
    assert _incident(desk, 1).due_at == lisbon(2026, 6, 16, 16)
