"""Credit packs from a CSV file (`deskbot credits import`).

The file has a header row naming the columns `customer`, `email`, `incidents`
and `purchased` (any order, any case; other columns are ignored; `,`, `;` or
tab separated; UTF-8, with or without a BOM). Each row is one pack:

* `customer`: an id or exact name; a name not found creates the customer
  (with `email`, and a one-time activation code reported back);
* `email`: optional; an address of the customer (a customer may have several: one the customer
  has not got yet is added to them, and the row says so; one another customer has fails the row);
* `incidents`: a whole number from 1 to 10000;
* `purchased`: the purchase date, `YYYY-MM-DD`, from 2000-01-01 to 2099-12-31.

A value may not run over several lines: a row whose quote runs on past its line (a closing
quote missing) is a bad row, reported with the lines it swallowed.

Rows are checked first, then each good row is committed in a transaction of
its own, so a bad row never costs the good ones. A file can be imported again
after its bad rows are fixed: a row whose pack (same customer, date and size)
an earlier import already granted is skipped rather than granted twice.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.numbers import DAYS, day, whole_number
from bot.services.credits import grant_credits
from bot.services.customers import CustomerError, add_email, create_customer, find_customer
from storage.db import transaction
from storage.models import CreditPack

COLUMNS = ("customer", "email", "incidents", "purchased")
REQUIRED = ("customer", "incidents", "purchased")
#: `granted_by` of packs made by an import starts with this (how a re-import recognises them).
IMPORT_MARK = "import"
MAX_INCIDENTS = 10_000

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (no header, a missing column); one line."""


@dataclass(frozen=True)
class ImportRow:
    line: int
    customer: str
    email: str | None
    incidents: int
    purchased: date


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass(frozen=True)
class RowImported:
    line: int
    customer_id: int
    customer: str
    incidents: int
    purchased: date
    #: The pack granted, or None when the row was skipped as already imported.
    pack_id: int | None
    #: The granted pack's last valid day (fixed at the grant); None when the row was skipped.
    valid_until: date | None = None
    created: bool = False
    #: Only for a customer this row created: its one-time activation code, in clear.
    activation_code: str | None = None
    #: The row's email address, when this row gave it to a customer who had others, or none.
    email_added: str | None = None

    @property
    def skipped(self) -> bool:
        return self.pack_id is None


RowResult = RowImported | RowError


def read_rows(text: str) -> tuple[list[ImportRow], list[RowError]]:
    """The good rows and the bad ones (with their line numbers) of a CSV text."""
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise ImportFileError("the file is empty; expected a header row: " + ",".join(COLUMNS))
    delimiter = max(",;\t", key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[ImportRow] = []
    errors: list[RowError] = []
    end_of_previous = 0
    try:
        for fields in reader:
            line, end_of_previous = end_of_previous + 1, reader.line_num
            if not any(field.strip() for field in fields):
                continue
            if header is None:
                header = _header(fields)
                continue
            if reader.line_num > line:
                # A quote left open swallows the lines after it into this row's last value, up to
                # the next quote or the end of the file: say so, rather than lose those rows quietly.
                errors.append(RowError(line, _runs_on(line, reader.line_num)))
                continue
            parsed = _row(line, header, fields)
            (errors if isinstance(parsed, RowError) else rows).append(parsed)
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    return rows, errors


def _runs_on(line: int, end: int) -> str:
    swallowed = f"line {end} was" if end == line + 1 else f"lines {line + 1} to {end} were"
    return (
        f"a quote opened on this line runs on to line {end}, so {swallowed} read as part of this row"
        " and not imported; is a closing quote missing?"
    )


def _header(fields: list[str]) -> list[str]:
    names = [field.strip().lower() for field in fields]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise ImportFileError(
            f"line 1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)};"
            f" expected a header row: {','.join(COLUMNS)}"
        )
    doubled = sorted({name for name in names if name in COLUMNS and names.count(name) > 1})
    if doubled:
        raise ImportFileError(f"line 1: column {', '.join(doubled)} appears twice")
    return names


def _row(line: int, header: list[str], fields: list[str]) -> ImportRow | RowError:
    if len(fields) > len(header):
        return RowError(line, f"{len(fields)} fields, but the header has {len(header)}")
    values = {name: field.strip() for name, field in zip(header, fields, strict=False)}
    problems: list[str] = []

    customer = " ".join(values.get("customer", "").split())
    if not customer:
        problems.append("customer is empty")

    email = values.get("email") or None
    if email is not None and not _EMAIL.fullmatch(email):
        problems.append(f"email {email!r} is not an email address")

    raw_incidents = values.get("incidents", "")
    incidents = whole_number(raw_incidents) or 0
    if not 1 <= incidents <= MAX_INCIDENTS:
        problems.append(f"incidents must be a whole number from 1 to {MAX_INCIDENTS}, got {raw_incidents!r}")

    raw_purchased = values.get("purchased", "")
    purchased = day(raw_purchased)
    if purchased is None:
        problems.append(f"purchased must be a date YYYY-MM-DD from {DAYS}, got {raw_purchased!r}")

    if problems:
        return RowError(line, "; ".join(problems))
    assert purchased is not None
    return ImportRow(line, customer, email, incidents, purchased)


def import_rows(
    engine: Engine,
    rows: Sequence[ImportRow],
    granted_by: str,
    now: datetime,
    *,
    months: int,
    on_result: Callable[[RowResult], None] | None = None,
) -> list[RowResult]:
    """Apply `rows`, each in its own transaction; a row that fails becomes a RowError.

    Each pack is granted as `grant_credits` grants one, valid for `months` (the setting in force
    now). `granted_by` is stored on each pack, prefixed with `import:`. Database
    outages are not row errors: they propagate, and the rows already done stay.
    """
    marker = f"{IMPORT_MARK}:{granted_by}"
    seen: Counter[tuple[int, date, int]] = Counter()
    granted: Counter[tuple[int, date, int]] = Counter()
    results: list[RowResult] = []
    for row in rows:
        try:
            result, key = _apply(engine, row, marker, now, months, seen, granted)
        except CustomerError as exc:
            result = RowError(row.line, str(exc))
        except IntegrityError as exc:
            result = RowError(row.line, f"rejected by the database: {str(exc.orig).splitlines()[0]}")
        else:
            # Counted only once committed, so a failed row leaves the duplicate check untouched.
            seen[key] += 1
            if result.pack_id is not None:
                granted[key] += 1
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _apply(
    engine: Engine,
    row: ImportRow,
    marker: str,
    now: datetime,
    months: int,
    seen: Counter[tuple[int, date, int]],
    granted: Counter[tuple[int, date, int]],
) -> tuple[RowImported, tuple[int, date, int]]:
    with transaction(engine) as session:
        customer = find_customer(session, row.customer)
        created, code, email_added = False, None, None
        if customer is None:
            if whole_number(row.customer) is not None:
                raise CustomerError(f"no customer with id {whole_number(row.customer)}")  # digits only
            customer, code = create_customer(session, row.customer, row.email, None, now)
            created = True
        elif row.email and add_email(session, customer, row.email, now):
            email_added = row.email
        key = (customer.id, row.purchased, row.incidents)
        # The n-th identical row of this file stands for the n-th identical pack an import made.
        imported = session.scalar(
            select(func.count())
            .select_from(CreditPack)
            .where(
                CreditPack.customer_id == customer.id,
                CreditPack.purchased == row.purchased,
                CreditPack.incidents == row.incidents,
                CreditPack.granted_by.like(f"{IMPORT_MARK}:%"),
            )
        )
        imported_before = (imported or 0) - granted[key]
        pack = None
        if seen[key] + 1 > imported_before:
            pack = grant_credits(session, customer, row.incidents, row.purchased, marker, now, months=months)
        result = RowImported(
            line=row.line,
            customer_id=customer.id,
            customer=customer.name,
            incidents=row.incidents,
            purchased=row.purchased,
            pack_id=pack.id if pack else None,
            valid_until=pack.valid_until if pack else None,
            created=created,
            activation_code=code,
            email_added=email_added,
        )
    return result, key
