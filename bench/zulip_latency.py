"""Zulip DM-to-reply latency: deskbot's `status` beside a bare echo bot, over a simulated network (issue 15, item 9).

    .venv/bin/python -m bench.zulip_latency [--dms 150] [--rtt 0,20] [--repeat 1] [--postgres SERVER_URL] [--floor] [--json]

Every party is a process of its own, as in a real deployment: the fake Zulip
server (real HTTP on 127.0.0.1), deskbot (`deskbot run`), the echo bot, and
the customer (this process, with the real `zulip` client). Both bots run at
the same time on one fake server, as two bot users, and the customer's DMs
alternate between them, so that whatever else the machine is doing falls on
both alike.

The fake adds a network round trip to every API request (`--rtt`, in
milliseconds; half before the request is handled, half before its answer
leaves), for every client: the bots' long-polls and sends, the customer's.
0 is bare loopback. The customer writes at her own pace, not waiting for
answers, as independent customers do: the gaps between her DMs are random
(exponential, by default with a mean of two round trips plus 30 ms, so each
bot gets a DM every four round trips plus 60 ms on average), and a DM may
arrive while a bot is sending or polling again.

The latency of a DM is measured on the server: from the DM being stored to
the bot's answer being stored; the k-th answer of a bot to the customer
answers her k-th DM to it (both bots answer in order).

* echo: `python -m bench._common echo-zulip --sender-thread` -- a bare bot
  written with the same `zulip` client: `register`, a `get_events` long-poll
  loop kept outstanding while a second thread sends each DM's text back.
* deskbot: `deskbot run` (intake, router, store, outbox, ZulipChannel)
  answering `status` for a linked customer with an open incident. SQLite in a
  temporary directory by default; `--postgres URL` uses a fresh database
  created on that server (and dropped afterwards).
* floor (`--floor`): a third bot, the echo bot committing first what SPEC
  section 7 asks of any bot; what it is and why: bench/floor_store.py.

Prints, per round trip and run, the median and p95 of each, their ratios
(targets: median <= 1.10 at 20 ms, <= 1.5 on loopback) and the API requests
deskbot made per DM.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
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
    compare,
    deskbot_zulip,
    latency_arguments,
    latency_line,
    latency_runs,
    paced,
    seed_customers,
    side_by_side,
    stores,
)

DESKBOT = (BOT_EMAIL, BOT_KEY)
ECHO = ("echo-bot@example.com", "echo-key")
FLOOR = ("floor-bot@example.com", "floor-key")
CUSTOMER = ("alice@example.com", "alice-key")
ENGINEER = ("eng@example.com", "eng-key")
STREAM = "support"
WARMUP = 5
TARGETS = {0: 1.5, 20: 1.10}


@contextmanager
def fake_server(tmp: Path, round_trip_ms: float) -> Iterator[str]:
    """The fake Zulip server as a child process, with the round trip; yields its URL."""
    config = {
        "port": 0,
        "heartbeat": 50,
        "round_trip": round_trip_ms / 1000,
        "users": [
            {"email": "owner@example.com", "full_name": "Owner", "role": 100},
            {"email": DESKBOT[0], "full_name": "Deskbot", "api_key": DESKBOT[1], "is_bot": True},
            {"email": ECHO[0], "full_name": "Echo", "api_key": ECHO[1], "is_bot": True},
            {"email": FLOOR[0], "full_name": "Floor", "api_key": FLOOR[1], "is_bot": True},
            {"email": CUSTOMER[0], "full_name": "Alice Customer", "api_key": CUSTOMER[1]},
            {"email": ENGINEER[0], "full_name": "Erin Engineer", "api_key": ENGINEER[1]},
        ],
        "streams": [{"name": STREAM, "invite_only": True, "subscribers": [DESKBOT[0], ENGINEER[0]]}],
    }
    path = tmp / "fake.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.zulip", "--config", str(path)],
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


def dms(state: dict[str, Any], sender: str, to: str, after: int) -> list[dict[str, Any]]:
    """Direct messages from `sender` to `to` newer than message `after`, oldest first."""
    return [
        m
        for m in state["messages"]
        if m["id"] > after and m["stream"] is None and m["sender"] == sender and sorted(m["to"]) == sorted([sender, to])
    ]


def wait_answers(url: str, bot: str, count: int, after: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = server_state(url)
        if len(dms(state, bot, CUSTOMER[0], after)) >= count:
            return state
        if time.monotonic() > deadline:
            raise RuntimeError(f"{bot} answered fewer than {count} DMs within {timeout}s")
        time.sleep(0.1)


def run_once(args: argparse.Namespace, round_trip_ms: float, seed: int, tmp: Path) -> dict[str, Any]:
    """Both bots (with `--floor`, the three) on one fake; the customer's DMs take turns between them."""
    rng = random.Random(seed)
    count = args.dms
    name = f"deskbot_bench_latency_{seed}_{round_trip_ms:g}".replace(".", "_")
    with (
        fake_server(tmp, round_trip_ms) as url,
        stores(args.postgres, tmp, name, args.floor) as (database_url, floor_url),
    ):
        seed_customers(database_url, "zulip", [CUSTOMER[0]], credits=5)
        desk = deskbot_zulip(url, database_url, tmp, f"deskbot-latency-{round_trip_ms:g}-{seed}").start()
        echo = ["--email", ECHO[0], "--key", ECHO[1]]
        floor = ["--email", FLOOR[0], "--key", FLOOR[1], "--store", floor_url] if args.floor else None
        with side_by_side(desk, "zulip", url, tmp, f"latency-{seed}", echo, floor) as others:
            bots = [DESKBOT[0], ECHO[0], FLOOR[0]][: 1 + len(others)]
            customer = zulip.Client(site=url, email=CUSTOMER[0], api_key=CUSTOMER[1], retry_on_errors=False)
            mark = customer.send_message(
                {"type": "direct", "to": [DESKBOT[0]], "content": "open The printer is on fire"}
            )
            wait_answers(url, DESKBOT[0], 1, mark["id"] - 1)
            time.sleep(0.5)  # the case-topic messages go out before measuring
            mark = server_state(url)["messages"][-1]["id"]
            before = server_state(url)["requests_by_user"].get(DESKBOT[0], 0)
            for bot in paced(rng, bots, count + WARMUP, round_trip_ms, args.gap):
                customer.send_message({"type": "direct", "to": [bot], "content": "status"})
            for bot in bots:
                state = wait_answers(url, bot, count + WARMUP, mark)
            requests = state["requests_by_user"].get(DESKBOT[0], 0) - before
    samples = {}
    for who, bot in zip(("deskbot", "echo", "floor"), bots, strict=False):
        asked = [m for m in dms(state, CUSTOMER[0], bot, mark)]
        answered = dms(state, bot, CUSTOMER[0], mark)
        pairs = list(zip(asked, answered, strict=False))[WARMUP:]
        samples[who] = [a["stored_at"] - q["stored_at"] for q, a in pairs]
    last = dms(state, DESKBOT[0], CUSTOMER[0], mark)[-1]["content"]
    if "#1" not in last:
        raise RuntimeError(f"unexpected status answer: {last!r}")
    return {
        "round_trip_ms": round_trip_ms,
        **compare(samples),
        "deskbot_requests_per_dm": requests / (count + WARMUP),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    latency_arguments(parser)
    args = parser.parse_args(argv)
    result = {
        "database": "postgresql" if args.postgres else "sqlite (temporary file)",
        "dms": args.dms,
        "runs": latency_runs(args, run_once),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"Zulip DM-to-reply latency, both bots side by side, {args.dms} DMs each per run, deskbot on {result['database']}"
    )
    for r in result["runs"]:
        print(latency_line(r, TARGETS) + f"  req/DM {r['deskbot_requests_per_dm']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
