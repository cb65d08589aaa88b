"""`deskbot outbox …`: what waits to go out, and an operator's hand on a row that cannot.

When `DeskbotOutboxStuck` fires, `outbox list` names the rows waiting longest, to whom
and why (the platform's last error); `outbox retry` sends a failed row again, or a
waiting one now; `outbox cancel` gives up a pending row, so that its conversation's
later rows go on. Customers' words are not shown: `cases show` has them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlmodel import Session

from bot.cli.context import (
    CliError,
    JsonFlag,
    echo,
    err,
    iso,
    local,
    now,
    number_parser,
    operator,
    out,
    print_json,
    session_of,
    settings,
    table,
)
from bot.numbers import is_id
from storage import outbox
from storage.models import Outbox

outbox_app = typer.Typer(
    help="The outbox: rows waiting to be delivered or failed; retry or cancel one.", no_args_is_help=True
)

#: What `outbox list` shows unless told (`--limit`).
DEFAULT_LIMIT = 50
#: deskbot's channels (each adapter's `Channel.name`): a `--channel` that is none of them, and
#: that no row was ever written for, is a mistyped name, not an empty list.
CHANNELS = ("zulip", "mastodon", "email", "console")


class State(StrEnum):
    pending = "pending"
    failed = "failed"


def _record(row: Outbox) -> dict[str, Any]:
    return {
        "id": row.id,
        "channel": row.channel,
        "kind": row.kind,
        "to": row.recipient if row.kind == "direct" else row.topic,
        "case": row.incident_id,
        "state": row.state,
        "attempts": row.attempts,
        "written_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.state == "pending" else None,
        "last_error": row.last_error,
    }


_parse_limit = number_parser(1, 100_000)


def _limit(value: str | int) -> int:
    return value if isinstance(value, int) else _parse_limit(value)  # the default arrives as a number


RowId = Annotated[int, typer.Argument(metavar="ID", parser=number_parser(1), help="The row's id (outbox list).")]


@outbox_app.command("list")
def outbox_list(
    state: Annotated[
        State, typer.Option("--state", case_sensitive=False, help="pending (the default) or failed rows.")
    ] = State.pending,
    channel: Annotated[
        str | None, typer.Option("--channel", metavar="CHANNEL", help="Only this channel's rows.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", parser=_limit, help="Show at most N rows.")
    ] = DEFAULT_LIMIT,
    as_json: JsonFlag = False,
) -> None:
    """Outbox rows, oldest first: channel, to whom (a person, or a case topic), case, attempts, when written, when tried next, and the platform's last error."""
    config = settings()
    with session_of(config) as session:
        if channel is not None and channel not in CHANNELS and not _has_rows_of(session, channel):
            known = ", ".join(sorted(CHANNELS))
            raise typer.BadParameter(
                f"unknown channel {channel!r} (the channels are {known})", param_hint="'--channel'"
            )
        rows = outbox.listing(session, state.value, channel, limit + 1)
    shown = rows[:limit]
    if as_json:
        print_json([_record(row) for row in shown])
        return
    if not rows:
        echo(f"No {state.value} rows{f' for {channel}' if channel else ''}.")
        return
    tz = config.calendar.tz
    out().print(
        table(
            None,
            ["ID", "Channel", "To", "Case", "Attempts", "Written", "Next try", "Last error"],
            (
                [
                    row.id,
                    row.channel,
                    _record(row)["to"],
                    f"#{row.incident_id}" if row.incident_id else None,
                    row.attempts,
                    local(row.created_at, tz),
                    local(row.next_attempt_at, tz) if row.state == "pending" else None,
                    (row.last_error or "")[:120],
                ]
                for row in shown
            ),
        )
    )
    if len(rows) > limit:
        err().print(f"The oldest {limit} rows; --limit N shows more.")


def _has_rows_of(session: Session, channel: str) -> bool:
    return session.scalars(select(Outbox.id).where(Outbox.channel == channel).limit(1)).first() is not None


def _change(row_id: int, change: Callable[[Session], Outbox], said: str, as_json: bool) -> None:
    """Apply `change` to row `row_id` in one transaction; print the row, or `said` about it."""
    if not is_id(row_id):  # a number no row can have (the database could not even bind it)
        raise CliError(f"no outbox row {row_id}")
    with session_of(settings()) as session:
        try:
            record = _record(change(session))
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if as_json:
        print_json(record)
        return
    echo(f"Outbox row {row_id} ({record['channel']}, to {record['to']}) {said}")


@outbox_app.command("retry")
def outbox_retry(row_id: RowId, as_json: JsonFlag = False) -> None:
    """Send a row again: a failed row becomes pending, and a pending one waiting for a retry is due now; `deskbot run` picks it up within a second or two."""
    _change(row_id, lambda session: outbox.retry_now(session, row_id, now()), "is due now.", as_json)


@outbox_app.command("cancel")
def outbox_cancel(row_id: RowId, as_json: JsonFlag = False) -> None:
    """Give up a pending row: it is marked failed and never sent, and the later rows to the same person or case topic, which waited behind it, are due now (a row being sent at that moment may still go)."""
    reason = f"cancelled by {operator()} with deskbot outbox cancel"
    _change(
        row_id,
        lambda session: outbox.cancel(session, row_id, reason, now()),
        "is cancelled: it will not be sent.",
        as_json,
    )
