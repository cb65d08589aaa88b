"""`deskbot engineers …`: the Zulip accounts the engineers' emails are pinned to.

The first Zulip account that writes with an email of `DESKBOT_ENGINEERS` is
pinned to it (bot/services/engineers.py); these commands show the pins and
let an operator reset a wrong one or set it to a known Zulip user id.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from bot.cli.context import CliError, JsonFlag, iso, local, now, out, print_json, session_of, settings, table
from bot.services import engineers as service
from storage.models import EngineerPin

engineers_app = typer.Typer(
    help="Engineers' Zulip accounts: list the pins, reset one, or pin an email to a user id.", no_args_is_help=True
)

#: Zulip user ids are positive integers; longer than this is a typo, not an id.
_USER_ID = re.compile(r"[1-9][0-9]{0,17}")

EmailArg = Annotated[str, typer.Argument(metavar="EMAIL", help="An engineer's email (as in DESKBOT_ENGINEERS).")]


def _document(pin: EngineerPin, listed: frozenset[str]) -> dict[str, Any]:
    return {
        "email": pin.email,
        "zulip_user_id": pin.platform_user_id,
        "pinned_at": iso(pin.pinned_at),
        "listed": pin.email in listed,
    }


@engineers_app.command("pins")
def engineers_pins(as_json: JsonFlag = False) -> None:
    """Every engineer email and the Zulip user id it is pinned to; whether DESKBOT_ENGINEERS still lists it."""
    config = settings()
    tz = config.calendar.tz
    with session_of(config) as session:
        found = service.pins(session)
        documents = [_document(p, config.engineer_emails) for p in found]
        rows = [
            [d["email"], d["zulip_user_id"], local(p.pinned_at, tz), d["listed"]]
            for p, d in zip(found, documents, strict=True)
        ]
    if as_json:
        print_json(documents)
        return
    if not rows:
        typer.echo("No engineer is pinned yet: each email is pinned when it first writes to the bot on Zulip.")
        return
    out().print(table(None, ["Email", "Zulip user id", "Pinned", "In DESKBOT_ENGINEERS"], rows))


@engineers_app.command("unpin")
def engineers_unpin(email: EmailArg, as_json: JsonFlag = False) -> None:
    """Reset the pin of EMAIL: the next Zulip account that writes with it is pinned."""
    config = settings()
    with session_of(config) as session:
        removed = service.unpin(session, email)
        if removed is None:
            raise CliError(f"no pin for {email.strip().lower()!r} (see: deskbot engineers pins)")
        document = _document(removed, config.engineer_emails)
    if as_json:
        print_json({**document, "unpinned": True})
        return
    typer.echo(
        f"Unpinned {document['email']} (was Zulip user id {document['zulip_user_id']}); "
        "the next Zulip account that writes with it is pinned."
    )


@engineers_app.command("pin")
def engineers_pin(
    email: EmailArg,
    user_id: Annotated[str, typer.Argument(metavar="USER_ID", help="The engineer's Zulip user id.")],
    as_json: JsonFlag = False,
) -> None:
    """Pin EMAIL to the Zulip account USER_ID (replacing any pin), so that no other account can take it first."""
    config = settings()
    email = email.strip().lower()
    if not _USER_ID.fullmatch(user_id.strip()):
        raise typer.BadParameter(f"expected a Zulip user id (digits), got {user_id!r}", param_hint="'USER_ID'")
    if email not in config.engineer_emails:
        raise CliError(f"{email!r} is not in DESKBOT_ENGINEERS; only a listed email can run engineer commands")
    with session_of(config) as session:
        document = _document(service.pin(session, email, user_id.strip(), now()), config.engineer_emails)
    if as_json:
        print_json(document)
        return
    typer.echo(f"Pinned {document['email']} to Zulip user id {document['zulip_user_id']}.")
