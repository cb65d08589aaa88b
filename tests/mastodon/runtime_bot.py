"""The real runtime (intake, router, outbox, dispatcher) around a Mastodon channel, on threads.

Engineers work on the console channel (it carries the case topics), so no
Zulip server is needed; customers write from Mastodon accounts.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC

from adapters.console import ENGINEER, ConsoleChannel, console_line
from adapters.mastodon import MastodonChannel
from bot.runtime import Runtime
from tests.desk import EVERY_MESSAGE_ANSWERED, make_settings
from tests.fakes.mastodon import FakeMastodon

from .conftest import BOT_TOKEN, FAST, wait_until

ALICE = "alice@remote.example"


class Bot:
    """One bot process: runtime + Mastodon channel receiving and dispatching on threads."""

    def __init__(self, fake: FakeMastodon, engine, db_url: str, clock, channel: MastodonChannel | None = None) -> None:  # noqa: ANN001
        self.console = ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=io.StringIO())
        self.mastodon = channel or MastodonChannel(fake.url, BOT_TOKEN, tuning=FAST)
        self.runtime = Runtime(
            make_settings(db_url, **EVERY_MESSAGE_ANSWERED),
            [self.console, self.mastodon],
            engine=engine,
            clock=clock,
            trusted_engineers=frozenset({("console", ENGINEER)}),
            migrate=False,
        )
        self.clock = clock
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, *, dispatch: bool = True) -> Bot:
        self.mastodon.start()
        targets = [lambda: self.mastodon.receive(self.runtime.intake, self.stop)]
        if dispatch:
            targets.append(lambda: self.runtime.dispatcher.run("mastodon", self.stop, poll=0.1))
        for target in targets:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)
        wait_until(lambda: self.mastodon.connected, 5)
        return self

    def engineer(self, text: str, message_id: str) -> None:
        self.runtime.intake.deliver(console_line(ENGINEER, text, message_id, self.clock().astimezone(UTC)))
        self.runtime.dispatcher.drain("console")

    def halt(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        self.mastodon.close()


def bot_replies(fake: FakeMastodon, count: int, timeout: float = 10.0) -> list:
    wait_until(lambda: len(fake.posted_by("deskbot")) >= count, timeout)
    return fake.posted_by("deskbot")
