"""A command in a new mail's subject (an email audit): "Status" over nothing but "Sent from my
iPhone" is the command, "close 1" over "Thanks, everything works now." closes #1 and adds the
thanks, and a body of nothing but a signature says nothing of its own; a subject that only begins
like a command ("Status of my order?", "Help! server down") is no command, nor one over a body that
is a command itself, nor one a reply or a forward carries. Through the real runtime (its
`customer_command`, from the commands' declarations) and a real Dovecot; then the adapter's
reading of many subjects, with the same declarations and no server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import select

from adapters.email.inbound import mail_to_inbound
from adapters.email.reading import read_mail
from bot import handlers
from bot.runtime import customer_command
from storage.db import transaction
from storage.models import Incident, IncidentMessage
from tests.mail.servers import MailServers

from .channel_bot import EmailBot, from_bot

ANA = "ana.lima@customer.example"


@pytest.fixture
def bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock)
    running.customer("Ana's company", ANA)
    running.start()
    yield running
    running.halt()


def _bodies(engine, number: int) -> list[str]:  # noqa: ANN001
    with transaction(engine) as session:
        query = select(IncidentMessage.body).where(
            IncidentMessage.incident_id == number, IncidentMessage.direction == "in"
        )
        return list(session.scalars(query.order_by(IncidentMessage.id)))


def _state(engine, number: int) -> str:  # noqa: ANN001
    with transaction(engine) as session:
        incident = session.get(Incident, number)
        assert incident is not None
        return incident.state


def _text(message) -> str:  # noqa: ANN001
    return " ".join(message.get_content().split())


def test_a_subject_command_over_a_phone_signature_or_over_words_is_run(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    # A body of nothing but a signature: the subject is what she wrote, kept until she says "open".
    ana.send("Printer on fire", "-- \nAna Lima\nACME, Lda\n+351 210 000 000")
    (kept,) = ana.wait_for(from_bot)
    assert 'Reply "open" to open one with this message' in _text(kept)
    ana.send_reply(kept, "open")
    assert "Incident #1 is open: Printer on fire" in _text(ana.wait_for(from_bot, count=2)[1])
    assert _bodies(engine, 1) == ["Printer on fire"]

    # "Status" over nothing but the phone's line: the status, and nothing added to #1.
    ana.send("Status", "Sent from my iPhone")
    assert "Your incidents:" in _text(ana.wait_for(from_bot, count=3)[2])
    assert _bodies(engine, 1) == ["Printer on fire"]

    # A subject that only begins like a command: her words go to #1, no status, no help.
    ana.send("Status of my order?", "Order 55 has not arrived.")
    answer = _text(ana.wait_for(from_bot, count=4)[3])
    assert "Added to incident #1" in answer and "Your incidents:" not in answer
    ana.send("Help! server down", "The main server is down since 9:00.")
    answer = _text(ana.wait_for(from_bot, count=5)[4])
    assert "Added to incident #1" in answer and "Commands" not in answer
    assert _bodies(engine, 1)[-2:] == ["Order 55 has not arrived.", "The main server is down since 9:00."]

    # A command in the subject over a body that is a command itself: the body's.
    ana.send("close 1", "status 1")
    assert "#1" in _text(ana.wait_for(from_bot, count=6)[5])
    assert _state(engine, 1) == "open"

    # "close 1" over her thanks: the thanks on #1, then #1 closed; the closing words stay hers.
    ana.send("close 1", "Thanks, everything works now.\n\nKind regards,\nAna")
    closed = ana.wait_for(lambda m: from_bot(m) and "Incident #1 is closed" in _text(m))
    assert closed
    assert _state(engine, 1) == "closed"
    assert _bodies(engine, 1)[-1] == "Thanks, everything works now.\n\nKind regards,\nAna"
    assert "Thanks, everything works now." in bot.topics()


def _inbound(subject: str, body: str, headers: str = "", *, command: bool = True) -> str:
    raw = (
        f"From: Ana <ana@customer.example>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <1@customer.example>\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()
    return mail_to_inbound(
        read_mail(raw),
        own_address="support@example.com",
        uid_key="u",
        received_at=datetime.now(UTC),
        authserv_id=None,
        customer_command=partial(customer_command, handlers.registry()) if command else None,
    ).text


@pytest.mark.parametrize(
    ("subject", "body", "text"),
    [
        # Nothing in the body but what a phone, Outlook or a signature adds: the subject says it.
        ("Status", "Sent from my iPhone\r\n", "Status"),
        ("Estado", "Enviado do meu iPhone\r\n", "Estado"),
        ("Credits", "\r\nGet Outlook for Android (https://aka.ms/AAb9ysg)\r\n", "Credits"),
        ("Créditos", "Obter o Outlook para iOS<https://aka.ms/o0ukef>\r\n", "Créditos"),
        ("Printer on fire", "-- \r\nAna Lima\r\nACME, Lda\r\n", "Printer on fire"),
        # A command naming an incident, over her words: the command, then the words.
        ("close 1", "Thanks, everything works now.\r\n", "close 1\nThanks, everything works now."),
        ("Fechar #1", "Obrigada, já funciona.\r\n\r\nEnviado do meu iPhone\r\n", "Fechar #1\nObrigada, já funciona."),
        ("[EXTERNAL] severity 1 1", "Production is down.\r\n", "severity 1 1\nProduction is down."),
        ("reopen 1", "It broke again.\r\n", "reopen 1\nIt broke again."),
        ("Reabrir 1 voltou a falhar", "Desde as 9:00.\r\n", "Reabrir 1 voltou a falhar\nDesde as 9:00."),
        ("status 1", "Any news?\r\n", "status 1\nAny news?"),
        # A command naming none takes no words after it ("lang pt Obrigado" would be wrong): the body.
        ("Status", "Any news on my VPN case?\r\n", "Any news on my VPN case?"),
        ("lang pt", "Obrigado\r\n", "Obrigado"),
        ("Help", "VPN\r\n", "VPN"),
        # Only the beginning of a subject is a command word: the body, as it always was.
        ("Status of my order?", "Order 55 has not arrived.\r\n", "Order 55 has not arrived."),
        ("Help! server down", "Since 9:00.\r\n", "Since 9:00."),
        ("Close 1 and open 2", "Please.\r\n", "Please."),
        ("Open VPN fails", "Since Monday.\r\n", "Since Monday."),
        # Not exactly a command: words already follow its arguments.
        ("close 1 thanks", "Bye.\r\n", "Bye."),
        # The body is a command itself: it is what she asks.
        ("close 1", "status 1\r\n", "status 1"),
        ("close 1", "close 2 thanks\r\n", "close 2 thanks"),
    ],
)
def test_a_new_mails_subject_command_and_signature_only_bodies(subject: str, body: str, text: str) -> None:
    assert _inbound(subject, body) == text


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        # A reply's subject repeats the one it answers: every answer in a "close 1" thread would close.
        ("Re: close 1", "In-Reply-To: <deskbot.4.x@example.com>\r\n"),
        ("close 1", "References: <deskbot.4.x@example.com>\r\n"),
        ("RE: close 1", ""),
        # A forward's subject is the forwarded mail's.
        ("Fwd: close 1", ""),
        # A machine's mail is recorded as it came, never run.
        ("close 1", "Auto-Submitted: auto-replied\r\n"),
    ],
)
def test_no_subject_command_in_a_reply_a_forward_or_a_machines_mail(subject: str, headers: str) -> None:
    assert _inbound(subject, "It broke again.\r\n", headers) == "It broke again."


def test_without_the_runtimes_commands_no_subject_is_read_as_one() -> None:
    assert _inbound("close 1", "Thanks.\r\n", command=False) == "Thanks."
    assert _inbound("Status", "Sent from my iPhone\r\n", command=False) == "Status"
