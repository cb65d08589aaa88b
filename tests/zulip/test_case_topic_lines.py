"""Severity, the urgent mention and resolved cases end to end (issue 13, items 1 and 3): the whole bot
over the Zulip channel and the fake server, with the real zulip client, on SQLite and PostgreSQL.

What the bot posts in a case topic on its own names the severity when the case opens and when it
changes; a case that becomes severity 1 mentions DESKBOT_URGENT_NOTIFY there, once, as a working
mention, while customer words in those lines stay inert; a customer's "thanks!" after a resolution
is shown in the topic without reopening the case, and `reopen N` tells the topic who reopened it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.zulip.conftest import ALICE, ENGINEER, STREAM
from tests.zulip.markdown_check import active_markup
from tests.zulip.test_end_to_end import TOPIC, ZulipDesk, open_case, wait_until

URGENT = "@*support-oncall*"


@pytest.fixture
def desk(fake, engine, db_url, clock, make_channel) -> Iterator[ZulipDesk]:  # noqa: ANN001
    d = ZulipDesk(fake, engine, db_url, clock, make_channel)
    d.settings = d.settings.model_copy(update={"urgent_notify": URGENT})
    try:
        yield d
    finally:
        d.stop_all()


def _bot_lines(desk: ZulipDesk) -> list[str]:
    """The bot's own lines in the case topic (not the quotes of what people wrote)."""
    return [m.content for m in desk.in_topic() if "wrote:" not in m.content and "replied to" not in m.content]


def test_severity_lines_and_the_urgent_mention_in_the_case_topic(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    first = desk.in_topic()[0].content  # the topic opens with what the case is, its severity and due time
    assert first.startswith("📥 New case #1 from `Alice Customer`: `My printer is on fire @**all**`")
    assert "· severity 3 (normal) · response due " in first
    assert active_markup(first) == []  # the customer's mention in the subject does nothing
    assert "Severity: 3 (normal)" in desk.dms_to(ALICE)[-1].content

    desk.fake.post_dm(ALICE, "severity 1 1")
    desk.wait_dm(ALICE, "Incident #1 now has severity 1 (critical).")
    raised = desk.wait_topic("Severity now 1 (critical)").content
    assert raised.startswith("Severity now 1 (critical), was 3 (normal); set by the customer (`Alice Customer`)")
    assert f"\n🚨 Severity 1: {URGENT}" in raised
    assert active_markup(raised) == [f"group mention: {URGENT}"]  # the operator's mention works

    # An engineer in the topic leaves the number out; a second rise to 1 mentions nobody again.
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/severity 2")
    desk.wait_topic("Severity now 2 (high)")
    desk.wait_dm(ALICE, "Our team set the severity of incident #1 to 2 (high).")
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/severity 1")
    again = desk.wait_topic("Severity now 1 (critical), was 2 (high)").content
    assert f"set by `{ENGINEER}`" in again and URGENT not in again
    assert sum(URGENT in line for line in _bot_lines(desk)) == 1
    desk.fake.post_dm(ENGINEER, "/cases")
    assert (
        "• #1 `My printer is on fire @**all**` from `Alice Customer` · severity 1 (critical) · open"
        in desk.wait_dm(ENGINEER, "cases").content
    )


def test_a_thank_you_after_resolve_is_shown_but_reopens_nothing(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/resolve Replaced the fuser")
    desk.wait_dm(ALICE, 'you can reopen it at no charge with "reopen 1"')
    desk.fake.post_dm(ALICE, "thanks!")
    answer = desk.wait_dm(ALICE, "which stays resolved").content
    assert 'reply "reopen 1"' in answer and 'send "open" followed by what it is about' in answer
    desk.wait_topic("thanks!")  # the customer's words reach the topic
    desk.wait_topic("The case stays resolved: the customer was asked whether to reopen it")
    assert not any("Reopened" in line for line in _bot_lines(desk))

    desk.fake.post_dm(ALICE, "reopen 1")
    told = desk.wait_dm(ALICE, "Incident #1 is open again, at no charge.").content
    assert "We will answer by " in told
    reopened = desk.wait_topic("🔁 Reopened by the customer (`Alice Customer`)").content
    assert "response due " in reopened and active_markup(reopened) == []
    wait_until(lambda: len(desk.dms_to(ALICE)) >= 4, what="every answer to Alice")
