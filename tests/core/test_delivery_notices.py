"""What the case topic is told when a delivery fails for good: the platform's words made inert."""

from __future__ import annotations

from sqlmodel import select

from bot.services.delivery_notices import failed_for_good
from storage.db import transaction
from storage.models import Outbox
from tests.desk import Desk


def test_a_platforms_error_text_cannot_act_in_the_topic(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open printer")
    error = "refused ``@**all**`` \u202egnp.exe [x](https://evil.example)\n/poll now"
    with transaction(desk.engine) as s:
        row = Outbox(channel="zulip", kind="direct", recipient="acme", text="hi", incident_id=1, created_at=clock())
        assert failed_for_good(s, clock(), "console", row, error)
    with transaction(desk.engine) as s:
        told = s.exec(select(Outbox.text).where(Outbox.kind == "topic").order_by(Outbox.id.desc())).first()
    assert told == (
        "⚠ Could not deliver a message to the customer via zulip: "
        "```refused ``@**all**`` gnp.exe [x](https://evil.example) /poll now```\n"
        "The message began: `hi`"
    )


def test_an_empty_error_still_reads(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open printer")
    with transaction(desk.engine) as s:
        row = Outbox(channel="zulip", kind="direct", recipient="acme", text="hi", incident_id=1, created_at=clock())
        assert failed_for_good(s, clock(), "console", row, "  ")
    with transaction(desk.engine) as s:
        told = s.exec(select(Outbox.text).where(Outbox.kind == "topic").order_by(Outbox.id.desc())).first()
    assert told == (
        "⚠ Could not deliver a message to the customer via zulip: (the platform gave no reason)\n"
        "The message began: `hi`"
    )
