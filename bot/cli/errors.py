"""The CLI's one error path: a command that fails is one line on stderr and an exit status, never a traceback.

The line starts with "error: ", names what failed in a short, neutral sentence
and has the settings' secrets scrubbed; the exit status is 2 for bad usage, 1
otherwise. With `DESKBOT_LOG_FORMAT=json` the line is a JSON object instead, shaped
as the log lines are (`bot.logs`: `time`, `level` "error", `logger`, `message`),
so that whatever collects the logs reads it; a bad DESKBOT_LOG_FORMAT itself is
told in plain text. The traceback goes to the `deskbot.cli` logger at DEBUG
(`DESKBOT_LOG_LEVEL=DEBUG` shows it on stderr), except for a bad setting: its one
line says all there is.
"""

from __future__ import annotations

import ast
import errno
import logging
import re
import sys

import typer
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from bot.cli.context import CliError, scrub
from bot.config import SettingsError, log_output, settings_log
from bot.logs import JsonFormatter, _Scrubber
from bot.services.customers import CustomerError
from storage.db import OlderSchema, UnknownRevision

log = logging.getLogger("deskbot.cli")


def run_command(app: typer.Typer, argv: list[str]) -> int:
    """Run one command of `app` as `deskbot`; its exit status, a failure told in one line on stderr."""
    json_lines = _configure_logging() == "json"
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="deskbot", standalone_mode=False)
    except Exception as exc:
        if _is_no_args_help(exc):
            # Typer has already printed the help (Rich); plain Click leaves it in the message.
            if exc.format_message().strip():
                typer.echo(exc.format_message(), err=True)
            return 2
        if not isinstance(exc, SettingsError):  # its line names the setting: a traceback adds nothing
            log.debug("command failed", exc_info=exc)
        message, status = _describe(exc)
        _tell(" ".join(scrub(message).split()), json_lines=json_lines)
        return status
    return result if isinstance(result, int) else 0


def _tell(message: str, *, json_lines: bool) -> None:
    """The failure's one line on stderr: "error: …", or a JSON log line (level "error")."""
    if not json_lines:
        typer.echo("error: " + message, err=True)
        return
    record = logging.LogRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    typer.echo(scrub(JsonFormatter(_Scrubber([])).format(record)), err=True)


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
    if isinstance(exc, UnknownRevision | OlderSchema):
        return f"database migrations: {exc}", 1
    if isinstance(exc, OperationalError):
        # Most often the server cannot be reached: name the setting that says where it is (SPEC §6),
        # as a platform that cannot be reached is told. The driver's text names the host, and no
        # piece of the password (`scrub`): the URL itself would add nothing.
        return f"cannot use the database: {_first_line(exc.orig)} (DESKBOT_DATABASE_URL)", 1
    if isinstance(exc, DBAPIError):
        return f"database error: {_first_line(exc.orig)}", 1
    if _is_migration_error(exc):
        return f"database migrations: {_first_line(exc)}", 1
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {_first_line(exc)}", 1
    if isinstance(exc, OSError) and (bind := _BIND_FAILED.fullmatch(exc.strerror or "")):
        return _bind_failure(exc, bind), 1
    if isinstance(exc, OSError):
        target = f"{exc.filename}: " if exc.filename else ""
        return f"{target}{exc.strerror or exc}", 1
    return f"unexpected {type(exc).__name__}: {_first_line(exc)} (DESKBOT_LOG_LEVEL=DEBUG shows the details)", 1


#: How `socket.create_server` words a failure to listen (the health server, on DESKBOT_HTTP_ADDR:
#: the only address deskbot listens on).
_BIND_FAILED = re.compile(r"(?P<why>.*) \(while attempting to bind on address (?P<address>\(.*\))\)")
_BIND_HINTS = {
    errno.EADDRINUSE: "another process listens there",
    errno.EADDRNOTAVAIL: "no network interface of this host has that address",
    errno.EACCES: "a port below 1024 needs privileges",
}


def _bind_failure(exc: OSError, bind: re.Match[str]) -> str:
    try:
        host, port = ast.literal_eval(bind["address"])[:2]
        where = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    except (ValueError, SyntaxError, TypeError):
        where = bind["address"]
    hint = _BIND_HINTS.get(exc.errno or 0)
    return f"DESKBOT_HTTP_ADDR: cannot listen on {where}: {bind['why']}{f' ({hint})' if hint else ''}"


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


def _configure_logging() -> str | None:
    """Only the CLI's own logger and the settings' (`deskbot run` sets up the process-wide logging
    itself, after the settings are read: their warnings, an unknown name in the environment, come
    before it), from DESKBOT_LOG_FORMAT and DESKBOT_LOG_LEVEL as the settings read them; the format
    (None: not set, or not one the settings take)."""
    fmt, level = log_output()
    plain = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    for logger in (log, settings_log):
        logger.setLevel(level or "INFO")
        logger.propagate = False
        handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
        if handler is None:
            handler = _StderrHandler()
            logger.addHandler(handler)
        handler.setFormatter(JsonFormatter(_Scrubber([])) if fmt == "json" else plain)
    return fmt
