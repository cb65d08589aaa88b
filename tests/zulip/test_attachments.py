"""A customer's files on Zulip (issue 14, inbound): fetched, recorded, uploaded into the case topic.

Through the real path: the fake Zulip over HTTP, the real `zulip` client, the
runtime on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa

from adapters.channel import Outbound, OutboundFile
from adapters.zulip import receive
from adapters.zulip.files import file_lines
from tests.zulip.conftest import ALICE, BOT, CURSOR, ENGINEER, STREAM, RecordingSink
from tests.zulip.markdown_check import HOSTILE, active_markup, render
from tests.zulip.relay_check import parse_relayed
from tests.zulip.test_end_to_end import ZulipDesk, wait_until

#: The smallest PNG: its magic number is what makes it an image, whatever its name says.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)
LINK = re.compile(r"\[(`+[^\n]*?`+)\]\((/user_uploads/[^)\s]+)\)")


def send_with_file(desk: ZulipDesk, text: str, name: str, data: bytes) -> str:
    path = desk.fake.upload(ALICE, name, data)
    desk.fake.post_dm(ALICE, f"{text}\n[{name}]({path})")
    return path


def wait_case_topic(desk: ZulipDesk, containing: str):  # noqa: ANN201
    """The bot's message in case #1's topic that contains `containing`."""
    return wait_until(
        lambda: next(
            (
                m
                for m in desk.fake.sent_by(BOT, stream=STREAM)
                if m.subject.startswith("#1 ") and containing in m.content
            ),
            None,
        ),
        what=f"a message in case 1's topic containing {containing!r}",
    )


def attachments(desk: ZulipDesk) -> list[dict]:
    with desk.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT name, media_type, size, sha256, refused_over, data, uploads FROM incidentattachment")
        )
        return [dict(row._mapping) for row in rows]


def test_a_screenshot_reaches_the_topic_as_a_working_upload(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    send_with_file(desk, "open The dashboard is blank", "screenshot.txt", PNG)  # the name lies
    desk.wait_dm(ALICE, "Incident #1 is open")
    mirrored = wait_case_topic(desk, "wrote:")
    relayed = parse_relayed(mirrored.content)
    [link] = [line for line in relayed.outside if "/user_uploads/" in line]
    label, path = LINK.search(link).groups()  # type: ignore[union-attr]
    assert label == "`screenshot.txt`" and "image/png" in link
    # The bot uploaded its own copy, which an engineer can fetch (they see the message).
    status, body = desk.fake.download(ENGINEER, path)
    assert status == 200 and body == PNG
    [row] = attachments(desk)
    assert row["media_type"] == "image/png" and row["size"] == len(PNG)
    assert row["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert row["data"] is None and path in row["uploads"]  # the bytes go once uploaded


def test_hostile_file_names_stay_inert(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    hostile = "x`` @**all** `` $$x$$ :bomb: evil.com.png"
    send_with_file(desk, "open Names", hostile, PNG)
    mirrored = wait_case_topic(desk, "wrote:")
    [link] = [line for line in parse_relayed(mirrored.content).outside if "/user_uploads/" in line]
    label, path = LINK.search(link).groups()  # type: ignore[union-attr]
    fence = re.match(r"`+", label).group()  # type: ignore[union-attr]
    inside = label[len(fence) : -len(fence)]
    assert "`" * len(fence) not in inside  # the code span cannot be closed early
    assert link.endswith(")") and link.count("/user_uploads/") == 1
    assert inside.strip() == hostile
    assert [kind.split(":")[0] for kind in active_markup(link)] == ["link"]
    assert desk.fake.download(ENGINEER, path)[0] == 200


def _open_with_uploads_over_the_server_limit(desk: ZulipDesk, *names: str) -> None:
    """Alice opens a case with files of 1 MB and more, over the server's own limit (1 MiB, lower
    than deskbot's), which she uploaded while it was higher."""
    desk.fake.realm.max_file_upload_size_mib = 1  # what the channel learns at start
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    big = PNG + b"\0" * (1024 * 1024)
    desk.fake.realm.max_file_upload_size_mib = 25  # so that Alice could upload them
    links = [f"[{name}]({desk.fake.upload(ALICE, name, big)})" for name in names]
    desk.fake.realm.max_file_upload_size_mib = 1
    desk.fake.post_dm(ALICE, "\n".join(["open Too big", *links]))


def test_an_oversized_file_is_cut_off_with_notices(desk: ZulipDesk) -> None:
    _open_with_uploads_over_the_server_limit(desk, "huge.png")
    notice = desk.wait_dm(ALICE, "was not passed on")
    # The customer's file name is shown inert (a name with a dot could be linked as a domain).
    assert '"`huge.png`"' in notice.content and "1.0 MB" in notice.content
    line = wait_case_topic(desk, "was not kept").content
    assert "`huge.png`" in line and "over the 1.0 MB limit" in line
    [row] = attachments(desk)
    assert row["data"] is None and row["sha256"] is None and row["refused_over"] == 1024 * 1024


def test_several_files_not_passed_on_are_told_in_one_answer(desk: ZulipDesk) -> None:
    _open_with_uploads_over_the_server_limit(desk, "one.png", "two.png")
    notice = desk.wait_dm(ALICE, "Not passed on")
    assert notice.content.splitlines() == [
        "Not passed on (the engineers know; please send smaller files or links to them):",
        "— `one.png` (1.0 MB): not passed on, over the limit of 1.0 MB",
        "— `two.png` (1.0 MB): not passed on, over the limit of 1.0 MB",
    ]
    assert not [m for m in desk.dms_to(ALICE) if "was not passed on" in m.content]  # not one answer per file
    assert [row["name"] for row in attachments(desk)] == ["one.png", "two.png"]


def test_status_and_case_list_the_files(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    send_with_file(desk, "open See the screenshot", "shot.png", PNG)
    wait_case_topic(desk, "wrote:")
    desk.fake.post_dm(ALICE, "status 1")
    status = desk.wait_dm(ALICE, "shot.png")
    assert "— you: `shot.png` (image/png" in status.content  # the customer's file name, inert
    desk.fake.post_dm(ENGINEER, "/case 1")
    case = desk.wait_dm(ENGINEER, "shot.png")
    assert hashlib.sha256(PNG).hexdigest()[:12] in case.content


class _Store:
    """A FileStore in memory, for the lines alone."""

    def __init__(self) -> None:
        self.uploads: dict[int, str] = {}

    def data(self, file_id: int) -> bytes | None:
        return PNG

    def uploaded(self, file_id: int, channel: str) -> str | None:
        return self.uploads.get(file_id)

    def record_upload(self, file_id: int, channel: str, where: str) -> None:
        self.uploads[file_id] = where


def test_no_file_name_can_act_in_the_link() -> None:
    files = tuple(OutboundFile(i, name, "image/png", 70) for i, name in enumerate(HOSTILE + ["]" * 3, "x](y)["]))
    store = _Store()
    calls: list[str] = []

    def upload(name: str, data: bytes) -> str:
        calls.append(name)
        return f"/user_uploads/2/ab/xyz{len(calls)}/{name}"

    message = Outbound(1, "zulip", "topic", "", topic="#1 x", files=files)
    lines, unsent = file_lines(message, store, upload, 25 * 1024 * 1024)
    assert unsent == {}
    for line, file in zip(lines.split("\n"), files, strict=True):
        rendered = render(line)
        assert [a.split(":")[0] for a in rendered.active] == ["link"], (file.name, line)
        assert " ".join(file.name.split()).replace("\x1b", "").replace("\x07", "") in rendered.code[0].strip()
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in calls)  # nothing odd in the path
    # A retried row links the same uploads: nothing is uploaded twice.
    assert file_lines(message, store, upload, 25 * 1024 * 1024) == (lines, {}) and len(calls) == len(files)


def test_a_send_retried_after_the_upload_does_not_upload_twice(desk: ZulipDesk) -> None:
    """The upload went through, then posting the message failed (the row is retried later, as after
    a crash between the upload and the commit): the retry links the recorded upload."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    dropped: list[str] = []

    def drop_posts_with_the_file(method: str, path: str, params: dict) -> None:
        if method == "POST" and path == "/messages" and "/user_uploads/" in params.get("content", ""):
            if len(dropped) < 4:  # every try of the first attempt: the row is sent again later
                dropped.append(params["content"])
                raise ConnectionAbortedError("the fake drops this request")

    desk.fake.before_request = drop_posts_with_the_file
    send_with_file(desk, "open Retried", "retry.png", PNG)
    wait_until(lambda: len(dropped) == 4, what="the first attempt to fail")
    wait_until(lambda: retry_is_set(desk), what="the row's retry to be set")  # else the clock moves too soon
    desk.clock.advance(seconds=31)  # the row's retry is due
    mirrored = wait_case_topic(desk, "wrote:")
    bot_id = desk.fake.user(BOT).user_id
    by_bot = [path for path, (uploader, _data) in desk.fake.realm.uploads.items() if uploader == bot_id]
    assert len(by_bot) == 1 and by_bot[0] in mirrored.content
    assert len([m for m in desk.fake.sent_by(BOT, stream=STREAM) if "wrote:" in m.content]) == 1
    assert len(dropped) == 4 and set(dropped) == {mirrored.content}  # the same text each time


def test_a_catch_up_page_hands_its_files_over_before_holding_more(
    fake,
    make_channel,
    run_channel,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    """Memory stays bounded while catching up: once a page's fetched files pass HELD_FILE_BYTES, what
    is fetched is handed over (and stored, with its cursor) before the next file is fetched."""
    monkeypatch.setattr(receive, "HELD_FILE_BYTES", 100)  # two of these PNGs
    sink = RecordingSink()
    sink.set_cursor(CURSOR, "0")  # the first start catches up
    for i in range(3):
        path = fake.upload(ALICE, f"f{i}.png", PNG)
        fake.post_dm(ALICE, f"#1 file {i} [f{i}.png]({path})")
    handed: list[int] = []
    deliver_many = sink.deliver_many
    sink.deliver_many = lambda items, **kw: (handed.append(len(items)), deliver_many(items, **kw))[1]  # type: ignore[method-assign]
    with run_channel(make_channel(), sink):
        sink.wait_count(3)
    assert handed == [2, 1]
    assert [[(f.name, f.media_type, f.data) for f in m.attachments] for m in sink.messages] == [
        [(f"f{i}.png", "image/png", PNG)] for i in range(3)
    ]


def retry_is_set(desk: ZulipDesk) -> bool:
    """Some outbox row failed and waits for its next attempt (its error is recorded)."""
    with desk.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL")).scalar() > 0


def test_files_wait_with_a_draft_and_join_the_incident_it_opens(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    # No incident open: the text is kept as a draft, and the customer asked to reply "open".
    send_with_file(desk, "The export fails, see the screenshot", "export.png", PNG)
    desk.wait_dm(ALICE, 'Reply "open"')
    [waiting] = attachments(desk)
    assert waiting["data"] == PNG and waiting["uploads"] is None
    desk.fake.post_dm(ALICE, "open")
    desk.wait_dm(ALICE, "Incident #1 is open")
    mirrored = wait_case_topic(desk, "/user_uploads/")
    assert "The export fails" in mirrored.content and "`export.png`" in mirrored.content
    path = LINK.search(mirrored.content).group(2)  # type: ignore[union-attr]
    assert desk.fake.download(ENGINEER, path) == (200, PNG)
    desk.fake.post_dm(ALICE, "status 1")
    assert "— you: `export.png` (image/png" in desk.wait_dm(ALICE, "export.png").content


def test_a_new_draft_forgets_the_files_of_the_one_it_replaces(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    send_with_file(desk, "First thought, with a picture", "first.png", PNG)
    desk.wait_dm(ALICE, 'Reply "open"')
    desk.fake.post_dm(ALICE, "Second thought, no picture")
    wait_until(lambda: not attachments(desk), what="the first draft's file forgotten")
    desk.fake.post_dm(ALICE, "open")
    desk.wait_dm(ALICE, "Incident #1 is open")
    mirrored = wait_case_topic(desk, "Second thought")
    assert "first.png" not in mirrored.content and "/user_uploads/" not in mirrored.content
