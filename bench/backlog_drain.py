"""Backlog drain: DMs queued while the bot was down, answered once it starts (issue 5, item 8).

    PYTHONPATH=. .venv/bin/python bench/backlog_drain.py [--platform zulip|mastodon|both]
        [--dms 1000] [--customers 100] [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres] [--json]

For each platform, on a fresh fake server (in this process; every bot is a
process of its own, see bench/_common.py):

* deskbot: the store holds `--customers` customers, each linked to a chat
  account and with credits. deskbot runs once while each customer opens an
  incident (so it has a cursor and every customer an open incident), and is
  stopped with SIGTERM. Then `--dms` DMs saying `status` are written (round
  robin over the customers), deskbot is started again, and the clock runs
  from the start of the process to the moment the last answer is stored on
  the fake. Every answer is checked to be a real status listing.
* echo: the same backlog on a fresh fake, answered by a bare echo bot
  written with the same client library (bench/_common.py), started the same
  way and timed the same way.

The figure is DMs answered per second from process start (it includes
start-up: imports, migrations, connecting, catching up); the rate between the
first and the last answer is printed too. Target: deskbot >= 0.5x the echo bot.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    BotProcess,
    PlatformFake,
    database,
    json_dump,
    machine,
    seed_customers,
    stop_cleanly,
    wait_ready,
)

TARGET = 0.5


def figures(count: int, started: float, times: list[float], ready_after: float | None = None) -> dict[str, Any]:
    first, last = min(times), max(times)
    total = last - started
    return {
        "dms": count,
        "seconds_from_start": round(total, 3),
        "first_answer_after": round(first - started, 3),
        "dms_per_second": round(count / total, 1),
        "steady_dms_per_second": round((count - 1) / (last - first), 1) if last > first else None,
    }


def deskbot_drain(platform: str, dms: int, customers: int, postgres: str | None, tmp: Path) -> dict[str, Any]:
    """deskbot runs once while each customer opens an incident, is stopped, and starts again on the backlog."""
    chat = PlatformFake(platform, customers)
    try:
        with database(postgres, tmp, "deskbot_bench_drain") as url:
            seed_customers(url, platform, chat.addresses)
            warmup = chat.deskbot(url, tmp, f"deskbot-{platform}-warmup").start()
            try:
                wait_ready(warmup)
                opened = chat.write((i, f"open Printer {i} is on fire") for i in range(customers))
                chat.answers(opened, 120, warmup)
                if platform == "zulip":
                    time.sleep(1.0)  # the case-topic messages
            finally:
                stop_cleanly(warmup)

            backlog = chat.write((k % customers, "status") for k in range(dms))
            bot = chat.deskbot(url, tmp, f"deskbot-{platform}")
            got = drained(chat, backlog, bot)
            wrong = [text for _, text in got if "Your incidents:" not in text]
            if wrong:
                raise RuntimeError(f"{len(wrong)} answers are not status listings, e.g. {wrong[0]!r}")
            return figures(dms, bot.started, [at for at, _ in got])
    finally:
        chat.stop()


def echo_drain(platform: str, dms: int, customers: int, tmp: Path) -> dict[str, Any]:
    """The echo bot starts on the backlog, catching up on it."""
    chat = PlatformFake(platform, customers)
    try:
        backlog = chat.write((k % customers, "status") for k in range(dms))
        bot = chat.echo(tmp, f"echo-{platform}", catch_up=True)
        got = drained(chat, backlog, bot)
        return figures(dms, bot.started, [at for at, _ in got])
    finally:
        chat.stop()


def drained(chat: PlatformFake, backlog: list[str], bot: BotProcess) -> list[tuple[float, str]]:
    """Start `bot` with `backlog` waiting; its answers once it has answered all of it (then it is stopped)."""
    bot.start()
    try:
        return chat.answers(backlog, 60 + len(backlog) * 0.5, bot)
    finally:
        bot.stop()


# -- main ----------------------------------------------------------------------------------------


def run(platforms: list[str], dms: int, customers: int, postgres: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine(),
        "database": "postgresql" if postgres else "sqlite (temporary file)",
    }
    for platform in platforms:
        with tempfile.TemporaryDirectory(prefix=f"bench-drain-{platform}-") as tmp_name:
            tmp = Path(tmp_name)
            echo = echo_drain(platform, dms, customers, tmp)
            desk = deskbot_drain(platform, dms, customers, postgres, tmp)
        ratio = desk["dms_per_second"] / echo["dms_per_second"]
        result[platform] = {
            "echo": echo,
            "deskbot": desk,
            "ratio": round(ratio, 3),
            "target": f">= {TARGET}",
            "pass": ratio >= TARGET,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", choices=("zulip", "mastodon", "both"), default="both")
    parser.add_argument("--dms", type=int, default=1000, help="DMs in the backlog (default 1000)")
    parser.add_argument("--customers", type=int, default=100, help="customers writing them (default 100)")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server URL (a database is created and dropped)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    platforms = ["zulip", "mastodon"] if args.platform == "both" else [args.platform]
    started = time.monotonic()
    result = run(platforms, args.dms, args.customers, args.postgres)
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json_dump(result))
        return 0
    print(f"Backlog drain, {args.dms} DMs from {args.customers} customers queued while the bot was down")
    print(f"  {result['machine']}; deskbot on {result['database']}")
    for platform in platforms:
        r = result[platform]
        print(f"  {platform}:")
        for who in ("echo", "deskbot"):
            f = r[who]
            print(
                f"    {who:8} {f['dms_per_second']:7.1f} DMs/s from process start"
                f" ({f['seconds_from_start']:.2f} s, first answer after {f['first_answer_after']:.2f} s;"
                f" {f['steady_dms_per_second']} DMs/s first to last answer)"
            )
        print(f"    ratio    {r['ratio']:.2f}x   (target {r['target']}: {'pass' if r['pass'] else 'FAIL'})")
    print(f"  ran for {result['bench_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
