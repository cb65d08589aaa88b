"""Stopping while the database is gone: the replies wait in it for the next start; no traceback."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import pytest

from adapters.console import ConsoleChannel
from bot.runtime import Runtime
from storage.db import make_engine
from tests.conftest import drop_pg_database, fresh_pg_database
from tests.desk import make_settings


@pytest.fixture
def vanishing_database() -> Iterator[str]:
    """A database of its own, which the test drops while deskbot still uses it."""
    with fresh_pg_database(f"deskbot_vanishing_{os.getpid()}") as url:
        yield url


def test_stopping_after_postgresql_vanished_ends_with_one_warning(
    vanishing_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    console = ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=io.StringIO())
    engine = make_engine(vanishing_database)
    runtime = Runtime(make_settings(vanishing_database), [console], engine=engine)
    runtime.start()
    assert runtime._pending() is False  # the database answers: nothing due
    drop_pg_database(vanishing_database.rsplit("/", 1)[1])
    with caplog.at_level(logging.WARNING, logger="deskbot.runtime"):
        runtime.stop(drain_seconds=0.5)  # used to raise OperationalError (exit 1 with a traceback)
    warnings = [r.getMessage() for r in caplog.records if r.name == "deskbot.runtime"]
    assert any(w.startswith("database unreachable while stopping") for w in warnings)
    engine.dispose()
