"""`deskbot customers add | list | show`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from storage.db import transaction
from storage.models import CreditPack
from tests.cli.conftest import Run, assert_one_error_line


def test_add_prints_id_and_activation_code_and_links_accounts(cli: Run) -> None:
    result = cli(
        "customers",
        "add",
        "Acme Lda",
        "--email",
        "it@acme.pt",
        "--mastodon-acct",
        "@Bob@Mastodon.Example",
        "--lang",
        "pt",
    )
    assert result.code == 0, result
    assert result.stdout.startswith("Customer 1 created: Acme Lda\nActivation code: ")
    assert "Linked mastodon account bob@mastodon.example" in result.stdout

    shown = json.loads(cli("customers", "show", "Acme Lda", "--json").stdout)
    assert shown["lang"] == "pt" and shown["email"] == "it@acme.pt"
    # The customer's email address is their email account at once (mail from it is theirs).
    assert [(i["channel"], i["address"]) for i in shown["identities"]] == [
        ("email", "it@acme.pt"),
        ("mastodon", "bob@mastodon.example"),
    ]


def test_zulip_email_without_the_zulip_settings_points_to_the_activation_code(cli: Run) -> None:
    # A Zulip account is linked by its user id, looked up on Zulip (tests/zulip/test_organisation.py
    # does it against the fake); with no Zulip settings nothing is created and the way is said.
    result = cli("customers", "add", "Acme Lda", "--zulip-email", "ana@acme.pt")
    assert_one_error_line(result, "--zulip-email", "ZULIP_SITE", "activation code")
    assert json.loads(cli("customers", "list", "--json").stdout) == []


def test_add_json_is_one_document_with_the_keys(cli: Run) -> None:
    result = cli("customers", "add", "Beta SA", "--json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert {"id", "name", "activation_code"} <= document.keys()
    assert document["name"] == "Beta SA" and isinstance(document["id"], int)
    assert len(document["activation_code"]) == 14  # XXXX-XXXX-XXXX
    # Without --lang nobody chose one: English until the customer writes in Portuguese.
    assert document["lang"] is None
    shown = cli("customers", "show", "Beta SA").stdout
    assert "language: not chosen (English until they write in Portuguese)" in shown
    # `--lang auto` says the same out loud, as `customers lang … auto` does.
    assert json.loads(cli("customers", "add", "Gama SA", "--lang", "AUTO", "--json").stdout)["lang"] is None


def test_list_and_show_in_text_and_json(cli: Run) -> None:
    assert cli("customers", "list").stdout.startswith("No customers yet.")
    cli("customers", "add", "Acme Lda", "--email", "it@acme.pt")
    cli("customers", "add", "Beta SA")
    cli("credits", "grant", "Acme Lda", "--incidents", "5")

    listed = cli("customers", "list")
    assert listed.code == 0 and "Acme Lda" in listed.stdout and "Beta SA" in listed.stdout
    records = json.loads(cli("customers", "list", "--json").stdout)
    assert [(r["id"], r["name"], r["credits_left"]) for r in records] == [(1, "Acme Lda", 5), (2, "Beta SA", 0)]
    assert {"email", "lang", "accounts", "next_expiry", "open_cases"} <= records[0].keys()

    by_id = cli("customers", "show", "1")
    assert by_id.code == 0 and "Acme Lda (id 1)" in by_id.stdout and "credits left: 5" in by_id.stdout
    shown = json.loads(cli("customers", "show", "Acme Lda", "--json").stdout)
    assert shown["id"] == 1 and shown["credits"]["left"] == 5
    assert [(p["incidents"], p["used"], p["valid"]) for p in shown["credits"]["packs"]] == [(5, 0, True)]
    assert shown["credits"]["packs"][0]["expiry_reminded_at"] is None
    assert shown["cases"] == []


def test_show_says_when_the_customer_was_reminded_that_a_packs_credits_lapse(cli: Run, engine) -> None:  # noqa: ANN001
    cli("customers", "add", "Acme Lda")
    cli("credits", "grant", "Acme Lda", "--incidents", "2")
    assert "valid; reminded" not in cli("customers", "show", "Acme Lda").stdout
    with transaction(engine) as session:  # what bot.reminders writes when it reminds the customer
        session.get_one(CreditPack, 1).expiry_reminded_at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert "valid; reminded of its end on 2026-12-07" in cli("customers", "show", "Acme Lda").stdout
    shown = json.loads(cli("customers", "show", "Acme Lda", "--json").stdout)
    assert shown["credits"]["packs"][0]["expiry_reminded_at"].startswith("2026-12-07T09:00:00")


def test_unknown_customer_is_one_line(cli: Run) -> None:
    assert_one_error_line(cli("customers", "show", "Nobody"), "no customer 'Nobody'")
    assert_one_error_line(cli("customers", "show", "Nobody", "--json"), "no customer")


def test_duplicate_name_and_bad_input(cli: Run) -> None:
    cli("customers", "add", "Acme Lda")
    assert_one_error_line(cli("customers", "add", "acme lda"), "already exists")
    assert_one_error_line(cli("customers", "add", "12345"), "only digits")
    assert_one_error_line(cli("customers", "add", "X", "--lang", "fr"), "--lang", code=2)
    assert_one_error_line(cli("customers", "add", "X", "--mastodon-acct", "bob"), "user@host", code=2)
    assert_one_error_line(cli("customers", "add", "X", "--email", "not-an-email"), "--email", code=2)


def test_an_account_linked_elsewhere_creates_nothing(cli: Run) -> None:
    cli("customers", "add", "Acme Lda", "--mastodon-acct", "ana@social.example")
    assert_one_error_line(cli("customers", "add", "Beta SA", "--mastodon-acct", "ANA@social.example"), "already linked")
    assert [r["name"] for r in json.loads(cli("customers", "list", "--json").stdout)] == ["Acme Lda"]


def test_lang_chooses_the_language_or_none(cli: Run) -> None:
    cli("customers", "add", "Acme Lda", "--email", "it@acme.pt", "--lang", "en")
    result = cli("customers", "lang", "it@acme.pt", "PT")
    assert result.code == 0 and result.stdout == "Acme Lda · language: pt\n", result
    assert json.loads(cli("customers", "show", "1", "--json").stdout)["lang"] == "pt"
    assert json.loads(cli("customers", "lang", "Acme Lda", "auto", "--json").stdout) == {
        "id": 1,
        "name": "Acme Lda",
        "lang": None,
    }
    assert "language: not chosen (English until they write in Portuguese)" in cli("customers", "show", "1").stdout
    assert_one_error_line(cli("customers", "lang", "Acme Lda", "fr"), "'fr' is not one of", code=2)
    assert_one_error_line(cli("customers", "lang", "Nobody", "en"), "no customer 'Nobody'")
    assert json.loads(cli("customers", "show", "1", "--json").stdout)["lang"] is None
