"""The `deskbot` command line (SPEC §5).

Command reference
=================

Settings come from the environment and a `.env` file in the current directory
(SPEC §6). Every command has `--help`. Only ``db upgrade`` and ``run`` migrate
the database: another command on a database at an older revision stops with
one line saying to back it up and run ``deskbot db upgrade``; on an empty one
(no table at all: a fresh machine) it creates the schema.
`CUSTOMER` is a customer id, exact name (case aside) or email address.
Commands that print records take `--json` and then print exactly one JSON
document on stdout (times in ISO 8601 UTC, money as decimal strings). Times in text output are in the service time
zone (`DESKBOT_TIMEZONE`).

``deskbot --version``
    Print the installed version.

``deskbot run``
    Every configured channel, the response-target watcher and the health server,
    until SIGTERM or Ctrl-C. Applies migrations first.

``deskbot chat [--as customer|engineer|stranger] [--customer NAME]``
    The console channel: play a customer (default "Demo customer", created and
    linked if needed), an engineer, or a stranger (an account linked to no
    customer) in this terminal, against the configured database. On start it
    says how: ``\\as engineer`` (then ``/credits grant "Demo customer" 3`` gives
    credits) / ``\\as customer NAME`` / ``\\as stranger`` switch roles; Ctrl-D leaves.

``deskbot db upgrade``
    Apply the database migrations and print the revision before and after.

``deskbot customers add NAME [--email E]... [--zulip-email Z] [--mastodon-acct user@host] [--lang en|pt|auto] [--json]``
    Create a customer. Prints its id and a one-time activation code (valid 14
    days; the customer sends ``link CODE`` to the bot). ``--email`` repeats:
    mail from each address is the customer's, the first is the contact
    address. ``--zulip-email`` and
    ``--mastodon-acct`` link those chat accounts right away (the Mastodon
    account as ``user@host``, a leading ``@`` is dropped; the Zulip address is
    looked up on Zulip, with the Zulip settings, and linked by its user id:
    where the organisation hides that address from the bot, nothing is created
    and the error says that the activation code is the way). ``--lang`` is the
    language of the bot's replies; without it, or with ``auto``, none is chosen (``lang`` null): English
    until the customer writes in Portuguese, then Portuguese. JSON: an object with ``id``,
    ``name``, ``email``, ``emails``, ``lang``, ``activation_code``,
    ``activation_code_expires_at`` and ``identities``.

``deskbot customers list [--json]``
    Every customer with linked accounts, credits left (in valid packs), the
    last day the first of those packs is valid, and open cases. JSON: an
    array of objects (``next_expiry``: that last valid day).

``deskbot customers show CUSTOMER [--json]``
    One customer: linked accounts (last seen: when each last wrote, "—" or
    JSON ``null`` for one that never did), language, every credit pack (bought, used,
    left, valid until — inclusive —, then valid, expired or not valid yet, and
    when the customer was reminded of its end) and every case. JSON: a pack's
    ``expires_on`` is its last valid day.

``deskbot customers lang CUSTOMER en|pt|auto [--json]``
    Choose the language the customer is answered in from their next message;
    ``auto``: none chosen (English until they write in Portuguese). The
    customer's own ``lang`` still changes it. JSON: ``id``, ``name``, ``lang``.

``deskbot customers email add|remove CUSTOMER ADDRESS [--json]``
    Give a customer another email address (mail from it is theirs at once, no
    code needed), or take one away (their cases and history stay).

``deskbot customers erase CUSTOMER [--dry-run] [--yes]``
    An erasure request: the customer's personal data removed (accounts, message
    texts, files, subjects, drafts, what the outbox holds for them), what
    invoicing needs kept (cases' numbers, dates, states, charges; packs), in one
    transaction; refused while a case is open; asks unless ``--yes``. Lists the
    Zulip topics an administrator must delete (bot.services.erasure).

``deskbot credits grant CUSTOMER --incidents N [--purchased YYYY-MM-DD] [--json]``
    Add a pack of N incident credits (1–10000) bought on that date (default:
    today in the service time zone; from 2000-01-01 to 2099-12-31); a pack is
    valid for ``DESKBOT_PACK_VALIDITY_MONTHS`` calendar months (default 12),
    until the same date that many months later inclusive, or that month's last
    day if it has no such date (29 February + 12: 28 February). The setting
    in force at the grant counts: the pack keeps that day if it changes later.
    A pack that has expired already, or is not valid yet, is granted with a
    warning on stderr.

``deskbot credits import FILE.csv [--json]``
    Grant packs from a CSV file with a header row naming the columns
    ``customer,email,incidents,purchased`` (any order; ``,`` ``;`` or tab
    separated; UTF-8). ``customer`` is an id, exact name or email address; an
    unknown name creates the customer (with ``email``) and the output shows its
    activation code — the only time it is shown. ``email`` is optional: an
    address of the customer; one an existing customer has not got yet is added
    to their addresses (the output says so), one another customer has is a bad
    row. ``purchased`` is required (``YYYY-MM-DD``, from 2000-01-01 to
    2099-12-31); a pack that gives nothing today (expired, not valid yet) is
    granted with ``warning: line N: …`` on stderr, as ``credits grant`` warns
    (JSON: ``warning``). A value may not run over lines: a quote left open is a
    bad row that names the lines it swallowed. Each good row is committed on
    its own; each bad row is reported on stderr as ``error: line N: reason``
    and the exit status is then 1, while the good rows stay imported. Importing the file again after
    fixing the bad rows is safe: a row whose pack an earlier import already
    granted (same customer, date and size) is skipped, not granted twice. A
    progress bar is shown on a terminal.

``deskbot credits cancel PACK [--json]``
    Cancel the unused credits of a pack granted by mistake (its number: ``customers
    show``); its used credits stay on record, and the pack says how many were
    cancelled, when and by whom. A pack with nothing left cancels nothing (exit
    status 0). The output says how to undo it (``credits grant`` of the credits
    cancelled, with the pack's purchase date). JSON: ``pack_id``, ``customer_id``, ``customer``, ``incidents``,
    ``used``, ``cancelled_now``, ``cancelled``, ``credits_left``.

``deskbot cases list [--state open|resolved|closed] [--customer CUSTOMER] [--severity 1-4] [--overdue] [--limit N] [--json]``
    Cases in the order they are worked: by severity (1 critical first), then
    the next response due (cases with none last), then newest first; with
    customer, subject, state, severity, assignee, opened, response due,
    chargeable. ``--overdue``: open cases whose response target has passed.
    At most N cases (default 50); when more match, a line on stderr says how
    many.

``deskbot cases show N [--json]``
    One case: details, every message (customer, engineer reply, internal
    note), its files (the customer's, those sent with replies, those kept with
    notes: JSON ``from`` is ``in``, ``out`` or ``note``) and its history
    (every state change, by whom, when).

``deskbot cases export N [--format md|json] [--json]``
    The whole conversation of one case on stdout: its details, every customer
    message, reply and internal note (author: a customer's account as its name
    and address, "Alice (zulip 10)"; channel, time; text verbatim but for
    control characters, in Markdown inside code fences), its files (name, type, size, SHA-256; the
    files themselves are in the case's Zulip topic) and its history. ``--json`` is
    ``--format json``: the same document as ``cases show N --json`` (with another
    ``--format``, bad usage).

``deskbot report billing --month YYYY-MM [--format table|csv|json] [--json]``
    Chargeable incidents per customer opened in that month (2000-01 to 2099-12) (the month's
    boundaries in the service time zone); incidents not charged (a vendor bug,
    ``/bug``, or waived, ``/waive``) are not counted. Each costs ``DESKBOT_INCIDENT_PRICE`` (net of tax) in
    ``DESKBOT_CURRENCY``; with totals. ``--json`` is ``--format json`` (with another
    ``--format``, bad usage). CSV
    columns: ``month,customer_id,customer,incidents,cases,unit_price,amount,currency``,
    then a ``TOTAL`` row.

``deskbot outbox list [--state pending|failed] [--channel CHANNEL] [--limit N] [--json]``
    Outbox rows waiting to be delivered (or failed for good), oldest first:
    channel, to whom (a person, or a case topic), case, attempts, when written
    and tried next, and the platform's last error; no customer text. At most N
    (default 50); when more match, a line on stderr says so. ``--channel`` is
    ``zulip``, ``mastodon``, ``email``, ``console`` or one the outbox has rows
    of; another name is refused as unknown.

``deskbot outbox retry ID [--json]``
    A failed row becomes pending, due now; a pending row waiting for a retry is
    due now. A row whose activation code was masked when it failed cannot go
    again.

``deskbot outbox cancel ID [--json]``
    A pending row is marked failed and never sent, and the later rows to the
    same person or case topic, which waited behind it, are due now.

Errors and exit status
----------------------

Text that people wrote (message bodies, subjects, names, file names) is
printed without control and format characters (line breaks and tabs stay),
so that it cannot drive the terminal; ``--json`` keeps it whole.

0 success; 2 bad usage (unknown option, bad date or month, missing argument);
1 anything else (a bad setting, an unknown customer or case, an unreadable
file, the database unreachable, bad rows in an import); 130 interrupted. A
failure prints one line on stderr starting with ``error:`` (with
``DESKBOT_LOG_FORMAT=json``: a JSON log line, ``"level": "error"``), never a
traceback; with ``DESKBOT_LOG_LEVEL=DEBUG`` the traceback is logged to stderr too
(not for a bad setting: its line says it all).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from bot.cli.context import migrate, ready, settings, where
from bot.cli.errors import run_command
from storage.db import current_revision, make_engine

if TYPE_CHECKING:
    from typer.core import TyperCommand

    Command = TyperCommand | TyperGroup

#: The record-keeping command groups: module and Typer app of each. `deskbot run` needs none of
#: them (they bring Rich tables, the billing report, the CSV import), so a group's module is
#: imported the first time the group is looked up: to run one of its commands, for the full
#: help, or to suggest a name for a mistyped one.
LAZY_GROUPS = {
    "customers": ("bot.cli.customers", "customers_app"),
    "credits": ("bot.cli.credits", "credits_app"),
    "cases": ("bot.cli.cases", "cases_app"),
    "report": ("bot.cli.reports", "report_app"),
    "outbox": ("bot.cli.outbox", "outbox_app"),
}


class _Commands(MutableMapping[str, "Command"]):
    """The root's subcommands in their order, each group of `LAZY_GROUPS` built on first access."""

    def __init__(self, built: dict[str, Command]) -> None:
        self._built = built
        self._names = [*built, *(name for name in LAZY_GROUPS if name not in built)]

    def __getitem__(self, name: str) -> Command:
        if name not in self._built and name in LAZY_GROUPS:
            self._built[name] = _build_group(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command
        if name not in self._names:
            self._names.append(name)

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class _Root(TyperGroup):
    def __init__(self, *, commands: dict[str, Command] | None = None, **attrs: Any) -> None:
        super().__init__(commands=_Commands(dict(commands or {})), **attrs)


app = typer.Typer(
    name="deskbot",
    help="deskbot: a support-desk chat bot for incident-based support by email, Zulip and Mastodon.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Root,
)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _build_group(name: str) -> Command:
    """The Click group of `name`, built as `app.add_typer(<its app>, name=name)` would have built it."""
    module, attribute = LAZY_GROUPS[name]
    holder = typer.Typer(
        add_completion=False,
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )
    holder.add_typer(getattr(importlib.import_module(module), attribute), name=name)
    return typer.main.get_group(holder).commands[name]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # only `--version` needs it

    try:
        return version("deskbot")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"deskbot {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version_flag: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """deskbot: a support-desk chat bot for incident-based support by email, Zulip and Mastodon."""


class Role(StrEnum):
    customer = "customer"
    engineer = "engineer"
    stranger = "stranger"


@app.command()
def run() -> None:
    """Run every configured channel, the response-target watcher and the health server."""
    config = settings()
    from bot.serve import serve  # the channels' imports are heavy: only `run` pays for them

    raise typer.Exit(serve(config) or 0)


@app.command()
def chat(
    role: Annotated[
        Role,
        typer.Option(
            "--as", case_sensitive=False, help="Play a customer, an engineer or a stranger (linked to no customer)."
        ),
    ] = Role.customer,
    customer: Annotated[
        str, typer.Option("--customer", metavar="NAME", help="The customer to play (created if missing).")
    ] = "Demo customer",
) -> None:
    """Talk to the bot in this terminal as a customer, an engineer or a stranger (the console channel)."""
    config = settings()
    ready(config)  # the console migrates no schema either: `db upgrade` does, after a backup
    from bot.runtime import chat as console_chat

    console_chat(config, role=role.value, customer=customer)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (deskbot run also does this; back the database up first)."""
    config = settings()
    engine = make_engine(config.database_url)
    try:
        before = current_revision(engine)
        migrate(config)
        after = current_revision(engine)
    finally:
        engine.dispose()
    shown = where(config.database_url)
    if before == after:
        typer.echo(f"Database {shown} is up to date (revision {after}).")
    else:
        typer.echo(f"Database {shown} upgraded from revision {before or '(empty)'} to {after}.")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console-script entry point: run one command and exit with its status.

    Every failure ends in `bot.cli.errors`: one line on stderr starting with "error: ",
    the traceback logged at DEBUG, and exit status 2 for bad usage, 1 otherwise.
    """
    sys.exit(run_command(app, list(argv) if argv is not None else sys.argv[1:]))
