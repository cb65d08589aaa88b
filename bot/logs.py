"""Logging: readable on a terminal, JSON lines when DESKBOT_LOG_FORMAT=json; secrets scrubbed.

Every line goes to stderr, whatever the format: stdout belongs to the commands'
output (records, `--json` documents), and a container's stderr is collected
like its stdout. Console lines start with the local date and time and its UTC
offset (`2026-03-10 14:02:11 +0000`); JSON lines carry `time` in UTC.

Context about a message (channel, incident and outbox ids) travels in the
`extra` of each log call and is printed with the line. Every secret value
from the settings is replaced by `***` in the final output, whatever logged it
(including third-party libraries and tracebacks).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

#: Fields every log line of the current thread carries (the dispatcher sets the outbox row being
#: sent, so the channels' own lines about that send name it without knowing about it).
log_context: ContextVar[dict[str, object] | None] = ContextVar("deskbot_log_context", default=None)


class _Scrubber(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _context(record: logging.LogRecord) -> dict[str, object]:
    fields = dict(log_context.get() or {})
    fields.update((k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_"))
    return fields


class JsonFormatter(logging.Formatter):
    def __init__(self, scrubber: _Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return self.scrubber.scrub(json.dumps(entry, default=str, ensure_ascii=False))


class ConsoleFormatter(logging.Formatter):
    def __init__(self, scrubber: _Scrubber) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S %z")
        self.scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if context:
            line += "  " + " ".join(f"{k}={v}" for k, v in context.items())
        return self.scrubber.scrub(line)


def configure(fmt: str = "console", level: str = "INFO", secrets: list[str] | None = None, stream=None) -> None:  # noqa: ANN001
    """Install the one root handler, on stderr unless `stream` says otherwise (replacing any earlier one)."""
    scrubber = _Scrubber(secrets or [])
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(scrubber) if fmt == "json" else ConsoleFormatter(scrubber))
    handler.set_name("deskbot")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "deskbot"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries: their DEBUG lines can carry request headers, and httpx logs every request
    # at INFO ("HTTP Request: GET …/streaming/…": a line per stream connection and file fetched).
    for noisy in ("urllib3", "httpx", "httpcore", "requests"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
