"""`/customer add <name> [email]`: the name and address are read exactly, and a command that fails
creates nothing (the engineer's command commits whatever it answers)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models import Customer, Identity
from tests.desk import Desk

USAGE = "Usage: /customer add <name> [email]"


def _customers(engine) -> list[tuple[str, str | None]]:  # noqa: ANN001
    with transaction(engine) as session:
        return [(c.name, c.email) for c in session.scalars(select(Customer).order_by(Customer.id))]


def _email_owner(engine, address: str) -> str | None:  # noqa: ANN001
    with transaction(engine) as session:
        found = session.execute(
            select(Customer.name)
            .join(Identity, Identity.customer_id == Customer.id)
            .where(Identity.channel == "email", Identity.address == address)
        ).scalar_one_or_none()
        return found


def test_an_address_another_customer_has_creates_nobody(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    assert "Customer `Alpha` (id 1) created." in desk.engineer("/customer add Alpha ops@acme.example")

    out = desk.engineer("/customer add Beta Ops@ACME.example")
    assert "`email` account `ops@acme.example` is already linked to another customer." in out
    assert "created" not in out
    assert _customers(engine) == [("Alpha", "ops@acme.example")]
    assert "No customer `Beta`." in desk.engineer("/customer show Beta")
    assert _email_owner(engine, "ops@acme.example") == "Alpha"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("/customer add Zed foo@", "`foo@` is not an email address (for example: ana@example.com)."),
        ("/customer add Zed @bar", "`@bar` is not an email address"),
        ("/customer add Zed a@b@c", "`a@b@c` is not an email address"),
        ("/customer add Zed ops2@acme.example extra", 'Unexpected text: "extra".'),
        ('/customer add "Beta Ltd" not-an-email', "`not-an-email` is not an email address"),
        ('/customer add "Beta Ltd" ops3@acme.example more', 'Unexpected text: "more".'),
        ('/customer add "" ops4@acme.example', "Missing <name>."),
    ],
)
def test_a_name_and_address_that_do_not_read_exactly_create_nobody(engine, db_url, clock, line, said) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    out = desk.engineer(line)
    assert said in out and USAGE in out, out
    assert "created" not in out
    assert _customers(engine) == []


def test_a_quoted_name_and_an_address(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    assert "Customer `Beta Ltd` (id 1) created." in desk.engineer('/customer add "Beta Ltd" ops@beta.example')
    assert "Customer `Me@Home` (id 2) created." in desk.engineer('/customer add "Me@Home"')
    assert "Customer `Gamma Lda` (id 3) created." in desk.engineer("/customer add Gamma Lda <Ops@Gamma.example>")
    assert "Customer `Delta` (id 4) created." in desk.engineer("/customer add Delta")
    assert _customers(engine) == [
        ("Beta Ltd", "ops@beta.example"),
        ("Me@Home", None),
        ("Gamma Lda", "ops@gamma.example"),
        ("Delta", None),
    ]
    assert _email_owner(engine, "ops@gamma.example") == "Gamma Lda"
