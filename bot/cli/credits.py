"""`deskbot credits …`: grant a credit pack, or import many from a CSV file."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.engine import Engine

from bot.cli.context import (
    CliError,
    CustomerArg,
    JsonFlag,
    customer_or_fail,
    database,
    echo,
    err,
    iso,
    now,
    number_parser,
    operator,
    out,
    parse_day,
    print_json,
    session_of,
    settings,
    table,
    today,
)
from bot.policy import unusable_because
from bot.services import credits as credit_service
from bot.services import imports

credits_app = typer.Typer(
    help="Credit packs: grant one, import many from CSV, or cancel one granted by mistake.", no_args_is_help=True
)


@credits_app.command("grant")
def credits_grant(
    customer: CustomerArg,
    incidents: Annotated[
        int,
        typer.Option(
            "--incidents", parser=number_parser(1, imports.MAX_INCIDENTS), metavar="N", help="Incidents in the pack."
        ),
    ],
    purchased: Annotated[
        str | None,
        typer.Option(
            "--purchased",
            metavar="YYYY-MM-DD",
            help="Purchase date (default: today); valid DESKBOT_PACK_VALIDITY_MONTHS months (12: a year), as set now.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a pack of incident credits bought on one date."""
    config = settings()
    day = parse_day(purchased, "--purchased") if purchased is not None else today(config)
    with session_of(config) as session:
        found = customer_or_fail(session, customer)
        pack = credit_service.grant_credits(
            session, found, incidents, day, operator(), now(), months=config.pack_validity_months
        )
        left = credit_service.credit_summary(session, found.id, today(config)).total_left
    expires = pack.valid_until
    if as_json:
        print_json(
            {
                "pack_id": pack.id,
                "customer_id": found.id,
                "customer": found.name,
                "incidents": pack.incidents,
                "purchased": iso(pack.purchased),
                "expires_on": iso(expires),
                "credits_left": left,
            }
        )
        return
    echo(
        f"Pack {pack.id}: {_credits(pack.incidents)} for {found.name}, bought {pack.purchased},"
        f" valid until {expires} inclusive. {found.name} has {_credits(left)} left."
    )
    warning = _pack_warning(pack.purchased, expires, today(config))
    if warning:
        echo(f"warning: {warning}", err=True)


def _pack_warning(purchased: date, valid_until: date, today: date) -> str | None:
    """Why a pack bought on `purchased` and valid until `valid_until` gives the customer nothing
    today, if it does not (a date that is probably a slip): granted all the same, with this warning."""
    why = unusable_because(purchased, today, valid_until=valid_until)
    if why == "expired":
        return "this pack has expired already: it gives the customer nothing to use"
    if why == "not_yet":
        return f"this pack is not valid before {purchased}: the customer cannot use it until then"
    return None


@credits_app.command("cancel")
def credits_cancel(
    pack: Annotated[
        int,
        typer.Argument(metavar="PACK", parser=number_parser(), help="The pack's number (deskbot customers show)."),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Cancel the unused credits of a pack granted by mistake; used credits stay on record."""
    config = settings()
    with session_of(config) as session:
        done = credit_service.cancel_unused(session, pack, operator(), now())
        if done is None:
            raise CliError(f"no pack {pack} (deskbot customers show CUSTOMER lists a customer's packs)")
        left = credit_service.credit_summary(session, done.customer.id, today(config)).total_left
        document = {
            "pack_id": pack,
            "customer_id": done.customer.id,
            "customer": done.customer.name,
            "incidents": done.pack.incidents,
            "used": done.pack.used,
            "cancelled_now": done.count,
            "cancelled": done.pack.cancelled,
            "credits_left": left,
        }
    if as_json:
        print_json(document)
        return
    name = done.customer.name
    if done.count == 0:
        echo(f"Pack {pack} of {name} has no unused credits: nothing cancelled. {name} has {_credits(left)} left.")
        return
    echo(
        f"Pack {pack} of {name}: {_credits(done.count)} cancelled (used, and kept on record: {done.pack.used})."
        f" {name} has {_credits(left)} left."
    )
    echo(
        f"Cancelled by mistake? deskbot credits grant {done.customer.id} --incidents {done.count}"
        f" --purchased {done.pack.purchased.isoformat()} gives them back as a new pack."
    )


def _credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"


@credits_app.command("import")
def credits_import(
    file: Annotated[
        Path, typer.Argument(metavar="FILE.csv", help="CSV with columns customer,email,incidents,purchased.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Grant packs from a CSV file; creates missing customers; bad rows are reported by line, good rows kept."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CliError(f"{file} is not UTF-8 text (byte {exc.start})") from None
    try:
        rows, bad = imports.read_rows(text)
    except imports.ImportFileError as exc:
        raise CliError(f"{file}: {exc}") from None
    config = settings()
    with database(config) as engine:
        results = _import_with_progress(engine, rows, config.pack_validity_months, as_json)
    errors = sorted(bad + [r for r in results if isinstance(r, imports.RowError)], key=lambda e: e.line)
    done = [r for r in results if isinstance(r, imports.RowImported)]
    day = today(config)
    warnings = {
        r.line: w for r in done if r.valid_until is not None and (w := _pack_warning(r.purchased, r.valid_until, day))
    }
    if as_json:
        print_json(_import_document(file, done, errors, warnings))
    else:
        _print_import(done, errors, warnings)
    if errors:
        raise typer.Exit(1)


def _import_with_progress(
    engine: Engine, rows: list[imports.ImportRow], months: int, quiet: bool
) -> list[imports.RowResult]:
    console = err()
    if quiet or not console.is_terminal or not rows:
        return imports.import_rows(engine, rows, operator(), now(), months=months)
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("import", total=len(rows))
        return imports.import_rows(
            engine, rows, operator(), now(), months=months, on_result=lambda _r: progress.advance(task)
        )


def _import_document(
    file: Path, done: list[imports.RowImported], errors: list[imports.RowError], warnings: dict[int, str]
) -> dict[str, Any]:
    def row(r: imports.RowImported) -> dict[str, Any]:
        return {
            "line": r.line,
            "customer_id": r.customer_id,
            "customer": r.customer,
            "incidents": r.incidents,
            "purchased": iso(r.purchased),
            "pack_id": r.pack_id,
            "customer_created": r.created,
            "activation_code": r.activation_code,
            "email_added": r.email_added,
            "warning": warnings.get(r.line),
        }

    return {
        "file": str(file),
        "imported": [row(r) for r in done if not r.skipped],
        "skipped": [row(r) | {"reason": "already imported"} for r in done if r.skipped],
        "errors": [{"line": e.line, "error": e.message} for e in errors],
        "customers_created": sum(r.created for r in done),
    }


def _print_import(done: list[imports.RowImported], errors: list[imports.RowError], warnings: dict[int, str]) -> None:
    console = out()
    if done:
        console.print(
            table(
                None,
                ["Line", "Customer", "Incidents", "Bought", "Pack", "Activation code"],
                (
                    [
                        r.line,
                        f"{r.customer} (new, id {r.customer_id})"
                        if r.created
                        else f"{r.customer} (id {r.customer_id})"
                        + (f", email {r.email_added} added" if r.email_added else ""),
                        r.incidents,
                        r.purchased,
                        r.pack_id if r.pack_id is not None else "skipped: already imported",
                        r.activation_code,
                    ]
                    for r in done
                ),
            )
        )
    granted = sum(not r.skipped for r in done)
    skipped = len(done) - granted
    created = sum(r.created for r in done)
    summary = (
        f"{granted} pack{'s' if granted != 1 else ''} granted, {created} new customer{'s' if created != 1 else ''}"
    )
    if skipped:
        summary += f", {skipped} row{'s' if skipped != 1 else ''} skipped (already imported)"
    if errors:
        summary += f", {len(errors)} bad row{'s' if len(errors) != 1 else ''} not imported"
    echo(summary + ".")
    if created:
        echo("Give each new customer their activation code; it is shown only now.")
    for line, warning in sorted(warnings.items()):
        echo(f"warning: line {line}: {warning}", err=True)
    for error in errors:
        echo(f"error: line {error.line}: {error.message}", err=True)
