"""No loops, no floods (SPEC §4 Email), through the real runtime and real mail servers: an
autoresponder that marks nothing gets at most the hourly cap of answers (one whose every mail is a
command, the higher cap of answers to commands), while a customer writing at a person's pace gets
every answer; bounces, mail marked automatic and out-of-office replies known by their subject are
recorded and never answered, a thousand mails from a stranger cost one answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from storage.db import transaction
from storage.models import Incident, IncidentMessage, Outbox
from tests.mail.mailbox import Mailbox
from tests.mail.servers import SUPPORT_ADDRESS, MailServers

from .channel_bot import EmailBot, count, from_bot, handled, wait_until

ANA = "ana.lima@customer.example"
#: The line that tells the engineers the bot holds answers back (bot.services.strangers.answers_withheld).
HELD_BACK = "automatic answers to `Ana's company` (`ana.lima@customer.example` by email) are held back"


@pytest.fixture
def bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock)
    running.customer("Ana's company", ANA)
    running.start()
    yield running
    running.halt()


def _exchange_with_a_robot(ana: Mailbox, engine, answer: str, answers: int) -> int:  # noqa: ANN001
    """Ana opens an incident, and her mail program answers every mail it gets with `answer`, marking
    nothing (no Auto-Submitted or the like). Waits until the bot has answered `answers` times and the
    robot each of them, then that nothing more comes; the mails handled."""
    answered: set[str] = set()
    stop = threading.Event()

    def robot() -> None:
        while not stop.wait(0.1):
            for message in ana.messages():
                if from_bot(message) and message["Message-ID"] not in answered:
                    answered.add(message["Message-ID"])
                    ana.send_reply(message, answer)

    ana.send("Server down", "open\nOur server does not boot.")
    thread = threading.Thread(target=robot, daemon=True)
    thread.start()
    try:
        wait_until(lambda: handled(engine) >= answers + 1, 60, "the exchange")
        quiet = handled(engine)
        stop.wait(3.0)  # nothing more comes: the bot stopped answering
        assert handled(engine) == quiet
    finally:
        stop.set()
        thread.join(5)
    assert len([m for m in ana.messages() if from_bot(m)]) == answers
    return quiet


def test_an_autoresponder_that_marks_nothing_gets_no_more_than_the_hourly_cap(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    # The bot answers 5 times (the default cap), the robot answers each: 6 mails handled.
    quiet = _exchange_with_a_robot(mail.customers[0], engine, "Thank you for your message. I am out of the office.", 5)
    assert quiet == 6
    # Every mail of the robot is on the incident, for the engineers to see, who are told once.
    messages = count(engine, select(func.count()).select_from(IncidentMessage).where(IncidentMessage.incident_id == 1))
    assert messages == quiet
    assert bot.topics().count(HELD_BACK) == 1


def test_an_autoresponder_whose_every_mail_is_a_command_stops_at_the_cap_of_answers_to_commands(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    from bot.services.strangers import COMMAND_ANSWERS

    assert _exchange_with_a_robot(mail.customers[0], engine, "status", COMMAND_ANSWERS) == COMMAND_ANSWERS + 1
    assert bot.topics().count(HELD_BACK) == 1


def test_a_customer_writing_at_a_persons_pace_gets_every_answer(mail: MailServers, engine, db_url, clock) -> None:  # noqa: ANN001
    """The audit's sequence, with the default settings (EMAIL_ANSWERS_PER_HOUR 5,
    DESKBOT_ACK_QUIET_MINUTES 10): a sixth and more commands within the hour are answered, and the
    second `open` opens, with its text in the new case's topic."""
    bot = EmailBot(mail, engine, db_url, clock, DESKBOT_ACK_QUIET_MINUTES=10)
    bot.customer("Ana's company", ANA)
    bot.start()
    try:
        ana = mail.customers[0]
        ana.send("Licence server", "Our licence server will not start after the update.")
        steps = [
            ("open", "Incident #1 is open"),
            ("severity 1 2", "Incident #1 now has severity 2"),
            ("status", "#1 Licence server"),
            ("help", "open"),
            ("open How do I move our licence to the new server?", "You already have an open incident: #1"),
            ("status", "#1 Licence server"),
            ("open", "Incident #2 is open"),
        ]
        answers = ana.wait_for(from_bot)
        assert 'Reply "open"' in answers[-1].get_content()
        for text, expected in steps:
            clock.advance(minutes=1)
            ana.send_reply(answers[-1], text, style="outlook")
            answers = ana.wait_for(from_bot, count=len(answers) + 1)
            assert expected in answers[-1].get_content(), text
        with transaction(engine) as session:
            second = session.get(Incident, 2)
            assert second is not None
            bodies = session.scalars(select(IncidentMessage.body).where(IncidentMessage.incident_id == 2)).all()
        assert bodies == ["How do I move our licence to the new server?"]
        assert "| How do I move our licence to the new server?" in bot.topics()
        assert "held back" not in bot.topics()
    finally:
        bot.halt()


@pytest.mark.parametrize(
    ("lang", "subject", "headers", "threaded", "text"),
    [
        ("en", "Automatic reply: {subject}", {}, True, "I am out of the office until Monday."),
        ("en", "Out of Office: {subject}", {}, True, "I am out of the office until Monday."),
        # Found by the `[#N]` of its subject alone: no In-Reply-To, no References.
        ("pt", "Resposta automática: {subject}", {}, False, "Estou fora do escritório até segunda-feira."),
        ("en", "{subject}", {"Auto-Submitted": "auto-replied"}, True, "I am out of the office until Monday."),
    ],
    ids=["automatic-reply", "out-of-office", "resposta-automatica", "auto-submitted"],
)
def test_an_out_of_office_reply_is_recorded_unanswered_and_owes_no_answer(
    mail: MailServers,
    engine,  # noqa: ANN001
    db_url: str,
    clock,  # noqa: ANN001
    lang: str,
    subject: str,
    headers: dict[str, str],
    threaded: bool,
    text: str,
) -> None:
    """An engineer answered, so nothing is due; the customer's vacation reply to that answer, marked by
    its header or only by its subject's first words, is kept and shown, and leaves it so."""
    bot = EmailBot(mail, engine, db_url, clock)
    bot.customer("Ana's company", ANA, lang=lang)
    bot.start()
    try:
        ana = mail.customers[0]
        ana.send("Licence", "open\nOur licence expired.")
        ana.wait_for(from_bot)
        bot.engineer("/reply 1 We renewed it: please check.")
        answer = ana.wait_for(from_bot, count=2)[1]
        assert "· due: —" in bot.engineer("/case 1")
        oof = ana.compose(subject.format(subject=answer["Subject"]), text, headers=headers)
        if threaded:
            oof["In-Reply-To"] = answer["Message-ID"]
            oof["References"] = answer["Message-ID"]
        ana.deliver(oof)
        wait_until(lambda: handled(engine) == 2, 10, "the reply handled")
        wait_until(lambda: "(An automatic message: it was not answered.)" in bot.topics(), 10, "the topic note")
        assert f"| {text}" in bot.topics()
        assert "· due: —" in bot.engineer("/case 1")
        with transaction(engine) as session:
            incident = session.get(Incident, 1)
            assert incident is not None and incident.due_at is None
            bodies = session.scalars(select(IncidentMessage.body).where(IncidentMessage.incident_id == 1)).all()
            assert text in bodies
        # Nothing more went to Ana than the opening answer and the engineer's.
        assert count(engine, select(func.count()).select_from(Outbox).where(Outbox.channel == "email")) == 2
    finally:
        bot.halt()


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
