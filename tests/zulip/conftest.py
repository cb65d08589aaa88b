"""Fixtures for the Zulip channel: the fake server, a recording sink, channels that run in a thread."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from adapters.backoff import Backoff
from adapters.channel import Inbound
from adapters.zulip import ZulipChannel, ZulipTuning
from tests.fakes.zulip import FakeZulip

BOT = "deskbot-bot@example.com"
BOT_KEY = "bot-api-key-0123456789"
BOT_NAME = "Deskbot"
ENGINEER = "eng@example.com"
ALICE = "alice@example.com"
BOB = "bob@example.com"
STREAM = "support"
CURSOR = "zulip:last_message_id"


@dataclass
class RecordingSink:
    """An InboundSink that records deliveries and cursors the way the intake stores them."""

    delivered: list[tuple[Inbound, tuple[str, str] | None]] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    cursor_history: list[str] = field(default_factory=list)
    #: (cursor value, ids delivered when it was stored), to check the cursor never ran ahead.
    cursor_snapshots: list[tuple[int, frozenset[int]]] = field(default_factory=list)
    #: Called before each delivery is recorded; raise to simulate a failing store.
    before_deliver: Callable[[Inbound], None] | None = None
    #: (channel, old, new) of each topic move told (`InboundSink.topic_renamed`), in order.
    renamed: list[tuple[str, str, str]] = field(default_factory=list)
    #: Set when the receive() feeding this sink died: waits fail at once with it.
    receive_error: BaseException | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def deliver(self, message: Inbound, *, cursor: tuple[str, str] | None = None) -> None:
        if self.before_deliver is not None:
            self.before_deliver(message)
        with self._cond:
            self.delivered.append((message, cursor))
            if cursor is not None:
                self._store(*cursor)
            self._cond.notify_all()

    def deliver_many(self, items: list[tuple[Inbound, tuple[str, str] | None]], *, backlog: bool = False) -> None:
        """All or nothing, like the intake's transaction: a failure records none of them."""
        for message, _cursor in items:
            if self.before_deliver is not None:
                self.before_deliver(message)
        with self._cond:
            self.delivered.extend(items)
            last = next((c for _m, c in reversed(items) if c), None)
            if last is not None:
                self._store(*last)
            self._cond.notify_all()

    def get_cursor(self, key: str) -> str | None:
        with self._cond:
            return self.cursors.get(key)

    def set_cursor(self, key: str, value: str) -> None:
        with self._cond:
            self._store(key, value)
            self._cond.notify_all()

    def topic_renamed(self, channel: str, old: str, new: str) -> None:
        with self._cond:
            self.renamed.append((channel, old, new))
            self._cond.notify_all()

    def _store(self, key: str, value: str) -> None:
        self.cursors[key] = value
        self.cursor_history.append(value)
        self.cursor_snapshots.append((int(value), frozenset(self.ids)))

    def assert_cursor_sound(self, fake: FakeZulip, stream: str = STREAM) -> None:
        """The cursor only moved forward, and never past a relevant message that was not yet delivered."""
        values = [int(v) for v in self.cursor_history]
        assert values == sorted(values), f"cursor moved backwards: {values}"
        relevant = relevant_ids(fake, stream)
        for value, delivered in self.cursor_snapshots:
            missing = {i for i in relevant if i <= value} - delivered
            assert not missing, f"cursor {value} stored before messages {sorted(missing)} were delivered"

    @property
    def messages(self) -> list[Inbound]:
        with self._cond:
            return [m for m, _ in self.delivered]

    @property
    def ids(self) -> list[int]:
        """The ids of the messages delivered (not of edits: theirs are no message's, `Inbound.edit_of`)."""
        return [int(m.message_id) for m, _ in self.delivered if m.edit_of is None]

    def wait_for(self, predicate: Callable[[RecordingSink], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                if self.receive_error is not None:
                    raise AssertionError(f"receive() died: {self.receive_error!r}") from self.receive_error
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; delivered so far: {[m.text for m, _ in self.delivered]}")
                self._cond.wait(min(left, 0.1))

    def wait_count(self, n: int, timeout: float = 10.0) -> None:
        self.wait_for(lambda s: len(s.delivered) >= n, timeout)


def relevant_ids(fake: FakeZulip, stream: str = STREAM) -> list[int]:
    """Messages the bot must hand over: 1:1 DMs to it and support-stream messages, not its own."""
    bot = fake.user(BOT).user_id
    sid = fake.stream(stream).stream_id
    out = []
    for m in fake.messages:
        if m.sender_id == bot:
            continue
        if m.type == "private" and m.participants == frozenset({bot, m.sender_id}):
            out.append(m.id)
        elif m.stream_id == sid:
            out.append(m.id)
    return out


def populate(fake: FakeZulip) -> None:
    """The realm most tests use: an owner, the bot, an engineer, two customers, a private support stream."""
    fake.add_user("owner@example.com", "Org Owner", role=100)
    fake.add_user(BOT, BOT_NAME, BOT_KEY, is_bot=True)
    fake.add_user(ENGINEER, "Erin Engineer")
    fake.add_user(ALICE, "Alice Customer")
    fake.add_user(BOB, "Bob Customer")
    fake.add_stream(STREAM, invite_only=True, subscribers=[BOT, ENGINEER, "owner@example.com"])
    fake.add_stream("general", invite_only=False, subscribers=[BOT, ENGINEER, ALICE])


@pytest.fixture
def fake() -> Iterator[FakeZulip]:
    with FakeZulip(heartbeat=0.4, queue_idle_timeout=30.0) as server:
        populate(server)
        yield server


FAST_RECEIVE = Backoff(initial=0.05, maximum=0.3, jitter=0.02)
#: Quick enough for tests: short timeouts and back-offs.
FAST = ZulipTuning(
    request_timeout=5.0,
    poll_timeout=3.0,
    send_retry=Backoff(initial=0.05, maximum=0.2, jitter=0.02, attempts=4),
    receive_retry=FAST_RECEIVE,
    max_rate_wait=5.0,
)


@pytest.fixture
def make_channel(fake: FakeZulip) -> Iterator[Callable[..., ZulipChannel]]:
    made: list[ZulipChannel] = []

    def make(**overrides: Any) -> ZulipChannel:
        """A channel on the fake; `overrides` name channel arguments or `ZulipTuning` fields."""
        knobs = {name: overrides.pop(name) for name in list(overrides) if name in ZulipTuning.__dataclass_fields__}
        kwargs: dict[str, Any] = dict(
            site=fake.url, email=BOT, api_key=BOT_KEY, stream=STREAM, tuning=dataclasses.replace(FAST, **knobs)
        )
        kwargs.update(overrides)
        channel = ZulipChannel(**kwargs)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        channel.close()


@pytest.fixture
def desk(fake, engine, db_url, clock, make_channel) -> Iterator[Any]:  # noqa: ANN001
    """The whole bot over the fake (`tests.zulip.test_end_to_end.ZulipDesk`), its runtimes stopped after the test."""
    from tests.zulip.test_end_to_end import ZulipDesk  # that module imports this one

    d = ZulipDesk(fake, engine, db_url, clock, make_channel)
    try:
        yield d
    finally:
        d.stop_all()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


class Running:
    """A channel receiving in a background thread."""

    def __init__(self, channel: ZulipChannel, sink: RecordingSink) -> None:
        self.channel = channel
        self.sink = sink
        self.stop = threading.Event()
        self.error: BaseException | None = None
        sink.receive_error = None
        self.thread = threading.Thread(target=self._run, name="test-receive", daemon=True)

    def _run(self) -> None:
        try:
            self.channel.receive(self.sink, self.stop)
        except BaseException as exc:  # reported by the test
            self.error = exc
            with self.sink._cond:
                self.sink.receive_error = exc
                self.sink._cond.notify_all()

    def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.channel.connected:
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError("channel never connected")
            time.sleep(0.01)

    def halt(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "receive() did not return after stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def run_channel() -> Iterator[Callable[..., contextlib.AbstractContextManager[Running]]]:
    @contextlib.contextmanager
    def run(channel: ZulipChannel, sink: RecordingSink, *, connect: bool = True) -> Iterator[Running]:
        running = Running(channel, sink)
        running.thread.start()
        try:
            if connect:
                running.wait_connected()
            yield running
        finally:
            if running.thread.is_alive():
                running.halt()

    yield run
