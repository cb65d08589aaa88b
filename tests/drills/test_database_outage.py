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
from contextlib import suppress
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from .conftest import BotProcess, Fakes, Ledger, engine_for, incidents_of, seed_zulip_cursor, wait_until
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


def test_a_database_outage_is_told_once_as_the_databases_and_nothing_is_lost(fakes: Fakes, make_database, bots) -> None:  # noqa: ANN001
    url = make_database("postgresql")
    engine = engine_for(url)  # the test's own, direct connection
    seed_zulip_cursor(engine)
    people = [fakes.add_customer(engine, "zulip", 1), fakes.add_customer(engine, "mastodon", 1)]
    ledger = Ledger(fakes, engine)
    parsed = make_url(url)
    proxy = CuttableProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    try:
        via_proxy = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        bot: BotProcess = bots("deskbot", fakes.env(via_proxy))
        bot.start().wait_ready()
        for person in people:
            fakes.dm(person, "open")
        for person in people:
            person.incidents = wait_until(lambda p=person: incidents_of(engine, p), 30, f"{person.name}'s incident")
        wait_until(ledger.all_answered, 30, "the opening DMs to be answered")
        before = len(bot.log_records())

        proxy.cut()
        began = time.monotonic()
        time.sleep(2.0)
        during_outage = [fakes.dm(person, "plain") for person in people]  # waits on the platforms
        told_down = wait_until(
            lambda: next((r for r in bot.log_records()[before:] if "cannot reach the database" in r["message"]), None),
            OUTAGE_SECONDS - 3,
            "the database's outage to be told",
        )
        code, readyz = bot.get("/readyz")
        assert code == 503 and "database unreachable" in readyz, readyz
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))
        during = bot.log_records()[before:]
        proxy.restore()

        wait_until(ledger.all_answered, 45, "every DM to be answered after the recovery")
        wait_until(
            lambda: any("reaching the database again" in r["message"] for r in bot.log_records()[before:]),
            15,
            "one line saying the database is back",
        )
        wait_until(bot.ready, 15, "/readyz to be 200 again")
        records = bot.log_records()[before:]
        assert bot.terminate() == 0
    finally:
        proxy.close()

    told = [f"{r['level']} {r.get('logger')}: {r['message']}" for r in during if LEVELS[r["level"]] >= LEVELS["info"]]
    print(f"\n[database outage] {len(during)} log lines during {OUTAGE_SECONDS:.0f}s, at INFO+:")
    print("\n".join("  " + line for line in told))
    told_once_and_nothing_lost(told_down, during, records, ledger, during_outage, OUTAGE_SECONDS)
    engine.dispose()


def told_once_and_nothing_lost(
    told_down: dict[str, Any],
    during: list[dict[str, Any]],
    records: list[dict[str, Any]],
    ledger: Ledger,
    during_outage: list[Any],
    seconds: float,
) -> None:
    """A database outage of `seconds` was told as one: one WARNING about the database when it began
    (`told_down`), one line when it ended, nothing blamed on a platform, no traceback, a quiet log
    meanwhile (`during`; `records`: from the outage to the end), every message written meanwhile
    (`during_outage`) handled, and nothing lost or doubled."""
    told = [f"{r['level']} {r.get('logger')}: {r['message']}" for r in during if LEVELS[r["level"]] >= LEVELS["info"]]
    assert told_down["level"] == "warning" and told_down.get("channel") is None and told_down["component"] == "database"
    loud = [r for r in during if LEVELS[r["level"]] >= LEVELS["warning"]]
    assert [r["message"] for r in loud if "database" not in r["message"]] == [], told
    assert sum("cannot reach the database" in r["message"] for r in records) == 1, told
    assert sum("reaching the database again" in r["message"] for r in records) == 1
    assert not [r for r in records if "cannot reach the platform" in r["message"]], told
    assert not [r for r in records if "dispatcher loop error" in r["message"] or "traceback" in r], told
    assert len(during) <= 40, f"{len(during)} lines in {seconds:.0f}s: {told}"
    assert all(ledger.processed_ids()[(dm.customer.channel, dm.message_id)] for dm in during_outage)
    assert ledger.problems() == []
