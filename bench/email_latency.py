"""Email mail-to-answer latency: deskbot beside the bare echo bot, on the same servers (issue 11, item 10).

    PYTHONPATH=. .venv/bin/python bench/email_latency.py [--bots echo,deskbot] [--mails 100]
        [--gap 150] [--postgres SERVER_URL] [--json]

One set of real mail servers (tests/mail: Dovecot, and the aiosmtpd submission server that
delivers into it; bench/email_common.py) with two mailboxes, one per bot, both bots running
at the same time as processes of their own: the echo bot (bench/email_echo.py) on
echo@example.com and deskbot (`deskbot_email`, the hook in bench/email_common.py) on
support@example.com, answering `status` for a linked customer with an open incident.
A customer (this process) writes to them at random (exponential) gaps, the bot of each
mail drawn at random with equal shares, so that whatever else the machine does falls on
both alike; a mail may arrive while a bot is still sending.

The latency of a mail runs from Dovecot's LMTP `250` for it (the mail is in the mailbox;
IDLE clients are told) to the submission server accepting the bot's answer (matched by
`In-Reply-To`). The first `WARMUP` mails of each bot are not counted. Prints the median and
p95 of each and their ratio (target: deskbot's median <= 1.25x the echo's).
"""

from __future__ import annotations

import argparse
import random
import smtplib
import sys
import tempfile
import time
from email import policy
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import database, json_dump, latency_summary, machine, seed_customers, wait_ready  # noqa: E402
from bench.email_common import (  # noqa: E402
    DESKBOT_CHANNEL,
    Answers,
    bots_argument,
    chosen_bots,
    deskbot_email,
    echo_email,
    start_servers,
)

TARGET = 1.25
WARMUP = 5
DESKBOT_TEXT = "status"  # what the customer writes to deskbot: a command that reads the store


def measure(bots: list[str], mails: int, gap_ms: float, postgres: str | None, tmp: Path, seed: int) -> dict[str, Any]:
    mail, [customer] = start_servers(1)
    answers = Answers(mail)
    mailboxes = {"echo": mail.echo, "deskbot": mail.support}  # type: ignore[attr-defined]
    running = []
    try:
        with database(postgres, tmp, "deskbot_bench_email_latency") as url:
            if "echo" in bots:
                running.append(echo_email(mail, mailboxes["echo"], tmp).start())
            if "deskbot" in bots:
                seed_customers(url, DESKBOT_CHANNEL, [customer.address])
                deskbot = deskbot_email(mail, mailboxes["deskbot"], url, tmp).start()
                running.append(deskbot)
            for bot in running:
                wait_ready(bot)
            if "deskbot" in bots:
                opening = customer.send(
                    "The printer is on fire", "open The printer is on fire", to=mail.support.address
                )
                answers.wait([str(opening["Message-ID"])], 60, deskbot)

            rng = random.Random(seed)
            order = [bot for bot in bots for _ in range(mails + WARMUP)]
            rng.shuffle(order)
            sent: dict[str, list[tuple[str, float]]] = {bot: [] for bot in bots}
            with smtplib.LMTP(mail.dovecot.host, mail.dovecot.lmtp_port, timeout=60) as lmtp:
                for k, bot in enumerate(order):
                    to = mailboxes[bot].address
                    message = customer.compose(
                        f"Question {k}", DESKBOT_TEXT if bot == "deskbot" else f"echo {k}", to=to
                    )
                    lmtp.sendmail(customer.address, [to], message.as_bytes(policy=policy.SMTP))
                    sent[bot].append((str(message["Message-ID"]), time.monotonic()))
                    time.sleep(rng.expovariate(1000.0 / gap_ms))
            result: dict[str, Any] = {}
            for bot, process in zip(bots, running, strict=True):
                got = answers.wait([mid for mid, _ in sent[bot]], 60 + mails, process)
                samples = [got[mid].at - at for mid, at in sent[bot][WARMUP:]]
                result[bot] = latency_summary(samples)
            return result
    finally:
        for bot in running:
            bot.stop()
        mail.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bots_argument(parser)
    parser.add_argument("--mails", type=int, default=100, help="mails measured per bot (default 100)")
    parser.add_argument(
        "--gap", type=float, default=150.0, help="mean gap between the customer's mails, ms (default 150)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed for the gaps and the order (default 1)")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server URL (a database is created and dropped)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    bots = chosen_bots(parser, args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-email-latency-") as tmp:
        result: dict[str, Any] = {
            "machine": machine(),
            "database": "postgresql" if args.postgres else "sqlite (temporary file)",
            **measure(bots, args.mails, args.gap, args.postgres, Path(tmp), args.seed),
        }
    if "echo" in result and "deskbot" in result:
        result["ratio_median"] = round(result["deskbot"]["median_ms"] / result["echo"]["median_ms"], 3)
        result["ratio_p95"] = round(result["deskbot"]["p95_ms"] / result["echo"]["p95_ms"], 3)
        result["pass"] = result["ratio_median"] <= TARGET
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json_dump(result))
        return 0
    print(
        f"Email mail-to-answer latency, {args.mails} mails per bot (after {WARMUP} unmeasured), mean gap {args.gap:g} ms"
    )
    print(f"  {result['machine']}; deskbot on {result['database']}")
    for bot in ("echo", "deskbot"):
        if bot in result:
            f = result[bot]
            print(
                f"  {bot:8} median {f['median_ms']:7.2f} ms  p95 {f['p95_ms']:7.2f} ms  max {f['max_ms']:7.2f} ms  (n={f['n']})"
            )
    if "ratio_median" in result:
        verdict = "pass" if result["pass"] else "FAIL"
        print(
            f"  ratio    median {result['ratio_median']:.2f}x, p95 {result['ratio_p95']:.2f}x  (target median <= {TARGET}: {verdict})"
        )
    print(f"  ran for {result['bench_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
