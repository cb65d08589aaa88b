"""A bare thank-you for the team's answer starts no response clock (bot.policy.response_clock),
through the real runtime (console and mail) on SQLite and PostgreSQL: added to the case and shown to
the engineers, answered with how to close it, and never "missed" by the watcher."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC

import pytest

from adapters.channel import Attachment
from adapters.console import console_line
from storage.db import transaction
from storage.models import Incident
from tests.desk import Desk

ANA = "ana@acme.example"


def _incident(desk: Desk, number: int = 1) -> Incident:
    with transaction(desk.engine) as session:
        incident = session.get(Incident, number)
        assert incident is not None
        session.expunge(incident)
        return incident


def _answered(desk: Desk, customer: str = "Acme", lang: str = "en") -> None:
    """`customer` with incident #1, which an engineer answered a day later."""
    desk.customer(customer, credits=2, lang=lang)
    desk.say(customer, "open The NAS lost a disk")
    desk.clock.advance(days=1)
    desk.engineer("/reply 1 Fixed on our side: the array is rebuilt. Please check.")
    desk.clock.advance(hours=1)


def test_a_thank_you_after_the_teams_answer_is_added_but_owes_no_answer(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _answered(desk)
    out = desk.say("Acme", "Great, thanks!")
    incident = _incident(desk)
    assert incident.state == "open" and incident.due_at is None
    assert desk.bodies(1)[-1] == "Great, thanks!"
    assert "Acme via console (Acme) wrote:" in out and "Great, thanks!" in out  # the engineers see it
    assert (
        'Thank you! Your message was added to incident #1. If the problem is solved, send "close 1" to close the'
        " incident." in out
    )
    assert "We will answer by" not in out
    # Three days on, the watcher has nothing to warn about.
    clock.advance(days=3)
    assert "Response target missed" not in _watched(desk)
    assert "answered" in desk.say("Acme", "status")  # waiting on the customer, not the team
    # What the customer writes next asks again, and is owed an answer as before.
    desk.say(
        "Acme", "It fails again after the reboot"
    )  # on a Sunday: due 2 business days after Monday, a holiday between
    clock.advance(days=7)
    assert "Response target missed" in _watched(desk)


def _watched(desk: Desk) -> str:
    """What one pass of the watcher posted."""
    start = len(desk.out.getvalue())
    desk.runtime.watch_once()
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


def test_a_second_thank_you_still_owes_nothing(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _answered(desk)
    desk.say("Acme", "Thanks!")
    clock.advance(hours=2)
    desk.say("Acme", "thanks again")
    assert _incident(desk).due_at is None


def test_in_portuguese(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _answered(desk, "Cliente", lang="pt")
    out = desk.say("Cliente", "Muito obrigado 🙏")
    assert _incident(desk).due_at is None
    assert "Obrigado! A sua mensagem foi adicionada ao incidente #1. Se o problema estiver resolvido" in out
    assert "envie «fechar 1» para fechar o incidente." in out


def test_anything_more_than_thanks_starts_the_clock_as_before(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _answered(desk)
    out = desk.say("Acme", "Thanks, but the second disk still shows degraded")
    assert _incident(desk).due_at is not None
    assert "Added to incident #1." in out and "close 1" not in out


def test_a_thank_you_while_the_team_owes_an_answer_changes_nothing(engine, db_url, clock):
    # The earliest unanswered message set the due time: a thanks neither stops nor moves it.
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open The NAS lost a disk")
    due = _incident(desk).due_at
    clock.advance(hours=1)
    out = desk.say("Acme", "thanks")
    assert _incident(desk).due_at == due and due is not None
    assert "Added to incident #1." in out and "close 1" not in out


def test_a_thank_you_by_mail_in_the_incidents_thread_starts_no_clock(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    assert "created" in desk.engineer(f"/customer add Acme Lda {ANA}")
    desk.engineer("/credits grant 1 3")
    desk.mail(ANA, "open\nThe NAS lost a disk", subject="NAS")
    clock.advance(days=1)
    desk.engineer("/reply 1 Fixed on our side.")
    sent = len(desk.mails_to(ANA))
    desk.mail(ANA, "Great, thanks!", subject="Re: [#1] NAS")
    assert _incident(desk).due_at is None
    (_subject, _lang, text), *_ = desk.mails_to(ANA)[sent:]
    assert 'send "close 1"' in text


@pytest.mark.parametrize("text", ["Thanks!", "#1 Thanks!"])
def test_a_thank_you_with_a_file_starts_the_clock(engine, db_url, clock, text):
    # "Thanks! Here is the log you asked for", the log attached: the team has something to look at.
    desk = Desk(engine, db_url, clock)
    _answered(desk)
    data = b"md0: rebuild finished\n"
    log = Attachment("mdstat.txt", "text/plain", len(data), hashlib.sha256(data).hexdigest(), data)
    line = console_line("Acme", text, "with-a-file", clock().astimezone(UTC))
    desk.runtime.intake.deliver(dataclasses.replace(line, attachments=(log,)))
    desk.runtime.dispatcher.drain("console")
    assert _incident(desk).due_at is not None
    assert "close 1" not in desk.out.getvalue().split("Thanks!")[-1]
