"""What every `deskbot` command works with: the settings, a database with this deskbot's schema, and its output.

Output is for people (Rich tables, plain lines) or, with `--json`, exactly one
JSON document on stdout. Anything a command cannot do is a `CliError`; the one
error path in `bot.cli.errors` turns it into a line on stderr.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.engine import make_url

from adapters.printable import printable
from bot.config import Settings, load_settings
from bot.numbers import DAYS, day, whole_number
from bot.services.customers import find_customer
from bot.terminal import status
from storage.db import make_engine, password_pieces, schema_is_current, transaction, upgrade

if TYPE_CHECKING:
    # Rich is imported by the output helpers when a command prints: `deskbot run` never does.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from storage.models import Customer


class CliError(Exception):
    """A command that cannot be done; the message is one line for the person (exit status 1)."""


JsonFlag = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document instead of text.")]
#: A customer as the commands take it: `customer_or_fail` finds it.
CustomerArg = Annotated[
    str, typer.Argument(metavar="CUSTOMER", help="Customer id, exact name (case aside) or email address.")
]

#: Databases this process has found (or brought) up to date: checked once per URL.
_current: set[str] = set()
#: Secret values of the loaded settings, kept out of error lines and logs: with every piece of the
#: database password a driver's message may quote (`storage.db.password_pieces`).
secrets: list[str] = []


def settings() -> Settings:
    """The settings (environment, `.env`, `*_FILE`); a bad one raises SettingsError naming it."""
    loaded = load_settings()
    secrets[:] = sorted({*loaded.secrets, *password_pieces(loaded.database_url)}, key=len, reverse=True)
    return loaded


def scrub(text: str) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def migrate(config: Settings) -> None:
    """Apply the migrations to the configured database unless this process already did (`deskbot db
    upgrade`; `ready` for an empty database); a spinner on a terminal while they run (on a large
    database they take a while). The validity setting gives packs granted before 0017 their last day."""
    url = config.database_url
    if url not in _current:
        upgrade(
            url,
            progress=status(f"Applying migrations to {where(url)}"),
            pack_validity_months=config.pack_validity_months,
        )
        _current.add(url)


def ready(config: Settings) -> None:
    """Make sure the configured database has this deskbot's schema, without migrating one it has.

    Only `deskbot db upgrade` and `deskbot run` migrate (SPEC §5), after a backup (deploy/README.md,
    *Upgrading*): a schema another command upgraded silently would leave the older deskbot unable to
    start, with no backup of before. So a database at an older revision stops the command with
    OlderSchema, one at a revision this deskbot does not know with UnknownRevision. An empty
    database (no table at all: a first command on a new machine) has nothing to back up, and gets
    the schema made.
    """
    url = config.database_url
    if url not in _current and not schema_is_current(url):
        migrate(config)
    _current.add(url)


def where(url: str) -> str:
    """The database `url` as people may read it: without its password, nor the pieces of one that
    SQLAlchemy misreads (`storage.db.password_pieces`: after an unescaped "@", taken for the host)."""
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    for piece in password_pieces(url):
        if piece != parsed.password:  # hidden already; a password equal to the user name must not hide that
            shown = shown.replace(piece, "***")
    return shown


@contextmanager
def database(config: Settings) -> Iterator[Engine]:
    """An engine on the configured database, which has this deskbot's schema (`ready`)."""
    ready(config)
    engine = make_engine(config.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def session_of(config: Settings) -> Iterator[Session]:
    """One transaction on the configured database."""
    with database(config) as engine, transaction(engine) as session:
        yield session


def customer_or_fail(session: Session, ref: str) -> Customer:
    found = find_customer(session, ref)
    if found is None:
        raise CliError(f"no customer {ref!r} (give a customer id, the exact name or their email address)")
    return found


def parse_day(text: str, option: str) -> date:
    """`YYYY-MM-DD` (from 2000-01-01 to 2099-12-31: bot.numbers), or a usage error naming `option`."""
    parsed = day(text)
    if parsed is None:
        raise typer.BadParameter(f"expected a date YYYY-MM-DD from {DAYS}, got {text!r}", param_hint=f"'{option}'")
    return parsed


def number_parser(low: int = 0, high: int | None = None) -> Callable[[str], int]:
    """The `parser` of a whole-number argument (ASCII digits, see bot.numbers), from `low` to `high`.

    Without `high`, any number is taken: a case number no case has is answered like a missing one.
    """

    def parse(text: str) -> int:
        number = whole_number(text.strip())
        if number is None or number < low or (high is not None and number > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise typer.BadParameter(f"expected a whole number {span}, got {text!r}")
        return number

    return parse


Format = TypeVar("Format", bound=StrEnum)


def output_format(fmt: Format | None, as_json: bool, default: Format) -> Format:
    """The format a command prints in: its `--format`, else `default`. `--json` means `--format json`;
    with another `--format` one of the two would be ignored silently, so that is a usage error."""
    if not as_json:
        return fmt or default
    if fmt is not None and fmt != "json":
        raise typer.BadParameter(f"it means --format json, which contradicts --format {fmt}", param_hint="'--json'")
    return type(default)("json")


def now() -> datetime:
    return datetime.now(UTC)


def today(config: Settings) -> date:
    """Today in the service time zone (pack validity is counted in it)."""
    return now().astimezone(config.calendar.tz).date()


def operator() -> str:
    """Who ran the command, as stored in `granted_by`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # a container user with no passwd entry
        return "cli"


# -- output ------------------------------------------------------------------------


#: Table width when stdout is a file or a pipe: wide enough that cells do not wrap.
PIPE_WIDTH = 160


def out() -> Console:
    from rich.console import Console

    # Made per call, so the console writes to whatever sys.stdout is now (tests swap it).
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def plain(text: str) -> str:
    """`text` as a terminal may be given it: line breaks and tabs stay, every other control or
    format character goes (an escape sequence that would colour, retitle or rewrite the terminal, a
    carriage return that writes over the line, a bidi override), as subjects and topic names drop
    them (`adapters.printable`). Customers write message bodies, subjects, names and file names."""
    return "\n".join("\t".join(printable(part) for part in line.split("\t")) for line in text.split("\n"))


def echo(text: str, *, err: bool = False, nl: bool = True) -> None:
    """`typer.echo` of a text that may hold what people wrote: `plain`."""
    typer.echo(plain(text), err=err, nl=nl)


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


def iso(moment: datetime | date | None) -> str | None:
    return None if moment is None else moment.isoformat()


def local(moment: datetime | None, tz: ZoneInfo) -> str:
    """`2026-12-01 10:00 WET`: a time in the service time zone, zone shown."""
    return "—" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def cell(value: object) -> Text:
    from rich.text import Text

    # Text, never markup, and `plain`: names and messages come from customers.
    if value is None or value == "":
        return Text("—")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    return Text(plain(str(value)))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]], **options: Any) -> Table:
    from rich.table import Table

    grid = Table(title=title, title_justify="left", **options)
    for name in columns:
        grid.add_column(name, justify="right" if name in ("#", "ID", "Pack") else "left")
    for row in rows:
        grid.add_row(*(cell(value) for value in row))
    return grid
