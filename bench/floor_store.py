"""The least any bot keeping deskbot's guarantees must write before it answers: the latency floor.

SPEC section 7 asks that every inbound message be stored exactly once before the
channel's cursor moves past it, and that every answer go through a persistent
outbox. Whatever a bot computes, it must therefore commit one transaction per
message before the answer may leave: the message's record (its key is what makes
a redelivery fail), the outbox row, the cursor. `FloorStore.take` does exactly
that and nothing else, with the bare driver (sqlite3 or psycopg: no SQLAlchemy,
no ORM, no reads: it does not even look up who wrote), on PostgreSQL as one
statement (data-modifying CTEs, autocommit: one round trip and the commit's
WAL flush, where a transaction of the three would take five round trips);
`FloorStore.sent` records the delivery after the send, as deskbot's dispatcher
does.

The echo bots of the latency benchmarks take it with `--store URL`
(`python -m bench._common echo-zulip --store ...`); `zulip_latency.py --floor`
and `mastodon_latency.py --floor` run such a bot as a third one beside deskbot
and the bare echo bot; the DMs take turns among the three, their gaps shortened so
that each bot gets them as often as with two. Its ratio to the bare echo bot bounds from below what any
design that keeps the guarantees can reach on this machine and database: a real
bot must also read (who wrote, what the answer says), which this one does not.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

TABLES = (
    "CREATE TABLE IF NOT EXISTS floor_inbound (channel TEXT NOT NULL, message_id TEXT NOT NULL,"
    " PRIMARY KEY (channel, message_id))",
    "CREATE TABLE IF NOT EXISTS floor_outbox (id {serial}, recipient TEXT NOT NULL, body TEXT NOT NULL,"
    " state TEXT NOT NULL, platform_id TEXT)",
    "CREATE TABLE IF NOT EXISTS floor_cursor (channel TEXT PRIMARY KEY, position TEXT NOT NULL)",
)

_CURSOR = (
    "INSERT INTO floor_cursor (channel, position) VALUES (%s, %s)"
    " ON CONFLICT (channel) DO UPDATE SET position = excluded.position"
)
_ONE_STATEMENT = (
    "WITH recorded AS (INSERT INTO floor_inbound (channel, message_id) VALUES (%s, %s)),"
    " queued AS (INSERT INTO floor_outbox (recipient, body, state) VALUES (%s, %s, 'leased') RETURNING id),"
    f" moved AS ({_CURSOR})"
    " SELECT id FROM queued"
)


class FloorStore:
    """One connection per thread (the receiving thread takes, the sending thread records)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self._local = threading.local()
        serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if self.sqlite else "BIGSERIAL PRIMARY KEY"
        conn = self._conn()
        for statement in TABLES:
            conn.execute(statement.format(serial=serial))

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.sqlite:
                # As deskbot's engine: WAL, synchronous=NORMAL; autocommit, with explicit BEGIN/COMMIT.
                conn = sqlite3.connect(self.url.split("///", 1)[1], isolation_level=None, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            else:
                import psycopg

                conn = psycopg.connect(self.url.replace("+psycopg", ""), autocommit=True)
            self._local.conn = conn
        return conn

    def take(self, channel: str, message_id: str, recipient: str, body: str, cursor: str) -> int:
        """Record the message, write its answer's outbox row and move the cursor, in one commit."""
        conn = self._conn()
        if not self.sqlite:
            return int(
                conn.execute(_ONE_STATEMENT, (channel, message_id, recipient, body, channel, cursor)).fetchone()[0]
            )
        conn.execute("BEGIN")  # SQLite has no data-modifying CTEs; in-process, statements cost no round trip
        try:
            conn.execute("INSERT INTO floor_inbound (channel, message_id) VALUES (?, ?)", (channel, message_id))
            row = conn.execute(
                "INSERT INTO floor_outbox (recipient, body, state) VALUES (?, ?, 'leased') RETURNING id",
                (recipient, body),
            ).fetchone()[0]
            conn.execute(_CURSOR.replace("%s", "?"), (channel, cursor))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(row)

    def sent(self, row: int, platform_id: object) -> None:
        """The delivery record, after the send (one statement, committed)."""
        sql = "UPDATE floor_outbox SET state = 'sent', platform_id = %s WHERE id = %s"
        self._conn().execute(sql.replace("%s", "?") if self.sqlite else sql, (str(platform_id), row))
