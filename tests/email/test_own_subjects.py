"""A reply to a mail of the bot's own words is not named after it (an email audit: a reply to the
credit expiry reminder opened an incident, and a Zulip topic, called "Os seus créditos de suporte
caducam depois de 22 de dezembro de 2026"). The bot's mail says in its Message-ID that its subject
is its own (`adapters.email.subjects`): a reply under that subject offers no subject for an
incident, whose subject then comes from the customer's words; a reply whose sender wrote a subject
of their own keeps it. Through the real runtime, its watcher's reminder and a real Dovecot; then
the ids and subjects alone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from adapters.channel import Outbound
from adapters.email.compose import bots_words, message_id
from adapters.email.inbound import mail_to_inbound
from adapters.email.reading import read_mail
from adapters.email.subjects import bots_own_subject
from bot.services import credits as credit_service
from storage.db import transaction
from storage.models import Customer, Incident
from tests.mail.servers import MailServers

from .channel_bot import EmailBot, from_bot

REMINDER = "Os seus créditos de suporte caducam depois de 22 de dezembro de 2026"


@pytest.fixture
def bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock)
    running.start()
    yield running
    running.halt()


def _subject(engine, number: int) -> str:  # noqa: ANN001
    with transaction(engine) as session:
        incident = session.get(Incident, number)
        assert incident is not None
        return incident.subject


def test_a_reply_to_the_credit_reminder_is_named_by_the_customers_words(
    mail: MailServers, bot: EmailBot, engine, clock
) -> None:  # noqa: ANN001
    joao = mail.customers[1]
    customer_id = bot.customer("Tejo Lda", joao.address, credits=0, lang="pt")
    with transaction(engine) as session:
        tejo = session.get_one(Customer, customer_id)
        credit_service.grant_credits(session, tejo, 2, date(2025, 12, 22), "test", clock(), months=12)
    bot.runtime.watch_once()
    (reminder,) = joao.wait_for(from_bot)
    assert reminder["Subject"] == REMINDER

    # He answers the reminder about a problem: the text is kept, and "abrir" in that thread opens it,
    # named by his words, not by the reminder.
    joao.send_reply(reminder, "A VPN cai de hora a hora desde segunda.", language="pt")
    asked = joao.wait_for(from_bot, count=2)[1]
    assert "Responda «abrir»" in asked.get_content()
    joao.send_reply(asked, "abrir", language="pt")
    opened = joao.wait_for(from_bot, count=3)[2]
    assert "O incidente #1 foi aberto: A VPN cai de hora a hora desde segunda." in " ".join(
        opened.get_content().split()
    )
    assert _subject(engine, 1) == "A VPN cai de hora a hora desde segunda."
    assert opened["Subject"] == "Re: [#1] A VPN cai de hora a hora desde segunda."
    assert REMINDER not in bot.topics()

    # A subject he wrote himself in answer to the reminder is his: it names the incident.
    joao.send("Fechar", "fechar 1")
    joao.wait_for(lambda m: from_bot(m) and "O incidente #1 está fechado" in m.get_content())
    own = joao.reply(reminder, "abrir\nO portátil da receção não arranca.", language="pt")
    own.replace_header("Subject", "Re: Portátil da receção")
    joao.deliver(own)
    joao.wait_for(lambda m: from_bot(m) and "#2" in m.get_content())
    assert _subject(engine, 2) == "Portátil da receção"


def _row(**changes: object) -> Outbound:
    values: dict[str, object] = {
        "outbox_id": 7,
        "channel": "email",
        "kind": "direct",
        "text": "…",
        "recipient": "ana@customer.example",
        "written_at": datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        "subject": REMINDER,
    }
    values.update(changes)
    return Outbound(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "own"),
    [
        (_row(), True),  # a reminder, a link notice: about no incident, answering no mail
        (_row(conversation="<1@customer.example>", subject=None), True),  # "Re: <display name>"
        (_row(conversation="<1@customer.example>", subject="Printer"), False),  # "Re: <their subject>"
        (_row(case=3, subject="Printer"), False),  # "[#3] <the incident's subject>", from the customer
        (_row(case=3, conversation="<1@customer.example>", subject="Printer"), False),
    ],
)
def test_a_mails_message_id_says_whether_its_subject_is_the_bots_own(row: Outbound, own: bool) -> None:
    assert bots_words(row) is own
    assert (".s" in message_id(row, "example.com", "Support").split("@")[0]) is own
    # The same at every attempt: a retried row is found in Sent by it.
    assert message_id(row, "example.com", "Support") == message_id(row, "example.com", "Support")


OWN = message_id(_row(), "example.com", "Support")
NAMELESS = message_id(_row(conversation="<1@c.example>", subject=None), "example.com", "Example Support")


@pytest.mark.parametrize(
    ("subject", "answered", "bots"),
    [
        ("Re: " + REMINDER, (OWN,), True),
        ("RE: [EXTERNAL] Res: " + REMINDER.upper(), ("<other@c.example>", OWN), True),  # any case, any prefix
        ("Re: [#4] " + REMINDER, (OWN,), True),
        ("Re: Example Support", (NAMELESS,), True),
        ("Re: VPN drops", (OWN,), False),  # a subject of the customer's own
        ("Re: " + REMINDER, ("<deskbot.7.x@example.com>",), False),  # a mail that says nothing of its subject
        ("Re: " + REMINDER, (), False),
        ("", (OWN,), False),
    ],
)
def test_a_subject_is_the_bots_own_only_under_a_mail_that_says_so(
    subject: str, answered: tuple[str, ...], bots: bool
) -> None:
    assert bots_own_subject(subject, answered) is bots


def _hint(subject: str, in_reply_to: str) -> str | None:
    raw = (
        f"From: ana@customer.example\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <2@customer.example>\r\nIn-Reply-To: {in_reply_to}\r\n\r\nMy VPN drops.\r\n"
    ).encode()
    inbound = mail_to_inbound(
        read_mail(raw), own_address="support@example.com", uid_key="u", received_at=None, authserv_id=None
    )
    return inbound.subject_hint


def test_the_inbound_offers_no_subject_that_is_the_bots_own() -> None:
    assert _hint("Re: " + REMINDER, OWN) is None
    assert _hint("Re: VPN drops", OWN) == "VPN drops"
    assert _hint("Re: " + REMINDER, "<deskbot.7.x@example.com>") == REMINDER
