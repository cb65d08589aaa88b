"""Only `deskbot db upgrade` and `deskbot run` migrate the database (SPEC §5).

An operator upgrades after a backup (deploy/README.md, *Upgrading*); a schema that any command
upgraded silently leaves the older deskbot unable to start ("Can't locate revision"), with no backup
of before. So every other command, on a database at an older revision, stops with one line naming
the revision found, the one needed and what to do, and leaves the database as it was. An empty
database has nothing to back up: any command may create the schema (a newcomer's first `customers
add` on the default SQLite file). Through the real command line, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import bot.cli.context
from storage.db import HEAD_REVISION, current_revision, upgrade
from tests.cli.conftest import Run, assert_one_error_line
from tests.conftest import BACKENDS, fresh_pg_database

#: A revision older checkouts left databases at (the one of the operator audit).
OLDER = "0012"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An EMPTY database (no table at all), in place of the migrated one `cli` otherwise runs on."""
    # The CLI checks each database once per process: these tests run it in this one, on one name.
    monkeypatch.setattr(bot.cli.context, "_current", set())
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'deskbot.db'}"
        return
    with fresh_pg_database(f"deskbot_test_{os.getpid()}_cli_migrations") as url:
        yield url


def revision(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "command",
    [
        ("cases", "list"),
        ("customers", "add", "Acme", "--email", "ops@acme.example"),
        ("report", "billing", "--month", "2026-12"),
        ("credits", "import", "packs.csv"),
        ("chat", "--customer", "Acme"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_command_on_an_older_schema_stops_and_leaves_it_as_it_was(
    cli: Run, db_url: str, command: tuple[str, ...]
) -> None:
    upgrade(db_url, OLDER)
    Path("packs.csv").write_text("customer,email,incidents,purchased\nAcme,ops@acme.example,5,2026-06-01\n")

    assert_one_error_line(
        cli(*command, input="help\n"),
        f"database migrations: the database is at revision {OLDER}, older than this deskbot's {HEAD_REVISION}:"
        " back up the database, then run `deskbot db upgrade`",
    )
    assert revision(db_url) == OLDER

    upgraded = cli("db", "upgrade")
    assert upgraded.code == 0, upgraded
    assert f"upgraded from revision {OLDER} to {HEAD_REVISION}" in upgraded.stdout
    assert cli(*command, input="help\n").code == 0


def test_an_empty_database_gets_the_schema_from_any_command(cli: Run, db_url: str) -> None:
    added = cli("customers", "add", "Acme", "--email", "ops@acme.example", "--json")
    assert added.code == 0, added
    assert revision(db_url) == HEAD_REVISION
    assert cli("customers", "show", "Acme").code == 0


def test_a_database_with_tables_but_no_revision_is_not_taken_for_deskbot_s(cli: Run, db_url: str) -> None:
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    engine.dispose()

    assert_one_error_line(
        cli("cases", "list"),
        "database migrations: the database holds tables but no deskbot revision: check that"
        " DESKBOT_DATABASE_URL names deskbot's database",
    )
    assert revision(db_url) is None
