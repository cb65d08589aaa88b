"""A customer with several email addresses (issue 17): `customers add --email A --email B`,
`customers email add|remove`, `customers show`; mail from any of them is the customer's."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from bot.services import customers
from storage.db import transaction
from storage.models import Identity
from tests.cli.conftest import Run, assert_one_error_line


def _emails(cli: Run, customer: str) -> list[str]:
    return json.loads(cli("customers", "show", customer, "--json").stdout)["emails"]


def _owner(engine, address: str) -> int | None:  # noqa: ANN001
    """The customer mail from `address` is recognised as (what the router asks for every mail)."""
    with transaction(engine) as session:
        return customers.who(session, "email", address, None, datetime.now(UTC))[0].customer_id


def test_add_with_several_emails_links_each_and_show_lists_them(cli: Run, engine) -> None:  # noqa: ANN001
    result = cli("customers", "add", "Acme Lda", "--email", "IT@acme.pt", "--email", "ana@acme.pt", "--json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert document["email"] == "IT@acme.pt"  # the first is the contact address, as given
    assert document["emails"] == ["it@acme.pt", "ana@acme.pt"]
    assert _emails(cli, "Acme Lda") == ["it@acme.pt", "ana@acme.pt"]
    shown = cli("customers", "show", "Acme Lda")
    assert "email: it@acme.pt, ana@acme.pt" in shown.stdout
    assert _owner(engine, "ana@acme.pt") == _owner(engine, "it@acme.pt") == document["id"]

    text = cli("customers", "add", "Beta SA", "--email", "a@beta.pt", "--email", "b@beta.pt")
    assert "Linked email address a@beta.pt\nLinked email address b@beta.pt" in text.stdout


def test_the_single_email_of_the_spec_still_works(cli: Run) -> None:
    assert cli("customers", "add", "Acme Lda", "--email", "it@acme.pt").code == 0
    assert _emails(cli, "Acme Lda") == ["it@acme.pt"]


def test_email_add_and_remove(cli: Run, engine) -> None:  # noqa: ANN001
    cli("customers", "add", "Acme Lda", "--email", "it@acme.pt")
    added = cli("customers", "email", "add", "Acme Lda", "Ana@Acme.pt")
    assert added.code == 0 and added.stdout == "ana@acme.pt is now an email address of Acme Lda\n"
    assert "already" in cli("customers", "email", "add", "Acme Lda", "ana@acme.pt").stdout
    assert _emails(cli, "Acme Lda") == ["it@acme.pt", "ana@acme.pt"]
    assert _owner(engine, "ana@acme.pt") is not None

    # Removing the contact address moves it to the other one; mail from it is nobody's then.
    removed = cli("customers", "email", "remove", "Acme Lda", "it@acme.pt", "--json")
    assert removed.code == 0 and json.loads(removed.stdout)["emails"] == ["ana@acme.pt"]
    assert json.loads(cli("customers", "show", "Acme Lda", "--json").stdout)["email"] == "ana@acme.pt"
    assert _owner(engine, "it@acme.pt") is None
    cli("customers", "email", "remove", "Acme Lda", "ana@acme.pt")
    assert _emails(cli, "Acme Lda") == []
    assert "email: —" in cli("customers", "show", "Acme Lda").stdout


def test_bad_input_is_one_line(cli: Run, engine) -> None:  # noqa: ANN001
    cli("customers", "add", "Acme Lda", "--email", "it@acme.pt")
    cli("customers", "add", "Beta SA")
    assert_one_error_line(cli("customers", "email", "add", "Acme Lda", "not-an-email"), "ADDRESS", code=2)
    assert_one_error_line(cli("customers", "email", "add", "Nobody", "x@acme.pt"), "no customer")
    assert_one_error_line(cli("customers", "email", "add", "Beta SA", "it@acme.pt"), "already linked")
    assert_one_error_line(cli("customers", "email", "remove", "Beta SA", "it@acme.pt"), "not an email address of")
    assert_one_error_line(
        cli("customers", "add", "Gamma", "--email", "g@gamma.pt", "--email", "it@acme.pt"), "already linked"
    )
    assert_one_error_line(
        cli("customers", "add", "Delta", "--email", "d@delta.pt", "--email", "nope"), "--email", code=2
    )
    # Nothing of the refused customers was created.
    names = [r["name"] for r in json.loads(cli("customers", "list", "--json").stdout)]
    assert names == ["Acme Lda", "Beta SA"]
    with transaction(engine) as session:
        linked = session.scalars(select(Identity.address).where(Identity.customer_id.is_not(None))).all()
        assert sorted(linked) == ["it@acme.pt"]
