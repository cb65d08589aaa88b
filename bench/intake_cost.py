"""What one customer message costs inside deskbot, from `Intake.deliver` to the rows handed over.

    .venv/bin/python -m bench.intake_cost [--messages 2000] [--postgres SERVER_URL] [--profile] [--json]

The latency benchmarks (`zulip_latency.py`, `mastodon_latency.py`) measure deskbot
against an echo bot from the customer's side; this one takes the network away and
times what deskbot adds on top of a bare bot: the exactly-once record, who the
sender is, the router and the `status` handler, the outbox row written leased,
the cursor, the commit. A linked customer with one open incident sends `status`
over and over; every message is a transaction of its own, as on a live channel.

Prints the median and p95 per message, the SQL statements per message, and with
`--profile` the functions that took the most time (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import database, seed_customers  # noqa: E402

#: Who writes, per channel: the sender key the channel's adapter gives (a Zulip user id, a Mastodon acct).
SENDERS = {"zulip": "1001", "mastodon": "alice@example.com", "email": "alice@example.com"}
WARMUP = 50


class HandedRows:
    """The sender intake hands its rows to: counts them (the sending is not what is measured)."""

    def __init__(self) -> None:
        self.rows = 0

    def inline(self, channel: str, *, here: bool = False) -> AbstractContextManager[bool]:
        return nullcontext(True)  # as with the channel's send loop running: rows written leased

    def hand_over(self, rows: list) -> None:
        self.rows += len(rows)


def measure(url: str, messages: int, profile: bool, gap: float = 0.0, channel: str = "zulip") -> dict[str, object]:
    from adapters.channel import Inbound
    from bot.config import Settings
    from bot.deployment import Deployment
    from bot.intake import Intake
    from bot.router import Router
    from storage.db import make_engine
    from storage.prepared import Prepared

    sender = SENDERS[channel]
    seed_customers(url, channel, [sender])
    settings = Settings(_env_file=None, DESKBOT_DATABASE_URL=url)  # type: ignore[call-arg]
    engine = make_engine(url)
    sink = HandedRows()
    intake = Intake(engine, Router(Deployment(settings=settings)), sink)
    statements = 0

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    def one(n: int, text: str = "status") -> float:
        message = Inbound(
            channel=channel,
            sender=sender,
            conversation=sender if channel != "mastodon" else str(100000 + n),
            text=text,
            message_id=f"m{n}",
            received_at=datetime.now(UTC),
        )
        start = time.perf_counter()
        intake.deliver(message, cursor=(f"{channel}:cursor", str(n)))
        return (time.perf_counter() - start) * 1000

    one(0, "open The export hangs after the upgrade")  # the open incident `status` lists
    for n in range(1, WARMUP):
        one(n)
    statements = 0
    prepared_before = Prepared.executed  # the hot path's statements on the driver's cursor (storage.prepared)
    profiler = cProfile.Profile() if profile else None
    times = []
    if profiler:
        profiler.enable()
    for n in range(WARMUP, WARMUP + messages):
        times.append(one(n))
        if gap:
            time.sleep(gap)
    if profiler:
        profiler.disable()
    engine.dispose()
    times.sort()
    result: dict[str, object] = {
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(len(times) * 0.95)], 3),
        "statements_per_message": round((statements + Prepared.executed - prepared_before) / messages, 2),
        "rows_per_message": round(sink.rows / (WARMUP + messages), 2),
    }
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        result["profile"] = out.getvalue()
    return result


@contextmanager
def store(postgres: str | None) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder, database(postgres, Path(folder), "deskbot_intake_cost") as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--postgres", metavar="SERVER_URL", help="a PostgreSQL server (a database is made and dropped)")
    parser.add_argument("--channel", choices=sorted(SENDERS), default="zulip")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="sleep between messages, as between a live channel's DMs (cold caches)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with store(args.postgres) as url:
        result = measure(url, args.messages, args.profile, args.gap_ms / 1000, args.channel)
    if args.json:
        print(json.dumps(result))
        return
    kind = "postgresql" if args.postgres else "sqlite"
    print(
        f"intake cost of a `status` {args.channel} DM on {kind}, {args.messages} messages: median {result['median_ms']} ms,"
        f" p95 {result['p95_ms']} ms, {result['statements_per_message']} statements and"
        f" {result['rows_per_message']} outbox rows per message"
    )
    if "profile" in result:
        print(result["profile"])


if __name__ == "__main__":
    main()
