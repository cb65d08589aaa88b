"""A colleague of a customer: `/customer link <customer> <address>` links an email address as
`link CODE` would (what it wrote before waits for `open`, and it is told so by email), and an
unknown address at the domain of one customer is answered with a word that the team was told,
while the engineers read who wrote and the command that links it.

Through the real runtime, intake, router and store, on SQLite and PostgreSQL: engineers on the
console, the colleague's mail delivered to intake as the email channel delivers it (what the bot
writes to them is read from the outbox: no mail server here; tests/email has the real one).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.services import strangers
from storage.db import transaction
from storage.models import Customer, Identity
from tests.desk import Desk

JOAO = "joao@acme.example"
LINKED = "Our support team has linked this email address to Acme Lda"
TOLD = "I have told the support team that you wrote"


def _owner(desk: Desk, address: str) -> str | None:
    with transaction(desk.engine) as session:
        return session.execute(
            select(Customer.name)
            .join(Identity, Identity.customer_id == Customer.id)
            .where(Identity.channel == "email", Identity.address == address)
        ).scalar_one_or_none()


def _acme(desk: Desk) -> None:
    assert "created" in desk.engineer("/customer add Acme Lda ana@acme.example")
    desk.engineer("/credits grant 1 3")


def test_an_engineer_links_a_colleagues_address_and_what_he_wrote_waits_for_open(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    desk.mail(JOAO, "The printer on floor 2 is down")
    assert _owner(desk, JOAO) is None

    out = desk.engineer("/customer link Acme Lda JOAO@acme.example")
    assert "`joao@acme.example` is now linked to `Acme Lda` (id 1): mail from it is theirs." in out
    assert 'What it wrote before waits for its "open" (for a day): `The printer on floor 2 is down`' in out
    assert _owner(desk, JOAO) == "Acme Lda"
    # Told once, by email, in the customer's language: linked, and "open" for the text kept.
    subject, lang, text = desk.mails_to(JOAO)[-1]
    assert subject == "This address is now linked to Acme Lda's support" and lang == "en"
    assert LINKED in text
    assert 'Before linking you wrote: "The printer on floor 2 is down". I kept it for a day: reply "open"' in text

    # As after `link CODE`: a plain "open" opens the incident with the kept text, on Acme's credits.
    desk.mail(JOAO, "open")
    assert desk.bodies(1) == ["The printer on floor 2 is down"]
    assert desk.credits_used() == 1
    assert "Incident #1 is open" in desk.mails_to(JOAO)[-1][2]
    assert "email:joao@acme.example" in desk.engineer("/customer show 1")

    # Linking it again changes nothing and tells nobody a second time.
    told = len(desk.mails_to(JOAO))
    assert "`joao@acme.example` is already linked to `Acme Lda`: nothing changed." in desk.engineer(
        f"/customer link 1 {JOAO}"
    )
    assert len(desk.mails_to(JOAO)) == told


def test_an_address_that_never_wrote_is_told_how_to_open_in_the_customers_language(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    desk.engineer("/customer lang pt Acme Lda")
    out = desk.engineer("/cliente link 1 <Maria@Acme.example>")
    assert "`maria@acme.example` is now linked to `Acme Lda` (id 1)" in out
    assert "waits for its" not in out  # nothing was kept
    ((subject, lang, text),) = desk.mails_to("maria@acme.example")
    assert subject == "Este endereço está agora associado ao suporte de Acme Lda" and lang == "pt-PT"
    assert "A nossa equipa de suporte associou este endereço de email a Acme Lda" in text
    assert "Para abrir um incidente, envie «abrir» seguido do assunto (usa um crédito)." in text


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("/customer link Acme Lda ana@acme.example", "`ana@acme.example` is already linked to `Acme Lda`"),
        (
            "/customer link Beta ana@acme.example",
            "`ana@acme.example` is already linked to another customer, `Acme Lda` (id 1): nothing changed.",
        ),
        ("/customer link Beta joao@", "`joao@` is not an email address (for example: ana@example.com)."),
        ("/customer link Beta", "Missing <email>. Usage: /customer link <customer> <email>"),
        ("/customer link Gamma joao@acme.example", "No customer `Gamma`."),
    ],
)
def test_what_cannot_be_linked_is_refused_in_one_line_and_changes_nothing(engine, db_url, clock, line, said) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    desk.engineer("/customer add Beta")
    desk.mail(JOAO, "Hello, the printer again")
    before = desk.mails_to(JOAO) + desk.mails_to("ana@acme.example")
    out = desk.engineer(line)
    assert said in out, out
    assert "now linked" not in out
    assert len([line for line in out.splitlines() if line.startswith("  ")]) == 1
    assert _owner(desk, "ana@acme.example") == "Acme Lda"
    assert _owner(desk, JOAO) is None
    assert desk.mails_to(JOAO) + desk.mails_to("ana@acme.example") == before


def test_only_the_domain_of_exactly_one_customer_makes_a_colleague(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    _acme(desk)
    desk.engineer("/customer add Shared One ops@shared.example")
    desk.engineer("/customer add Shared Two it@shared.example")
    # Only ends like Acme's domain: another organisation, and no second customer at acme.example.
    desk.engineer("/customer add Notacme ops@notacme.example")

    topics = desk.mail("rui@acme.example", "Can you help?")  # the channel gives it in lower case
    assert TOLD in desk.mails_to("rui@acme.example")[0][2]
    assert "`/customer link 1 rui@acme.example`" in topics
    # Two customers at the domain: nobody can say whose colleague this is.
    assert "deskbot alerts" not in desk.mail("eva@shared.example", "Can you help?")
    assert TOLD not in desk.mails_to("eva@shared.example")[0][2]
    # A domain of no customer's.
    assert "deskbot alerts" not in desk.mail("x@other.example", "Hi")
    assert TOLD not in desk.mails_to("x@other.example")[0][2]
    # Not an email address: a console account is never anyone's colleague.
    assert "I don't know this account yet" in desk.say("acme.example", "hello")
    assert TOLD not in desk.say("someone@acme.example", "hello")


@pytest.mark.parametrize(
    ("domain", "free"),
    [
        ("gmail.com", True),
        ("sapo.pt", True),
        ("proton.me", True),
        ("yahoo.com", True),
        ("yahoo.co.uk", True),
        ("yahoo.com.br", True),
        ("gmx.de", True),
        ("gmx.net", True),
        ("hotmail.pt", True),
        ("outlook.com", True),
        ("acme.example", False),
        ("outlook.acme.example", False),
        ("mail.acme.pt", False),
        ("gmail.com.acme.example", False),
    ],
)
def test_free_mail_domains(domain: str, free: bool) -> None:
    assert strangers.free_mail(domain) is free
