"""Pooled PostgreSQL connections: tested before use only after sitting idle (storage.db.make_engine)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from storage import db
from storage.db import make_engine, transaction


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def _kill(db_url: str, pid: int) -> None:
    """What a server restart or a firewall does to one idle connection of the pool."""
    admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        assert connection.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    admin.dispose()


@pytest.fixture
def pg_url(_pg_database: str) -> str:
    """PostgreSQL only: SQLite has no server to lose a connection to."""
    return _pg_database


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(pg_url)
    try:
        first = _backend_pid(engine)
        _kill(pg_url, first)
        monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # idle long enough to be tested
        with transaction(engine) as session:
            again = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        assert again != first
    finally:
        engine.dispose()


def test_a_connection_dropped_while_in_steady_use_fails_once_then_the_pool_recovers(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 3600.0)
    engine = make_engine(pg_url)
    try:
        first = _backend_pid(engine)
        _kill(pg_url, first)
        # Used a moment ago, so not tested before use (no round trip per transaction): the
        # statement fails, as in a database outage, and intake and the dispatcher retry; the
        # pool has dropped the dead connection by then.
        with pytest.raises(OperationalError), transaction(engine) as session:
            session.connection().exec_driver_sql("SELECT 1")
        assert _backend_pid(engine) != first
    finally:
        engine.dispose()
