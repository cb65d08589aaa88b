"""Email backlog drain: mails queued while the bot was down, answered once it starts (issue 11, item 10).

    PYTHONPATH=. .venv/bin/python bench/email_backlog.py [--bots echo,deskbot] [--mails 1000]
        [--customers 100] [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres] [--json]

Each bot gets fresh mail servers (tests/mail: a real Dovecot and the aiosmtpd submission
server delivering into it, see bench/email_common.py) and is a process of its own:

* echo: `--mails` mails (round robin over `--customers` customers, the text `status`) are
  put into the echo's mailbox over LMTP, then the echo bot (bench/email_echo.py) starts.
* deskbot: the store holds the customers, linked by address with credits; deskbot runs once
  while each customer opens an incident by email (so it has a cursor: a first start leaves
  mail already there alone) and is stopped with SIGTERM; then the same backlog is queued
  and deskbot is started again (`deskbot_email`, the hook in bench/email_common.py).

The clock runs from the start of the process to the moment the submission server accepts
the last answer; every mail must be answered exactly once (matched by `In-Reply-To`). The
figure is mails answered per second from process start (start-up, logins, catch-up
included); the rate between the first and the last answer is printed too.
Target: deskbot >= 0.5x the echo bot.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import BotProcess, database, json_dump, machine, seed_customers, wait_ready  # noqa: E402
from bench.email_common import (  # noqa: E402
    DESKBOT_CHANNEL,
    Answers,
    Mailbox,
    MailServers,
    bots_argument,
    chosen_bots,
    deskbot_email,
    echo_email,
    lmtp_burst,
    start_servers,
    status_mails,
)

TARGET = 0.5


def figures(count: int, started: float, times: list[float], queued_in: float) -> dict[str, Any]:
    first, last = min(times), max(times)
    total = last - started
    return {
        "mails": count,
        "queued_in_seconds": round(queued_in, 2),
        "seconds_from_start": round(total, 3),
        "first_answer_after": round(first - started, 3),
        "mails_per_second": round(count / total, 1),
        "steady_mails_per_second": round((count - 1) / (last - first), 1) if last > first else None,
    }


def drain(
    mail: MailServers, mailbox: Mailbox, answers: Answers, backlog: list[EmailMessage], start: Callable[[], BotProcess]
) -> dict[str, Any]:
    """Queue `backlog` into `mailbox`, start the bot, time it until every mail is answered."""
    queued_in = lmtp_burst(mail, mailbox, backlog)
    bot = start()
    try:
        got = answers.wait([str(m["Message-ID"]) for m in backlog], 60 + len(backlog) * 0.5, bot)
    finally:
        bot.stop()
    return figures(len(backlog), bot.started, [a.at for a in got.values()], queued_in)


def echo_run(mails: int, customers: int, tmp: Path) -> dict[str, Any]:
    mail, people = start_servers(customers)
    try:
        mailbox = mail.echo  # type: ignore[attr-defined]
        backlog = status_mails(people, mailbox, mails)
        return drain(mail, mailbox, Answers(mail), backlog, lambda: echo_email(mail, mailbox, tmp).start())
    finally:
        mail.close()


def deskbot_run(mails: int, customers: int, postgres: str | None, tmp: Path) -> dict[str, Any]:
    mail, people = start_servers(customers)
    try:
        answers = Answers(mail)
        with database(postgres, tmp, "deskbot_bench_email_drain") as url:
            seed_customers(url, DESKBOT_CHANNEL, [p.address for p in people])
            warmup = deskbot_email(mail, mail.support, url, tmp, "deskbot-email-warmup").start()
            try:
                wait_ready(warmup)
                openings = [
                    p.send(f"Printer {i} is on fire", f"open Printer {i} is on fire") for i, p in enumerate(people)
                ]
                answers.wait([str(m["Message-ID"]) for m in openings], 120, warmup)
                time.sleep(1.0)  # the case topics' own messages
            finally:
                if warmup.stop() != 0:
                    raise RuntimeError(f"deskbot did not stop cleanly:\n{warmup.tail()}")

            backlog = status_mails(people, mail.support, mails)
            return drain(
                mail, mail.support, answers, backlog, lambda: deskbot_email(mail, mail.support, url, tmp).start()
            )
    finally:
        mail.close()


def run(bots: list[str], mails: int, customers: int, postgres: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine(), "database": "postgresql" if postgres else "sqlite (temporary file)"}
    with tempfile.TemporaryDirectory(prefix="bench-email-drain-") as tmp_name:
        tmp = Path(tmp_name)
        if "echo" in bots:
            result["echo"] = echo_run(mails, customers, tmp)
        if "deskbot" in bots:
            result["deskbot"] = deskbot_run(mails, customers, postgres, tmp)
    if "echo" in result and "deskbot" in result:
        ratio = result["deskbot"]["mails_per_second"] / result["echo"]["mails_per_second"]
        result["ratio"] = round(ratio, 3)
        result["target"] = f">= {TARGET}"
        result["pass"] = ratio >= TARGET
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bots_argument(parser)
    parser.add_argument("--mails", type=int, default=1000, help="mails in the backlog (default 1000)")
    parser.add_argument("--customers", type=int, default=100, help="customers writing them (default 100)")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server URL (a database is created and dropped)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    bots = chosen_bots(parser, args)
    started = time.monotonic()
    result = run(bots, args.mails, args.customers, args.postgres)
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json_dump(result))
        return 0
    print(f"Email backlog drain, {args.mails} mails from {args.customers} customers queued while the bot was down")
    print(f"  {result['machine']}; deskbot on {result['database']}")
    for who in ("echo", "deskbot"):
        if who in result:
            f = result[who]
            print(
                f"  {who:8} {f['mails_per_second']:7.1f} mails/s from process start"
                f" ({f['seconds_from_start']:.2f} s, first answer after {f['first_answer_after']:.2f} s;"
                f" {f['steady_mails_per_second']} mails/s first to last answer; queued over LMTP in {f['queued_in_seconds']} s)"
            )
    if "ratio" in result:
        print(
            f"  ratio    {result['ratio']:.2f}x   (target {result['target']}: {'pass' if result['pass'] else 'FAIL'})"
        )
    print(f"  ran for {result['bench_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
