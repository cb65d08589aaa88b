"""A real `deskbot run` SIGKILLed in the middle of sending a mail, then started again (issue 11
item 8): what the customer gets, counted in their mailbox, and what the SMTP server took.

The bot runs as in production: a child process (`python -m bot.cli run`) with the Zulip fake
for the case topics and the email channel on the real mail servers of tests/mail (IMAP and
SMTP with STARTTLS, the test CA trusted through SSL_CERT_FILE). The customer's mail opens an
incident; the bot's answer is caught in its SMTP transaction by the submission server's
switches, the bot is killed there, and a new process takes the row over once the dead one's
lease ran out (storage/outbox.py, LEASE):

* killed before the server took the mail (held before the `354`): sent once, by the new process;
* killed after the server took it and before its `250` reached the bot: the Sent folder has no
  copy (the bot appends only after the `250`), so the new process sends it again, with the
  same Message-ID: one repeat, which mail clients fold into one;
* killed after the `250`, in the Sent-folder look (Dovecot frozen with SIGSTOP, so the bot
  waits there): the same, one repeat with the same Message-ID;
* the same kill before the `250` with a server that files a copy in Sent itself (as Gmail
  does): the new process finds the copy by its Message-ID and sends nothing again.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from storage.db import make_engine, upgrade
from tests.drills.conftest import BotProcess, DrillCustomer, Fakes, wait_until
from tests.mail.servers import SUPPORT_ADDRESS, MailServers

#: Real processes and the outbox lease (10 s) per test: about 70 s in all, so with the drills (`slow`).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def desk(mail: MailServers, tmp_path: Path) -> Iterator[tuple[Fakes, sa.Engine, BotProcess, DrillCustomer]]:
    """The fakes with the mail servers, a store, one email customer and a running `deskbot run`."""
    url = f"sqlite:///{tmp_path / 'deskbot.db'}"
    upgrade(url)
    engine = make_engine(url)
    fakes = Fakes().start().add_mail(mail)
    bot = BotProcess("deskbot", fakes.env(url), tmp_path / "deskbot.log")
    try:
        customer = fakes.add_customer(engine, "email", 1)
        bot.start().wait_ready()
        yield fakes, engine, bot, customer
    finally:
        print(f"--- the bot's log (last 60 lines) ---\n{bot.log_tail(60)}")  # shown when the test failed
        mail.smtp.release_data()
        if bot.alive:
            bot.terminate(15)
        fakes.stop()
        engine.dispose()


def _row(engine: sa.Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT id, state, attempts, platform_ids FROM outbox WHERE channel = 'email'")
        ).one()


def _answers(customer: DrillCustomer) -> list[EmailMessage]:
    assert customer.mailbox is not None
    return [m for m in customer.mailbox.messages() if SUPPORT_ADDRESS in str(m["From"])]


def _kill_held(fakes: Fakes, bot: BotProcess, customer: DrillCustomer, point: str) -> str:
    """The customer opens an incident; the bot is SIGKILLed while its answer is held at `point`;
    returns the Message-ID of the customer's mail."""
    assert fakes.mail is not None
    held = fakes.mail.smtp.hold_data(point)  # type: ignore[arg-type]
    sent = fakes.dm(customer, "open")
    assert held.wait(30), "the bot never reached DATA"
    bot.kill()
    fakes.mail.smtp.release_data()
    return sent.message_id


def _restart_until_sent(engine: sa.Engine, bot: BotProcess) -> Any:
    """Start a new process and wait until it has sent the dead one's row (after its lease ran out)."""
    bot.start().wait_ready()
    return wait_until(lambda: (row := _row(engine)).state == "sent" and row, 40, "the new process to send the row")


def test_killed_before_the_server_took_the_mail_the_answer_arrives_once(desk) -> None:  # noqa: ANN001
    fakes, engine, bot, customer = desk
    assert fakes.mail is not None
    asked = _kill_held(fakes, bot, customer, "command")  # held before the 354: nothing taken
    assert fakes.mail.smtp.accepted == []

    row = _restart_until_sent(engine, bot)
    assert row.attempts == 2
    (answer,) = customer.mailbox.wait_for(lambda m: SUPPORT_ADDRESS in str(m["From"]))  # type: ignore[union-attr]
    assert answer["In-Reply-To"] == asked
    assert "Incident #1 is open" in answer.get_content()
    assert [m.message_id for m in fakes.mail.smtp.accepted] == [answer["Message-ID"]]
    assert len(fakes.mail.support.messages("Sent")) == 1
    time.sleep(1)  # nothing more comes
    assert len(_answers(customer)) == 1


def _sent_once_more_with_the_same_message_id(
    mail: MailServers, engine: sa.Engine, bot: BotProcess, customer: DrillCustomer, asked: str
) -> None:
    """The mail the server took before the kill: the new process finds no copy in Sent (the bot
    appends after the 250) and sends it once more, the same mail, with the same Message-ID."""
    (first,) = mail.smtp.accepted
    assert _row(engine).state == "pending"  # the dead process never recorded it
    row = _restart_until_sent(engine, bot)
    assert row.attempts == 2
    assert row.platform_ids == f'["{first.message_id}"]'
    answers = customer.mailbox.wait_for(lambda m: SUPPORT_ADDRESS in str(m["From"]), count=2)  # type: ignore[union-attr]
    assert [a["Message-ID"] for a in answers] == [first.message_id] * 2
    assert [a["In-Reply-To"] for a in answers] == [asked] * 2
    assert [m.message_id for m in mail.smtp.accepted] == [first.message_id] * 2
    assert len(mail.support.messages("Sent")) == 1  # the new process's copy
    time.sleep(1)  # nothing more comes
    assert len(_answers(customer)) == 2


def test_killed_after_the_server_took_the_mail_before_its_250_it_comes_once_more_with_the_same_message_id(
    desk, mail: MailServers
) -> None:  # noqa: ANN001
    fakes, engine, bot, customer = desk
    asked = _kill_held(fakes, bot, customer, "reply")  # taken and delivered; the 250 never reaches the bot
    assert len(_answers(customer)) == 1
    _sent_once_more_with_the_same_message_id(mail, engine, bot, customer, asked)


def test_killed_after_the_250_in_the_sent_folder_look_it_comes_once_more_with_the_same_message_id(
    desk, mail: MailServers
) -> None:  # noqa: ANN001
    fakes, engine, bot, customer = desk
    held = mail.smtp.hold_data("reply")
    asked = fakes.dm(customer, "open").message_id
    assert held.wait(30), "the bot never reached DATA"
    # Dovecot frozen: the bot, once it has the 250, waits in its look into the Sent folder.
    group = os.getpgid(mail.dovecot._process.pid)  # type: ignore[union-attr]
    os.killpg(group, signal.SIGSTOP)
    try:
        mail.smtp.release_data()  # the 250 goes out
        time.sleep(2)
        bot.kill()
    finally:
        os.killpg(group, signal.SIGCONT)
    _sent_once_more_with_the_same_message_id(mail, engine, bot, customer, asked)


def test_killed_before_the_250_from_a_server_that_keeps_sent_copies_nothing_is_sent_again(
    desk, mail: MailServers
) -> None:  # noqa: ANN001
    fakes, engine, bot, customer = desk
    mail.smtp.keep_sent_copies()  # as Gmail: the copy is in Sent before the 250
    _kill_held(fakes, bot, customer, "reply")
    (first,) = mail.smtp.accepted

    row = _restart_until_sent(engine, bot)
    assert row.attempts == 2
    assert row.platform_ids == f'["{first.message_id}"]'
    time.sleep(1)
    assert [a["Message-ID"] for a in _answers(customer)] == [first.message_id]
    assert len(mail.smtp.accepted) == 1
    assert len(mail.support.messages("Sent")) == 1
    assert "was sent before (found in Sent); not sent again" in bot.log_text()
