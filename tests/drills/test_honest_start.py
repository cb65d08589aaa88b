"""`deskbot run` at first start, when a platform's host cannot be resolved or reached (issue 15, item 3).

A real child process each time. It must wait a bounded time (DESKBOT_STARTUP_TIMEOUT) for the
platform, saying once that it waits, and then exit non-zero with one ERROR line naming the setting
that holds the address — not retry forever with a warning every few seconds while /readyz says 503.

"Cannot be resolved" runs the bot in a network namespace of its own (`unshare -rn`): there, no DNS
server is reachable, so the name fails to resolve on this machine without a query leaving it.
"Cannot be reached" points at a port on 127.0.0.1 where nothing listens.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.zulip import Fault as ZulipFault

from .conftest import REPO, BotProcess, Fakes, free_port, wait_until

pytestmark = pytest.mark.timeout(180)

#: Short, so that the drill is quick (the default, 30 s, is checked at the end).
TIMEOUT = 3.0
#: Python start, migrations of an empty SQLite database, and the exit, on a slow CI machine.
SLACK = 12.0


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "DESKBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'deskbot.db'}",
        "DESKBOT_HTTP_ADDR": f"127.0.0.1:{free_port()}",
        "DESKBOT_LOG_FORMAT": "json",
        "DESKBOT_STARTUP_TIMEOUT": f"{TIMEOUT:g}",
    }
    env.update(settings)
    return env


def _run(env: dict[str, str], *, isolated: bool) -> tuple[int, float, list[dict[str, object]], str]:
    """(exit status, seconds taken, JSON log records, raw output) of one `deskbot run`."""
    command = [sys.executable, "-m", "bot.cli", "run"]
    if isolated:
        command = ["unshare", "--map-root-user", "--net", *command]
    began = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT + 60)
    took = time.monotonic() - began
    output = done.stdout + done.stderr
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return done.returncode, took, records, output


ZULIP = {"ZULIP_EMAIL": "deskbot-bot@example.com", "ZULIP_API_KEY": "zk-start-drill"}
MASTODON = {"MASTODON_ACCESS_TOKEN": "mt-start-drill"}


@pytest.mark.parametrize(
    ("settings", "isolated", "named", "why"),
    [
        pytest.param({**ZULIP, "ZULIP_SITE": "https://zulip.exmaple.invalid"}, True, "ZULIP_SITE", "host not found", id="zulip-unresolvable"),
        pytest.param({**ZULIP, "ZULIP_SITE": f"http://127.0.0.1:{free_port()}"}, False, "ZULIP_SITE", "connection refused", id="zulip-refused"),
        pytest.param({**MASTODON, "MASTODON_API_BASE_URL": "https://mastodon.exmaple.invalid"}, True, "MASTODON_API_BASE_URL", "host not found", id="mastodon-unresolvable"),
        pytest.param({**MASTODON, "MASTODON_API_BASE_URL": f"http://127.0.0.1:{free_port()}"}, False, "MASTODON_API_BASE_URL", "connection refused", id="mastodon-refused"),
    ],
)  # fmt: skip
def test_a_platform_that_cannot_be_resolved_or_reached_stops_start_up_with_one_line_naming_the_setting(
    tmp_path: Path, settings: dict[str, str], isolated: bool, named: str, why: str
) -> None:
    status, took, records, output = _run(_env(tmp_path, **settings), isolated=isolated)

    assert status == 1, output
    assert TIMEOUT - 0.5 <= took <= TIMEOUT + SLACK, f"exited after {took:.1f}s:\n{output}"
    errors = [r for r in records if r["level"] in ("error", "critical")]
    assert len(errors) == 1, output
    line = str(errors[0]["message"])
    assert line.startswith(f"cannot start: {named}: "), line
    assert why in line and "DESKBOT_STARTUP_TIMEOUT" in line, line
    assert "\n" not in line and "Traceback" not in output, output
    # The wait is said once, not at every try.
    warnings = [r for r in records if r["level"] == "warning"]
    assert len(warnings) == 1 and "trying again for up to 3s" in str(warnings[0]["message"]), output
    assert "deskbot running" not in output


def test_both_platforms_unresolvable_one_line_names_both_settings(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        **ZULIP,
        **MASTODON,
        ZULIP_SITE="https://zulip.exmaple.invalid",
        MASTODON_API_BASE_URL="https://mastodon.exmaple.invalid",
    )
    status, took, records, output = _run(env, isolated=True)

    assert status == 1, output
    assert took <= TIMEOUT + SLACK, f"exited after {took:.1f}s (the two waits run side by side):\n{output}"
    errors = [str(r["message"]) for r in records if r["level"] == "error"]
    assert len(errors) == 1, output
    assert "ZULIP_SITE: " in errors[0] and "MASTODON_API_BASE_URL: " in errors[0], errors[0]


def test_a_platform_that_answers_within_the_wait_starts_normally(tmp_path: Path) -> None:
    """Bounded, not hasty: a Zulip that drops the bot's first three connections is waited for."""
    fakes = Fakes().start()
    bot = None
    try:
        dropped = fakes.zulip.faults.add(ZulipFault("drop", remaining=3))
        env = {
            k: v for k, v in fakes.env(f"sqlite:///{tmp_path / 'deskbot.db'}").items() if not k.startswith("MASTODON_")
        }
        env["DESKBOT_STARTUP_TIMEOUT"] = "20"
        bot = BotProcess("deskbot", env, tmp_path / "deskbot.log").start()
        bot.wait_ready(40)
        assert dropped.served == 3
        records = bot.log_records()
        assert [r for r in records if r["level"] == "error"] == []
        waits = [r for r in records if "trying again for up to 20s" in str(r["message"])]
        assert len(waits) == 1, bot.log_tail()
        assert bot.terminate() == 0
    finally:
        if bot is not None and bot.alive:
            bot.terminate()
        fakes.stop()


def test_sigterm_during_the_wait_stops_at_once_without_an_error(tmp_path: Path) -> None:
    env = _env(tmp_path, **ZULIP, ZULIP_SITE="https://zulip.exmaple.invalid", DESKBOT_STARTUP_TIMEOUT="60")
    log_path = tmp_path / "deskbot.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["unshare", "--map-root-user", "--net", sys.executable, "-m", "bot.cli", "run"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "trying again for up to 60s" in log_path.read_text(), 30, "the wait to be said")
        proc.terminate()
        began = time.monotonic()
        status = proc.wait(15)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log_path.read_text()
    assert status == 0, output
    assert took < 5, f"took {took:.1f}s to stop"
    assert '"level": "error"' not in output and "deskbot stopped before it started" in output, output


def test_the_startup_timeout_setting_is_validated_and_defaults_to_thirty_seconds(tmp_path: Path) -> None:
    for value, problem in (("0", "greater than 0"), ("soon", "valid number"), ("7200", "less than or equal to 3600")):
        env = _env(tmp_path, **ZULIP, ZULIP_SITE="https://zulip.example.com", DESKBOT_STARTUP_TIMEOUT=value)
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert len(lines) == 1 and "DESKBOT_STARTUP_TIMEOUT" in lines[0] and problem in lines[0], lines
    from bot.config import Settings

    assert Settings(_env_file=None).startup_timeout == 30.0
