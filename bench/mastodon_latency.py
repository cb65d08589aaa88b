"""Mastodon DM-to-reply latency: deskbot's `status` beside a bare echo bot, over a simulated network (issue 15, item 9).

    .venv/bin/python -m bench.mastodon_latency [--dms 150] [--rtt 0,20] [--repeat 1] [--postgres SERVER_URL]
        [--echo sse|mastodonpy] [--floor] [--json]

Every party is a process of its own, as in a real deployment: the fake
Mastodon server (real HTTP on 127.0.0.1, `python -m tests.fakes.mastodon`),
deskbot, the echo bot, and the customer (this process, writing through the
fake's control endpoint, as a person on another instance whose statuses
arrive by federation). Both bots run at the same time on one fake, as two
accounts of the instance (`@deskbot`, `@echo`), and the customer's DMs
alternate between them, so that whatever else the machine is doing falls on
both alike.

The fake adds a network round trip (`--rtt`, in milliseconds) for every
client: each REST request waits half of it before it is handled and half
before its answer leaves; each streamed event leaves half of it after it
happened. 0 is bare loopback. The customer writes at her own pace, not
waiting for answers: the gaps between her DMs are random (exponential, by
default with a mean of two round trips plus 30 ms), and a DM may arrive
while a bot is sending.

The latency of a DM is measured on the server: from the DM being stored to
the bot's reply to it (`in_reply_to_id`) being stored.

* echo: `python -m bench._common echo-mastodon --sender-thread --sse` -- a
  bare bot written with the libraries deskbot's channel uses: catch up
  `GET /notifications` (Mastodon.py), then read
  `/api/v1/streaming/user/notification` line by line with httpx, as deskbot's
  channel does, each DM's answer posted (Mastodon.py's `status_post`) by a
  second thread with a client of its own, so the stream is read while it
  sends. `--echo mastodonpy` reads the stream with Mastodon.py's `stream_user`
  instead, the way a Mastodon.py bot would; it reads the response a byte at a
  time and builds Mastodon.py's entity classes, milliseconds per event, so it
  is the slower, more lenient baseline.
* deskbot: `deskbot run` (`python -m bench._common deskbot-lifted`: its
  posting budget raised like the fake's) answering `status` for a linked
  customer with an open incident: intake, router, store, outbox,
  MastodonChannel (its own SSE reader on `/api/v1/streaming/user/notification`).
  SQLite in a temporary directory by default; `--postgres URL` uses a fresh
  database created on that server (and dropped afterwards).

* floor (`--floor`): a third bot, the echo bot committing first what SPEC
  section 7 asks of any bot; what it is and why: bench/floor_store.py.

Prints, per round trip and run, the median and p95 of each, their ratios
(targets: median <= 1.10 at 20 ms, <= 1.5 on loopback), the API requests
each bot made per DM and the load average.
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

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/mastodon_latency.py` as well as `-m bench.mastodon_latency`
    sys.path.insert(0, str(REPO))

from bench._common import (  # noqa: E402
    LIFTED,
    MASTODON_TOKEN,
    base_env,
    compare,
    deskbot_mastodon,
    free_port,
    latency_arguments,
    latency_line,
    latency_runs,
    paced,
    seed_customers,
    side_by_side,
    stores,
)

DESKBOT = "deskbot"
ECHO, ECHO_TOKEN = "echo", "echo-token"
FLOOR, FLOOR_TOKEN = "floor", "floor-token"
CUSTOMER = "alice@remote.example"
WARMUP = 5
TARGETS = {0: 1.5, 20: 1.10}


def control(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The fake's `/_fake/*` endpoints (no simulated round trip, not counted as API requests)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="GET" if body is None else "POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


@contextmanager
def fake_server(tmp: Path, round_trip_ms: float) -> Iterator[str]:
    """The fake Mastodon server as a child process, with the round trip; yields its URL."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "tests.fakes.mastodon",
        "--port",
        str(port),
        "--bot-acct",
        DESKBOT,
        "--token",
        MASTODON_TOKEN,
        "--account",
        f"{ECHO}:{ECHO_TOKEN}",
        "--account",
        f"{FLOOR}:{FLOOR_TOKEN}",
        "--account",
        f"{CUSTOMER}:alice-token",
        "--api-limit",
        str(LIFTED),
        "--status-limit",
        str(LIFTED),
        "--private-mentions",
        "accept",
        "--round-trip",
        str(round_trip_ms / 1000),
    ]
    with (tmp / f"fake-{port}.log").open("ab") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=base_env(), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                control(url, "/_fake/stats")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the fake Mastodon did not start on {url}") from None
                time.sleep(0.05)
        # Strangers' DMs reach the echo bot too (Mastodon >= 4.3 filters them by default).
        for acct in (ECHO, FLOOR):
            control(url, "/_fake/policy", {"acct": acct, "for_private_mentions": "accept"})
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def post(url: str, text: str) -> str:
    return control(url, "/_fake/statuses", {"from": CUSTOMER, "text": text, "visibility": "direct"})["id"]


def replies(url: str, bot: str) -> dict[str, dict[str, Any]]:
    """The bot's statuses by the status they answer (the first part of a thread)."""
    found: dict[str, dict[str, Any]] = {}
    for posted in control(url, f"/_fake/posted?acct={bot}"):
        parent = posted["in_reply_to_id"]
        if parent and parent not in found:
            found[parent] = posted
    return found


def wait_replies(url: str, bot: str, status_ids: list[str], timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = replies(url, bot)
        missing = [s for s in status_ids if s not in found]
        if not missing:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"{bot} left {len(missing)} of {len(status_ids)} DMs unanswered within {timeout}s")
        time.sleep(0.1)


def run_once(args: argparse.Namespace, round_trip_ms: float, seed: int, tmp: Path) -> dict[str, Any]:
    """Both bots (with `--floor`, the three) on one fake; the customer's DMs take turns between them."""
    rng = random.Random(seed)
    count = args.dms
    load_before = os.getloadavg()[0]
    name = f"deskbot_bench_mlatency_{seed}_{round_trip_ms:g}".replace(".", "_")
    with (
        fake_server(tmp, round_trip_ms) as url,
        stores(args.postgres, tmp, name, args.floor) as (database_url, floor_url),
    ):
        seed_customers(database_url, "mastodon", [CUSTOMER], credits=5)
        desk = deskbot_mastodon(url, database_url, tmp, f"deskbot-mlatency-{round_trip_ms:g}-{seed}").start()
        reader = ["--sse"] if args.echo == "sse" else []
        echo = ["--token", ECHO_TOKEN, *reader]
        floor = ["--token", FLOOR_TOKEN, *reader, "--store", floor_url] if args.floor else None
        with side_by_side(desk, "mastodon", url, tmp, f"mlatency-{seed}", echo, floor) as others:
            bots = [DESKBOT, ECHO, FLOOR][: 1 + len(others)]
            opened = post(url, f"@{DESKBOT} open The printer is on fire")
            wait_replies(url, DESKBOT, [opened])
            time.sleep(0.5)
            stats = control(url, "/_fake/stats")["by_account"]
            before = {bot: stats.get(bot, 0) for bot in bots}
            asked: dict[str, list[str]] = {bot: [] for bot in bots}
            for bot in paced(rng, bots, count + WARMUP, round_trip_ms, args.gap):
                asked[bot].append(post(url, f"@{bot} status"))
            answered = {bot: wait_replies(url, bot, ids) for bot, ids in asked.items()}
            stats = control(url, "/_fake/stats")["by_account"]
            requests = {bot: stats.get(bot, 0) - before[bot] for bot in bots}
            stored = {p["id"]: p["stored_at"] for p in control(url, f"/_fake/posted?acct={CUSTOMER}")}
    samples = {
        who: [answered[bot][s]["stored_at"] - stored[s] for s in asked[bot][WARMUP:]]
        for who, bot in zip(("deskbot", "echo", "floor"), bots, strict=False)
    }
    last = answered[DESKBOT][asked[DESKBOT][-1]]["text"]
    if "#1" not in last:
        raise RuntimeError(f"unexpected status answer: {last!r}")
    return {
        "round_trip_ms": round_trip_ms,
        **compare(samples),
        "deskbot_requests_per_dm": requests[DESKBOT] / (count + WARMUP),
        "echo_requests_per_dm": requests[ECHO] / (count + WARMUP),
        "load_average": [load_before, os.getloadavg()[0]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    latency_arguments(parser)
    parser.add_argument(
        "--echo",
        choices=("sse", "mastodonpy"),
        default="sse",
        help="how the echo bot reads the stream: as deskbot does, httpx line by line (sse, the default),"
        " or with Mastodon.py's stream_user (mastodonpy)",
    )
    args = parser.parse_args(argv)
    result = {
        "database": "postgresql" if args.postgres else "sqlite (temporary file)",
        "echo": "httpx SSE reader" if args.echo == "sse" else "Mastodon.py stream_user",
        "dms": args.dms,
        "runs": latency_runs(args, run_once),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"Mastodon DM-to-reply latency, both bots side by side, {args.dms} DMs each per run,"
        f" deskbot on {result['database']}, echo bot reading with {result['echo']}"
    )
    for r in result["runs"]:
        print(
            latency_line(r, TARGETS),
            f" req/DM {r['deskbot_requests_per_dm']:.2f} (echo {r['echo_requests_per_dm']:.2f})"
            f"  load {r['load_average'][0]:.2f}-{r['load_average'][1]:.2f}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
