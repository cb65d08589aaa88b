"""The engineers' side of a whole desk, for the tests that run the real runtime with Zulip beside a
customer channel (Mastodon, email): the fake Zulip with the support stream, the bot and an engineer;
the bot's `ZulipChannel` on it; the runtime with both channels; the bot's posts in the case topics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine

from adapters.channel import Channel
from adapters.zulip import ZulipChannel
from bot.config import Settings
from bot.runtime import Runtime
from tests.desk import EVERY_MESSAGE_ANSWERED, make_settings
from tests.fakes.zulip import FakeZulip, StoredMessage

from .conftest import BOT, BOT_KEY, ENGINEER, FAST, STREAM, populate


@contextlib.contextmanager
def zulip_with_support_stream() -> Iterator[FakeZulip]:
    """A fake Zulip with the realm of `populate`: the support stream, the bot and the engineer."""
    with FakeZulip(heartbeat=0.4, queue_idle_timeout=30.0) as server:
        populate(server)
        yield server


def support_settings(db_url: str, **overrides: object) -> Settings:
    """Settings whose engineer is `ENGINEER`, working in the support stream."""
    return make_settings(
        db_url, DESKBOT_ENGINEERS=ENGINEER, DESKBOT_ZULIP_STREAM=STREAM, **{**EVERY_MESSAGE_ANSWERED, **overrides}
    )


def zulip_channel(server: FakeZulip, settings: Settings) -> ZulipChannel:
    """The bot's Zulip channel on `server`, quick as the tests want it."""
    return ZulipChannel(
        site=server.url,
        email=BOT,
        api_key=BOT_KEY,
        stream=STREAM,
        tuning=FAST,
        engineer_emails=settings.engineer_entries.emails,
    )


@contextlib.contextmanager
def running_desk(
    server: FakeZulip, settings: Settings, customers: Channel, *, engine: Engine, clock: Any
) -> Iterator[Runtime]:
    """The real runtime with the Zulip channel on `server` and the `customers` channel, started and
    yielded once both are connected (what customers write before a channel's first start is old to it);
    stopped and its channels closed afterwards."""
    channels: list[Channel] = [zulip_channel(server, settings), customers]
    runtime = Runtime(settings, channels, engine=engine, clock=clock, migrate=False)
    runtime.start()
    try:
        deadline = time.monotonic() + 10
        while not all(channel.connected for channel in channels):
            if time.monotonic() > deadline:
                raise AssertionError("the channels did not connect within 10 s")
            time.sleep(0.02)
        yield runtime
    finally:
        runtime.stop(drain_seconds=2)
        for channel in channels:
            channel.close()


def topic_posts(server: FakeZulip, containing: str) -> list[StoredMessage]:
    """The bot's messages in the support stream that contain `containing`, oldest first."""
    return [m for m in server.sent_by(BOT, stream=STREAM) if containing in m.content]
