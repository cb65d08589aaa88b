"""The rules of people copied on an incident (issue 17), through the real runtime, intake, router and
store, on SQLite and PostgreSQL, with messages as the email adapter hands them over (`Inbound.copies`):
how many one incident copies, which rows copy them, and an engineer's removal that sticks.
The mail itself is tested against the real mail servers in tests/email/test_copies.py."""

from __future__ import annotations

import json
from datetime import UTC

from sqlalchemy import select

from adapters.channel import Inbound
from bot.services import copies, credits, customers
from storage.db import transaction
from storage.models import IncidentCopy, Outbox
from tests.desk import Desk

ANA = "ana@acme.example"


def _desk(engine, db_url, clock) -> Desk:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    # As the email channel sets it (EMAIL_ANSWERS_PER_HOUR): no email channel runs here.
    desk.runtime.router.answer_caps = {"email": 5}
    with transaction(engine) as session:
        customer, _code = customers.create_customer(session, "Acme", ANA, "en", clock())
        credits.grant_credits(session, customer, 3, clock().date(), "test", clock(), months=12)
    return desk


def _mail(desk: Desk, number: int, text: str, cc: tuple[str, ...], subject: str = "VPN") -> None:
    """A mail from Ana as the email adapter gives it (no email channel runs: answers stay in the store)."""
    desk.runtime.intake.deliver(
        Inbound(
            channel="email",
            sender=ANA,
            conversation=f"<m{number}@acme.example>",
            text=text,
            message_id=f"<m{number}@acme.example>",
            received_at=desk.clock().astimezone(UTC),
            subject_hint=subject,
            copies=cc,
        )
    )


def _copied(desk: Desk) -> list[str]:
    with transaction(desk.engine) as session:
        rows = session.scalars(select(IncidentCopy).where(IncidentCopy.removed_at.is_(None)).order_by(IncidentCopy.id))
        return [row.address for row in rows]


def _answers(desk: Desk) -> list[tuple[str, list[str]]]:
    with transaction(desk.engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.channel == "email").order_by(Outbox.id))
        return [(row.text, json.loads(row.copies or "[]")) for row in rows]


def test_an_incident_copies_at_most_twenty_people(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = _desk(engine, db_url, clock)
    team = tuple(f"person{n}@acme.example" for n in range(25))
    _mail(desk, 1, "open\nThe VPN is down.", team)
    assert _copied(desk) == list(team[: copies.MAX_COPIES])
    ((opened, cc),) = _answers(desk)
    assert "Incident #1 is open" in opened and cc == list(team[: copies.MAX_COPIES])
    assert "person19@acme.example" in desk.engineer("/case 1") and "person20" not in desk.engineer("/case 1")
    assert "copies 20 people already" in desk.engineer("/cc 1 add late@acme.example")


def test_a_removal_sticks_and_rows_about_no_incident_copy_nobody(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = _desk(engine, db_url, clock)
    _mail(desk, 1, "open\nThe VPN is down.", ("carla@acme.example",))
    desk.engineer("/cc 1 remove carla@acme.example")
    clock.advance(minutes=10)
    _mail(desk, 2, "#1 Still down.", ("carla@acme.example", "dora@acme.example"))
    assert _copied(desk) == ["dora@acme.example"]
    assert _answers(desk)[-1] == (
        "Added to incident #1. What you write soon after is added too, without an answer each time.",
        ["dora@acme.example"],
    )
    # `credits` is about no incident: it copies nobody, whoever the mail copied.
    _mail(desk, 3, "credits", ("dora@acme.example",))
    assert _answers(desk)[-1][1] == []
    # Dora had her automatic answers this hour (she is copied on the bot's answers elsewhere, say):
    # the bot's next automatic answer leaves her out; an engineer's words copy her all the same.
    with transaction(desk.engine) as session:
        while copies.within_cap(session, "email", "dora@acme.example", 5, clock()):
            pass
    clock.advance(minutes=10)
    _mail(desk, 4, "#1 ping", ())
    assert _answers(desk)[-1][0].startswith("Added to incident #1.") and _answers(desk)[-1][1] == []
    desk.engineer("/reply 1 We are on it.")
    assert _answers(desk)[-1] == ("[#1] We are on it.", ["dora@acme.example"])
    # Dora never wrote: she is no unknown contact.
    assert "dora@" not in desk.engineer("/contacts")


def test_a_draft_dropped_by_open_with_other_text_takes_its_copies_with_it(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = _desk(engine, db_url, clock)
    # No incident yet: the text waits as a draft, with Carla whom it copied.
    _mail(desk, 1, "The tunnel drops every hour.", ("carla@acme.example",))
    assert 'Reply "open"' in _answers(desk)[-1][0] and _copied(desk) == []
    # `open <other text>` opens with that text alone and drops the draft: Carla is not copied.
    clock.advance(minutes=1)
    _mail(desk, 2, "open The printer is offline.", ())
    assert "was not included" in _answers(desk)[-1][0]
    assert _copied(desk) == []
    assert _answers(desk)[-1][1] == []
