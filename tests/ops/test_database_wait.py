"""`deskbot run` beside a PostgreSQL server that takes no connection yet (a container started with
its database, a database restarting): it waits for it as for a platform, up to
DESKBOT_STARTUP_TIMEOUT, told once, then either runs or stops with one line naming
DESKBOT_DATABASE_URL (bot.serve `_wait_for_database`). Through the installed `deskbot` in a child
process, a real PostgreSQL behind a port that opens late."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fakes.zulip import FakeZulip
from tests.ops.test_setting_names import BOT, ENGINEER, KEY, run_until_running
from tests.ops.test_startup_settings import FOREIGN, SCRIPT, free_port

pytestmark = pytest.mark.timeout(180)

SERVER = ("127.0.0.1", 5432)
WAITED = "trying again for up to"


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _forward_from(port: int, after: float, stop: threading.Event) -> None:
    """Nothing listens on `port` for `after` seconds (connections refused, as from a server not up
    yet); then every connection to it goes on to PostgreSQL."""
    if stop.wait(after):
        return
    with socket.create_server(("127.0.0.1", port)) as listener:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(SERVER)
            for ends in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=ends, daemon=True).start()


@pytest.fixture
def database() -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped after it: its name."""
    name = f"deskbot_wait_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(host=SERVER[0], port=SERVER[1], user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(host=SERVER[0], port=SERVER[1], user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _zulip(zulip: FakeZulip) -> dict[str, str]:
    zulip.add_user(BOT, "Desk Bot", KEY, is_bot=True)
    zulip.add_user(ENGINEER, "Erin", "erin-key")
    zulip.add_stream("support", subscribers=[BOT, ENGINEER])
    return {"ZULIP_SITE": zulip.url, "ZULIP_EMAIL": BOT, "ZULIP_API_KEY": KEY, "DESKBOT_ENGINEERS": ENGINEER}


def test_a_database_that_takes_connections_late_is_waited_for_and_used(tmp_path: Path, database: str) -> None:
    port = free_port()
    stop = threading.Event()
    late = threading.Thread(target=_forward_from, args=(port, 2.0, stop), daemon=True)
    late.start()
    try:
        with FakeZulip(heartbeat=1.0) as zulip:
            url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
            said = run_until_running(tmp_path, **_zulip(zulip), DESKBOT_DATABASE_URL=url, DESKBOT_STARTUP_TIMEOUT="30")
    finally:
        stop.set()
        late.join(5)
    waits = [line for line in said.splitlines() if WAITED in line]
    assert len(waits) == 1 and " WARNING " in waits[0] and "DESKBOT_STARTUP_TIMEOUT" in waits[0], said
    assert "database migrated" in said and "deskbot running" in said, said


def test_a_database_that_never_takes_connections_stops_start_up_after_the_wait_naming_the_setting(
    tmp_path: Path,
) -> None:
    with FakeZulip(heartbeat=1.0) as zulip:
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN) and k != "PYTEST_CURRENT_TEST"}
        env.update(_zulip(zulip))
        env.update(
            DESKBOT_DATABASE_URL=f"postgresql+psycopg://deskbot:s3cret@127.0.0.1:{free_port()}/deskbot",
            DESKBOT_HTTP_ADDR=f"127.0.0.1:{free_port()}",
            DESKBOT_STARTUP_TIMEOUT="3",
        )
        began = time.monotonic()
        done = subprocess.run([str(SCRIPT), "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - began
    assert done.returncode == 1, done
    lines = done.stderr.splitlines()
    assert len([line for line in lines if WAITED in line]) == 1, done.stderr
    assert lines[-1].endswith("(DESKBOT_DATABASE_URL)") and "cannot use the database" in lines[-1], done.stderr
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr
    assert 2.0 <= took < 20, took  # waited, and not for ever
    assert not zulip.requests_to("POST", "/api/v1/register"), "a channel was started before the database answered"
