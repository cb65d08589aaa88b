"""An engineer's files reach a Zulip customer (issue 14, outbound: items 3, 5, 8).

The engineer uploads a file in the case topic and links it in `/reply` (or `/note`);
the bot fetches it with its own credentials, uploads its own copy into the DM to the
customer and links it there. Through the real path: the fake Zulip over HTTP, the
real `zulip` client, the runtime on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.zulip.conftest import ALICE, ENGINEER, STREAM
from tests.zulip.markdown_check import active_markup
from tests.zulip.test_attachments import PNG, retry_is_set
from tests.zulip.test_end_to_end import TOPIC, ZulipDesk, assert_each_message_once, open_case, wait_until

LINK = re.compile(r"\[(`+[^\n]*?`+)\]\((/user_uploads/[^)\s]+)\)")


def reply_with_file(desk: ZulipDesk, command: str, name: str, data: bytes) -> str:
    """The engineer uploads `name` and posts `command` linking it in the case topic; the file's path."""
    path = desk.fake.upload(ENGINEER, name, data)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"{command} [{name}]({path})")
    return path


def uploads(desk: ZulipDesk) -> int:
    return len(desk.fake.requests_to("POST", "/user_uploads"))


def files_recorded(desk: ZulipDesk) -> list[dict]:
    with desk.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, message_id, size, sha256, data, uploads FROM incidentattachment"))
        return [dict(row._mapping) for row in rows]


def test_an_engineers_image_reaches_the_customer_who_can_fetch_it(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    engineers_path = reply_with_file(desk, "/reply Here is what I see:", "diagram.png", PNG)
    dm = desk.wait_dm(ALICE, "[#1] Here is what I see:")
    # The engineer's Zulip link left the words; the bot's own upload is linked below them.
    assert "diagram.png" in dm.content.split("\n")[0] and engineers_path not in dm.content
    [(label, path)] = LINK.findall(dm.content)
    assert label == "`diagram.png`" and path != engineers_path and "image/png" in dm.content
    assert desk.fake.download(ALICE, path) == (200, PNG)  # the customer can fetch it: same bytes
    assert desk.fake.download(ALICE, engineers_path)[0] == 404  # the engineer's own upload stays theirs
    [row] = files_recorded(desk)
    assert row["message_id"].startswith("out:") and row["data"] is None and path in row["uploads"]
    # Engineers see it on the case; so does the customer, in status.
    desk.fake.post_dm(ENGINEER, "/case 1")
    assert "with a reply to the customer" in desk.wait_dm(ENGINEER, "diagram.png").content
    desk.fake.post_dm(ALICE, "status 1")
    desk.wait_dm(ALICE, "— support: diagram.png (image/png")
    assert uploads(desk) == 1


def test_a_note_keeps_the_file_on_the_case_and_away_from_the_customer(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    before = len(desk.dms_to(ALICE))
    reply_with_file(desk, "/note the customer's config, for later", "internal.png", PNG)
    assert "with 1 file" in desk.wait_topic("Note saved on #1").content
    [row] = files_recorded(desk)
    assert row["message_id"].startswith("note:") and row["data"] is None and row["size"] == len(PNG)
    desk.fake.post_dm(ENGINEER, "/case 1")
    assert "on an internal note" in desk.wait_dm(ENGINEER, "internal.png").content
    desk.fake.post_dm(ALICE, "status 1")
    status = desk.wait_dm(ALICE, "Incident #1:")
    assert "internal.png" not in status.content
    assert not any("internal.png" in m.content for m in desk.dms_to(ALICE)[before:])
    assert uploads(desk) == 0  # nothing was uploaded for a note


def test_an_oversized_file_from_the_engineer_is_refused_with_both_notices(desk: ZulipDesk) -> None:
    desk.fake.realm.max_file_upload_size_mib = 1  # the server's limit, read at start, is below the file
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    big = PNG + b"\0" * (1024 * 1024)
    desk.fake.realm.max_file_upload_size_mib = 25  # so that the engineer could upload it
    path = desk.fake.upload(ENGINEER, "core-dump.png", big)
    desk.fake.realm.max_file_upload_size_mib = 1
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/reply The dump: [core-dump.png]({path})")
    dm = desk.wait_dm(ALICE, "[#1] The dump:")
    assert "- `core-dump.png` (1.0 MB): not sent: it is over the limit of 1.0 MB here. The engineer knows." in (
        dm.content
    )
    assert "/user_uploads/" not in dm.content
    notice = desk.wait_topic("Not sent to the customer").content
    assert "`core-dump.png`" in notice and "over the 1.0 MB limit" in notice
    [row] = files_recorded(desk)
    assert row["data"] is None and row["sha256"] is None
    assert uploads(desk) == 0


def test_hostile_file_names_stay_inert_in_the_topic_and_the_dm(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.fake.realm.max_file_upload_size_mib = 1  # read at start: the bot fetches at most 1 MB
    desk.start()
    desk.fake.realm.max_file_upload_size_mib = 25
    open_case(desk)
    hostile = "x`` @**all** `` $$x$$ :bomb: evil.com.png"
    path = desk.fake.upload(ENGINEER, "evil.png", PNG)
    # The link text is the name the engineer's client wrote; the bot shows it as a name only.
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/reply Look [{hostile}]({path})")
    dm = desk.wait_dm(ALICE, "/user_uploads/")
    [line] = [line for line in dm.content.split("\n") if "/user_uploads/" in line]
    label, _path = LINK.search(line).groups()  # type: ignore[union-attr]
    fence = re.match(r"`+", label).group()  # type: ignore[union-attr]
    assert "`" * len(fence) not in label[len(fence) : -len(fence)]  # the code span cannot be closed early
    assert [kind.split(":")[0] for kind in active_markup(line)] == ["link"]
    # A hostile name that cannot be sent is named inert too, in the DM and in the topic.
    big = desk.fake.upload(ENGINEER, "big.png", PNG + b"\0" * (1024 * 1024))
    desk.fake.realm.max_file_upload_size_mib = 1
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/reply And [{hostile}]({big})")
    refused = desk.wait_dm(ALICE, "not sent:")
    [line] = [line for line in refused.content.split("\n") if "not sent:" in line]
    assert active_markup(line) == []
    notice = desk.wait_topic("Not sent to the customer").content
    assert active_markup(notice) == []


def test_a_send_failing_after_the_upload_is_retried_without_uploading_or_posting_twice(desk: ZulipDesk) -> None:
    """The DM's file is uploaded, then every try of posting the DM fails (as after a crash between
    the upload and the commit): the row is retried later and links the upload recorded."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    dropped: list[str] = []

    def drop_dms_with_the_file(method: str, path: str, params: dict) -> None:
        content = params.get("content", "")
        if method == "POST" and path == "/messages" and "[#1] The fix" in content and len(dropped) < 4:
            dropped.append(content)  # every try of the first attempt
            raise ConnectionAbortedError("the fake drops this request")

    desk.fake.before_request = drop_dms_with_the_file
    reply_with_file(desk, "/reply The fix:", "fix.png", PNG)
    wait_until(lambda: len(dropped) == 4, what="the first attempt to fail")
    wait_until(lambda: retry_is_set(desk), what="the row's retry to be set")  # else the clock moves too soon
    desk.clock.advance(seconds=31)  # the row's retry is due
    dm = desk.wait_dm(ALICE, "[#1] The fix:")
    [(_label, path)] = LINK.findall(dm.content)
    assert desk.fake.download(ALICE, path) == (200, PNG)
    assert set(dropped) == {dm.content}  # the same text each time: the same upload linked
    assert len([m for m in desk.dms_to(ALICE) if "[#1] The fix:" in m.content]) == 1
    assert uploads(desk) == 1
    assert_each_message_once(desk.engine, desk.fake)


def test_a_file_the_bot_cannot_fetch_is_named_back_to_the_engineer(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    gone = "/user_uploads/2/ab/deleted00/gone.png"  # no such upload: Zulip answers 404
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/reply See [gone.png]({gone}) and [x.png]({gone}x)")
    told = desk.wait_topic("Could not fetch").content
    assert "- `gone.png`: `HTTP 404`\n- `x.png`: `HTTP 404`" in told and active_markup(told) == []
    dm = desk.wait_dm(ALICE, "[#1] See gone.png and x.png")
    assert "/user_uploads/" not in dm.content
    assert files_recorded(desk) == [] and uploads(desk) == 0


def test_a_file_zulip_refuses_only_when_sent_is_named_to_both_sides(desk: ZulipDesk) -> None:
    """Zulip refuses the upload of the customer's copy (its limit lowered after start): the DM goes
    without it and says so in the customer's words; the engineers are told in the case topic."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    path = desk.fake.upload(ENGINEER, "diagram.png", PNG)
    desk.fake.realm.max_file_upload_size_mib = 0  # no upload is taken any longer
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/reply Like this: [diagram.png]({path})")
    dm = desk.wait_dm(ALICE, "[#1] Like this:")
    assert (
        f"- `diagram.png` ({len(PNG)} bytes): not sent: it could not be delivered here after all. The engineer knows."
        in dm.content
    )
    assert "/user_uploads/" not in dm.content and active_markup(dm.content) == []
    notice = desk.wait_topic("Not sent to the customer on zulip after all").content
    assert "`diagram.png`" in notice and "`Zulip refused the upload: File is larger than" in notice
    assert active_markup(notice) == []
    assert uploads(desk) == 1
