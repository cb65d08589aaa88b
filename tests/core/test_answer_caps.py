"""A linked customer's answers under the email channel's hourly cap (EMAIL_ANSWERS_PER_HOUR, SPEC §4),
through the real runtime, intake, router and store, on SQLite and PostgreSQL, with mails as the email
adapter hands them over: commands are answered at a person's pace, the rest stops at the cap, and
what is withheld loses nothing and is told to the engineers once an hour.
The mail itself, and robots, are tested against the real mail servers in tests/email/test_channel_loops.py."""

from __future__ import annotations

import itertools
from datetime import UTC

from sqlalchemy import select

from adapters.channel import Inbound
from bot.services import credits, customers, strangers
from storage.db import transaction
from storage.models import Draft, IncidentMessage, Outbox
from tests.desk import Desk

ANA = "ana@acme.example"
HELD_BACK = "Some automatic answers to `Acme` (`ana@acme.example` by email) are held back until"


def _desk(engine, db_url, clock) -> Desk:  # noqa: ANN001
    """The defaults: the email channel's cap of 5 (set as the channel sets it: none runs here), and
    DESKBOT_ACK_QUIET_MINUTES 10."""
    desk = Desk(engine, db_url, clock)
    desk.runtime.router.answer_caps = {"email": 5}
    with transaction(engine) as session:
        customer, _code = customers.create_customer(session, "Acme", ANA, "en", clock())
        credits.grant_credits(session, customer, 3, clock().date(), "test", clock(), months=12)
    return desk


_numbers = itertools.count(1)


def _mail(desk: Desk, text: str, subject: str = "Licence") -> list[str]:
    """A new mail from Ana (no email channel runs: answers stay in the store); the answers it got."""
    before = len(_answers(desk))
    number = next(_numbers)
    desk.runtime.intake.deliver(
        Inbound(
            channel="email",
            sender=ANA,
            conversation=f"<m{number}@acme.example>",
            text=text,
            message_id=f"<m{number}@acme.example>",
            received_at=desk.clock().astimezone(UTC),
            subject_hint=subject,
        )
    )
    desk.clock.advance(seconds=30)
    return _answers(desk)[before:]


def _answers(desk: Desk) -> list[str]:
    with transaction(desk.engine) as session:
        return list(session.scalars(select(Outbox.text).where(Outbox.channel == "email").order_by(Outbox.id)))


def _topic_rows(desk: Desk, topic_part: str) -> list[str]:
    with transaction(desk.engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.kind == "topic").order_by(Outbox.id))
        return [row.quote or row.text for row in rows if topic_part in (row.topic or "")]


def test_the_audits_sequence_gets_every_answer_and_the_second_open_opens(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = _desk(engine, db_url, clock)
    (asked,) = _mail(desk, "Our licence server will not start after the update.")
    assert 'Reply "open"' in asked
    assert "Incident #1 is open" in _mail(desk, "open")[0]
    assert _mail(desk, "severity 1 2")
    assert "#1" in _mail(desk, "status")[0]
    assert _mail(desk, "help")
    # The sixth answer of the hour: a command is answered, and its text waits for the answer asked.
    (again,) = _mail(desk, "open How do I move our licence to the new server?", subject="Licence move")
    assert "You already have an open incident: #1" in again
    assert "#1" in _mail(desk, "status")[0]
    assert "Incident #2 is open" in _mail(desk, "open")[0]
    with transaction(engine) as session:
        bodies = session.scalars(select(IncidentMessage.body).where(IncidentMessage.incident_id == 2)).all()
    assert bodies == ["How do I move our licence to the new server?"]
    assert "How do I move our licence to the new server?" in _topic_rows(desk, "#2 ")
    assert not any(HELD_BACK in row for row in _topic_rows(desk, ""))


def test_past_the_cap_text_is_added_unanswered_and_the_engineers_are_told_once_an_hour(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = _desk(engine, db_url, clock)
    assert _mail(desk, "open The licence server will not start.")
    for _ in range(4):
        assert _mail(desk, "status")
    # The cap (5) is reached: further text is added to the incident and its topic, unanswered (each
    # comes 11 minutes after the last: the quiet rule, DESKBOT_ACK_QUIET_MINUTES, would answer it).
    for n in range(3):
        clock.advance(minutes=11)
        assert _mail(desk, f"#1 Still down ({n}).") == []
    topic = _topic_rows(desk, "#1 ")
    assert [f"Still down ({n})." for n in range(3)] == [row for row in topic if row.startswith("Still down")]
    (notice,) = [row for row in topic if HELD_BACK in row]
    assert "at most 5 an hour answer what they write, 30 their commands" in notice
    # Commands are still answered; once the hour is over, text is acknowledged again.
    assert "#1" in _mail(desk, "status")[0]
    clock.advance(minutes=30)
    assert _mail(desk, "#1 Back up now.")[0].startswith("Added to incident #1.")


def test_a_question_withheld_keeps_the_text_and_tells_the_alerts_topic(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = _desk(engine, db_url, clock)
    for _ in range(strangers.COMMAND_ANSWERS):
        assert _mail(desk, "credits")
    # No incident to add it to: the text is kept as a draft; the question about it is withheld.
    assert _mail(desk, "The backup stopped last night.") == []
    with transaction(engine) as session:
        (draft,) = session.scalars(select(Draft)).all()
        assert draft.text == "The backup stopped last night."
    assert len([row for row in _topic_rows(desk, "deskbot alerts") if HELD_BACK in row]) == 1
    assert _mail(desk, "credits") == []  # commands too, past their own cap
    assert len([row for row in _topic_rows(desk, "deskbot alerts") if HELD_BACK in row]) == 1
