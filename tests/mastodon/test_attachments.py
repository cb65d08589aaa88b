"""A customer's Mastodon media (issue 14, inbound): fetched from their URL, recorded, uploaded into the
case topic on Zulip. Both fakes over HTTP, the real `Mastodon.py` and `zulip` clients, the runtime."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from adapters.mastodon import MastodonChannel
from adapters.zulip import ZulipChannel
from bot.runtime import Runtime
from tests.desk import make_settings
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip
from tests.zulip import conftest as zulip_side

from .conftest import BOT_TOKEN, FAST, wait_until
from .runtime_bot import ALICE

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@pytest.fixture
def zulip() -> Iterator[FakeZulip]:
    with FakeZulip(heartbeat=0.4, queue_idle_timeout=30.0) as server:
        zulip_side.populate(server)
        yield server


@pytest.fixture
def desk(fake: FakeMastodon, zulip: FakeZulip, engine, db_url, clock, customer) -> Iterator[Runtime]:  # noqa: ANN001
    settings = make_settings(
        db_url,
        DESKBOT_ENGINEERS=zulip_side.ENGINEER,
        DESKBOT_ZULIP_STREAM=zulip_side.STREAM,
        DESKBOT_MAX_ATTACHMENT_MB="1",
    )
    channels = [
        ZulipChannel(
            site=zulip.url,
            email=zulip_side.BOT,
            api_key=zulip_side.BOT_KEY,
            stream=zulip_side.STREAM,
            tuning=zulip_side.FAST,
        ),
        MastodonChannel(fake.url, BOT_TOKEN, tuning=FAST),
    ]
    runtime = Runtime(settings, channels, engine=engine, clock=clock, migrate=False)
    runtime.start()
    # Mentions written before the channel's first start are old ones: write only once it receives.
    wait_until(lambda: all(channel.connected for channel in channels), 10)
    try:
        yield runtime
    finally:
        runtime.stop(drain_seconds=2)
        for channel in channels:
            channel.close()


def in_topic(zulip: FakeZulip, containing: str):  # noqa: ANN201
    return wait_until(
        lambda: next(
            (m for m in zulip.sent_by(zulip_side.BOT, stream=zulip_side.STREAM) if containing in m.content), None
        ),
        15,
    )


def test_a_screenshot_from_mastodon_reaches_the_topic_as_a_working_upload(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    medium = fake.media("a1b2c3.jpeg", PNG, description="my screen")  # the name and the type lie
    fake.post_status(ALICE, "@deskbot open The dashboard is blank", media=[medium])
    mirrored = in_topic(zulip, "/user_uploads/")
    path = re.search(r"\]\((/user_uploads/[^)\s]+)\)", mirrored.content).group(1)  # type: ignore[union-attr]
    assert "`a1b2c3.jpeg`" in mirrored.content and "image/png" in mirrored.content
    assert zulip.download(zulip_side.ENGINEER, path) == (200, PNG)
    with engine.connect() as conn:
        [(media_type, sha256)] = conn.execute(sa.text("SELECT media_type, sha256 FROM incidentattachment"))
    assert media_type == "image/png" and sha256 == hashlib.sha256(PNG).hexdigest()


def test_an_endless_medium_is_cut_off_with_both_notices(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    endless = fake.media("stream.bin", None)
    fake.post_status(ALICE, "@deskbot open Look at this", media=[endless])
    line = in_topic(zulip, "was not kept")
    assert "`stream.bin`" in line.content and "over the 1.0 MB limit" in line.content
    wait_until(lambda: any("was not passed on" in p.source_text for p in fake.posted_by("deskbot")), 10)
    with engine.connect() as conn:
        [(size, data, refused)] = conn.execute(sa.text("SELECT size, data, refused_over FROM incidentattachment"))
    assert data is None and refused == 1024 * 1024 and 1024 * 1024 < size <= 1024 * 1024 + 65536
