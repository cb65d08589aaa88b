"""The runtime's health watch and a receive loop that ends for the store's sake (bot.runtime).

The watch asks each receiving channel every second whether it is connected. A loop that gives up
because the database is gone is disconnected for a moment before the runtime learns why; a watch
that looks in that moment used to mark the platform failing, and with the store down for longer
than the grace period the log said "zulip: cannot reach the platform" of a platform that was fine
(the database-outage drill saw it now and then). Here the channel waits, disconnected, until the
watch has looked, so the moment is always there.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy.exc import OperationalError

from adapters.channel import Channel, Outbound
from bot import runtime as runtime_module
from bot.channel_health import GRACE_SECONDS
from bot.runtime import Runtime
from tests.desk import make_settings


class StoreLosingChannel(Channel):
    """Connects, then disconnects and ends its loop as the store's outage would (OperationalError),
    but only once the health watch has seen it disconnected; every later loop ends so at once."""

    name = "zulip"

    def __init__(self) -> None:
        self.loops = 0
        self.up = False
        self.seen_down = threading.Event()

    @property
    def connected(self) -> bool:
        if not self.up:
            self.seen_down.set()
        return self.up

    def receive(self, sink, stop) -> None:  # noqa: ANN001
        self.loops += 1
        if self.loops == 1:
            self.up = True
            stop.wait(1.5)  # connected for a watch or two
            self.up = False
            self.seen_down.clear()
            self.seen_down.wait(5)  # the watch looked while it was down, before the runtime knew why
        raise OperationalError("INSERT INTO processed_inbound …", {}, ConnectionRefusedError("database down"))

    def send(self, message: Outbound) -> list[str]:
        return [str(message.outbox_id)]


def test_a_loop_ended_by_the_store_is_not_told_as_the_platform_unreachable(
    engine, db_url, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "RESTART_MAX_SECONDS", 0.5)  # the store's outage goes on
    channel = StoreLosingChannel()
    runtime = Runtime(make_settings(db_url), [channel], engine=engine)
    with caplog.at_level(logging.INFO):
        runtime.start()
        try:
            time.sleep(1.5 + GRACE_SECONDS + 2.5)  # past the grace period a disconnection is told after
        finally:
            runtime.stop(drain_seconds=0.5)
    assert channel.seen_down.is_set() and channel.loops >= 3  # the watch looked in the moment; loops went on
    told = [r.getMessage() for r in caplog.records if "cannot reach the platform" in r.getMessage()]
    assert told == []
