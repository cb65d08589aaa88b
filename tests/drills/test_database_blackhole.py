"""A black hole between deskbot and PostgreSQL: packets dropped silently, no reset, no refusal.

A firewall or NAT that forgot the connection, a paused VM, a failover that left the old address
dead: the connections stay open at both ends and nothing answers. Without timeouts of its own a
statement then waits as long as the kernel retransmits (~15 minutes), a connection attempt
psycopg's 130 seconds: deskbot hangs silently, and a replica behind the black hole goes on
receiving its channels while another takes them over. storage.db gives every connection libpq's
`connect_timeout`, keepalives and `tcp_user_timeout`, and asks the server to give up on a silent
client too, a little later (deploy/README.md, "The database's outages").

A proxy in this process cannot make such a black hole: the kernel under it acknowledges what the
bot sends and answers its keepalive probes whatever the proxy does, and only connection attempts
would time out. So the path is real. `deskbot run` (with the fake platforms) lives in a network
namespace of its own and reaches PostgreSQL over a veth pair into a second namespace, where a proxy
takes each connection on to the machine's PostgreSQL. `black_hole()` points the neighbour entry at
each end of the pair at a MAC address nobody has: every frame, both ways, is dropped silently,
on the established connections and for new ones alike, until `restore()` puts them back. The
proxy never closes a connection on its own: its end of each one stands for PostgreSQL's and gives
up on a silent client as PostgreSQL does with the settings deskbot asks of it (checked against the
server by `test_the_defaults_apply_at_both_ends_and_the_urls_own_values_win`), ending the session.

Network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN; CI has it): elsewhere the drills skip.
Nothing is changed on the machine's own network: every `ip` command runs in a namespace made here,
and the namespaces go with the test. The bot's URL sets lower timeouts than the defaults, which
the operator's URL must be able to do (that is tested too), so that a drill takes seconds per step.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from storage import db
from storage.db import PG_CONNECT_DEFAULTS, SERVER_TIMEOUT_MARGIN_MS, make_engine, server_timeouts
from storage.leases import ChannelLease
from tests.conftest import PG_BASE

from .conftest import (
    BOT_EMAIL,
    REPO,
    BotProcess,
    CustomersWriting,
    Fakes,
    _die_with_parent,
    drill_store,
    open_incidents,
    wait_until,
)
from .test_database_outage import address_of, database_outage, told_once_and_nothing_lost
from .test_replicas import mastodon_streams, one_receiver_each, start_a_then_b

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: The bot's timeouts in the drills, through its URL's query (they must win over the defaults).
FAST = {
    "connect_timeout": "2",  # libpq's least
    "keepalives_idle": "1",
    "keepalives_interval": "1",
    "keepalives_count": "2",
    "tcp_user_timeout": "2000",
}
#: What the server is asked for with FAST (storage.db.server_timeouts): tcp_user_timeout 12 s.
SERVER_SIDE = server_timeouts(FAST)
#: The outage told within this of the black hole: a statement, or a connection attempt, fails 2 s
#: after it went into the black hole (4 s for an idle pooled connection tested first, then
#: replaced), 5 s of failing make an outage (bot.channel_health), told at the next second's tick.
#: With the defaults (20 s, 10 s) it would be told after 25 s at the soonest; without any, never.
TOLD_WITHIN = 12.0
OUTAGE_SECONDS = 15.0
#: A replica behind a black hole stops receiving within this: its lease watchdog's `SELECT 1`
#: (every 2 s, bot.runtime), or a receive loop's write, goes into the black hole and fails 2 s later;
#: the loop ends once its last cursor write has failed too (a connection attempt: 2 s), and a Zulip
#: long-poll already waiting then ends with its queue (the fake answers one within 5 s anyway).
#: With the defaults it would take 20 s and more; without any timeouts, a quarter of an hour.
GIVEN_UP_WITHIN = 10.0
#: The server ends the session holding the lock 12 s after it last heard from the replica (FAST's
#: tcp_user_timeout plus storage.db's margin); the other replica tries every 2 s.
TAKEN_OVER_WITHIN = 25.0

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
#: This process's own network namespace, which no `ip` command here may touch.
MACHINE_NETNS = os.stat("/proc/self/ns/net").st_ino
T = TypeVar("T")


class Netns:
    """A network namespace made by this process, held by a file descriptor (closed: it goes)."""

    def __init__(self) -> None:
        made: dict[str, int] = {}

        def unshare() -> None:  # in a thread that ends there: the rest of the process stays where it is
            if _libc.unshare(CLONE_NEWNET) != 0:
                made["errno"] = ctypes.get_errno()
                return
            made["fd"] = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

        thread = threading.Thread(target=unshare, name="netns-unshare")
        thread.start()
        thread.join()
        if "fd" not in made:
            raise OSError(made.get("errno", 0), os.strerror(made.get("errno", 0)))
        self.fd = made["fd"]
        self.path = f"/proc/{os.getpid()}/fd/{self.fd}"
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str, other: Netns | None = None) -> None:
        """`ip ARGS` in this namespace (`other`: a namespace the arguments name by its `path`)."""
        assert os.fstat(self.fd).st_ino != MACHINE_NETNS, "never on the machine's own network"
        fds = (self.fd,) if other is None else (self.fd, other.fd)
        done = subprocess.run(["nsenter", f"--net={self.path}", "ip", *args], pass_fds=fds, capture_output=True)
        assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.decode().strip()}"

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()` in a thread inside: the sockets it makes (and the threads it starts) are this namespace's."""
        out: dict[str, Any] = {}

        def run() -> None:
            try:
                if _libc.setns(self.fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                out["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 — raised again in the caller
                out["error"] = exc

        thread = threading.Thread(target=run, name="netns-call", daemon=True)
        thread.start()
        thread.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """A process inside (started by this thread: its PR_SET_PDEATHSIG follows this thread)."""
        return subprocess.Popen(["nsenter", f"--net={self.path}", *argv], pass_fds=(self.fd,), **kwargs)

    def close(self) -> None:
        os.close(self.fd)


class DatabasePath:
    """The bot's way to PostgreSQL: a veth pair from the bots' namespace (198.18.N.1) to `far`
    (198.18.N.2:5432), where a proxy carries each connection on to `target`."""

    #: A MAC address no interface has: frames sent to it are dropped by the other end, silently.
    NOBODY = "02:00:00:00:00:ff"

    def __init__(self, n: int, bots: Netns, far: Netns, target: tuple[str, int]) -> None:
        self.bots, self.far, self.target = bots, far, target
        self.bot_ip, self.far_ip = f"198.18.{n}.1", f"198.18.{n}.2"
        self.bot_dev, self.far_dev = f"dkbot{n}", f"dkdb{n}"
        self.bot_mac, self.far_mac = f"02:00:00:00:{n:02x}:01", f"02:00:00:00:{n:02x}:02"
        bots.ip(
            "link", "add", self.bot_dev, "address", self.bot_mac, "type", "veth",
            "peer", "name", self.far_dev, "address", self.far_mac, "netns", far.path,
            other=far,
        )  # fmt: skip
        for ns, dev, ip in ((bots, self.bot_dev, self.bot_ip), (far, self.far_dev, self.far_ip)):
            ns.ip("addr", "add", f"{ip}/30", "dev", dev)
            ns.ip("link", "set", dev, "up")
        self._neighbours(self.far_mac, self.bot_mac)
        self.listener = far.call(lambda: socket.create_server((self.far_ip, 5432)))
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        # Started by this (the test's) thread: the connections on to PostgreSQL are made on the machine.
        threading.Thread(target=self._accept, name=f"db-path-{n}", daemon=True).start()

    def url(self, database_url: str, **query: str) -> str:
        """`database_url` through this path, with the drills' timeouts and `query` in its query."""
        parsed = make_url(database_url).set(host=self.far_ip, port=5432)
        return parsed.update_query_dict({**FAST, **query}).render_as_string(hide_password=False)

    def black_hole(self) -> None:
        """Drop every frame on the path, both ways, silently (nothing is closed, reset or refused)."""
        self._neighbours(self.NOBODY, self.NOBODY)

    def restore(self) -> None:
        self._neighbours(self.far_mac, self.bot_mac)

    def _neighbours(self, far_mac: str, bot_mac: str) -> None:
        self.bots.ip("neigh", "replace", self.far_ip, "lladdr", far_mac, "dev", self.bot_dev, "nud", "permanent")
        self.far.ip("neigh", "replace", self.bot_ip, "lladdr", bot_mac, "dev", self.far_dev, "nud", "permanent")

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._as_postgresql_would(client)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _as_postgresql_would(client: socket.socket) -> None:
        """This end of the connection stands for PostgreSQL's: it gives up on a silent client as
        PostgreSQL does with what deskbot asks of it (SERVER_SIDE), and the session ends then."""
        client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, int(SERVER_SIDE["tcp_keepalives_idle"]))
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, int(SERVER_SIDE["tcp_keepalives_interval"]))
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, int(SERVER_SIDE["tcp_keepalives_count"]))
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(SERVER_SIDE["tcp_user_timeout"]))

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                with suppress(OSError):
                    s.close()


class BotInside(BotProcess):
    """`deskbot run` inside the bots' namespace; its HTTP server asked from inside too."""

    def __init__(self, netns: Netns, name: str, env: dict[str, str], log_path: Path) -> None:
        super().__init__(name, env, log_path)
        self.netns = netns

    def start(self) -> BotInside:
        assert not self.alive, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            self.proc = self.netns.popen(
                [sys.executable, "-m", "bot.cli", "run"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.starts += 1
        return self

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        return self.netns.call(lambda: BotProcess.get(self, path, timeout))


@pytest.fixture
def network() -> Iterator[tuple[Netns, Netns]]:
    """Two network namespaces: the bots' (with the fakes) and the database side's."""
    if not (sys.platform == "linux" and shutil.which("nsenter") and shutil.which("ip")):
        pytest.skip("needs Linux network namespaces, nsenter and ip (iproute2)")
    made: list[Netns] = []
    try:
        made += [Netns(), Netns()]
    except (OSError, AssertionError) as exc:
        for ns in made:
            ns.close()
        pytest.skip(f"needs network namespaces and veth pairs (root: CAP_SYS_ADMIN, CAP_NET_ADMIN): {exc}")
    try:
        yield made[0], made[1]
    finally:
        for ns in made:
            ns.close()


@pytest.fixture
def inside(network: tuple[Netns, Netns], request: pytest.FixtureRequest, tmp_path: Path, bots) -> Iterator[Any]:  # noqa: ANN001
    """(fakes, make_bot): the fakes started inside the bots' namespace, and `make_bot(name, env)`,
    a `deskbot run` there, stopped at the end (by `bots`) and its log shown if the drill fails."""
    ns = network[0]
    fakes = ns.call(lambda: Fakes().start())

    def make_bot(name: str, env: dict[str, str]) -> BotInside:
        bot = BotInside(ns, name, env, tmp_path / f"{name}.log")
        request.node.drill_bots.append(bot)  # the `bots` fixture's list: stopped, and shown on failure
        return bot

    try:
        yield fakes, make_bot
    finally:
        for bot in request.node.drill_bots:
            if bot.alive:
                bot.terminate(15)
        fakes.stop()


def told_twice(bot: BotProcess, since: int, words: str) -> list[dict[str, Any]] | None:
    """The log lines of `bot` from the `since`th on that say `words`, once there are two (a channel each)."""
    found = [r for r in bot.log_records()[since:] if words in r["message"]]
    return found if len(found) >= 2 else None


def test_a_black_hole_to_the_database_is_told_within_seconds_and_nothing_is_lost(
    network: tuple[Netns, Netns], inside: Any, make_database
) -> None:  # noqa: ANN001
    fakes, make_bot = inside
    url = make_database("postgresql")
    engine, people, ledger = drill_store(fakes, url)
    path = DatabasePath(1, *network, address_of(url))
    try:
        bot: BotInside = make_bot("deskbot", fakes.env(path.url(url)))
        bot.start().wait_ready()
        open_incidents(fakes, engine, people, ledger)
        outage = database_outage(
            bot,
            ledger,
            people,
            path.black_hole,
            path.restore,
            seconds=OUTAGE_SECONDS,
            told_within=TOLD_WITHIN,
            told="the black hole to be told as the database's outage (a bot without timeouts hangs silently)",
            readyz_timeout=15,
        )
    finally:
        path.close()

    heading = (
        f"[database black hole] told after {outage.told_after:.1f}s; "
        f"{len(outage.during)} log lines in {OUTAGE_SECONDS:.0f}s:"
    )
    told_once_and_nothing_lost(outage, ledger, heading)
    engine.dispose()


def zulip_polling(fakes: Fakes) -> int:
    """The bot's Zulip event queues with a long-poll waiting now (one per replica receiving)."""
    realm, bot = fakes.zulip.realm, fakes.zulip.user(BOT_EMAIL).user_id
    with realm.cond:
        return sum(1 for q in realm.queues.values() if q.user_id == bot and not q.dead and q.pollers > 0)


class ReceiverWatch:
    """Who receives, as the fakes see it, every 20 ms: the bot's Zulip event queues being polled
    and its Mastodon streams open (each replica that receives a channel has one)."""

    def __init__(self, fakes: Fakes) -> None:
        self.fakes = fakes
        self.samples: list[tuple[float, int, int]] = []  # (monotonic time, Zulip queues polled, Mastodon streams)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="receiver-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append((time.monotonic(), zulip_polling(self.fakes), mastodon_streams(self.fakes)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def most(self) -> tuple[int, int]:
        """The most receivers seen at once: (Zulip, Mastodon)."""
        return max(z for _, z, _ in self.samples), max(m for _, _, m in self.samples)

    def nobody_receiving(self, since: float, hold: float = 1.0) -> float | None:
        """When, after `since`, both channels began a stretch of at least `hold` seconds received by nobody."""
        began = None
        for at, zulip, mastodon in self.samples:
            if at < since:
                continue
            if zulip or mastodon:
                began = None
            elif began is None:
                began = at
            elif at - began >= hold:
                return began
        return None

    def both_received(self, since: float) -> float | None:
        """When, after `since`, both channels were received again."""
        return next((at for at, zulip, mastodon in self.samples if at >= since and zulip and mastodon), None)


def test_a_lease_holder_behind_a_black_hole_stops_receiving_before_the_other_replica_takes_over(
    network: tuple[Netns, Netns], inside: Any, make_database
) -> None:  # noqa: ANN001
    """A receives both channels; then its path to the database goes into a black hole, while B's
    stays clean. A must stop receiving within seconds (its lock's connection fails the watchdog's
    check, or a receive loop's write fails), before the server ends A's session and frees the
    locks; B then takes over, and at no moment do both receive a channel (seen from the fakes).
    Once A's path is back, A stands by. What customers write all along is answered once."""
    fakes, make_bot = inside
    url = make_database("postgresql")
    engine, people, ledger = drill_store(fakes, url)
    target = address_of(url)
    path_a, path_b = DatabasePath(1, *network, target), DatabasePath(2, *network, target)
    try:
        a: BotInside = make_bot("replica-a", fakes.env(path_a.url(url, application_name="replica-a")))
        b: BotInside = make_bot("replica-b", fakes.env(path_b.url(url, application_name="replica-b")))
        start_a_then_b(a, b, engine)
        open_incidents(fakes, engine, people)
        writer = CustomersWriting(fakes, people, 0.5).start()
        wait_until(lambda: one_receiver_each(engine, fakes, "replica-a"), 10, "A alone receiving")
        receivers = ReceiverWatch(fakes)
        a_before, b_before = len(a.log_records()), len(b.log_records())

        path_a.black_hole()
        began = time.monotonic()
        stopped = wait_until(
            lambda: receivers.nobody_receiving(began),
            GIVEN_UP_WITHIN + 1.0,
            "A to stop receiving both channels (a replica without timeouts goes on receiving)",
            interval=0.1,
        )
        assert not told_twice(b, b_before, "took over receiving"), "B took over before A stopped"
        taken = wait_until(
            lambda: told_twice(b, b_before, "took over receiving"), TAKEN_OVER_WITHIN, "B to take both channels over"
        )
        after = wait_until(lambda: one_receiver_each(engine, fakes, "replica-b"), 15, "B alone receiving")
        time.sleep(2.0)  # customers write on; then A's path comes back and A stands by
        path_a.restore()
        wait_until(
            lambda: any("standing by to take over" in r["message"] for r in a.log_records()[a_before:]),
            20,
            "A to stand by once its path is back",
        )
        writer.stop()
        wait_until(ledger.all_answered, 90, "every DM to be answered", interval=0.25)
        still = wait_until(lambda: one_receiver_each(engine, fakes, "replica-b"), 10, "B still alone receiving")
        receivers.stop()
        received_again = receivers.both_received(stopped)
        problems = ledger.problems()
        told_a = [r["message"] for r in a.log_records()[a_before:]]
        assert a.terminate() == 0 and b.terminate() == 0
    finally:
        path_a.close()
        path_b.close()

    most = receivers.most()
    print(
        f"\n[database black hole, replicas] A stopped receiving {stopped - began:.1f}s into the black hole "
        f"({sum('lost this channel' in m for m in told_a)} channel(s) by its lease watchdog, the others by a failed "
        f"write); both channels received again (B) after {(received_again or float('inf')) - began:.1f}s; most "
        f"receivers at once: Zulip {most[0]}, Mastodon {most[1]}; after: {after}; {ledger.counts()}; "
        f"lost/doubled: {len(problems)}"
    )
    assert stopped - began <= GIVEN_UP_WITHIN, f"A stopped receiving after {stopped - began:.1f}s"
    assert most == (1, 1), f"two replicas received a channel at once: {most}"
    assert len(taken) == 2 and received_again is not None and received_again - began <= TAKEN_OVER_WITHIN
    assert still == after
    assert not any("took over receiving" in m for m in told_a), told_a[-10:]
    assert problems == []
    engine.dispose()


# -- the settings themselves, on the machine's PostgreSQL ------------------------------------------------


def _client_and_server(engine: sa.Engine) -> tuple[dict[str, str], dict[str, str]]:
    """A new connection's libpq parameters, and the TCP settings its session asked the server for."""
    with engine.connect() as connection:
        driver = connection.connection.dbapi_connection
        assert driver is not None
        client = driver.info.get_parameters()
        rows = connection.exec_driver_sql(
            "SELECT name, setting FROM pg_settings WHERE source <> 'default' AND name IN"
            " ('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout')"
        ).all()
    engine.dispose()
    return client, {name: setting for name, setting in rows}


def test_the_defaults_apply_at_both_ends_and_the_urls_own_values_win() -> None:
    plain = PG_BASE + ("&" if "?" in PG_BASE else "?") + "application_name=deskbot-settings"
    for make in (make_engine, db.migration_engine):
        client, server = _client_and_server(make(plain))
        assert {k: client.get(k) for k in PG_CONNECT_DEFAULTS} == {k: str(v) for k, v in PG_CONNECT_DEFAULTS.items()}
        assert server == {
            "tcp_keepalives_idle": "10",
            "tcp_keepalives_interval": "5",
            "tcp_keepalives_count": "3",
            "tcp_user_timeout": str(20_000 + SERVER_TIMEOUT_MARGIN_MS),
        }

    # The operator's URL wins over every default it names (SQLAlchemy would let connect_args win).
    client, server = _client_and_server(make_engine(plain + "&" + "&".join(f"{k}={v}" for k, v in FAST.items())))
    assert {k: client.get(k) for k in FAST} == FAST
    assert (
        server
        == SERVER_SIDE
        == {
            "tcp_keepalives_idle": "1",
            "tcp_keepalives_interval": "1",
            "tcp_keepalives_count": "2",
            "tcp_user_timeout": "12000",
        }
    )
    # So does what it asks of the server itself; and keepalives switched off are off at both ends.
    client, server = _client_and_server(make_engine(plain + "&keepalives=0&options=-c%20tcp_user_timeout%3D7000"))
    assert client["keepalives"] == "0" and client["tcp_user_timeout"] == "20000"
    assert server == {"tcp_user_timeout": "7000"}


def test_a_lease_whose_connection_died_is_given_up_at_once() -> None:
    """The watchdog's check on a lock whose connection failed says so at once: no unlock on a new
    connection (which, behind a black hole, would wait for connect_timeout) and no error."""
    engine = make_engine(PG_BASE)
    channel = f"drill-{uuid.uuid4().hex}"
    lease = ChannelLease(engine, channel)
    try:
        assert lease.try_acquire() and lease.holds()
        assert lease._connection is not None
        driver = lease._connection.connection.dbapi_connection
        assert driver is not None
        with engine.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({driver.info.backend_pid})")
        began = time.monotonic()
        assert lease.holds() is False
        assert time.monotonic() - began < 1.0
        other = ChannelLease(engine, channel)
        assert wait_until(other.try_acquire, 5, "the lock to be free for another")
        other.release()
    finally:
        lease.release()
        engine.dispose()
