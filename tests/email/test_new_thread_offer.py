"""A new mail thread from a customer with one open incident (SPEC §2: it joins that incident),
through the real runtime and a real Dovecot: its answer offers `open` for a separate problem, even
where the quiet acknowledgement rule would say nothing; `open` (or a polite "yes" in that thread)
opens a new incident with that mail's text and files, which stays on the old incident too, whose
topic says where it went. Replies in the incident's own threads, and `[#N]` subjects, get no offer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from storage.db import transaction
from storage.models import CreditPack, IncidentAttachment, IncidentMessage
from tests.mail.servers import MailServers
from tests.mastodon.conftest import PNG

from .channel_bot import EmailBot, from_bot, wait_until

ANA = "ana.lima@customer.example"
BRUNO = "bruno.costa@cliente.example.pt"
OFFER = 'If this is a separate problem, reply "open" within 24 hours to open a new incident with this message'
OFERTA = "Se for um problema diferente, responda «abrir» dentro de 24 horas para abrir um novo incidente"


@pytest.fixture
def quiet_bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    """The bot with the default quiet rule (a message soon after the sender's own is not answered)."""
    running = EmailBot(mail, engine, db_url, clock, DESKBOT_ACK_QUIET_MINUTES=10)
    running.customer("Ana's company", ANA)
    running.customer("Cliente", BRUNO, lang="pt")
    running.start()
    yield running
    running.halt()


def _bodies(engine, number: int) -> list[str]:  # noqa: ANN001
    with transaction(engine) as session:
        query = select(IncidentMessage.body).where(
            IncidentMessage.incident_id == number, IncidentMessage.direction == "in"
        )
        return list(session.scalars(query.order_by(IncidentMessage.id)))


def _files(engine, number: int) -> list[str]:  # noqa: ANN001
    with transaction(engine) as session:
        return list(session.scalars(select(IncidentAttachment.name).where(IncidentAttachment.incident_id == number)))


def _credits_used(engine) -> int:  # noqa: ANN001
    with transaction(engine) as session:
        return int(session.scalar(select(func.sum(CreditPack.used))) or 0)


def test_a_new_mail_joining_the_open_incident_offers_open_and_open_moves_it_with_its_files(
    mail: MailServers, quiet_bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    ana.send("Backup failing", "open\nThe nightly backup fails at 80%.")
    (opened,) = ana.wait_for(from_bot)
    # In #1's own thread, soon after her own message: added quietly, no offer (nothing to answer).
    ana.send_reply(opened, "It failed again tonight.", style="thunderbird")
    wait_until(lambda: len(_bodies(engine, 1)) == 2, what="the reply on #1")

    # A new mail, soon after too: the quiet rule would say nothing, but a way out is offered.
    other = ana.send("Web UI", "The web UI is slow since Monday.", attachments=[("slow.png", PNG, "image/png")])
    added = ana.wait_for(from_bot, count=2)[1]
    text = " ".join(added.get_content().split())
    assert "Added to incident #1." in text and OFFER in text and "(it uses one credit)" in text
    assert added["In-Reply-To"] == other["Message-ID"]
    assert _bodies(engine, 1)[-1] == "The web UI is slow since Monday." and _files(engine, 1) == ["slow.png"]
    assert _credits_used(engine) == 1

    # "open" in that thread: a new incident with the mail's words and file; they stay on #1 too.
    ana.send_reply(added, "open")
    answer = " ".join(ana.wait_for(from_bot, count=3)[2].get_content().split())
    assert "Incident #2 is open: Web UI" in answer and "Your message stays on incident #1 too." in answer
    assert "not included" not in answer
    assert _bodies(engine, 2) == ["The web UI is slow since Monday."]
    assert _bodies(engine, 1) == [
        "The nightly backup fails at 80%.",
        "It failed again tonight.",
        "The web UI is slow since Monday.",
    ]
    assert _files(engine, 2) == ["slow.png"] and _files(engine, 1) == ["slow.png"]
    assert _credits_used(engine) == 2
    topics = quiet_bot.topics()
    assert "The customer opened a new case, #2, with their message `The web UI is slow since Monday.`" in topics
    assert "the message stays here too" in topics
    # The offer was used: `open` again has nothing kept to open with.
    ana.send("again", "open")
    assert "Tell us what the incident is about" in ana.wait_for(from_bot, count=4)[3].get_content()


def test_a_polite_yes_in_the_new_thread_opens_it_and_a_yes_to_an_engineer_does_not(
    mail: MailServers, quiet_bot: EmailBot, engine, clock
) -> None:  # noqa: ANN001
    bruno = mail.customers[1]
    bruno.send("Disco cheio", "abrir\nO disco do servidor está cheio.")
    bruno.wait_for(from_bot)
    clock.advance(minutes=1)
    quiet_bot.engineer("/reply 1 Já reiniciou o servidor?")
    asked = bruno.wait_for(lambda m: from_bot(m) and "reiniciou" in m.get_content(), count=1)[0]
    clock.advance(minutes=1)
    bruno.send("Impressora", "A impressora do 2.º andar não imprime.")
    offered = bruno.wait_for(from_bot, count=3)[2]
    text = " ".join(offered.get_content().split())
    assert "Mensagem adicionada ao incidente #1." in text and OFERTA in text and "(utiliza um crédito)" in text
    clock.advance(minutes=1)

    # "Sim" to the engineer's older mail answers the engineer, in #1, and opens nothing.
    bruno.send_reply(asked, "Sim.")
    wait_until(lambda: _bodies(engine, 1)[-1] == "Sim.", what="the answer to the engineer on #1")
    assert _credits_used(engine) == 1
    clock.advance(minutes=1)

    # A polite yes to the offer, in its thread: a new incident with the printer's words, not the yes.
    bruno.send_reply(offered, "Sim, por favor abram o pedido.", language="pt")
    answer = wait_until(
        lambda: next((m for m in bruno.messages() if from_bot(m) and "#2" in m.get_content()), None),
        what="the answer that opens #2",
    )
    text = " ".join(answer.get_content().split())
    assert "O incidente #2 foi aberto" in text and "A sua mensagem continua também no incidente #1." in text
    assert _bodies(engine, 2) == ["A impressora do 2.º andar não imprime."]
    assert "Sim, por favor abram o pedido." not in _bodies(engine, 1) + _bodies(engine, 2)
    assert _credits_used(engine) == 2


def test_replies_in_the_incidents_thread_and_tagged_subjects_get_no_offer(mail: MailServers, engine, db_url, clock):  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock)  # every message answered: the offer alone differs
    running.customer("Ana's company", ANA)
    running.start()
    try:
        ana = mail.customers[0]
        ana.send("Backup failing", "open\nThe nightly backup fails at 80%.")
        (opened,) = ana.wait_for(from_bot)
        ana.send_reply(opened, "It failed again tonight.", style="gmail")
        in_thread = ana.wait_for(from_bot, count=2)[1].get_content()
        ana.send("[#1] Backup failing", "Here is more about it.")
        tagged = ana.wait_for(from_bot, count=3)[2].get_content()
        for answer in (in_thread, tagged):
            assert "Added to incident #1." in answer and "separate problem" not in answer
        ana.send("Something else", "The VPN drops every hour.")
        assert "separate problem" in ana.wait_for(from_bot, count=4)[3].get_content()
        offered = ana.wait_for(from_bot, count=4)[3]
        clock.advance(minutes=61)  # past the hour's 5 automatic answers to one address (EMAIL_ANSWERS_PER_HOUR)
        # "OK 👍" to an offer made in passing says "noted": it opens nothing, and is added to #1.
        ana.send_reply(offered, "OK 👍")
        assert "Added to incident #1." in ana.wait_for(from_bot, count=5)[4].get_content()
        assert _bodies(engine, 1)[-1] == "OK 👍" and _credits_used(engine) == 1
        # "No" to the offer, in its thread: nothing opened, the message stays on #1.
        ana.send_reply(offered, "No, thanks.")
        refused = " ".join(ana.wait_for(from_bot, count=6)[5].get_content().split())
        assert "All right: nothing was opened. Your message stays on incident #1." in refused
        assert "No, thanks." not in _bodies(engine, 1) and _credits_used(engine) == 1
    finally:
        running.halt()


def test_replies_to_her_own_mail_on_the_case_or_to_any_answer_of_the_bot_get_no_offer(
    mail: MailServers, engine, db_url, clock
) -> None:  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock)
    running.customer("Ana's company", ANA)
    running.start()
    try:
        ana = mail.customers[0]
        first = ana.send("Backup failing", "open\nThe nightly backup fails at 80%.")
        ana.wait_for(from_bot)
        # A reply to her own first mail (from her Sent folder): that mail is on #1.
        ana.send_reply(first, "One more detail: it is the NAS share.", to=mail.support.address)
        own = ana.wait_for(from_bot, count=2)[1].get_content()
        # A reply to an answer of the bot's about no incident (`credits`).
        ana.send("Credits?", "credits")
        told = ana.wait_for(from_bot, count=3)[2]
        assert "Credits left" in told.get_content()
        ana.send_reply(told, "And the printer on floor 2 is broken.")
        to_answer = ana.wait_for(from_bot, count=4)[3].get_content()
        for answer in (own, to_answer):
            assert "Added to incident #1." in answer and "separate problem" not in answer
        assert _bodies(engine, 1)[-1] == "And the printer on floor 2 is broken."
    finally:
        running.halt()
