"""Intake of a page of messages (a channel catching up): the same outcome as one at a time."""

from __future__ import annotations

from datetime import UTC

from adapters.console import console_line
from bot.services import cases
from storage.db import transaction
from storage.models import ProcessedInbound
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
        out.index("Added to incident #1"),
    )
    assert opened < listed < added  # the second message saw what the first did, in one transaction
    assert desk.runtime.intake.get_cursor(CURSOR) == "3"
    assert desk.runtime.intake.handled == 3


def test_a_failing_message_sends_the_page_through_one_at_a_time(engine, db_url, clock, monkeypatch):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)

    def broken(*_args, **_kwargs):
        raise RuntimeError("bug in a handler")

    monkeypatch.setattr(cases, "open_incident", broken)
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
