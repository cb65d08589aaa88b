"""Server-sent events for the fake's user streams, with injectable disconnects.

Each open stream is a `StreamConnection` with its own queue. The instance
pushes events to every connection of the recipient account as they happen,
each stamped with the moment (`time.monotonic()`) so that the writer can
delay it by a simulated network's one-way trip;
a connection that is closed or not yet open misses them, as on a real server
(the client must catch up over REST).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

CLOSE_CLEAN = object()
CLOSE_DROP = object()


@dataclass(eq=False)
class StreamConnection:
    account_id: str
    notifications_only: bool
    queue: queue.Queue[Any] = field(default_factory=queue.Queue)
    events_sent: int = 0
    #: Drop the connection once this many events were written (None: never).
    drop_after: int | None = None
    #: Write nothing at all, not even heartbeats, as a wedged proxy would.
    stalled: bool = False


class StreamHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections: list[StreamConnection] = []
        self.opened = 0
        self.drop_after: int | None = None  # applied to connections opened from now on
        self.stall_new = False

    def open(self, account_id: str, notifications_only: bool) -> StreamConnection:
        with self._lock:
            connection = StreamConnection(account_id, notifications_only, drop_after=self.drop_after)
            connection.stalled = self.stall_new
            self.connections.append(connection)
            self.opened += 1
            return connection

    def close(self, connection: StreamConnection) -> None:
        with self._lock:
            if connection in self.connections:
                self.connections.remove(connection)

    def publish(self, account_id: str, event: str, payload: Any) -> None:
        with self._lock:
            targets = [c for c in self.connections if c.account_id == account_id]
        for connection in targets:
            if connection.notifications_only and event != "notification":
                continue
            connection.queue.put((time.monotonic(), event, payload))

    def disconnect_all(self, *, clean: bool = False) -> int:
        with self._lock:
            targets = list(self.connections)
        for connection in targets:
            connection.queue.put(CLOSE_CLEAN if clean else CLOSE_DROP)
        return len(targets)

    def stall_all(self, stalled: bool = True) -> None:
        with self._lock:
            for connection in self.connections:
                connection.stalled = stalled
            self.stall_new = stalled


def frame(event: str, payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"event: {event}\ndata: {data}\n\n".encode()
