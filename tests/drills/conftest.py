"""The drill harness: both fakes in this process, `deskbot run` as real child processes.

* `make_database(backend)` makes a scratch, migrated database (PostgreSQL: a
  uniquely named database dropped at the end; SQLite: a file in tmp_path).
* `fakes` starts the fake Zulip and Mastodon servers on 127.0.0.1 with the
  bot's accounts, the private support stream and an engineer; customers are
  added per drill with `Fakes.add_customer`, which also links them, with
  credits, in the store.
* `BotProcess` is one `deskbot run` (`python -m bot.cli run`) with JSON logs
  in a file, started, SIGKILLed, restarted or stopped by the drill.
* `Ledger` counts every delivery on both fakes against the store and says
  what was lost or doubled.

Each DM a drill writes carries a unique token (`z0007`, `m0042`), so an
incident message, a mirrored case-topic message or a reply can be traced
back to the one DM that caused it.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.services import credits as credit_service
from bot.services import customers
from storage.db import make_engine, transaction, upgrade
from tests.conftest import PG_BASE
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip
from tests.zulip.relay_check import parse_relayed

REPO = Path(__file__).resolve().parents[2]
BOT_EMAIL = "deskbot-bot@example.com"
BOT_NAME = "Deskbot"
BOT_ACCT = "deskbot"
ENGINEER = "eng@example.com"
STREAM = "support"
MASTODON_DOMAIN = "bot.example"

IDEMPOTENCY_KEY = re.compile(r"^deskbot-(\d+)-(\d+)$")
TOKEN = re.compile(r"\b([zm]\d{4,})\b")


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the test process dies (an interrupted run leaves no bot)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# -- databases ---------------------------------------------------------------------------------


class Databases:
    """Scratch databases: PostgreSQL ones uniquely named (and dropped by `drop_all`), SQLite files in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.made: list[str] = []
        self._counter = itertools.count(1)

    def make(self, backend: str) -> str:
        """The URL of a fresh, migrated database on `backend` ("postgresql" or "sqlite")."""
        n = next(self._counter)
        if backend == "sqlite":
            url = f"sqlite:///{self.directory / f'drill{n}.db'}"
        else:
            name = f"deskbot_drill_{os.getpid()}_{n}_{secrets.token_hex(3)}"
            admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            self.made.append(name)
            url = PG_BASE.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        return url

    def drop_all(self) -> None:
        admin = sa.create_engine(PG_BASE, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            for name in self.made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        self.made.clear()


@pytest.fixture
def make_database(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """`make_database("postgresql" | "sqlite")` → the URL of a fresh, migrated database."""
    databases = Databases(tmp_path)
    try:
        yield databases.make
    finally:
        databases.drop_all()


# -- customers and the fakes -----------------------------------------------------------------


@dataclass
class DrillCustomer:
    name: str
    channel: str  # "zulip" or "mastodon"
    address: str  # the Zulip (real) email, or the Mastodon acct (user@domain) as the store keys it
    incidents: list[int] = field(default_factory=list)


@dataclass
class SentDM:
    """One DM a drill wrote: what it was, and what it must cause."""

    customer: DrillCustomer
    message_id: str
    text: str
    token: str
    kind: str  # "open", "ask" (open while one is open), "status", "add" (plain text or #N to an open incident), "typo"
    at: float = field(default_factory=time.monotonic)


class Fakes:
    """The fake Zulip and Mastodon servers, with the bot's accounts and secrets."""

    def __init__(self) -> None:
        self.zulip_key = "zk-" + secrets.token_hex(20)
        self.mastodon_token = "mt-" + secrets.token_hex(20)
        # No rate limit on Zulip (the drills are about faults, not pacing); Mastodon's API
        # window is opened wide for the same reason. The posting budget stays the bot's own
        # (300 statuses per 3 hours, Mastodon's default), so drills keep under it.
        self.zulip = FakeZulip(heartbeat=5.0)
        self.mastodon = FakeMastodon(
            bot_acct=BOT_ACCT,
            bot_token=self.mastodon_token,
            domain=MASTODON_DOMAIN,
            api_limit=1_000_000,
            status_limit=1_000_000,
            heartbeat_interval=0.5,
        )
        self.zulip.add_user(BOT_EMAIL, BOT_NAME, self.zulip_key, is_bot=True)
        self.zulip.add_user(ENGINEER, "Engineer")
        self.zulip.add_stream(STREAM, subscribers=[BOT_EMAIL, ENGINEER])
        self.customers: list[DrillCustomer] = []
        self.sent: list[SentDM] = []
        self._tokens = {"zulip": itertools.count(1), "mastodon": itertools.count(1)}

    def start(self) -> Fakes:
        self.zulip.start()
        self.mastodon.start()
        return self

    def stop(self) -> None:
        self.zulip.stop()
        self.mastodon.stop()

    def env(self, db_url: str) -> dict[str, str]:
        """The environment of a `deskbot run` against both fakes."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DESKBOT_", "ZULIP_", "MASTODON_")) and k != "PYTEST_CURRENT_TEST"
        }
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
                "DESKBOT_DATABASE_URL": db_url,
                "ZULIP_SITE": self.zulip.url,
                "ZULIP_EMAIL": BOT_EMAIL,
                "ZULIP_API_KEY": self.zulip_key,
                "DESKBOT_ZULIP_STREAM": STREAM,
                "DESKBOT_ENGINEERS": ENGINEER,
                "MASTODON_API_BASE_URL": self.mastodon.url,
                "MASTODON_ACCESS_TOKEN": self.mastodon_token,
                "DESKBOT_LOG_FORMAT": "json",
                "DESKBOT_LOG_LEVEL": "INFO",
                # Always open: answers must not depend on the hour the drill runs at.
                "DESKBOT_SERVICE_HOURS": "mon-sun 00:00-24:00",
                "DESKBOT_HOLIDAYS": "none",
            }
        )
        return env

    def add_customer(self, engine: sa.Engine, channel: str, n: int, credits: int = 5) -> DrillCustomer:
        """A customer on one channel, linked in the store with a pack of `credits`."""
        if channel == "zulip":
            address = f"zc{n:02d}@example.com"
            # Keyed in the store by user id (issue 13); every other customer hides the address.
            key = str(
                self.zulip.add_user(address, f"Zulip Customer {n:02d}", email_address_visibility=1 + n % 2).user_id
            )
        else:
            address = f"mc{n:02d}@remote.example"
            self.mastodon.add_account(address, display_name=f"Mastodon Customer {n:02d}")
            self.mastodon.follow(BOT_ACCT, address)
            key = address
        customer = DrillCustomer(f"{channel.title()} Customer {n:02d}", channel, address)
        now = datetime.now(UTC)
        with transaction(engine) as session:
            record, _code = customers.create_customer(session, customer.name, None, "en", now)
            customers.link_identity(session, record, channel, key, now)
            credit_service.grant_credits(session, record, credits, now.date(), "drill", now)
        self.customers.append(customer)
        return customer

    def dm(self, customer: DrillCustomer, kind: str, incident: int | None = None) -> SentDM:
        """The customer writes one DM of `kind` ("open", "open again", "status", "plain", "#N", "typo").

        "open again" is `open <text>` while an incident is open: the bot asks first, whether this is
        a new issue (SPEC §2), and keeps the text as a draft: nothing is opened, stored or mirrored.
        """
        prefix = "z" if customer.channel == "zulip" else "m"
        token = f"{prefix}{next(self._tokens[customer.channel]):04d}"
        if kind == "open":
            text, effect = f"open Drill problem {token} of {customer.name}", "open"
        elif kind == "open again":
            text, effect = f"open Drill problem {token} of {customer.name}", "ask"
        elif kind == "status":
            text, effect = "status", "status"
        elif kind == "plain":
            text, effect = f"More detail {token}: the disk light blinks", "add"
        elif kind == "#N":
            text, effect = f"#{incident} Follow-up {token}: it happened again", "add"
        elif kind == "typo":
            text, effect = "stauts", "typo"
        else:
            raise ValueError(kind)
        if customer.channel == "zulip":
            message_id = str(self.zulip.post_dm(customer.address, text))
        else:
            status = self.mastodon.post_status(customer.address, f"@{BOT_ACCT} {text}", visibility="direct")
            message_id = str(status["id"])
        sent = SentDM(customer, message_id, text, token if effect in ("open", "add") else "", effect)
        self.sent.append(sent)
        return sent

    # what the bot posted
    def zulip_bot_messages(self) -> list[Any]:
        return self.zulip.sent_by(BOT_EMAIL)

    def mastodon_bot_statuses(self) -> list[Any]:
        return self.mastodon.posted_by(BOT_ACCT)


class CustomersWriting:
    """Customers writing all along while a drill breaks things, until `stop()`.

    Every `every` seconds one Zulip and one Mastodon customer (round robin) each
    write a DM to their first incident, the kind cycling through a plain
    message, `status` and `#N …`. `stop()` raises what the writer hit, if anything.
    """

    def __init__(self, fakes: Fakes, people: list[DrillCustomer], every: float) -> None:
        self._fakes, self._people, self._every = fakes, people, every
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._write, name="customers", daemon=True)

    def start(self) -> CustomersWriting:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._errors, self._errors

    def _write(self) -> None:
        kinds = itertools.cycle(["plain", "status", "#N"])
        zulip = itertools.cycle([p for p in self._people if p.channel == "zulip"])
        mastodon = itertools.cycle([p for p in self._people if p.channel == "mastodon"])
        try:
            while not self._stop.is_set():
                kind = next(kinds)
                for person in (next(zulip), next(mastodon)):
                    self._fakes.dm(person, kind, incident=person.incidents[0])
                self._stop.wait(self._every)
        except BaseException as exc:  # noqa: BLE001 — raised again by stop()
            self._errors.append(exc)


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    running = Fakes().start()
    try:
        yield running
    finally:
        running.stop()


def seed_zulip_cursor(engine: sa.Engine) -> None:
    """A stored Zulip cursor, so DMs written before the first start are caught up, not skipped."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO channelcursor (key, value, updated_at) VALUES ('zulip:last_message_id', '0', :now)"),
            {"now": datetime.now(UTC)},
        )


# -- deskbot run --------------------------------------------------------------------------------


class BotProcess:
    """One `deskbot run` child process; its stdout and stderr go to `log_path` (appended)."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.http_addr = f"127.0.0.1:{free_port()}"
        self.env = {**env, "DESKBOT_HTTP_ADDR": self.http_addr}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills: list[float] = []

    def start(self) -> BotProcess:
        assert not self.alive, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> float:
        """SIGKILL; returns the monotonic time of the kill."""
        assert self.proc is not None and self.alive, f"{self.name} is not running"
        at = time.monotonic()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.kills.append(at)
        return at

    def terminate(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.http_addr}{path}", timeout=2) as res:
                return res.status, res.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def ready(self) -> bool:
        return self.alive and self.get("/readyz")[0] == 200

    def wait_ready(self, timeout: float = 30.0) -> None:
        def check() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            return self.ready()

        wait_until(check, timeout, f"{self.name} to be ready", interval=0.1)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines (other lines, such as a traceback printed by Python itself, are skipped)."""
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


@pytest.fixture
def bots(tmp_path: Path) -> Iterator[Callable[..., BotProcess]]:
    """`bots(name, env)` → a BotProcess; every one is stopped at the end of the test."""
    made: list[BotProcess] = []

    def make(name: str, env: dict[str, str]) -> BotProcess:
        bot = BotProcess(name, env, tmp_path / f"{name}.log")
        made.append(bot)
        return bot

    yield make
    for bot in made:
        if bot.alive:
            bot.terminate(15)


# -- counting deliveries -------------------------------------------------------------------------


def reply_kind(text: str) -> str:
    """What a bot reply to a customer answers, from its English text."""
    if re.search(r"Incident #\d+ is open", text):
        return "open"
    if re.search(r"You already have an open incident: #\d+", text):
        return "ask"
    if re.search(r"Added to incident #\d+\.", text):
        return "add"
    if "Your incidents:" in text or "You have no open incidents" in text:
        return "status"
    if "Unknown command" in text:
        return "typo"
    return "other: " + text.splitlines()[0][:80] if text else "other: (empty)"


class Ledger:
    """Every delivery on both fakes, checked against the DMs written and the store.

    `problems()` lists what was lost or doubled; empty means the run was clean.
    """

    def __init__(self, fakes: Fakes, engine: sa.Engine) -> None:
        self.fakes = fakes
        self.engine = engine

    # -- the store
    def outbox(self) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT id, channel, kind, recipient, conversation, state, attempts, platform_ids FROM outbox")
            ).all()

    def processed_ids(self) -> Counter[tuple[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT channel, message_id FROM processedinbound")).all()
        return Counter((c, m) for c, m in rows)

    def incident_bodies(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT body FROM incidentmessage WHERE direction = 'in'")).scalars())

    def zulip_owners(self) -> dict[int, list[int]]:
        """Zulip message id → the outbox rows the store records it for (one, or the run is broken).

        Nothing in a message names its row (issue 13: no reference token), so a message is traced to
        its row by the platform ids each row is recorded with once sent.
        """
        owners: dict[int, list[int]] = {}
        for row in self.outbox():
            if row.channel == "zulip" and row.state == "sent":
                for message_id in json.loads(row.platform_ids or "[]"):
                    owners.setdefault(int(message_id), []).append(row.id)
        return owners

    def row_of(self, message_id: int, owners: dict[int, list[int]]) -> str:
        """The row a Zulip message belongs to ("?id" while it is recorded for none)."""
        rows = owners.get(message_id)
        return f"row {rows[0]}" if rows else f"?{message_id}"

    # -- the fakes
    def zulip_direct_replies(self) -> dict[str, list[Any]]:
        """The bot's 1:1 DMs on Zulip, by customer email."""
        fake = self.fakes.zulip
        bot = fake.user(BOT_EMAIL)
        out: dict[str, list[Any]] = {}
        for m in self.fakes.zulip_bot_messages():
            if m.stream_id is not None:
                continue
            others = [fake.realm.users[i].email for i in m.participants if i != bot.user_id]
            if len(others) == 1:
                out.setdefault(others[0], []).append(m)
        return out

    def mastodon_first_parts(self) -> dict[str, list[Any]]:
        """The bot's statuses that answer a customer's status directly, by the status answered."""
        out: dict[str, list[Any]] = {}
        for p in self.fakes.mastodon_bot_statuses():
            key = IDEMPOTENCY_KEY.match(p.idempotency_key or "")
            if key and key.group(2) == "1":
                out.setdefault(str(p.status["in_reply_to_id"]), []).append(p)
        return out

    def answered(self) -> set[str]:
        """Message ids of the drill's DMs that have at least one answer on their platform."""
        done: set[str] = set()
        by_customer: dict[str, list[SentDM]] = {}
        for dm in self.fakes.sent:
            if dm.customer.channel == "zulip":
                by_customer.setdefault(dm.customer.address, []).append(dm)
        # Zulip replies cannot name the DM they answer: the first n DMs of a customer with n replies.
        replies = self.zulip_direct_replies()
        owners = self.zulip_owners()
        for address, dms in by_customer.items():
            n = len({self.row_of(m.id, owners) for m in replies.get(address, [])})
            done.update(dm.message_id for dm in dms[:n])
        done.update(self.mastodon_first_parts())
        return done

    def all_answered(self) -> bool:
        if not {dm.message_id for dm in self.fakes.sent} <= self.answered():
            return False
        return all(row.state != "pending" for row in self.outbox())

    def problems(self) -> list[str]:
        """What was lost or doubled, on either fake or in the store (empty: nothing)."""
        problems: list[str] = []
        sent = self.fakes.sent
        outbox = self.outbox()

        # Every inbound stored exactly once (the primary key makes "twice" impossible, so: all of them, no others).
        processed = self.processed_ids()
        expected = Counter((dm.customer.channel, dm.message_id) for dm in sent)
        missing = expected - processed
        extra = processed - expected
        if missing:
            problems.append(f"{sum(missing.values())} DM(s) never stored: {sorted(missing)[:5]}")
        if extra:
            problems.append(f"{sum(extra.values())} stored inbound(s) the drill never wrote: {sorted(extra)[:5]}")

        # Every outbox row delivered (none left pending, none failed).
        states = Counter(row.state for row in outbox)
        if set(states) - {"sent"}:
            problems.append(f"outbox rows not sent: {dict(states)}")

        # Zulip: each message the bot posted is recorded for exactly one sent row (none twice: a row
        # that took another's message lost its answer; none unrecorded: a message posted twice), and
        # every message a sent row is recorded with is on Zulip.
        owners = self.zulip_owners()
        posted = {m.id: m for m in self.fakes.zulip_bot_messages()}
        shared = {mid: rows for mid, rows in owners.items() if len(rows) > 1}
        if shared:
            problems.append(f"Zulip: {len(shared)} message(s) recorded for several rows: {sorted(shared.items())[:5]}")
        unrecorded = sorted(set(posted) - set(owners))
        if unrecorded:
            problems.append(f"Zulip: {len(unrecorded)} message(s) posted more than once (recorded for no row)")
            offset = time.time() - time.monotonic()
            for mid in unrecorded[:5]:
                m = posted[mid]
                twins = [
                    (other.id, round(other.stored_at, 2), self.row_of(other.id, owners))
                    for other in posted.values()
                    if other.content == m.content
                    and other.participants == m.participants
                    and other.subject == m.subject
                ]
                problems.append(f"  message {mid} ({m.subject or 'dm'}): same words (id, time, row): {twins}")
                for r in self.fakes.zulip.requests_to("GET", "/messages"):
                    narrow = r.params.get("narrow", "")
                    if '"sender"' not in narrow or r.at - offset < m.stored_at - 1:
                        continue
                    got = [x["id"] for x in (r.response or {}).get("messages", [])]
                    problems.append(
                        f"    lookup at {r.at - offset:.2f} status {r.status} fault {r.fault} narrow {narrow} "
                        f"n={len(got)} has_it={mid in got}"
                    )
        missing = sorted(mid for mid in owners if mid not in posted)
        if missing:
            problems.append(f"Zulip: rows recorded as sent with messages that are not there: {missing[:5]}")

        # Mastodon: each Idempotency-Key once; each sent row's parts all there.
        keys: Counter[tuple[int, int]] = Counter()
        for p in self.fakes.mastodon_bot_statuses():
            key = IDEMPOTENCY_KEY.match(p.idempotency_key or "")
            if key is None:
                problems.append(f"Mastodon status {p.id} by the bot has no deskbot Idempotency-Key")
                continue
            keys[(int(key.group(1)), int(key.group(2)))] += 1
        doubled_keys = {k: n for k, n in keys.items() if n > 1}
        if doubled_keys:
            problems.append(f"Mastodon: {len(doubled_keys)} status(es) posted more than once: {doubled_keys}")
        for row in outbox:
            if row.channel == "mastodon" and row.state == "sent":
                parts = len(json.loads(row.platform_ids or "[]"))
                for part in range(1, parts + 1):
                    if keys[(row.id, part)] == 0:
                        problems.append(f"Mastodon: outbox row {row.id} marked sent but part {part} is not posted")

        # Each DM answered exactly once, with the answer its kind calls for.
        zulip_replies = self.zulip_direct_replies()
        mastodon_replies = self.mastodon_first_parts()
        by_customer: dict[str, list[SentDM]] = {}
        for dm in sent:
            by_customer.setdefault(dm.customer.address, []).append(dm)
        for address, dms in by_customer.items():
            want = Counter(dm.kind for dm in dms)
            if dms[0].customer.channel == "zulip":
                # One reply row per DM; a long reply is several parts of one row.
                rows: dict[str, str] = {}
                for m in zulip_replies.get(address, []):
                    rows.setdefault(self.row_of(m.id, owners), m.content)
                got = Counter(reply_kind(text) for text in rows.values())
            else:
                got = Counter()
                for dm in dms:
                    answers = mastodon_replies.get(dm.message_id, [])
                    if len(answers) != 1:
                        problems.append(f"Mastodon DM {dm.message_id} ({dm.kind}) answered {len(answers)} times")
                    got.update(reply_kind(p.source_text) for p in answers[:1])
            if got != want:
                problems.append(f"{address}: answers {dict(got)} for DMs {dict(want)}")

        # Incident messages: each token of an "open" or "add" DM stored exactly once, mirrored once.
        tokens = Counter(t for body in self.incident_bodies() for t in TOKEN.findall(body))
        mirrored: Counter[str] = Counter()
        seen_rows: set[str] = set()
        for m in self.fakes.zulip_bot_messages():
            if m.stream_id is None:
                continue
            row = self.row_of(m.id, owners)
            if row in seen_rows:
                continue  # doubles are reported above; count each row once here
            seen_rows.add(row)
            # The customer's words as quoted (fenced); a new case's summary line names its subject too.
            mirrored.update(set(TOKEN.findall("\n".join(parse_relayed(m.content).inside))))
        for dm in sent:
            if dm.kind in ("open", "add"):
                if tokens[dm.token] != 1:
                    problems.append(f"DM {dm.token} ({dm.kind}) stored {tokens[dm.token]} times as an incident message")
                if mirrored[dm.token] != 1:
                    problems.append(f"DM {dm.token} ({dm.kind}) mirrored {mirrored[dm.token]} times in a case topic")
        return problems

    def counts(self) -> dict[str, int]:
        outbox = self.outbox()
        return {
            "dms_written": len(self.fakes.sent),
            "inbound_stored": sum(self.processed_ids().values()),
            "outbox_rows": len(outbox),
            "outbox_retried_rows": sum(1 for r in outbox if r.attempts > 1),
            "zulip_bot_messages": len(self.fakes.zulip_bot_messages()),
            "mastodon_bot_statuses": len(self.fakes.mastodon_bot_statuses()),
            "incident_messages_in": len(self.incident_bodies()),
        }


def incidents_of(engine: sa.Engine, customer: DrillCustomer) -> list[int]:
    """The incident numbers of `customer`, oldest first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT i.id FROM incident i JOIN customer c ON c.id = i.customer_id WHERE c.name = :n ORDER BY i.id"
                ),
                {"n": customer.name},
            ).scalars()
        )


def engine_for(url: str) -> sa.Engine:
    return make_engine(url)
