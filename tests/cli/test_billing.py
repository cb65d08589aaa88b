"""`deskbot report billing`: chargeable incidents opened in a month (Lisbon time), in three formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest

from bot.services.credits import grant_credits
from bot.services.customers import create_customer
from storage.db import transaction
from storage.models import Incident
from tests.cli.conftest import Run, assert_one_error_line


@pytest.fixture
def july(cli: Run, cli_env: pytest.MonkeyPatch, engine) -> Run:  # noqa: ANN001
    """Acme: 2 chargeable incidents opened in July 2026 (Lisbon), plus ones that must not count."""
    cli_env.setenv("DESKBOT_INCIDENT_PRICE", "120.50")
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with transaction(engine) as session:
        acme, _ = create_customer(session, "Acme", None, "en", now)
        beta, _ = create_customer(session, "Beta", None, "en", now)
        quiet, _ = create_customer(session, "Quiet", None, "en", now)
        packs = {
            c.id: grant_credits(session, c, 10, date(2026, 1, 1), "test", now, months=12).id
            for c in (acme, beta, quiet)
        }

        def incident(customer, opened: datetime, chargeable: bool = True) -> None:  # noqa: ANN001
            session.add(
                Incident(
                    customer_id=customer.id,
                    pack_id=packs[customer.id],
                    subject="q",
                    opened_at=opened,
                    chargeable=chargeable,
                )
            )
            session.flush()

        incident(acme, datetime(2026, 7, 10, 12, 0, tzinfo=UTC))  # 1: July
        incident(acme, datetime(2026, 7, 11, 12, 0, tzinfo=UTC), chargeable=False)  # 2: vendor bug
        incident(acme, datetime(2026, 6, 30, 23, 30, tzinfo=UTC))  # 3: 00:30 on 1 July in Lisbon
        incident(acme, datetime(2026, 7, 31, 23, 30, tzinfo=UTC))  # 4: 00:30 on 1 August in Lisbon
        incident(beta, datetime(2026, 7, 20, 9, 0, tzinfo=UTC))  # 5: July
        incident(quiet, datetime(2026, 8, 5, 9, 0, tzinfo=UTC))  # 6: another month
    return cli


def test_json(july: Run) -> None:
    result = july("report", "billing", "--month", "2026-07", "--format", "json")
    assert result.code == 0, result
    document = json.loads(result.stdout)
    assert document["month"] == "2026-07" and document["timezone"] == "Europe/Lisbon"
    assert document["currency"] == "EUR" and document["unit_price"] == "120.50"
    assert [(c["customer"], c["incidents"], c["cases"], c["amount"]) for c in document["customers"]] == [
        ("Acme", 2, [1, 3], "241.00"),
        ("Beta", 1, [5], "120.50"),
    ]
    assert (document["total_incidents"], document["total_amount"]) == (3, "361.50")
    assert json.loads(july("report", "billing", "--month", "2026-07", "--json").stdout) == document


def test_csv(july: Run) -> None:
    result = july("report", "billing", "--month", "2026-07", "--format", "csv")
    assert result.code == 0, result
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["customer"], r["incidents"], r["amount"], r["currency"]) for r in rows] == [
        ("Acme", "2", "241.00", "EUR"),
        ("Beta", "1", "120.50", "EUR"),
        ("TOTAL", "3", "361.50", "EUR"),
    ]


def test_table(july: Run) -> None:
    result = july("report", "billing", "--month", "2026-07")
    assert result.code == 0, result
    assert "Billing 2026-07 (Europe/Lisbon)" in result.stdout and "120.50 EUR each" in result.stdout
    acme = next(line for line in result.stdout.splitlines() if "Acme" in line)
    assert "#1 #3" in acme and "241.00 EUR" in acme
    total = next(line for line in result.stdout.splitlines() if "Total" in line)
    assert "361.50 EUR" in total and " 3 " in total
    assert "Quiet" not in result.stdout


def test_other_months_and_bad_month(july: Run) -> None:
    august = json.loads(july("report", "billing", "--month", "2026-08", "--json").stdout)
    assert [(c["customer"], c["cases"]) for c in august["customers"]] == [("Acme", [4]), ("Quiet", [6])]
    assert_one_error_line(july("report", "billing", "--month", "2026-13"), "--month", "YYYY-MM", code=2)
    assert_one_error_line(july("report", "billing", "--month", "July"), "--month", code=2)
    assert_one_error_line(july("report", "billing"), "--month", code=2)


def test_a_month_out_of_range_names_the_range(july: Run) -> None:
    # 9999-12 ran into year 10000 (its end is the next month's start) and failed with an unexpected error.
    for typed in ("9999-12", "0001-01", "1999-12", "2100-01"):
        refused = july("report", "billing", "--month", typed)
        assert_one_error_line(refused, "--month", "from 2000-01 to 2099-12", repr(typed), code=2)
    assert july("report", "billing", "--month", "2099-12").code == 0
