"""Files both ways between an email customer and the engineers on Zulip (issue 14, items 1-3 and 8):
the whole real path, as `deskbot run` has it — the runtime with the Zulip channel (the fake Zulip over
HTTP, the real `zulip` client) and the email channel (the tests' Dovecot and submission server)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from adapters.channel import Outbound
from adapters.email import EmailChannel, receive
from bot.runtime import Runtime
from bot.services import credits as credit_service
from bot.services import customers
from storage.db import transaction
from storage.files import StoredFiles
from tests.fakes.zulip import FakeZulip, StoredMessage
from tests.mail.mailbox import Mailbox
from tests.mail.servers import SUPPORT_ADDRESS, MailServers
from tests.mastodon.conftest import PNG, waiting_file
from tests.zulip import conftest as zulip_side
from tests.zulip.support_desk import running_desk, support_settings, topic_posts, zulip_with_support_stream

from .channel_bot import FAST, email_settings, from_bot, rows_waiting, wait_until

#: A file name that would mention everyone, were it markup.
SHOUTING = "@**all** *now*.txt"
UPLOAD = re.compile(r"\]\((/user_uploads/[^)\s]+)\)")


@pytest.fixture
def zulip() -> Iterator[FakeZulip]:
    with zulip_with_support_stream() as server:
        yield server


@pytest.fixture
def desk(mail: MailServers, zulip: FakeZulip, engine, db_url, clock) -> Iterator[Runtime]:  # noqa: ANN001
    now = clock()
    with transaction(engine) as session:
        customer, _code = customers.create_customer(session, "Ana's company", mail.customers[0].address, "en", now)
        credit_service.grant_credits(session, customer, 3, now.date(), "test", now, months=12)
    settings = support_settings(db_url, DESKBOT_MAX_ATTACHMENT_MB="1")
    email = EmailChannel(email_settings(mail), tuning=FAST)
    with running_desk(zulip, settings, email, engine=engine, clock=clock) as runtime:
        yield runtime


def in_topic(zulip: FakeZulip, containing: str) -> StoredMessage:
    return wait_until(
        lambda: next(iter(topic_posts(zulip, containing)), None),
        15,
        f"a message in the support stream containing {containing!r}",
    )


def case_opened_by_mail(mail: MailServers, zulip: FakeZulip) -> tuple[Mailbox, str]:
    """The first customer opens a case by mail ("Jam"): their mailbox, once answered, and its topic."""
    ana = mail.customers[0]
    ana.send("Jam", "open\nThe printer jams.")
    topic = in_topic(zulip, "wrote:").subject
    ana.wait_for(from_bot)
    return ana, topic


def test_a_mailed_screenshot_reaches_the_case_topic_as_a_working_upload(
    mail: MailServers, zulip: FakeZulip, desk: Runtime
) -> None:
    ana = mail.customers[0]
    ana.send(
        "Blank dashboard",
        "open\nThe dashboard is blank, see the screenshot.",
        attachments=[("shot.jpg", PNG, "image/jpeg")],
    )
    mirrored = in_topic(zulip, "/user_uploads/")
    assert "`shot.jpg`" in mirrored.content and "image/png" in mirrored.content  # sniffed, not the mail's word
    assert "The dashboard is blank" in mirrored.content
    path = UPLOAD.search(mirrored.content).group(1)  # type: ignore[union-attr]
    assert zulip.download(zulip_side.ENGINEER, path) == (200, PNG)


def test_an_engineers_image_reaches_the_email_customer_as_an_attachment(
    mail: MailServers, zulip: FakeZulip, desk: Runtime
) -> None:
    ana = mail.customers[0]
    ana.send("Wiring", "open\nHow should the cables go?")
    topic = in_topic(zulip, "wrote:").subject
    ana.wait_for(from_bot)
    path = zulip.upload(zulip_side.ENGINEER, "diagram.png", PNG)
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, f"/reply Like this: [diagram.png]({path})")
    (reply,) = ana.wait_for(lambda m: from_bot(m) and "Like this" in m.get_body(("plain",)).get_content())
    (attachment,) = list(reply.iter_attachments())
    assert attachment.get_filename() == "diagram.png" and attachment.get_content_type() == "image/png"
    assert hashlib.sha256(attachment.get_content()).digest() == hashlib.sha256(PNG).digest()
    assert "/user_uploads/" not in reply.get_body(("plain",)).get_content()  # a Zulip link means nothing in a mail


def test_an_engineers_zulip_markup_reaches_the_email_customer_as_plain_text(
    mail: MailServers, zulip: FakeZulip, desk: Runtime
) -> None:
    ana, topic = case_opened_by_mail(mail, zulip)
    words = (
        "Fixed :tada: thanks to @**Erin Engineer|9**, see [the guide](https://docs.example/jam)"
        f" as in #**support>#7 Beta: paper jam** and {zulip.url}/#narrow/channel/1-support/topic/x"
    )
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, "/reply " + words)
    (reply,) = ana.wait_for(lambda m: from_bot(m) and "Fixed" in m.get_body(("plain",)).get_content())
    body = reply.get_body(("plain",)).get_content()
    assert "[#1] Fixed 🎉 thanks to Erin Engineer, see the guide (https://docs.example/jam) as in and" in body
    assert "Beta" not in body and "#narrow" not in body and "**" not in body
    # The topic shows what the engineer wrote.
    assert in_topic(zulip, "#**support>#7 Beta: paper jam**")


def test_a_colleague_refused_for_now_gets_the_engineers_file_too(
    mail: MailServers, zulip: FakeZulip, desk: Runtime, clock
) -> None:  # noqa: ANN001
    ana, bob = mail.customers[0], "bob.away@customer.example"
    bob_box = mail.add_user(bob, "Bob Away")
    time.sleep(1.1)  # Dovecot rereads its users file when its modification time changes, to the second
    mail.smtp.refuse_recipient(bob, 450, "4.7.1 greylisted, try again later")
    ana.send("Wiring", "open\nHow should the cables go?", cc=[bob])
    topic = in_topic(zulip, "wrote:").subject
    ana.wait_for(from_bot)
    path = zulip.upload(zulip_side.ENGINEER, "diagram.png", PNG)
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, f"/reply Like this: [diagram.png]({path})")
    ana.wait_for(lambda m: from_bot(m) and "Like this" in m.get_body(("plain",)).get_content())
    wait_until(lambda: rows_waiting(desk.engine, bob) == 2, 10, "Bob's rows for both answers")
    # The greylisting lets Bob's mail in now: the next retry brings him both answers, the file attached.
    mail.smtp.accept_recipient(bob)
    clock.advance(seconds=91)
    (reply,) = bob_box.wait_for(lambda m: from_bot(m) and "Like this" in m.get_body(("plain",)).get_content())
    (attachment,) = list(reply.iter_attachments())
    assert attachment.get_filename() == "diagram.png"
    assert hashlib.sha256(attachment.get_content()).digest() == hashlib.sha256(PNG).digest()


def test_a_mail_over_the_limit_is_refused_with_both_notices(
    mail: MailServers, zulip: FakeZulip, desk: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Over the whole-message bound too (the real one, 64 MiB at least, would take mail of that size).
    monkeypatch.setattr(receive, "whole_message_bound", lambda limit: limit)
    ana = mail.customers[0]
    ana.send("Logs", "open\nThe export stops halfway.")
    ana.wait_for(from_bot)
    big = PNG + bytes(range(256)) * (5 * 1024)  # 1.25 MB, over DESKBOT_MAX_ATTACHMENT_MB=1
    ana.send(
        "[#1] Logs",
        "The capture is attached.",
        attachments=[("capture.png", big, "image/png"), (SHOUTING, b"y", "text/plain")],
    )
    # Read by its headers and its text only (its body never in memory whole): the topic and the
    # customer are told.
    line = in_topic(zulip, "only its headers and its text were read")
    assert "1.0 MB" in line.content
    # Its files are named from its BODYSTRUCTURE, inert in the topic (a name is inline code, the note quoted).
    assert "`capture.png` (1.3 MB) was not kept" in line.content
    assert f"`{SHOUTING}` (" in line.content and "\n@**all**" not in line.content
    assert f'Its files, not kept: "capture.png" (image/png, about 1.3 MB), "{SHOUTING}"' in line.content
    assert "The capture is attached." in line.content  # its words came
    (told,) = ana.wait_for(lambda m: from_bot(m) and "Not passed on" in m.get_body(("plain",)).get_content())
    text = told.get_body(("plain",)).get_content()
    assert text.startswith("Not passed on (the engineers know; please send smaller files or links to them):")
    assert "— capture.png (1.3 MB): not passed on, over the limit of 1.0 MB" in text
    assert f"— {SHOUTING} (" in text and "in a message over the limit of 1.0 MB" in text


def test_a_file_whose_bytes_are_gone_when_the_mail_goes_is_named_to_both_sides(
    mail: MailServers, zulip: FakeZulip, desk: Runtime, clock, engine
) -> None:  # noqa: ANN001
    """The answer waits (Ana's mailbox is full) and meanwhile the store loses the file's bytes: the
    mail goes without it, tells Ana so in her language, and the engineers hear it in the topic."""
    ana = mail.customers[0]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customer SET lang = 'pt'"))
    ana.send("Wiring", "open\nHow should the cables go?")
    topic = in_topic(zulip, "wrote:").subject
    ana.wait_for(from_bot)
    mail.smtp.refuse_recipient(ana.address, 452, "4.2.2 Mailbox full")
    path = zulip.upload(zulip_side.ENGINEER, "diagram.png", PNG)
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, f"/reply Like this: [diagram.png]({path})")
    in_topic(zulip, "has not reached")
    with engine.begin() as conn:
        assert conn.execute(sa.text("UPDATE incidentattachment SET data = NULL WHERE data IS NOT NULL")).rowcount == 1
    mail.smtp.accept_recipient(ana.address)
    clock.advance(seconds=91)  # the deferred row's first retry is due
    (reply,) = ana.wait_for(lambda m: from_bot(m) and "Like this" in m.get_body(("plain",)).get_content())
    assert list(reply.iter_attachments()) == []
    text = reply.get_body(("plain",)).get_content()
    assert f"- diagram.png ({len(PNG)} bytes): não enviado: afinal não foi possível entregá-lo por aqui." in text
    notice = in_topic(zulip, "Not sent to the customer on email after all").content
    assert "`diagram.png`" in notice and "`its bytes are no longer stored`" in notice


def test_a_retried_mail_whose_files_went_with_it_is_not_sent_again(mail: MailServers, engine) -> None:  # noqa: ANN001
    """The server took the mail and its files were recorded as sent with it, but the process died
    before the row was marked sent and the Sent folder keeps no copy of it: the retry finds the
    files' record of this very mail and sends nothing again (it sent it again, saying "sent before")."""
    with transaction(engine) as session:
        customer, _code = customers.create_customer(
            session, "Ana's company", mail.customers[0].address, "en", datetime.now(UTC)
        )
    file = waiting_file(engine, customer.id)
    channel = EmailChannel(email_settings(mail), tuning=FAST)
    channel.start()
    channel.files = StoredFiles(engine)
    try:
        answer = Outbound(7, "email", "direct", "[#1] The fix:", recipient=mail.customers[0].address, files=(file,))
        [mail_id] = channel.send(answer)
        wait_until(lambda: len(mail.support.messages("Sent")) == 1, 10, "the copy in Sent")
        mail.dovecot.doveadm("expunge", "-u", SUPPORT_ADDRESS, "mailbox", "Sent", "all")
        assert mail.support.messages("Sent") == []
        assert channel.send(dataclasses.replace(answer, attempt=2)) == [mail_id]
    finally:
        channel.close()
    assert [m.message_id for m in mail.smtp.accepted] == [mail_id]
    (received,) = mail.customers[0].wait_for(from_bot)
    assert [a.get_filename() for a in received.iter_attachments()] == ["fix.png"]
