"""What `deskbot run` prints at start (issue 15, item 5), as a real child process against both fakes.

Console lines carry the date, every line goes to stderr (stdout stays empty: it is the commands'
output), and migrating an empty database says so in one line of deskbot's own, with none of
Alembic's chatter; a start on a database already at head says nothing about migrations.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.db import HEAD_REVISION
from tests.conftest import PG_BASE

from .conftest import REPO, Fakes, free_port, wait_until

pytestmark = pytest.mark.timeout(120)

#: `2026-03-10 14:02:11 +0000 INFO    deskbot: …`: local date and time, UTC offset, level, logger.
CONSOLE_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S+: ")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no tables at all (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"deskbot_fresh_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_BASE.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _ready(http_addr: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{http_addr}/readyz", timeout=2) as res:
            return res.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _run_once(env: dict[str, str], directory: Path, name: str) -> tuple[str, str]:
    """Start `deskbot run`, wait until it is ready, SIGTERM it; its stdout and stderr."""
    stdout_path, stderr_path = directory / f"{name}.out", directory / f"{name}.err"
    http_addr = f"127.0.0.1:{free_port()}"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            cwd=REPO,
            env={**env, "DESKBOT_HTTP_ADDR": http_addr},
            stdout=out,
            stderr=err,
        )
        try:

            def ready() -> bool:
                assert proc.poll() is None, f"exited with {proc.returncode}: {stderr_path.read_text()}"
                return _ready(http_addr)

            wait_until(ready, 60, "deskbot run to be ready", interval=0.1)
            proc.terminate()
            assert proc.wait(30) == 0, stderr_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return stdout_path.read_text(), stderr_path.read_text()


def test_console_lines_dated_on_stderr_and_migration_said_once(
    fakes: Fakes, empty_database: str, tmp_path: Path
) -> None:
    env = {**fakes.env(empty_database), "DESKBOT_LOG_FORMAT": "console", "DESKBOT_LOG_LEVEL": "INFO"}

    stdout, stderr = _run_once(env, tmp_path, "first")
    assert stdout == ""
    lines = stderr.splitlines()
    assert any("deskbot running" in line for line in lines), stderr
    undated = [line for line in lines if not CONSOLE_LINE.match(line)]
    assert not undated, undated
    assert not [line for line in lines if " alembic" in line], stderr
    migrated = [line for line in lines if "migrated" in line]
    assert len(migrated) == 1 and migrated[0].endswith(f"from revision (empty) to {HEAD_REVISION}"), stderr

    stdout, stderr = _run_once(env, tmp_path, "again")
    assert stdout == ""
    assert all(CONSOLE_LINE.match(line) for line in stderr.splitlines()), stderr
    assert "deskbot running" in stderr
    assert "migrat" not in stderr and "alembic" not in stderr, stderr


def test_alembic_lines_stay_available_at_debug(fakes: Fakes, empty_database: str, tmp_path: Path) -> None:
    env = {**fakes.env(empty_database), "DESKBOT_LOG_FORMAT": "console", "DESKBOT_LOG_LEVEL": "DEBUG"}

    stdout, stderr = _run_once(env, tmp_path, "debug")
    assert stdout == ""
    assert re.search(r" alembic\.runtime\.migration: Running upgrade .*-> 0001", stderr), stderr
    assert f"from revision (empty) to {HEAD_REVISION}" in stderr
