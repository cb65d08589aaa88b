"""A colleague of a customer writes from another address of the customer's company, through the
real runtime and the real mail servers: his answer says the support team was told (in English or
Portuguese), the engineers read who wrote and the command that links him in the alerts topic
(once a day per address), and after `/customer link` a reply "open" opens the incident with what he
wrote. A free-mail domain, or mail that failed authentication, gets neither the word nor the notice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from adapters.email import EmailChannel
from tests.mail.mailbox import Mailbox
from tests.mail.servers import MailServers

from .channel_bot import FAST, EmailBot, email_settings, from_bot, handled, wait_until

TOLD_EN = "I have told the support team that you wrote: if your organisation has support with us"
TOLD_PT = "Avisei a equipa de suporte de que escreveu: se a sua organização tem suporte connosco"
NOTICE = "wrote to the support desk and is linked to no customer"


@pytest.fixture
def bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock)
    running.customer("Acme Lda", "ana@acme.example")
    running.start()
    yield running
    running.halt()


def _mailbox(mail: MailServers, address: str, name: str) -> Mailbox:
    box = mail.add_user(address, name)
    time.sleep(1.1)  # Dovecot rereads its users file when its modification time changes, to the second
    return box


def _notices(bot: EmailBot, address: str) -> int:
    """How many times the alerts topic told the engineers that `address` wrote."""
    return sum(
        1 for line in bot.topics().splitlines() if line.startswith("[deskbot alerts]") and f"`{address}` " in line
    )


def test_a_colleague_is_told_the_team_knows_and_the_engineers_once_a_day(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    joao = _mailbox(mail, "joao@acme.example", "João Silva")
    first = joao.send("Printer", "The printer on floor 2 is down since this morning.")
    (answer,) = joao.wait_for(from_bot)
    text = answer.get_content()
    assert "I don't know this email address yet" in text and TOLD_EN in text
    assert "Acme" not in text  # the sender is not verified to be theirs: nobody is named
    assert answer["In-Reply-To"] == first["Message-ID"]
    wait_until(lambda: _notices(bot, "joao@acme.example") == 1, 10, "the engineers' notice")
    notice = next(line for line in bot.topics().splitlines() if NOTICE in line)
    assert "`Acme Lda` (id 1)" in notice and "`/customer link 1 joao@acme.example`" in notice

    # The same day: no second answer, no second notice.
    joao.send("Printer", "Anyone there?")
    wait_until(lambda: handled(engine) == 2, 10, "the second mail handled")
    time.sleep(0.5)
    assert len([m for m in joao.messages() if from_bot(m)]) == 1
    assert _notices(bot, "joao@acme.example") == 1

    # A day later: the answer and the notice again.
    bot.clock.advance(days=1, minutes=1)
    joao.send("Printer", "Still down.")
    assert TOLD_EN in joao.wait_for(from_bot, count=2)[1].get_content()
    wait_until(lambda: _notices(bot, "joao@acme.example") == 2, 10, "the next day's notice")

    # The engineer links him: he reads so by mail, and "open" opens the incident with what he wrote.
    out = bot.engineer("/customer link 1 joao@acme.example")
    assert "`joao@acme.example` is now linked to `Acme Lda` (id 1)" in out
    linked = joao.wait_for(lambda m: from_bot(m) and "linked this email address to Acme Lda" in m.get_content())
    assert linked[0]["Subject"] == "This address is now linked to Acme Lda's support"
    assert 'reply "open" to open an incident with it' in linked[0].get_content()
    joao.send("Printer", "open")
    opened = joao.wait_for(lambda m: from_bot(m) and "Incident #1 is open" in m.get_content())
    assert opened
    assert "Still down." in bot.topics()  # the kept text opened the case


def test_a_colleague_writing_portuguese_is_answered_in_portuguese(mail: MailServers, bot: EmailBot) -> None:
    maria = _mailbox(mail, "maria@acme.example", "Maria Costa")
    maria.send("Impressora", "Olá, preciso de ajuda: a impressora não imprime.")
    (answer,) = maria.wait_for(from_bot)
    text = answer.get_content()
    assert "Ainda não reconheço este endereço de email" in text and TOLD_PT in text
    assert TOLD_EN not in text
    wait_until(lambda: _notices(bot, "maria@acme.example") == 1, 10, "the engineers' notice")


def test_a_free_mail_domain_gets_neither_the_word_nor_the_notice(
    mail: MailServers, bot: EmailBot, engine, clock
) -> None:  # noqa: ANN001
    bot.customer("Solo Consulting", "solo.consulting@gmail.com")
    other = _mailbox(mail, "someone.else@gmail.com", "Someone Else")
    other.send("Help", "We need help with our NAS.")
    (answer,) = other.wait_for(from_bot)
    assert "I don't know this email address yet" in answer.get_content()
    assert TOLD_EN not in answer.get_content()
    time.sleep(0.5)
    assert NOTICE not in bot.topics()


def test_mail_failing_authentication_gets_neither_the_word_nor_the_notice(
    mail: MailServers, engine, db_url, clock
) -> None:  # noqa: ANN001
    channel = EmailChannel(email_settings(mail, authserv_id="mx.example.com"), tuning=FAST)
    running = EmailBot(mail, engine, db_url, clock, channel=channel)
    running.customer("Acme Lda", "ana@acme.example")
    running.start()
    try:
        rui = _mailbox(mail, "rui@acme.example", "Rui")
        failing = {
            "Authentication-Results": "mx.example.com; spf=fail smtp.mailfrom=evil.example; dmarc=fail header.from=acme.example"
        }
        rui.send("Urgent", "Please reset our admin password.", headers=failing)
        (answer,) = rui.wait_for(from_bot)
        assert "I could not verify that this message really comes from this address" in answer.get_content()
        assert TOLD_EN not in answer.get_content()
        time.sleep(0.5)
        assert NOTICE not in running.topics()
        # The same colleague, verified: the word and the notice.
        passing = {
            "Authentication-Results": "mx.example.com; spf=pass smtp.mailfrom=acme.example; dmarc=pass header.from=acme.example"
        }
        rui.send("Urgent", "Please reset our admin password.", headers=passing)
        assert TOLD_EN in rui.wait_for(from_bot, count=2)[1].get_content()
        wait_until(lambda: _notices(running, "rui@acme.example") == 1, 10, "the engineers' notice")
    finally:
        running.halt()
