"""The CLI's one error path: a command that fails is one line on stderr and an exit status, never a traceback.

The line starts with "error: ", names what failed in a short, neutral sentence
and has the settings' secrets scrubbed; the exit status is 2 for bad usage, 1
otherwise. The traceback goes to the `deskbot.cli` logger at DEBUG
(`DESKBOT_LOG_LEVEL=DEBUG` shows it on stderr).
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from bot.cli.context import CliError, scrub
from bot.config import SettingsError
from bot.services.customers import CustomerError

log = logging.getLogger("deskbot.cli")


def run_command(app: typer.Typer, argv: list[str]) -> int:
    """Run one command of `app` as `deskbot`; its exit status, a failure told in one line on stderr."""
    _configure_logging()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="deskbot", standalone_mode=False)
    except Exception as exc:
        if _is_no_args_help(exc):
            # Typer has already printed the help (Rich); plain Click leaves it in the message.
            if exc.format_message().strip():
                typer.echo(exc.format_message(), err=True)
            return 2
        log.debug("command failed", exc_info=exc)
        message, status = _describe(exc)
        typer.echo("error: " + " ".join(scrub(message).split()), err=True)
        return status
    return result if isinstance(result, int) else 0


def _describe(exc: Exception) -> tuple[str, int]:
    """A short, neutral sentence for the person, and the exit status."""
    if isinstance(exc, typer.TyperException):
        # Since 0.29 Typer raises its own copy of Click's exceptions, all TyperExceptions: usage
        # errors (exit code 2) carry the context of the command they are about.
        ctx = getattr(exc, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if exc.exit_code == 2 and ctx is not None else ""
        # Typer checks a choice through pydantic, whose "Value error, " is no word for a person.
        return exc.format_message().replace("Value error, ", "") + hint, exc.exit_code
    if isinstance(exc, typer.Abort):
        return "aborted", 1
    if isinstance(exc, SettingsError | CliError | CustomerError):
        return str(exc), 1
    if isinstance(exc, OperationalError):
        return f"cannot use the database: {_first_line(exc.orig)}", 1
    if isinstance(exc, DBAPIError):
        return f"database error: {_first_line(exc.orig)}", 1
    if _is_migration_error(exc):
        return f"database migrations: {_first_line(exc)}", 1
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {_first_line(exc)}", 1
    if isinstance(exc, OSError):
        target = f"{exc.filename}: " if exc.filename else ""
        return f"{target}{exc.strerror or exc}", 1
    return f"unexpected {type(exc).__name__}: {_first_line(exc)} (DESKBOT_LOG_LEVEL=DEBUG shows the details)", 1


def _is_no_args_help(exc: Exception) -> bool:
    """A group run without a command: Typer printed its help and raised Click's NoArgsIsHelpError.

    Known by name, as Typer itself knows it (`typer.rich_utils`): the class lives in Typer's
    private copy of Click, which deskbot does not import (tests/test_dependencies.py).
    """
    return isinstance(exc, typer.TyperException) and type(exc).__name__ == "NoArgsIsHelpError"


def _is_migration_error(exc: Exception) -> bool:
    # Alembic is imported only when a migration runs; without it, no Alembic error can be raised.
    alembic_util = sys.modules.get("alembic.util")
    return alembic_util is not None and isinstance(exc, alembic_util.CommandError)


def _first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else type(value).__name__


class _StderrHandler(logging.StreamHandler):
    """Writes to the current sys.stderr (tests swap it), with secrets scrubbed."""

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001
        pass

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def _configure_logging() -> None:
    # Only the CLI's own logger: `deskbot run` sets up the process-wide logging itself.
    level = os.environ.get("DESKBOT_LOG_LEVEL", "INFO").upper()
    log.setLevel(level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO")
    log.propagate = False
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
