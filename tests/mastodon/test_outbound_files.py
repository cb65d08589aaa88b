"""An engineer's files reach a Mastodon customer as media (issue 14, outbound: items 3, 5, 7, 8).

The engineer uploads files in the case topic on Zulip and links them in `/reply`; the
bot fetches them, uploads each as a medium (`POST /api/v2/media`, awaiting the ones
the instance processes), and posts them on the thread of direct statuses, as many a
status as the instance takes. What Mastodon cannot carry is named to both sides.
Both fakes over HTTP, the real `Mastodon.py` and `zulip` clients, the runtime on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa

from adapters.channel import Outbound, Sent
from adapters.mastodon import MastodonChannel
from bot.runtime import Runtime
from storage.files import StoredFiles
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.mastodon.model import Posted
from tests.fakes.zulip import FakeZulip
from tests.zulip import conftest as zulip_side

from .conftest import BOT_TOKEN, PNG, in_topic, wait_until, waiting_file
from .runtime_bot import ALICE

#: An MP4's first bytes: what makes `filetype` call it video/mp4 (the fake processes video: 202).
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\0" * 200


def open_case(fake: FakeMastodon, zulip: FakeZulip) -> str:
    """Alice opens case #1 from Mastodon; the case topic's name."""
    fake.post_status(ALICE, "@deskbot open The dashboard is blank")
    return in_topic(zulip, "wrote:").subject


def reply(zulip: FakeZulip, topic: str, text: str, files: list[tuple[str, bytes]]) -> None:
    """The engineer uploads `files` and posts `text` linking them in the case topic."""
    links = " ".join(f"[{name}]({zulip.upload(zulip_side.ENGINEER, name, data)})" for name, data in files)
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, f"{text} {links}")


def thread(fake: FakeMastodon, containing: str, parts: int = 1) -> list[Posted]:
    """The bot's statuses from the first one containing `containing` on, once there are `parts` of them."""

    def found() -> list[Posted] | None:
        posted = fake.posted_by("deskbot")
        first = next((i for i, p in enumerate(posted) if containing in p.source_text), None)
        return posted[first : first + parts] if first is not None and len(posted) >= first + parts else None

    return wait_until(found, 15)


def fetched(url: str) -> bytes:
    """What the customer's client gets from a medium's URL."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    return response.content


def media_uploads(fake: FakeMastodon) -> int:
    return fake.stats.count("POST /api/v2/media")


def test_an_engineers_image_reaches_the_customer_as_a_medium(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    topic = open_case(fake, zulip)
    reply(zulip, topic, "/reply Here is what I see:", [("diagram.png", PNG)])
    [status] = thread(fake, "[#1] Here is what I see: diagram.png")
    assert "/user_uploads/" not in status.source_text  # the Zulip link left the words
    [medium] = status.status["media_attachments"]
    assert medium["type"] == "image" and medium["description"] == "diagram.png"
    assert fetched(medium["url"]) == PNG  # the customer gets the same bytes
    assert ALICE in status.recipients and status.status["visibility"] == "direct"
    assert media_uploads(fake) == 1
    with engine.connect() as conn:
        [(message_id, data, uploads)] = conn.execute(
            sa.text("SELECT message_id, data, uploads FROM incidentattachment")
        )
    assert message_id.startswith("out:") and data is None and medium["id"] in uploads


def test_a_log_file_is_refused_with_both_notices(fake: FakeMastodon, zulip: FakeZulip, desk: Runtime) -> None:
    topic = open_case(fake, zulip)
    log = b"2026-12-02 10:00:01 ERROR disk full\n" * 20
    reply(zulip, topic, "/reply The log and a picture:", [("server.log", log), ("diagram.png", PNG)])
    [status] = thread(fake, "[#1] The log and a picture:")
    assert (
        f'- "server.log" ({len(log)} bytes): not sent: files of this kind cannot be sent here. The engineer knows.'
        in status.source_text
    )
    assert [m["description"] for m in status.status["media_attachments"]] == ["diagram.png"]
    notice = in_topic(zulip, "Not sent to the customer on mastodon").content
    assert "`server.log`" in notice and "Mastodon takes images, video and audio only, not text/plain" in notice
    assert "diagram.png" not in notice
    assert media_uploads(fake) == 1  # the log was never offered to Mastodon


def test_a_portuguese_customer_is_told_in_portuguese(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customer SET lang = 'pt'"))
    topic = open_case(fake, zulip)
    reply(zulip, topic, "/reply Veja o registo", [("server.log", b"plain text\n")])
    [status] = thread(fake, "Veja o registo")
    assert "não enviado: por aqui não é possível enviar ficheiros deste tipo. O engenheiro já sabe." in (
        status.source_text
    )


def test_an_oversized_file_from_the_engineer_is_refused_with_both_notices(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime
) -> None:
    topic = open_case(fake, zulip)
    big = PNG + b"\0" * (1024 * 1024)  # over DESKBOT_MAX_ATTACHMENT_MB=1: the download is cut off
    reply(zulip, topic, "/reply The dump:", [("dump.png", big)])
    [status] = thread(fake, "[#1] The dump:")
    assert '- "dump.png" (' in status.source_text
    assert "not sent: it is over the limit of 1.0 MB here. The engineer knows." in status.source_text
    assert status.status["media_attachments"] == []
    notice = in_topic(zulip, "Not sent to the customer on mastodon").content
    assert "`dump.png`" in notice and "over the 1.0 MB limit" in notice
    assert media_uploads(fake) == 0


def test_a_file_over_the_instances_limit_is_refused_with_both_notices(
    fake: FakeMastodon, zulip: FakeZulip, start_desk: Callable[..., Runtime]
) -> None:
    fake.image_size_limit = 1000  # the instance's own limit, read at start, is below our 1 MB
    start_desk()
    topic = open_case(fake, zulip)
    reply(zulip, topic, "/reply Big picture:", [("photo.png", PNG + b"\0" * 2000)])
    [status] = thread(fake, "[#1] Big picture:")
    assert "not sent: it is over the limit of 1000 bytes here. The engineer knows." in status.source_text
    notice = in_topic(zulip, "Not sent to the customer on mastodon").content
    assert "over the instance's 1000 bytes limit for images" in notice
    assert media_uploads(fake) == 0


def test_five_images_go_on_two_statuses(fake: FakeMastodon, zulip: FakeZulip, desk: Runtime) -> None:
    topic = open_case(fake, zulip)
    images = [(f"shot{i}.png", PNG + bytes([i])) for i in range(5)]
    reply(zulip, topic, "/reply Five screens:", images)
    first, second = thread(fake, "[#1] Five screens:", parts=2)
    assert [m["description"] for m in first.status["media_attachments"]] == [f"shot{i}.png" for i in range(4)]
    assert [m["description"] for m in second.status["media_attachments"]] == ["shot4.png"]
    assert second.status["in_reply_to_id"] == first.id and ALICE in second.recipients
    # Numbered out of the whole thread: the text's part and the part of media alone.
    assert first.source_text.endswith(" (1/2)") and second.source_text.endswith(" 📎 (2/2)")
    assert [fetched(m["url"]) for p in (first, second) for m in p.status["media_attachments"]] == [
        data for _name, data in images
    ]
    assert media_uploads(fake) == 5


def test_a_video_still_processing_is_awaited(fake: FakeMastodon, zulip: FakeZulip, desk: Runtime) -> None:
    fake.media_processing = 0.5
    topic = open_case(fake, zulip)
    reply(zulip, topic, "/reply A recording:", [("repro.mp4", MP4), ("before.png", PNG)])
    first, second = thread(fake, "[#1] A recording:", parts=2)
    # Mastodon takes no video beside other media: the video goes on its own, then the image.
    [video] = first.status["media_attachments"]
    assert video["type"] == "video" and video["url"] and fetched(video["url"]) == MP4
    assert [m["type"] for m in second.status["media_attachments"]] == ["image"]
    assert fake.stats.count("GET /api/v1/media/:id") >= 2  # looked until it was processed
    # No status was refused for a medium still processing (Mastodon's 422 "not finished processing").
    assert [s for method, path, s in fake.stats.log if method == "POST" and "/statuses" in path and s >= 400] == []


def test_a_send_failing_after_the_upload_is_retried_without_uploading_or_posting_twice(
    fake: FakeMastodon,
    zulip: FakeZulip,
    desk: Runtime,
    clock,  # noqa: ANN001
) -> None:
    topic = open_case(fake, zulip)
    wait_until(lambda: any("Incident #1 is open" in p.source_text for p in fake.posted_by("deskbot")))
    # Every try of the first attempt to post fails after the medium was uploaded; on the next
    # attempt Mastodon takes the status but the answer is lost (a crash before the commit).
    fake.fail_next(4, 503, method="POST", path="/api/v1/statuses")
    fake.drop_next(1, method="POST", path="/api/v1/statuses", after_handling=True)
    reply(zulip, topic, "/reply The fix:", [("fix.png", PNG)])
    wait_until(lambda: fake.stats.by_status[503] >= 4, 15)
    wait_until(lambda: _retry_set(desk), 15)  # else the clock could move before the retry is set from it
    clock.advance(seconds=31)  # the row's retry is due
    [status] = thread(fake, "[#1] The fix:")
    wait_until(lambda: _all_sent(desk), 15)
    assert len([p for p in fake.posted_by("deskbot") if "[#1] The fix:" in p.source_text]) == 1
    assert media_uploads(fake) == 1
    [medium] = status.status["media_attachments"]
    assert fetched(medium["url"]) == PNG


def test_hostile_file_names_reach_no_one(fake: FakeMastodon, zulip: FakeZulip, desk: Runtime) -> None:
    fake.add_account("carol@evil.example")
    topic = open_case(fake, zulip)
    hostile = "@carol@evil.example <b>x</b> :bomb:.log"
    reply(zulip, topic, "/reply Names:", [(hostile, b"text\n"), ("@carol@evil.example.png", PNG)])
    [status] = thread(fake, "[#1] Names:")
    assert [m["acct"] for m in status.status["mentions"]] == [ALICE]
    assert fake.inbox("carol@evil.example") == []
    [medium] = status.status["media_attachments"]
    assert medium["description"] == "@carol@evil.example.png"  # a description mentions no one


def _retry_set(desk: Runtime) -> bool:
    with desk.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL")).scalar() > 0


def _all_sent(desk: Runtime) -> bool:
    with desk.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM outbox WHERE state != 'sent'")).scalar() == 0


def test_a_medium_the_instance_refuses_only_when_sent_does_not_stop_the_reply(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime
) -> None:
    topic = open_case(fake, zulip)
    fake.image_size_limit = 100  # lowered after the bot read the instance's limits
    reply(zulip, topic, "/reply Two pictures:", [("big.png", PNG + b"\0" * 200), ("small.png", PNG)])
    [status] = thread(fake, "[#1] Two pictures:")
    assert [m["description"] for m in status.status["media_attachments"]] == ["small.png"]
    assert media_uploads(fake) == 2
    # Both sides are told: the customer in the status, the engineers in the case topic.
    big = len(PNG) + 200
    assert f'- "big.png" ({big} bytes): not sent: it could not be delivered here after all. The engineer knows.' in (
        status.source_text
    )
    assert "small.png" not in status.source_text.split("Two pictures:")[1].split("\n", 1)[1]
    notice = in_topic(zulip, "Not sent to the customer on mastodon after all").content
    assert f"`big.png` ({big} bytes): `Mastodon refused the upload:" in notice and "small.png" not in notice


def test_an_upload_asks_nothing_of_the_instance_endpoints(fake: FakeMastodon, zulip: FakeZulip, desk: Runtime) -> None:
    """Mastodon.py's `media_post` checks the server's version first, and when the instance
    endpoint fails it asks again from within itself until Python's recursion limit: about a
    thousand requests in a burst, then a RecursionError. The version read at start is given
    to the client instead, so an upload needs nothing but the upload."""
    topic = open_case(fake, zulip)
    asked = fake.stats.count("GET /api/v1/instance") + fake.stats.count("GET /api/v2/instance")
    fake.fail_next(10_000, 503, method="GET", path="/api/v1/instance")
    fake.fail_next(10_000, 503, method="GET", path="/api/v2/instance")
    reply(zulip, topic, "/reply The diagram:", [("diagram.png", PNG)])
    [status] = thread(fake, "[#1] The diagram:")
    assert [m["description"] for m in status.status["media_attachments"]] == ["diagram.png"]
    assert fake.stats.count("GET /api/v1/instance") + fake.stats.count("GET /api/v2/instance") == asked


def test_a_token_without_write_media_sends_the_text_and_names_the_scope(
    fake: FakeMastodon, zulip: FakeZulip, start_desk: Callable[..., Runtime]
) -> None:
    """The scopes the guide once listed (no `write:media`): the bot starts and answers, and the
    first file an engineer sends is refused with 403; the reply still goes, and the engineers
    read which scope the token lacks."""
    fake.set_scopes(BOT_TOKEN, "read write:statuses write:notifications")
    start_desk()
    topic = open_case(fake, zulip)
    reply(zulip, topic, "/reply The diagram:", [("diagram.png", PNG)])
    [status] = thread(fake, "[#1] The diagram:")
    assert status.status["media_attachments"] == [] and fake.uploads == {}
    assert '- "diagram.png"' in status.source_text and "not sent" in status.source_text
    notice = in_topic(zulip, "Not sent to the customer on mastodon after all").content
    assert "`Mastodon refused the upload: HTTP 403: This action is outside the authorized scopes" in notice
    assert "(the access token needs the write:media scope)" in notice


def test_a_medium_refused_when_sent_is_told_in_portuguese(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customer SET lang = 'pt'"))
    topic = open_case(fake, zulip)
    fake.image_size_limit = 100  # lowered after the bot read the instance's limits
    reply(zulip, topic, "/reply Veja a imagem", [("big.png", PNG + b"\0" * 200)])
    [status] = thread(fake, "Veja a imagem")
    assert "não enviado: afinal não foi possível entregá-lo por aqui. O engenheiro já sabe." in status.source_text
    assert status.status["media_attachments"] == []
    in_topic(zulip, "Not sent to the customer on mastodon after all")


@pytest.mark.parametrize("sentence", ["given", "from an older row"])
def test_a_file_whose_bytes_are_gone_is_named_and_reported(
    fake: FakeMastodon,
    make_channel: Callable[..., MastodonChannel],
    engine: sa.Engine,
    customer: int,
    sentence: str,
) -> None:
    """The store lost a file's bytes before the row went: the status names it instead (with the
    row's sentence; English words for a row written before rows carried one), and `send` reports
    it so that the engineers are told (bot/dispatcher.py)."""
    file = waiting_file(engine, customer)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE incidentattachment SET data = NULL"))
    unsent = "not sent: it could not be delivered here after all. The engineer knows."
    file = dataclasses.replace(file, unsent=unsent if sentence == "given" else None)
    conversation = fake.post_status(ALICE, "@deskbot open Backups fail")["id"]
    row = Outbound(7, "mastodon", "direct", "[#1] The fix:", recipient=ALICE, conversation=conversation, files=(file,))
    channel = make_channel()
    channel.start()
    channel.files = StoredFiles(engine)
    try:
        ids = channel.send(row)
    finally:
        channel.close()
    [status] = [p for p in fake.posted_by("deskbot") if "[#1] The fix:" in p.source_text]
    assert ids == [status.id] and status.status["media_attachments"] == []
    assert isinstance(ids, Sent) and ids.unsent_files == {file.id: "its bytes are no longer stored"}
    said = unsent if sentence == "given" else "not sent"
    assert status.source_text.endswith(f'- "fix.png" ({len(PNG)} bytes): {said}')
    assert media_uploads(fake) == 0


class _Crash(BaseException):
    """The process dies: not an Exception, so nothing on the way catches it."""


@pytest.mark.parametrize("dies", ["before the status", "after the status"])
def test_killed_midway_and_restarted_uploads_and_posts_once(
    fake: FakeMastodon,
    make_channel: Callable[..., MastodonChannel],
    engine: sa.Engine,
    customer: int,
    dies: str,
) -> None:
    file = waiting_file(engine, customer)
    conversation = fake.post_status(ALICE, "@deskbot open Backups fail")["id"]
    row = Outbound(7, "mastodon", "direct", "[#1] The fix:", recipient=ALICE, conversation=conversation, files=(file,))
    first = make_channel()
    first.start()
    first.files = StoredFiles(engine)
    api = first._transport.send  # type: ignore[union-attr]
    post = api.status_post

    def dying_post(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if dies == "after the status":
            post(*args, **kwargs)
        raise _Crash()

    api.status_post = dying_post  # the process dies around the post
    with pytest.raises(_Crash):
        first.send(row)
    first.close()
    assert media_uploads(fake) == 1
    second = make_channel()  # the process after the restart
    second.start()
    second.files = StoredFiles(engine)
    ids = second.send(dataclasses.replace(row, attempt=2))
    assert media_uploads(fake) == 1  # the media id recorded by the first process was re-used
    [status] = [p for p in fake.posted_by("deskbot") if "[#1] The fix:" in p.source_text]
    assert ids == [status.id]
    [medium] = status.status["media_attachments"]
    assert medium["description"] == "fix.png" and fetched(medium["url"]) == PNG
