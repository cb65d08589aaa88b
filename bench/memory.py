"""Resident memory of `deskbot run` after start and after 10,000 messages, against a bare echo bot (issue 5, item 8).

    PYTHONPATH=. .venv/bin/python bench/memory.py [--platform zulip|mastodon|both] [--messages 10000]
        [--customers 100] [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres] [--json]

How the comparison is made (see also bench/README.md): each bot is a process
of its own, started the same way, against a fresh fake server of the same
platform running in this process (bench/_common.py):

* deskbot: `deskbot run` (on Mastodon: `deskbot run` with the channel's
  posting budget raised, `python -m bench._common deskbot-lifted`), SQLite
  in a temporary directory or, with `--postgres`, a fresh PostgreSQL
  database; `--customers` customers linked and with credits.
* echo: the bare echo bot of the same platform, written with the same
  client library as deskbot's channel (`zulip`, `Mastodon.py`), in
  `bench/_common.py`.

"After start" is VmRSS from /proc/<pid>/status 3 seconds after the bot is
ready (deskbot: /readyz answers 200; echo: it printed `ready`). Then the
customers write `--messages` DMs, one each per wave, waves one after
another, each wave answered in full before the next; the first wave opens an
incident for each customer, later ones cycle through `status`, `credits`, a
plain message (added to the open incident and mirrored into its case
topic), `help` and `estado`. "After" is VmRSS 3 seconds after the last
answer; VmHWM (the peak) is printed too. Targets: deskbot's own growth, after /
after start, <= 1.15 (issue 15, item 9). Its ratio to the echo bot is
reported, not a target (issue 15 replaced issue 5's 1.3x, which no process
holding SQLAlchemy and pydantic can meet: see bench/README.md).

On Mastodon, prefer `--messages 2000`: the fake renders an account's
status count by counting every status, so a run slows down as it goes
(10,000 DMs take well over ten minutes; see bench/README.md, findings).
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
    rss_kib,
    seed_customers,
    wait_ready,
)

#: Issue 15, item 9: deskbot's RSS after the messages over its RSS after start.
GROWTH_TARGET = 1.15
SETTLE = 3.0
CYCLE = ("status", "credits", "It still fails after the update (try {wave})", "help", "estado")


def text_for(wave: int, i: int) -> str:
    if wave == 0:
        return f"open Printer {i} stops after the firmware update"
    return CYCLE[(wave - 1) % len(CYCLE)].format(wave=wave)


def traffic(chat: PlatformFake, bot: BotProcess, messages: int, customers: int) -> float:
    """Send `messages` DMs in waves of `customers`, each answered by `bot` in full before the next;
    returns the seconds it took."""
    started = time.monotonic()
    sent = 0
    wave = 0
    while sent < messages:
        size = min(customers, messages - sent)
        written = chat.write((i, text_for(wave, i)) for i in range(size))
        chat.answers(written, 120, bot)
        sent += size
        wave += 1
    return time.monotonic() - started


def sample(bot: BotProcess, what: str) -> dict[str, int]:
    time.sleep(SETTLE)
    bot.check()
    rss = rss_kib(bot.pid)
    print(f"    {bot.name:16} {what:6} VmRSS {rss['VmRSS'] / 1024:7.1f} MiB  (peak {rss['VmHWM'] / 1024:.1f} MiB)")
    return rss


def measure(platform: str, who: str, messages: int, customers: int, postgres: str | None, tmp: Path) -> dict[str, Any]:
    chat = PlatformFake(platform, customers)
    try:
        with database(postgres if who == "deskbot" else None, tmp, "deskbot_bench_memory") as url:
            if who == "deskbot":
                seed_customers(url, platform, chat.addresses)
                bot = chat.deskbot(url, tmp, f"deskbot-{platform}")
            else:
                bot = chat.echo(tmp, f"echo-{platform}")
            bot.start()
            try:
                ready = wait_ready(bot)
                before = sample(bot, "start")
                seconds = traffic(chat, bot, messages, customers)
                after = sample(bot, "after")
            finally:
                bot.stop()
    finally:
        chat.stop()
    return {
        "ready_after_s": round(ready, 2),
        "start_kib": before["VmRSS"],
        "after_kib": after["VmRSS"],
        "peak_kib": after["VmHWM"],
        "traffic_seconds": round(seconds, 1),
        "messages_per_second": round(messages / seconds, 1),
    }


def run(platforms: list[str], messages: int, customers: int, postgres: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine(),
        "database": "postgresql" if postgres else "sqlite (temporary file)",
        "messages": messages,
    }
    for platform in platforms:
        print(f"  {platform}:", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"bench-memory-{platform}-") as tmp_name:
            echo = measure(platform, "echo", messages, customers, None, Path(tmp_name))
            desk = measure(platform, "deskbot", messages, customers, postgres, Path(tmp_name))
        ratio_start = desk["start_kib"] / echo["start_kib"]
        ratio_after = desk["after_kib"] / echo["after_kib"]
        result[platform] = {
            "echo": echo,
            "deskbot": desk,
            "ratio_start": round(ratio_start, 2),
            "ratio_after": round(ratio_after, 2),
            "growth_kib": {
                "echo": echo["after_kib"] - echo["start_kib"],
                "deskbot": desk["after_kib"] - desk["start_kib"],
            },
            "growth": round(desk["after_kib"] / desk["start_kib"], 3),
            "growth_target": f"<= {GROWTH_TARGET}",
            "growth_pass": desk["after_kib"] <= GROWTH_TARGET * desk["start_kib"],
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", choices=("zulip", "mastodon", "both"), default="zulip")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server URL (a database is created and dropped)")
    parser.add_argument("--json", action="store_true", help="print one JSON document at the end")
    args = parser.parse_args(argv)
    platforms = ["zulip", "mastodon"] if args.platform == "both" else [args.platform]
    started = time.monotonic()
    print(f"Resident memory, after start and after {args.messages:,} messages from {args.customers} customers")
    result = run(platforms, args.messages, args.customers, args.postgres)
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json_dump(result))
        return 0
    print(f"  {result['machine']}; deskbot on {result['database']}")
    for platform in platforms:
        r = result[platform]
        e, d = r["echo"], r["deskbot"]
        print(f"  {platform}:")
        for who, f in (("echo", e), ("deskbot", d)):
            print(
                f"    {who:8} start {f['start_kib'] / 1024:7.1f} MiB   after {f['after_kib'] / 1024:7.1f} MiB"
                f"   peak {f['peak_kib'] / 1024:7.1f} MiB   ({f['messages_per_second']} messages/s)"
            )
        print(
            f"    ratio    start {r['ratio_start']:.2f}x   after {r['ratio_after']:.2f}x"
            f"   growth {r['growth_kib']['echo'] / 1024:.1f} MiB vs {r['growth_kib']['deskbot'] / 1024:.1f} MiB"
            "   (reported, not a target)"
        )
        print(
            f"    deskbot's growth {r['growth']:.3f}x its start"
            f"   (target {r['growth_target']}: {'pass' if r['growth_pass'] else 'FAIL'})"
        )
    print(f"  ran for {result['bench_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
