"""Who receives from a channel when several processes share a database (SPEC §7).

PostgreSQL: a session-level advisory lock per channel, held on a dedicated
connection; whoever holds it receives, the others retry every few seconds and
take over within seconds of the holder's death (the server releases the lock
when its connection drops). SQLite: one process only — a lock file beside the
database refuses a second one with a clear line.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.db import is_postgresql


class AlreadyRunning(Exception):
    pass


def _key(channel: str) -> int:
    digest = hashlib.sha256(f"deskbot:channel:{channel}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ChannelLease:
    """Held while this process may receive from `channel`."""

    def __init__(self, engine: Engine, channel: str) -> None:
        self.engine = engine
        self.channel = channel
        self._connection: sa.Connection | None = None
        #: The runtime's lease watchdog asks `holds` while the receive loop may `try_acquire`.
        self._lock = threading.RLock()

    @property
    def needed(self) -> bool:
        return is_postgresql(self.engine)

    def try_acquire(self) -> bool:
        if not self.needed:
            return True
        with self._lock:
            if self.holds():
                return True
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(self.channel)}).scalar()
            except BaseException:
                _discard(connection)  # whether the lock was taken is unknown: its session ends with it
                raise
            if got:
                self._connection = connection
                return True
            connection.close()
            return False

    def holds(self) -> bool:
        """Is the lock still this process's? It lives as long as the connection that took it: a
        database restart (or a connection cut) frees it for another replica, and this process
        must stop receiving at once (bot.runtime watches).

        A path to the server that went dead silently (packets dropped, no reset) fails the check
        within the connection's tcp_user_timeout (storage.db), which is shorter than the server's
        own for the session, with its lock, by more than the watchdog's round: this process stops
        before the server lets another replica take the lock."""
        if not self.needed:
            return True
        with self._lock:
            if self._connection is None:
                return False
            try:
                self._connection.exec_driver_sql("SELECT 1")
                return True
            except sa.exc.DBAPIError:
                self.release()
                return False

    def release(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if connection.invalidated:
            # The connection failed (the server ended the session, or the path to it is dead): the
            # lock goes with the session, at the server. No unlock: SQLAlchemy refuses a statement on
            # an invalidated connection (PendingRollbackError, which made the watchdog's check fail
            # for a round instead of telling the lock lost) or reconnects, on a path that may be dead.
            _discard(connection)
            return
        try:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _key(self.channel)})
        except sa.exc.SQLAlchemyError:
            _discard(connection)  # not back to the pool holding the lock: its session ends instead
            return
        try:
            connection.close()
        except sa.exc.SQLAlchemyError:
            pass


def _discard(connection: sa.Connection) -> None:
    """Close `connection` and its session with the server (never back to the pool)."""
    try:
        connection.invalidate()
        connection.close()
    except sa.exc.SQLAlchemyError:
        pass


class SingleProcessLock:
    """On SQLite, refuse a second `deskbot run` on the same database file."""

    def __init__(self, engine: Engine) -> None:
        self.path: Path | None = None
        self._fd: int | None = None
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            self.path = Path(engine.url.database).with_suffix(".lock")

    def acquire(self) -> None:
        if self.path is None:
            return
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise AlreadyRunning(
                f"another deskbot is already running on {self.path.stem} (lock file {self.path}); "
                "SQLite allows one process — use PostgreSQL for several replicas"
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
