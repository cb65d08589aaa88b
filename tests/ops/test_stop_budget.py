"""Stopping fits SPEC §7's ten seconds however many platforms hang (bot.runtime.Runtime.stop).

Each channel here stands for a hung platform, as the fake servers' `hold_answers` does for one:
its receive loop waits on a request that never returns, whatever `stop` says, and so does a send,
until `close()` cuts them, as the real channels' `close` cuts their sockets. One of them hangs in
`close()` too. With the stages' old timeouts, each its own (half the drain per receive loop, 2 s
per thread, then the closing), three hung platforms kept the process 15 s and more: past the
SIGKILL a container runtime sends after 10 s.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from adapters.channel import Channel, Inbound, Outbound, TransientSendError
from bot import runtime as runtime_module
from bot.runtime import CLOSE_SECONDS, DRAIN_SECONDS, EXIT_SECONDS, JOIN_SECONDS, STOP_SECONDS, Runtime
from tests.desk import make_settings


class HungChannel(Channel):
    """Hands one message from a stranger over, then waits on a platform that never answers."""

    def __init__(self, name: str, *, close_hangs: bool = False) -> None:
        self.name = name  # type: ignore[misc]  # one class for three platforms
        self.closed = threading.Event()
        self.close_hangs = close_hangs
        self.sending = threading.Event()

    def receive(self, sink, stop: threading.Event) -> None:  # noqa: ANN001
        sink.deliver(
            Inbound(
                channel=self.name,
                sender=f"stranger@{self.name}",
                conversation=f"stranger@{self.name}",
                text="hello?",
                message_id=f"{self.name}-1",
                received_at=datetime.now(UTC),
            ),
            cursor=None,
        )
        self.closed.wait()  # a long-poll on a hung server: `stop` does not end it, closing does

    def send(self, message: Outbound) -> list[str]:
        self.sending.set()
        self.closed.wait()
        raise TransientSendError("stopping: cut off")

    def close(self) -> None:
        self.closed.set()
        if self.close_hangs:
            time.sleep(60)  # daemon thread: the runtime stops waiting for it after CLOSE_SECONDS


def test_three_hung_platforms_stop_within_the_ten_seconds(engine, db_url, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(runtime_module, "HEALTH_CHECK_SECONDS", 0.2)
    channels = [HungChannel("zulip"), HungChannel("mastodon", close_hangs=True), HungChannel("email")]
    runtime = Runtime(make_settings(db_url), channels, engine=engine)
    runtime.start()
    deadline = time.monotonic() + 20
    while not all(c.sending.is_set() for c in channels) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c.name for c in channels if not c.sending.is_set()] == [], "every answer should be on the wire"

    began = time.monotonic()
    runtime.stop(DRAIN_SECONDS)  # what `deskbot run` gives it on SIGTERM (bot.serve)
    took = time.monotonic() - began

    assert all(c.closed.is_set() for c in channels)
    # The stages' deadlines; what is left of the ten seconds is the process's own exit.
    assert DRAIN_SECONDS + JOIN_SECONDS + CLOSE_SECONDS + EXIT_SECONDS <= STOP_SECONDS
    assert took <= DRAIN_SECONDS + JOIN_SECONDS + CLOSE_SECONDS + 0.5, f"stopping took {took:.1f}s"
