"""`status` on a 1M-incident / 10M-message PostgreSQL store against an empty one (issue 5, item 8).

    PYTHONPATH=. .venv/bin/python bench/status_at_scale.py [--server postgresql+psycopg://postgres@127.0.0.1/postgres]
        [--incidents 1000000] [--customers 10000] [--runs 200] [--keep] [--json]

Two stores on the PostgreSQL server, both made by bench/generate_data.py:

* empty: a database `deskbot_bench_empty` holding only the probe customer
  with its history (incidents / customers incidents, 10 messages each),
  created and dropped by this script;
* large: `deskbot_bench_scale` with `--incidents` incidents, 10 messages
  each, over `--customers` customers (plus identities, packs, history
  events, processed-inbound and outbox rows). Created, filled and dropped by
  this script; with `--keep` it is left in place and reused by the next run
  with `--keep` if it holds the same number of incidents.

The probe customer (customer 1) has the same history in both. Its console
identity writes `status` (its incidents) and `status N` (its open incident
in detail) through the real path: `Intake.deliver` (the exactly-once record,
router, handler, outbox row, one transaction) and `Dispatcher.drain` of the
console channel (claim, send, mark sent), as `deskbot chat` and the tests'
Desk harness do. Each command is timed over `--runs` runs after 20 warm-up
runs, the two stores taking turns run by run (so that a disturbance, a
checkpoint say, falls on both); median and p95 per store and the ratio
large / empty (target <= 2).
Then every SQL statement one `status` and one `status N` run is explained
(EXPLAIN ANALYZE, rolled back) on the large store, and any sequential scan
is flagged.

`--history 100,1000,10000` measures something else: `status` for a lone
customer with each number of incidents, to show how it grows with the
customer's own history (bench/README.md, findings).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402

from adapters.console import ConsoleChannel, console_line  # noqa: E402
from bench._common import create_database, drop_database, json_dump, machine, median, percentile  # noqa: E402
from bench.generate_data import generate  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.services import customers  # noqa: E402
from storage.db import make_engine, transaction  # noqa: E402
from storage.models import Customer, Incident  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1/postgres"
EMPTY_DB, SCALE_DB = "deskbot_bench_empty", "deskbot_bench_scale"
PROBE = "Customer 000001"
WARMUP = 20
TARGET = 2.0


class ConsoleDesk:
    """The real runtime with the console channel; `say` delivers one message and drains the replies."""

    def __init__(self, url: str) -> None:
        self.out = io.StringIO()
        engine = make_engine(url)
        settings = Settings(_env_file=None, DESKBOT_DATABASE_URL=url)  # type: ignore[call-arg]
        console = ConsoleChannel(customer=PROBE, stdin=io.StringIO(), stdout=self.out)
        self.runtime = Runtime(settings, [console], engine=engine, migrate=False)
        self._ids = itertools.count(1)
        self._run = f"{time.time_ns()}"
        now = datetime.now(UTC)
        with transaction(engine) as session:
            probe = session.get(Customer, 1)
            assert probe is not None and probe.name == PROBE, "customer 1 is the probe"
            customers.link_identity(session, probe, "console", PROBE, now)
            open_one = session.scalars(
                sa.select(Incident.id).where(Incident.customer_id == 1, Incident.state == "open")
            ).first()
        self.open_incident = open_one

    @property
    def engine(self) -> sa.Engine:
        return self.runtime.engine

    def say(self, text: str) -> str:
        start = len(self.out.getvalue())
        self.runtime.intake.deliver(
            console_line(PROBE, text, f"bench-{self._run}-{next(self._ids)}", datetime.now(UTC))
        )
        self.runtime.dispatcher.drain("console")
        return self.out.getvalue()[start:]


def commands(desk: ConsoleDesk) -> dict[str, tuple[str, str]]:
    """What the probe writes, and a piece of the answer that shows it is the real one."""
    number = desk.open_incident
    return {"status": ("status", "Your incidents:"), "status N": (f"status {number}", f"Incident #{number}:")}


def measure(urls: dict[str, str], runs: int) -> dict[str, dict[str, dict[str, float]]]:
    """Median and p95 per store and command; the stores take turns run by run, so disturbances hit both."""
    desks = {store: ConsoleDesk(url) for store, url in urls.items()}
    samples: dict[tuple[str, str], list[float]] = {}
    try:
        for store, desk in desks.items():
            for command, (text, expect) in commands(desk).items():
                samples[store, command] = []
                for _ in range(WARMUP):
                    answer = desk.say(text)
                    if expect not in answer:
                        raise RuntimeError(f"unexpected answer to {text!r} on {store}: {answer!r}")
        order = list(desks)
        for run in range(runs):
            for store in order if run % 2 == 0 else reversed(order):
                desk = desks[store]
                for command, (text, _expect) in commands(desk).items():
                    started = time.perf_counter()
                    desk.say(text)
                    samples[store, command].append(time.perf_counter() - started)
    finally:
        for desk in desks.values():
            desk.engine.dispose()
    result: dict[str, dict[str, dict[str, float]]] = {store: {} for store in desks}
    for (store, command), values in samples.items():
        result[store][command] = {
            "median_ms": round(median(values) * 1000, 3),
            "p95_ms": round(percentile(values, 0.95) * 1000, 3),
            "runs": len(values),
        }
    return result


def explain(url: str) -> list[dict[str, Any]]:
    """EXPLAIN ANALYZE of every query one `status` and one `status N` run (rolled back)."""
    desk = ConsoleDesk(url)
    captured: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, parameters, _context, executemany) -> None:  # noqa: ANN001
        if not executemany:
            captured.append((statement, parameters))

    event.listen(desk.engine, "before_cursor_execute", record)
    desk.say("status")
    desk.say(f"status {desk.open_incident}")
    event.remove(desk.engine, "before_cursor_execute", record)
    plans = []
    seen: set[str] = set()
    with desk.engine.connect() as conn:
        for statement, parameters in captured:
            # An INSERT ... VALUES has no access path to explain (and would collide with the row it made).
            if not re.match(r"\s*(SELECT|UPDATE|DELETE)", statement, re.I) or statement in seen:
                continue
            seen.add(statement)
            rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).fetchall()
            conn.rollback()
            plan = [r[0] for r in rows]
            tables = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", statement, re.I)
            took = next((line for line in plan if line.startswith("Execution Time")), "")
            plans.append(
                {
                    "table": tables.group(1) if tables else "?",
                    "statement": " ".join(statement.split())[:160],
                    "access": sorted({m.group(0) for line in plan for m in [_access(line)] if m}),
                    "seq_scan": any("Seq Scan" in line for line in plan),
                    "execution_ms": float(took.split(":")[1].split()[0]) if took else None,
                    "plan": plan,
                }
            )
    desk.engine.dispose()
    return plans


def _access(line: str) -> re.Match[str] | None:
    return re.search(
        r"(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)( Backward)?( using \w+)?( on \w+)?", line
    )


def scale_store(server: str, incidents: int, customers_: int, keep: bool) -> tuple[str, float | None]:
    """The large store's URL, and how long generating it took (None when reused)."""
    url = server.rsplit("/", 1)[0] + f"/{SCALE_DB}"
    if keep:
        try:
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            with engine.connect() as conn:
                count = conn.exec_driver_sql("SELECT count(*) FROM incident").scalar()
            engine.dispose()
            if count == incidents:
                print(f"reusing {SCALE_DB} ({count:,} incidents)", flush=True)
                return url, None
        except sa.exc.SQLAlchemyError:
            pass
    print(f"generating {SCALE_DB}:", flush=True)
    create_database(server, SCALE_DB)
    started = time.monotonic()
    generate(url, incidents, 10, customers_)
    return url, time.monotonic() - started


def run(server: str, incidents: int, customers_: int, runs: int, keep: bool) -> dict[str, Any]:
    per_customer = -(-incidents // customers_)
    result: dict[str, Any] = {"machine": machine(), "incidents": incidents, "customers": customers_}

    print(f"generating {EMPTY_DB} (the probe customer only: {per_customer} incidents):", flush=True)
    empty_url = create_database(server, EMPTY_DB)
    try:
        generate(empty_url, per_customer, 10, 1)
        scale_url, generated = scale_store(server, incidents, customers_, keep)
        try:
            result["generate_seconds"] = round(generated, 1) if generated is not None else None
            print(f"timing {runs} runs of each command on each store, taking turns", flush=True)
            result.update(measure({"empty": empty_url, "large": scale_url}, runs))
            result["explain"] = explain(scale_url)
            engine = sa.create_engine(scale_url, poolclass=sa.pool.NullPool)
            with engine.connect() as conn:
                result["rows"] = {
                    t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                    for t in ("customer", "incident", "incidentmessage", "processedinbound", "outbox")
                }
                result["database_size"] = conn.exec_driver_sql(
                    "SELECT pg_size_pretty(pg_database_size(current_database()))"
                ).scalar()
            engine.dispose()
        finally:
            if not keep:
                drop_database(server, SCALE_DB)
    finally:
        drop_database(server, EMPTY_DB)
    result["ratio"] = {
        command: {
            "median": round(result["large"][command]["median_ms"] / result["empty"][command]["median_ms"], 3),
            "p95": round(result["large"][command]["p95_ms"] / result["empty"][command]["p95_ms"], 3),
        }
        for command in ("status", "status N")
    }
    result["pass"] = all(r["median"] <= TARGET and r["p95"] <= TARGET for r in result["ratio"].values())
    return result


def history_sweep(server: str, sizes: list[int], runs: int) -> dict[int, dict[str, float]]:
    """`status` for a lone customer with each number of incidents (its own store each time)."""
    result = {}
    for size in sizes:
        url = create_database(server, EMPTY_DB)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                generate(url, size, 10, 1)
            result[size] = measure({"store": url}, runs)["store"]["status"]
        finally:
            drop_database(server, EMPTY_DB)
        r = result[size]
        print(f"  customer with {size:7,} incidents: status median {r['median_ms']:8.2f} ms  p95 {r['p95_ms']:8.2f} ms")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=SERVER, help=f"a database URL on the server (default {SERVER})")
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help=f"keep {SCALE_DB} (and reuse it if it has the same size)")
    parser.add_argument("--json", action="store_true", help="print one JSON document at the end")
    parser.add_argument(
        "--history",
        metavar="N,N,...",
        help="instead: `status` for one customer with each of these numbers of incidents (e.g. 100,1000,10000)",
    )
    args = parser.parse_args(argv)
    if args.history:
        print(f"`status` against the size of the customer's own history, {args.runs} runs each")
        history_sweep(args.server, [int(n) for n in args.history.split(",")], args.runs)
        return 0
    started = time.monotonic()
    result = run(args.server, args.incidents, args.customers, args.runs, args.keep)
    result["bench_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json_dump(result))
        return 0
    rows = result["rows"]
    print()
    print(
        f"`status` latency, probe customer with {-(-args.incidents // args.customers)} incidents,"
        f" through intake + router + console dispatcher, {args.runs} runs each"
    )
    print(f"  {result['machine']}")
    print(
        f"  large store: {rows['incident']:,} incidents, {rows['incidentmessage']:,} messages,"
        f" {rows['customer']:,} customers, {rows['processedinbound']:,} processed inbound,"
        f" {rows['outbox']:,} outbox rows; {result['database_size']}"
        + (f"; generated in {result['generate_seconds']} s" if result["generate_seconds"] else "")
    )
    for command in ("status", "status N"):
        e, big, r = result["empty"][command], result["large"][command], result["ratio"][command]
        print(
            f"  {command:9} empty  median {e['median_ms']:7.2f} ms  p95 {e['p95_ms']:7.2f} ms | "
            f"large  median {big['median_ms']:7.2f} ms  p95 {big['p95_ms']:7.2f} ms | "
            f"ratio {r['median']:.2f}x / {r['p95']:.2f}x"
        )
    print(f"  target <= {TARGET}x: {'pass' if result['pass'] else 'FAIL'}")
    print("  statements of one `status` and one `status N` on the large store (EXPLAIN ANALYZE):")
    for plan in result["explain"]:
        flag = "  SEQ SCAN" if plan["seq_scan"] else ""
        print(
            f"    {plan['execution_ms']:8.3f} ms  {', '.join(plan['access']) or '-':60}  {plan['statement'][:90]}{flag}"
        )
    print(f"  ran for {result['bench_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
