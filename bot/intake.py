"""Intake (SPEC §7): each inbound message recorded once, with its effects, in one transaction.

`Intake` is the `InboundSink` every channel hands its messages to. The
message id, the router's state changes, the outbox rows they caused and the
channel's cursor commit together; a redelivered message is a no-op. When the
router fails on a message, one central path logs the traceback, keeps the
text, and gives the person a short neutral answer — the message is never
lost and never retried into a loop.

The router returns the rows each message wrote (on PostgreSQL a live message's
rows are written by the statement that records the message and moves the
cursor: one round trip for the three); after the commit intake hands
them to the dispatcher, which sends the replies on the message's own channel at
once (written leased to this process when the dispatcher said it may: see
`Dispatcher.inline`) and wakes the loops of the other channels. A channel
catching up hands over a page of messages at a time (`deliver_many`), one
transaction for the page.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from types import ModuleType
from typing import Protocol

from sqlalchemy import Insert, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from adapters.channel import Inbound
from bot.i18n import _, render
from bot.router import Handled, Router
from bot.services import incidents
from bot.services.outgoing import Outgoing, to_sender
from storage import outbox
from storage.db import is_postgresql, transaction
from storage.models import ChannelCursor, ProcessedInbound
from storage.outbox import NewRow
from storage.prepared import Prepared

log = logging.getLogger("deskbot.intake")

Clock = Callable[[], datetime]
APOLOGY = _("Sorry, something went wrong on our side. Your message is saved and the team has been told.")


def system_clock() -> datetime:
    return datetime.now(UTC)


# What no database column can hold: NUL (PostgreSQL refuses it in text) and lone UTF-16 surrogates
# (JSON may carry "\ud800"; they cannot be encoded as UTF-8 for either database).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_TEXT_FIELDS = ("sender", "conversation", "text", "message_id", "topic", "sender_name", "subject_hint")


def storable(message: Inbound) -> Inbound:
    """`message` with every character a database cannot store replaced by U+FFFD."""
    changes = {
        name: _UNSTORABLE.sub("\ufffd", value)
        for name in _TEXT_FIELDS
        if isinstance(value := getattr(message, name), str) and _UNSTORABLE.search(value)
    }
    return dataclasses.replace(message, **changes) if changes else message


class _AlreadyHandled(Exception):
    """The message's id is recorded already: a redelivery (or another replica was first)."""


class Sender(Protocol):
    """What sends the rows a transaction wrote (bot.dispatcher.Dispatcher)."""

    def inline(self, channel: str, *, here: bool = False) -> AbstractContextManager[bool]:
        """Whether rows of `channel` may be written leased to the writer, for `hand_over` to send;
        `here`: in the calling thread (a backlog), not by the channel's send loop."""

    def hand_over(self, rows: list[NewRow]) -> None:
        """Rows just committed: send the leased ones, wake the loops of the others."""


class Intake:
    def __init__(
        self,
        engine: Engine,
        router: Router,
        sender: Sender,
        clock: Clock = system_clock,
        on_handled: Callable[[str, Handled], None] | None = None,
    ) -> None:
        self.engine = engine
        self.router = router
        self.sender = sender
        self.clock = clock
        #: Called with (channel, what it did) after each message's transaction committed (metrics).
        self.on_handled = on_handled
        self.handled = 0

    def deliver(self, message: Inbound, *, cursor: tuple[str, str] | None = None) -> None:
        """Handle `message` exactly once. Database outages propagate so the channel retries later."""
        message = storable(message)
        with self.sender.inline(message.channel) as inline:
            try:
                self._commit([(message, cursor)], inline)
            except _AlreadyHandled:
                # Another replica (or a redelivery racing us) recorded it first: it is handled.
                log.info(
                    "duplicate inbound ignored", extra={"channel": message.channel, "message_id": message.message_id}
                )
                if cursor:
                    self.set_cursor(*cursor)
                return
            except OperationalError:
                raise
            except Exception:
                log.exception(
                    "handling failed; text kept", extra={"channel": message.channel, "message_id": message.message_id}
                )
                self._deliver_failed(message, cursor, inline)

    def deliver_many(self, items: list[tuple[Inbound, tuple[str, str] | None]], *, backlog: bool = False) -> None:
        """Handle messages of one channel, in order, with the outcome of `deliver` on each.

        A channel catching up hands over a page at a time: one transaction (and one
        record of the replies sent) for the lot instead of one per message. If any of
        them cannot go through that way — a redelivery, a failing handler — the page is
        rolled back and handed over one message at a time, each with its own outcome.
        `backlog`: the page is what came in while the channel was away; its replies are
        sent by this thread before it reads the next (see `Dispatcher.inline`).
        """
        items = [(storable(message), cursor) for message, cursor in items]
        if len(items) > 1:
            with self.sender.inline(items[0][0].channel, here=backlog) as inline:
                try:
                    self._commit(items, inline)
                except OperationalError:
                    raise
                except Exception:  # noqa: BLE001 — the single path below handles (and logs) it properly
                    log.debug("page of %d messages handed over one by one", len(items))
                else:
                    return
        for message, cursor in items:
            self.deliver(message, cursor=cursor)

    def _commit(self, items: list[tuple[Inbound, tuple[str, str] | None]], inline: bool) -> None:
        """Commit the messages with their effects, then hand the rows they wrote to the sender."""
        channel = items[0][0].channel
        now = self.clock()
        handled: list[tuple[Inbound, Handled]] = []
        cursor = next((c for _m, c in reversed(items) if c), None)
        # A live message on PostgreSQL: its outbox rows are written by the statement that records
        # it, with the cursor (one round trip for the three; see `_record`), and its transaction
        # begins only if its handling writes before that: a message that only reads (`status`)
        # costs no BEGIN and no COMMIT.
        postgresql = is_postgresql(self.engine)
        together = len(items) == 1 and cursor is not None and postgresql
        # A page on PostgreSQL: its messages' rows are kept and written at its end, up to 32 a
        # statement (nothing in a transaction reads back the outbox rows it wrote): a round trip
        # or two for the page instead of one a reply.
        deferred = together or (postgresql and len(items) > 1)
        with transaction(self.engine, begin_at_first_write=together) as session:
            for message, _cursor in items:
                handled.append(
                    (message, self.router.handle(session, message, now, channel if inline else None, deferred=deferred))
                )
            if deferred and not together:
                outs = [done.out for _m, done in handled]
                ids = iter(outbox.write_many(session, [values for out in outs for values in out.pending]))
                for out in outs:
                    out.written([next(ids) for _values in out.pending])
            # Recorded last, with the cursor: on PostgreSQL one statement, one round trip, for
            # both. A redelivery then fails here rather than first, and rolls back what its
            # handling did (redeliveries are rare; a replica racing us for the same message
            # waits on the key until we commit, then fails the same way).
            out = handled[0][1].out if together else None
            self._record(session, [m for m, _c in items], now, cursor=cursor, out=out)
        # The replies first: the log lines and metrics below are not what the customer waits for.
        self.sender.hand_over([row for _m, done in handled for row in done.rows])
        for message, done in handled:
            self.handled += 1
            if self.on_handled:
                self.on_handled(channel, done)
            log.info(
                "handled",
                extra={
                    "channel": channel,
                    "message_id": message.message_id,
                    "incident_id": done.incident_id,
                    "replies": len(done.replies),
                },
            )

    def _deliver_failed(self, message: Inbound, cursor: tuple[str, str] | None, inline: bool) -> None:
        """Record a message whose handling failed; this must always end with the cursor moved.

        A message that broke its handler may break the record too (a value a column cannot
        hold): then only its id and the reason are kept, and if even the id cannot be stored,
        only the cursor moves. A failure here would otherwise be redelivered forever and
        block its channel. Database outages still propagate (the channel retries later).
        """
        now = self.clock()
        try:
            with transaction(self.engine) as session:
                self._record(session, [message], now, failed_text=None if message.public else message.text)
                out = Outgoing(session, now, message.channel if inline else None)
                # The sender's language is not known here (the failed transaction held it): say it in both.
                out.say(to_sender(message), "\n".join(render(lang, APOLOGY) for lang in ("en", "pt")))
                self._store_cursor(session, cursor, now)
            self.sender.hand_over(out.rows)
            return
        except _AlreadyHandled:
            return
        except OperationalError:
            raise
        except Exception as exc:  # noqa: BLE001 — the next, smaller record below
            reason = f"[not stored: the failure record failed too ({type(exc).__name__})]"
            log.exception("recording the failure failed; keeping only the id", extra=self._ids(message))
        try:
            with transaction(self.engine) as session:
                self._record(session, [message], now, failed_text=reason, cursor=cursor)
            return
        except _AlreadyHandled:
            return
        except OperationalError:
            raise
        except Exception:  # noqa: BLE001 — the id itself cannot be stored: move the cursor alone
            log.exception("the message id cannot be stored; only the cursor moves", extra=self._ids(message))
        with transaction(self.engine) as session:
            self._store_cursor(session, cursor, now)

    @staticmethod
    def _ids(message: Inbound) -> dict[str, str]:
        return {"channel": message.channel, "message_id": message.message_id[:80]}

    @staticmethod
    def _record(
        session: Session,
        messages: list[Inbound],
        now: datetime,
        failed_text: str | None = None,
        cursor: tuple[str, str] | None = None,
        out: Outgoing | None = None,
    ) -> None:
        """Mark `messages` as handled, and store `cursor`; _AlreadyHandled if one already was (a
        redelivery). With `out` (one message, PostgreSQL): write its `pending` rows too.

        A plain INSERT on the primary key, no read first: redeliveries are rare, and the
        key decides even between replicas racing for the same message.
        """
        rows = [
            {
                "channel": message.channel,
                "message_id": message.message_id,
                "received_at": message.received_at,
                "processed_at": now,
                "failed_text": failed_text,
            }
            for message in messages
        ]
        connection = session.connection()
        try:
            if cursor is not None and len(rows) == 1 and connection.dialect.name == "postgresql":
                if out is not None and out.pending:
                    params = rows[0] | _cursor_row(cursor, now) | outbox.numbered(out.pending)
                    written = _record_with_rows(len(out.pending)).rows(connection, params, on_its_own=True)
                    out.written([row_id for (row_id,) in written])
                else:
                    _RECORD_WITH_CURSOR.rows(connection, rows[0] | _cursor_row(cursor, now), on_its_own=out is not None)
                return
            _INSERT_PROCESSED.run_many(connection, rows)
        except IntegrityError:
            raise _AlreadyHandled from None
        Intake._store_cursor(session, cursor, now)

    @staticmethod
    def _store_cursor(session: Session, cursor: tuple[str, str] | None, now: datetime) -> None:
        if cursor is None:
            return
        connection = session.connection()
        _UPSERT_CURSOR[connection.dialect.name].rows(connection, _cursor_row(cursor, now))

    def topic_renamed(self, channel: str, old: str, new: str) -> None:
        """The case kept under topic `old` follows it to `new` (`incidents.follow_topic`, written in its
        history), with the posts waiting for `old`. Database outages propagate so the channel retries later."""
        with transaction(self.engine) as session:
            moved = incidents.follow_topic(session, self.router.deployment, self.clock(), channel, old, new)
        if moved:
            log.info("case topic renamed", extra={"channel": channel, "incident_id": moved[0]})

    def get_cursor(self, key: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(_SELECT_CURSOR, {"k": key}).scalar()

    def set_cursor(self, key: str, value: str) -> None:
        with transaction(self.engine) as session:
            self._store_cursor(session, (key, value), self.clock())


def _cursor_row(cursor: tuple[str, str], now: datetime) -> dict[str, object]:
    return {"cursor_key": cursor[0], "cursor_value": cursor[1], "cursor_at": now}


# The statements of the hot path, in SQLAlchemy Core run on the driver's cursor (storage.prepared):
# the same tables as the models, a fraction of the ORM's cost per message.
_processed, _cursors = ProcessedInbound.__table__, ChannelCursor.__table__  # type: ignore[attr-defined]
_PROCESSED_VALUES = {
    name: bindparam(name) for name in ("channel", "message_id", "received_at", "processed_at", "failed_text")
}
_INSERT_PROCESSED = Prepared(insert(_processed).values(_PROCESSED_VALUES))
_SELECT_CURSOR = select(_cursors.c.value).where(_cursors.c.key == bindparam("k"))


def _upsert_cursor(dialect: ModuleType) -> Insert:
    """Store a cursor, whether or not it was stored before (both databases say ON CONFLICT)."""
    statement = dialect.insert(_cursors).values(
        key=bindparam("cursor_key"), value=bindparam("cursor_value"), updated_at=bindparam("cursor_at")
    )
    return statement.on_conflict_do_update(
        index_elements=[_cursors.c.key],
        set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
    )


_UPSERT_CURSOR = {"sqlite": Prepared(_upsert_cursor(sqlite)), "postgresql": Prepared(_upsert_cursor(postgresql))}
#: PostgreSQL: the message recorded and the cursor stored by one statement (a data-modifying WITH).
_RECORDED = insert(_processed).values(_PROCESSED_VALUES).cte("recorded")
_RECORD_WITH_CURSOR = Prepared(_upsert_cursor(postgresql).add_cte(_RECORDED))


@functools.cache
def _record_with_rows(count: int) -> Prepared:
    """PostgreSQL: the message recorded, the cursor stored and its `count` outbox rows written, by one
    statement; their ids in the order written."""
    return Prepared(outbox.written_ids(count).add_cte(_RECORDED, _upsert_cursor(postgresql).cte("stored")))
