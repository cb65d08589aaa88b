"""A database outage while running (an operator audit): told once, as the database's, not the channels'.

One `deskbot run` on PostgreSQL reached through a TCP proxy this test controls, against both fakes.
Then the proxy cuts every connection and refuses new ones for `OUTAGE_SECONDS`, as a database
restart or a network cut between the two would. The log must say so once, as the database's
outage (not a "dispatcher loop error" traceback a second, nor "zulip: cannot reach the platform"
for a platform that is fine), and one line when it is back; a DM written during the outage is
answered after it, and nothing is lost or doubled.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from .conftest import BotProcess, DrillCustomer, Fakes, Ledger, SentDM, drill_store, open_incidents, wait_until
from .test_quiet_outage import LEVELS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

#: Past the five seconds that make an outage, short of the one-minute reminder.
OUTAGE_SECONDS = 15.0


class CuttableProxy:
    """127.0.0.1:<port> → `target`, byte for byte, until `cut()`; `restore()` lets connections in again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()  # refused, as a server that is down
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def url(self, database_url: str) -> str:
        """`database_url` through this proxy."""
        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for s in self.sockets:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    s.close()
            self.sockets = []

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def address_of(database_url: str) -> tuple[str, int]:
    """Where the PostgreSQL server of `database_url` listens: (host, port)."""
    parsed = make_url(database_url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def test_a_database_outage_is_told_once_as_the_databases_and_nothing_is_lost(fakes: Fakes, make_database, bots) -> None:  # noqa: ANN001
    url = make_database("postgresql")
    engine, people, ledger = drill_store(fakes, url)
    proxy = CuttableProxy(address_of(url))
    try:
        bot: BotProcess = bots("deskbot", fakes.env(proxy.url(url)))
        bot.start().wait_ready()
        open_incidents(fakes, engine, people, ledger)
        outage = database_outage(
            bot,
            ledger,
            people,
            proxy.cut,
            proxy.restore,
            seconds=OUTAGE_SECONDS,
            told_within=OUTAGE_SECONDS - 3,
            told="the database's outage to be told",
            write_after=2.0,
        )
    finally:
        proxy.close()

    heading = f"[database outage] {len(outage.during)} log lines during {OUTAGE_SECONDS:.0f}s, at INFO+:"
    told_once_and_nothing_lost(outage, ledger, heading)
    engine.dispose()


@dataclass
class Outage:
    """What a drill saw of a database outage (`database_outage`)."""

    seconds: float
    #: The log line that told the outage, and how long after the cut it came.
    told_down: dict[str, Any]
    told_after: float
    #: The log lines while the database was away, and those from the cut to the end.
    during: list[dict[str, Any]]
    records: list[dict[str, Any]]
    #: What the customers wrote while the database was away.
    written: list[SentDM]


def database_outage(
    bot: BotProcess,
    ledger: Ledger,
    people: list[DrillCustomer],
    cut: Callable[[], None],
    restore: Callable[[], None],
    *,
    seconds: float,
    told_within: float,
    told: str,
    write_after: float = 0.0,
    readyz_timeout: float = 2.0,
) -> Outage:
    """The database out of the running `bot`'s reach for `seconds`, from `cut()` to `restore()`.

    `write_after` seconds into it each of `people` writes (on `ledger`'s fakes); the outage must be
    told within `told_within` seconds (`told`: what is waited for, named if it is not) and /readyz
    answer 503 (within `readyz_timeout`). Once the database is back: every DM answered, a line
    saying so, /readyz 200 again, and the bot stops with status 0. What the log said is checked by
    `told_once_and_nothing_lost`."""
    before = len(bot.log_records())
    cut()
    began = time.monotonic()
    time.sleep(write_after)
    written = [ledger.fakes.dm(person, "plain") for person in people]  # waits on the platforms
    told_down = wait_until(
        lambda: next((r for r in bot.log_records()[before:] if "cannot reach the database" in r["message"]), None),
        told_within,
        told,
        interval=0.1,
    )
    told_after = time.monotonic() - began
    code, readyz = bot.get("/readyz", timeout=readyz_timeout)
    assert code == 503 and "database unreachable" in readyz, readyz
    time.sleep(max(0.0, seconds - (time.monotonic() - began)))
    during = bot.log_records()[before:]
    restore()

    wait_until(ledger.all_answered, 45, "every DM to be answered after the recovery", interval=0.25)
    wait_until(
        lambda: any("reaching the database again" in r["message"] for r in bot.log_records()[before:]),
        15,
        "one line saying the database is back",
    )
    wait_until(bot.ready, 15, "/readyz to be 200 again")
    records = bot.log_records()[before:]
    assert bot.terminate() == 0
    return Outage(seconds, told_down, told_after, during, records, written)


def told_once_and_nothing_lost(outage: Outage, ledger: Ledger, heading: str) -> None:
    """Prints `heading` and what the log said at INFO and above during the `outage`; then checks
    that it was told as one: one WARNING about the database when it began, one line when it ended,
    nothing blamed on a platform, no traceback, a quiet log meanwhile, every message written
    meanwhile handled, and nothing lost or doubled."""
    during, records = outage.during, outage.records
    told = [f"{r['level']} {r.get('logger')}: {r['message']}" for r in during if LEVELS[r["level"]] >= LEVELS["info"]]
    print(f"\n{heading}")
    print("\n".join("  " + line for line in told))
    told_down = outage.told_down
    assert told_down["level"] == "warning" and told_down.get("channel") is None and told_down["component"] == "database"
    loud = [r for r in during if LEVELS[r["level"]] >= LEVELS["warning"]]
    assert [r["message"] for r in loud if "database" not in r["message"]] == [], told
    assert sum("cannot reach the database" in r["message"] for r in records) == 1, told
    assert sum("reaching the database again" in r["message"] for r in records) == 1
    assert not [r for r in records if "cannot reach the platform" in r["message"]], told
    assert not [r for r in records if "dispatcher loop error" in r["message"] or "traceback" in r], told
    assert len(during) <= 40, f"{len(during)} lines in {outage.seconds:.0f}s: {told}"
    assert all(ledger.processed_ids()[(dm.customer.channel, dm.message_id)] for dm in outage.written)
    assert ledger.problems() == []
