"""The persistent outbox (SPEC §7): rows written with the state change that caused them.

`claim` hands rows to one dispatcher at a time: on PostgreSQL with
`FOR UPDATE SKIP LOCKED`, so replicas never claim the same row, and with a
lease (`next_attempt_at` pushed forward) so a row whose sender died is claimed
again once the lease runs out — then with `attempts > 1`, which tells the
channel to check for its own earlier send before sending again.

A row may carry a secret in clear (an activation code shown to the engineer
who asked for it; the store itself keeps only its hash). The row names it in
`secret`, and the statement that records the row as sent, or as failed for
good, masks every occurrence of it in the text and forgets it: a database dump
holds no secret that was already delivered.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Insert, Select, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from storage.db import for_update, is_postgresql
from storage.models import Outbox, PostedMessage
from storage.prepared import Prepared

#: How long a claimed row stays with its claimer before another may take it. The claimer renews
#: the lease of the rows it still holds (`renew`) every few seconds, so this is how soon a dead
#: process's rows come back, not a limit on how long a send may take.
LEASE = timedelta(seconds=10)

#: What a row's secret becomes in its text once the row is sent (or failed for good).
SECRET_MASK = "[redacted]"


@dataclass(frozen=True, slots=True)
class NewRow:
    """An outbox row as written by `enqueue` (what sending it needs)."""

    id: int
    channel: str
    kind: str
    text: str
    recipient: str | None
    conversation: str | None
    topic: str | None
    quote: str | None
    said: str | None
    incident_id: int | None
    attempts: int
    created_at: datetime
    files: str | None = None
    subject: str | None = None
    automatic: bool = True
    #: JSON list of the addresses the row copies (`Outbox.copies`).
    copies: str | None = None
    lang: str | None = None


def enqueue(session: Session, **fields: Any) -> NewRow:
    """Write a row in the session's transaction (`row_values` says what `fields` are)."""
    return write(session, row_values(**fields))


def write(session: Session, written: Mapping[str, Any]) -> NewRow:
    """Write the row of `written` (`row_values`) in the session's transaction.

    A Core INSERT on the driver's cursor (storage.prepared) rather than an ORM object: every
    reply goes through here, and nothing reads the row back in the same transaction. Its id
    is known at once (RETURNING), so rows are numbered in the order they were written.
    """
    ((row_id,),) = _INSERT.rows(session.connection(), written)
    return new_row(row_id, written)


def row_values(
    *,
    channel: str,
    kind: str,
    text: str,
    now: datetime,
    recipient: str | None = None,
    conversation: str | None = None,
    topic: str | None = None,
    quote: str | None = None,
    said: str | None = None,
    files: str | None = None,
    incident_id: int | None = None,
    secret: str | None = None,
    leased: bool = False,
    subject: str | None = None,
    automatic: bool = True,
    copies: str | None = None,
    lang: str | None = None,
) -> dict[str, Any]:
    """The column values of a new row, due now, or `leased` to the writer (who sends it right
    after the commit: no claim query, see bot.dispatcher).

    `secret`: a value `text` holds in clear that must not stay in the store once delivered.
    `subject`, `automatic`, `copies` (JSON list), `lang`: see `adapters.channel.Outbound`.
    """
    return {
        "channel": channel,
        "kind": kind,
        "text": text,
        "recipient": recipient,
        "conversation": conversation,
        "topic": topic,
        "quote": quote,
        "said": said,
        "files": files,
        "subject": subject,
        "automatic": automatic,
        "copies": copies,
        "lang": lang,
        "incident_id": incident_id,
        "attempts": 1 if leased else 0,
        "created_at": now,
        "state": "pending",
        "next_attempt_at": now + LEASE if leased else now,
        "secret": secret or None,
    }


def new_row(row_id: int, written: Mapping[str, Any]) -> NewRow:
    """The row written with `written` (`row_values`) as the dispatcher sends it."""
    return NewRow(id=row_id, **{name: written[name] for name in _NEW_ROW_FIELDS})


@functools.cache
def insert_rows(count: int) -> Insert:
    """INSERT of `count` rows (`row_values` of row i bound as `<column>_<i>`), returning their ids:
    one statement for the rows a message wrote (bot.intake writes it with the message's record)."""
    return (
        insert(_outbox)
        # Typed binds: SQLAlchemy types only the first row's from the columns (UTCDateTime, Bounded).
        .values(
            [{name: bindparam(f"{name}_{i}", type_=_outbox.c[name].type) for name in _WRITTEN} for i in range(count)]
        )
        .returning(_outbox.c.id)
    )


def numbered(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The values of `rows` as `insert_rows(len(rows))` binds them."""
    return {f"{name}_{i}": value for i, row in enumerate(rows) for name, value in row.items()}


#: Rows a statement of `write_many` writes at most: one statement is kept for each count up to it.
WRITTEN_AT_ONCE = 32


def write_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Write `rows` (`row_values`) in the session's transaction, WRITTEN_AT_ONCE a statement;
    their ids, in order.

    For a page of messages on PostgreSQL (bot.intake): a round trip for a page's replies, or
    two, instead of one a reply. SQLite (no INSERT in a WITH) writes them one by one, in process."""
    if not is_postgresql(session):
        return [write(session, values).id for values in rows]
    ids: list[int] = []
    for start in range(0, len(rows), WRITTEN_AT_ONCE):
        chunk = rows[start : start + WRITTEN_AT_ONCE]
        ids.extend(row_id for (row_id,) in _written_in_order(len(chunk)).rows(session.connection(), numbered(chunk)))
    return ids


def written_ids(count: int) -> Select:
    """PostgreSQL: `insert_rows(count)` in a WITH, selecting the ids it wrote in the order of the
    rows (a serial's values follow that order; RETURNING promises none, ORDER BY does)."""
    written = insert_rows(count).cte("written")
    return select(written.c.id).order_by(written.c.id)


@functools.cache
def _written_in_order(count: int) -> Prepared:
    return Prepared(written_ids(count))


def set_copies(session: Session, row_id: int, copies: str | None) -> None:
    """The people a row written in this transaction copies, amended before it is committed."""
    session.connection().execute(update(_outbox).where(_outbox.c.id == row_id).values(copies=copies))


def claim(session: Session, channel: str, now: datetime, limit: int = 20, held: Collection[str] = ()) -> list[Outbox]:
    """Due pending rows of `channel`, oldest first, leased to the caller (commit to take them).

    `held`: kinds of row the channel may not post for now; they stay pending, in their order.
    A row waits while an earlier one of its conversation (a person's direct messages, a case
    topic) waits for a retry: a transient failure, or its recipient refused for now
    (`adapters.channel.RecipientDeferred`). Each conversation keeps its order, and nobody
    else's waits for it.
    """
    earlier = aliased(Outbox)
    conversation_waits = (
        select(earlier.id)
        .where(
            earlier.channel == channel,
            *_same_conversation(earlier),
            earlier.state == "pending",
            earlier.id < Outbox.id,
            earlier.next_attempt_at > now,
        )
        .exists()
    )
    query = (
        select(Outbox)
        .where(Outbox.channel == channel, Outbox.state == "pending", Outbox.next_attempt_at <= now)
        .where(~conversation_waits)
        .order_by(Outbox.id)
        .limit(limit)
    )
    if held:
        query = query.where(Outbox.kind.not_in(list(held)))
    rows = _in_turn(session, channel, list(session.scalars(for_update(query, session, skip_locked=True))))
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = now + LEASE
    return rows


def _same_conversation(earlier: type[Outbox]) -> tuple[ColumnElement[bool], ...]:
    """`earlier` is a row of the same conversation as `Outbox`'s: the same kind, and the same
    recipient (a direct row) or topic (a topic row); the other is NULL on both."""
    return (
        earlier.kind == Outbox.kind,
        earlier.recipient.is_not_distinct_from(Outbox.recipient),
        earlier.topic.is_not_distinct_from(Outbox.topic),
    )


def _in_turn(session: Session, channel: str, rows: list[Outbox]) -> list[Outbox]:
    """`rows` less each row that has an earlier row of its conversation still pending and not
    among them. `claim`'s own condition reads an earlier row that another replica is claiming at
    this moment as due (its lease is not committed yet); SKIP LOCKED passes that row by, and the
    later one would go first, from here. A plain read sees it pending, and the later one waits."""
    if not rows:
        return rows
    claimed = {row.id for row in rows}
    pending = session.execute(
        select(Outbox.kind, Outbox.recipient, Outbox.topic, Outbox.id)
        .where(
            Outbox.channel == channel,
            Outbox.state == "pending",
            Outbox.id < max(claimed),
            Outbox.id.not_in(claimed),
            or_(
                Outbox.recipient.in_({row.recipient for row in rows if row.recipient is not None}),
                Outbox.topic.in_({row.topic for row in rows if row.topic is not None}),
            ),
        )
        .order_by(Outbox.id)
    )
    #: Each conversation's first pending row that is not ours: its later rows wait for it.
    waits_for: dict[tuple[str, str | None, str | None], int] = {}
    for kind, recipient, topic, row_id in pending:
        waits_for.setdefault((kind, recipient, topic), row_id)
    return [row for row in rows if row.id < waits_for.get((row.kind, row.recipient, row.topic), row.id + 1)]


def renew(session: Session, row_ids: list[int], now: datetime) -> None:
    """Extend the lease of rows this process still holds; a row already due later (a retry's
    wait recorded while this ran) keeps its time."""
    if row_ids:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(row_ids), Outbox.state == "pending", Outbox.next_attempt_at < now + LEASE)
            .values(next_attempt_at=now + LEASE)
        )


def release(session: Session, row_ids: list[int], at: datetime) -> None:
    """Hand back claimed rows that were not tried (they wait behind a failed send): due again `at`."""
    if row_ids:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(row_ids), Outbox.state == "pending")
            .values(next_attempt_at=at, attempts=Outbox.attempts - 1)
        )


def mark_sent(session: Session, row_id: int, platform_ids: list[str], now: datetime) -> None:
    mark_all_sent(session, [(row_id, platform_ids)], now)


def mark_all_sent(session: Session, sent: list[tuple[int, list[str]]], now: datetime) -> None:
    """Record deliveries, secrets masked: one UPDATE statement for the lot, no read first (this runs for every message)."""
    if sent:
        _MARK_SENT.run_many(
            session.connection(), [{"row_id": row_id, "ids": json.dumps(ids), "now": now} for row_id, ids in sent]
        )


def record_posted(session: Session, posted: list[tuple[str, str, int]]) -> None:
    """Remember (channel, platform id, incident) of messages just sent to customers about incidents,
    so that a message answering one of them joins that incident (`posted_incident`). An id recorded
    already is left as it is: a record must never stop a delivery from being recorded."""
    if not posted:
        return
    if is_postgresql(session):
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(_posted).on_conflict_do_nothing()
    session.connection().execute(
        statement, [{"channel": c, "platform_id": p, "incident_id": i} for c, p, i in dict.fromkeys(posted)]
    )


def posted_incident(session: Session, channel: str, platform_ids: Collection[str]) -> int | None:
    """The incident of the latest-named of `platform_ids` the bot posted on `channel`, if any."""
    if not platform_ids:
        return None
    found = dict(
        session.execute(
            select(_posted.c.platform_id, _posted.c.incident_id).where(
                _posted.c.channel == channel, _posted.c.platform_id.in_(list(platform_ids)[-100:])
            )
        ).all()
    )
    return next((found[p] for p in reversed(list(platform_ids)) if p in found), None)


_posted = PostedMessage.__table__  # type: ignore[attr-defined]
_outbox = Outbox.__table__  # type: ignore[attr-defined]
_WRITTEN = (
    "channel", "kind", "text", "recipient", "conversation", "topic", "quote", "said", "files", "subject",
    "automatic", "copies", "lang", "incident_id", "attempts", "created_at", "state", "next_attempt_at", "secret",
)  # fmt: skip
_INSERT = Prepared(insert(_outbox).values({name: bindparam(name) for name in _WRITTEN}).returning(_outbox.c.id))
_NEW_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(NewRow) if f.name != "id")
#: The text with the row's secret masked (rows without one keep theirs: the usual case costs nothing).
_MASKED_TEXT = case(
    (_outbox.c.secret.is_(None), _outbox.c.text),
    else_=func.replace(_outbox.c.text, _outbox.c.secret, SECRET_MASK),
)
_MARK_SENT = Prepared(
    update(_outbox)
    .where(_outbox.c.id == bindparam("row_id"))
    .values(
        state="sent",
        sent_at=bindparam("now"),
        platform_ids=bindparam("ids"),
        last_error=None,
        text=_MASKED_TEXT,
        secret=None,
    )
)


def mark_retry(session: Session, row_id: int, error: str, at: datetime, *, copies: Sequence[str] | None = None) -> None:
    """The row is tried again `at`; `copies`: whom it still copies (the others have it), if not all."""
    row = session.get(Outbox, row_id)
    if row is not None and row.state == "pending":
        row.next_attempt_at = at
        row.last_error = error[:500]
        if copies is not None:
            row.copies = json.dumps(list(copies)) if copies else None


def mark_failed(session: Session, row_id: int, error: str) -> Outbox | None:
    """The row can never be sent: failed, and its secret masked (nobody will read it there again)."""
    row = session.get(Outbox, row_id)
    if row is not None:
        row.state = "failed"
        row.last_error = error[:500]
        if row.secret:
            row.text, row.secret = row.text.replace(row.secret, SECRET_MASK), None
    return row


def has_due(session: Session, channels: list[str], now: datetime, held: Collection[tuple[str, str]] = ()) -> bool:
    """Is any row of `channels` due to be sent now? `held`: (channel, kind) pairs that may not be sent for now."""
    query = select(Outbox.id).where(
        Outbox.state == "pending", Outbox.channel.in_(channels), Outbox.next_attempt_at <= now
    )
    for channel, kind in held:
        query = query.where(~((Outbox.channel == channel) & (Outbox.kind == kind)))
    return session.execute(query.limit(1)).first() is not None


def recorded_for_others(session: Session, row: int, channel: str, platform_ids: set[str]) -> set[str]:
    """Of `platform_ids`, those recorded as sent for rows of `channel` other than `row`, to the same
    recipient or topic as `row` (a channel looking for its own earlier send by content skips them).

    Reads the platform ids of the rows sent in that one conversation (`ix_outbox_conversation`).
    """
    this = session.get(Outbox, row)
    if this is None or not platform_ids:
        return set()
    query = select(Outbox.platform_ids).where(
        Outbox.channel == channel,
        Outbox.recipient == this.recipient if this.recipient is not None else Outbox.recipient.is_(None),
        Outbox.topic == this.topic if this.topic is not None else Outbox.topic.is_(None),
        Outbox.state == "sent",
        Outbox.id != row,
    )
    found: set[str] = set()
    for (ids,) in session.execute(query):
        found.update(json.loads(ids or "[]"))
    return found & platform_ids


def has_pending(session: Session, channel: str, held: Collection[str] = ()) -> bool:
    """Is any row of `channel` still to be sent (due or waiting for a retry), not of a `held` kind?"""
    query = select(Outbox.id).where(Outbox.channel == channel, Outbox.state == "pending").limit(1)
    if held:
        query = query.where(Outbox.kind.not_in(list(held)))
    return session.execute(query).first() is not None


def depth(session: Session, now: datetime) -> tuple[int, float]:
    """(pending rows, age in seconds of the oldest) for /metrics."""
    count, oldest = session.execute(
        select(func.count(), func.min(Outbox.created_at)).where(Outbox.state == "pending")
    ).one()
    if oldest is not None and oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return int(count), (now - oldest).total_seconds() if oldest else 0.0


# -- for operators (`deskbot outbox …`) --------------------------------------------------------


def listing(session: Session, state: str, channel: str | None, limit: int) -> list[Outbox]:
    """Rows in `state` (of `channel`), oldest first: what waits longest is what an operator looks for."""
    query = select(Outbox).where(Outbox.state == state).order_by(Outbox.id).limit(limit)
    if channel is not None:
        query = query.where(Outbox.channel == channel)
    return list(session.scalars(query))


def retry_now(session: Session, row_id: int, now: datetime) -> Outbox:
    """A failed row, or a pending one waiting for a retry: pending and due now. ValueError why not."""
    row = session.get(Outbox, row_id)
    if row is None:
        raise ValueError(f"no outbox row {row_id}")
    if row.state == "sent":
        raise ValueError(f"outbox row {row_id} was sent already")
    if row.state == "failed" and SECRET_MASK in row.text:
        # Its activation code was masked when it failed: sent again, it would carry no code.
        raise ValueError(f"outbox row {row_id} carried a secret, masked when it failed: it cannot go again")
    row.state, row.next_attempt_at = "pending", now
    return row


def cancel(session: Session, row_id: int, reason: str, now: datetime) -> Outbox:
    """A pending row never goes: failed with `reason`, and its conversation's later rows, which
    waited behind it, are due now. ValueError why not. A row being sent at this very moment may
    still go."""
    row = session.get(Outbox, row_id)
    if row is None:
        raise ValueError(f"no outbox row {row_id}")
    if row.state != "pending":
        raise ValueError(f"outbox row {row_id} is {row.state}, not pending")
    failed = mark_failed(session, row_id, reason)
    assert failed is not None
    session.execute(
        update(Outbox)
        .where(
            Outbox.channel == row.channel,
            Outbox.kind == row.kind,
            Outbox.recipient.is_not_distinct_from(row.recipient),
            Outbox.topic.is_not_distinct_from(row.topic),
            Outbox.state == "pending",
            Outbox.id > row_id,
            Outbox.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    return failed
