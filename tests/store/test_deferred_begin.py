"""storage.db.transaction(begin_at_first_write=True): on PostgreSQL the transaction begins with the
first statement that writes or locks; reads before it run on their own, and a statement marked
`on_its_own` needs none. What goes together still commits or rolls back together."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, insert, select
from sqlmodel import Session

from storage.db import make_engine, reads_only, transaction
from storage.models import Customer, ProcessedInbound
from storage.prepared import Prepared

NOW = datetime(2026, 12, 5, 19, 0, tzinfo=UTC)
_processed = ProcessedInbound.__table__  # type: ignore[attr-defined]
RECORD = Prepared(
    insert(_processed).values(
        {name: bindparam(name) for name in ("channel", "message_id", "received_at", "processed_at", "failed_text")}
    )
)


def _record(message_id: str) -> dict[str, object]:
    return {"channel": "zulip", "message_id": message_id, "received_at": NOW, "processed_at": NOW, "failed_text": None}


def _status(session: Session) -> str:
    """The PostgreSQL session's transaction status: IDLE (none open) or INTRANS."""
    return session.connection().connection.dbapi_connection.info.transaction_status.name


def test_what_was_written_after_the_first_write_rolls_back_together(engine):
    with pytest.raises(RuntimeError), transaction(engine, begin_at_first_write=True) as session:
        session.scalars(select(Customer)).all()
        session.add(Customer(name="Acme", created_at=NOW))
        session.flush()
        RECORD.rows(session.connection(), _record("m1"))
        raise RuntimeError("the handler failed")
    with transaction(engine) as session:
        assert session.scalars(select(Customer)).all() == []
        assert session.scalars(select(ProcessedInbound)).all() == []


@pytest.fixture
def pg_engine(request):  # noqa: ANN001, ANN201
    engine = make_engine(request.getfixturevalue("_pg_database"))
    yield engine
    with engine.begin() as connection:
        connection.execute(sa.delete(ProcessedInbound))
        connection.execute(sa.delete(Customer))
    engine.dispose()


def test_reads_run_without_a_transaction_until_the_first_write(pg_engine):
    with transaction(pg_engine, begin_at_first_write=True) as session:
        session.scalars(select(Customer)).all()
        assert _status(session) == "IDLE"
        session.add(Customer(name="Acme", created_at=NOW))
        session.flush()  # an ORM write begins it
        assert _status(session) == "INTRANS"
    with transaction(pg_engine, begin_at_first_write=True) as session:
        session.scalars(select(Customer).with_for_update()).all()  # a lock begins it too
        assert _status(session) == "INTRANS"


def test_a_statement_on_its_own_needs_no_transaction_and_the_pool_gets_its_connection_back_as_usual(pg_engine):
    with transaction(pg_engine, begin_at_first_write=True) as session:
        RECORD.rows(session.connection(), _record("alone"), on_its_own=True)
        assert _status(session) == "IDLE"  # committed by itself
    # The same pooled connection, in an ordinary transaction: a read opens one (autocommit is off again).
    with transaction(pg_engine) as session:
        assert session.get(ProcessedInbound, ("zulip", "alone")) is not None
        assert _status(session) == "INTRANS"
    with transaction(pg_engine, begin_at_first_write=True) as session:
        RECORD.rows(session.connection(), _record("after"))  # not on its own: it begins the transaction
        assert _status(session) == "INTRANS"


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("SELECT id FROM customer", True),
        ("  select id from customer", True),
        ("SELECT id FROM customer FOR UPDATE SKIP LOCKED", False),
        ("SELECT id FROM customer FOR NO KEY UPDATE", False),
        ("SELECT id FROM customer FOR SHARE", False),
        ("WITH x AS (INSERT INTO customer (name) VALUES ('a') RETURNING id) SELECT id FROM x", False),
        ("UPDATE customer SET name = 'b'", False),
    ],
)
def test_what_counts_as_a_read(sql, reads):
    assert reads_only(sql) is reads
