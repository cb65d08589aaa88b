"""Mastodon DM-to-reply latency and API requests per handled DM (issue 4, item 9).

    .venv/bin/python -m bench.mastodon_latency [--dms 60] [--burst 200] [--json]

Everything runs on this machine against the fake Mastodon server:

1. latency: DMs written one at a time; for each, the time from the DM being
   created on the server to the bot's reply being created there. Measured
   for deskbot (the real runtime: intake, router, SQLite store, outbox,
   dispatcher, MastodonChannel) and for a bare echo bot written with
   Mastodon.py's own streaming (`stream_user` + `status_post`), which does
   no work at all. Reports median and p95 of each and the ratio (target <= 1.25).
2. burst: `--burst` DMs from 20 customers written at once while deskbot runs;
   reports the API requests the fake served from the first DM to the last
   reply, per handled DM (target <= 1.2), and the 429s served (target 0).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mastodon import Mastodon, StreamListener

from adapters.mastodon import MastodonChannel
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import customers
from storage.db import transaction
from tests.fakes.mastodon import FakeMastodon

TOKEN = "bench-token"
CUSTOMERS = [f"customer{i}@remote.example" for i in range(20)]


class ReplyClock:
    """Times, on the server, when each DM and the reply to it were created."""

    def __init__(self, fake: FakeMastodon) -> None:
        self.created: dict[str, float] = {}
        self.replied: dict[str, float] = {}
        self.events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._bot_id = fake.bot.id if fake.bot else ""
        inner = fake.instance.on_event

        def on_event(account_id: str, event: str, payload: Any) -> None:
            if event == "update":
                now = time.perf_counter()
                with self._lock:
                    if payload["account"]["id"] == self._bot_id:
                        parent = payload.get("in_reply_to_id")
                        if parent in self.created and parent not in self.replied:
                            self.replied[parent] = now
                            self.events[parent].set()
                    else:
                        self.created[payload["id"]] = now
                        self.events[payload["id"]] = threading.Event()
            inner(account_id, event, payload)

        fake.instance.on_event = on_event

    def latency(self, status_id: str) -> float:
        return self.replied[status_id] - self.created[status_id]


def measure_sequential(fake: FakeMastodon, clock: ReplyClock, count: int, text: Callable[[int], str]) -> list[float]:
    samples = []
    for i in range(count + 3):
        status = fake.post_status(CUSTOMERS[i % len(CUSTOMERS)], text(i))
        if not clock.events[status["id"]].wait(10):
            raise RuntimeError(f"no reply to DM {i} within 10 s")
        if i >= 3:  # warm-up: connections, caches
            samples.append(clock.latency(status["id"]))
        time.sleep(0.02)
    return samples


def new_fake() -> FakeMastodon:
    fake = FakeMastodon(bot_acct="deskbot", bot_token=TOKEN, bot_policy={"for_private_mentions": "accept"}).start()
    for acct in CUSTOMERS:
        fake.add_account(acct)
    return fake


# -- the baseline: a bare echo bot on Mastodon.py ---------------------------------


def run_echo(count: int) -> list[float]:
    fake = new_fake()
    clock = ReplyClock(fake)
    api = Mastodon(access_token=TOKEN, api_base_url=fake.url, ratelimit_method="throw")
    me = api.account_verify_credentials()

    class Echo(StreamListener):
        def on_notification(self, notification: Any) -> None:
            status = notification.status
            if (
                notification.type == "mention"
                and status
                and status.visibility == "direct"
                and status.account.id != me.id
            ):
                api.status_post(f"@{status.account.acct} echo", in_reply_to_id=status.id, visibility="direct")

    handle = api.stream_user(Echo(), run_async=True, reconnect_async=True)
    time.sleep(0.3)
    try:
        return measure_sequential(fake, clock, count, lambda i: f"@deskbot ping {i}")
    finally:
        handle.close()
        fake.stop()


# -- deskbot -----------------------------------------------------------------------


def start_deskbot(fake: FakeMastodon, db_path: Path) -> tuple[Runtime, MastodonChannel]:
    settings = Settings(_env_file=None, DESKBOT_DATABASE_URL=f"sqlite:///{db_path}")  # type: ignore[call-arg]
    channel = MastodonChannel(fake.url, TOKEN)
    runtime = Runtime(settings, [channel])
    now = datetime.now(UTC)
    with transaction(runtime.engine) as session:
        for i, acct in enumerate(CUSTOMERS):
            customer, _code = customers.create_customer(session, f"Customer {i}", None, "en", now)
            customers.link_identity(session, customer, "mastodon", acct, now)
            customers.grant_credits(session, customer, 5, now.date(), "bench", now)
    runtime.start()
    deadline = time.monotonic() + 10
    while not channel.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    return runtime, channel


def run_deskbot(count: int, burst: int) -> tuple[list[float], dict[str, float]]:
    fake = new_fake()
    clock = ReplyClock(fake)
    with tempfile.TemporaryDirectory() as tmp:
        runtime, channel = start_deskbot(fake, Path(tmp) / "bench.db")
        try:
            time.sleep(0.5)
            samples = measure_sequential(fake, clock, count, lambda i: f"@deskbot status {i}")
            burst_figures = run_burst(fake, clock, burst)
        finally:
            runtime.stop(drain_seconds=2)
            fake.stop()
    return samples, burst_figures


def run_burst(fake: FakeMastodon, clock: ReplyClock, count: int) -> dict[str, float]:
    before_requests, before_429 = fake.stats.requests, fake.stats.ratelimited
    started = time.perf_counter()
    ids = [fake.post_status(CUSTOMERS[i % len(CUSTOMERS)], f"@deskbot credits {i}")["id"] for i in range(count)]
    for status_id in ids:
        if not clock.events[status_id].wait(max(30.0, count * 0.5)):
            raise RuntimeError("burst: a DM was not answered in time")
    elapsed = time.perf_counter() - started
    requests = fake.stats.requests - before_requests
    return {
        "dms": count,
        "seconds": round(elapsed, 2),
        "api_requests": requests,
        "requests_per_dm": round(requests / count, 3),
        "429s": fake.stats.ratelimited - before_429,
    }


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dms", type=int, default=60, help="sequential DMs per bot for the latency figures")
    parser.add_argument("--burst", type=int, default=200, help="DMs written at once for the requests figure")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    echo = run_echo(args.dms)
    desk, burst = run_deskbot(args.dms, args.burst)
    figures = {
        "echo_ms": {"median": statistics.median(echo) * 1000, "p95": percentile(echo, 0.95) * 1000},
        "deskbot_ms": {"median": statistics.median(desk) * 1000, "p95": percentile(desk, 0.95) * 1000},
        "burst": burst,
    }
    figures["ratio"] = {
        "median": figures["deskbot_ms"]["median"] / figures["echo_ms"]["median"],
        "p95": figures["deskbot_ms"]["p95"] / figures["echo_ms"]["p95"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        e, d, r = figures["echo_ms"], figures["deskbot_ms"], figures["ratio"]
        print(f"DM-to-reply latency over {args.dms} sequential DMs (ms):")
        print(f"  echo bot (Mastodon.py)  median {e['median']:7.1f}   p95 {e['p95']:7.1f}")
        print(f"  deskbot                 median {d['median']:7.1f}   p95 {d['p95']:7.1f}")
        print(f"  ratio                   median {r['median']:7.2f}x  p95 {r['p95']:7.2f}x   (target <= 1.25x)")
        print(
            f"burst of {burst['dms']} DMs: {burst['api_requests']} API requests = {burst['requests_per_dm']} per DM"
            f" (target <= 1.2), {burst['429s']} 429s, {burst['seconds']} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
