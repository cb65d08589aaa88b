"""`deskbot cases …`: incidents, their conversation and history."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bot.cli.context import (
    CliError,
    JsonFlag,
    customer_or_fail,
    echo,
    err,
    iso,
    local,
    now,
    number_parser,
    out,
    output_format,
    print_json,
    session_of,
    settings,
    table,
)
from bot.services import attachments, incidents
from bot.services.case_records import (
    DEFAULT_LIMIT,
    CaseFilter,
    Conversation,
    conversation,
    conversation_markdown,
    list_cases,
)
from storage.models import Incident, IncidentEvent

cases_app = typer.Typer(help="Support cases (incidents): list, show, export.", no_args_is_help=True)


class State(StrEnum):
    open = incidents.OPEN
    resolved = incidents.RESOLVED
    closed = incidents.CLOSED


def _severity(value: str | int) -> int:
    if isinstance(value, int):
        return value
    if value.strip() not in ("1", "2", "3", "4"):
        raise typer.BadParameter("expected 1, 2, 3 or 4 (1 critical, 2 high, 3 normal, 4 low)")
    return int(value)


def _severity_text(severity: int) -> str:
    return f"{severity} ({incidents.SEVERITIES[severity]})"


class ExportFormat(StrEnum):
    md = "md"
    json = "json"


def _case_record(incident: Incident, customer: str) -> dict[str, Any]:
    return {
        "number": incident.id,
        "customer_id": incident.customer_id,
        "customer": customer,
        "subject": incident.subject,
        "state": incident.state,
        "severity": incident.severity,
        "chargeable": incident.chargeable,
        "assignee": incident.assignee,
        "pack_id": incident.pack_id,
        "topic": incident.topic,
        "opened_at": iso(incident.opened_at),
        "due_at": iso(incident.due_at),
        "first_response_at": iso(incident.first_response_at),
        "resolved_at": iso(incident.resolved_at),
        "closed_at": iso(incident.closed_at),
    }


_parse_limit = number_parser(1, 100_000)


def _limit(value: str | int) -> int:
    return value if isinstance(value, int) else _parse_limit(value)  # the default arrives as a number


@cases_app.command("list")
def cases_list(
    state: Annotated[
        State | None, typer.Option("--state", case_sensitive=False, help="Only cases in this state.")
    ] = None,
    customer: Annotated[
        str | None,
        typer.Option(
            "--customer", metavar="CUSTOMER", help="Only this customer's cases (id, exact name or email address)."
        ),
    ] = None,
    severity: Annotated[
        int | None,
        typer.Option(
            "--severity",
            metavar="1-4",
            parser=_severity,
            help="Only cases of this severity (1 critical, 2 high, 3 normal, 4 low).",
        ),
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only open cases whose response target has passed.")
    ] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            metavar="N",
            parser=_limit,
            help="Show at most the first N cases.",
        ),
    ] = DEFAULT_LIMIT,
    as_json: JsonFlag = False,
) -> None:
    """Cases in the order they are worked: by severity, then the next response due (cases with none last), then newest first; with customer, state, assignee and the next response due."""
    config = settings()
    with session_of(config) as session:
        customer_id = customer_or_fail(session, customer).id if customer is not None else None
        which = CaseFilter(state.value if state else None, customer_id, now() if overdue else None, severity)
        listing = list_cases(session, which, limit)
    if as_json:
        print_json([_case_record(incident, name) for incident, name in listing.cases])
        return
    if not listing.cases:
        echo(
            "No cases match."
            if customer or overdue or severity
            else f"No {state.value} cases."
            if state
            else "No cases yet."
        )
        return
    tz = config.calendar.tz
    out().print(
        table(
            None,
            ["#", "Customer", "Subject", "Severity", "State", "Assignee", "Opened", "Response due", "Chargeable"],
            (
                [
                    i.id,
                    name,
                    i.subject,
                    _severity_text(i.severity),
                    i.state,
                    i.assignee,
                    local(i.opened_at, tz),
                    _due(i, tz),
                    i.chargeable,
                ]
                for i, name in listing.cases
            ),
        )
    )
    if listing.total > len(listing.cases):
        err().print(f"The first {len(listing.cases)} of {listing.total} cases; --limit N shows more.")


CaseNumber = Annotated[int, typer.Argument(metavar="N", parser=number_parser(), help="Case number.")]


def _conversation_or_fail(number: int) -> tuple[Conversation, ZoneInfo]:
    config = settings()
    with session_of(config) as session:
        case = conversation(session, number)
    if case is None:
        raise CliError(f"no case #{number}")
    return case, config.calendar.tz


def _case_document(case: Conversation) -> dict[str, Any]:
    return _case_record(case.incident, case.customer) | {
        "messages": [
            {
                "id": m.id,
                "direction": m.direction,
                "author": m.author,
                "channel": m.channel,
                "at": iso(m.created_at),
                "body": m.body,
            }
            for m in case.messages
        ],
        "history": [
            {
                "at": iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "detail": e.detail,
            }
            for e in case.events
        ],
        "files": [
            {
                "name": f.name,
                "media_type": f.media_type,
                "size": f.size,
                "sha256": f.sha256,
                "refused_over": f.refused_over,
                "from": f.origin,
                "at": iso(f.at),
            }
            for f in case.files
        ],
    }


@cases_app.command("show")
def cases_show(number: CaseNumber, as_json: JsonFlag = False) -> None:
    """One case: its details, every message (in, out, internal notes) and its history."""
    case, tz = _conversation_or_fail(number)
    if as_json:
        print_json(_case_document(case))
        return
    incident, name = case.incident, case.customer
    echo(f"#{incident.id} {incident.subject}")
    echo(
        f"customer: {name} (id {incident.customer_id}) · state: {incident.state}"
        f" · severity: {_severity_text(incident.severity)}"
        f" · chargeable: {'yes' if incident.chargeable else 'no'} · assignee: {incident.assignee or '—'}"
    )
    echo(
        f"opened: {local(incident.opened_at, tz)} · response due: "
        f"{_due(incident, tz)}"
        f" · first response: {local(incident.first_response_at, tz)}"
    )
    labels = {"in": "customer", "out": "reply", "note": "note"}
    console = out()
    console.print(
        table(
            "Messages",
            ["When", "Kind", "Author", "Text"],
            (
                [local(m.created_at, tz), labels.get(m.direction, m.direction), case.who(m.author), m.body]
                for m in case.messages
            ),
        )
        if case.messages
        else "Messages: none"
    )
    console.print(
        table(
            "History",
            ["When", "Who", "What", "State", "Detail"],
            ([local(e.at, tz), case.who(e.actor), e.action, _transition(e), e.detail] for e in case.events),
        )
        if case.events
        else "History: none"
    )
    if case.files:
        console.print(
            table(
                "Files",
                ["When", "Name", "Record"],
                ([local(f.at, tz), f.name, attachments.described(f)] for f in case.files),
            )
        )


@cases_app.command("export")
def cases_export(
    number: CaseNumber,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option("--format", case_sensitive=False, help="Markdown (the default) or one JSON document."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The whole conversation of one case on stdout: customer messages, replies, internal notes and history."""
    fmt = output_format(fmt, as_json, ExportFormat.md)
    case, tz = _conversation_or_fail(number)
    if fmt is ExportFormat.json:
        print_json(_case_document(case))
    else:
        echo(conversation_markdown(case, tz), nl=False)


def _due(incident: Incident, tz: ZoneInfo) -> str:
    """When the next engineer response is due; an answered open case waits on the customer."""
    if incident.state != incidents.OPEN:
        return "—"
    return "waiting on customer" if incident.due_at is None else local(incident.due_at, tz)


def _transition(event: IncidentEvent) -> str | None:
    if event.from_state and event.to_state and event.from_state != event.to_state:
        return f"{event.from_state} → {event.to_state}"
    return event.to_state
