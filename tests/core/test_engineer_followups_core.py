"""The audit's follow-ups for engineers, through the real runtime with the console channel (both
databases): what a case topic opens with, and a case following its topic whatever the case of the
names. (Over Zulip itself: tests/zulip/test_engineer_followups.py.)"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adapters.markup import inert
from storage.db import transaction
from storage.models import Incident, IncidentEvent, Outbox
from tests.desk import Desk
from tests.zulip.markdown_check import HOSTILE, active_markup


def opened_post(desk: Desk, number: int) -> str:
    """The first post in case `number`'s topic."""
    with transaction(desk.engine) as session:
        query = select(Outbox.text).where(Outbox.kind == "topic", Outbox.incident_id == number).order_by(Outbox.id)
        return session.scalars(query).first() or ""


def open_another(desk: Desk, customer: str, subject: str) -> None:
    """`customer` opens a case while others are open: asked whether it is a new one, they say yes."""
    desk.say(customer, f"open {subject}")
    assert "is open" in desk.say(customer, "open")


def test_a_case_topic_names_the_latest_earlier_cases_only(engine, db_url, clock, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("bot.handlers.case_topic.EARLIER_CASES_SHOWN", 2)
    desk = Desk(engine, db_url, clock)
    acme = desk.customer("Acme", credits=4)
    desk.say("Acme", "open First")
    open_another(desk, "Acme", "Second")
    open_another(desk, "Acme", "Third")
    desk.engineer("/resolve 2")
    open_another(desk, "Acme", "Fourth")
    assert "🗂 no earlier cases" in opened_post(desk, 1)
    assert "🗂 earlier cases, newest first:\n• #2 `Second` · open\n• #1 `First` · open" in opened_post(desk, 3)
    fourth = opened_post(desk, 4)
    assert "🗂 earlier cases, newest first:\n• #3 `Third` · open\n• #2 `Second` · resolved\n" in fourth
    assert "#1 `First`" not in fourth
    assert fourth.endswith(f"\n… and older ones: `/customer show {acme}`")
    assert "💳 credits left: 0\n" in fourth  # none left: no pack to name


@pytest.mark.parametrize("hostile", HOSTILE)
def test_customer_words_in_the_opening_post_stay_inert(engine, db_url, clock, hostile: str) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    name = f"{hostile} Ltd"
    desk.customer(name, credits=2)
    desk.say(name, f"open {hostile}")
    open_another(desk, name, f"again {hostile}")
    post = opened_post(desk, 2)
    with transaction(desk.engine) as session:
        earlier = session.get(Incident, 1)
        assert earlier is not None
        subject = earlier.subject
    assert f"• #1 {inert(subject)} · open" in post
    assert active_markup(post) == [], (post, active_markup(post))


def topic_history(desk: Desk) -> tuple[str | None, list[str | None]]:
    with transaction(desk.engine) as session:
        incident = session.get(Incident, 1)
        assert incident is not None
        query = select(IncidentEvent.detail).where(IncidentEvent.action == "topic renamed").order_by(IncidentEvent.id)
        return incident.topic, list(session.scalars(query))


def test_a_case_follows_its_topic_whatever_the_case_of_the_names(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Slow disks")
    intake = desk.runtime.intake
    stored, history = topic_history(desk)
    assert stored == "#1 Acme: Slow disks" and history == []
    intake.topic_renamed("console", "#1 ACME: slow disks", "Disks")  # the same topic to Zulip
    assert topic_history(desk) == ("Disks", ["from “#1 Acme: Slow disks” to “Disks”"])
    intake.topic_renamed("console", "disks", "DISKS")  # only its case changes: a rename all the same
    intake.topic_renamed("console", "disks", "DISKS")  # told again: nothing more
    assert topic_history(desk) == (
        "DISKS",
        ["from “#1 Acme: Slow disks” to “Disks”", "from “Disks” to “DISKS”"],
    )
    intake.topic_renamed("console", "Disks (old)", "Elsewhere")  # no case's topic
    assert topic_history(desk)[0] == "DISKS"
    assert "topic renamed (`from “Disks” to “DISKS”`)" in desk.engineer("/case 1")
