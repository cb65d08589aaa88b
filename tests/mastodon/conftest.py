"""Fixtures for the Mastodon channel: the fake server, a recording sink, a running channel."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.backoff import Backoff
from adapters.channel import Inbound, OutboundFile
from adapters.mastodon import CURSOR_KEY, MastodonChannel, MastodonTuning
from bot.runtime import Runtime
from bot.services import credits as credit_service
from bot.services import customers
from storage.db import transaction
from storage.models import Incident, IncidentAttachment
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip, StoredMessage
from tests.zulip.support_desk import running_desk, support_settings, topic_posts, zulip_with_support_stream

BOT_TOKEN = "bot-token"


@contextlib.contextmanager
def mastodon_with_customer(acct: str, display_name: str) -> Iterator[FakeMastodon]:
    """A fake Mastodon whose bot follows `acct` (so that its DMs reach the bot), beside the support
    stream's Zulip: a customer off Zulip whose case the engineers work there."""
    with FakeMastodon(bot_acct="deskbot", bot_token=BOT_TOKEN, heartbeat_interval=0.3) as server:
        server.add_account(acct, token="alice-token", display_name=display_name)
        server.follow("deskbot", acct)
        yield server


#: Quick enough for tests: short heartbeats and back-offs, frequent polls.
FAST = MastodonTuning(
    request_timeout=5.0,
    send_retry=Backoff(initial=0.02, maximum=0.1, jitter=0.02, attempts=4),
    receive_retry=Backoff(initial=0.05, maximum=0.5, jitter=0.0),
    poll_interval=1.0,
    heartbeat_timeout=1.5,
    media_poll_interval=0.05,
    media_wait=5.0,
)


def fast(**knobs: Any) -> MastodonTuning:
    """`FAST` with some of its knobs changed."""
    return dataclasses.replace(FAST, **knobs)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class RecordingSink:
    """An InboundSink that records: idempotent per message id, as the real one is."""

    def __init__(self, cursors: dict[str, str] | None = None) -> None:
        self.delivered: list[Inbound] = []
        self.cursors: dict[str, str] = dict(cursors or {})
        self.deliver_calls = 0
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def deliver(self, message: Inbound, *, cursor: tuple[str, str] | None = None) -> None:
        with self._lock:
            self.deliver_calls += 1
            if message.message_id not in self._ids:
                self._ids.add(message.message_id)
                self.delivered.append(message)
            if cursor:
                self.cursors[cursor[0]] = cursor[1]

    def get_cursor(self, key: str) -> str | None:
        with self._lock:
            return self.cursors.get(key)

    def set_cursor(self, key: str, value: str) -> None:
        with self._lock:
            self.cursors[key] = value

    def texts(self) -> list[str]:
        with self._lock:
            return [m.text for m in self.delivered]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Inbound]:
        wait_until(lambda: len(self.delivered) >= count, timeout)
        return list(self.delivered)


@pytest.fixture
def fake() -> Iterator[FakeMastodon]:
    with FakeMastodon(bot_acct="deskbot", bot_token=BOT_TOKEN, domain="bot.example", heartbeat_interval=0.3) as server:
        server.add_account("alice@remote.example", token="alice-token", display_name="Alice Remote")
        server.add_account("carol", token="carol-token", display_name="Carol Local")
        server.add_account("mallory@elsewhere.example", token="mallory-token")
        # Customers in most tests are not strangers; the policy tests unfollow.
        server.follow("deskbot", "alice@remote.example")
        server.follow("deskbot", "carol")
        yield server


class Running:
    """A started channel receiving into a sink on a thread of its own."""

    def __init__(self, channel: MastodonChannel, sink: RecordingSink) -> None:
        self.channel = channel
        self.sink = sink
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.channel.receive(self.sink, self.stop)
        except BaseException as error:  # noqa: BLE001 - surfaced by `halt`
            self.error = error

    def wait_started(self) -> None:
        """Until the channel knows where it starts: what is written from then on is new to it."""
        wait_until(lambda: self.sink.get_cursor(CURSOR_KEY) is not None or self.error, 5)

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.channel.close()
        assert not self.thread.is_alive(), "receive did not return after stop"
        if self.error:
            raise self.error


@pytest.fixture
def make_channel(fake: FakeMastodon) -> Iterator[Callable[..., MastodonChannel]]:
    made: list[MastodonChannel] = []

    def make(**overrides: Any) -> MastodonChannel:
        token = overrides.pop("access_token", BOT_TOKEN)
        channel = MastodonChannel(fake.url, token, tuning=fast(**overrides))
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel.close()


@pytest.fixture
def run_channel(make_channel: Callable[..., MastodonChannel]) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def run(sink: RecordingSink | None = None, *, wait_connected: bool = True, **overrides: Any) -> Running:
        channel = make_channel(**overrides)
        channel.start()
        runner = Running(channel, sink or RecordingSink())
        runner.thread.start()
        running.append(runner)
        runner.wait_started()
        if wait_connected and overrides.get("streaming", True):
            wait_until(lambda: channel._receiver is not None and channel._receiver.stream_open, 5)
        return runner

    yield run
    for runner in running:
        if runner.thread.is_alive():
            runner.stop.set()
            runner.thread.join(5)


@pytest.fixture
def customer(engine, clock) -> int:  # noqa: ANN001
    """Acme, linked to alice@remote.example, with 3 credits."""
    with transaction(engine) as session:
        acme, _code = customers.create_customer(session, "Acme", None, "en", clock())
        customers.link_identity(session, acme, "mastodon", "alice@remote.example", clock())
        credit_service.grant_credits(session, acme, 3, clock().date(), "test", clock(), months=12)
        return acme.id


#: The smallest PNG: its magic number is what makes it an image, whatever its name says.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@pytest.fixture
def zulip() -> Iterator[FakeZulip]:
    """The engineers' side: a fake Zulip with the support stream and the engineer."""
    with zulip_with_support_stream() as server:
        yield server


@pytest.fixture
def start_desk(
    fake: FakeMastodon, zulip: FakeZulip, engine, db_url, clock, customer
) -> Iterator[Callable[..., Runtime]]:  # noqa: ANN001
    """Starts the real runtime with both channels: customers on Mastodon, engineers on Zulip
    (DESKBOT_MAX_ATTACHMENT_MB=1 unless `max_attachment_mb` says otherwise). Call it once the fakes are set as the test wants them."""
    with contextlib.ExitStack() as started:

        def start(max_attachment_mb: str = "1", **tuning: Any) -> Runtime:
            settings = support_settings(db_url, DESKBOT_MAX_ATTACHMENT_MB=max_attachment_mb)
            mastodon = MastodonChannel(fake.url, BOT_TOKEN, tuning=fast(**tuning))
            return started.enter_context(running_desk(zulip, settings, mastodon, engine=engine, clock=clock))

        yield start


@pytest.fixture
def desk(start_desk: Callable[..., Runtime]) -> Runtime:
    return start_desk()


def in_topic(zulip: FakeZulip, containing: str) -> StoredMessage:
    """The bot's message in the support stream that contains `containing` (waited for)."""
    return wait_until(lambda: next(iter(topic_posts(zulip, containing)), None), 15)


def waiting_file(engine: sa.Engine, customer: int) -> OutboundFile:
    """A file of an engineer's reply stored with its bytes, as `/reply` leaves it for the outbox."""
    with transaction(engine) as session:
        incident = Incident(customer_id=customer, subject="Backups fail")
        session.add(incident)
        session.flush()
        row = IncidentAttachment(
            incident_id=incident.id,
            channel="zulip",
            message_id="out:77",
            name="fix.png",
            media_type="image/png",
            size=len(PNG),
            sha256=hashlib.sha256(PNG).hexdigest(),
            data=PNG,
        )
        session.add(row)
        session.flush()
        return OutboundFile(row.id or 0, row.name, row.media_type, row.size)
