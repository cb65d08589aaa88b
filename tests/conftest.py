"""Shared fixtures: a migrated, empty store on real SQLite and on real PostgreSQL.

Every test that takes `db_url` or `engine` runs twice, once per backend.
PostgreSQL comes from DESKBOT_TEST_PG_URL (default: the local server with
trust auth); the suite makes a database of its own, named per process so
parallel runs never meet, and drops it at the end. `.ci/run` makes sure the
server is up; with DESKBOT_TEST_BACKENDS=sqlite a developer can skip it
knowingly (CI never sets that).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import make_engine, upgrade

# Property tests judge what a function returns, never how fast: Hypothesis's default 200 ms
# deadline per example fails a test when the machine stalls (CI runs on two busy cores).
settings.register_profile("deskbot", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("deskbot")

if TYPE_CHECKING:
    from tests.mail.tls import MailTLS

PG_BASE = os.environ.get("DESKBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = os.environ.get("DESKBOT_TEST_BACKENDS", "sqlite,postgresql").split(",")


@pytest.fixture(autouse=True)
def _no_stray_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test may only talk to this machine (fakes, PostgreSQL): anything else fails the test."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address):  # noqa: ANN001
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
        ):
            raise AssertionError(f"test tried to reach {host!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def private_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MailTLS:
    """A test certificate authority (trustme) and a server certificate for 127.0.0.1, which no
    client trusts yet: the environment names no CA bundle until the test sets one."""
    from tests.mail.tls import MailTLS

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return MailTLS(tmp_path / "tls")


def drop_pg_database(name: str) -> None:
    """Drop database `name` on the test server, whoever is still connected to it."""
    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def fresh_pg_database(name: str) -> Iterator[str]:
    """An empty database `name` on the test server (made anew), dropped afterwards; its URL."""
    drop_pg_database(name)
    admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    try:
        yield PG_BASE.rsplit("/", 1)[0] + f"/{name}"
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str]:
    with fresh_pg_database(f"deskbot_test_{os.getpid()}") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    """The URL of a migrated, empty database (one per test)."""
    if request.param == "sqlite":
        path = tmp_path / "deskbot.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("_pg_database")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    # A Wednesday at 10:00 Lisbon (WET = UTC in winter), inside service hours (1 Dec is a holiday).
    return FakeClock(datetime(2026, 12, 2, 10, 0, tzinfo=UTC))


#: Set by `.ci/run`: a test that skips there (a missing tool, no root) fails the run instead, so
#: that CI is never green for a test it did not run.
_NO_SKIPS = bool(os.environ.get("DESKBOT_NO_SKIPS"))
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if _NO_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(f"{report.nodeid}: {report.longrepr[-1] if isinstance(report.longrepr, tuple) else ''}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and exitstatus == pytest.ExitCode.OK:
        print(f"\nDESKBOT_NO_SKIPS: {len(_skipped)} test(s) skipped, which CI must run:", *_skipped[:20], sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
