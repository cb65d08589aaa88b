"""A file an incident keeps already is not kept or uploaded again (an email audit: two Outlook
replies, each with its signature's logo inline as `image001.png`, made two records and two uploads
to the case topic), and Outlook's `[cid:image001.png@…]` placeholder is no text of the customer's.

The whole real path first (the runtime with the fake Zulip and the email channel on the tests'
Dovecot); then the rules of `bot.services.attachments` on both databases: only a customer's file is
checked (an engineer's reply sends what they attached), a file that was not kept (over a limit) is
recorded again so that its sender is told again, and a file that waited with a draft is dropped
when the incident it joins has it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from email import policy
from email.message import EmailMessage, MIMEPart

import sqlalchemy as sa

from adapters.channel import Attachment, Inbound
from bot.runtime import Runtime
from bot.services import attachments
from bot.services import customers as customer_service
from storage.db import transaction
from storage.models import Incident, IncidentAttachment
from tests.fakes.zulip import FakeZulip
from tests.mail.mailbox import Mailbox
from tests.mail.servers import MailServers
from tests.mastodon.conftest import PNG

from .channel_bot import from_bot
from .test_files_with_zulip import case_opened_by_mail, desk, in_topic, zulip  # noqa: F401 (fixtures)

LOGO_ID = "image001.png@01DB5C3E.8F0A1B20"
#: Another picture: a screenshot the customer means to send.
SHOT = PNG + b"screenshot"


def outlook_reply(ana: Mailbox, original: EmailMessage, text: str, *files: tuple[str, bytes]) -> EmailMessage:
    """Ana's answer as Outlook sends it: `multipart/related` of her text (plain, with the logo's
    placeholder, and HTML) and her signature's logo inline, plus `files` attached."""
    signature = f"Ana Lima | ACME, Lda\n[cid:{LOGO_ID}]"
    reply = ana.reply(original, f"{text}\n\n{signature}", style="outlook")
    alternative = MIMEPart(policy=policy.SMTP)
    alternative.set_content(reply.get_content())
    html = f'<p>{text}</p><p>Ana Lima | ACME, Lda<br><img src="cid:{LOGO_ID}" alt="ACME"></p>'
    alternative.add_alternative(html, subtype="html")
    logo = MIMEPart(policy=policy.SMTP)
    logo.set_content(PNG, "image", "png", cid=f"<{LOGO_ID}>", filename="image001.png", disposition="inline")
    parts = [alternative, logo]
    for name, data in files:
        part = MIMEPart(policy=policy.SMTP)
        part.set_content(data, "image", "png", filename=name, disposition="attachment")
        parts.append(part)
    del reply["Content-Type"], reply["Content-Transfer-Encoding"]
    reply["Content-Type"] = 'multipart/related; type="multipart/alternative"; boundary="outlook-related"'
    reply.set_payload(parts)
    return reply


def _files(engine, number: int) -> list[str]:  # noqa: ANN001
    with transaction(engine) as session:
        query = sa.select(IncidentAttachment.name).where(IncidentAttachment.incident_id == number)
        return list(session.scalars(query.order_by(IncidentAttachment.id)))


def test_a_signature_logo_is_kept_and_uploaded_once_and_its_placeholder_is_no_text(
    mail: MailServers,
    zulip: FakeZulip,  # noqa: F811
    desk: Runtime,  # noqa: F811
) -> None:
    ana, _topic = case_opened_by_mail(mail, zulip)
    opened = ana.wait_for(from_bot)[0]
    ana.deliver(outlook_reply(ana, opened, "It still jams on tray 2."))
    first = in_topic(zulip, "It still jams on tray 2.")
    assert "image001.png" in first.content and "/user_uploads/" in first.content
    # Outlook's placeholder of the logo is gone; her signature (no sign of one: no "-- ", no closing
    # words) stays, as any unmarked signature does.
    assert "[cid:" not in first.content and "Ana Lima | ACME, Lda" in first.content
    ana.wait_for(from_bot, count=2)

    # The next reply carries the same logo and a screenshot: only the screenshot is new.
    ana.deliver(outlook_reply(ana, opened, "Here is the error screen.", ("screen.png", SHOT)))
    second = in_topic(zulip, "Here is the error screen.")
    assert "screen.png" in second.content and "image001.png" not in second.content
    ana.wait_for(from_bot, count=3)
    # And one more, with nothing new but the logo: no file at all, and nothing said about it.
    ana.deliver(outlook_reply(ana, opened, "Tray 1 works."))
    third = in_topic(zulip, "Tray 1 works.")
    assert "/user_uploads/" not in third.content and "image001.png" not in third.content
    answers = ana.wait_for(from_bot, count=4)
    assert all("image001" not in answer.get_content() for answer in answers)

    assert _files(desk.engine, 1) == ["image001.png", "screen.png"]
    logos = [path for path, (_user, data) in zulip.realm.uploads.items() if data == PNG]
    assert len(logos) == 1


def _message(number: int, *files: Attachment) -> Inbound:
    return Inbound(
        channel="email",
        sender="ana@customer.example",
        conversation=f"<m{number}@customer.example>",
        text="see the file",
        message_id=f"<m{number}@customer.example>",
        received_at=datetime(2026, 12, 2, 10, 0),
        attachments=files,
    )


def _file(data: bytes, name: str = "image001.png", refused_over: int | None = None) -> Attachment:
    digest = hashlib.sha256(data).hexdigest()
    return Attachment(name, "image/png", len(data), digest, None if refused_over else data, refused_over)


def test_only_a_customers_file_kept_already_is_left_out(engine, clock) -> None:  # noqa: ANN001
    now = clock()
    with transaction(engine) as session:
        customer, _code = customer_service.create_customer(session, "Ana's company", "ana@customer.example", "en", now)
        incident = Incident(customer_id=customer.id, subject="Jam")
        other = Incident(customer_id=customer.id, subject="Other")
        session.add_all([incident, other])
        session.flush()
        record = attachments.record

        # The same file twice in one mail, then again in the next: kept once.
        assert [row.name for row in record(session, now, incident, _message(1, _file(PNG), _file(PNG, "b.png")))] == [
            "image001.png"
        ]
        assert (
            record(session, now, incident, _message(2, _file(PNG), _file(SHOT, "screen.png")))[0].name == "screen.png"
        )
        assert record(session, now, incident, _message(3, _file(PNG))) == []
        # Another incident keeps its own.
        assert len(record(session, now, other, _message(4, _file(PNG)))) == 1
        # An engineer's reply sends what they attached, and a note keeps it, whatever the case has.
        assert len(record(session, now, incident, _message(5, _file(PNG)), origin="out")) == 1
        assert len(record(session, now, incident, _message(6, _file(PNG)), origin="note")) == 1
        # A file over the limit was not kept: sent again, it is recorded again (and its sender told),
        # once however often a mail carries it.
        big = PNG * 100
        over = _file(big, "big.png", refused_over=10)
        assert len(record(session, now, incident, _message(7, over))) == 1
        assert len(record(session, now, incident, _message(8, over, over))) == 1
        # So is one that the case topic's channel refused after it was recorded (`hold_to_limit`).
        (held,) = record(session, now, incident, _message(10, _file(PNG * 2, "held.png")))
        held.refused_over, held.data = 100, None
        assert len(record(session, now, incident, _message(11, _file(PNG * 2, "held.png")))) == 1

        # Files waiting with a draft join an incident without those it keeps already, once each.
        identity_id = customer_service.who(session, "email", "ana@customer.example", None, now)[0].identity_id
        attachments.wait_with_draft(
            session,
            now,
            identity_id,
            _message(9, _file(PNG), _file(PNG + b"new", "n.png"), _file(PNG + b"new", "n2.png")),
        )
        claimed = attachments.claim_waiting(session, identity_id, incident)
        assert [row.name for row in claimed] == ["n.png"]
        waiting = (
            sa.select(sa.func.count())
            .select_from(IncidentAttachment)
            .where(IncidentAttachment.waiting_for.is_not(None))
        )
        assert session.scalar(waiting) == 0
