"""The plain `alembic` command (no connection handed over by deskbot) connects to PostgreSQL with
the same bounded timeouts as the bot's own migrations (`storage.db.PG_CONNECT_DEFAULTS`): a dead
path to the server fails it rather than hanging it for the kernel's quarter of an hour."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import event

from storage.db import HEAD_REVISION, PG_CONNECT_DEFAULTS, alembic_config
from tests.conftest import fresh_pg_database


@pytest.fixture
def connections() -> Iterator[list[dict]]:
    """The keyword arguments of every DBAPI connection any engine opens meanwhile."""
    seen: list[dict] = []

    def _record(_dialect, _record, _cargs, cparams) -> None:  # noqa: ANN001
        seen.append(dict(cparams))

    event.listen(sa.engine.Engine, "do_connect", _record)
    try:
        yield seen
    finally:
        event.remove(sa.engine.Engine, "do_connect", _record)


def test_the_plain_alembic_command_connects_with_the_bot_s_timeouts(connections: list[dict]) -> None:
    with fresh_pg_database(f"deskbot_test_alembic_engine_{os.getpid()}") as url:
        connections.clear()  # the database's creation
        command.upgrade(alembic_config(url), "head")
        migrating = connections[0]
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
        engine.dispose()
    assert {name: migrating.get(name) for name in PG_CONNECT_DEFAULTS} == PG_CONNECT_DEFAULTS
