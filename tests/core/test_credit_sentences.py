"""Credits told without ambiguity (SPEC §2): the credit an incident used names the pack it came from,
and the credits left say when they end; an offer to open a kept text names the pack of the credit it
would use apart from the count; and on a pack's last day the offer says that the credit ends
tonight, so that "I keep your message for 24 hours" does not end in "your credits have expired"
after midnight. Through the console desk, on SQLite and PostgreSQL, in English and European
Portuguese."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from sqlalchemy import select

from bot.services import credits as credit_service
from storage.db import transaction
from storage.models import Customer
from tests.desk import Desk

#: The desk's clock starts on Wednesday 2 Dec 2026: a pack bought on 3 Dec 2025 is valid until
#: 3 Dec 2026 inclusive (tomorrow), one bought on 1 Nov 2026 until 1 Nov 2027.
TOMORROW_LAST = date(2025, 12, 3)
NEXT_YEAR_LAST = date(2026, 11, 1)
TONIGHT = "ends tonight: reply before midnight (Lisbon time) to use it."


def _customer(desk: Desk, name: str, packs: dict[date, int], lang: str = "en") -> None:
    """`name` with a pack of `packs[day]` credits bought on each day."""
    (first, size), *others = packs.items()
    customer_id = desk.customer(name, credits=size, lang=lang, purchased=first)
    with transaction(desk.engine) as session:
        customer = session.get_one(Customer, customer_id)
        for purchased, credits in others:
            credit_service.grant_credits(session, customer, credits, purchased, "test", desk.clock(), months=12)


def test_the_opening_answer_names_the_used_credits_pack_and_when_the_credits_left_end(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _customer(desk, "Acme", {TOMORROW_LAST: 1, NEXT_YEAR_LAST: 5})
    _customer(desk, "Cliente", {TOMORROW_LAST: 1, NEXT_YEAR_LAST: 5}, lang="pt")

    out = desk.say("Acme", "open the nas fan is loud")
    assert (
        "One credit used, from the pack valid until 3 Dec 2026 inclusive."
        " 5 credits left, valid until 1 Nov 2027 inclusive." in out
    )
    assert "This pack" not in out
    out = desk.say("Cliente", "abrir a ventoinha do nas faz barulho")
    assert (
        "Foi utilizado um crédito do pacote válido até 3 de dezembro de 2026, inclusive."
        " Restam 5 créditos, válidos até 1 de novembro de 2027, inclusive." in out
    )


def test_credits_left_in_packs_ending_on_different_days_say_how_many_end_first(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _customer(desk, "Acme", {TOMORROW_LAST: 2, NEXT_YEAR_LAST: 5})
    _customer(desk, "Cliente", {TOMORROW_LAST: 3, NEXT_YEAR_LAST: 5}, lang="pt")
    _customer(desk, "Last", {NEXT_YEAR_LAST: 1})

    out = desk.say("Acme", "open the nas fan is loud")
    assert (
        "One credit used, from the pack valid until 3 Dec 2026 inclusive."
        " 6 credits left: 1 valid until 3 Dec 2026 inclusive, the rest for longer." in out
    )
    out = desk.say("Cliente", "abrir a ventoinha do nas faz barulho")
    assert "Restam 7 créditos: 2 válidos até 3 de dezembro de 2026, inclusive, e o resto por mais tempo." in out
    desk.say("Cliente", "fechar 2")
    out = desk.say("Cliente", "abrir o disco está cheio")
    assert "Restam 6 créditos: 1 válido até 3 de dezembro de 2026, inclusive, e o resto por mais tempo." in out
    out = desk.say("Last", "open my last question")
    assert "One credit used, from the pack valid until 1 Nov 2027 inclusive. No credits left." in out


def test_the_offer_names_the_pack_of_the_credit_it_would_use_apart_from_the_count(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _customer(desk, "Acme", {TOMORROW_LAST: 1, NEXT_YEAR_LAST: 5})
    _customer(desk, "Cliente", {TOMORROW_LAST: 1, NEXT_YEAR_LAST: 5}, lang="pt")

    out = desk.say("Acme", "my backup is broken")
    assert (
        "it uses a credit from the pack valid until 3 Dec 2026 inclusive (you have 6 credits)."
        " I keep your message for 24 hours." in out
    )
    assert "one of your 6 credits, from the pack" not in out
    out = desk.say("Cliente", "a cópia de segurança falha")
    assert "será utilizado um crédito do pacote válido até 3 de dezembro de 2026, inclusive (tem 6 créditos)." in out


def test_on_a_packs_last_day_the_offer_says_to_reply_before_midnight(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _customer(desk, "Acme", {TOMORROW_LAST: 1})
    _customer(desk, "Beta", {TOMORROW_LAST: 1})
    _customer(desk, "Cliente", {TOMORROW_LAST: 1}, lang="pt")

    clock.now = datetime(2026, 12, 2, 23, 59, tzinfo=UTC)  # the eve of the last day: 24 hours are there
    out = desk.say("Acme", "my backup is broken")
    assert "I keep your message for 24 hours." in out and "midnight" not in out

    clock.now = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)  # 22:00 in Lisbon (WET) on the last day
    for name in ("Acme", "Beta"):
        out = desk.say(name, "my backup is broken")
        assert (
            "it uses your last credit, valid until 3 Dec 2026 inclusive. I keep your message for 24 hours."
            f' The credit "open" would use {TONIGHT}' in out
        )
    out = desk.say("Cliente", "a cópia de segurança falha")
    assert (
        "Guardo a sua mensagem durante 24 horas. O crédito que «abrir» utilizaria termina esta noite:"
        " responda antes da meia-noite (hora de Lisboa) para o utilizar." in out
    )

    # The rule itself is unchanged: the credit is valid through its last day, and not after.
    clock.now = datetime(2026, 12, 3, 23, 59, tzinfo=UTC)
    assert "Incident #1 is open: my backup is broken" in desk.say("Acme", "open")
    clock.now = datetime(2026, 12, 4, 0, 1, tzinfo=UTC)
    assert "Your support credits have expired." in desk.say("Beta", "open")


def test_every_answer_that_keeps_a_text_on_the_last_day_says_so(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    _customer(desk, "Acme", {TOMORROW_LAST: 2})
    clock.now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # any hour of the last day: 24 hours end tomorrow
    desk.say("Acme", "open the nas fan is loud")

    out = desk.say("Acme", "open the printer jams too")  # open while #1 is open: asked first
    assert "that uses one more credit (you have 1)." in out and f'The credit "open" would use {TONIGHT}' in out
    desk.say("Acme", "close 1")
    out = desk.say("Acme", "#1 one more thing")  # a closed incident: the text is kept for `open`
    assert "Incident #1 is closed and takes no more messages" in out and TONIGHT in out


def test_a_last_day_cut_short_by_summer_time_is_named(engine, db_url, clock):
    """At 23:30 on Saturday 27 Mar 2027 a text kept 24 hours outlasts Sunday 28 Mar, a 23-hour day
    (the clocks go forward): a credit whose last day is that Sunday ends before the text does."""
    clock.now = datetime(2027, 3, 27, 23, 30, tzinfo=UTC)
    desk = Desk(engine, db_url, clock)
    _customer(desk, "Acme", {date(2026, 3, 28): 1})

    out = desk.say("Acme", "my backup is broken")
    assert (
        'I keep your message for 24 hours. The credit "open" would use is valid only until 28 Mar 2027'
        " inclusive: reply before that day ends (Lisbon time) to use it." in out
    )


def test_a_new_mail_thread_and_an_engineers_link_say_so_on_the_last_evening(engine, db_url, clock):
    """The other two answers that leave a text waiting for "open": the offer of a new mail thread
    that joined the open incident, and the mail that tells a colleague an engineer linked them."""
    desk = Desk(engine, db_url, clock)
    desk.engineer("/customer add Acme Lda ana@acme.example")
    with transaction(desk.engine) as session:
        acme = session.scalars(select(Customer).where(Customer.name == "Acme Lda")).one()
        credit_service.grant_credits(session, acme, 2, TOMORROW_LAST, "test", desk.clock(), months=12)
    clock.now = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)  # 21:00 in Lisbon on the pack's last day
    desk.mail("ana@acme.example", "open The backup fails", subject="Backup")

    desk.mail("ana@acme.example", "The web UI is slow too.", subject="Web UI")  # a new thread: joins #1
    offer = desk.mails_to("ana@acme.example")[-1][2]
    assert 'If this is a separate problem, reply "open" within 24 hours' in offer
    assert f'The credit "open" would use {TONIGHT}' in offer

    desk.mail("joao@acme.example", "The printer on floor 2 is down")
    desk.engineer("/customer link Acme Lda joao@acme.example")
    welcome = desk.mails_to("joao@acme.example")[-1][2]
    assert 'I kept it for a day: reply "open"' in welcome and f'The credit "open" would use {TONIGHT}' in welcome

    clock.now = datetime(2026, 12, 2, 21, 0, tzinfo=UTC)  # the day before: a day is there, nothing said
    desk.mail("rui@acme.example", "The scanner too")
    desk.engineer("/customer link Acme Lda rui@acme.example")
    assert "midnight" not in desk.mails_to("rui@acme.example")[-1][2]


def test_link_with_a_code_on_the_last_evening_says_so_of_the_text_kept_before(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    out = desk.engineer("/customer add Acme")
    (code,) = set(re.findall(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", out))
    with transaction(desk.engine) as session:
        acme = session.scalars(select(Customer).where(Customer.name == "Acme")).one()
        credit_service.grant_credits(session, acme, 2, TOMORROW_LAST, "test", desk.clock(), months=12)
    clock.now = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
    desk.say("newcomer", "The printer is down")
    out = desk.say("newcomer", f"link {code}")
    assert 'Before linking you wrote: "The printer is down".' in out and f'The credit "open" would use {TONIGHT}' in out
