"""Run `deskbot` commands in-process through `bot.cli.main`, the console-script entry point (it exits).

Each command runs inside typer's CliRunner isolation (stdout and stderr
captured apart), against the `db_url` database of the test (SQLite and
PostgreSQL), from an empty directory so that no `.env` is read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from bot.cli import main


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


Run = Callable[..., Result]


def exit_status(entry_point: Callable[[list[str]], object], args: list[str]) -> int:
    try:
        entry_point(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    raise AssertionError("main() returned instead of exiting")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:  # noqa: ANN001
    """An empty working directory and no deskbot settings from the developer's environment."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("DESKBOT_", "ZULIP_", "MASTODON_")) and not name.startswith("DESKBOT_TEST_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def cli(cli_env: pytest.MonkeyPatch, db_url: str) -> Run:
    cli_env.setenv("DESKBOT_DATABASE_URL", db_url)

    def run(*args: str, input: str | None = None) -> Result:
        with CliRunner().isolation(input=input) as (stdout, stderr, _mixed):
            code = exit_status(main, list(args))
            return Result(code, stdout.getvalue().decode(), stderr.getvalue().decode())

    return run


@pytest.fixture
def mid_2026(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The CLI's clock at 1 June 2026: a test whose packs are dated in 2026 does not start failing
    a year later, when they have lapsed and the CLI warns about them."""
    moment = datetime(2026, 6, 1, 12, tzinfo=UTC)
    modules = [m for name, m in sys.modules.items() if name.startswith("bot.cli.") and hasattr(m, "now")]
    assert sys.modules["bot.cli.context"] in modules and sys.modules["bot.cli.credits"] in modules
    for module in modules:  # each imported `now` by name
        monkeypatch.setattr(module, "now", lambda: moment)
    return moment


def assert_one_error_line(result: Result, *fragments: str, code: int = 1) -> None:
    """A failure: the exit status, one stderr line starting "error: ", no traceback anywhere."""
    assert result.code == code, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
