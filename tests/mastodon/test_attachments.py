"""A customer's Mastodon media (issue 14, inbound): fetched from their URL, recorded, uploaded into the
case topic on Zulip. Both fakes over HTTP, the real `Mastodon.py` and `zulip` clients, the runtime."""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa

from bot.runtime import Runtime
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip
from tests.zulip import conftest as zulip_side

from .conftest import PNG, in_topic, wait_until
from .runtime_bot import ALICE


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


def test_a_medium_over_zulips_upload_limit_is_not_kept_and_the_customer_is_told(
    fake: FakeMastodon,
    zulip: FakeZulip,
    start_desk,
    engine: sa.Engine,  # noqa: ANN001
) -> None:
    # Within deskbot's limit (3 MB) but over the case topic's: Zulip takes 1 MiB here.
    zulip.realm.max_file_upload_size_mib = 1
    start_desk(max_attachment_mb="3")
    big = fake.media("capture.png", PNG + b"\0" * (2 * 1024 * 1024))
    fake.post_status(ALICE, "@deskbot open Here is the capture", media=[big])
    line = in_topic(zulip, "was not kept")
    assert "`capture.png`" in line.content and "over the 1.0 MB limit" in line.content
    wait_until(lambda: any("was not passed on" in p.source_text for p in fake.posted_by("deskbot")), 10)
    told = next(p.source_text for p in fake.posted_by("deskbot") if "was not passed on" in p.source_text)
    assert "capture.png" in told and "1.0 MB" in told
    with engine.connect() as conn:
        [(data, refused, sha256)] = conn.execute(sa.text("SELECT data, refused_over, sha256 FROM incidentattachment"))
    assert data is None and refused == 1024 * 1024 and sha256 is not None
    assert not zulip.realm.uploads  # nothing was uploaded for it
