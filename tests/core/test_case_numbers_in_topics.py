"""A case number in another case's topic (console desk, both databases): in #1's topic a command that
acts takes another case's number only written `#2`; a bare `2` is asked about, and nothing is done
to either case. Read-only commands and the topic's own number run as ever; so do numbers outside
case topics. A command run on another case says so where it was typed. (Over Zulip itself:
tests/zulip/test_case_numbers_in_topics.py.)"""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import func, select

from adapters.channel import Inbound
from adapters.console import ENGINEER
from bot.handlers import registry
from storage.db import transaction
from storage.models import Incident, IncidentEvent, IncidentMessage, Outbox
from tests.desk import Desk
from tests.zulip.markdown_check import active_markup

ALICE_TOPIC = "#1 Alice: printer"


def in_topic(desk: Desk, text: str, topic: str = ALICE_TOPIC) -> str:
    """`text` posted by the engineer in `topic` (the case its name begins with); what the console printed."""
    start = len(desk.out.getvalue())
    desk.runtime.intake.deliver(
        Inbound(
            channel="console",
            sender=ENGINEER,
            conversation=ENGINEER,
            text=text,
            message_id=f"t{start}",
            received_at=desk.clock().astimezone(UTC),
            kind="topic",
            topic=topic,
            case=int(topic[1:].split()[0]) if topic.startswith("#") else None,
        )
    )
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


@pytest.fixture
def desk(engine, db_url, clock) -> Desk:  # noqa: ANN001
    """Alice's case #1 and Bob Lda's case #2, both open."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Alice", credits=3)
    desk.customer("Bob Lda", credits=3)
    desk.say("Alice", "open printer")
    desk.say("Bob Lda", "open scanner")
    return desk


def state_of(desk: Desk) -> tuple[object, ...]:
    """Everything a command could change about the cases or say to a customer."""
    with transaction(desk.engine) as session:
        cases = [
            (i.id, i.state, i.severity, i.assignee, i.chargeable, i.due_at)
            for i in session.scalars(select(Incident).order_by(Incident.id))
        ]
        counts = [session.scalar(select(func.count()).select_from(table)) for table in (IncidentEvent, IncidentMessage)]
        to_customers = session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.kind == "direct", Outbox.recipient != ENGINEER)
        )
        return (cases, counts, to_customers)


def test_a_reply_whose_text_begins_with_another_cases_number_is_asked_about(desk: Desk) -> None:
    before = state_of(desk)
    out = in_topic(desk, "/reply 2 things to try, Alice: unplug the printer, then plug it back in.")
    assert state_of(desk) == before  # nothing to Bob, nothing to Alice, nothing recorded
    assert "deskbot → Bob Lda" not in out and "[#2 Bob Lda" not in out
    assert out == (
        f"[{ALICE_TOPIC}] ⚠️ Nothing was done: this topic is #1 (`Alice`), and 2 names another case, #2 (`Bob Lda`).\n"
        "For #2: `/reply #2 things to try, Alice: unplug the printer, then pl…`, or write it in #2's topic.\n"
        "For #1: `/reply 1 2 things to try, Alice: unplug the printer, then p…`\n"
    )
    # Either way it says works: the topic's own number keeps the text whole, `#2` is #2's.
    out = in_topic(desk, "/reply 1 2 things to try, Alice: unplug the printer.")
    assert "deskbot → Alice:\n  [#1] 2 things to try, Alice: unplug the printer.\n" in out
    out = in_topic(desk, "/reply #2 Try the other tray.")
    assert "deskbot → Bob Lda:\n  [#2] Try the other tray.\n" in out


@pytest.mark.parametrize(
    "command",
    [cmd for cmd in registry().of("engineer") if any(arg.kind == "case" for arg in cmd.args) and not cmd.read_only],
    ids=lambda cmd: cmd.name,
)
def test_no_command_that_acts_takes_another_cases_bare_number(desk: Desk, command) -> None:  # noqa: ANN001
    """Every command declared as acting (none declared `read_only`), with arguments that would run it
    on #2 from a DM: in #1's topic it does nothing to either case, and asks."""
    words = {"assign": "me", "severity": "1", "cc": "add ops@bob.example", "note": "checked"}
    line = f"/{command.name} 2 {words.get(command.name, 'fixed it')}".rstrip()
    if command.name in ("bug", "reopen"):
        line = f"/{command.name} 2"
    before = state_of(desk)
    out = in_topic(desk, line)
    assert state_of(desk) == before, out
    assert out.startswith(f"[{ALICE_TOPIC}] ⚠️ Nothing was done: this topic is #1 (`Alice`)"), out
    assert f"For #2: `/{command.name} #2" in out


def test_the_answer_keeps_what_was_typed_inert(desk: Desk) -> None:
    out = in_topic(desk, "/reply 2 @**all** ``` [x](https://evil.example) /poll")
    with transaction(desk.engine) as session:
        answer = session.scalars(
            select(Outbox.text).where(Outbox.topic == ALICE_TOPIC).order_by(Outbox.id.desc())
        ).first()
    assert answer is not None and answer.startswith("⚠️ Nothing was done") and "@**all**" in answer, out
    assert active_markup(answer) == []


def test_a_number_that_is_no_case_is_offered_as_text_for_the_topics_case(desk: Desk) -> None:
    out = in_topic(desk, "/reply 3 more things to try")
    assert out == (
        f"[{ALICE_TOPIC}] ⚠️ Nothing was done: there is no case #3, and this topic is #1 (`Alice`).\n"
        "For #1: `/reply 1 3 more things to try`\n"
    )
    # Where the words cannot be the topic case's, only that there is no such case.
    assert in_topic(desk, "/severity 3 1") == f"[{ALICE_TOPIC}] There is no case #3.\n"


def test_where_the_words_cannot_be_the_topics_case_only_the_other_case_is_offered(desk: Desk) -> None:
    out = in_topic(desk, "/severity 2 1")
    assert out == (
        f"[{ALICE_TOPIC}] ⚠️ Nothing was done: this topic is #1 (`Alice`), and 2 names another case, #2 (`Bob Lda`).\n"
        "For #2: `/severity #2 1`, or write it in #2's topic.\n"
    )
    with transaction(desk.engine) as session:
        assert [i.severity for i in session.scalars(select(Incident).order_by(Incident.id))] == [3, 3]


def test_the_topics_own_number_no_number_and_read_only_commands_run_as_ever(desk: Desk) -> None:
    out = in_topic(desk, "/severity 2")  # the level alone: #1's
    assert f"[{ALICE_TOPIC}] Severity now 2 (high), was 3 (normal)" in out and "Nothing was done" not in out
    assert f"[{ALICE_TOPIC}] Severity now 1 (critical), was 2 (high)" in in_topic(desk, "/severity 1 1")
    out = in_topic(desk, "/resolve 1 2 fixes applied")
    assert "deskbot → Alice:\n  Incident #1 is resolved.\n  2 fixes applied\n" in out
    assert "**#2** `scanner`" in in_topic(desk, "/case 2")
    assert "• #2 `scanner` from `Bob Lda`" in in_topic(desk, "/cases")


def test_outside_case_topics_numbers_work_as_ever_and_with_a_hash_too(desk: Desk) -> None:
    assert "deskbot → Bob Lda:\n  [#2] Try the other tray.\n" in desk.engineer("/reply 2 Try the other tray.")
    assert "deskbot → Bob Lda:\n  [#2] And clean it.\n" in desk.engineer("/reply #2 And clean it.")
    out = in_topic(desk, "/severity 2 2", topic="deskbot alerts")  # a topic of the stream that is no case's
    assert "#2 now has severity 2 (high)." in out


def test_a_command_run_on_another_case_says_so_where_it_was_typed(desk: Desk) -> None:
    """From #1's topic with `#2`: each is told in #1's topic too, not only in #2's."""
    out = in_topic(desk, "/reply #2 Try the other tray.")
    assert "[#2 Bob Lda: scanner] engineer@console replied to the customer via console:\n" in out
    assert f"[{ALICE_TOPIC}] Sent to the customer of #2 via console (`Bob Lda`).\n" in out
    assert f"[{ALICE_TOPIC}] Note saved on #2." in in_topic(desk, "/note #2 waits for the tray")
    assert f"[{ALICE_TOPIC}] #2 now has severity 2 (high)." in in_topic(desk, "/severity #2 2")
    assert f"[{ALICE_TOPIC}] #2 is assigned to `engineer@console`." in in_topic(desk, "/assign #2 me")
    out = in_topic(desk, "/cc #2 add ops@bob.example")
    assert f"[{ALICE_TOPIC}] `ops@bob.example` is copied on every answer of #2 from now on." in out
    out = in_topic(desk, "/resolve #2 New tray.")
    assert "[#2 Bob Lda: scanner] ✅ Resolved by `engineer@console`; the customer was told." in out
    assert f"[{ALICE_TOPIC}] #2 is resolved; the customer was told." in out
    out = in_topic(desk, "/reopen #2")
    assert "[#2 Bob Lda: scanner] 🔁 Reopened by `engineer@console`" in out
    assert f"[{ALICE_TOPIC}] #2 is open again; next response due " in out
    # In #2's own topic, the command is there for all to see: no receipt.
    out = in_topic(desk, "/reply Any luck?", topic="#2 Bob Lda: scanner")
    assert "Sent to the customer" not in out


def test_a_reply_on_a_resolved_case_says_it_stays_resolved_and_how_to_go_on(desk: Desk, clock) -> None:  # noqa: ANN001
    desk.engineer("/resolve 1 Replaced the fuser")
    out = in_topic(desk, "/reply One more tip: clean the rollers.")
    assert "deskbot → Alice:\n  [#1] One more tip: clean the rollers.\n" in out
    assert (
        f"[{ALICE_TOPIC}] engineer@console replied to the customer via console:\n"
        "ℹ️ #1 is resolved and stays so: the customer may reopen it at no charge until Wednesday, 9 December 2026"
        " at 10:00 (Lisbon time). To work it again, /reopen 1.\n"
        "    | One more tip: clean the rollers.\n"
    ) in out
    # The customer who answers it is asked whether to reopen it, as for any message on a resolved case.
    answer = desk.say("Alice", "It still jams")
    assert (
        'To reopen it at no charge until Wednesday, 9 December 2026 at 10:00 (Lisbon time), reply "reopen 1".' in answer
    )
    # From a DM the engineer reads it there too; past the free week, the customer would be offered a new case.
    clock.advance(days=8)
    out = desk.engineer("/reply 1 Did it help?")
    assert (
        "deskbot → engineer@console:\n  Sent to the customer of #1 via console (`Alice`).\n"
        "  ℹ️ #1 is resolved and stays so: it was resolved more than 7 days ago, so an answer from the customer"
        " would be offered a new case. To work it again, /reopen 1.\n"
    ) in out
    with transaction(desk.engine) as session:
        assert session.get(Incident, 1).state == "resolved"


def test_a_reply_on_an_open_case_adds_no_line(desk: Desk) -> None:
    out = in_topic(desk, "/reply Unplug it.")
    assert "replied to the customer via console:\n    | Unplug it.\n" in out and "resolved" not in out


def test_help_says_how_to_name_another_case_in_a_topic(desk: Desk) -> None:
    """Derived from the declarations: a command that acts names another case with #, a read-only one
    takes any number."""
    assert (
        "In a case topic the number may be left out; there, another case's number is written with #:"
        " `/reply #12 <text>`" in desk.engineer("/help reply")
    )
    assert "/severity #12 2`" in desk.engineer("/help severity")
    shown = desk.engineer("/help case")
    assert "In a case topic the number may be left out." in shown and "#12" not in shown
    assert "number may be left out" not in desk.engineer("/help cases")  # it takes no case
    assert "another case's number is written with #, as in /reply #12):" in desk.engineer("/help")


def test_assign_asks_before_it_looks_the_assignee_up(desk: Desk) -> None:
    """The question comes first: an address is not looked up on the platform, nor a wrong one
    answered, for a command that is not run."""
    out = in_topic(desk, "/assign 2 bob")
    assert "Nothing was done" in out and "not an email address" not in out
