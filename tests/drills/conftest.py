"""The drill harness: both fakes in this process, `deskbot run` as real child processes.

* `make_database(backend)` makes a scratch, migrated database (PostgreSQL: a
  uniquely named database dropped at the end; SQLite: a file in tmp_path).
* `fakes` starts the fake Zulip and Mastodon servers on 127.0.0.1 with the
  bot's accounts, the private support stream and an engineer; customers are
  added per drill with `Fakes.add_customer`, which also links them, with
  credits, in the store.
* `mail` starts a real Dovecot and submission server (tests/mail); a drill that
  calls `fakes.add_mail(mail)` runs the bot with the email channel too (the
  support mailbox on that Dovecot), and its email customers are mailboxes
  there whose mail goes in over LMTP through `CustomerMTA`, which holds it
  while Dovecot is down, as the sending side's mail server would.
* `BotProcess` is one `deskbot run` (`python -m bot.cli run`) with JSON logs
  in a file, started, SIGKILLed, restarted or stopped by the drill.
* `Ledger` counts every delivery on both fakes against the store and says
  what was lost or doubled.

Each DM a drill writes carries a unique token (`z0007`, `m0042`, `e0003` for a
mail), so an incident message, a mirrored case-topic message or a reply can be
traced back to the one DM that caused it. A mail's answer names the mail it
answers (`In-Reply-To`), and is counted in the customer's mailbox.
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
from email import policy as email_policy
from email.message import EmailMessage
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
from tests.mail.dovecot import DovecotError
from tests.mail.fixtures import mail  # noqa: F401 (a fixture of the drills)
from tests.mail.mailbox import Mailbox, body_text
from tests.mail.servers import SUPPORT_ADDRESS, MailServers
from tests.zulip.relay_check import parse_relayed

REPO = Path(__file__).resolve().parents[2]
BOT_EMAIL = "deskbot-bot@example.com"
BOT_NAME = "Deskbot"
BOT_ACCT = "deskbot"
ENGINEER = "eng@example.com"
STREAM = "support"
MASTODON_DOMAIN = "bot.example"

IDEMPOTENCY_KEY = re.compile(r"^deskbot-(\d+)-(\d+)$")
TOKEN = re.compile(r"\b([zme]\d{4,})\b")
#: The automatic answers one address may get an hour (EMAIL_ANSWERS_PER_HOUR's highest): drills count
#: every answer, and the cap that stops loops between robots is tested in tests/email.
MAIL_ANSWERS_PER_HOUR = 1000


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
    channel: str  # "zulip", "mastodon" or "email"
    address: str  # the Zulip (real) email, the Mastodon acct (user@domain) as the store keys it, the mail address
    incidents: list[int] = field(default_factory=list)
    #: An email customer's mailbox on the drill's Dovecot.
    mailbox: Mailbox | None = None
    #: An email customer's thread: the bot's answer to their first mail, which "plain" mail replies to.
    thread: EmailMessage | None = None


@dataclass
class SentDM:
    """One DM a drill wrote: what it was, and what it must cause."""

    customer: DrillCustomer
    message_id: str
    text: str
    token: str
    kind: str  # "open", "ask" (open while one is open), "status", "add" (plain text or #N to an open incident), "typo"
    at: float = field(default_factory=time.monotonic)


class CustomerMTA:
    """The customers' side of mail: each mail goes into the support mailbox over LMTP, as the
    customer's mail server hands it to the mailbox's; while Dovecot refuses, mail waits here, in
    order, and is tried again every `retry` seconds (a real server retries after minutes; a drill
    measures the bot, not the sender), as a deferred mail waits in a real queue."""

    def __init__(self, servers: MailServers, retry: float = 0.2) -> None:
        self.mail = servers
        self.retry = retry
        self.deferred = 0  # mails that had to wait at least once
        self._queue: list[tuple[bytes, str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._retry_loop, name="customer-mta", daemon=True)
        self._thread.start()

    def send(self, message: EmailMessage, sender: str) -> None:
        raw = message.as_bytes(policy=email_policy.SMTP)
        with self._lock:
            self._queue.append((raw, SUPPORT_ADDRESS, sender))
            if not self._flush() and self._queue:
                self.deferred += 1

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)

    def _flush(self) -> bool:
        """Deliver what waits, oldest first (called holding the lock); False if Dovecot refused."""
        while self._queue:
            raw, to, sender = self._queue[0]
            try:
                self.mail.dovecot.deliver(raw, to, mail_from=sender)
            except DovecotError:
                return False
            self._queue.pop(0)
        return True

    def _retry_loop(self) -> None:
        while not self._stop.wait(self.retry):
            with self._lock:
                self._flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Fakes:
    """The fake Zulip and Mastodon servers, with the bot's accounts and secrets (and the mail
    servers, once `add_mail` gave them)."""

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
        self._tokens = {"zulip": itertools.count(1), "mastodon": itertools.count(1), "email": itertools.count(1)}
        self.mail: MailServers | None = None
        self.mta: CustomerMTA | None = None

    def add_mail(self, servers: MailServers) -> Fakes:
        """Run the bot with the email channel too, on these mail servers."""
        self.mail = servers
        self.mta = CustomerMTA(servers)
        return self

    def start(self) -> Fakes:
        self.zulip.start()
        self.mastodon.start()
        return self

    def stop(self) -> None:
        if self.mta is not None:
            self.mta.stop()
        self.zulip.stop()
        self.mastodon.stop()

    def env(self, db_url: str) -> dict[str, str]:
        """The environment of a `deskbot run` against both fakes (and the mail servers, if added)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DESKBOT_", "ZULIP_", "MASTODON_", "EMAIL_"))
            and k not in ("PYTEST_CURRENT_TEST", "SSL_CERT_FILE")
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
                # Every message answered: the drills find a lost or doubled message by its answer.
                "DESKBOT_ACK_QUIET_MINUTES": "0",
            }
        )
        if self.mail is not None:
            # The support mailbox over IMAP and SMTP with STARTTLS; SSL_CERT_FILE trusts the test CA.
            env.update(self.mail.env())
            env["EMAIL_ANSWERS_PER_HOUR"] = str(MAIL_ANSWERS_PER_HOUR)
        return env

    def add_customer(self, engine: sa.Engine, channel: str, n: int, credits: int = 5) -> DrillCustomer:
        """A customer on one channel, linked in the store with a pack of `credits`."""
        if channel == "email":
            return self._add_mail_customer(engine, n, credits)
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
            credit_service.grant_credits(session, record, credits, now.date(), "drill", now, months=12)
        self.customers.append(customer)
        return customer

    def _add_mail_customer(self, engine: sa.Engine, n: int, credits: int) -> DrillCustomer:
        """A customer with a mailbox on the drill's Dovecot, their address their account (as
        `customers add --email` makes it), with a pack of `credits`."""
        assert self.mail is not None, "add_mail() first"
        name = f"Email Customer {n:02d}"
        address = f"ec{n:02d}@customer.example"
        mailbox = self.mail.add_user(address, name)
        now = datetime.now(UTC)
        with transaction(engine) as session:
            record, _code = customers.create_customer(session, name, address, "en", now)
            credit_service.grant_credits(session, record, credits, now.date(), "drill", now, months=12)
        customer = DrillCustomer(name, "email", address, mailbox=mailbox)
        self.customers.append(customer)
        return customer

    def dm(self, customer: DrillCustomer, kind: str, incident: int | None = None) -> SentDM:
        """The customer writes one DM of `kind` ("open", "open again", "status", "plain", "#N", "typo").

        "open again" is `open <text>` while an incident is open: the bot asks first, whether this is
        a new issue (SPEC §2), and keeps the text as a draft: nothing is opened, stored or mirrored.
        """
        prefix = {"zulip": "z", "mastodon": "m", "email": "e"}[customer.channel]
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
        if customer.channel == "email":
            message_id = self._mail(customer, kind, text, token)
        elif customer.channel == "zulip":
            message_id = str(self.zulip.post_dm(customer.address, text))
        else:
            status = self.mastodon.post_status(customer.address, f"@{BOT_ACCT} {text}", visibility="direct")
            message_id = str(status["id"])
        sent = SentDM(customer, message_id, text, token if effect in ("open", "add") else "", effect)
        self.sent.append(sent)
        return sent

    def _mail(self, customer: DrillCustomer, kind: str, text: str, token: str) -> str:
        """The customer mails `text` (its first line the command, as in a DM); returns its Message-ID.

        "plain" answers the bot's mail about their incident (quoting it, as Gmail does: the
        quote must be cut) once they have it, so the mail joins the incident by its
        In-Reply-To; the rest are new mails, with a subject of their own.
        """
        mailbox, mta = customer.mailbox, self.mta
        assert mailbox is not None and mta is not None
        if kind == "plain" and customer.thread is not None:
            message = mailbox.reply(customer.thread, text, style="gmail")
        else:
            subject = {"open": f"Drill problem {token}", "open again": f"Drill problem {token}"}.get(kind, "Drill")
            message = mailbox.compose(subject, text)
        mta.send(message, customer.address)
        return str(message["Message-ID"])

    # what the bot posted
    def zulip_bot_messages(self) -> list[Any]:
        return self.zulip.sent_by(BOT_EMAIL)

    def mastodon_bot_statuses(self) -> list[Any]:
        return self.mastodon.posted_by(BOT_ACCT)


class CustomersWriting:
    """Customers writing all along while a drill breaks things, until `stop()`.

    Every `every` seconds one Zulip, one Mastodon and (if any) one email customer
    (round robin) each write a DM (or mail) to their first incident, the kind cycling through a plain
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
        rounds = [
            itertools.cycle(mine)
            for channel in ("zulip", "mastodon", "email")
            if (mine := [p for p in self._people if p.channel == channel])
        ]
        try:
            while not self._stop.is_set():
                kind = next(kinds)
                for person in [next(people) for people in rounds]:
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

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.http_addr}{path}", timeout=timeout) as res:
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
def bots(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., BotProcess]]:
    """`bots(name, env)` → a BotProcess; every one is stopped at the end of the test."""
    made: list[BotProcess] = []
    request.node.drill_bots = made  # shown by the report of a failed drill

    def make(name: str, env: dict[str, str]) -> BotProcess:
        bot = BotProcess(name, env, tmp_path / f"{name}.log")
        made.append(bot)
        return bot

    yield make
    for bot in made:
        if bot.alive:
            bot.terminate(15)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    """A failed drill shows the end of each bot's log, and, if it ran the mail servers, Dovecot's
    log and what the SMTP server took (the drill's own temporary folders are gone by then)."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for bot in getattr(item, "drill_bots", []):
        lines = bot.log_text().splitlines()
        # The routine lines ("handled", "sent") drown what went wrong: warnings and errors first.
        trouble = [line for line in lines if not line.startswith('{"time"') or '"level": "info"' not in line]
        report.sections.append((f"{bot.name}'s warnings and errors (last 60)", "\n".join(trouble[-60:])))
        report.sections.append((f"{bot.name}'s log (last 20 lines)", "\n".join(lines[-20:])))
    servers = getattr(item, "funcargs", {}).get("mail")
    if isinstance(servers, MailServers):
        report.sections.append(("Dovecot log", servers.dovecot.log_tail(60)))
        report.sections.append(
            ("SMTP server", f"counts: {dict(servers.smtp.counts)}; accepted: {len(servers.smtp.accepted)}")
        )


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
        self._answered_mail: dict[int, str] = {}  # index in the SMTP server's accepted → In-Reply-To

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
        done.update(self.mail_answered())
        return done

    # -- mail
    def mail_answered(self) -> set[str]:
        """Message-IDs of customers' mails whose answer the SMTP server took and put in the customer's
        mailbox (cheap: no IMAP; `problems` counts in the mailboxes themselves)."""
        servers = self.fakes.mail
        if servers is None:
            return set()
        for index, record in enumerate(servers.smtp.accepted):
            if index not in self._answered_mail and record.delivered:
                self._answered_mail[index] = str(record.message["In-Reply-To"] or "").strip()
        return set(self._answered_mail.values())

    def mail_answers(self) -> dict[str, list[EmailMessage]]:
        """The bot's mails in the email customers' mailboxes, by the Message-ID they answer (In-Reply-To)."""
        out: dict[str, list[EmailMessage]] = {}
        for customer in self.fakes.customers:
            if customer.mailbox is None:
                continue
            for message in customer.mailbox.messages():
                if SUPPORT_ADDRESS in str(message["From"]):
                    out.setdefault(str(message["In-Reply-To"] or "").strip(), []).append(message)
        return out

    def mail_repeats(self) -> dict[str, int]:
        """Answers that reached a customer more than once with the same Message-ID: Message-ID → copies.

        A kill after the SMTP server took a mail and before the store recorded it sent repeats it
        once, with the same Message-ID (README, Email): mail clients show it once. `problems`
        accepts such repeats only up to the row's tries (one copy a try), and nothing else.
        """
        copies = Counter(str(m["Message-ID"]) for answers in self.mail_answers().values() for m in answers)
        return {mid: n for mid, n in copies.items() if n > 1}

    def mail_problems(self, outbox: list[Any]) -> list[str]:
        """What was lost or doubled by email, counted in the customers' mailboxes and the outbox."""
        problems: list[str] = []
        mails = [dm for dm in self.fakes.sent if dm.customer.channel == "email"]
        rows = {
            json.loads(row.platform_ids or "[]")[0]: row
            for row in outbox
            if row.channel == "email" and row.state == "sent" and row.platform_ids not in (None, "[]")
        }
        email_rows = [row for row in outbox if row.channel == "email"]
        if len(email_rows) != len(mails):
            problems.append(f"email: {len(email_rows)} outbox rows for {len(mails)} customer mails (one answer each)")
        answers = self.mail_answers()
        written = {dm.message_id for dm in mails}
        for dm in mails:
            got = answers.get(dm.message_id, [])
            ids = Counter(str(m["Message-ID"]) for m in got)
            if len(ids) != 1:
                problems.append(
                    f"email: {dm.customer.address}'s mail {dm.message_id} ({dm.kind}) answered {len(ids)} times: {dict(ids)}"
                )
            for mid, copies in ids.items():
                row = rows.get(mid)
                if row is None:
                    problems.append(f"email: answer {mid} to {dm.message_id} is recorded as sent for no outbox row")
                elif copies > row.attempts:
                    # Each copy past the first needs a try of its own, one after each crash in the
                    # window between the server's `250` and the copy in Sent (README, Email).
                    problems.append(
                        f"email: answer {mid} (row {row.id}, {row.attempts} attempts) delivered {copies} times"
                    )
            kinds = {reply_kind(body_text(m)) for m in got}
            if got and kinds != {dm.kind}:
                problems.append(f"email: {dm.message_id} ({dm.kind}) answered as {sorted(kinds)}")
        strays = sorted(set(answers) - written)
        if strays:
            problems.append(f"email: {len(strays)} answer(s) to mail the drill never wrote: {strays[:5]}")
        delivered = {str(m["Message-ID"]) for got in answers.values() for m in got}
        missing = sorted(mid for mid in rows if mid not in delivered)
        if missing:
            problems.append(f"email: rows recorded as sent whose mail no customer has: {missing[:5]}")
        return problems

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
            if dms[0].customer.channel == "email":
                continue  # counted in the mailboxes, below
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
        if self.fakes.mail is not None:
            problems += self.mail_problems(outbox)
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
            **self.mail_counts(outbox),
        }

    def mail_counts(self, outbox: list[Any]) -> dict[str, int]:
        servers = self.fakes.mail
        if servers is None:
            return {}
        accepted = servers.smtp.accepted
        return {
            "mails_written": sum(1 for dm in self.fakes.sent if dm.customer.channel == "email"),
            "mails_deferred_by_dovecot": self.fakes.mta.deferred if self.fakes.mta else 0,
            "email_outbox_rows": sum(1 for row in outbox if row.channel == "email"),
            "smtp_accepted": len(accepted),
            "smtp_accepted_message_ids": len({m.message_id for m in accepted}),
            "smtp_refused": servers.smtp.counts["refused"],
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


# -- what most drills begin with ----------------------------------------------------------------


def drill_store(
    fakes: Fakes, url: str, *, zulip: int = 1, mastodon: int = 1, email: int = 0
) -> tuple[sa.Engine, list[DrillCustomer], Ledger]:
    """A drill's store at `url` (from `make_database`) and its customers: the test's own engine on
    it, the Zulip cursor seeded, `zulip`, `mastodon` and `email` customers in that order, each
    numbered from 1 (email ones need `fakes.add_mail` first), and the Ledger that counts their answers."""
    engine = engine_for(url)
    seed_zulip_cursor(engine)
    counts = {"zulip": zulip, "mastodon": mastodon, "email": email}
    people = [fakes.add_customer(engine, channel, n) for channel, count in counts.items() for n in range(1, count + 1)]
    return engine, people, Ledger(fakes, engine)


def open_incidents(
    fakes: Fakes, engine: sa.Engine, people: list[DrillCustomer], ledger: Ledger | None = None, timeout: float = 30.0
) -> None:
    """Each of `people` writes `open`; returns once each one's incident is in the store (in
    `person.incidents`, so that `#N` can name it), given the drill's `ledger` once every DM so far
    is answered too, and once each email customer has the bot's answer (in `person.thread`, which
    their plain mail then replies to)."""
    for person in people:
        fakes.dm(person, "open")
    for person in people:
        person.incidents = wait_until(lambda p=person: incidents_of(engine, p), timeout, f"{person.name}'s incident")
    if ledger is not None:
        wait_until(ledger.all_answered, timeout, "the opening DMs to be answered")
    for person in (p for p in people if p.mailbox is not None):
        (person.thread,) = person.mailbox.wait_for(lambda m: SUPPORT_ADDRESS in str(m["From"]), timeout=timeout)
