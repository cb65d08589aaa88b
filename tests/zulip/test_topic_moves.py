"""Case topics renamed or moved by hand in Zulip (`update_message` events with `orig_subject`), through
the whole bot: the fake Zulip over HTTP, the real `zulip` client, runtime, router and store (both
databases).

A case follows its topic when the whole topic moves within the support stream (renamed, marked
resolved with Zulip's "✔ ", merged into another): the bot posts there from then on, and a command
there needs no number. A part of a topic moved away, or a topic that is no case's, changes nothing.
A move made while the bot was not receiving is not seen."""

from __future__ import annotations

import zulip
from sqlalchemy import select

from storage.db import transaction
from storage.models import Incident
from tests.fakes.zulip import FakeZulip
from tests.fakes.zulip.openapi import contract
from tests.zulip.conftest import ALICE, BOT, ENGINEER, STREAM
from tests.zulip.test_contract import validate_all
from tests.zulip.test_edits import answered_after
from tests.zulip.test_end_to_end import TOPIC, ZulipDesk, open_case, wait_until

RESOLVED = "✔ " + TOPIC  # Zulip's "resolve topic"
RENAMED = "Alice's printer (urgent)"
ADDED = "Added to incident #1."


def stored_topic(desk: ZulipDesk) -> str | None:
    with transaction(desk.engine) as session:
        return session.scalar(select(Incident.topic).where(Incident.id == 1))


def first_in(desk: ZulipDesk, topic: str) -> int:
    """The id of the first message of `topic` in the support stream."""
    return min(
        m.id for m in desk.fake.messages if m.stream_id == desk.fake.stream(STREAM).stream_id and m.subject == topic
    )


def move_as(desk: ZulipDesk, email: str, message_id: int, topic: str, propagate_mode: str) -> None:
    """`email` moves messages to `topic` as the web app does, with the real client's `PATCH /messages/{id}`."""
    person = zulip.Client(site=desk.fake.url, email=email, api_key=desk.fake.user(email).api_key, retry_on_errors=False)
    request = {"topic": topic, "propagate_mode": propagate_mode}
    answer = person.call_endpoint(url=f"messages/{message_id}", method="PATCH", request=request)
    assert answer["result"] == "success", answer


def customer_writes(desk: ZulipDesk, text: str) -> None:
    """Alice adds `text` to case #1; once she is answered, everything Zulip told the bot before is handled."""
    answered_after(desk, text, ADDED)


def test_a_topic_marked_resolved_keeps_its_case_and_no_second_topic_opens(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    move_as(desk, ENGINEER, first_in(desk, TOPIC), RESOLVED, "change_all")
    customer_writes(desk, "It smokes again")
    desk.wait_topic("It smokes again", topic=RESOLVED)
    assert stored_topic(desk) == RESOLVED
    assert desk.in_topic(TOPIC) == []  # the old name was not opened again
    desk.fake.post_stream_message(ENGINEER, STREAM, RESOLVED, "/reply Unplug it, please")
    desk.wait_dm(ALICE, "[#1] Unplug it, please")
    validate_all(desk.fake)  # the move's PATCH, and the bot's requests, as the OpenAPI describes them


def test_a_topic_renamed_without_its_number_keeps_its_case(desk: ZulipDesk) -> None:
    """Renamed from its first message on ("change_later"): the whole topic, as the server confirms."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "Looks like the fuser")
    move_as(desk, ENGINEER, first_in(desk, TOPIC), RENAMED, "change_later")
    customer_writes(desk, "It smokes again")
    desk.wait_topic("It smokes again", topic=RENAMED)
    assert desk.in_topic(TOPIC) == []
    desk.fake.post_stream_message(ENGINEER, STREAM, RENAMED, "/reply Unplug it, please")
    desk.wait_dm(ALICE, "[#1] Unplug it, please")
    desk.fake.post_stream_message(ENGINEER, STREAM, RENAMED, "/resolve Replaced the fuser")
    desk.wait_dm(ALICE, 'you can reopen it at no charge with "reopen 1"')
    # Said in the topic it was typed in: the bot repeats it in the topic only for a command from elsewhere.
    answered_after(desk, "status", "Your incidents:")
    assert not any("Resolved by" in m.content for m in desk.in_topic(RENAMED))


def test_part_of_a_case_topic_moved_away_leaves_the_case_where_it_was(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    side = desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "Who has the spare fuser?")
    move_as(desk, ENGINEER, first_in(desk, TOPIC), "opened", "change_one")  # the first, not the rest
    move_as(desk, ENGINEER, side, "spare parts", "change_one")
    later = desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "And the toner?")
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "Both in the cupboard")
    move_as(desk, ENGINEER, later, "cupboard", "change_later")  # older messages stay under the name
    customer_writes(desk, "It smokes again")
    desk.wait_topic("It smokes again")
    assert stored_topic(desk) == TOPIC
    assert not any("It smokes again" in m.content for m in desk.fake.sent_by(BOT, stream=STREAM) if m.subject != TOPIC)


def test_renaming_a_topic_that_is_no_case_changes_nothing(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    chat = desk.fake.post_stream_message(ENGINEER, STREAM, "coffee", "Anyone for coffee?")
    move_as(desk, ENGINEER, chat, "tea", "change_all")
    customer_writes(desk, "It smokes again")
    desk.wait_topic("It smokes again")
    assert stored_topic(desk) == TOPIC


def test_what_waits_to_be_posted_follows_the_topic(desk: ZulipDesk) -> None:
    """Posts held back while the support stream is public go to the topic's new name once it is private."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.fake.make_stream_public(STREAM)
    customer_writes(desk, "It smokes again")  # answered; its post in the topic waits
    move_as(desk, ENGINEER, first_in(desk, TOPIC), RESOLVED, "change_all")
    answered_after(desk, "status", "Your incidents:")  # the move is handled
    desk.fake.make_stream_private(STREAM)
    desk.wait_topic("It smokes again", topic=RESOLVED)
    assert desk.in_topic(TOPIC) == []


def test_a_move_made_while_the_bot_was_stopped_is_not_seen_until_the_topics_are_merged(desk: ZulipDesk) -> None:
    """A catch-up reads messages, not moves: the bot posts under the name it knows, opening it
    again; the engineers merge it into the renamed topic, and the case follows."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.stop_all()
    move_as(desk, ENGINEER, first_in(desk, TOPIC), RENAMED, "change_all")
    desk.start()
    customer_writes(desk, "It smokes again")
    desk.wait_topic("It smokes again")  # under the old name, opened again
    assert stored_topic(desk) == TOPIC
    move_as(desk, ENGINEER, first_in(desk, TOPIC), RENAMED, "change_all")
    customer_writes(desk, "Still smoking")
    desk.wait_topic("Still smoking", topic=RENAMED)
    assert stored_topic(desk) == RENAMED


def test_the_fakes_moves_are_the_events_the_openapi_describes(fake: FakeZulip) -> None:
    first = fake.post_stream_message(ENGINEER, STREAM, "a", "one")
    fake.post_stream_message(ENGINEER, STREAM, "a", "two")
    moved_all = fake.move_topic(ENGINEER, first, "b", "change_all")
    moved_one = fake.move_topic(ENGINEER, first, "c", "change_one")
    to_general = fake.move_topic(ENGINEER, first, "c", "change_one", stream="general")
    assert (moved_all["orig_subject"], moved_all["subject"], len(moved_all["message_ids"])) == ("a", "b", 2)
    assert (moved_one["message_ids"], moved_one["propagate_mode"]) == ([first], "change_one")
    assert "subject" not in to_general and to_general["new_stream_id"] == fake.stream("general").stream_id
    for event in (moved_all, moved_one, to_general):
        contract().validate_event({**event, "id": 0, "flags": []})
    assert wait_until(lambda: fake.message(first).subject == "c", what="the move")


def test_a_case_topic_moved_to_another_stream_keeps_its_name(desk: ZulipDesk) -> None:
    """Out of the support stream (perhaps a public one) the case does not follow: the bot's next post
    opens its topic in the support stream again, under the name it knows."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.fake.move_topic(ENGINEER, first_in(desk, TOPIC), "printers", "change_all", stream="general")
    customer_writes(desk, "It smokes again")
    desk.wait_topic("It smokes again")
    assert stored_topic(desk) == TOPIC
