"""`deskbot credits grant` and `deskbot credits import FILE.csv`."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models import CreditPack, Customer
from tests.cli.conftest import Run, assert_one_error_line


def test_grant_a_pack(cli: Run) -> None:
    cli("customers", "add", "Acme Lda")
    result = cli("credits", "grant", "Acme Lda", "--incidents", "5", "--purchased", "2026-02-28")
    assert result.code == 0, result
    assert "5 credits for Acme Lda, bought 2026-02-28, valid until 2027-02-28" in result.stdout

    document = json.loads(cli("credits", "grant", "1", "--incidents", "2", "--json").stdout)
    assert document["customer"] == "Acme Lda" and document["incidents"] == 2
    assert document["purchased"] == date.fromisoformat(document["purchased"]).isoformat()


def test_a_pack_that_gives_nothing_today_is_granted_with_a_warning(cli: Run) -> None:
    cli("customers", "add", "Acme Lda")
    past = cli("credits", "grant", "Acme Lda", "--incidents", "3", "--purchased", "2001-05-04")
    assert past.code == 0 and "valid until 2002-05-04 inclusive. Acme Lda has 0 credits left." in past.stdout
    assert past.stderr == "warning: this pack has expired already: it gives the customer nothing to use\n"
    future = cli("credits", "grant", "Acme Lda", "--incidents", "3", "--purchased", "2099-05-04")
    assert future.code == 0 and "Acme Lda has 0 credits left." in future.stdout
    assert future.stderr == "warning: this pack is not valid before 2099-05-04: the customer cannot use it until then\n"
    today = cli("credits", "grant", "Acme Lda", "--incidents", "3")
    assert today.code == 0 and "Acme Lda has 3 credits left." in today.stdout and today.stderr == ""


def test_grant_bad_input(cli: Run) -> None:
    cli("customers", "add", "Acme Lda")
    assert_one_error_line(cli("credits", "grant", "Nobody", "--incidents", "5"), "no customer 'Nobody'")
    bad_date = cli("credits", "grant", "Acme Lda", "--incidents", "5", "--purchased", "2026-02-30")
    assert_one_error_line(bad_date, "--purchased", "YYYY-MM-DD", code=2)
    assert_one_error_line(cli("credits", "grant", "Acme Lda", "--incidents", "0"), "--incidents", code=2)
    assert_one_error_line(cli("credits", "grant", "Acme Lda"), "Missing option '--incidents'", code=2)


CSV = """\
customer,email,incidents,purchased
Acme Lda,,3,2026-01-10
New Co,new@co.pt,5,2026-02-01
Bad Co,,many,2026-02-01

Worse Co,,2,2026/02/01
New Co,,1,2026-03-01
"""


def _packs(engine) -> list[tuple[str, int, date]]:  # noqa: ANN001
    with transaction(engine) as session:
        rows = session.execute(
            select(Customer.name, CreditPack.incidents, CreditPack.purchased)
            .join(Customer, Customer.id == CreditPack.customer_id)
            .order_by(CreditPack.id)
        )
        return [tuple(row) for row in rows]


@pytest.mark.usefixtures("mid_2026")
def test_import_reports_bad_rows_by_line_and_keeps_the_good_ones(cli: Run, engine, tmp_path) -> None:  # noqa: ANN001
    cli("customers", "add", "Acme Lda")
    path = tmp_path / "packs.csv"
    path.write_text(CSV, encoding="utf-8")

    result = cli("credits", "import", str(path))
    assert result.code == 1, result
    assert result.stderr.splitlines() == [
        "error: line 4: incidents must be a whole number from 1 to 10000, got 'many'",
        "error: line 6: purchased must be a date YYYY-MM-DD from 2000-01-01 to 2099-12-31, got '2026/02/01'",
    ]
    assert "3 packs granted, 1 new customer, 2 bad rows not imported." in result.stdout
    assert "Traceback" not in result.output
    assert _packs(engine) == [
        ("Acme Lda", 3, date(2026, 1, 10)),
        ("New Co", 5, date(2026, 2, 1)),
        ("New Co", 1, date(2026, 3, 1)),
    ]
    new_co = json.loads(cli("customers", "show", "New Co", "--json").stdout)
    assert new_co["email"] == "new@co.pt"
    assert [r["name"] for r in json.loads(cli("customers", "list", "--json").stdout)] == ["Acme Lda", "New Co"]

    # Fixed and imported again: the rows already imported are skipped, not granted twice.
    path.write_text(CSV.replace("many", "4").replace("2026/02/01", "2026-02-01"), encoding="utf-8")
    again = cli("credits", "import", str(path), "--json")
    assert again.code == 0, again
    document = json.loads(again.stdout)
    assert [(r["line"], r["customer"]) for r in document["imported"]] == [(4, "Bad Co"), (6, "Worse Co")]
    assert all(r["activation_code"] for r in document["imported"])
    assert [r["line"] for r in document["skipped"]] == [2, 3, 7]
    assert document["errors"] == []
    assert len(_packs(engine)) == 5


def test_import_json_lists_errors_with_line_numbers(cli: Run, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "packs.csv"
    path.write_text(CSV, encoding="utf-8")
    result = cli("credits", "import", str(path), "--json")
    assert result.code == 1
    document = json.loads(result.stdout)
    assert [e["line"] for e in document["errors"]] == [4, 6]
    assert document["customers_created"] == 2  # Acme Lda and New Co


def test_import_semicolons_and_bom(cli: Run, engine, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffPurchased;Incidents;Customer\n2026-05-01;2;Ação Lda\n".encode())
    result = cli("credits", "import", str(path))
    assert result.code == 0, result
    assert _packs(engine) == [("Ação Lda", 2, date(2026, 5, 1))]


def test_import_unreadable_or_unusable_file(cli: Run, tmp_path) -> None:  # noqa: ANN001
    assert_one_error_line(cli("credits", "import", str(tmp_path / "missing.csv")), "cannot read", "missing.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert_one_error_line(cli("credits", "import", str(tmp_path / "binary.csv")), "not UTF-8")
    (tmp_path / "header.csv").write_text("name,count\nAcme,3\n", encoding="utf-8")
    assert_one_error_line(cli("credits", "import", str(tmp_path / "header.csv")), "missing columns customer")


def test_cancel_the_unused_credits_of_a_pack_granted_by_mistake(cli: Run, engine) -> None:  # noqa: ANN001
    cli("customers", "add", "Acme Lda")
    cli("credits", "grant", "Acme Lda", "--incidents", "30")
    with transaction(engine) as session:  # one incident paid from it already
        session.get_one(CreditPack, 1).used = 1
    result = cli("credits", "cancel", "1")
    assert result.code == 0, result
    with transaction(engine) as session:
        purchased = session.get_one(CreditPack, 1).purchased.isoformat()
    assert result.stdout == (
        "Pack 1 of Acme Lda: 29 credits cancelled (used, and kept on record: 1). Acme Lda has 0 credits left.\n"
        f"Cancelled by mistake? deskbot credits grant 1 --incidents 29 --purchased {purchased}"
        " gives them back as a new pack.\n"
    )
    again = cli("credits", "cancel", "1", "--json")
    assert json.loads(again.stdout) == {
        "pack_id": 1,
        "customer_id": 1,
        "customer": "Acme Lda",
        "incidents": 30,
        "used": 1,
        "cancelled_now": 0,
        "cancelled": 29,
        "credits_left": 0,
    }
    shown = cli("customers", "show", "Acme Lda")
    assert "29 cancelled on 20" in shown.stdout and "by cli:" in shown.stdout
    [pack] = json.loads(cli("customers", "show", "Acme Lda", "--json").stdout)["credits"]["packs"]
    assert (pack["incidents"], pack["cancelled"], pack["used"], pack["left"]) == (30, 29, 1, 0)
    assert pack["cancelled_by"].startswith("cli") and pack["cancelled_at"] is not None
    assert_one_error_line(cli("credits", "cancel", "7"), "no pack 7")
    assert_one_error_line(cli("credits", "cancel", "x"), "expected a whole number", code=2)
    # The undo the answer offered works as written.
    undo = cli("credits", "grant", "1", "--incidents", "29", "--purchased", purchased)
    assert undo.code == 0 and "Acme Lda has 29 credits left." in undo.stdout, undo


@pytest.mark.usefixtures("mid_2026")
def test_dates_out_of_range_are_refused_where_they_are_typed(cli: Run, engine, tmp_path) -> None:  # noqa: ANN001
    # A pack bought on 9999-12-31 is valid into year 10000: once stored, every listing of its customer failed.
    cli("customers", "add", "Eps")
    for typed in ("9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"):
        refused = cli("credits", "grant", "Eps", "--incidents", "2", "--purchased", typed)
        assert_one_error_line(refused, "--purchased", "from 2000-01-01 to 2099-12-31", repr(typed), code=2)
    path = tmp_path / "packs.csv"
    path.write_text("customer,email,incidents,purchased\nEps,,2,9999-12-31\nEps,,3,2026-01-10\n", encoding="utf-8")
    imported = cli("credits", "import", str(path))
    assert imported.code == 1 and imported.stderr.splitlines() == [
        "error: line 2: purchased must be a date YYYY-MM-DD from 2000-01-01 to 2099-12-31, got '9999-12-31'"
    ]
    assert _packs(engine) == [("Eps", 3, date(2026, 1, 10))]
    for command in (
        ("customers", "list"),
        ("customers", "show", "Eps"),
        ("credits", "grant", "Eps", "--incidents", "1"),
    ):
        assert cli(*command).code == 0, command
    edge = cli("credits", "grant", "Eps", "--incidents", "1", "--purchased", "2099-12-31")
    assert edge.code == 0 and "valid until 2100-12-31 inclusive" in edge.stdout, edge


@pytest.mark.usefixtures("mid_2026")
def test_import_links_another_email_address_of_a_customer(cli: Run, engine, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "packs.csv"
    path.write_text(
        "customer,email,incidents,purchased\n"
        "Acme,a@acme.example,3,2026-01-10\n"
        "Acme,b@acme.example,2,2026-02-10\n"
        "Acme,A@acme.example,1,2026-03-10\n"
        "Beta,b@acme.example,1,2026-03-10\n",
        encoding="utf-8",
    )
    result = cli("credits", "import", str(path))
    assert result.code == 1, result
    assert "Acme (id 1), email b@acme.example added" in result.stdout
    assert result.stderr.splitlines() == [
        "error: line 5: 'email' account 'b@acme.example' is already linked to another customer."
    ]
    shown = json.loads(cli("customers", "show", "Acme", "--json").stdout)
    assert shown["emails"] == ["a@acme.example", "b@acme.example"] and shown["email"] == "a@acme.example"
    assert _packs(engine) == [
        ("Acme", 3, date(2026, 1, 10)),
        ("Acme", 2, date(2026, 2, 10)),
        ("Acme", 1, date(2026, 3, 10)),
    ]
    again = json.loads(cli("credits", "import", str(path), "--json").stdout)
    assert [r["email_added"] for r in again["skipped"]] == [None, None, None]


def test_import_warns_of_packs_that_give_nothing_today_as_grant_does(cli: Run, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "packs.csv"
    path.write_text(
        "customer,email,incidents,purchased\nOld,,1,2001-05-04\nNow,,1,TODAY\nLater,,1,2099-05-04\n".replace(
            "TODAY", (date.today() - timedelta(days=100)).isoformat()
        ),
        encoding="utf-8",
    )
    result = cli("credits", "import", str(path))
    assert result.code == 0, result
    assert result.stderr.splitlines() == [
        "warning: line 2: this pack has expired already: it gives the customer nothing to use",
        "warning: line 4: this pack is not valid before 2099-05-04: the customer cannot use it until then",
    ]
    path.write_text(path.read_text().replace("Old", "Old Co"), encoding="utf-8")
    document = json.loads(cli("credits", "import", str(path), "--json").stdout)
    assert [(r["line"], r["warning"]) for r in document["imported"]] == [
        (2, "this pack has expired already: it gives the customer nothing to use")
    ]


@pytest.mark.usefixtures("mid_2026")
def test_an_unclosed_quote_is_reported_with_the_rows_it_swallowed(cli: Run, engine, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "packs.csv"
    path.write_text(
        'customer,email,incidents,purchased\n"Unclosed,,1,2026-01-01\nB,,1,2026-01-01\nC,,1,2026-01-01\n',
        encoding="utf-8",
    )
    result = cli("credits", "import", str(path))
    assert result.code == 1, result
    assert result.stderr.splitlines() == [
        "error: line 2: a quote opened on this line runs on to line 4, so lines 3 to 4 were read as part of this"
        " row and not imported; is a closing quote missing?"
    ]
    assert _packs(engine) == []
    # Closed further down: the rows after the closing quote are read again.
    path.write_text(
        'customer,email,incidents,purchased\n"Open,,1,2026-01-01\nB",,1,2026-01-01\nC,,1,2026-01-01\n',
        encoding="utf-8",
    )
    result = cli("credits", "import", str(path))
    assert result.stderr.splitlines() == [
        "error: line 2: a quote opened on this line runs on to line 3, so line 3 was read as part of this"
        " row and not imported; is a closing quote missing?"
    ]
    assert _packs(engine) == [("C", 1, date(2026, 1, 1))]
