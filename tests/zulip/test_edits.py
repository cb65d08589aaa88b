"""Messages edited on Zulip after they were sent (`update_message` events), through the whole bot:
the fake Zulip over HTTP, the real `zulip` client, runtime, router and store (both databases).

A customer's edit of a DM to the bot joins their case as a new message and shows in the case topic
as an edit, once, whether the bot was listening or catches it up when it starts again; an engineer's
edit of a command is not run again, and they are told so."""

from __future__ import annotations

import logging
import time

import pytest
import zulip
from sqlalchemy import func, select

from adapters.zulip.inbound import edit_id
from storage.db import transaction
from storage.models import Incident, IncidentAttachment, IncidentMessage, ProcessedInbound
from tests.zulip.conftest import ALICE, BOB, BOT, ENGINEER, STREAM
from tests.zulip.markdown_check import active_markup
from tests.zulip.relay_check import parse_relayed
from tests.zulip.test_end_to_end import TOPIC, ZulipDesk, open_case, wait_until

ADDED = "Added to incident #1."


def case_words(desk: ZulipDesk) -> list[str]:
    """What the customer's messages on case #1 say, oldest first."""
    with transaction(desk.engine) as session:
        query = select(IncidentMessage.body).where(IncidentMessage.incident_id == 1, IncidentMessage.direction == "in")
        return list(session.scalars(query.order_by(IncidentMessage.id)))


def handled(desk: ZulipDesk) -> int:
    """How many inbound messages (edits among them) the store records as handled."""
    with transaction(desk.engine) as session:
        return session.scalar(select(func.count()).select_from(ProcessedInbound)) or 0


def answered_after(desk: ZulipDesk, text: str, containing: str) -> int:
    """Alice sends `text`; once its answer (`containing`) is there, every event Zulip sent the bot
    before her message has been handled: the index of her DMs from the bot before that answer."""
    before = len(desk.dms_to(ALICE))
    desk.fake.post_dm(ALICE, text)
    wait_until(
        lambda: any(containing in m.content for m in desk.dms_to(ALICE)[before:]), what=f"the answer to {text!r}"
    )
    return before


def edit_as(desk: ZulipDesk, email: str, message_id: int, content: str) -> None:
    """`email` edits their message as the web app does, with the real client's `PATCH /messages/{id}`:
    Zulip sets its `last_edit_timestamp`, and tells the queues that listen, if any."""
    person = zulip.Client(site=desk.fake.url, email=email, api_key=desk.fake.user(email).api_key, retry_on_errors=False)
    answer = person.call_endpoint(url=f"messages/{message_id}", method="PATCH", request={"content": content})
    assert answer["result"] == "success", answer


def edit_keys(desk: ZulipDesk, message_id: int) -> list[str]:
    """The exactly-once keys of the edits of `message_id` the store records as handled."""
    with transaction(desk.engine) as session:
        query = select(ProcessedInbound.message_id).where(ProcessedInbound.message_id.startswith(f"{message_id}:edit:"))
        return list(session.scalars(query))


def added_to_open_case(desk: ZulipDesk, text: str) -> int:
    """Alice, a customer with an open case (#1), adds `text` to it; the id of her message."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    sent = desk.fake.post_dm(ALICE, text)
    desk.wait_dm(ALICE, ADDED)
    return sent


def test_a_customers_edit_joins_their_case_once_and_shows_as_an_edit(desk: ZulipDesk) -> None:
    sent = added_to_open_case(desk, "The toner smells @**all**")
    acknowledged = len([m for m in desk.dms_to(ALICE) if ADDED in m.content])
    event = desk.fake.edit_message(ALICE, sent, "The toner smells burnt, and the tray melted @**all** /poll x")
    mirrored = desk.wait_topic("wrote (edited):")
    relayed = parse_relayed(mirrored.content)
    alice = desk.fake.user(ALICE).user_id
    assert relayed.outside[0] == f"**`Alice Customer`** via zulip (user `{alice}`) wrote (edited):"
    assert relayed.inside == ["The toner smells burnt, and the tray melted @**all** /poll x"]
    assert active_markup(mirrored.content) == []  # the mention and the widget are fenced, inert
    assert case_words(desk)[-2:] == ["The toner smells @**all**", event["content"]]
    # Zulip delivers the same event again: nothing more is added, said or answered.
    count = handled(desk)
    desk.fake.redeliver(event)
    answered_after(desk, "status", "Your incidents:")
    assert handled(desk) == count + 1  # the status only
    assert len([m for m in desk.in_topic() if "wrote (edited):" in m.content]) == 1
    assert case_words(desk)[-1] == event["content"]
    # Answered like any message added to the case (the tests' quiet rule is off), and once.
    assert len([m for m in desk.dms_to(ALICE) if ADDED in m.content]) == acknowledged + 1


def test_an_edit_soon_after_its_message_is_added_without_an_answer(desk: ZulipDesk) -> None:
    """The quiet rule (DESKBOT_ACK_QUIET_MINUTES, 10 by default) covers edits: a customer fixing a typo
    a minute later is not answered again; an edit long after is acknowledged, so they know it arrived."""
    desk.settings = desk.settings.model_copy(update={"ack_quiet_minutes": 10})
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply Is it still smoking?")
    desk.wait_dm(ALICE, "[#1] Is it still smoking?")
    sent = desk.fake.post_dm(ALICE, "Yes, still smoknig")
    desk.wait_dm(ALICE, ADDED)  # the first message after the team's answer is acknowledged
    acknowledged = len(desk.dms_to(ALICE))
    desk.clock.advance(minutes=1)
    desk.fake.edit_message(ALICE, sent, "Yes, still smoking")
    desk.wait_topic("Yes, still smoking")
    answered_after(desk, "status", "Your incidents:")
    assert [m.content for m in desk.dms_to(ALICE)[acknowledged:] if ADDED in m.content] == []
    assert case_words(desk)[-1] == "Yes, still smoking"
    desk.clock.advance(minutes=11)
    desk.fake.edit_message(ALICE, sent, "Yes, still smoking, and now it beeps")
    desk.wait_topic("and now it beeps")
    wait_until(lambda: any(ADDED in m.content for m in desk.dms_to(ALICE)[acknowledged:]), what="the edit acknowledged")


def test_an_edited_open_adds_its_words_to_the_incident_it_opened_and_opens_no_other(desk: ZulipDesk) -> None:
    """A customer who adds a detail to the `open …` they sent wants it on that incident: not a
    second one, nor the question whether to spend another credit on one."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    sent = desk.fake.post_dm(ALICE, "open My printer is on fire @**all**")  # the topic TOPIC names
    desk.wait_dm(ALICE, "Incident #1 is open")
    before = len(desk.dms_to(ALICE))
    desk.fake.edit_message(ALICE, sent, "open My printer is on fire since the firmware update")
    desk.wait_topic("since the firmware update")
    answered_after(desk, "status", "Your incidents:")
    assert case_words(desk) == ["My printer is on fire @**all**", "My printer is on fire since the firmware update"]
    said = [m.content for m in desk.dms_to(ALICE)[before:]]
    assert any(ADDED in text for text in said) and not any("#2" in text or "new one" in text for text in said)
    with transaction(desk.engine) as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 1


def test_previews_the_bots_own_edits_and_group_messages_are_not_edits_to_handle(desk: ZulipDesk) -> None:
    sent = added_to_open_case(desk, "See https://example.com/printer-fire")
    answer = desk.dms_to(ALICE)[-1]
    group = desk.fake.post_dm(ALICE, "to you both", to=[BOT, BOB])
    posts, count = len(desk.in_topic()), handled(desk)
    desk.fake.preview_link(sent)  # Zulip adds a link preview: `rendering_only`, no edit of hers
    desk.fake.edit_message(BOT, answer.id, "the bot's own words, edited")
    desk.fake.edit_message(ALICE, group, "to you both, edited")  # a group DM is not for the bot
    answered_after(desk, "status", "Your incidents:")
    assert handled(desk) == count + 1  # the status only
    assert [m.content for m in desk.in_topic()[posts:] if "wrote" in m.content] == []
    # Neither the preview nor the bot's own edit cost a request: only the group DM was read back.
    reads = {r.path for r in desk.fake.requests if r.method == "GET" and r.path.startswith("/messages/")}
    assert reads == {f"/messages/{group}"}


def test_an_engineers_edit_of_a_reply_is_not_passed_on_and_they_are_told(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    reply = desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply Please unplug it.")
    desk.wait_dm(ALICE, "[#1] Please unplug it.")
    chat = desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "I think it is the fuser")
    note = desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/note fuser suspected")
    desk.wait_topic("Note saved on #1.")
    dms = len(desk.dms_to(ALICE))
    desk.fake.edit_message(ENGINEER, reply, "/reply Please unplug it, then wait an hour.")
    told = desk.wait_topic("edits are not passed on")
    assert told.content == (
        'The customer already has your "/reply" as you first sent it: edits are not passed on.'
        ' To correct it, send "/reply" again.'
    )
    desk.fake.edit_message(ENGINEER, chat, "I think it is the fuser, or the drum")  # engineers talking: nothing
    desk.fake.edit_message(ENGINEER, note, "/note drum suspected")
    desk.wait_topic("Edited commands are not run again")
    assert len(desk.dms_to(ALICE)) == dms
    assert not any("wait an hour" in m.content for m in desk.fake.sent_by(BOT))
    assert len([m for m in desk.in_topic() if "not run again" in m.content or "not passed on" in m.content]) == 2
    with transaction(desk.engine) as session:
        notes = session.scalars(select(IncidentMessage.body).where(IncidentMessage.direction == "note")).all()
    assert notes == ["fuser suspected"]


def test_an_edit_carries_only_the_files_it_added(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    first = desk.fake.upload(ALICE, "first.log", b"disk full\n")
    sent = desk.fake.post_dm(ALICE, f"The log:\n[first.log]({first})")
    desk.wait_topic("first.log")
    second = desk.fake.upload(ALICE, "second.log", b"fuser at 400 C\n")
    desk.fake.edit_message(ALICE, sent, f"The logs:\n[first.log]({first})\n[second.log]({second})")
    edited = desk.wait_topic("wrote (edited):")
    below = parse_relayed(edited.content).outside  # the files are listed outside the quote
    assert any("second.log" in line for line in below) and not any("first.log" in line for line in below)
    with transaction(desk.engine) as session:
        names = session.scalars(select(IncidentAttachment.name).order_by(IncidentAttachment.id)).all()
    assert names == ["first.log", "second.log"]


def test_an_edit_made_while_the_bot_was_stopped_joins_the_case_once_it_starts_again(desk: ZulipDesk) -> None:
    """As a live edit would have: once, with the edited words, shown as an edit, with the same key."""
    sent = added_to_open_case(desk, "The toner smells @**all**")
    acknowledged = len([m for m in desk.dms_to(ALICE) if ADDED in m.content])
    desk.stop_all()
    edit_as(desk, ALICE, sent, "The toner smells burnt @**all**")
    count = handled(desk)
    desk.start()
    mirrored = desk.wait_topic("wrote (edited):")
    relayed = parse_relayed(mirrored.content)
    alice = desk.fake.user(ALICE).user_id
    assert relayed.outside[0] == f"**`Alice Customer`** via zulip (user `{alice}`) wrote (edited):"
    assert relayed.inside == ["The toner smells burnt @**all**"]
    assert case_words(desk)[-2:] == ["The toner smells @**all**", "The toner smells burnt @**all**"]
    assert handled(desk) == count + 1
    edited_at = desk.fake.message(sent).last_edit_timestamp
    assert edited_at is not None
    assert edit_keys(desk, sent) == [edit_id(str(sent), edited_at, "The toner smells burnt @**all**")]
    wait_until(
        lambda: len([m for m in desk.dms_to(ALICE) if ADDED in m.content]) == acknowledged + 1,
        what="the edit acknowledged, as a live one is",
    )


def hold_back_edit_posts(desk: ZulipDesk) -> None:
    """Zulip refuses the bot's posts of edits in the case topic (the outbox keeps them): with
    no answer either (the quiet rule), nothing the bot posts comes after the edit, so each catch-up
    reads it again, as an edit it may have missed (it looks at those since the message at the cursor)."""
    desk.fake.fail_for(600, status=502, path="/messages", method="POST", containing="wrote (edited):")


def test_starting_again_and_again_adds_an_edit_made_while_stopped_once(desk: ZulipDesk) -> None:
    sent = added_to_open_case(desk, "The toner smells")
    desk.stop_all()
    edit_as(desk, ALICE, sent, "The toner smells burnt")
    edited_at = desk.fake.message(sent).last_edit_timestamp or 0
    desk.settings = desk.settings.model_copy(update={"ack_quiet_minutes": 10})
    hold_back_edit_posts(desk)
    count = handled(desk)
    for _start in range(3):
        assert max(m.timestamp for m in desk.fake.messages) <= edited_at  # so the catch-up reads it again
        desk.start()  # connected: its catch-up is in the store
        assert handled(desk) == count + 1
        desk.stop_all()
    assert case_words(desk)[-2:] == ["The toner smells", "The toner smells burnt"]
    assert len(edit_keys(desk, sent)) == 1


def test_an_edit_handled_live_is_not_added_again_by_a_later_catch_up(desk: ZulipDesk) -> None:
    desk.settings = desk.settings.model_copy(update={"ack_quiet_minutes": 10})
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    sent = desk.fake.post_dm(ALICE, "The toner smells")
    desk.wait_topic("The toner smells")
    count = handled(desk)
    hold_back_edit_posts(desk)
    edit_as(desk, ALICE, sent, "The toner smells burnt")
    wait_until(lambda: handled(desk) == count + 1, what="the edit handled live")
    words = case_words(desk)
    assert words[-2:] == ["The toner smells", "The toner smells burnt"]
    assert max(m.timestamp for m in desk.fake.messages) <= (desk.fake.message(sent).last_edit_timestamp or 0)
    desk.stop_all()
    desk.start()  # its catch-up reads the edit again
    assert handled(desk) == count + 1
    assert case_words(desk) == words
    assert len(edit_keys(desk, sent)) == 1


def test_a_dm_read_with_its_edit_after_a_stop_is_not_added_again_at_the_next_start(desk: ZulipDesk) -> None:
    """A DM sent and edited while the bot was stopped comes with its edited words when the bot starts
    again; the messages after it at the cursor are newer than the edit, so no catch-up adds it twice."""
    added_to_open_case(desk, "The toner smells")
    desk.stop_all()
    later = desk.fake.post_dm(ALICE, "Also the tray")
    edit_as(desk, ALICE, later, "Also the tray melted")
    time.sleep(1.1)  # the bot takes a while to start again: what comes next is a second newer at least
    desk.start()
    desk.wait_topic("Also the tray melted")
    answered_after(desk, "status", "Your incidents:")
    count, words = handled(desk), case_words(desk)
    assert words[-2:] == ["The toner smells", "Also the tray melted"]
    desk.stop_all()
    desk.start()
    assert handled(desk) == count
    assert case_words(desk) == words


def test_a_failure_to_read_the_dms_again_is_logged_and_the_catch_up_goes_on(
    desk: ZulipDesk, caplog: pytest.LogCaptureFixture
) -> None:
    sent = added_to_open_case(desk, "The toner smells")
    desk.stop_all()
    edit_as(desk, ALICE, sent, "The toner smells burnt")
    desk.fake.post_dm(ALICE, "Still smoking")

    def refuse_reading_dms_again(method: str, path: str, params: dict[str, str]) -> None:
        if method == "GET" and path == "/messages" and params.get("num_after") == "0" and params["anchor"] != "newest":
            desk.fake.fail_next(1, status=502, path="/messages", method="GET")

    desk.fake.before_request = refuse_reading_dms_again
    desk.start()
    desk.wait_topic("Still smoking")  # the messages sent meanwhile are caught up all the same
    assert case_words(desk)[-2:] == ["The toner smells", "Still smoking"]
    told = [r for r in caplog.records if "edits made while not receiving" in r.getMessage()]
    assert [r.levelno for r in told] == [logging.WARNING]
