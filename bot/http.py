"""The health and metrics server: /healthz (alive), /readyz (database and channels), /metrics.

The port may be reachable by anyone, so what a client can hold is bounded:

- Threads are fixed when the server starts: one reads requests from every connection
  (non-blocking) and answers `/healthz` itself, so that liveness never waits behind a slow
  readiness check; `WORKERS` threads answer `/readyz` and `/metrics`; one refreshes the
  database-backed gauges every `GAUGE_REFRESH_SECONDS` (`bot.metrics.GaugeRefresher`). A scrape
  reads cached values and never queries the database.
- At most `MAX_WAITING` connections wait for their request; one more closes the oldest waiting
  one, so a flood of idle sockets cannot lock a fresh probe out. At most `MAX_QUEUED` complete
  requests wait for a worker; beyond that a request is closed unanswered.
- A connection has `REQUEST_TIMEOUT` seconds from being accepted to deliver its whole request
  head (at most `MAX_REQUEST_BYTES`), however slowly it trickles in, and `WRITE_TIMEOUT` seconds
  to take the answer; then it is closed. One request per connection (`Connection: close`).
- Every failure goes through the `deskbot.http` logger (so secrets are scrubbed), never raw to
  stderr: a connection closed unanswered (overload, timeout, client gone) is counted in
  `deskbot_http_dropped_connections_total{reason}` and logged at INFO at most once a minute per
  reason (the others at DEBUG, so a flood cannot flood the log); a fault in a handler is logged
  with its traceback and answered 500.
"""

from __future__ import annotations

import logging
import queue
import re
import selectors
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import GAUGE_REFRESH_SECONDS, GaugeRefresher, Metrics

log = logging.getLogger("deskbot.http")

#: Threads that answer /readyz and /metrics.
WORKERS = 4
#: Connections held open while their request arrives.
MAX_WAITING = 64
#: Complete requests waiting for a worker.
MAX_QUEUED = 16
#: Seconds from accept to a complete request head.
REQUEST_TIMEOUT = 5.0
#: Seconds for a client to take its answer.
WRITE_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 8192
LISTEN_BACKLOG = 128
#: How often the reading thread looks for connections past their deadline.
SWEEP_SECONDS = 0.25
#: How long `stop` waits for the server's threads.
STOP_SECONDS = 2.0
#: Per reason, one INFO line per this many seconds about connections closed unanswered.
QUIET_SECONDS = 60.0

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_TEXT = "text/plain; charset=utf-8"


@dataclass
class _Waiting:
    peer: str
    deadline: float
    received: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class _Request:
    conn: socket.socket
    peer: str
    method: str
    target: str

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


def _answer_bytes(status: int, body: bytes, content_type: str, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + (b"" if head_only else body)


def _parse_request_line(head: bytes) -> tuple[str, str] | None:
    """(method, target) of `METHOD TARGET HTTP/x.y`, or None when the line is not that."""
    parts = head.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/"):
        return None
    return parts[0], parts[1]


def _peer_name(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


class HealthServer:
    """Serves /healthz, /readyz (`ready()` → (ok, detail)) and /metrics on `addr` (HOST:PORT;
    port 0 picks a free one) from `start` until `stop`; `refresh` sets the database-backed
    gauges and is called every `gauge_refresh_seconds`, never per scrape."""

    def __init__(
        self,
        addr: str,
        metrics: Metrics,
        ready: Callable[[], tuple[bool, str]],
        refresh: Callable[[], None],
        *,
        request_timeout: float = REQUEST_TIMEOUT,
        gauge_refresh_seconds: float = GAUGE_REFRESH_SECONDS,
    ) -> None:
        host, _sep, port = addr.rpartition(":")
        host = host.strip("[]")
        self.metrics = metrics
        self.ready = ready
        self.request_timeout = request_timeout
        self.refresher = GaugeRefresher(refresh, metrics, gauge_refresh_seconds)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, int(port)), family=family, backlog=LISTEN_BACKLOG)
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._waiting: OrderedDict[socket.socket, _Waiting] = OrderedDict()
        self._queue: queue.Queue[_Request] = queue.Queue(maxsize=MAX_QUEUED)
        self._stopping = threading.Event()
        self._last_info: dict[str, float] = {}
        self._info_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read_loop, name="http", daemon=True)] + [
            threading.Thread(target=self._work_loop, name=f"http-worker-{n}", daemon=True) for n in range(WORKERS)
        ]

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def start(self) -> None:
        self.refresher.start()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        # One short deadline for all: a worker stuck in a readiness check must not hold up the
        # shutdown (the threads are daemons, so the process still exits).
        deadline = time.monotonic() + STOP_SECONDS
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.refresher.stop()
        while True:
            try:
                self._queue.get_nowait().conn.close()
            except queue.Empty:
                break
        for conn in list(self._waiting):
            conn.close()
        self._waiting.clear()
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    # -- the reading thread --------------------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._read_once()
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("health server: the reading loop failed")
                self._stopping.wait(SWEEP_SECONDS)

    def _read_once(self) -> None:
        for key, _events in self._selector.select(timeout=SWEEP_SECONDS):
            if key.fileobj is self._listener:
                self._accept()
            elif key.fileobj is not self._wake_r:
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                try:
                    self._receive(conn)
                except Exception:
                    log.exception("health server: reading a request failed")
                    self._forget(conn)
        self._close_expired()

    def _accept(self) -> None:
        while True:
            try:
                conn, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: wait rather than spin
                log.warning("health server cannot accept a connection: %s", exc)
                self._stopping.wait(SWEEP_SECONDS)
                return
            conn.setblocking(False)
            if len(self._waiting) >= MAX_WAITING:
                oldest = next(iter(self._waiting))
                peer = self._waiting[oldest].peer
                self._forget(oldest)
                self._dropped("overload", "closed %s unanswered: %d connections already waiting", peer, MAX_WAITING)
            self._waiting[conn] = _Waiting(_peer_name(address), time.monotonic() + self.request_timeout)
            self._selector.register(conn, selectors.EVENT_READ)

    def _receive(self, conn: socket.socket) -> None:
        waiting = self._waiting[conn]
        try:
            chunk = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._forget(conn)
            self._dropped("disconnect", "%s went away before its request was complete (%s)", waiting.peer, exc)
            return
        if not chunk:
            self._forget(conn)
            if waiting.received:
                self._dropped("disconnect", "%s went away before its request was complete", waiting.peer)
            return  # a bare TCP check (connect, close) is not news
        waiting.received += chunk
        end = _HEAD_END.search(waiting.received)
        if (end.start() if end else len(waiting.received)) > MAX_REQUEST_BYTES:
            self._answer_now(conn, 431, b"request header too large\n")
            return
        if end is None:
            return
        self._route(conn, waiting.peer, bytes(waiting.received[: end.start()]))

    def _route(self, conn: socket.socket, peer: str, head: bytes) -> None:
        request_line = _parse_request_line(head)
        if request_line is None:
            self._answer_now(conn, 400, b"bad request\n")
            return
        request = _Request(conn, peer, *request_line)
        if request.method not in ("GET", "HEAD"):
            self._answer_now(conn, 405, b"method not allowed\n")
        elif request.path == "/healthz":
            self._answer_now(conn, 200, b"ok\n", head_only=request.method == "HEAD")
        elif request.path in ("/readyz", "/metrics"):
            self._selector.unregister(conn)
            del self._waiting[conn]
            try:
                self._queue.put_nowait(request)
            except queue.Full:
                conn.close()
                self._dropped(
                    "overload",
                    "closed %s %s from %s unanswered: %d requests queued",
                    request.method,
                    request.path,
                    peer,
                    MAX_QUEUED,
                )
        else:
            self._answer_now(conn, 404, b"not found\n")

    def _answer_now(self, conn: socket.socket, status: int, body: bytes, head_only: bool = False) -> None:
        """A short answer from the reading thread: one non-blocking send (a fresh connection's
        buffer always takes it), then close; it never waits for the client."""
        peer = self._waiting[conn].peer
        data = _answer_bytes(status, body, _TEXT, head_only)
        try:
            sent = conn.send(data)
        except OSError as exc:
            self._dropped("disconnect", "%s went away before its answer was sent (%s)", peer, exc)
        else:
            if sent < len(data):
                self._dropped("timeout", "%s did not take its answer", peer)
        self._forget(conn)

    def _close_expired(self) -> None:
        now = time.monotonic()
        # Deadlines grow in accept order, so the expired ones are at the front.
        while self._waiting:
            conn, waiting = next(iter(self._waiting.items()))
            if waiting.deadline > now:
                return
            self._forget(conn)
            self._dropped("timeout", "closed %s: no complete request within %.0fs", waiting.peer, self.request_timeout)

    def _forget(self, conn: socket.socket) -> None:
        if self._waiting.pop(conn, None) is not None:
            self._selector.unregister(conn)
        conn.close()

    # -- the workers ---------------------------------------------------------------------------

    def _work_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                request = self._queue.get(timeout=SWEEP_SECONDS)
            except queue.Empty:
                continue
            try:
                self._answer(request)
            except Exception:
                log.exception("health server: %s %s from %s failed", request.method, request.path, request.peer)
                self._send(request, _answer_bytes(500, b"internal error\n", _TEXT))
            finally:
                request.conn.close()

    def _answer(self, request: _Request) -> None:
        if request.path == "/readyz":
            ok, detail = self.ready()
            data = _answer_bytes(200 if ok else 503, (detail + "\n").encode(), _TEXT, request.method == "HEAD")
        else:
            data = _answer_bytes(
                200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST, request.method == "HEAD"
            )
        self._send(request, data)

    def _send(self, request: _Request, data: bytes) -> None:
        """Send the whole answer within WRITE_TIMEOUT; a client that fails to take it is logged."""
        try:
            request.conn.settimeout(WRITE_TIMEOUT)  # sendall's timeout bounds the whole answer
            request.conn.sendall(data)
        except TimeoutError:
            self._dropped(
                "timeout",
                "%s did not take the answer to %s %s within %.0fs",
                request.peer,
                request.method,
                request.target,
                WRITE_TIMEOUT,
            )
        except OSError as exc:
            self._dropped(
                "disconnect",
                "%s went away during the answer to %s %s (%s)",
                request.peer,
                request.method,
                request.target,
                exc,
            )

    # -- logging -------------------------------------------------------------------------------

    def _dropped(self, reason: str, message: str, *args: object) -> None:
        """Count a connection closed unanswered; log it at INFO at most once a minute per reason."""
        self.metrics.http_dropped.labels(reason).inc()
        now = time.monotonic()
        with self._info_lock:
            last = self._last_info.get(reason)
            loud = last is None or now - last >= QUIET_SECONDS
            if loud:
                self._last_info[reason] = now
        log.log(logging.INFO if loud else logging.DEBUG, "health server: " + message, *args, extra={"reason": reason})
