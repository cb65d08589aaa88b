"""storage.prepared: hot-path statements on the driver's cursor behave as `Connection.execute` would.

On real SQLite and PostgreSQL: values go through the column types both ways, the
statements join the caller's transaction, and driver errors come out as SQLAlchemy's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, insert, select

from storage import outbox
from storage.db import make_engine, transaction
from storage.models import ADDRESS, Identity, Outbox, ProcessedInbound
from storage.prepared import Prepared

NOW = datetime(2026, 12, 5, 18, 30, 15, 123456, tzinfo=UTC)
_processed = ProcessedInbound.__table__  # type: ignore[attr-defined]
_identity = Identity.__table__  # type: ignore[attr-defined]
RECORD = Prepared(
    insert(_processed).values(
        {name: bindparam(name) for name in ("channel", "message_id", "received_at", "processed_at", "failed_text")}
    )
)
ADDRESS_OF = Prepared(select(_identity.c.address, _identity.c.created_at).where(_identity.c.id == bindparam("id")))


def _record(message_id: str, text: str | None = None) -> dict[str, object]:
    return {"channel": "zulip", "message_id": message_id, "received_at": NOW, "processed_at": NOW, "failed_text": text}


def test_values_go_through_the_column_types_both_ways(engine):
    with transaction(engine) as session:
        row = outbox.enqueue(session, channel="zulip", kind="direct", text="hi", now=NOW, recipient="1001")
        identity = Identity(channel="zulip", address="x" * (ADDRESS + 40), created_at=NOW)
        session.add(identity)
        session.flush()
        address, created_at = ADDRESS_OF.rows(session.connection(), {"id": identity.id})[0]

    # Read back through the ORM: the aware UTC datetime written as the store keeps them.
    with transaction(engine) as session:
        stored = session.get(Outbox, row.id)
        assert stored is not None and stored.created_at == NOW and stored.text == "hi"
    # Read through Prepared: aware UTC out, and the Bounded key as the store holds it (cut to fit).
    assert created_at == NOW and created_at.tzinfo is not None
    assert len(address) <= ADDRESS


def test_a_statement_joins_the_callers_transaction(engine):
    with pytest.raises(RuntimeError), transaction(engine) as session:
        RECORD.run_many(session.connection(), [_record("m1"), _record("m2")])
        raise RuntimeError("the handler failed")
    with transaction(engine) as session:
        assert session.scalars(select(ProcessedInbound.message_id)).all() == []


def test_a_duplicate_key_is_sqlalchemys_integrity_error_and_rolls_back_the_rest(engine):
    with transaction(engine) as session:
        RECORD.run_many(session.connection(), [_record("m1")])
    with pytest.raises(sa.exc.IntegrityError) as raised, transaction(engine) as session:
        written = outbox.enqueue(session, channel="zulip", kind="direct", text="hi", now=NOW, recipient="1001")
        RECORD.run_many(session.connection(), [_record("m1", "my card number is 4111")])
    assert "4111" not in str(raised.value)  # values are never shown: they may be customers' text
    with transaction(engine) as session:
        assert session.get(Outbox, written.id) is None


def test_what_it_cannot_run_is_refused_when_compiled(engine):
    expanding = Prepared(select(_identity.c.id).where(_identity.c.address.in_(bindparam("a", expanding=True))))
    with transaction(engine) as session, pytest.raises(ValueError, match="expanding"):
        expanding.rows(session.connection(), {"a": ["x"]})
    with transaction(engine) as session, pytest.raises(ValueError, match="returns no rows"):
        ADDRESS_OF.run_many(session.connection(), [{"id": 1}])


def test_a_lost_postgresql_server_invalidates_the_connection(request):
    """The server ends the session under a transaction: OperationalError, the connection invalidated
    (the pool replaces it), and the next transaction works, as with Connection.execute."""
    engine = make_engine(request.getfixturevalue("_pg_database"))
    try:
        with pytest.raises(sa.exc.OperationalError) as raised, transaction(engine) as session:
            connection = session.connection()
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with engine.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            RECORD.run_many(connection, [_record("gone")])
        assert raised.value.connection_invalidated
        with transaction(engine) as session:
            RECORD.run_many(session.connection(), [_record("after")])
        with transaction(engine) as session:
            assert session.get(ProcessedInbound, ("zulip", "after")) is not None
            session.execute(sa.delete(ProcessedInbound))
    finally:
        engine.dispose()


def test_many_outbox_rows_are_written_in_order_in_bounded_statements(engine):
    """`outbox.write_many`: more rows than one statement takes (PostgreSQL: WRITTEN_AT_ONCE a
    statement), each stored with the id handed back for it, in the order given."""
    now = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    count = outbox.WRITTEN_AT_ONCE * 2 + 5
    rows = [
        outbox.row_values(channel="console", kind="direct", text=f"answer {i}", now=now, recipient=f"c{i % 3}")
        for i in range(count)
    ]
    with transaction(engine) as session:
        ids = outbox.write_many(session, rows)
    assert ids == sorted(ids) and len(set(ids)) == count
    with transaction(engine) as session:
        stored = {row.id: (row.text, row.recipient, row.created_at) for row in session.scalars(select(Outbox))}
    assert [stored[i] for i in ids] == [(f"answer {i}", f"c{i % 3}", now) for i in range(count)]


def test_sql_is_sent_as_compiled_with_the_databases_own_placeholders(engine):
    """On PostgreSQL the SQL carries `$n` placeholders and goes out unchanged (psycopg's
    RawCursor: no rewrite of a 16 KB INSERT before each execution); a bind used twice is one
    placeholder, and a literal `%` in the SQL reaches the database as one `%` on both stores."""
    statement = Prepared(
        select(
            sa.literal_column("'50%'"),
            bindparam("word", type_=sa.String)
            + sa.literal_column("'%'", sa.String)
            + bindparam("word", type_=sa.String),
            _identity.c.address.like(bindparam("pattern", type_=sa.String)),
        )
        .select_from(_identity)
        .where(_identity.c.address == bindparam("address", type_=sa.String))
    )
    with transaction(engine) as session:
        session.add(Identity(channel="zulip", address="ana%1", created_at=NOW))
        session.flush()
        rows = statement.rows(session.connection(), {"word": "ab", "pattern": "ana%", "address": "ana%1"})
        compiled = statement._compiled(session.connection().dialect)
    assert rows == [("50%", "ab%ab", True)]
    if engine.dialect.name == "postgresql":
        assert compiled.raw and "$1" in compiled.sql and "%(" not in compiled.sql
        assert compiled.positional.count("word") == 1 and compiled.sql.count("$1") == 2
