"""Column limits hold the same on SQLite and PostgreSQL, long enough for what platforms send.

PostgreSQL refuses a value over a VARCHAR's length where SQLite keeps it whole, so a
limit only tested on SQLite is no limit: these run on both, through the real intake.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC

from sqlalchemy import func, select

from adapters.console import console_line
from storage.db import transaction
from storage.models import ADDRESS, MESSAGE_ID, NAME, Identity, Incident, IncidentMessage, ProcessedInbound, fit
from tests.desk import Desk

#: The longest display name Mastodon federates.
MASTODON_NAME = "Ñ" * 2048


def _say(desk: Desk, text: str, *, sender: str, name: str | None, message_id: str) -> str:
    start = len(desk.out.getvalue())
    line = console_line(sender, text, message_id, desk.clock().astimezone(UTC))
    desk.runtime.intake.deliver(dataclasses.replace(line, sender_name=name))
    desk.runtime.dispatcher.drain("console")
    return desk.out.getvalue()[start:]


def test_a_customer_with_a_2048_character_name_is_answered(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)

    out = _say(desk, "open The NAS does not boot", sender="Acme", name=MASTODON_NAME, message_id="m1")

    assert "Incident #1 is open: The NAS does not boot" in out
    assert "Sorry, something went wrong" not in out
    with transaction(desk.engine) as s:
        assert s.scalars(select(Identity.display_name).where(Identity.address == "Acme")).one() == MASTODON_NAME


def test_a_stranger_with_a_longer_name_and_account_is_answered_and_cut_the_same_everywhere(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    account = "x" * 700 + "@example.org"
    name = "n" * (NAME + 500)
    message_id = "<" + "i" * 900 + "@mail.example>"

    out = _say(desk, "hello", sender=account, name=name, message_id=message_id)
    assert "I don't know this account yet" in out
    # The same long message again is recognised as the same message, and the same long account as the same one.
    assert _say(desk, "hello", sender=account, name=name, message_id=message_id) == ""
    _say(desk, "hello again", sender=account, name=name, message_id="m2")

    with transaction(desk.engine) as s:
        (identity,) = s.scalars(select(Identity).where(Identity.channel == "console")).all()
        assert identity.address == fit(account, ADDRESS, key=True) and len(identity.address) == ADDRESS
        assert identity.display_name == name[: NAME - 1] + "…"
        stored_ids = set(s.scalars(select(ProcessedInbound.message_id)))
        assert stored_ids == {fit(message_id, MESSAGE_ID, key=True), "m2"}


def test_two_long_accounts_that_differ_only_at_the_end_stay_two_people(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    first, second = "a" * 600 + "@one.example", "a" * 600 + "@two.example"
    _say(desk, "hi", sender=first, name=None, message_id="m1")
    _say(desk, "hi", sender=second, name=None, message_id="m2")
    with transaction(desk.engine) as s:
        assert s.scalar(select(func.count()).select_from(Identity)) == 2


def test_an_engineer_assigning_an_overlong_address_gets_an_answer_not_an_apology(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Printer on fire")
    who = "e" * 600 + "@example.org"

    out = desk.engineer(f"/assign 1 {who}")

    assert "Sorry, something went wrong" not in out
    with transaction(desk.engine) as s:
        assert s.get(Incident, 1).assignee == fit(who, ADDRESS, key=True)
        assert s.scalar(select(func.count()).select_from(IncidentMessage)) == 1
