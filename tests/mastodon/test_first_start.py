"""The very first start (no stored cursor) answers nothing written before it; restarts catch up."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select

from adapters.mastodon import CURSOR_KEY
from storage.db import transaction
from storage.models import ChannelCursor, Incident, ProcessedInbound
from tests.fakes.mastodon import FakeMastodon

from .conftest import RecordingSink, Running, wait_until
from .runtime_bot import ALICE, Bot, bot_replies

STRANGER = "mallory@elsewhere.example"


@pytest.fixture
def new_bot(fake: FakeMastodon, engine, db_url, clock, customer) -> Callable[[], Bot]:  # noqa: ANN001
    """A bot process on the one store, started: the first call is its very first start."""
    return lambda: Bot(fake, engine, db_url, clock).start()


def test_old_dms_get_no_answer_and_no_incident_but_new_ones_and_those_written_while_stopped_do(
    fake: FakeMastodon, new_bot: Callable[[], Bot], engine: Engine
) -> None:
    old = [
        fake.post_status(ALICE, "@deskbot open The printer from 2019 is broken")["id"],
        fake.post_status(ALICE, "@deskbot status")["id"],
        fake.post_status(STRANGER, "@deskbot anyone there?")["id"],  # filtered: a notification request
    ]
    first = new_bot()
    assert fake.notification_requests("deskbot") == []  # accepted, so the stranger's next DM arrives
    new = fake.post_status(ALICE, "@deskbot open My VPN does not connect")
    (reply,) = bot_replies(fake, 1)  # the catch-up goes oldest first: an old DM would be answered before
    assert reply.status["in_reply_to_id"] == new["id"] and "Incident #1 is open" in reply.source_text
    first.halt()
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 1
        assert not session.scalars(select(ProcessedInbound).where(ProcessedInbound.message_id.in_(old))).all()
        assert session.get(ChannelCursor, CURSOR_KEY).value == "4"

    while_stopped = fake.post_status(ALICE, "@deskbot status")
    second = new_bot()
    replies = bot_replies(fake, 2)
    second.halt()
    assert [r.status["in_reply_to_id"] for r in replies] == [new["id"], while_stopped["id"]]
    assert "#1" in replies[1].source_text  # the status listing of the one incident


def test_an_account_with_no_mentions_yet_still_catches_up_after_a_stop(
    fake: FakeMastodon, run_channel: Callable[..., Running]
) -> None:
    sink = RecordingSink()
    run_channel(sink).halt()
    assert sink.cursors[CURSOR_KEY] == "0"  # stored, so the next start is a restart
    fake.post_status(ALICE, "@deskbot written while the bot was stopped")
    second = run_channel(sink)
    assert [m.text for m in sink.wait_for(1)] == ["written while the bot was stopped"]
    second.halt()


def test_dms_of_requests_accepted_at_first_start_stay_unanswered_later_ones_arrive(
    fake: FakeMastodon, run_channel: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="deskbot.adapters.mastodon")
    fake.post_status(ALICE, "@deskbot an old question")
    fake.post_status(STRANGER, "@deskbot an old question from a stranger")
    running = run_channel()
    assert fake.notification_requests("deskbot") == []
    assert running.sink.cursors[CURSOR_KEY] == "2"
    assert any(
        "first start: answering mentions after notification 2; 2 earlier mention(s) left unanswered" in r.getMessage()
        for r in caplog.records
    )
    later = fake.post_status(STRANGER, "@deskbot a new question")
    (message,) = running.sink.wait_for(1)
    assert message.message_id == later["id"]
    running.halt()


def test_a_merge_that_comes_after_the_first_start_brings_no_old_dm_in(
    fake: FakeMastodon, run_channel: Callable[..., Running]
) -> None:
    fake.hold_merges()
    fake.post_status(ALICE, "@deskbot an old question")
    fake.post_status(STRANGER, "@deskbot the newest old question, from a stranger")
    running = run_channel(streaming=False, poll_interval=0.1, merge_wait=0.3)
    assert running.sink.cursors[CURSOR_KEY] == "1"  # the stranger's notification was not merged yet
    fake.release_merges()  # it now shows up after the cursor, with its old date
    wait_until(lambda: running.sink.cursors[CURSOR_KEY] == "2")
    later = fake.post_status(STRANGER, "@deskbot a new question")
    (message,) = running.sink.wait_for(1)
    assert message.message_id == later["id"]
    running.halt()
