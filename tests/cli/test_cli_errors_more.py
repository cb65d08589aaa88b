"""What an operator audit found the command line saying wrongly, through the real command line.

- A database error names DESKBOT_DATABASE_URL (SPEC §6), and shows no piece of its password, even
  of one written with an unescaped "@" and "#" that SQLAlchemy reads partly as the host.
- `--json` is `--format json`: given with another `--format`, the command refuses, as bad usage.
- `customers show` says "—" for an account that never wrote, not the time it was linked.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa

import bot.cli.context
from adapters.channel import Inbound
from bot.cli.context import where
from bot.services.customers import create_customer, link_email
from storage.db import transaction
from tests.cli.conftest import Run, assert_one_error_line
from tests.desk import Desk

#: The password of the audit, written into the URL unescaped: SQLAlchemy reads the password "Kx9"
#: and the host "vR2#pLm@postgres", which the driver then says it cannot resolve.
PASSWORD_PIECES = ("Kx9", "vR2", "pLm")
UNESCAPED = "postgresql+psycopg://deskbot:Kx9@vR2#pLm@postgres:5432/deskbot"


@pytest.fixture
def no_name_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Host names other than this machine's are not found, without asking a name server."""
    real = socket.getaddrinfo

    def lookup(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 (socket.getaddrinfo's)
        if host in ("localhost", "127.0.0.1", "::1", None):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)


#: For the tests that name a database of their own: the one `cli` comes with is not used.
ONE_BACKEND = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@ONE_BACKEND
@pytest.mark.parametrize("log_output", ["text", "json", "debug"])
@pytest.mark.parametrize("given", ["as a file", "past the setting check"])
def test_no_piece_of_a_password_written_unescaped_is_shown(
    cli: Run, cli_env: pytest.MonkeyPatch, tmp_path: Path, no_name_lookups: None, given: str, log_output: str
) -> None:
    secret = tmp_path / "database_url"
    secret.write_text(UNESCAPED)
    cli_env.delenv("DESKBOT_DATABASE_URL")
    cli_env.setenv("DESKBOT_DATABASE_URL_FILE", str(secret))
    if given == "past the setting check":
        # The settings refuse such a URL (bot.config); the error path must not count on that alone:
        # the URL as if they had taken it, every other setting read as usual.
        load_settings = bot.cli.context.load_settings
        cli_env.delenv("DESKBOT_DATABASE_URL_FILE")
        cli_env.setattr(
            bot.cli.context, "load_settings", lambda: load_settings().model_copy(update={"database_url": UNESCAPED})
        )
    if log_output == "json":
        cli_env.setenv("DESKBOT_LOG_FORMAT", "json")
    if log_output == "debug":  # the traceback is logged too
        cli_env.setenv("DESKBOT_LOG_LEVEL", "DEBUG")

    for command in (("cases", "list"), ("db", "upgrade")):
        result = cli(*command)
        assert result.code == 1, result
        assert "DESKBOT_DATABASE_URL" in result.stderr.splitlines()[-1], result.stderr
        for piece in PASSWORD_PIECES:
            assert piece not in result.output, result.output


def test_the_database_as_shown_hides_those_pieces_too() -> None:
    """As `db upgrade` and the migrations' spinner name it."""
    shown = where(UNESCAPED)
    assert shown == "postgresql+psycopg://deskbot:***@***#***@postgres:5432/deskbot", shown
    assert where("postgresql+psycopg://postgres:postgres@db/deskbot") == "postgresql+psycopg://postgres:***@db/deskbot"


@ONE_BACKEND
@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://deskbot:pw-s3cret@127.0.0.1:{port}/deskbot", "sqlite:///{directory}"],
    ids=["server", "file"],
)
def test_a_database_that_cannot_be_used_names_the_setting(
    cli: Run, cli_env: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    cli_env.setenv("DESKBOT_DATABASE_URL", url.format(port=port, directory=tmp_path))  # a directory: no file

    result = cli("customers", "list")
    assert_one_error_line(result, "cannot use the database: ")
    assert result.stderr.rstrip().endswith(" (DESKBOT_DATABASE_URL)"), result.stderr
    assert "s3cret" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        ("report", "billing", "--month", "2026-12", "--format", "csv", "--json"),
        ("report", "billing", "--month", "2026-12", "--json", "--format", "table"),
        ("cases", "export", "1", "--format", "md", "--json"),
    ],
    ids=["billing csv", "billing table", "export md"],
)
def test_json_with_another_format_is_bad_usage(cli: Run, command: tuple[str, ...]) -> None:
    given = command[command.index("--format") + 1]
    result = cli(*command)
    assert_one_error_line(result, "'--json'", f"contradicts --format {given}", code=2)
    assert result.stdout == ""


def test_json_agrees_with_format_json(cli: Run) -> None:
    for extra in (("--json",), ("--format", "json"), ("--format", "JSON", "--json")):
        result = cli("report", "billing", "--month", "2026-12", *extra)
        assert result.code == 0, result
        assert json.loads(result.stdout)["month"] == "2026-12"
    assert cli("report", "billing", "--month", "2026-12", "--format", "csv").stdout.startswith("month,customer_id")


def test_an_account_that_never_wrote_was_never_seen(cli: Run) -> None:
    added = cli("customers", "add", "Acme", "--email", "ops@acme.example", "--mastodon-acct", "ops@social.example")
    assert added.code == 0, added
    chatted = cli("chat", "--customer", "Acme", input="help\n")  # the console account writes
    assert chatted.code == 0, chatted

    accounts = json.loads(cli("customers", "show", "Acme", "--json").stdout)["identities"]
    seen = {account["channel"]: account["last_seen_at"] for account in accounts}
    assert seen["email"] is None and seen["mastodon"] is None, accounts
    assert seen["console"] is not None, accounts

    rows = {
        line.split("│")[1].strip(): line for line in cli("customers", "show", "Acme").stdout.splitlines() if "│" in line
    }
    assert rows["email"].split("│")[-2].strip() == "—", rows
    assert rows["mastodon"].split("│")[-2].strip() == "—", rows
    assert rows["console"].split("│")[-2].strip() != "—", rows


def test_an_account_whose_first_message_left_a_trace_was_seen(cli: Run, engine: sa.Engine, db_url: str, clock) -> None:  # noqa: ANN001
    """Accounts that wrote in the minute they were linked, giving no name (as mail without one
    does): seen, whichever came first, the link or the message (a link sets no "last seen":
    bot.services.customers.account; a message does)."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)  # the console account linked at the clock's time
    with transaction(engine) as session:
        _beta, code = create_customer(session, "Beta", None, "en", clock())

    def unnamed(channel: str, sender: str, text: str, number: int) -> Inbound:
        return Inbound(channel, sender, sender, text, f"m{number}", clock(), sender_name=None)

    desk.runtime.intake.deliver(unnamed("console", "Acme", "open The mail server is down", 1))
    desk.runtime.intake.deliver(unnamed("console", "beta-account", f"link {code}", 2))
    desk.runtime.intake.deliver(unnamed("email", "ops@gamma.example", "Hello, is this support?", 3))
    with transaction(engine) as session:  # an engineer links the address (/customer link) that minute
        gamma, _code = create_customer(session, "Gamma", None, "en", clock())
        link_email(session, gamma, "ops@gamma.example", clock())
    assert desk.incident_count() == 1

    for name in ("Acme", "Beta", "Gamma"):
        accounts = json.loads(cli("customers", "show", name, "--json").stdout)["identities"]
        assert [account["last_seen_at"] for account in accounts] == [clock().isoformat()], accounts
