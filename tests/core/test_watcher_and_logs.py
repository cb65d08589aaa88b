"""Response-target warnings (each once, across restarts), log output, and `deskbot run` refusals."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

from bot.logs import configure
from bot.services.outgoing import Outgoing
from bot.watcher import check_targets
from storage.db import transaction
from tests.desk import Desk


def test_target_warning_and_miss_are_posted_once_each_even_after_a_restart(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Slow disks")  # Wed 10:00 -> due Fri 10:00

    def run_watcher(d: Desk) -> list[tuple[int, str]]:
        with transaction(d.engine) as s:
            posted = check_targets(Outgoing(s, clock()), d.runtime.deployment)
        d.runtime.dispatcher.drain("console")
        return posted

    assert run_watcher(desk) == []
    clock.advance(days=1, hours=4)  # Thu 14:00: 6 business hours left
    assert run_watcher(desk) == []
    clock.advance(hours=3, minutes=30)  # Thu 17:30: 2.5 business hours left
    assert run_watcher(desk) == [(1, "warning")]
    assert run_watcher(desk) == []
    restarted = Desk(engine, db_url, clock)
    assert run_watcher(restarted) == []
    clock.advance(hours=16, minutes=31)  # Fri 10:01
    assert run_watcher(restarted) == [(1, "missed")]
    assert run_watcher(desk) == []
    due = "Friday, 4 December 2026 at 10:00 (Lisbon time)"
    assert f"Response due {due}: 2 h 30 min of service time left." in desk.out.getvalue()
    assert f"Response target missed: the answer was due {due}." in restarted.out.getvalue()
    # An engineer reply clears the clock: no more notices.
    restarted.engineer("/reply 1 looking")
    clock.advance(days=5)
    assert run_watcher(restarted) == []


def test_json_logs_carry_context_and_never_secrets():
    stream = io.StringIO()
    configure("json", "DEBUG", ["s3cr3t-api-key"], stream=stream)
    log = logging.getLogger("deskbot.test")
    log.info("sent with key s3cr3t-api-key", extra={"channel": "zulip", "outbox_id": 7, "incident_id": 3})
    try:
        raise RuntimeError("boom s3cr3t-api-key")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["channel"] == "zulip" and lines[0]["outbox_id"] == 7 and lines[0]["incident_id"] == 3
    assert "s3cr3t-api-key" not in stream.getvalue()
    assert "***" in lines[0]["message"] and "traceback" in lines[1]
    configure("console", "WARNING")


def _deskbot(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        env={**os.environ, "PYTHONPATH": os.getcwd(), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_without_any_channel_says_so_and_exits_non_zero(tmp_path, db_url):
    env = {"DESKBOT_DATABASE_URL": db_url}
    for name in (
        "ZULIP_SITE",
        "ZULIP_EMAIL",
        "ZULIP_API_KEY",
        "ZULIP_CONFIG",
        "MASTODON_API_BASE_URL",
        "MASTODON_ACCESS_TOKEN",
    ):
        env[name] = ""
    result = _deskbot("run", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "no channel configured" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_lines_logged_during_a_send_name_the_outbox_row():
    from bot.logs import log_context

    stream = io.StringIO()
    configure("json", "INFO", [], stream=stream)
    log_context.set({"channel": "zulip", "outbox_id": 12, "incident_id": 4})
    try:
        logging.getLogger("deskbot.zulip").warning("POST messages failed; retry 1")
    finally:
        log_context.set(None)
    logging.getLogger("deskbot.zulip").warning("unrelated")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["channel"], first["outbox_id"], first["incident_id"]) == ("zulip", 12, 4)
    assert "outbox_id" not in second
    configure("console", "WARNING")


def test_http_libraries_log_only_warnings_at_info():
    """httpx logs every request at INFO ("HTTP Request: GET …"): a line per Mastodon stream
    connection and per file fetched would bury what operators read. Their warnings stay."""
    stream = io.StringIO()
    configure("console", "INFO", [], stream=stream)
    try:
        for name in ("httpx", "httpcore", "urllib3", "requests"):
            logging.getLogger(name).info("HTTP Request: GET http://127.0.0.1/api/v1/streaming")
            logging.getLogger(name).warning("%s: connection pool is full", name)
        logging.getLogger("deskbot").info("deskbot running")
    finally:
        configure("console", "WARNING")
    out = stream.getvalue()
    assert "HTTP Request" not in out and "deskbot running" in out
    assert [n for n in ("httpx", "httpcore", "urllib3", "requests") if f"{n}: connection pool is full" not in out] == []
