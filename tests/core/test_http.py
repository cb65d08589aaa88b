"""/healthz, /readyz and /metrics of a running desk."""

from __future__ import annotations

import io
import re
import selectors
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event

from adapters.console import console_line
from bot import http
from bot.http import HealthServer
from bot.logs import configure
from tests.desk import Desk


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_readiness_and_metrics(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    runtime = desk.runtime
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open Disk full")
    desk.engineer("/reply 1 Delete the snapshots")
    server = HealthServer("127.0.0.1:0", runtime.metrics, runtime.ready, runtime.refresh_gauges)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert _get(f"{base}/healthz") == (200, "ok\n")
        assert _get(f"{base}/readyz") == (200, "ready\n")
        status, text = _get(f"{base}/metrics")
        assert status == 200
        assert 'deskbot_messages_in_total{channel="console"} 2.0' in text
        assert 'deskbot_messages_out_total{channel="console"}' in text
        assert "deskbot_incidents_opened_total 1.0" in text
        assert "deskbot_credits_consumed_total 1.0" in text
        assert "deskbot_first_response_seconds_count 1.0" in text
        assert "deskbot_outbox_depth 0.0" in text
        # Every deskbot metric is in the operators' list, with what it means (deploy/README.md).
        documented = (Path(__file__).parents[2] / "deploy" / "README.md").read_text()
        families = re.findall(r"^# TYPE (deskbot_\w+) \w+$", text, re.MULTILINE)
        assert len(families) > 10
        for name in families:
            assert f"`{name}`" in documented, name
        runtime.failed["console"] = "credentials revoked"
        assert _get(f"{base}/readyz") == (503, "console stopped: credentials revoked\n")
        assert _get(f"{base}/nope")[0] == 404
    finally:
        server.stop()


# -- bounds: connections, threads, time -------------------------------------------------------

SECRET = "s3cr3t-scrape-token-91c4"


@contextmanager
def _serving(desk: Desk, **options: object) -> Iterator[HealthServer]:
    runtime = desk.runtime
    server = HealthServer("127.0.0.1:0", runtime.metrics, runtime.ready, runtime.refresh_gauges, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _logs(level: str = "INFO") -> Iterator[io.StringIO]:
    """The project's log output (secret scrubbing on) while the block runs."""
    stream = io.StringIO()
    configure("console", level, [SECRET], stream=stream)
    try:
        yield stream
    finally:
        configure("console", "WARNING")


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _closed_by_server(sockets: list[socket.socket], within: float) -> int:
    """How many of `sockets` the server closes (EOF or reset) within `within` seconds."""
    open_ = set(sockets)
    closed = 0
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as selector:
        for sock in open_:
            selector.register(sock, selectors.EVENT_READ)
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                sock = key.fileobj
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    open_.discard(sock)
                    closed += 1
    return closed


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _wait_for(check, seconds: float = 10.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_hundreds_of_idle_sockets_hold_no_threads_and_do_not_lock_out_a_probe(engine, db_url, clock):
    with _serving(Desk(engine, db_url, clock)) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert _get(f"{base}/healthz") == (200, "ok\n")
        threads_before = threading.active_count()
        idle = [_connect(server.port) for _ in range(300)]
        try:
            for sock in idle[::2]:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: deskbot\r\n")  # half a request
            started = time.monotonic()
            assert _get(f"{base}/healthz") == (200, "ok\n")
            assert _get(f"{base}/readyz") == (200, "ready\n")
            assert _get(f"{base}/metrics")[0] == 200
            assert time.monotonic() - started < 3.0  # generous: it is milliseconds when it works
            assert threading.active_count() <= threads_before
            # Beyond the connections the server keeps waiting, the rest are closed at once.
            assert _closed_by_server(idle, within=2.0) >= len(idle) - http.MAX_WAITING
            assert threading.active_count() <= threads_before
        finally:
            for sock in idle:
                sock.close()
        dropped = server.metrics.registry.get_sample_value(
            "deskbot_http_dropped_connections_total", {"reason": "overload"}
        )
        assert dropped is not None and dropped >= len(idle) - http.MAX_WAITING


def test_a_half_sent_or_trickled_request_is_dropped_after_the_timeout(engine, db_url, clock):
    with _serving(Desk(engine, db_url, clock)) as server:
        half = _connect(server.port)
        half.sendall(b"GET /healthz HTTP/1.1\r\nHost: deskbot\r\n")
        trickle = _connect(server.port)
        started = time.monotonic()
        # One byte every 0.2 s: each read succeeds, yet the whole request has one deadline.
        request = b"GET /healthz HTTP/1.1\r\nHost: deskbot\r\nX-Padding: " + b"a" * 100
        for byte in request:
            if time.monotonic() - started > http.REQUEST_TIMEOUT + 1:
                break
            try:
                trickle.send(bytes([byte]))
            except OSError:  # closed by the server: what this test wants
                break
            time.sleep(0.2)
        assert _closed_by_server([half, trickle], within=http.REQUEST_TIMEOUT + 3 - (time.monotonic() - started)) == 2
        elapsed = time.monotonic() - started
        assert http.REQUEST_TIMEOUT - 0.5 <= elapsed <= http.REQUEST_TIMEOUT + 3
        half.close()
        trickle.close()
        timeouts = server.metrics.registry.get_sample_value(
            "deskbot_http_dropped_connections_total", {"reason": "timeout"}
        )
        assert timeouts == 2


# -- metrics without a query per scrape -------------------------------------------------------


def test_scrapes_read_cached_gauges_and_never_query_the_database(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    # Delivered but not drained: the answer waits in the outbox.
    desk.runtime.intake.deliver(console_line("Acme", "open Disk full", "m1", clock()))
    with _serving(desk) as server:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert _wait_for(lambda: _metric(_get(url)[1], "deskbot_outbox_depth") >= 1)  # the first refresh
        queries: list[str] = []

        def count(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
            queries.append(statement)

        event.listen(desk.engine, "before_cursor_execute", count)
        try:
            for _ in range(50):
                status, text = _get(url)
                assert status == 200
                assert _metric(text, "deskbot_outbox_depth") >= 1
        finally:
            event.remove(desk.engine, "before_cursor_execute", count)
        assert queries == []


def test_gauges_follow_the_store_at_the_refresh_interval(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    with _serving(desk, gauge_refresh_seconds=0.2) as server:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert _wait_for(lambda: _metric(_get(url)[1], "deskbot_gauges_refreshed_timestamp_seconds") > 0)
        assert _metric(_get(url)[1], "deskbot_outbox_depth") == 0
        desk.runtime.intake.deliver(console_line("Acme", "open Disk full", "m1", clock()))
        assert _wait_for(lambda: _metric(_get(url)[1], "deskbot_outbox_depth") >= 1)
        desk.runtime.dispatcher.drain("console")
        assert _wait_for(lambda: _metric(_get(url)[1], "deskbot_outbox_depth") == 0)


# -- errors go through the logger -------------------------------------------------------------


def test_a_client_gone_mid_answer_is_one_scrubbed_log_line_not_a_traceback(engine, db_url, clock, capsys):
    runtime = Desk(engine, db_url, clock).runtime
    entered, release = threading.Event(), threading.Event()

    def slow_ready() -> tuple[bool, str]:
        entered.set()
        release.wait(10)
        return runtime.ready()

    server = HealthServer("127.0.0.1:0", runtime.metrics, slow_ready, runtime.refresh_gauges)
    server.start()
    try:
        with _logs("DEBUG") as logged:
            for done, target in enumerate(("/readyz", f"/readyz?token={SECRET}"), start=1):
                entered.clear()
                release.clear()
                client = _connect(server.port)
                client.sendall(f"GET {target} HTTP/1.1\r\nHost: deskbot\r\n\r\n".encode())
                assert entered.wait(5)
                # Reset, not a polite close: the server's next write fails.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                release.set()
                assert _wait_for(lambda done=done: logged.getvalue().count("went away") == done)
            text = logged.getvalue()
    finally:
        release.set()
        server.stop()
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr and SECRET not in stderr
    lines = [line for line in text.splitlines() if "went away" in line]
    assert len(lines) == 2, text
    assert "deskbot.http" in lines[0] and "GET /readyz " in lines[0]
    # The first of a minute is news (INFO); a flood of them stays at DEBUG, and all are counted.
    assert " INFO " in lines[0] and " DEBUG " in lines[1]
    disconnects = server.metrics.registry.get_sample_value(
        "deskbot_http_dropped_connections_total", {"reason": "disconnect"}
    )
    assert disconnects == 2
    assert SECRET not in text and "GET /readyz?token=***" in lines[1]


def test_a_fault_in_a_handler_is_logged_with_its_traceback_and_answered_500(engine, db_url, clock, capsys):
    runtime = Desk(engine, db_url, clock).runtime

    def broken_ready() -> tuple[bool, str]:
        raise RuntimeError(f"probe broke with {SECRET}")

    server = HealthServer("127.0.0.1:0", runtime.metrics, broken_ready, runtime.refresh_gauges)
    server.start()
    try:
        with _logs() as logged:
            assert _get(f"http://127.0.0.1:{server.port}/readyz") == (500, "internal error\n")
            assert _get(f"http://127.0.0.1:{server.port}/healthz") == (200, "ok\n")
            text = logged.getvalue()
    finally:
        server.stop()
    assert "Traceback" not in capsys.readouterr().err
    assert "GET /readyz" in text and "RuntimeError: probe broke with ***" in text and SECRET not in text


def test_other_requests_get_short_answers(engine, db_url, clock):
    with _serving(Desk(engine, db_url, clock)) as server:

        def exchange(raw: bytes) -> bytes:
            with _connect(server.port) as sock:
                sock.sendall(raw)
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
                return answer

        head = exchange(b"HEAD /healthz HTTP/1.1\r\nHost: deskbot\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 3\r\n" in head
        assert head.endswith(b"\r\n\r\n")
        assert exchange(b"POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n").startswith(b"HTTP/1.1 405 ")
        assert exchange(b"\x16\x03\x01 not http\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        big = b"GET /healthz HTTP/1.1\r\n" + b"X-Filler: " + b"x" * (http.MAX_REQUEST_BYTES + 10) + b"\r\n\r\n"
        assert exchange(big).startswith(b"HTTP/1.1 431 ")
        assert exchange(b"GET /metrics?name[]=x HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200 ")
