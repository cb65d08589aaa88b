"""The store itself: migrations match the models, SQLite pragmas, indexes, the outbox claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from storage import outbox
from storage.db import transaction
from storage.models import Outbox

#: SQLAlchemy does not reflect SQLite's expression indexes (`ix_incident_topic_lower`): it says so and
#: skips it; PostgreSQL's is reflected and compared, and the plan test below covers both.
_SQLITE_SKIPS_EXPRESSION_INDEX = pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning"
)


@_SQLITE_SKIPS_EXPRESSION_INDEX
def test_migrations_match_the_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_sqlite_runs_with_wal_and_foreign_keys(engine):
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL has neither setting; it is checked by the test above
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@_SQLITE_SKIPS_EXPRESSION_INDEX
def test_every_router_lookup_has_an_index(engine):
    inspector = sa.inspect(engine)
    indexed = {
        table: {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}
        | {tuple(uc["column_names"]) for uc in inspector.get_unique_constraints(table)}
        for table in ("incident", "identity", "outbox", "incidentmessage", "creditpack", "incidentevent")
    }
    assert ("customer_id", "state", "id") in indexed["incident"]
    assert ("state", "due_at") in indexed["incident"]
    assert ("channel", "address") in indexed["identity"]
    assert ("channel", "state", "next_attempt_at") in indexed["outbox"]
    assert ("incident_id", "id") in indexed["incidentmessage"]
    assert ("customer_id",) in indexed["creditpack"]
    assert ("incident_id",) in indexed["incidentevent"]


def test_claimed_rows_are_leased_and_come_back_with_a_higher_attempt(engine):
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    with transaction(engine) as s:
        outbox.enqueue(s, channel="zulip", kind="direct", recipient="a@x", text="hi", now=now)
    with transaction(engine) as s:
        (row,) = outbox.claim(s, "zulip", now)
        assert row.attempts == 1
    with transaction(engine) as s:
        assert outbox.claim(s, "zulip", now + timedelta(seconds=1)) == []  # leased to the first claimer
    with transaction(engine) as s:
        (row,) = outbox.claim(s, "zulip", now + outbox.LEASE + timedelta(seconds=1))
        assert row.attempts == 2
        outbox.mark_sent(s, row.id, ["7"], now)
    with transaction(engine) as s:
        assert s.get(Outbox, row.id).state == "sent"
        assert outbox.claim(s, "zulip", now + timedelta(hours=1)) == []


def test_a_direct_row_waits_behind_an_earlier_one_to_its_recipient_that_waits_for_a_retry(engine):
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    with transaction(engine) as s:
        ids = [
            outbox.enqueue(s, channel="email", kind="direct", recipient=to, text=text, now=now).id
            for to, text in (("ana@x", "1"), ("ana@x", "2"), ("bruno@x", "3"), ("ana@x", "4"))
        ]
        # The first to Ana was refused for now: retried in a minute.
        outbox.mark_retry(s, ids[0], "452 mailbox full", now + timedelta(minutes=1))
        # Another channel's row to the same address is not held up.
        other = outbox.enqueue(s, channel="zulip", kind="direct", recipient="ana@x", text="5", now=now).id
    with transaction(engine) as s:
        assert [r.text for r in outbox.claim(s, "email", now)] == ["3"]  # Ana's later rows wait behind hers
        assert [r.id for r in outbox.claim(s, "zulip", now)] == [other]
        outbox.mark_sent(s, ids[2], ["<3@x>"], now)
    with transaction(engine) as s:  # her row's time has come: hers go, in their order
        assert [r.text for r in outbox.claim(s, "email", now + timedelta(minutes=1))] == ["1", "2", "4"]


def test_a_case_topic_keeps_its_order_while_a_post_to_it_waits_for_a_retry(engine):
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    with transaction(engine) as s:
        first = outbox.enqueue(s, channel="zulip", kind="topic", topic="#1 Disk", text="1", now=now).id
        # Zulip answered 502 a moment ago: the post is retried in a few seconds.
        outbox.mark_retry(s, first, "502 Bad Gateway", now + timedelta(seconds=4))
        for topic, text in (("#1 Disk", "2"), ("#2 VPN", "3"), ("#1 Disk", "4")):
            outbox.enqueue(s, channel="zulip", kind="topic", topic=topic, text=text, now=now)
        outbox.enqueue(s, channel="zulip", kind="direct", recipient="10", text="5", now=now)
    with transaction(engine) as s:  # the other topic and the customer's answer are not held up
        assert [r.text for r in outbox.claim(s, "zulip", now)] == ["3", "5"]
    with transaction(engine) as s:
        assert [r.text for r in outbox.claim(s, "zulip", now + timedelta(seconds=4))] == ["1", "2", "4"]


def test_postgresql_claims_skip_rows_another_replica_holds(engine):
    if engine.dialect.name != "postgresql":
        return  # SQLite allows one writer; a second process is refused instead
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    with transaction(engine) as s:
        for n in range(4):
            outbox.enqueue(s, channel="mastodon", kind="direct", recipient=f"{n}@x", text=f"m{n}", now=now)
    with transaction(engine) as first:
        taken = outbox.claim(first, "mastodon", now, limit=2)
        with transaction(engine) as second:
            other = outbox.claim(second, "mastodon", now, limit=4)
        assert {r.text for r in taken} == {"m0", "m1"}
        assert {r.text for r in other} == {"m2", "m3"}


def test_postgresql_a_replica_never_takes_a_row_while_another_is_claiming_an_earlier_one_to_its_recipient(engine):
    if engine.dialect.name != "postgresql":
        return  # SQLite allows one writer: no claim runs beside another
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    with transaction(engine) as s:
        for to, text in (("ana@x", "a1"), ("bruno@x", "b1"), ("ana@x", "a2"), ("bruno@x", "b2"), ("ana@x", "a3")):
            outbox.enqueue(s, channel="email", kind="direct", recipient=to, text=text, now=now)
    with transaction(engine) as first:
        # The first replica is taking Ana's first answer (say a retry come due): its lease is not
        # committed yet, so the row still reads as due, and SKIP LOCKED passes it by.
        assert [r.text for r in outbox.claim(first, "email", now, limit=1)] == ["a1"]
        with transaction(engine) as second:
            assert [r.text for r in outbox.claim(second, "email", now)] == ["b1", "b2"]
    with transaction(engine) as second:  # the first holds its lease: still Ana's first to go
        assert outbox.claim(second, "email", now) == []


def test_head_revision_constant_is_the_newest_migration():
    from alembic.script import ScriptDirectory

    from storage.db import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() == HEAD_REVISION


def _one_claimed(engine, channel: str, recipient: str, now: datetime) -> int:  # noqa: ANN001
    """The id of a row written to `recipient` and claimed at `now` (leased to the test)."""
    with transaction(engine) as s:
        outbox.enqueue(s, channel=channel, kind="direct", recipient=recipient, text="hi", now=now)
    with transaction(engine) as s:
        (row,) = outbox.claim(s, channel, now)
        return row.id


def test_a_held_lease_is_renewed_and_a_handed_back_row_loses_its_attempt(engine):
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    row_id = _one_claimed(engine, "zulip", "a@x", now)
    later = now + outbox.LEASE - timedelta(seconds=1)
    with transaction(engine) as s:
        outbox.renew(s, [row_id], later)
    with transaction(engine) as s:
        assert outbox.claim(s, "zulip", now + outbox.LEASE + timedelta(seconds=1)) == []  # still held
    with transaction(engine) as s:
        outbox.release(s, [row_id], now)
    with transaction(engine) as s:
        (row,) = outbox.claim(s, "zulip", now)
        assert row.attempts == 1  # the handed-back claim did not count as an attempt


def test_a_renewal_never_brings_a_retry_forward(engine):
    # The lease keeper read the rows it holds just before the sender recorded a retry's wait.
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    row_id = _one_claimed(engine, "email", "ana@x", now)
    with transaction(engine) as s:
        outbox.mark_retry(s, row_id, "452 mailbox full", now + timedelta(seconds=75))
    with transaction(engine) as s:
        outbox.renew(s, [row_id], now + timedelta(seconds=1))
    with transaction(engine) as s:
        assert outbox.claim(s, "email", now + timedelta(seconds=74)) == []
        assert [r.id for r in outbox.claim(s, "email", now + timedelta(seconds=75))] == [row_id]


def test_a_case_is_found_by_its_topic_through_the_index_not_a_scan(engine):
    """Every engineer's command in a case topic looks its case up by the topic's name: on a store of
    a million cases a scan would cost each command a second. The statement the lookup really runs
    (caught on its way to the driver) is planned on the `lower(topic)` index on both databases."""
    from bot.services.incidents import _cases_in

    seen: list[tuple[str, object]] = []

    def catch(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        if "lower(incident.topic)" in statement:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", catch)
    try:
        with transaction(engine) as s:
            assert _cases_in(s, "#1 Acme: x") == []
    finally:
        sa.event.remove(engine, "before_cursor_execute", catch)
    ((statement, parameters),) = seen
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")  # a near-empty table: ask for the index
            plan = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
        else:
            plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert any("ix_incident_topic_lower" in line for line in plan), plan
