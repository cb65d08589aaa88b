"""Engineers in a case topic and outside it: Zulip's own slash commands and paths are not answered
there; a case changed from a direct message is told in its topic."""

from __future__ import annotations

from datetime import UTC

import pytest

from adapters.channel import Inbound
from adapters.console import ENGINEER
from tests.desk import Desk


def _in_topic(desk: Desk, text: str, case: int = 1) -> str:
    """`text` posted by the engineer in case `case`'s topic; what the console printed."""
    start = len(desk.out.getvalue())
    desk.runtime.intake.deliver(
        Inbound(
            channel="console",
            sender=ENGINEER,
            conversation=ENGINEER,
            text=text,
            message_id=f"t{len(text)}-{start}",
            received_at=desk.clock().astimezone(UTC),
            kind="topic",
            topic=f"#{case} Acme: printer",
            case=case,
        )
    )
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


@pytest.mark.parametrize(
    "text", ["/me is looking into it", "/poll Which fix?", "/todo check logs", "/etc/cups/printers.conf is wrong"]
)
def test_zulips_own_commands_and_paths_in_a_topic_get_no_answer(engine, db_url, clock, text):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open printer")
    assert _in_topic(desk, text) == ""


def test_a_typo_of_a_command_in_a_topic_is_still_answered(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open printer")
    assert 'Did you mean "/reply"?' in _in_topic(desk, "/rpely try again")
    assert "Sent to the customer" not in _in_topic(desk, "/reply try again")  # in the topic: no receipt
    assert "[#1] try again" in desk.out.getvalue()


def test_a_case_resolved_from_a_direct_message_is_told_in_its_topic(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open printer")
    out = desk.engineer("/resolve 1 Replaced the fuser")
    assert "[#1 Acme: printer] ✅ Resolved by `engineer@console`; the customer was told." in out
    assert "Replaced the fuser" in out.split("✅ Resolved by", 1)[1]
    # In the topic itself the engineer's command is there: nothing more is posted about it.
    desk.customer("Beta", credits=1)
    desk.say("Beta", "open scanner")
    out = _in_topic(desk, "/resolve Fixed", case=2)
    assert "Resolved by" not in out


def test_a_bug_marked_from_a_direct_message_is_told_in_its_topic(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open printer")
    out = desk.engineer("/bug 1")
    assert "[#1 Acme: printer] #1 is marked as our bug; its credit went back" in out
    assert "(By `engineer@console`.)" in out


def test_a_reply_on_a_closed_case_goes_and_the_engineer_is_told_how_to_go_on(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open printer")
    desk.say("Acme", "close 1")
    out = desk.engineer("/reply 1 One more tip: clean the rollers.")
    assert "[#1] One more tip: clean the rollers." in out
    assert "#1 is closed: an answer from the customer would not join it. To go on here, /reopen 1." in out
    desk.engineer("/reopen 1")
    assert "is closed" not in desk.engineer("/reply 1 Back on it.")
