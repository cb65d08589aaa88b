"""What the process benchmarks share: the fakes, the bots as processes, the store, RSS.

The benchmarks in this folder that compare deskbot with a bare echo bot
(`backlog_drain`, `memory`) run every bot as a process of its own and the
fake server inside the benchmark's process, which does nothing else while a
bot works (it only looks at the fake's records now and then). So each bot has
an interpreter to itself, and both are measured against the same fake code.

The bots:

* deskbot on Zulip: the real `deskbot run` command (`.venv/bin/deskbot run`),
  configured through its environment variables, SQLite or PostgreSQL.
* deskbot on Mastodon: `python -m bench._common deskbot-lifted`, which is
  `deskbot run` (`bot.serve.serve`) with one difference: the Mastodon
  channel's own copy of Mastodon's posting budget (300 statuses per 3 hours,
  a constructor argument of `MastodonChannel`, not a setting) is raised
  like the fake's. Without it no bot could answer 1,000 DMs in 3 hours.
* the echo bots: `python -m bench._common echo-zulip|echo-mastodon`, written
  with the same client library as deskbot's channel (`zulip`, `Mastodon.py`),
  the plainest catch-up-then-listen loop that answers every DM with its text.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/x.py` as well as `python -m bench.x`
    sys.path.insert(0, str(REPO))

from bench.floor_store import FloorStore  # noqa: E402

BOT_EMAIL, BOT_KEY = "deskbot-bot@example.com", "deskbot-key"
ENGINEER = "eng@example.com"
STREAM = "support"
MASTODON_TOKEN = "bench-token"
#: Fake Mastodon limits for these benchmarks: far above what 10,000 messages need.
LIFTED = 10_000_000


def zulip_customer(i: int) -> str:
    return f"customer{i:04d}@example.com"


def mastodon_customer(i: int) -> str:
    return f"customer{i:04d}@remote.example"


# -- processes ---------------------------------------------------------------------------


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of `pid`, in KiB, from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class BotProcess:
    """A bot running as a child process; stdout and stderr go to `log`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    started: float = 0.0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BotProcess:
        self.started = time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited ({self.proc and self.proc.returncode}); see {self.log}:\n" + self.tail()
            )

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, and SIGKILL if it has not exited within `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESKBOT_", "ZULIP_", "MASTODON_"))}
    env["PYTHONPATH"] = str(REPO)
    # Every message answered, as the echo bot does: the benchmarks count answers (memory.py's waves
    # add plain messages to a case, which the quiet rule, DESKBOT_ACK_QUIET_MINUTES, leaves unanswered
    # within ten minutes of the customer's last). `status`, the latency figures' DM, is always answered.
    env["DESKBOT_ACK_QUIET_MINUTES"] = "0"
    return env


def deskbot_zulip(site: str, database_url: str, tmp: Path, name: str = "deskbot") -> BotProcess:
    """`deskbot run` with the Zulip channel; /readyz on `http_port` (see `wait_ready`)."""
    port = free_port()
    env = base_env() | {
        "DESKBOT_DATABASE_URL": database_url,
        "ZULIP_SITE": site,
        "ZULIP_EMAIL": BOT_EMAIL,
        "ZULIP_API_KEY": BOT_KEY,
        "DESKBOT_ZULIP_STREAM": STREAM,
        "DESKBOT_ENGINEERS": ENGINEER,
        "DESKBOT_HTTP_ADDR": f"127.0.0.1:{port}",
    }
    deskbot = Path(sys.executable).parent / "deskbot"
    argv = [str(deskbot), "run"] if deskbot.exists() else [sys.executable, "-m", "bot.cli", "run"]
    bot = BotProcess(name, argv, env, tmp / f"{name}.log", tmp)
    bot.http_port = port  # type: ignore[attr-defined]
    return bot


def deskbot_mastodon(base_url: str, database_url: str, tmp: Path, name: str = "deskbot") -> BotProcess:
    """`deskbot run` with the Mastodon channel, its posting budget raised like the fake's."""
    port = free_port()
    env = base_env() | {
        "DESKBOT_DATABASE_URL": database_url,
        "MASTODON_API_BASE_URL": base_url,
        "MASTODON_ACCESS_TOKEN": MASTODON_TOKEN,
        "DESKBOT_HTTP_ADDR": f"127.0.0.1:{port}",
    }
    argv = [sys.executable, "-m", "bench._common", "deskbot-lifted", "--posting-budget", str(LIFTED)]
    bot = BotProcess(name, argv, env, tmp / f"{name}.log", tmp)
    bot.http_port = port  # type: ignore[attr-defined]
    return bot


def echo_process(kind: str, url: str, tmp: Path, *extra: str, name: str = "echo") -> BotProcess:
    argv = [sys.executable, "-m", "bench._common", f"echo-{kind}", "--url", url, *extra]
    return BotProcess(name, argv, base_env(), tmp / f"{name}.log", tmp)


def wait_ready(bot: BotProcess, timeout: float = 60.0) -> float:
    """Until the bot says it is ready: deskbot's /readyz answers 200, an echo bot logs `ready`.

    Returns the seconds since the process was started.
    """
    deadline = time.monotonic() + timeout
    port = getattr(bot, "http_port", None)
    while time.monotonic() < deadline:
        bot.check()
        if port is not None:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return time.monotonic() - bot.started
        elif "ready" in bot.tail(200).splitlines():
            return time.monotonic() - bot.started
        time.sleep(0.05)
    raise RuntimeError(f"{bot.name} not ready within {timeout}s:\n{bot.tail()}")


def stop_cleanly(deskbot: BotProcess) -> None:
    """Stop deskbot (SIGTERM); a RuntimeError, with the end of its log, unless it exits with 0."""
    if deskbot.stop() != 0:
        raise RuntimeError(f"deskbot did not stop cleanly:\n{deskbot.tail()}")


# -- the store -----------------------------------------------------------------------------


@contextlib.contextmanager
def database(postgres: str | None, tmp: Path, name: str) -> Iterator[str]:
    """A fresh store: SQLite in `tmp`, or a database `name` created on the PostgreSQL server and dropped after."""
    if postgres is None:
        yield f"sqlite:///{tmp / (name + '.db')}"
        return
    url = create_database(postgres, name)
    try:
        yield url
    finally:
        drop_database(postgres, name)


@contextlib.contextmanager
def stores(postgres: str | None, tmp: Path, name: str, floor: bool) -> Iterator[tuple[str, str]]:
    """deskbot's fresh store and, with `floor`, one for the floor bot (bench/floor_store.py; else '')."""
    with database(postgres, tmp, name) as url:
        if not floor:
            yield url, ""
            return
        with database(postgres, tmp, name + "_floor") as floor_url:
            yield url, floor_url


def create_database(server_url: str, name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server_url: str, name: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def seed_customers(database_url: str, channel: str, addresses: list[str], credits: int = 50) -> None:
    """Migrate, then one customer per address, linked on `channel`, with a pack of `credits`."""
    from bot.services import credits as credit_service
    from bot.services import customers
    from storage.db import make_engine, transaction, upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with transaction(engine) as session:
        for i, address in enumerate(addresses):
            customer, _code = customers.create_customer(session, f"Customer {i:04d}", None, "en", now)
            customers.link_identity(session, customer, channel, address, now)
            credit_service.grant_credits(session, customer, credits, now.date(), "bench", now, months=12)
    engine.dispose()


# -- the fakes, in this process ------------------------------------------------------------


def zulip_fake(customers: int) -> Any:
    from tests.fakes.zulip import FakeZulip

    fake = FakeZulip(heartbeat=50.0)
    fake.add_user("owner@example.com", "Owner", role=100)
    fake.add_user(BOT_EMAIL, "Deskbot", BOT_KEY, is_bot=True)
    fake.add_user(ENGINEER, "Erin Engineer")
    for i in range(customers):
        fake.add_user(zulip_customer(i), f"Customer {i:04d}")
    fake.add_stream(STREAM, invite_only=True, subscribers=[BOT_EMAIL, ENGINEER])
    return fake.start()


class ZulipAnswers:
    """The bot's direct messages on the fake Zulip, counted from a starting point."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.bot_id = fake.user(BOT_EMAIL).user_id
        self.mark()

    def mark(self) -> None:
        with self.fake.realm.cond:
            self._from = len(self.fake.realm.messages)

    def newest_id(self) -> int:
        with self.fake.realm.cond:
            return self.fake.realm.messages[-1].id if self.fake.realm.messages else 0

    def since_mark(self) -> list[Any]:
        with self.fake.realm.cond:
            new = self.fake.realm.messages[self._from :]
        return [m for m in new if m.sender_id == self.bot_id and m.stream_id is None]

    def wait(self, count: int, timeout: float, bot: BotProcess | None = None) -> list[Any]:
        """Until `count` DMs from the bot arrived since the mark; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            answers = self.since_mark()
            if len(answers) >= count:
                return answers
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(answers)} of {count} answers within {timeout}s")
            if bot is not None:
                bot.check()
            time.sleep(0.1)


def mastodon_fake(customers: int) -> Any:
    from tests.fakes.mastodon import FakeMastodon

    fake = FakeMastodon(
        bot_acct="deskbot",
        bot_token=MASTODON_TOKEN,
        api_limit=LIFTED,
        status_limit=LIFTED,
        bot_policy={"for_private_mentions": "accept"},
    ).start()
    for i in range(customers):
        fake.add_account(mastodon_customer(i))
    return fake


@dataclass
class MastodonAnswers:
    """Replies the bot posted on the fake Mastodon, by the status they answer, with the time."""

    fake: Any
    replied: dict[str, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        bot_id = self.fake.bot.id
        inner = self.fake.instance.on_event

        def on_event(account_id: str, event: str, payload: Any) -> None:
            if event == "update" and payload["account"]["id"] == bot_id and account_id == bot_id:
                parent = payload.get("in_reply_to_id")
                with self._lock:
                    if parent and parent not in self.replied:
                        self.replied[parent] = time.monotonic()
                        self.texts[parent] = payload.get("content", "")
            inner(account_id, event, payload)

        self.fake.instance.on_event = on_event

    def wait(self, status_ids: list[str], timeout: float, bot: BotProcess | None = None) -> list[float]:
        """Until every status in `status_ids` has a reply; returns the reply times in that order."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                missing = [s for s in status_ids if s not in self.replied]
                if not missing:
                    return [self.replied[s] for s in status_ids]
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} of {len(status_ids)} DMs unanswered after {timeout}s")
            if bot is not None:
                bot.check()
            time.sleep(0.1)


class PlatformFake:
    """One platform's fake ("zulip" or "mastodon") in this process with `customers` customers, for
    the benchmarks that run one bot at a time against it (`backlog_drain`, `memory`): the bots on
    it, and the customers' DMs and the bot's answers to them, alike on either platform."""

    def __init__(self, platform: str, customers: int) -> None:
        self.platform = platform
        zulip = platform == "zulip"
        self.fake = zulip_fake(customers) if zulip else mastodon_fake(customers)
        self.addresses = [zulip_customer(i) if zulip else mastodon_customer(i) for i in range(customers)]
        self._zulip = ZulipAnswers(self.fake) if zulip else None
        self._mastodon = None if zulip else MastodonAnswers(self.fake)
        self._newest = self._zulip.newest_id() if self._zulip else 0

    def deskbot(self, database_url: str, tmp: Path, name: str) -> BotProcess:
        """deskbot on this fake (not started)."""
        start = deskbot_zulip if self.platform == "zulip" else deskbot_mastodon
        return start(self.fake.url, database_url, tmp, name)

    def echo(self, tmp: Path, name: str, *, catch_up: bool = False) -> BotProcess:
        """The echo bot on this fake (not started); with `catch_up`, it first answers the DMs written
        since the fake started (the Mastodon one always catches up on its notifications)."""
        after = ["--after", str(self._newest)] if catch_up and self._zulip else []
        return echo_process(self.platform, self.fake.url, tmp, *after, name=name)

    def write(self, dms: Iterable[tuple[int, str]]) -> list[str]:
        """Customer `i` writes `text` to deskbot for each (i, text) of `dms` (on Mastodon, a status
        mentioning @deskbot); returns what `answers` waits for."""
        if self._zulip is not None:
            self._zulip.mark()  # its answers are counted from here
            return [str(self.fake.post_dm(self.addresses[i], text)) for i, text in dms]
        return [self.fake.post_status(self.addresses[i], "@deskbot " + text)["id"] for i, text in dms]

    def answers(self, written: list[str], timeout: float, bot: BotProcess) -> list[tuple[float, str]]:
        """Until the bot (which must go on running) has answered each DM `write` returned, within
        `timeout` seconds; their answers, as (time.monotonic() it was stored, its text)."""
        if self._zulip is not None:
            got = self._zulip.wait(len(written), timeout, bot)[: len(written)]
            return [(m.stored_at, m.content) for m in got]
        assert self._mastodon is not None
        times = self._mastodon.wait(written, timeout, bot)
        return [(at, self._mastodon.texts[status]) for at, status in zip(times, written, strict=True)]

    def stop(self) -> None:
        self.fake.stop()


# -- the side-by-side latency benchmarks (`zulip_latency`, `mastodon_latency`) ---------------


def latency_runs(
    args: argparse.Namespace, run_once: Callable[[argparse.Namespace, float, int, Path], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every run the options (`latency_arguments`) ask for: `run_once(args, round_trip_ms, seed, tmp)`
    for each round trip of `--rtt`, `--repeat` times over (the repetition is the seed), in one
    temporary folder."""
    round_trips = [float(x) for x in args.rtt.split(",") if x.strip()]
    runs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        for seed in range(args.repeat):
            for round_trip_ms in round_trips:
                runs.append(run_once(args, round_trip_ms, seed, Path(tmp_name)))
    return runs


@contextlib.contextmanager
def side_by_side(
    desk: BotProcess, kind: str, url: str, tmp: Path, label: str, echo: list[str], floor: list[str] | None
) -> Iterator[list[BotProcess]]:
    """deskbot (`desk`, started) and the bots it is measured beside on the fake at `url`: the echo
    bot (`echo`: its account's arguments) and, given `floor` (the floor bot's, `--store` included),
    the floor bot, both sending from a thread of their own. Yields those beside it once all are
    ready; stops them at the end, and deskbot last, which must exit cleanly."""
    others: list[BotProcess] = []
    try:
        others.append(echo_process(kind, url, tmp, *echo, "--sender-thread", name=f"echo-{label}").start())
        if floor is not None:
            others.append(echo_process(kind, url, tmp, *floor, "--sender-thread", name=f"floor-{label}").start())
        for process in (desk, *others):
            wait_ready(process)
        yield others
    finally:
        for process in others:
            process.stop()
        stop_cleanly(desk)


def paced(rng: random.Random, bots: list[str], dms: int, round_trip_ms: float, gap_ms: float | None) -> Iterator[str]:
    """The customer's pace in the latency benchmarks: `dms` DMs to each of `bots`, taking turns;
    yields whose turn it is when it is time. The gaps are random (exponential), with a mean of
    `gap_ms` (by default two round trips plus 30 ms) for two bots, shorter for three, so that each
    bot gets a DM as often as when there are two."""
    mean_gap = (gap_ms if gap_ms is not None else 2 * round_trip_ms + 30) / 1000
    mean_gap *= 2 / len(bots)
    due = time.monotonic()
    for i in range(len(bots) * dms):
        due += rng.expovariate(1 / mean_gap)
        time.sleep(max(0.0, due - time.monotonic()))
        yield bots[i % len(bots)]


# -- figures ---------------------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def latency_summary(samples: list[float]) -> dict[str, float]:
    """Median, p95 and maximum of latencies in seconds, in milliseconds, and how many."""
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p95_ms": percentile(samples, 0.95) * 1000,
        "max_ms": max(samples) * 1000,
        "n": len(samples),
    }


def latency_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the side-by-side latency benchmarks (`--dms`, `--rtt`, `--gap`, `--repeat`, `--postgres`)."""
    parser.add_argument("--dms", type=int, default=150, help="DMs measured per bot and run (default 150)")
    parser.add_argument("--rtt", default="0,20", help="round trips to simulate, ms, comma-separated (default 0,20)")
    parser.add_argument(
        "--gap", type=float, help="mean time between the customer's DMs, ms (exponential; default 2 x rtt + 30)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per round trip (default 1)")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server URL (a database is created and dropped)")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="a third bot beside them: the echo bot committing the least the guarantees ask first (floor_store.py)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def compare(samples: dict[str, list[float]]) -> dict[str, Any]:
    """The figures of one side-by-side run from each bot's latencies (`deskbot`, `echo`, maybe `floor`)."""
    echo, desk = latency_summary(samples["echo"]), latency_summary(samples["deskbot"])
    figures: dict[str, Any] = {
        "echo": echo,
        "deskbot_status": desk,
        "ratio_median": desk["median_ms"] / echo["median_ms"],
        "ratio_p95": desk["p95_ms"] / echo["p95_ms"],
    }
    if "floor" in samples:
        floor = latency_summary(samples["floor"])
        figures["floor"] = floor
        figures["floor_ratio_median"] = floor["median_ms"] / echo["median_ms"]
    return figures


def latency_line(run: dict[str, Any], targets: dict[int, float]) -> str:
    """One run of a side-by-side latency benchmark as a line, with its verdict against `targets` (rtt -> ratio)."""
    e, d = run["echo"], run["deskbot_status"]
    target = targets.get(int(run["round_trip_ms"]))
    verdict = "" if target is None else (" PASS" if run["ratio_median"] <= target else " FAIL") + f" (<= {target})"
    line = (
        f"  rtt {run['round_trip_ms']:4g} ms  echo median {e['median_ms']:6.2f} p95 {e['p95_ms']:6.2f}"
        f"  deskbot median {d['median_ms']:6.2f} p95 {d['p95_ms']:6.2f} max {d['max_ms']:7.2f}"
        f"  ratio {run['ratio_median']:.2f}x (p95 {run['ratio_p95']:.2f}x){verdict}"
    )
    if "floor" in run:
        floor = run["floor"]["median_ms"]
        line += f"  floor median {floor:6.2f} = {run['floor_ratio_median']:.2f}x echo"
    return line


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "?",
    )
    mem = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    return f"{os.cpu_count()} cores ({cpu}), {mem / 1024 / 1024:.0f} GiB RAM, Python {sys.version.split()[0]}"


# -- the bots the benchmarks start (python -m bench._common ...) -----------------------------


def _echo_zulip(
    url: str,
    after: int | None,
    email: str = BOT_EMAIL,
    key: str = BOT_KEY,
    *,
    sender: bool = False,
    store: FloorStore | None = None,
) -> None:
    """The baseline on Zulip: register, catch up from `after` with GET /messages, then long-poll.

    With `sender`, replies leave from a thread of their own, so that the long-poll stays
    outstanding while the bot sends (a DM that arrives meanwhile is not held up by the send).
    With `store`, each DM and its answer are committed before the answer leaves, and the
    delivery after it (the floor: bench/floor_store.py).
    """
    import queue as queues

    import zulip

    client = zulip.Client(site=url, email=email, api_key=key, retry_on_errors=False)
    me = client.get_profile()["user_id"]
    queue = client.register(event_types=["message"], narrow=[["is", "dm"]])
    done: set[int] = set()

    def send(message: dict[str, Any]) -> None:
        result = client.send_message({"type": "direct", "to": [message["sender_email"]], "content": message["content"]})
        if store is not None:
            store.sent(message["_row"], result.get("id"))

    outgoing: queues.SimpleQueue[dict[str, Any]] = queues.SimpleQueue()
    if sender:
        # A client of its own: one requests session is not meant to be shared between threads.
        poller = zulip.Client(site=url, email=email, api_key=key, retry_on_errors=False)

        def send_loop() -> None:
            while True:
                send(outgoing.get())

        threading.Thread(target=send_loop, name="echo-send", daemon=True).start()
    else:
        poller = client

    def answer(message: dict[str, Any]) -> None:
        if message["sender_id"] == me or message["id"] in done:
            return
        done.add(message["id"])
        if store is not None:
            key = str(message["id"])
            message["_row"] = store.take("zulip", key, message["sender_email"], message["content"], key)
        if sender:
            outgoing.put(message)
        else:
            send(message)

    if after is not None:
        anchor = after
        while True:
            res = client.get_messages(
                {
                    "anchor": anchor,
                    "include_anchor": False,
                    "num_before": 0,
                    "num_after": 1000,
                    "narrow": [{"operator": "is", "operand": "dm"}],
                    "apply_markdown": False,
                }
            )
            for message in res["messages"]:
                answer(message)
                anchor = message["id"]
            if res.get("found_newest") or not res["messages"]:
                break
    print("ready", flush=True)
    last = queue["last_event_id"]
    while True:
        res = poller.get_events(queue_id=queue["queue_id"], last_event_id=last)
        for event in res.get("events", []):
            last = max(last, event["id"])
            if event["type"] == "message":
                answer(event["message"])


def _echo_mastodon(
    url: str, token: str = MASTODON_TOKEN, *, sender: bool = False, sse: bool = False, store: FloorStore | None = None
) -> None:
    """The baseline on Mastodon: catch up GET /notifications with min_id, then Mastodon.py's stream.

    With `sender`, replies leave from a thread of their own (with a client of its own), so that
    the stream is read while the bot sends (a DM that arrives meanwhile is not held up by the send).
    With `sse`, the stream is read as deskbot's channel reads it, line by line with httpx
    (`/api/v1/streaming/user/notification`, plain JSON), instead of by Mastodon.py's
    `stream_user`, which reads the response a byte at a time and builds its entity classes.
    With `store`, each DM and its answer are committed before the answer leaves, and the
    delivery after it (the floor: bench/floor_store.py).
    """
    import queue as queues

    from mastodon import Mastodon, StreamListener

    api = Mastodon(access_token=token, api_base_url=url, ratelimit_method="throw")
    me = api.account_verify_credentials()
    done: set[str] = set()

    def send(status: Any) -> None:  # Mastodon.py's entities are dicts too
        posted = api_send.status_post(
            f"@{status['account']['acct']} echo", in_reply_to_id=status["id"], visibility="direct"
        )
        if store is not None:
            store.sent(status["_row"], posted["id"])

    outgoing: queues.SimpleQueue[Any] = queues.SimpleQueue()
    if sender:
        # A client of its own: one requests session is not meant to be shared between threads.
        api_send = Mastodon(access_token=token, api_base_url=url, ratelimit_method="throw")

        def send_loop() -> None:
            while True:
                send(outgoing.get())

        threading.Thread(target=send_loop, name="echo-send", daemon=True).start()
    else:
        api_send = api

    def answer(notification: Any) -> None:
        status = notification.get("status")
        if (
            notification["type"] != "mention"
            or not status
            or str(status["account"]["id"]) == str(me.id)
            or str(status["id"]) in done
        ):
            return
        done.add(str(status["id"]))
        if store is not None:
            status["_row"] = store.take(
                "mastodon", str(status["id"]), status["account"]["acct"], "echo", str(notification["id"])
            )
        if sender:
            outgoing.put(status)
        else:
            send(status)

    cursor = "0"
    while True:
        page = api.notifications(types=["mention"], min_id=cursor, limit=80)
        if not page:
            break
        for notification in sorted(page, key=lambda n: (len(str(n.id)), str(n.id))):
            answer(notification)
            cursor = max(cursor, str(notification.id), key=lambda i: (len(i), i))

    if sse:
        import httpx

        with httpx.stream(
            "GET",
            f"{url}/api/v1/streaming/user/notification",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10.0, read=None),
        ) as response:
            response.raise_for_status()
            print("ready", flush=True)
            event = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "notification":
                    answer(json.loads(line[5:]))
        return

    class Echo(StreamListener):
        def on_notification(self, notification: Any) -> None:
            answer(notification)

    print("ready", flush=True)
    api.stream_user(Echo(), reconnect_async=False)


def _deskbot_lifted(posting_budget: int) -> int:
    """`deskbot run`, with the Mastodon channel's own posting budget raised to `posting_budget`."""
    import bot.serve
    from adapters.mastodon import MastodonChannel, MastodonTuning
    from bot.config import Settings

    build = bot.serve.build_channels

    def build_lifted(settings: Settings) -> list[Any]:
        channels = build(settings)
        return [
            MastodonChannel(
                settings.mastodon_api_base_url,
                settings.mastodon_access_token.get_secret_value(),
                tuning=MastodonTuning(posting_budget=posting_budget),
            )
            if c.name == "mastodon"
            else c
            for c in channels
        ]

    bot.serve.build_channels = build_lifted
    return bot.serve.serve(Settings())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._common", description="bots the benchmarks start")
    sub = parser.add_subparsers(dest="what", required=True)
    z = sub.add_parser("echo-zulip")
    z.add_argument("--url", required=True)
    z.add_argument("--after", type=int, help="catch up on DMs newer than this message id first")
    z.add_argument("--email", default=BOT_EMAIL)
    z.add_argument("--key", default=BOT_KEY)
    z.add_argument("--sender-thread", action="store_true", help="send from a thread of its own (poll kept outstanding)")
    z.add_argument("--store", metavar="DATABASE_URL", help="commit each DM and its answer first (the floor)")
    m = sub.add_parser("echo-mastodon")
    m.add_argument("--url", required=True)
    m.add_argument("--token", default=MASTODON_TOKEN)
    m.add_argument("--sender-thread", action="store_true", help="send from a thread of its own (stream kept read)")
    m.add_argument("--sse", action="store_true", help="read the stream with httpx, line by line, as deskbot does")
    m.add_argument("--store", metavar="DATABASE_URL", help="commit each DM and its answer first (the floor)")
    d = sub.add_parser("deskbot-lifted")
    d.add_argument("--posting-budget", type=int, default=LIFTED)
    args = parser.parse_args(argv)
    if args.what != "deskbot-lifted":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    store = FloorStore(args.store) if getattr(args, "store", None) else None
    if args.what == "echo-zulip":
        _echo_zulip(args.url, args.after, args.email, args.key, sender=args.sender_thread, store=store)
    elif args.what == "echo-mastodon":
        _echo_mastodon(args.url, args.token, sender=args.sender_thread, sse=args.sse, store=store)
    else:
        return _deskbot_lifted(args.posting_budget)
    return 0


def json_dump(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


if __name__ == "__main__":
    sys.exit(main())
