"""An engineer's answer to a customer whose channel is down, or that can never go (SPEC §3): the case
topic says so, and an answer the customer never got gives the case its due time back.

The whole bot as `deskbot run` has it: the runtime with the Zulip channel (the fake Zulip over HTTP)
and the Mastodon channel (the fake Mastodon over HTTP), customers on Mastodon. The outage is the
fake's: every request dropped and the streams cut, until the runtime calls Mastodon down as
`/readyz` does. Runs on SQLite and PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa

from adapters.mastodon import MastodonChannel
from bot.runtime import Runtime
from bot.services import credits as credit_service
from bot.services import customers
from storage.db import transaction
from storage.models import Incident
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip, StoredMessage
from tests.mastodon.conftest import BOT_TOKEN, fast, mastodon_with_customer, wait_until
from tests.zulip.conftest import ENGINEER, STREAM
from tests.zulip.support_desk import (
    running_desk,
    support_settings,
    topic_posts,
    zulip_with_support_stream,
)

ALICE = "alice@remote.example"
QUEUED = "⏳ mastodon is unreachable right now: this is queued and goes out to the customer when mastodon is back."


@pytest.fixture
def mastodon() -> Iterator[FakeMastodon]:
    with mastodon_with_customer(ALICE, "Alice Remote") as server:
        yield server


@pytest.fixture
def zulip() -> Iterator[FakeZulip]:
    with zulip_with_support_stream() as server:
        yield server


@pytest.fixture
def desk(mastodon: FakeMastodon, zulip: FakeZulip, engine, db_url, clock) -> Iterator[Runtime]:  # noqa: ANN001
    """Acme on Mastodon with credits; the runtime with both channels, polling Mastodon often while
    its stream is down (so that an outage is noticed in seconds)."""
    with transaction(engine) as session:
        acme, _code = customers.create_customer(session, "Acme", None, "en", clock())
        customers.link_identity(session, acme, "mastodon", ALICE, clock())
        credit_service.grant_credits(session, acme, 3, clock().date(), "test", clock(), months=12)
    channel = MastodonChannel(mastodon.url, BOT_TOKEN, tuning=fast(poll_interval=0.2))
    with running_desk(zulip, support_settings(db_url), channel, engine=engine, clock=clock) as runtime:
        yield runtime


def open_case(mastodon: FakeMastodon, zulip: FakeZulip) -> str:
    """Acme opens #1 on Mastodon and is answered; its topic's name."""
    mastodon.post_status(ALICE, "@deskbot open The printer is on fire")
    wait_until(lambda: customer_got(mastodon, "Incident #1 is open"), 15)
    return in_topic(zulip, "wrote:").subject


def customer_got(mastodon: FakeMastodon, words: str) -> bool:
    return any(words in posted.source_text for posted in mastodon.posted_by("deskbot"))


def in_topic(zulip: FakeZulip, containing: str) -> StoredMessage:
    return wait_until(lambda: next(iter(topic_posts(zulip, containing)), None), 15)


def topic_lines(zulip: FakeZulip, topic: str) -> list[str]:
    return [m.content for m in zulip.sent_by("deskbot-bot@example.com", stream=STREAM, topic=topic)]


def engineer(zulip: FakeZulip, topic: str, command: str) -> None:
    zulip.post_stream_message(ENGINEER, STREAM, topic, command)


def due_at(engine: sa.Engine) -> datetime | None:
    with transaction(engine) as session:
        incident = session.get(Incident, 1)
        assert incident is not None
        return incident.due_at


def test_answers_queued_while_the_customers_channel_is_down_say_so_once(
    mastodon: FakeMastodon, zulip: FakeZulip, desk: Runtime
) -> None:
    topic = open_case(mastodon, zulip)
    engineer(zulip, topic, "/reply Is it plugged in?")
    wait_until(lambda: customer_got(mastodon, "[#1] Is it plugged in?"), 15)
    in_topic(zulip, "Is it plugged in?")
    assert not any("unreachable" in line for line in topic_lines(zulip, topic))  # it went: nothing more

    mastodon.fail_during(600, status=None)  # every request dropped …
    mastodon.disconnect_streams()  # … and the open stream cut
    wait_until(lambda: "mastodon unreachable" in desk.ready()[1], 30)
    engineer(zulip, topic, "/reply Unplug it, then plug it back in.")
    in_topic(zulip, "Unplug it, then plug it back in.")  # the echo, as ever …
    in_topic(zulip, QUEUED)  # … and the line that says it has not gone out
    engineer(zulip, topic, "/resolve")
    in_topic(zulip, "#1 is resolved; the customer was told.")
    wait_until(lambda: topic_lines(zulip, topic).count(QUEUED) == 2, 15)
    assert topic_lines(zulip, topic)[-1] == QUEUED  # after "the customer was told"
    assert not customer_got(mastodon, "Unplug it")

    mastodon.faults.clear()
    wait_until(lambda: customer_got(mastodon, "Incident #1 is resolved."), 30)
    assert customer_got(mastodon, "[#1] Unplug it, then plug it back in.")
    said = topic_lines(zulip, topic)
    time.sleep(1.5)  # once the answers went out, the topic is told nothing more
    assert topic_lines(zulip, topic) == said and said.count(QUEUED) == 2
    assert not any("⚠" in line for line in said)


def test_an_answer_the_customer_never_got_gives_the_case_its_due_time_back(
    mastodon: FakeMastodon, zulip: FakeZulip, engine: sa.Engine, desk: Runtime
) -> None:
    topic = open_case(mastodon, zulip)
    due = due_at(engine)
    assert due is not None
    mastodon.fail_next(1, 403, method="POST", path="/api/v1/statuses")  # refused for good
    engineer(zulip, topic, "/reply Is it plugged in?")
    notice = in_topic(zulip, "Could not deliver").content
    assert notice.startswith("⚠ Could not deliver a message to the customer via mastodon: `")
    assert notice.endswith(
        "\nThe customer did not get this answer, so the case waits on the team again: "
        "response due Friday, 4 December 2026 at 10:00 (Lisbon time)."
    )
    assert due_at(engine) == due
    assert not customer_got(mastodon, "Is it plugged in?")


def test_a_lost_follow_up_leaves_the_clock_stopped_when_an_earlier_answer_arrived(
    mastodon: FakeMastodon, zulip: FakeZulip, engine: sa.Engine, desk: Runtime
) -> None:
    topic = open_case(mastodon, zulip)
    engineer(zulip, topic, "/reply Is it plugged in?")
    wait_until(lambda: customer_got(mastodon, "[#1] Is it plugged in?"), 15)
    mastodon.fail_next(1, 403, method="POST", path="/api/v1/statuses")
    engineer(zulip, topic, "/reply And is it switched on?")
    notice = in_topic(zulip, "Could not deliver").content
    assert "did not get this answer" not in notice  # the customer has an answer: the case waits on them
    assert due_at(engine) is None
