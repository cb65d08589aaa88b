"""`deskbot run` killed with SIGKILL in the middle of a send, then restarted: nothing lost, nothing doubled.

The bot is a real process (the CLI, the real runtime, SQLite); the fake Zulip
server runs in the test and kills the process at an exact point of the
conversation through its `before_request` hook.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.services import credits as credit_service
from bot.services import customers
from storage.db import make_engine, transaction, upgrade
from tests.fakes.zulip import FakeZulip
from tests.zulip.conftest import ALICE, BOT, BOT_KEY, ENGINEER, STREAM
from tests.zulip.test_end_to_end import assert_each_message_once

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BotProcess:
    def __init__(self, fake: FakeZulip, db_path: Path, log_path: Path) -> None:
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DESKBOT_DATABASE_URL": f"sqlite:///{db_path}",
            "ZULIP_SITE": fake.url,
            "ZULIP_EMAIL": BOT,
            "ZULIP_API_KEY": BOT_KEY,
            "DESKBOT_ZULIP_STREAM": STREAM,
            "DESKBOT_ENGINEERS": ENGINEER,
            "DESKBOT_HTTP_ADDR": f"127.0.0.1:{free_port()}",
            "DESKBOT_LOG_LEVEL": "DEBUG",
        }
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def bot_env(fake: FakeZulip, tmp_path: Path) -> Iterator[tuple[BotProcess, sa.Engine]]:
    db_path = tmp_path / "deskbot.db"
    url = f"sqlite:///{db_path}"
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    with transaction(engine) as session:
        customer, _code = customers.create_customer(session, "Alice Customer", None, "en", now)
        customers.link_identity(session, customer, "zulip", str(fake.user(ALICE).user_id), now)
        credit_service.grant_credits(session, customer, 3, now.date(), "test", now, months=12)
        # A cursor already stored: the DM written below is caught up even if it predates the queue.
        session.execute(
            sa.text("INSERT INTO channelcursor (key, value, updated_at) VALUES ('zulip:last_message_id', '0', :now)"),
            {"now": now},
        )
    bot = BotProcess(fake, db_path, tmp_path / "bot.log")
    try:
        yield bot, engine
    finally:
        bot.stop()
        engine.dispose()


def wait_until(predicate, timeout: float = 60.0, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("reached_zulip", [True, False], ids=["killed-after-post", "killed-before-post"])
def test_sigkill_mid_send_then_restart(
    fake: FakeZulip, bot_env: tuple[BotProcess, sa.Engine], reached_zulip: bool
) -> None:
    bot, engine = bot_env
    killed: list[str] = []

    def kill_at_first_send(method: str, path: str, params: dict[str, str]) -> None:
        if killed or method != "POST" or path != "/messages":
            return
        if reached_zulip:
            # Let this POST be stored, but the bot never hears back: killed while waiting.
            fake.drop_next(1, path="/messages", method="POST", after_processing=True)
        else:
            fake.drop_next(1, path="/messages", method="POST")
        bot.kill()
        killed.append(params["content"])

    fake.before_request = kill_at_first_send
    bot.start()
    wait_until(lambda: fake.requests_to("POST", "/register"), what="the bot to register")
    fake.post_dm(ALICE, "open The printer is on fire")
    wait_until(lambda: killed, what="the first send")
    assert bot.proc is not None and bot.proc.returncode == -signal.SIGKILL
    fake.before_request = None

    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, state, attempts FROM outbox ORDER BY id")).all()
    assert rows and all(state == "pending" for _id, state, _attempts in rows)
    # The dead process's lease on the rows (30 s) is over when the replacement claims them.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE outbox SET next_attempt_at = :t"), {"t": datetime.now(UTC) - timedelta(seconds=1)})

    bot.start()

    def all_sent() -> bool:
        with engine.connect() as conn:
            states = conn.execute(sa.text("SELECT state FROM outbox")).scalars().all()
        return bool(states) and all(s == "sent" for s in states)

    wait_until(all_sent, what="every outbox row to be sent after the restart")
    bot.stop()
    assert bot.proc.returncode == 0
    # No reference marks the messages (issue 13): the store's record of each row's message ids does.
    assert_each_message_once(engine, fake)
    assert [m.content.count("Incident #1 is open") for m in fake.sent_by(BOT, to=ALICE)] == [1]
    # The customer's DM was handled once: one incident, one credit.
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM incident")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM processedinbound")).scalar() == 1
