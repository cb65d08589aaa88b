"""`deskbot report …`: reports from the store; for now `report billing`, a month's chargeable incidents and their price."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from typing import Annotated, Any

import typer

from bot.cli.context import JsonFlag, echo, out, output_format, print_json, session_of, settings, table
from bot.services.billing import BillingReport, Month, billing_report

report_app = typer.Typer(help="Reports.", no_args_is_help=True)


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@report_app.command("billing")
def report_billing(
    month: Annotated[str, typer.Option("--month", metavar="YYYY-MM", help="Month the incidents were opened in.")],
    fmt: Annotated[
        Format | None, typer.Option("--format", case_sensitive=False, help="Output format (default: table).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Chargeable incidents per customer opened in a month (service time zone), priced from the settings."""
    fmt = output_format(fmt, as_json, Format.table)
    try:
        period = Month.parse(month)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--month'") from None
    config = settings()
    with session_of(config) as session:
        report = billing_report(session, period, config.calendar.tz, config.incident_price, config.currency)
    if fmt is Format.json:
        print_json(_billing_document(report))
    elif fmt is Format.csv:
        _billing_csv(report)
    else:
        _billing_table(report)


def _billing_document(report: BillingReport) -> dict[str, Any]:
    # Money as strings: exact decimals, not binary floats.
    return {
        "month": str(report.month),
        "timezone": report.timezone,
        "currency": report.currency,
        "unit_price": str(report.unit_price),
        "customers": [
            {
                "customer_id": line.customer_id,
                "customer": line.customer,
                "incidents": line.count,
                "cases": list(line.incidents),
                "amount": str(line.amount),
            }
            for line in report.lines
        ],
        "total_incidents": report.total_incidents,
        "total_amount": str(report.total_amount),
    }


def _billing_csv(report: BillingReport) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["month", "customer_id", "customer", "incidents", "cases", "unit_price", "amount", "currency"])
    for line in report.lines:
        writer.writerow(
            [
                report.month,
                line.customer_id,
                line.customer,
                line.count,
                " ".join(map(str, line.incidents)),
                report.unit_price,
                line.amount,
                report.currency,
            ]
        )
    writer.writerow(
        [report.month, "", "TOTAL", report.total_incidents, "", report.unit_price, report.total_amount, report.currency]
    )
    echo(buffer.getvalue(), nl=False)


def _billing_table(report: BillingReport) -> None:
    echo(
        f"Billing {report.month} ({report.timezone}): chargeable incidents at "
        f"{report.unit_price} {report.currency} each, net of tax"
    )
    rows: list[list[object]] = [
        [
            line.customer_id,
            line.customer,
            line.count,
            " ".join(f"#{n}" for n in line.incidents),
            f"{line.amount} {report.currency}",
        ]
        for line in report.lines
    ]
    grid = table(None, ["ID", "Customer", "Incidents", "Cases", "Amount"], rows, show_footer=True)
    grid.columns[1].footer = "Total"
    grid.columns[2].footer = str(report.total_incidents)
    grid.columns[4].footer = f"{report.total_amount} {report.currency}"
    out().print(grid)
