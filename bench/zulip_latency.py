"""Zulip DM-to-reply latency: deskbot's `status` against a bare echo bot (issue 3, item 9).

    .venv/bin/python -m bench.zulip_latency [--dms 200] [--postgres SERVER_URL] [--json]

Every party is a process of its own, as in a real deployment: the fake Zulip
server (real HTTP on 127.0.0.1), the bot being measured, and the customer —
this process — who writes DMs one at a time with the real `zulip` client and
waits on her own event queue for each answer. The latency of a DM is measured
on the server: from the DM being stored to the bot's reply being stored. Each
bot gets a fresh fake server built the same way.

* echo: `python -m bench._common echo-zulip` — a bare bot written with the
  same `zulip` client: `register`, a `get_events` long-poll loop,
  `send_message` of the text back, nothing else.
* deskbot: `deskbot run` (intake, router, store, outbox, ZulipChannel)
  answering `status` for a linked customer with an open incident. SQLite in a
  temporary directory by default; `--postgres URL` uses a fresh database
  created on that server (and dropped afterwards).

Prints the median and p95 of each, the ratio (target <= 1.25), and the API
requests deskbot made per DM.

(Until 2026-11-26 both bots ran as threads of this process, beside the
customer: the customer's own client work then competed with the bot for one
interpreter lock, which a deployed bot never has to share.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zulip

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/zulip_latency.py` as well as `-m bench.zulip_latency`
    sys.path.insert(0, str(REPO))

from bench._common import (  # noqa: E402
    BOT_EMAIL,
    BOT_KEY,
    BotProcess,
    database,
    deskbot_zulip,
    echo_process,
    seed_customers,
    wait_ready,
)

DESKBOT = (BOT_EMAIL, BOT_KEY)
CUSTOMER = ("alice@example.com", "alice-key")
ENGINEER = ("eng@example.com", "eng-key")
STREAM = "support"
WARMUP = 5


@contextmanager
def fake_server(tmp: Path) -> Iterator[str]:
    """The fake Zulip server as a child process; yields its URL."""
    config = {
        "port": 0,
        "heartbeat": 50,
        "users": [
            {"email": "owner@example.com", "full_name": "Owner", "role": 100},
            {"email": DESKBOT[0], "full_name": "Deskbot", "api_key": DESKBOT[1], "is_bot": True},
            {"email": CUSTOMER[0], "full_name": "Alice Customer", "api_key": CUSTOMER[1]},
            {"email": ENGINEER[0], "full_name": "Erin Engineer", "api_key": ENGINEER[1]},
        ],
        "streams": [{"name": STREAM, "invite_only": True, "subscribers": [DESKBOT[0], ENGINEER[0]]}],
    }
    path = tmp / "fake.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.zulip_server", "--config", str(path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["url"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def server_state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_fake/state") as resp:
        return json.load(resp)


class Customer:
    """Alice, writing with the real client and waiting for each answer on her own queue."""

    def __init__(self, url: str) -> None:
        self.client = zulip.Client(site=url, email=CUSTOMER[0], api_key=CUSTOMER[1], retry_on_errors=False)
        queue = self.client.register(event_types=["message"], narrow=[["is", "dm"]])
        self.queue_id, self.last = queue["queue_id"], queue["last_event_id"]
        self.me = self.client.get_profile()["user_id"]

    def ask(self, bot: str, text: str, timeout: float = 10.0) -> tuple[int, int]:
        """(id of the DM, id of the answer)."""
        sent = self.client.send_message({"type": "direct", "to": [bot], "content": text})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = self.client.get_events(queue_id=self.queue_id, last_event_id=self.last)
            for event in res.get("events", []):
                self.last = max(self.last, event["id"])
                message = event.get("message")
                if message and message["sender_email"] == bot and message["id"] > sent["id"]:
                    return sent["id"], message["id"]
        raise RuntimeError(f"no answer from {bot} within {timeout}s")


def measure(url: str, customer: Customer, bot: str, text: str, count: int) -> list[float]:
    pairs = [customer.ask(bot, text) for _ in range(count + WARMUP)][WARMUP:]
    stored = {m["id"]: m["stored_at"] for m in server_state(url)["messages"]}
    return [stored[answer] - stored[dm] for dm, answer in pairs]


def start_deskbot(url: str, database_url: str, tmp: Path) -> BotProcess:
    """`deskbot run` on the fake, the customer linked with credits; ready to answer."""
    seed_customers(database_url, "zulip", [CUSTOMER[0]], credits=5)
    bot = deskbot_zulip(url, database_url, tmp, "deskbot-latency").start()
    wait_ready(bot)
    return bot


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[max(0, round(len(ordered) * 0.95) - 1)] * 1000,
        "n": len(ordered),
    }


def run(dms: int, postgres: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with fake_server(tmp) as url:
            customer = Customer(url)
            echo = echo_process("zulip", url, tmp, name="echo-latency").start()
            try:
                wait_ready(echo)
                echo_samples = measure(url, customer, BOT_EMAIL, "status", dms)
            finally:
                echo.stop()

        with fake_server(tmp) as url, database(postgres, tmp, "deskbot_bench_latency") as database_url:
            customer = Customer(url)
            bot = start_deskbot(url, database_url, tmp)
            try:
                customer.ask(BOT_EMAIL, "open The printer is on fire")
                time.sleep(0.5)  # let the case-topic messages go out before measuring
                before = server_state(url)["requests_by_user"].get(BOT_EMAIL, 0)
                deskbot_samples = measure(url, customer, BOT_EMAIL, "status", dms)
                requests = server_state(url)["requests_by_user"].get(BOT_EMAIL, 0) - before
            finally:
                if bot.stop() != 0:
                    raise RuntimeError(f"deskbot did not stop cleanly:\n{bot.tail()}")
            last_answer = [m for m in server_state(url)["messages"] if m["sender"] == BOT_EMAIL][-1]["content"]
        if "#1" not in last_answer:
            raise RuntimeError(f"unexpected status answer: {last_answer!r}")

    echo_stats, deskbot_stats = summary(echo_samples), summary(deskbot_samples)
    return {
        "echo": echo_stats,
        "deskbot_status": deskbot_stats,
        "ratio_median": deskbot_stats["median_ms"] / echo_stats["median_ms"],
        "ratio_p95": deskbot_stats["p95_ms"] / echo_stats["p95_ms"],
        "deskbot_requests_per_dm": requests / (dms + WARMUP),
        "database": "postgresql" if postgres else "sqlite (temporary file)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dms", type=int, default=200, help="DMs measured per bot (default 200)")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server URL (a database is created and dropped)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    result = run(args.dms, args.postgres)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    e, d = result["echo"], result["deskbot_status"]
    print(f"Zulip DM-to-reply latency over the fake, {d['n']} DMs each, deskbot on {result['database']}")
    print(f"  echo bot        median {e['median_ms']:7.2f} ms   p95 {e['p95_ms']:7.2f} ms")
    print(f"  deskbot status  median {d['median_ms']:7.2f} ms   p95 {d['p95_ms']:7.2f} ms")
    print(
        f"  ratio           median {result['ratio_median']:7.2f} x    p95 {result['ratio_p95']:7.2f} x   (target <= 1.25)"
    )
    print(f"  deskbot API requests per DM: {result['deskbot_requests_per_dm']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
