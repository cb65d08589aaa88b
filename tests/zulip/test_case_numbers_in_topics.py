"""Engineers naming cases in case topics, through the whole bot over the fake Zulip (the real `zulip`
client, runtime, router and store; SQLite and PostgreSQL): the topic's case is the one Zulip's topic
name gives.

- In Alice's topic (#1), a command that acts whose first number is Bob's case (#2) does nothing to
  either and is asked about there; written `#2`, it runs on Bob's case and says so in Alice's topic too.
- An answer Zulip refused for good is named in the topic by its start, and `/case` shows it as not
  delivered. (The same on the console desk: tests/core/test_case_numbers_in_topics.py,
  tests/core/test_undelivered_answers.py.)
"""

from __future__ import annotations

from sqlalchemy import select

from storage.db import transaction
from storage.models import Incident
from tests.zulip.conftest import ALICE, BOB, ENGINEER, STREAM
from tests.zulip.markdown_check import active_markup
from tests.zulip.test_end_to_end import TOPIC, ZulipDesk, open_case, wait_until
from tests.zulip.test_engineer_followups import BOB_TOPIC, bob_opens_a_case


def two_cases(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    bob_opens_a_case(desk)


def severities(desk: ZulipDesk) -> list[int]:
    with transaction(desk.engine) as session:
        return [i.severity for i in session.scalars(select(Incident).order_by(Incident.id))]


def test_another_cases_bare_number_in_a_topic_is_asked_about_and_reaches_nobody(desk: ZulipDesk) -> None:
    two_cases(desk)
    bob_dms, bob_posts = len(desk.dms_to(BOB)), len(desk.in_topic(BOB_TOPIC))
    desk.fake.post_stream_message(
        ENGINEER, STREAM, TOPIC, "/reply 2 things to try, Alice: unplug the printer, then plug it back in."
    )
    asked = desk.wait_topic("Nothing was done").content
    assert asked == (
        "⚠️ Nothing was done: this topic is #1 (`Alice Customer`), and 2 names another case, #2 (`Bob Customer`).\n"
        "For #2: `/reply #2 things to try, Alice: unplug the printer, then pl…`, or write it in #2's topic.\n"
        "For #1: `/reply 1 2 things to try, Alice: unplug the printer, then p…`"
    )
    assert active_markup(asked) == []
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/severity 2 1")
    wait_until(lambda: len([m for m in desk.in_topic() if "Nothing was done" in m.content]) == 2, what="the second")
    assert severities(desk) == [3, 3]
    # What is written either way the answer says goes where it says.
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply 1 2 things to try: unplug it, then plug it in.")
    desk.wait_dm(ALICE, "[#1] 2 things to try: unplug it")
    assert len(desk.dms_to(BOB)) == bob_dms and len(desk.in_topic(BOB_TOPIC)) == bob_posts


def test_a_command_on_another_case_written_with_a_hash_runs_and_says_so_where_it_was_typed(
    desk: ZulipDesk,
) -> None:
    two_cases(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply #2 Try the other tray.")
    desk.wait_dm(BOB, "[#2] Try the other tray.")
    desk.wait_topic("replied to the customer via zulip", topic=BOB_TOPIC)  # the echo, in Bob's topic
    desk.wait_topic("Sent to the customer of #2 via zulip (`Bob Customer`).")  # and a word in Alice's
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/severity #2 1")
    desk.wait_topic("Severity now 1 (critical), was 3 (normal)", topic=BOB_TOPIC)
    desk.wait_topic("#2 now has severity 1 (critical).")
    assert severities(desk) == [3, 1]
    assert not any("[#2]" in m.content for m in desk.dms_to(ALICE))


def test_an_answer_zulip_refused_is_named_and_shown_as_not_delivered(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    # The answer's first post is its DM to Alice (the echo follows it): Zulip refuses that one.
    desk.fake.fail_next(1, status=400, path="/messages", method="POST", body="json")
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply Unplug it, wait @**all** ten seconds, plug it in.")
    notice = desk.wait_topic("Could not deliver").content
    assert notice.startswith("⚠ Could not deliver a message to the customer via zulip: `")
    # As the customer was to read it: the wildcard is for Zulip only, and left out of their message.
    assert "\nThe message began: `[#1] Unplug it, wait ten seconds, plug it in.`\n" in notice
    assert active_markup(notice) == []
    desk.wait_topic("replied to the customer via zulip")
    assert not any("Unplug" in m.content for m in desk.dms_to(ALICE))
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/case")
    shown = desk.wait_topic("latest messages:").content
    assert shown.endswith(
        f"reply `{ENGINEER}` (⚠ not delivered): `Unplug it, wait @**all** ten seconds, plug it in.`"
    ), shown
