"""Strangers bounded (issue 16.3): drafts, answers per account, public mentions, the platform budget.

Through the real runtime, intake, router and store, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC

from sqlmodel import select

from adapters.console import ConsoleChannel, console_line
from bot.runtime import Runtime
from bot.services import drafts, strangers
from storage.db import transaction
from storage.models import Draft, Identity
from tests.desk import Desk, make_settings


def _draft_of(desk: Desk, address: str) -> Draft | None:
    with transaction(desk.engine) as s:
        identity = s.exec(select(Identity).where(Identity.channel == "console", Identity.address == address)).one()
        draft = s.get(Draft, identity.id)
        if draft is not None:
            s.expunge(draft)
        return draft


def test_a_strangers_draft_stays_bounded_however_much_they_write(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    for i in range(300):
        desk.say("flooder", f"{i:03d} " + "x" * 9_996)
    draft = _draft_of(desk, "flooder")
    assert draft is not None and len(draft.text) <= drafts.MAX_CHARS
    assert draft.text.endswith("299 " + "x" * 9_996)  # the newest text is kept


def test_a_draft_older_than_a_day_is_not_used(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    code = desk.engineer("/customer add Initech").split("Activation code: ")[1].split()[0]
    desk.engineer("/credits grant Initech 2")
    desk.say("newcomer", "My backup fails every night")
    clock.advance(days=1, minutes=1)
    assert "Welcome, Initech!" in desk.say("newcomer", f"link {code}")
    assert "Tell us what the incident is about" in desk.say("newcomer", "open")
    desk.say("newcomer", "#1")  # nothing to add: no incident, no draft
    assert _draft_of(desk, "newcomer") is None


def test_an_unlinked_account_gets_at_most_ten_answers_an_hour_whatever_it_sends(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    answers = [desk.say("stranger", text) for text in ["help", "lang pt", "ajuda", "link WRONG-CODE-1", "help"] * 3]
    assert sum(bool(a) for a in answers) == strangers.PER_STRANGER.limit == 10
    assert all(a for a in answers[:10]) and not any(answers[10:])
    clock.advance(hours=1)
    assert "ajuda" in desk.say("stranger", "help")  # a new hour; the language chosen was kept


def test_a_customer_command_from_an_unlinked_account_says_what_to_do_first_not_silence(engine, db_url, clock):
    # The daily answer says "send link <code>"; a command tried after it used to get nothing at all.
    desk = Desk(engine, db_url, clock)
    assert "I don't know this account yet" in desk.say("newcomer", "hello, my NAS is down")
    out = desk.say("newcomer", "status")
    assert (
        'deskbot → newcomer:\n  "status" works once this account is linked: send "link <your activation code>"' in out
    )
    assert '"open" works once this account is linked' in desk.say("newcomer", "open the NAS is down")
    assert '"credits" works once' in desk.say("newcomer", "/credits")
    # What only begins with a command word is their text, kept, as before: no pointer.
    assert desk.say("newcomer", "status of my order, please?") == ""
    assert _draft_of(desk, "newcomer").text.endswith("status of my order, please?")
    desk.say("cliente", "Olá, preciso de ajuda")
    assert "«estado» funciona depois de associar esta conta" in desk.say("cliente", "estado")
    # Still within the account's hourly allowance: never more than ten answers an hour.
    answers = [desk.say("newcomer", "status") for _ in range(12)]
    assert sum(bool(a) for a in answers) == strangers.PER_STRANGER.limit - 4


def test_public_mentions_get_one_pointer_to_direct_messages_a_day(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)

    def mention(who: str, n: int) -> str:
        start = len(desk.out.getvalue())
        message = console_line(who, "", f"p{who}{n}", clock().astimezone(UTC))
        desk.runtime.intake.deliver(dataclasses.replace(message, public=True))
        desk.runtime.dispatcher.drain("console")
        return desk.out.getvalue()[start:]

    for who in ("Acme", "stranger"):
        said = [mention(who, n) for n in range(4)]
        assert "direct message" in said[0] and said[1:] == ["", "", ""]
    clock.advance(days=1)
    assert "direct message" in mention("Acme", 9)


def test_strangers_together_use_at_most_a_fifth_of_the_platforms_posting_budget(engine, db_url, clock):
    out = io.StringIO()
    console = ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=out)
    console.posting_budget = (50, 3600.0)  # a platform allowing 50 posts an hour: strangers get 10
    runtime = Runtime(make_settings(db_url), [console], engine=engine, clock=clock, migrate=False)

    def say(who: str, text: str) -> str:
        start = len(out.getvalue())
        runtime.intake.deliver(console_line(who, text, f"{who}-{text}", clock().astimezone(UTC)))
        runtime.dispatcher.drain("console")
        return out.getvalue()[start:]

    answered = [bool(say(f"stranger{i}", "help")) for i in range(25)]
    assert answered == [True] * 10 + [False] * 15
    clock.advance(hours=1)
    assert say("stranger99", "help")
