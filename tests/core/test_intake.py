"""Intake of a page of messages (a channel catching up): the same outcome as one at a time."""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa

from adapters.console import console_line
from bot import intake as intake_module
from bot.services import incidents
from storage.db import transaction
from storage.models import IncidentMessage, Outbox, ProcessedInbound
from tests.desk import Desk

CURSOR = "console:last"


def _page(desk: Desk, texts: list[tuple[str, str]]) -> str:
    """Hand (message id, text) pairs from Acme over as one page; what came out."""
    start = len(desk.out.getvalue())
    items = [
        (
            console_line("Acme", text, mid, desk.clock().astimezone(UTC)),
            (CURSOR, mid),
        )
        for mid, text in texts
    ]
    desk.runtime.intake.deliver_many(items)
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


def test_a_page_is_handled_like_its_messages_one_by_one(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    out = _page(desk, [("1", "open The printer is on fire"), ("2", "status"), ("3", "#1 it smokes now")])
    opened, listed, added = (
        out.index("Incident #1 is open"),
        out.index("Your incidents:"),
        out.index("| it smokes now"),  # in the case topic; said right after, it needs no answer
    )
    assert opened < listed < added  # the second message saw what the first did, in one transaction
    assert desk.runtime.intake.get_cursor(CURSOR) == "3"
    assert desk.runtime.intake.handled == 3


def test_a_failing_message_sends_the_page_through_one_at_a_time(engine, db_url, clock, monkeypatch):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)

    monkeypatch.setattr(incidents, "open_incident", _broken)
    out = _page(desk, [("1", "status"), ("2", "open Lost?"), ("3", "credits")])
    assert out.count("You have no open incidents.") == 1  # answered once, not again after the rollback
    assert "Sorry, something went wrong on our side" in out
    assert out.index("You have no open incidents.") < out.index("Sorry") < out.index("Credits left")
    with transaction(desk.engine) as s:
        assert s.get(ProcessedInbound, ("console", "2")).failed_text == "open Lost?"
    assert desk.runtime.intake.get_cursor(CURSOR) == "3"


def test_a_page_holding_a_message_handled_before_answers_only_the_new_ones(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    first = _page(desk, [("1", "status")])
    assert "You have no open incidents." in first
    out = _page(desk, [("1", "status"), ("2", "credits")])
    assert "You have no open incidents." not in out and "Credits left" in out
    assert desk.runtime.intake.handled == 2


# -- Hostile input (issue 16.6): no message can block a channel --------------------------------------


def test_nul_bytes_and_lone_surrogates_are_stored_as_replacement_characters(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    out = desk.say("Acme", "open The disk\x00 is \ud800full", message_id="n1")
    assert "Incident #1 is open" in out
    with transaction(desk.engine) as s:
        text = s.exec(sa.select(IncidentMessage.body)).scalar_one()
    assert text == "The disk\ufffd is \ufffdfull"


def test_a_failing_handler_on_a_message_with_a_nul_byte_is_recorded(engine, db_url, clock, monkeypatch):
    # On PostgreSQL the NUL made the failure record fail too: redelivered forever, channel blocked.
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    monkeypatch.setattr(incidents, "open_incident", _broken)
    out = _page(desk, [("1", "open Lost\x00?")])
    assert "Sorry, something went wrong on our side" in out
    with transaction(desk.engine) as s:
        assert s.get(ProcessedInbound, ("console", "1")).failed_text == "open Lost\ufffd?"
    assert desk.runtime.intake.get_cursor(CURSOR) == "1"


def test_when_the_failure_record_fails_the_id_and_the_reason_are_kept(engine, db_url, clock, monkeypatch):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    monkeypatch.setattr(incidents, "open_incident", _broken)
    monkeypatch.setattr(intake_module.Outgoing, "say", _broken)  # the apology cannot be written either
    desk.runtime.intake.deliver(console_line("Acme", "open Lost?", "2", clock().astimezone(UTC)), cursor=(CURSOR, "2"))
    with transaction(desk.engine) as s:
        failed = s.get(ProcessedInbound, ("console", "2")).failed_text
    assert failed.startswith("[not stored: the failure record failed too (RuntimeError)")
    assert desk.runtime.intake.get_cursor(CURSOR) == "2"
    # A redelivery is recognised: nothing runs again.
    desk.runtime.intake.deliver(console_line("Acme", "open Lost?", "2", clock().astimezone(UTC)), cursor=(CURSOR, "2"))
    assert desk.runtime.intake.handled == 0


def test_when_not_even_the_id_can_be_stored_the_cursor_still_moves(engine, db_url, clock, monkeypatch):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    monkeypatch.setattr(incidents, "open_incident", _broken)
    monkeypatch.setattr(intake_module.Intake, "_record", staticmethod(_broken))
    desk.runtime.intake.deliver(console_line("Acme", "open Lost?", "3", clock().astimezone(UTC)), cursor=(CURSOR, "3"))
    assert desk.runtime.intake.get_cursor(CURSOR) == "3"


def _broken(*_args, **_kwargs):
    raise RuntimeError("broken")


# -- A live message's rows written with its record (PostgreSQL: one statement) -----------------------


def test_a_live_message_writes_its_rows_with_its_record_and_its_cursor(engine, db_url, clock, monkeypatch):
    """One message with its cursor: the rows it said are in the store with the ids handed to the
    dispatcher, in the order said (on PostgreSQL one statement writes them with the record and the
    cursor: bot.intake._record_with_rows); a redelivery writes none."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    handed: list[list] = []
    hand_over = desk.runtime.dispatcher.hand_over
    monkeypatch.setattr(desk.runtime.dispatcher, "hand_over", lambda rows: (handed.append(rows), hand_over(rows)))

    out = _page(desk, [("7", "open The printer is on fire")])
    again = _page(desk, [("7", "open The printer is on fire")])

    assert "Incident #1 is open" in out and again == ""
    with transaction(desk.engine) as s:
        stored = s.scalars(sa.select(Outbox).order_by(Outbox.id)).all()
        assert s.get(ProcessedInbound, ("console", "7")) is not None
    rows = [row for batch in handed for row in batch]
    assert len(rows) >= 2  # the answer and the case topic's post: more than one row in the statement
    assert [(r.id, r.text, r.created_at) for r in rows] == [(r.id, r.text, r.created_at) for r in stored]
    assert desk.runtime.intake.get_cursor(CURSOR) == "7"


def test_a_page_writes_its_rows_in_the_order_said(engine, db_url, clock, monkeypatch):
    """A page: every row its messages said is in the store with the id handed to the dispatcher,
    in the order said, message after message (on PostgreSQL the page's rows are kept and written at
    its end: storage.outbox.write_many)."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    handed: list[list] = []
    hand_over = desk.runtime.dispatcher.hand_over
    monkeypatch.setattr(desk.runtime.dispatcher, "hand_over", lambda rows: (handed.append(rows), hand_over(rows)))
    writes: list[int] = []
    write_many = intake_module.outbox.write_many
    monkeypatch.setattr(
        intake_module.outbox,
        "write_many",
        lambda session, rows: (writes.append(len(rows)), write_many(session, rows))[1],
    )

    out = _page(desk, [("1", "open The printer is on fire"), ("2", "status"), ("3", "#1 it smokes now")])

    assert out.index("Incident #1 is open") < out.index("Your incidents:") < out.index("| it smokes now")
    with transaction(desk.engine) as s:
        stored = s.scalars(sa.select(Outbox).order_by(Outbox.id)).all()
    rows = [row for batch in handed for row in batch]
    assert len(rows) >= 4  # each message's answer, and the case topic's posts
    assert [(r.id, r.text, r.created_at) for r in rows] == [(r.id, r.text, r.created_at) for r in stored]
    assert writes == ([len(rows)] if db_url.startswith("postgresql") else [])
