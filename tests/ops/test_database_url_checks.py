"""DESKBOT_DATABASE_URL forms that used to be taken and then went wrong (SPEC §6: one line naming the
setting, never the password), through the installed `deskbot` in a child process.

* No database name: libpq takes the database named as the user (`postgres`: the server's
  maintenance database), and deskbot's tables were created there.
* `sqlite://`: a database in memory, which `run` ran on, keeping nothing, and where the commands
  found no tables.
* A password with an `@` or `#` as it is: SQLAlchemy read the rest of it as the host, and the
  error line showed it.

Every URL here names a port nothing listens on (1), so that a URL taken by mistake fails on its own
without reaching a server: these tests never create anything in a real database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.test_startup_settings import ZULIP, Done, deskbot, one_error_line

pytestmark = pytest.mark.timeout(180)

COMMANDS = {"run": ("run",), "customers": ("customers", "list"), "upgrade": ("db", "upgrade")}
FORM = "expected sqlite:///FILE or postgresql+psycopg://USER@HOST/DB"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql+psycopg://postgres:Secret99@127.0.0.1:1", f"no database name; {FORM}"),
        ("postgresql+psycopg://postgres:Secret99@127.0.0.1:1/", f"no database name; {FORM}"),
        ("sqlite://", f"an SQLite database in memory keeps nothing once deskbot stops; {FORM}"),
        ("sqlite:///:memory:", f"an SQLite database in memory keeps nothing once deskbot stops; {FORM}"),
    ],
    ids=["no-name", "no-name-slash", "sqlite-memory", "sqlite-memory-named"],
)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_database_url_naming_no_database_stops_start_up(tmp_path: Path, url: str, said: str, command: str) -> None:
    line = one_error_line(deskbot(tmp_path, *COMMANDS[command], **ZULIP, DESKBOT_DATABASE_URL=url))
    assert line == f"DESKBOT_DATABASE_URL: {said}"
    assert "Secret99" not in line


#: A password as an operator may paste it, with what SQLAlchemy would take for the host after its `@`.
PASSWORD_PARTS = ("Kx9", "vR2", "pLm")
PERCENT_ENCODE = (
    "DESKBOT_DATABASE_URL: an '@' in the password or a '#' in the URL: percent-encode special characters in"
    " the password (@ as %40, # as %23, % as %25)"
)


@pytest.mark.parametrize(
    ("url", "encoded"),
    [
        # As SQLAlchemy reads them, none names a host to look up: 127.0.0.1, or a port that is no number
        # (the first: host vR2, port "pLm@127.0.0.1:1", and the port was blamed).
        ("postgresql+psycopg://deskbot:Kx9@vR2:pLm@127.0.0.1:1/x", "deskbot:Kx9%40vR2:pLm@127.0.0.1:1/x"),
        ("postgresql+psycopg://deskbot:Kx9#vR2pLm@127.0.0.1:1/x", "deskbot:Kx9%23vR2pLm@127.0.0.1:1/x"),
        ("postgresql://deskbot:Kx9@vR2@pLm:1@127.0.0.1:1/x", "deskbot:Kx9%40vR2%40pLm:1@127.0.0.1:1/x"),
    ],
    ids=["at", "hash", "two-ats"],
)
@pytest.mark.parametrize("command", ["run", "customers"])
def test_a_password_with_an_at_or_hash_as_it_is_stops_start_up_without_showing_it(
    tmp_path: Path, url: str, encoded: str, command: str
) -> None:
    done = deskbot(tmp_path, *COMMANDS[command], **ZULIP, DESKBOT_DATABASE_URL=url)
    assert one_error_line(done) == PERCENT_ENCODE
    assert not [part for part in PASSWORD_PARTS if part in done.stdout + done.stderr]
    # Percent-encoded, it is taken: the command goes on to the database (nothing listens on port 1).
    done = deskbot(
        tmp_path, *COMMANDS[command], **ZULIP, **_SHORT_WAIT, DESKBOT_DATABASE_URL=f"postgresql+psycopg://{encoded}"
    )
    assert "percent-encode" not in _database_error(done, command)
    assert not [part for part in PASSWORD_PARTS if part in done.stdout + done.stderr]
    # An `@` in the user name is read as meant (`user@server`, as some hosted PostgreSQL want it).
    done = deskbot(
        tmp_path,
        *COMMANDS[command],
        **ZULIP,
        **_SHORT_WAIT,
        DESKBOT_DATABASE_URL=f"postgresql://deskbot@server:{encoded.removeprefix('deskbot:')}",
    )
    assert "percent-encode" not in _database_error(done, command)


#: `deskbot run` waits for a database that takes no connection (bot.serve): not long, here.
_SHORT_WAIT = {"DESKBOT_STARTUP_TIMEOUT": "2"}


def _database_error(done: Done, command: str) -> str:
    """The line of a command that could not use the database, after "error: "; `run` says first,
    once, that it waits for it (tests/ops/test_database_wait.py)."""
    if command != "run":
        return one_error_line(done, "cannot use the database")
    assert done.code == 1, done
    waited, failed = done.stderr.splitlines()
    assert "trying again for up to 2s (DESKBOT_STARTUP_TIMEOUT)" in waited, done.stderr
    assert failed.startswith("error: cannot use the database") and "Traceback" not in done.stderr, done.stderr
    return failed.removeprefix("error: ")
