"""One connection to Mastodon's streaming API, read as server-sent events over httpx.

Why not Mastodon.py's `stream_user`: its asynchronous worker thread ends
silently when the connection drops (nothing reaches the caller), its
reconnect does no catch-up, and the blocking variant can only be stopped from
inside a callback. Here one `SSEConnection` is one HTTP response read on a
daemon thread into a queue; the channel's receive loop owns reconnecting and
the REST catch-up, and can stop at once:

* the read timeout is the heartbeat timeout: Mastodon writes `:thump` every
  15 s, so a connection silent for longer is dead even if TCP has not noticed;
* `close()` shuts the socket down, which wakes the blocked read at once.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from dataclasses import dataclass

import httpx

log = logging.getLogger("deskbot.adapters.mastodon")


@dataclass(frozen=True, slots=True)
class Opened:
    """The server accepted the stream (HTTP 200)."""


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection ended; `reason` is one line for the log, `status` the HTTP status if refused."""

    reason: str
    status: int | None = None


StreamItem = Opened | Event | Closed


class SSEConnection:
    """Reads one SSE response on a background thread; items arrive on `items`."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        headers: dict[str, str],
        *,
        heartbeat_timeout: float,
        connect_timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._url = url
        self._headers = headers
        self._timeout = httpx.Timeout(connect=connect_timeout, read=heartbeat_timeout, write=10.0, pool=10.0)
        self.items: queue.Queue[StreamItem] = queue.Queue()
        self._closing = threading.Event()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name="mastodon-sse", daemon=True)

    def start(self) -> SSEConnection:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop reading now; the reader thread ends on its own."""
        self._closing.set()
        response = self._response
        if response is None:
            return
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers, timeout=self._timeout) as response:
                self._response = response
                if response.status_code != 200:
                    response.read()
                    self.items.put(Closed(_refusal(response), response.status_code))
                    return
                self.items.put(Opened())
                self._read(response)
            self.items.put(Closed("the server ended the stream"))
        except httpx.ReadTimeout:
            self.items.put(Closed("no heartbeat within the timeout"))
        except (httpx.HTTPError, OSError) as error:
            reason = "closed" if self._closing.is_set() else f"{type(error).__name__}: {error}"
            self.items.put(Closed(reason))

    def _read(self, response: httpx.Response) -> None:
        name, data = "message", []
        for line in response.iter_lines():
            if self._closing.is_set():
                return
            if line == "":
                if data:
                    self.items.put(Event(name, "\n".join(data)))
                name, data = "message", []
            elif line.startswith(":"):
                continue  # ":)" greeting and ":thump" heartbeats only keep the read timeout at bay
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)


def _refusal(response: httpx.Response) -> str:
    try:
        detail = response.json().get("error")
    except ValueError:
        detail = None
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
