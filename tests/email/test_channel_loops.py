"""No loops, no floods (SPEC §4 Email), through the real runtime and real mail servers: an
autoresponder that marks nothing gets at most the hourly cap of answers, bounces and mail
marked automatic are recorded and never answered, a thousand mails from a stranger cost one
answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from storage.db import transaction
from storage.models import Incident, IncidentMessage, Outbox
from tests.mail.servers import SUPPORT_ADDRESS, MailServers

from .channel_bot import EmailBot, count, from_bot, handled, wait_until

ANA = "ana.lima@customer.example"


@pytest.fixture
def bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock)
    running.customer("Ana's company", ANA)
    running.start()
    yield running
    running.halt()


def test_an_autoresponder_that_marks_nothing_gets_no_more_than_the_hourly_cap(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    answered: set[str] = set()
    stop = threading.Event()

    def robot() -> None:
        """Ana's mail program answers every mail it gets, with no Auto-Submitted or the like."""
        while not stop.wait(0.1):
            for message in ana.messages():
                if from_bot(message) and message["Message-ID"] not in answered:
                    answered.add(message["Message-ID"])
                    ana.send_reply(message, "Thank you for your message. I am out of the office.")

    ana.send("Server down", "open\nOur server does not boot.")
    thread = threading.Thread(target=robot, daemon=True)
    thread.start()
    try:
        # The bot answers 5 times (the default cap), the robot answers each: 6 mails handled.
        wait_until(lambda: handled(engine) >= 6, 30, "the exchange")
        quiet = handled(engine)
        stop.wait(3.0)  # nothing more comes: the bot stopped answering
        assert handled(engine) == quiet
    finally:
        stop.set()
        thread.join(5)
    assert len([m for m in ana.messages() if from_bot(m)]) == 5
    # Every mail of the robot is on the incident, for the engineers to see.
    messages = count(engine, select(func.count()).select_from(IncidentMessage).where(IncidentMessage.incident_id == 1))
    assert messages == quiet


def _bounce(original: EmailMessage) -> bytes:
    """A delivery status notification about `original`, as a mail server sends it (RFC 3464)."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@customer.example>\r\n"
        f"To: {SUPPORT_ADDRESS}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@customer.example>\r\n"
        f"In-Reply-To: {original['Message-ID']}\r\n"
        f"References: {original['Message-ID']}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host customer.example. I'm sorry to have to inform you...\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; customer.example\r\n\r\nFinal-Recipient: rfc822; ana.lima@customer.example\r\n"
        "Action: failed\r\nStatus: 5.2.2\r\n"
        "--b1--\r\n"
    ).encode()


def test_a_bounce_is_recorded_on_the_incident_it_names_and_never_answered(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    ana.send("Licence", "open\nOur licence expired.")
    (answer,) = ana.wait_for(from_bot)
    mail.dovecot.deliver(_bounce(answer), SUPPORT_ADDRESS, mail_from="")
    wait_until(lambda: handled(engine) == 2, 10, "the bounce handled")
    wait_until(lambda: "(An automatic message: it was not answered.)" in bot.topics(), 10, "the topic note")
    with transaction(engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.channel == "email")).all()
        assert len(rows) == 1  # the answer to "open" only
        incident_texts = [
            m.body for m in session.scalars(select(IncidentMessage).where(IncidentMessage.incident_id == 1))
        ]
        assert len(incident_texts) == 2
        incident = session.get(Incident, 1)
        # Still owed by the team: the bounce owes nothing more.
        assert incident is not None and incident.due_at is not None
    # An engineer's answer still goes to Ana, not to the mail server that bounced.
    bot.engineer("/reply 1 We renewed it.")
    assert "We renewed it." in ana.wait_for(from_bot, count=2)[1].get_content()


def test_mail_marked_automatic_from_a_stranger_gets_nothing(mail: MailServers, bot: EmailBot, engine) -> None:  # noqa: ANN001
    robot = mail.customers[1]  # not a customer of the desk
    robot.send("Out of office", "I am away until Monday.", headers={"Auto-Submitted": "auto-replied"})
    robot.send("Newsletter", "Our news.", headers={"List-Id": "<news.cliente.example.pt>"})
    robot.send("Bulk", "Offers.", headers={"Precedence": "bulk"})
    wait_until(lambda: handled(engine) == 3, 10, "the three mails handled")
    assert count(engine, select(func.count()).select_from(Outbox)) == 0


def test_a_thousand_mails_from_a_stranger_cost_one_answer(mail: MailServers, engine, db_url, clock) -> None:  # noqa: ANN001
    first = EmailBot(mail, engine, db_url, clock).start()
    first.halt()  # the cursor is stored: what arrives now is caught up at the next start
    flood = mail.customers[1]
    for number in range(1000):
        flood.send(f"Question {number}", f"Hello, question number {number}?")
    running = EmailBot(mail, engine, db_url, clock).start()
    try:
        wait_until(lambda: handled(engine) == 1000, 120, "the thousand mails handled")
        replies = wait_until(lambda: flood.wait_for(from_bot), 10)
        assert len(replies) == 1
        assert "I don't know this email address yet" in replies[0].get_content()
        assert count(engine, select(func.count()).select_from(Outbox)) == 1
    finally:
        running.halt()
