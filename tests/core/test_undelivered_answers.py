"""An engineer's answer that did not reach the customer (console desk, both databases): the case
topic's notice says which message it was, by its start, inert; `/case` marks it among the latest
messages, not delivered (for good) or not yet; and the case gets its due time back whether the answer
was sent from its topic or from a DM (where the engineer's own receipt is no answer to the customer)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adapters.channel import Outbound, PermanentSendError, TransientSendError
from adapters.markup import inert
from storage.db import transaction
from storage.models import Outbox
from tests.core.test_case_numbers_in_topics import in_topic
from tests.desk import Desk
from tests.zulip.markdown_check import HOSTILE, active_markup

DUE_BACK = (
    "The customer did not get this answer, so the case waits on the team again:"
    " response due Friday, 4 December 2026 at 10:00 (Lisbon time)."
)


def refusing(desk: Desk, monkeypatch: pytest.MonkeyPatch, containing: str, error: type[Exception]) -> None:
    """The console refuses every message to Alice whose text contains `containing`, with `error`."""
    send = desk.console.send

    def refused(message: Outbound) -> list[str]:
        if message.kind == "direct" and message.recipient == "Alice" and containing in message.text:
            raise error("the platform refused it")
        return send(message)

    monkeypatch.setattr(desk.console, "send", refused)


@pytest.fixture
def desk(engine, db_url, clock) -> Desk:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    desk.customer("Alice", credits=2)
    desk.say("Alice", "open printer")
    return desk


def notice(desk: Desk) -> str:
    """The case topic's notice of a message that could not be delivered (there is one)."""
    with transaction(desk.engine) as session:
        query = select(Outbox.text).where(Outbox.kind == "topic", Outbox.text.startswith("⚠ Could not deliver"))
        return session.scalars(query).one()


def latest_messages(desk: Desk) -> list[str]:
    shown = desk.engineer("/case 1")
    return [line.strip() for line in shown.split("latest messages:\n", 1)[1].splitlines() if line.strip()]


@pytest.mark.parametrize("where", ["topic", "dm"])
def test_an_answer_that_never_arrives_is_named_and_shown_as_not_delivered(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    refusing(desk, monkeypatch, "Unplug", PermanentSendError)
    text = "Unplug the printer, wait ten seconds, then plug it back in and print a test page from the tray."
    if where == "topic":
        in_topic(desk, f"/reply {text}")
    else:
        desk.engineer(f"/reply 1 {text}")
    assert notice(desk) == (
        "⚠ Could not deliver a message to the customer via console: `the platform refused it`\n"
        "The message began: `[#1] Unplug the printer, wait ten seconds, then plug it back in and print a tes…`\n"
        + DUE_BACK
    )
    *_, answer = latest_messages(desk)
    assert answer.endswith(f"reply `engineer@console` (⚠ not delivered): {inert(text)}")


def test_an_answer_waiting_for_a_retry_is_not_delivered_yet_and_a_delivered_one_is_unmarked(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, clock
) -> None:  # noqa: ANN001
    in_topic(desk, "/reply Is it plugged in?")
    clock.advance(minutes=1)
    refusing(desk, monkeypatch, "switched on", TransientSendError)
    in_topic(desk, "/reply Is it switched on?")
    assert latest_messages(desk)[1:] == [
        "— Wednesday, 2 December 2026 at 10:00 (Lisbon time) reply `engineer@console`: `Is it plugged in?`",
        "— Wednesday, 2 December 2026 at 10:01 (Lisbon time) reply `engineer@console` (⏳ not delivered yet):"
        " `Is it switched on?`",
    ]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_start_of_a_message_not_delivered_cannot_act_in_the_topic(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, hostile: str
) -> None:
    refusing(desk, monkeypatch, "[#1]", PermanentSendError)
    desk.engineer(f"/reply 1 {hostile}")
    told = notice(desk)
    assert "\nThe message began: `" in told
    assert active_markup(told) == [], (told, active_markup(told))
