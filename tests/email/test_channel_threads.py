"""The email channel end to end, through the real runtime and real mail servers: a customer's
mail opens an incident, the conversation stays one thread, an engineer's reply reaches the
customer in it, `[#N]` subjects, strangers and `link CODE`, DMARC."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import select

from adapters.email import receive
from bot.services import credits as credit_service
from storage.db import transaction
from storage.models import Customer, Identity, Incident, IncidentAttachment, IncidentMessage, Outbox, ProcessedInbound
from tests.mail.servers import MailServers

from .channel_bot import EmailBot, from_bot, wait_until

ANA = "ana.lima@customer.example"


@pytest.fixture
def bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock)
    running.customer("Ana's company", ANA.upper())  # addresses are matched case-insensitively
    running.start()
    yield running
    running.halt()


def _handled(engine, message_id: str) -> bool:  # noqa: ANN001
    with transaction(engine) as session:
        return session.get(ProcessedInbound, ("email", message_id)) is not None


def _incident_messages(engine, number: int) -> list[str]:  # noqa: ANN001
    with transaction(engine) as session:
        found = session.scalars(
            select(IncidentMessage).where(IncidentMessage.incident_id == number).order_by(IncidentMessage.id)
        )
        return [f"{m.direction}:{m.body}" for m in found]


def test_a_mail_opens_an_incident_and_the_conversation_stays_one_thread(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    first = ana.send("VPN drops every hour", "open\nThe tunnel drops at every full hour since Monday.")
    (answer,) = ana.wait_for(from_bot)
    assert "Incident #1 is open" in answer.get_content()
    assert answer["Subject"] == "Re: [#1] VPN drops every hour"  # the mail's subject is the incident's
    assert answer["In-Reply-To"] == first["Message-ID"]
    assert answer["Auto-Submitted"] == "auto-replied"
    assert "Example Support" in answer["From"]
    with transaction(engine) as session:
        incident = session.get(Incident, 1)
        assert incident is not None and incident.subject == "VPN drops every hour"
        assert session.get(ProcessedInbound, ("email", first["Message-ID"])) is not None

    # Ana answers the bot's mail, quoting it as Gmail does: only her new words join the incident.
    ana.send_reply(answer, "It happened again at 14:00.", style="gmail")
    answers = ana.wait_for(from_bot, count=2)
    assert "Added to incident #1" in answers[1].get_content()
    assert _incident_messages(engine, 1) == [
        "in:The tunnel drops at every full hour since Monday.",
        "in:It happened again at 14:00.",
    ]
    # Her mailbox shows one conversation: her two mails (delivered to her too) and both answers.
    threads = [t for t in ana.threads() if any(from_bot(m) for m in t)]
    assert len(threads) == 1 and sum(from_bot(m) for m in threads[0]) == 2
    assert "It happened again at 14:00." in bot.topics()
    assert (
        "Ana's company via email (ana.lima@customer.example) wrote:\n    | It happened again at 14:00." in bot.topics()
    )


def test_the_zulip_header_of_a_mail_names_its_sender_and_subject_inert() -> None:
    from adapters.channel import Said
    from adapters.zulip.markup import said_header

    said = Said("Ana", "email", "ana@customer.example", subject="VPN @**all** [x](https://evil.example)")
    assert said_header(said) == (
        "**`Ana`** via email (`ana@customer.example`), subject `VPN @**all** [x](https://evil.example)` wrote:"
    )
    assert (
        said_header(Said("Ana", "email", "ana@customer.example"))
        == "**`Ana`** via email (`ana@customer.example`) wrote:"
    )


def test_an_engineers_reply_reaches_the_customer_in_the_same_thread_without_auto_submitted(
    mail: MailServers, bot: EmailBot
) -> None:
    ana = mail.customers[0]
    ana.send("Backups fail", "open\nThe nightly backup stops at 80%.")
    (answer,) = ana.wait_for(from_bot)
    shown = bot.engineer("/reply 1 Please send us the log of last night's run.")
    assert "Sent to the customer of #1 via email" in shown
    replies = ana.wait_for(from_bot, count=2)
    reply = replies[1]
    assert "Please send us the log of last night's run." in reply.get_content()
    assert reply["Subject"] == "Re: [#1] Backups fail"
    assert reply["Auto-Submitted"] is None  # a person's words, not an automatic answer
    assert reply["In-Reply-To"] == str(answer["References"]).split()[-1]  # Ana's latest mail on #1
    assert reply["Message-ID"] != answer["Message-ID"]

    # Her answer to the engineer's mail joins incident 1 by its In-Reply-To, whatever the subject says.
    follow = ana.reply(reply, "Here it is: disk full at 02:13.", style="outlook")
    del follow["Subject"]
    follow["Subject"] = "the log"
    ana.deliver(follow)
    wait_until(lambda: "Here it is: disk full at 02:13." in bot.topics(), 10, "the answer in the topic")


def test_a_subject_tag_puts_a_new_mail_on_the_senders_own_incident_only(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana, bruno = mail.customers
    bot.customer("Bruno's company", bruno.address)
    ana.send("Printer offline", "open\nThe printer is offline.")
    ana.wait_for(from_bot)
    ana.send("Scanner", "open\nThe scanner is broken.")  # asked first: a second credit
    ana.wait_for(from_bot, count=2)
    ana.send("Scanner", "open")
    assert "Incident #2 is open" in ana.wait_for(from_bot, count=3)[2].get_content()
    # With two incidents open, plain text would be asked about; the tag in a new mail's subject says which.
    ana.send("Second printer [#1]", "The other one too.")
    answers = ana.wait_for(from_bot, count=4)
    assert "Added to incident #1" in answers[3].get_content()
    assert _incident_messages(engine, 1)[-1] == "in:The other one too."

    # Bruno names Ana's incident: it is not his, so his mail is routed as any other text.
    bruno.send("Re: [#1] Printer offline", "Mine is offline too.")
    (to_bruno,) = bruno.wait_for(from_bot)
    assert "no open incident" in to_bruno.get_content()
    assert not any("Mine is offline" in m for m in _incident_messages(engine, 1))


def test_a_stranger_is_answered_once_and_links_the_address_with_a_code(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    stranger = mail.add_user("carla@newco.example", "Carla")
    # Dovecot rereads its users file when its modification time changes, to the second.
    time.sleep(1.1)
    stranger.send("Hello", "We would like support for our NAS.")
    (hello,) = stranger.wait_for(from_bot)
    assert "I don't know this email address yet" in hello.get_content()
    assert hello["Subject"] == "Re: Hello"
    again = stranger.send("Hello again", "Anyone there?")  # the answer comes once a day
    wait_until(lambda: _handled(engine, again["Message-ID"]), 10, "the second mail handled")
    with transaction(engine) as session:
        to_carla = session.scalars(select(Outbox).where(Outbox.recipient == "carla@newco.example")).all()
        assert len(to_carla) == 1
    bot.customer("Newco", "someone.else@newco.example")
    code = bot.activation_code("Newco")
    stranger.send("link", f"link {code}")
    welcome = stranger.wait_for(lambda m: from_bot(m) and "Welcome" in m.get_content())
    assert "Newco" in welcome[0].get_content()
    assert len(stranger.wait_for(from_bot, count=2)) == 2  # no second "who are you"
    with transaction(engine) as session:
        identity = session.scalars(
            select(Identity).where(Identity.channel == "email", Identity.address == "carla@newco.example")
        ).one()
        assert identity.customer_id is not None


def test_with_authserv_id_set_mail_failing_dmarc_is_a_strangers(mail: MailServers, engine, db_url, clock) -> None:  # noqa: ANN001
    from adapters.email import EmailChannel

    from .channel_bot import FAST, email_settings

    channel = EmailChannel(email_settings(mail, authserv_id="mx.example.com"), tuning=FAST)
    running = EmailBot(mail, engine, db_url, clock, channel=channel)
    running.customer("Ana's company", ANA)
    running.start()
    try:
        ana = mail.customers[0]
        failing = {
            "Authentication-Results": "mx.example.com; spf=fail smtp.mailfrom=evil.example; dmarc=fail header.from=customer.example"
        }
        ana.send("Urgent", "open\nPlease reset our admin password.", headers=failing)
        (answer,) = ana.wait_for(from_bot)
        # Not "send link CODE", which unverified mail could not do either.
        assert "I could not verify that this message really comes from this address" in answer.get_content()
        assert "link" not in answer.get_content()
        with transaction(engine) as session:
            assert session.get(Incident, 1) is None
        passing = {
            "Authentication-Results": "mx.example.com; spf=pass smtp.mailfrom=customer.example; dmarc=pass header.from=customer.example"
        }
        ana.send("Printer", "open\nThe printer is offline.", headers=passing)
        answers = ana.wait_for(from_bot, count=2)
        assert "Incident #1 is open" in answers[1].get_content()
        # A domain with no DMARC policy: its aligned DKIM signature vouches for it.
        no_policy = {
            "Authentication-Results": "mx.example.com; dkim=pass header.d=customer.example; dmarc=none header.from=customer.example"
        }
        ana.send("Where are we", "status", headers=no_policy)
        answers = ana.wait_for(from_bot, count=3)
        assert "#1 Printer" in answers[2].get_content()  # Ana's own incidents: she is recognised
    finally:
        running.halt()


def test_an_engineers_files_reach_the_customer_as_attachments(mail: MailServers, bot: EmailBot, engine) -> None:  # noqa: ANN001
    import dataclasses
    import hashlib
    from datetime import UTC

    from adapters.channel import Attachment
    from adapters.console import ENGINEER, console_line

    ana = mail.customers[0]
    ana.send("Config", "open\nWhich settings do you recommend?")
    ana.wait_for(from_bot)
    log = b"setting=1\nother=2\n" * 50
    refused = Attachment("huge.iso", "application/octet-stream", 30 * 2**20, None, refused_over=25 * 2**20)
    files = (
        Attachment("recommended settings.conf", "text/plain", len(log), hashlib.sha256(log).hexdigest(), data=log),
        refused,
    )
    command = console_line(
        ENGINEER, "/reply 1 Here are our recommended settings.", "e-files", bot.clock().astimezone(UTC)
    )
    bot.runtime.intake.deliver(dataclasses.replace(command, attachments=files))
    bot.runtime.dispatcher.drain("console")
    reply = ana.wait_for(from_bot, count=2)[1]
    (attachment,) = list(reply.iter_attachments())
    assert attachment.get_filename() == "recommended settings.conf"
    assert attachment.get_content().encode() == log
    body = reply.get_body(preferencelist=("plain",)).get_content()
    assert "Here are our recommended settings." in body
    assert "huge.iso (30.0 MB)" in body


@pytest.fixture
def limited(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    """The bot with a 1 MB attachment limit, and Ana's incident #1 open."""
    running = EmailBot(mail, engine, db_url, clock, DESKBOT_MAX_ATTACHMENT_MB=1)
    running.customer("Ana's company", ANA)
    running.start()
    try:
        mail.customers[0].send("Dump", "open\nThe crash dump is attached.")
        mail.customers[0].wait_for(from_bot)
        yield running
    finally:
        running.halt()


def test_a_mail_carrying_a_file_at_the_limit_is_read_whole(mail: MailServers, limited: EmailBot, engine) -> None:  # noqa: ANN001
    # 1 MiB, base64 in the mail: about 1.4 MB as sent, over the limit of a file but not of a mail.
    dump = bytes(range(256)) * 4096
    mail.customers[0].send(
        "Dump", "#1 Here is the dump.", attachments=[("core.dump", dump, "application/octet-stream")]
    )
    wait_until(lambda: len(_incident_messages(engine, 1)) == 2, 10, "the mail on the incident")
    assert _incident_messages(engine, 1)[1] == "in:Here is the dump."
    with transaction(engine) as session:
        (stored,) = session.scalars(select(IncidentAttachment).where(IncidentAttachment.incident_id == 1))
        assert (stored.name, stored.size, stored.refused_over, stored.data) == ("core.dump", 2**20, None, dump)


def _a_dump_over_the_limit(mail: MailServers) -> str:
    """Ana sends a 1.5 MB file to incident 1 (over the tests' 1.0 MB limit); what she is told of it."""
    ana = mail.customers[0]
    big = bytes(range(256)) * (6 * 1024)  # 1.5 MB
    ana.send("Dump", "#1 Here is the dump.", attachments=[("core.dump", big, "application/octet-stream")])
    (told,) = ana.wait_for(lambda m: from_bot(m) and "core.dump" in m.get_content())
    return told.get_content()


def test_a_file_over_the_limit_in_a_mail_read_whole_is_refused_alone(
    mail: MailServers, limited: EmailBot, engine
) -> None:  # noqa: ANN001
    told = _a_dump_over_the_limit(mail)
    assert told.startswith('Your file "core.dump" (1.5 MB) was not passed on: it is over the limit of 1.0 MB.')
    assert _incident_messages(engine, 1)[1] == "in:Here is the dump."  # its text came


@pytest.fixture
def small_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mail over the attachment limit is over the whole-message bound too (the real one, 64 MiB at
    least, would take mail of that size to pass)."""
    monkeypatch.setattr(receive, "whole_message_bound", lambda limit: limit)


def test_a_mail_over_the_bound_is_read_by_its_headers_and_its_text_with_a_note(
    mail: MailServers, limited: EmailBot, engine, small_bound: None
) -> None:  # noqa: ANN001
    told = _a_dump_over_the_limit(mail)
    # Its text came: the customer is told of the file alone.
    assert told.startswith('Your file "core.dump" (1.5 MB) was not passed on: it is over the limit of 1.0 MB.')
    (first, second) = _incident_messages(engine, 1)
    assert second.startswith("in:[A message of ") and "only its headers and its text were read" in second
    assert second.endswith("]\n\n#1 Here is the dump.")  # the text, under the note


def test_a_mail_over_the_bound_with_no_text_part_is_read_by_its_headers_with_a_note(
    mail: MailServers, limited: EmailBot, engine, small_bound: None
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    big = bytes(range(256)) * (6 * 1024)  # 1.5 MB
    dump = ana.compose("[#1] Dump", "replaced")
    dump.set_content(big, maintype="application", subtype="octet-stream", filename="core.dump")  # one part
    ana.deliver(dump)
    (told,) = ana.wait_for(lambda m: from_bot(m) and "over the size limit" in m.get_content())
    # Its text never came: the customer is told to send it again (one answer, the mail's files listed).
    assert (
        told.get_content().splitlines()[0]
        == "Your message was over the size limit, so neither its text nor its files were passed on. The engineers know; please send the text again, with smaller files or links to them."
    )
    assert "— core.dump (1." in told.get_content() and "over the limit of 1.0 MB" in told.get_content()
    (first, second) = _incident_messages(engine, 1)
    assert second.startswith("in:[A message of ") and "only its headers were read" in second


def test_a_mail_over_the_bound_names_its_files_from_its_structure(
    mail: MailServers, limited: EmailBot, engine, small_bound: None
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    big = bytes(range(256)) * (6 * 1024)  # 1.5 MB, base64 in the mail: about 2 MB as sent
    files = [("core.dump", big, "application/octet-stream"), ("relatório março.txt", b"x" * 300, "text/plain")]
    ana.send("Dump", "#1 Here is the dump.", attachments=files)
    # Read by its headers, BODYSTRUCTURE and text only: each file is named, the customer told of both in one mail.
    (told,) = ana.wait_for(lambda m: from_bot(m) and "core.dump" in m.get_content())
    lines = told.get_content().splitlines()
    assert lines[0] == "Not passed on (the engineers know; please send smaller files or links to them):"
    assert lines[1].startswith("— core.dump (1.") and lines[1].endswith("): not passed on, over the limit of 1.0 MB")
    # Within the limit itself, it came in a mail over it (the size is the part's as sent: 300 bytes and a line end).
    assert lines[2] == "— relatório março.txt (301 bytes): not passed on, in a message over the limit of 1.0 MB"
    with transaction(engine) as session:
        stored = session.scalars(
            select(IncidentAttachment).where(IncidentAttachment.incident_id == 1).order_by(IncidentAttachment.id)
        )
        rows = [(a.name, a.media_type, a.size, a.sha256, a.refused_over, a.data) for a in stored]
    assert rows == [
        ("core.dump", "application/octet-stream", rows[0][2], None, 2**20, None),
        ("relatório março.txt", "text/plain", rows[1][2], None, 2**20, None),
    ]
    assert abs(rows[0][2] - len(big)) < len(big) // 50  # 3/4 of the base64 size: about the file's
    (_, second) = _incident_messages(engine, 1)
    assert second.startswith("in:[A message of ") and "only its headers and its text were read" in second
    assert 'Its files, not kept: "core.dump" (application/octet-stream, about 1.5 MB)' in second
    assert '"relatório março.txt" (text/plain, ' in second
    assert second.endswith("\n\n#1 Here is the dump.")  # the text part named no file: it is the text


def test_commands_work_as_the_first_line_and_a_look_alike_in_a_thread_is_text(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana, bruno = mail.customers
    bot.customer("Bruno Lda", bruno.address, lang="pt")
    bruno.send("Impressora", "abrir\nA impressora não imprime.\n\n-- \nBruno Costa\nCliente Lda")
    (aberto,) = bruno.wait_for(from_bot)
    assert "O incidente #1 foi aberto: Impressora" in aberto.get_content()
    assert aberto["Content-Language"] == "pt-PT"  # what mail clients, screen readers, translators go by
    assert _incident_messages(engine, 1) == ["in:A impressora não imprime."]  # the signature is cut

    ana.send("Network", "open\nThe switch reboots.")
    (answer,) = ana.wait_for(from_bot)
    ana.send_reply(answer, "status 2")
    status = ana.wait_for(from_bot, count=2)[1]
    assert "Incident #2: Network" in status.get_content() and status["Content-Language"] == "en"
    ana.send_reply(answer, "Status: still rebooting every hour.")
    added = ana.wait_for(from_bot, count=3)[2].get_content()
    assert "Added to incident #2" in added
    assert _incident_messages(engine, 2)[-1] == "in:Status: still rebooting every hour."


def test_a_reply_with_a_file_and_no_words_joins_the_incident(mail: MailServers, bot: EmailBot, engine) -> None:  # noqa: ANN001
    from tests.mastodon.conftest import PNG

    ana = mail.customers[0]
    ana.send("Screen", "open\nThe screen flickers.")
    (answer,) = ana.wait_for(from_bot)
    shot = ana.compose(
        f"Re: {answer['Subject']}",
        "",
        attachments=[("flicker.png", PNG, "image/png")],
        headers={"In-Reply-To": answer["Message-ID"], "References": answer["Message-ID"]},
    )
    ana.deliver(shot)
    assert "Added to incident #1" in ana.wait_for(from_bot, count=2)[1].get_content()
    assert "+ file 'flicker.png'" in bot.topics()


def test_a_file_too_large_for_the_mail_servers_size_limit_is_left_out_and_said(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    import dataclasses
    from datetime import UTC

    from adapters.channel import Attachment
    from adapters.console import ENGINEER, console_line

    limit = bot.email.message_size_limit
    assert limit == 32 * 2**20  # the test server's EHLO SIZE
    ana = mail.customers[0]
    ana.send("Image", "open\nWhere is the recovery image?")
    ana.wait_for(from_bot)
    image = bytes(25 * 2**20 - 1)  # within deskbot's 25 MB, but a third larger in base64: over 32 MB
    files = (Attachment("recovery.img", "application/octet-stream", len(image), None, data=image),)
    command = console_line(ENGINEER, "/reply 1 Here is the image.", "e-big", bot.clock().astimezone(UTC))
    bot.runtime.intake.deliver(dataclasses.replace(command, attachments=files))
    shown = bot.topics()
    assert "recovery.img" in shown and "the mail server takes messages up to 32.0 MB" in shown
    reply = ana.wait_for(from_bot, count=2)[1]
    assert list(reply.iter_attachments()) == []
    assert "recovery.img (25.0 MB): not sent" in reply.get_content()


def test_a_yes_by_mail_to_reply_open_opens_the_incident_with_the_kept_text(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    ana.send("Disk full", "The backup disk is full since Monday.")
    (asked,) = ana.wait_for(from_bot)
    assert 'Reply "open" to open one with this message' in asked.get_content()
    ana.send_reply(asked, "Yes, please!", style="outlook")  # her client quotes the question below
    answers = ana.wait_for(from_bot, count=2)
    assert "Incident #1 is open: Disk full" in answers[1].get_content()  # named by the mail it kept
    assert _incident_messages(engine, 1) == ["in:The backup disk is full since Monday."]


def test_a_customer_added_with_no_language_is_answered_in_the_portuguese_they_write(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    """`/customer add NAME ADDRESS` chooses no language: the customer's first mail, plainly
    Portuguese, is answered in Portuguese, and so is everything after it."""
    joao = mail.customers[1]
    bot.customer("Tejo Lda", joao.address, lang=None)
    joao.send("NAS", "Olá, o NAS não arranca desde a atualização de ontem.")
    (asked,) = joao.wait_for(from_bot)
    assert "Não tem nenhum incidente aberto. Responda «abrir»" in asked.get_content()
    joao.send_reply(asked, "abrir", style="gmail")
    answers = joao.wait_for(from_bot, count=2)
    assert "O incidente #1 foi aberto: NAS" in answers[1].get_content()
    joao.send("Re: [#1] NAS", "status")
    answers = joao.wait_for(from_bot, count=3)
    assert "Os seus incidentes:" in answers[2].get_content()


def test_a_credit_expiry_reminder_reaches_a_customer_who_never_wrote_as_a_mail_of_its_own(
    mail: MailServers, bot: EmailBot, engine, clock
) -> None:  # noqa: ANN001
    """The operator gave the customer's address and granted a pack a year ago; the customer never
    wrote. In the month before the pack lapses the watcher mails them once: a new conversation
    (no In-Reply-To), `Auto-Submitted: auto-generated` (RFC 3834: not an answer), in their language."""
    joao = mail.customers[1]
    customer_id = bot.customer("Tejo Lda", joao.address, credits=0, lang="pt")
    with transaction(engine) as session:
        tejo = session.get_one(Customer, customer_id)
        credit_service.grant_credits(
            session, tejo, 2, date(2025, 12, 22), "test", clock(), months=12
        )  # lapses after 22 Dec
    bot.runtime.watch_once()
    (reminder,) = joao.wait_for(from_bot)
    assert reminder["Subject"] == "Os seus créditos de suporte caducam depois de 22 de dezembro de 2026"
    assert reminder["Auto-Submitted"] == "auto-generated" and reminder["In-Reply-To"] is None
    assert (
        "Um lembrete: 2 créditos de suporte do pacote que comprou em 22 de dezembro de 2025" in reminder.get_content()
    )
    bot.runtime.watch_once()  # once per pack: nothing more is written
    with transaction(engine) as session:
        written = session.scalars(select(Outbox).where(Outbox.channel == "email", Outbox.recipient == joao.address))
        assert len(list(written)) == 1
