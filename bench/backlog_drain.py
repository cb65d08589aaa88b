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
    MastodonAnswers,
    ZulipAnswers,
    database,
    deskbot_mastodon,
    deskbot_zulip,
    echo_process,
    json_dump,
    machine,
    mastodon_customer,
    mastodon_fake,
    seed_customers,
    wait_ready,
    zulip_customer,
    zulip_fake,
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


# -- Zulip --------------------------------------------------------------------------------


def zulip_deskbot(dms: int, customers: int, postgres: str | None, tmp: Path) -> dict[str, Any]:
    fake = zulip_fake(customers)
    addresses = [zulip_customer(i) for i in range(customers)]
    answers = ZulipAnswers(fake)
    try:
        with database(postgres, tmp, "deskbot_bench_drain") as url:
            seed_customers(url, "zulip", addresses)
            warmup = deskbot_zulip(fake.url, url, tmp, "deskbot-zulip-warmup").start()
            try:
                wait_ready(warmup)
                answers.mark()
                for i, address in enumerate(addresses):
                    fake.post_dm(address, f"open Printer {i} is on fire")
                answers.wait(customers, 120, warmup)
                time.sleep(1.0)  # the case-topic messages
            finally:
                if warmup.stop() != 0:
                    raise RuntimeError(f"deskbot did not stop cleanly:\n{warmup.tail()}")

            answers.mark()
            for k in range(dms):
                fake.post_dm(addresses[k % customers], "status")
            bot = deskbot_zulip(fake.url, url, tmp, "deskbot-zulip").start()
            try:
                got = answers.wait(dms, 60 + dms * 0.5, bot)[:dms]
            finally:
                bot.stop()
            wrong = [m.content for m in got if "Your incidents:" not in m.content]
            if wrong:
                raise RuntimeError(f"{len(wrong)} answers are not status listings, e.g. {wrong[0]!r}")
            return figures(dms, bot.started, [m.stored_at for m in got])
    finally:
        fake.stop()


def zulip_echo(dms: int, customers: int, tmp: Path) -> dict[str, Any]:
    fake = zulip_fake(customers)
    addresses = [zulip_customer(i) for i in range(customers)]
    answers = ZulipAnswers(fake)
    try:
        after = answers.newest_id()
        answers.mark()
        for k in range(dms):
            fake.post_dm(addresses[k % customers], "status")
        bot = echo_process("zulip", fake.url, tmp, "--after", str(after), name="echo-zulip").start()
        try:
            got = answers.wait(dms, 60 + dms * 0.5, bot)[:dms]
        finally:
            bot.stop()
        return figures(dms, bot.started, [m.stored_at for m in got])
    finally:
        fake.stop()


# -- Mastodon -------------------------------------------------------------------------------


def mastodon_deskbot(dms: int, customers: int, postgres: str | None, tmp: Path) -> dict[str, Any]:
    fake = mastodon_fake(customers)
    addresses = [mastodon_customer(i) for i in range(customers)]
    replies = MastodonAnswers(fake)
    try:
        with database(postgres, tmp, "deskbot_bench_drain") as url:
            seed_customers(url, "mastodon", addresses)
            warmup = deskbot_mastodon(fake.url, url, tmp, "deskbot-mastodon-warmup").start()
            try:
                wait_ready(warmup)
                ids = [
                    fake.post_status(a, f"@deskbot open Printer {i} is on fire")["id"] for i, a in enumerate(addresses)
                ]
                replies.wait(ids, 120, warmup)
            finally:
                if warmup.stop() != 0:
                    raise RuntimeError(f"deskbot did not stop cleanly:\n{warmup.tail()}")

            ids = [fake.post_status(addresses[k % customers], "@deskbot status")["id"] for k in range(dms)]
            bot = deskbot_mastodon(fake.url, url, tmp, "deskbot-mastodon").start()
            try:
                times = replies.wait(ids, 60 + dms * 0.5, bot)
            finally:
                bot.stop()
            wrong = [replies.texts[i] for i in ids if "Your incidents:" not in replies.texts[i]]
            if wrong:
                raise RuntimeError(f"{len(wrong)} answers are not status listings, e.g. {wrong[0]!r}")
            return figures(dms, bot.started, times)
    finally:
        fake.stop()


def mastodon_echo(dms: int, customers: int, tmp: Path) -> dict[str, Any]:
    fake = mastodon_fake(customers)
    addresses = [mastodon_customer(i) for i in range(customers)]
    replies = MastodonAnswers(fake)
    try:
        ids = [fake.post_status(addresses[k % customers], "@deskbot status")["id"] for k in range(dms)]
        bot = echo_process("mastodon", fake.url, tmp, name="echo-mastodon").start()
        try:
            times = replies.wait(ids, 60 + dms * 0.5, bot)
        finally:
            bot.stop()
        return figures(dms, bot.started, times)
    finally:
        fake.stop()


# -- main ----------------------------------------------------------------------------------------


def run(platforms: list[str], dms: int, customers: int, postgres: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine(),
        "database": "postgresql" if postgres else "sqlite (temporary file)",
    }
    for platform in platforms:
        with tempfile.TemporaryDirectory(prefix=f"bench-drain-{platform}-") as tmp_name:
            tmp = Path(tmp_name)
            if platform == "zulip":
                echo = zulip_echo(dms, customers, tmp)
                desk = zulip_deskbot(dms, customers, postgres, tmp)
            else:
                echo = mastodon_echo(dms, customers, tmp)
                desk = mastodon_deskbot(dms, customers, postgres, tmp)
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
