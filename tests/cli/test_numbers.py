"""Numbers on the command line and in CSV files: ASCII digits only; a bad row is a bad row, not a crash."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models import CreditPack, Customer
from tests.cli.conftest import Run, assert_one_error_line

ABOVE_2_63 = str(2**63 + 5)

CSV = f"""\
customer,email,incidents,purchased
Acme Lda,,3,2026-01-10
Acme Lda,,²,2026-01-11
Acme Lda,,٣,2026-01-12
Acme Lda,,{"9" * 4300},2026-01-13
Acme Lda,,2,٢٠٢٦-٠١-١٤
{ABOVE_2_63},,2,2026-01-15
Acme Lda,,4,2026-01-16
"""


@pytest.mark.usefixtures("mid_2026")
def test_import_reports_rows_with_unusable_numbers_and_keeps_the_good_ones(cli: Run, engine, tmp_path) -> None:  # noqa: ANN001
    cli("customers", "add", "Acme Lda")
    path = tmp_path / "packs.csv"
    path.write_text(CSV, encoding="utf-8")

    result = cli("credits", "import", str(path))

    assert "Traceback" not in result.output
    assert result.code == 1, result
    errors = result.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in errors] == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "incidents must be a whole number" in errors[0] and "incidents must be a whole number" in errors[1]
    assert "purchased must be a date" in errors[3]
    assert f"no customer with id {ABOVE_2_63}" in errors[4]
    assert "2 packs granted" in result.stdout
    with transaction(engine) as session:
        packs = session.execute(select(CreditPack.incidents, CreditPack.purchased).order_by(CreditPack.id)).all()
        assert [tuple(p) for p in packs] == [(3, date(2026, 1, 10)), (4, date(2026, 1, 16))]
        assert session.scalars(select(Customer.name)).all() == ["Acme Lda"]


def test_cli_numbers_are_ascii_digits_and_out_of_range_ones_name_nothing(cli: Run) -> None:
    cli("customers", "add", "Acme Lda")
    assert_one_error_line(cli("cases", "show", ABOVE_2_63), f"no case #{ABOVE_2_63}")
    assert_one_error_line(cli("cases", "show", "9" * 4300), "whole number", code=2)
    assert_one_error_line(cli("cases", "show", "٣"), "whole number", code=2)
    assert_one_error_line(cli("customers", "show", ABOVE_2_63), "no customer")
    assert_one_error_line(cli("customers", "show", "²"), "no customer")
    assert_one_error_line(cli("credits", "grant", "Acme Lda", "--incidents", "²"), "--incidents", code=2)
    assert_one_error_line(cli("credits", "grant", "Acme Lda", "--incidents", "٣"), "--incidents", code=2)
    assert_one_error_line(cli("credits", "grant", "Acme Lda", "--incidents", "10001"), "--incidents", code=2)
    bad_day = cli("credits", "grant", "Acme Lda", "--incidents", "2", "--purchased", "٢٠٢٦-٠١-١٤")
    assert_one_error_line(bad_day, "--purchased", code=2)
    assert_one_error_line(cli("report", "billing", "--month", "٢٠٢٦-١٢"), "--month", code=2)
    assert cli("credits", "grant", "Acme Lda", "--incidents", "2").code == 0
