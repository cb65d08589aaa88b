"""The people a customer copies stay in the conversation (issue 17), through the real runtime and the
real mail servers: a colleague in `Cc` gets every answer, their reply joins the incident, engineers
add and remove people with `/cc`, a `Bcc` is never learned, and a robot in `Cc` never loops."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from storage.db import transaction
from storage.models import Incident, IncidentCopy, IncidentMessage, Outbox, ProcessedInbound
from tests.mail.mailbox import Mailbox
from tests.mail.servers import SUPPORT_ADDRESS, MailServers

from .channel_bot import EmailBot, from_bot, rows_waiting, wait_until

ANA = "ana.lima@customer.example"
CARLA = "carla.reis@customer.example"
DORA = "dora.melo@customer.example"
ALIAS = "help@example.com"


@pytest.fixture
def bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    from adapters.email import EmailChannel

    from .channel_bot import FAST, email_settings

    channel = EmailChannel(email_settings(mail, aliases=(ALIAS,)), tuning=FAST)
    running = EmailBot(mail, engine, db_url, clock, channel=channel, EMAIL_ADDRESS=SUPPORT_ADDRESS, EMAIL_ALIASES=ALIAS)
    running.customer("Ana's company", ANA)
    running.start()
    yield running
    running.halt()


@pytest.fixture
def carla(mail: MailServers) -> Mailbox:
    box = mail.add_user(CARLA, "Carla Reis")
    time.sleep(1.1)  # Dovecot rereads its users file when its modification time changes, to the second
    return box


def _messages(engine, number: int) -> list[str]:  # noqa: ANN001
    with transaction(engine) as session:
        found = session.scalars(
            select(IncidentMessage).where(IncidentMessage.incident_id == number).order_by(IncidentMessage.id)
        )
        return [f"{m.author}:{m.body}" for m in found]


def _copied(engine, number: int) -> list[str]:  # noqa: ANN001
    with transaction(engine) as session:
        found = session.scalars(
            select(IncidentCopy)
            .where(IncidentCopy.incident_id == number, IncidentCopy.removed_at.is_(None))
            .order_by(IncidentCopy.id)
        )
        return [c.address for c in found]


def _handled(engine, message: EmailMessage) -> bool:  # noqa: ANN001
    with transaction(engine) as session:
        return session.get(ProcessedInbound, ("email", str(message["Message-ID"]).strip())) is not None


def _addresses(header: object) -> list[str]:
    import email.utils

    return [a.lower() for _n, a in email.utils.getaddresses([str(header)])] if header else []


def _reply_all(box: Mailbox, original: EmailMessage, text: str, **options: object) -> EmailMessage:
    """`box` answers `original` to everyone on it (To: its sender, Cc: the rest), as "Reply all" does."""
    reply = box.reply(original, text, **options)  # type: ignore[arg-type]
    others = [
        a
        for a in _addresses(original["To"]) + _addresses(original["Cc"])
        if a not in (box.address, *_addresses(reply["To"]))
    ]
    if others:
        reply["Cc"] = ", ".join(others)
    box.deliver(reply)
    return reply


def test_a_colleague_in_cc_gets_the_answers_and_their_reply_joins_the_incident(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    # Ana writes to the desk (and its alias) and copies Carla: neither desk address is a copy.
    ana.send("VPN drops", "open\nThe tunnel drops every hour.", to=[SUPPORT_ADDRESS, ALIAS], cc=[CARLA])
    (opened,) = ana.wait_for(from_bot)
    assert "Incident #1 is open" in opened.get_content()
    assert _copied(engine, 1) == [CARLA]
    # The very answer to the mail that copied her copies her already.
    assert _addresses(opened["To"]) == [ANA] and _addresses(opened["Cc"]) == [CARLA]
    assert "Copied on every answer from now on: `carla.reis@customer.example` (added by `Ana's company`)" in (
        bot.topics()
    )

    bot.engineer("/reply 1 Please restart the gateway and tell us what happens.")
    (to_ana,) = ana.wait_for(lambda m: from_bot(m) and "restart the gateway" in m.get_content())
    (to_carla,) = carla.wait_for(lambda m: from_bot(m) and "restart the gateway" in m.get_content())
    # One mail, one To (the customer) and one Cc (her colleague); the same Message-ID in both mailboxes.
    assert _addresses(to_carla["To"]) == [ANA] and _addresses(to_carla["Cc"]) == [CARLA]
    assert to_carla["Message-ID"] == to_ana["Message-ID"]
    assert to_carla["Subject"] == "Re: [#1] VPN drops"

    # Carla answers to everyone: her words join incident 1 under her own address, shown with her
    # name in the topic; she is not answered, and nothing is opened or charged.
    answer = _reply_all(carla, to_carla, "Restarted it at 10:00, same thing.", style="outlook")
    wait_until(lambda: _handled(engine, answer), 10, "Carla's reply handled")
    assert _messages(engine, 1)[-1] == f"{CARLA}:Restarted it at 10:00, same thing."
    shown = bot.topics()
    assert "Restarted it at 10:00, same thing." in shown
    assert "Carla Reis, copied by Ana's company" in shown and CARLA in shown
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 1
        assert not session.scalars(select(Outbox).where(Outbox.recipient == CARLA)).all()
    assert "I don't know this email address yet" not in " ".join(
        m.get_content() for m in carla.messages() if from_bot(m)
    )

    # The engineer's next answer still goes to Ana (the customer), with Carla in Cc.
    bot.engineer("/reply 1 Thanks Carla, we see it now.")
    (later,) = carla.wait_for(lambda m: from_bot(m) and "we see it now" in m.get_content())
    assert _addresses(later["To"]) == [ANA]
    # Ana's mailbox holds one conversation.
    assert len([t for t in ana.threads() if any(from_bot(m) for m in t)]) == 1
    # Her status shows Carla's message under Carla's address, her own as hers.
    ana.send("status", "status 1")
    (status,) = ana.wait_for(lambda m: from_bot(m) and "Latest messages" in m.get_content())
    assert f"— {CARLA} (" in status.get_content() and "— you (" in status.get_content()


def test_a_removed_address_stops_receiving_and_cc_add_copies_someone_new(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    dora = mail.add_user(DORA, "Dora Melo")
    time.sleep(1.1)
    ana = mail.customers[0]
    ana.send("Backups fail", "open\nThe nightly backup stops at 80%.", cc=[CARLA])
    ana.wait_for(from_bot)

    shown = bot.engineer("/cc 1 remove CARLA.Reis@customer.example")
    assert "carla.reis@customer.example` is no longer copied on #1" in shown
    assert "No longer copied: `carla.reis@customer.example` (removed by `engineer@console`)" in bot.topics()
    assert "added" in bot.engineer("/cc 1 add <dora.melo@customer.example>")
    assert "copied: `dora.melo@customer.example`" in bot.engineer("/case 1")

    bot.engineer("/reply 1 Which version of the backup agent runs there?")
    (to_dora,) = dora.wait_for(lambda m: from_bot(m) and "backup agent" in m.get_content())
    assert _addresses(to_dora["To"]) == [ANA] and _addresses(to_dora["Cc"]) == [DORA]
    ana.wait_for(lambda m: from_bot(m) and "backup agent" in m.get_content())
    time.sleep(0.5)
    assert not [m for m in carla.messages() if from_bot(m) and "backup agent" in m.get_content()]

    # Ana answers an older mail that still copied Carla: the engineer's removal sticks.
    first = next(m for m in ana.messages() if from_bot(m))
    follow = _reply_all(ana, first, "Version 7.2.")
    wait_until(lambda: _handled(engine, follow), 10, "Ana's answer handled")
    assert _copied(engine, 1) == [DORA]

    # Carla, no longer copied, writing in the thread is an unknown sender again, not on the incident.
    stray = _reply_all(carla, first, "Anything new?")
    wait_until(lambda: _handled(engine, stray), 10, "Carla's mail handled")
    assert not any("Anything new?" in m for m in _messages(engine, 1))


def test_another_customer_copied_answers_in_the_thread_and_a_new_mail_of_a_copied_person_is_a_strangers(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    ana, bruno = mail.customers
    bot.customer("Bruno's company", bruno.address)
    ana.send("Shared printer", "open\nThe printer we share is offline.", cc=[bruno.address, CARLA])
    ana.wait_for(from_bot)
    (copy,) = bruno.wait_for(from_bot)
    # Bruno is a customer himself, but his answer in Ana's thread is on Ana's incident, and he
    # is not asked about incidents or credits of his own.
    answer = _reply_all(bruno, copy, "Ours is offline too since 9:00.")
    wait_until(lambda: _handled(engine, answer), 10, "Bruno's reply handled")
    assert _messages(engine, 1)[-1] == f"{bruno.address}:Ours is offline too since 9:00."
    time.sleep(0.5)
    assert [m["Message-ID"] for m in bruno.messages() if from_bot(m)] == [copy["Message-ID"]]

    # A new mail from Carla (no reply, no [#1]) names no incident of hers: the unknown-sender answer.
    fresh = carla.send("Another thing", "Can you also look at our scanner?")
    (hello,) = carla.wait_for(lambda m: from_bot(m) and "I don't know this email address yet" in m.get_content())
    assert hello["Cc"] is None
    assert not any("scanner" in m for m in _messages(engine, 1))
    assert _handled(engine, fresh)


def test_the_people_a_mail_kept_as_a_draft_copied_are_copied_on_the_incident_it_opens(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    # No "open": the text is kept and Ana asked (the question goes to her alone).
    ana.send("VPN drops", "The tunnel drops every hour.", cc=[CARLA])
    (asked,) = ana.wait_for(from_bot)
    assert 'Reply "open"' in asked.get_content() and asked["Cc"] is None
    # Her "open" (a plain reply to the bot, nobody copied) opens the incident with the kept text,
    # and the people the kept mail copied with it.
    ana.send_reply(asked, "open")
    (opened,) = ana.wait_for(lambda m: from_bot(m) and "Incident #1 is open" in m.get_content())
    assert _addresses(opened["Cc"]) == [CARLA]
    assert _copied(engine, 1) == [CARLA]
    assert _messages(engine, 1) == [f"{ANA}:The tunnel drops every hour."]
    carla.wait_for(lambda m: from_bot(m) and "Incident #1 is open" in m.get_content())


def test_bad_cc_input_gets_a_short_answer(bot: EmailBot, mail: MailServers) -> None:
    ana = mail.customers[0]
    ana.send("Printer", "open\nThe printer is offline.")
    ana.wait_for(from_bot)
    assert "is not an email address" in bot.engineer("/cc 1 add not-an-address")
    assert "support desk's own address" in bot.engineer(f"/cc 1 add {ALIAS}")
    assert "must be one of: add, remove" in bot.engineer("/cc 1 invite dora@customer.example")
    assert "is not copied on #1" in bot.engineer(f"/cc 1 remove {DORA}")
    assert "There is no case #9" in bot.engineer(f"/cc 9 add {DORA}")
    bot.engineer(f"/cc 1 add {DORA}")
    assert "copied on #1 already" in bot.engineer(f"/cc 1 add {DORA.upper()}")
    assert "/cc" in bot.engineer("/help")


def test_bcc_is_never_learned_nor_shown(mail: MailServers, bot: EmailBot, carla: Mailbox, engine) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    # A Bcc header left in the raw mail (as some programs write to the mailbox they deliver to).
    sent = ana.compose("Licence", "open\nOur licence expired.", cc=[CARLA], headers={"Bcc": "boss@customer.example"})
    ana.deliver(sent)  # to its To and Cc only, as a server does
    (opened,) = ana.wait_for(from_bot)
    assert _copied(engine, 1) == [CARLA]
    bot.engineer("/reply 1 A new licence is on its way.")
    replies = [
        m for m in ana.wait_for(from_bot, count=2) + carla.wait_for(from_bot, count=2) if "licence" in m.get_content()
    ]
    for reply in [opened, *replies]:
        assert reply["Bcc"] is None
        assert "boss@customer.example" not in reply.as_string()
    with transaction(engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.channel == "email")).all()
        assert rows and all("boss@" not in (r.copies or "") for r in rows)
    assert "boss@customer.example" not in bot.topics()


def test_an_autoreply_from_a_copied_colleague_is_never_answered_nor_copied_on(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    ana.send("Mail server", "open\nOur mail server rejects everything.", cc=[CARLA])
    (opened,) = ana.wait_for(from_bot)
    (copy,) = carla.wait_for(from_bot)
    # Carla's vacation program answers everyone, copying someone new: stored, never answered, never learned.
    auto = carla.reply(copy, "I am out of the office until Monday.", headers={"Auto-Submitted": "auto-replied"})
    auto["Cc"] = f"{ANA}, {DORA}"
    carla.deliver(auto)
    wait_until(lambda: _handled(engine, auto), 10, "the autoreply handled")
    assert any("out of the office" in m for m in _messages(engine, 1))
    assert _copied(engine, 1) == [CARLA]
    time.sleep(0.5)
    assert len([m for m in ana.messages() if from_bot(m)]) == 1
    assert len([m for m in carla.messages() if from_bot(m)]) == 1


def test_a_colleague_copied_on_automatic_answers_gets_no_more_than_the_hourly_cap(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    from bot.services import customers
    from storage.models import Customer

    home = mail.add_user("ana.home@customer.example", "Ana Lima")
    time.sleep(1.1)
    with transaction(engine) as session:
        company = session.scalars(select(Customer)).one()
        customers.add_email(session, company, home.address, bot.clock())
    ana = mail.customers[0]
    ana.send("Disk", "open\nThe disk is full.", cc=[CARLA])
    ana.wait_for(from_bot)
    # Ana writes on from both her addresses with Carla copied (a mail loop on her side, say): each
    # of Ana's addresses gets up to the cap of automatic answers (5 an hour), and so does Carla,
    # copied on all of them: 10 answers, Carla in Cc of 5.
    for n in range(9):
        sender = ana if n < 4 else home
        sent = sender.send(f"Re: [#1] Disk {n}", f"Still full ({n}).", cc=[CARLA])
        wait_until(lambda sent=sent: _handled(engine, sent), 10, "the mail handled")
    ana.wait_for(from_bot, count=5)
    home.wait_for(from_bot, count=5)
    time.sleep(0.5)
    assert len([m for m in ana.messages() if from_bot(m)]) == 5
    copied = [m for m in carla.messages() if from_bot(m)]
    assert len(copied) == 5
    # Only the people copied are in Cc, never the customer's other address.
    assert all(_addresses(m["Cc"]) == [CARLA] for m in copied)


def test_the_copies_of_a_mail_are_its_to_and_cc_but_the_desk_and_the_sender_never_its_bcc() -> None:
    from datetime import UTC, datetime

    from adapters.email.inbound import mail_to_inbound
    from adapters.email.reading import read_mail

    raw = (
        b"From: Ana Lima <Ana.Lima@customer.example>\r\n"
        b"To: Support <SUPPORT@example.com>, help@example.com, ana.lima@customer.example\r\n"
        b"Cc: Carla <Carla.Reis@Customer.example>, dora.melo@customer.example, carla.reis@customer.example\r\n"
        b"Bcc: boss@customer.example\r\n"
        b"Subject: VPN\r\nMessage-ID: <1@customer.example>\r\n\r\nopen\r\n"
    )
    mail = read_mail(raw)
    inbound = mail_to_inbound(
        mail,
        own_address=SUPPORT_ADDRESS,
        aliases=(ALIAS.upper(),),
        uid_key="uid:1:1",
        received_at=datetime.now(UTC),
        authserv_id=None,
    )
    assert inbound.copies == (CARLA, DORA)
    assert "boss@customer.example" not in repr(inbound) + repr(inbound.raw)
    # Mail from an alias is the desk's own: never answered.
    from_alias = read_mail(raw.replace(b"From: Ana Lima <Ana.Lima@customer.example>", b"From: help@example.com"))
    assert mail_to_inbound(
        from_alias, own_address=SUPPORT_ADDRESS, aliases=(ALIAS,), uid_key="u", received_at=None, authserv_id=None
    ).automatic


def test_copies_refused_for_now_get_the_answer_later_without_the_others_and_nobody_gets_it_twice(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    bob, dora = "bob.away@customer.example", DORA
    bob_box, dora_box = mail.add_user(bob, "Bob Away"), mail.add_user(dora, "Dora Melo")
    time.sleep(1.1)  # Dovecot rereads its users file when its modification time changes, to the second
    mail.smtp.refuse_recipient(bob, 450, f"4.7.1 <{bob}>: Recipient address rejected: greylisted, try again later")
    mail.smtp.refuse_recipient(dora, 451, "4.3.0 try again later")
    ana = mail.customers[0]
    ana.send("VPN drops", "open\nThe tunnel drops every hour.", cc=[CARLA, bob, dora])
    (opened,) = ana.wait_for(from_bot)
    carla.wait_for(from_bot)
    assert _addresses(opened["Cc"]) == [CARLA, bob, dora]
    time.sleep(1.0)  # the dispatcher polls every 0.1 s: a copy sent at once, or a notice, would show by now
    assert not [m for m in [*bob_box.messages(), *dora_box.messages()] if from_bot(m)]
    assert "was not delivered to" not in bot.topics()  # nothing for the engineers to do: it will arrive
    assert mail.smtp.counts["refused_recipients"] == 2
    wait_until(lambda: rows_waiting(engine, bob) == 1, 10, "the row for Bob and Dora")
    # The greylisting lets Bob's mail in now, Dora's not yet: after the minute's wait Bob has the
    # answer, without the others; Dora's waits for a mail of its own.
    mail.smtp.accept_recipient(bob)
    bot.clock.advance(seconds=91)  # the first retry: after 60 s and up to 30 s at random
    (later,) = bob_box.wait_for(from_bot, timeout=15)
    assert later.get_content() == opened.get_content()
    assert (later["Subject"], later["In-Reply-To"]) == (opened["Subject"], opened["In-Reply-To"])
    assert _addresses(later["To"]) == [bob] and _addresses(later["Cc"]) == [dora]
    wait_until(lambda: rows_waiting(engine, dora) == 1, 10, "Dora's own row")
    mail.smtp.accept_recipient(dora)
    bot.clock.advance(seconds=91)
    (last,) = dora_box.wait_for(from_bot, timeout=15)
    assert _addresses(last["To"]) == [dora] and last["Cc"] is None
    assert last.get_content() == opened.get_content()
    time.sleep(1.0)
    for box in (ana, carla, bob_box, dora_box):
        assert len([m for m in box.messages() if from_bot(m)]) == 1, box.address
    with transaction(engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.channel == "email").order_by(Outbox.id)).all()
        assert [(r.recipient, r.state, r.copies) for r in rows] == [
            (ANA, "sent", json.dumps([CARLA, bob, dora])),
            (bob, "sent", json.dumps([dora])),
            (dora, "sent", None),
        ]


def test_a_customer_refused_for_now_gets_the_answer_later_without_the_colleague_who_took_it(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    bob = "bob.away@customer.example"
    bob_box = mail.add_user(bob, "Bob Away")
    time.sleep(1.1)  # Dovecot rereads its users file when its modification time changes, to the second
    mail.smtp.refuse_recipient(ANA, 452, "4.2.2 Mailbox full")
    mail.smtp.refuse_recipient(bob, 450, "4.7.1 greylisted, try again later")
    ana.send("VPN drops", "open\nThe tunnel drops every hour.", cc=[CARLA, bob])
    (first,) = carla.wait_for(from_bot)
    assert _addresses(first["To"]) == [ANA] and _addresses(first["Cc"]) == [CARLA, bob]
    wait_until(lambda: rows_waiting(engine, ANA, refused=True) == 1, 10, "the retry of Ana's answer")
    mail.smtp.accept_recipient(ANA)
    mail.smtp.accept_recipient(bob)
    bot.clock.advance(seconds=91)  # the first retry: after 60 s and up to 30 s at random
    (opened,) = ana.wait_for(from_bot, timeout=15)
    (bobs,) = bob_box.wait_for(from_bot, timeout=15)
    # The same mail, to Ana and to Bob, who was refused for now too; Carla has it already.
    assert opened["Message-ID"] == bobs["Message-ID"] == first["Message-ID"]
    assert _addresses(opened["Cc"]) == [bob]
    assert [m.rcpt_tos for m in mail.smtp.accepted] == [[CARLA], [ANA, bob]]
    time.sleep(0.5)
    assert len([m for m in carla.messages() if from_bot(m)]) == 1
    assert len([m for m in bob_box.messages() if from_bot(m)]) == 1
    assert _copied(engine, 1) == [CARLA, bob]  # later answers copy them as before


def test_a_copy_refused_for_good_while_the_customer_is_refused_for_now_is_told_at_once_and_left_out(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    """Ana's mailbox is full, Carla takes the mail and Bob's address does not exist: the engineers
    hear of Bob now (not only once Ana's retry goes), and the retry copies nobody who cannot take it."""
    bob = "bob.gone@customer.example"
    mail.smtp.refuse_recipient(ANA, 452, "4.2.2 Mailbox full")
    mail.smtp.refuse_recipient(bob, 550, f"5.1.1 <{bob}>: no such user")

    def notices() -> list[str]:
        return [line for line in bot.topics().splitlines() if "was not delivered to" in line]

    ana = mail.customers[0]
    ana.send("VPN drops", "open\nThe tunnel drops every hour.", cc=[CARLA, bob])
    carla.wait_for(from_bot)
    wait_until(notices, 10, "the notice of the copy refused for good")
    assert notices() == [
        f"[#1 Ana's company: VPN drops] ⚠ The answer was not delivered to `{bob}` (copied on this incident): "
        f"the email server refused it (`550 5.1.1 <{bob}>: no such user`). Remove them with /cc remove `{bob}`, "
        "or correct the address."
    ]
    mail.smtp.accept_recipient(ANA)
    bot.clock.advance(seconds=91)  # the first retry: after 60 s and up to 30 s at random
    ana.wait_for(from_bot, timeout=15)
    time.sleep(0.5)
    assert [m.rcpt_tos for m in mail.smtp.accepted] == [[CARLA], [ANA]]
    assert len(notices()) == 1  # told once: the retry did not ask for Bob again
    assert mail.smtp.counts["refused_recipients"] == 2  # Ana and Bob at the first try; the retry, nobody


def test_cc_takes_an_email_address_only() -> None:
    from bot.services.copies import email_address

    assert email_address(" <Carla.Reis@Customer.example> ") == CARLA
    assert email_address("mailto:dora.melo@customer.example") == DORA
    for bad in ("carla", "carla@", "@customer.example", "a b@c.example", "carla@localhost", "x@y.example,z@w.example"):
        assert email_address(bad) is None, bad


def test_a_copy_the_mail_server_refuses_is_told_in_the_case_topic_once_per_answer_and_nothing_goes_twice(
    mail: MailServers, bot: EmailBot, carla: Mailbox, engine
) -> None:  # noqa: ANN001
    bob = "bob.gone@customer.example"
    # The server refuses Bob at RCPT TO, in words that would be markup in a Zulip topic.
    mail.smtp.refuse_recipient(bob, 550, f"5.1.1 <{bob}>: no such user @**all** [x](https://evil.example)")
    notice = (
        f"⚠ The answer was not delivered to `{bob}` (copied on this incident): the email server refused it "
        f"(`550 5.1.1 <{bob}>: no such user @**all** [x](https://evil.example)`). "
        f"Remove them with /cc remove `{bob}`, or correct the address."
    )

    def notices() -> list[str]:
        return [line for line in bot.topics().splitlines() if "was not delivered to" in line]

    ana = mail.customers[0]
    ana.send("VPN drops", "open\nThe tunnel drops every hour.", cc=[CARLA, bob])
    (opened,) = ana.wait_for(from_bot)
    carla.wait_for(from_bot)  # the other colleague copied has it
    assert _addresses(opened["Cc"]) == [CARLA, bob]
    # The answer that opened the case was refused for Bob: one notice in the case topic.
    wait_until(notices, 10, "the notice of the refused copy")
    assert notices() == [f"[#1 Ana's company: VPN drops] {notice}"]

    bot.engineer("/reply 1 Please restart the gateway and tell us what happens.")
    ana.wait_for(lambda m: from_bot(m) and "restart the gateway" in m.get_content())
    wait_until(lambda: len(notices()) == 2, 10, "the notice for the engineer's answer")
    time.sleep(1.0)  # the dispatcher polls every 0.1 s: a repeated send or notice would show by now
    assert notices() == [f"[#1 Ana's company: VPN drops] {notice}"] * 2  # one per answer
    # The customer has each answer once, the server was asked for Bob once per answer, and the rows
    # stay sent: a refused copy never sends the mail again.
    assert len([m for m in ana.messages() if from_bot(m) and "restart the gateway" in m.get_content()]) == 1
    assert len([m for m in ana.messages() if from_bot(m)]) == 2
    assert len([m for m in carla.messages() if from_bot(m)]) == 2
    assert mail.smtp.counts["refused_recipients"] == 2
    assert len(mail.smtp.accepted) == 2
    with transaction(engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.channel == "email").order_by(Outbox.id)).all()
        assert [(r.state, r.attempts) for r in rows] == [("sent", 1), ("sent", 1)]
        assert all(json.loads(r.copies) == [CARLA, bob] for r in rows)
    assert _copied(engine, 1) == [CARLA, bob]  # told, not removed: the engineers decide


def test_a_burst_of_mails_is_answered_once_so_the_people_copied_are_not_flooded(
    mail: MailServers,
    carla: Mailbox,
    engine,
    db_url,
    clock,  # noqa: ANN001
) -> None:
    """By default (DESKBOT_ACK_QUIET_MINUTES=10) a mail that follows the customer's own on the case
    soon after is added without an answer: Carla, copied, is not sent one per mail of Ana's. An
    engineer's answer in between starts a new burst, whose first mail is answered again."""
    quiet = EmailBot(mail, engine, db_url, clock, DESKBOT_ACK_QUIET_MINUTES=10)
    quiet.customer("Ana's company", ANA)
    quiet.start()
    try:
        ana = mail.customers[0]
        ana.send("VPN drops", "open\nThe tunnel drops every hour.", cc=[CARLA])
        (opened,) = ana.wait_for(from_bot)
        carla.wait_for(from_bot)
        more = [_reply_all(ana, opened, text) for text in ("The log says timeout.", "It is the Lisbon office.")]
        for sent in more:
            wait_until(lambda sent=sent: _handled(engine, sent), 10, "Ana's mail handled")
        assert _messages(engine, 1)[-2:] == [f"{ANA}:The log says timeout.", f"{ANA}:It is the Lisbon office."]
        with transaction(engine) as session:  # each mail's answer would be written with its record
            answers = session.scalars(select(Outbox.text).where(Outbox.channel == "email", Outbox.kind == "direct"))
            assert [text for text in answers if "Added to incident" in text] == []

        quiet.engineer("/reply 1 Which firewall is in front of it?")
        (question,) = ana.wait_for(lambda m: from_bot(m) and "firewall" in m.get_content())
        _reply_all(ana, question, "A FortiGate 60F.")
        (added,) = ana.wait_for(lambda m: from_bot(m) and "Added to incident #1" in m.get_content())
        assert "without an answer each time" in added.get_content()
        carla.wait_for(lambda m: from_bot(m) and "Added to incident #1" in m.get_content())
        assert len([m for m in carla.messages() if from_bot(m)]) == 3  # opened, the question, the one answer
    finally:
        quiet.halt()
