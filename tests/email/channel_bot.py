"""The real runtime (intake, router, outbox, dispatcher) with the email channel, against the real
mail servers of tests/mail, on threads.

Engineers work on the console channel (it carries the case topics), so no Zulip server is
needed; customers write from their mailboxes on the test Dovecot and read the answers there.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import TypeVar

from sqlalchemy import func, select

from adapters.console import ENGINEER, ConsoleChannel, console_line
from adapters.email import EmailChannel, EmailSettings, EmailTuning
from adapters.email.servers import parse_server_url
from bot.runtime import Runtime
from bot.services import credits as credit_service
from bot.services import customers
from storage.db import transaction
from storage.models import Customer, Outbox, ProcessedInbound
from tests.desk import EVERY_MESSAGE_ANSWERED, make_settings
from tests.mail.mailbox import Mailbox
from tests.mail.servers import SUPPORT_ADDRESS, SUPPORT_NAME, MailServers

#: Short waits, so that the tests see reconnects and IDLE renewals within seconds.
FAST = EmailTuning(request_timeout=5.0, idle_renew=3.0, idle_check=0.2)
T = TypeVar("T")


def email_settings(mail: MailServers, *, password: str | None = None, **changes: object) -> EmailSettings:
    """The support mailbox on the test servers (IMAP and SMTP with STARTTLS, the test CA trusted)."""
    values: dict[str, object] = {
        "address": SUPPORT_ADDRESS,
        "imap": parse_server_url(mail.imap_url, "imap"),
        "smtp": parse_server_url(mail.smtp_url, "smtp"),
        "username": SUPPORT_ADDRESS,
        "password": password if password is not None else mail.support.password,
        "display_name": SUPPORT_NAME,
        "ca_file": str(mail.ca_file),
    }
    values.update(changes)
    return EmailSettings(**values)  # type: ignore[arg-type]


def wait_until(condition: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(0.05)


class EmailBot:
    """One bot process: the runtime with the console (engineers) and the email channel."""

    def __init__(
        self, mail: MailServers, engine, db_url: str, clock, channel: EmailChannel | None = None, **settings: object
    ) -> None:  # noqa: ANN001
        self.mail = mail
        self.out = io.StringIO()
        self.console = ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=self.out)
        self.email = channel or EmailChannel(email_settings(mail), tuning=FAST)
        self.runtime = Runtime(
            make_settings(db_url, **{**EVERY_MESSAGE_ANSWERED, **settings}),
            [self.console, self.email],
            engine=engine,
            clock=clock,
            trusted_engineers=frozenset({("console", ENGINEER)}),
            migrate=False,
        )
        self.clock = clock
        self.engine = engine
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self._ids = 0

    def customer(self, name: str, email: str, credits: int = 3, lang: str | None = "en") -> int:
        """A customer with `email` as their address (linked at once, as `customers add --email` does)."""
        now = self.clock()
        with transaction(self.engine) as session:
            customer, _code = customers.create_customer(session, name, email, lang, now)
            if credits:
                credit_service.grant_credits(session, customer, credits, now.date(), "test", now, months=12)
            return customer.id

    def activation_code(self, name: str) -> str:
        with transaction(self.engine) as session:
            found = session.scalars(select(Customer).where(Customer.name == name)).one()
            return customers.new_activation_code(session, found, self.clock())

    def start(self, *, dispatch: bool = True, wait: bool = True) -> EmailBot:
        self.email.start()
        targets: list[Callable[[], None]] = [lambda: self.email.receive(self.runtime.intake, self.stop)]
        if dispatch:
            targets.append(lambda: self.runtime.dispatcher.run("email", self.stop, poll=0.1))
        for target in targets:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)
        if wait:
            wait_until(lambda: self.email.connected, 10, "the IMAP session")
        return self

    def engineer(self, text: str) -> str:
        """An engineer's command on the console; what the console printed (the case topics too)."""
        self._ids += 1
        start = len(self.out.getvalue())
        self.runtime.intake.deliver(console_line(ENGINEER, text, f"e{self._ids}", self.clock().astimezone(UTC)))
        self.runtime.dispatcher.drain("console")
        return self.out.getvalue()[start:]

    def topics(self) -> str:
        """What the case topics show (the console prints them)."""
        self.runtime.dispatcher.drain("console")
        return self.out.getvalue()

    def halt(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        self.email.close()


def from_bot(message) -> bool:  # noqa: ANN001
    return SUPPORT_ADDRESS in str(message["From"])


def count(engine, query) -> int:  # noqa: ANN001
    """The number a COUNT query gives."""
    with transaction(engine) as session:
        return int(session.scalar(query) or 0)


def handled(engine) -> int:  # noqa: ANN001
    """Mails the bot has handled (recorded once each)."""
    return count(engine, select(func.count()).select_from(ProcessedInbound).where(ProcessedInbound.channel == "email"))


def answers_while_time_passes(bot: EmailBot, mailbox: Mailbox, at_least: int) -> bool:
    """Has `mailbox` at least `at_least` answers from the bot? Each look moves the bot's test clock
    on a second, so that sends waiting for a retry come due."""
    bot.clock.advance(seconds=1)
    return len([m for m in mailbox.messages() if from_bot(m)]) >= at_least


def deskbot_run_output(settings: dict[str, str], folder: Path) -> subprocess.CompletedProcess[str]:
    """`deskbot run` as a process with only `settings` (and a database and health port of its own),
    run to its end (start-up that fails exits at once)."""
    from tests.mail.dovecot import free_ports

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESKBOT_", "ZULIP_", "MASTODON_", "EMAIL_"))}
    env.update(settings)
    env.update(
        {
            "DESKBOT_DATABASE_URL": f"sqlite:///{folder / 'run.db'}",
            "DESKBOT_HTTP_ADDR": f"127.0.0.1:{free_ports(1)[0]}",
            "DESKBOT_LOG_FORMAT": "console",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"], env=env, cwd=folder, capture_output=True, text=True, timeout=60
    )


def rows_waiting(engine, recipient: str, *, refused: bool = False) -> int:  # noqa: ANN001
    """How many email rows to `recipient` wait to be sent (`refused`: only those whose last try was
    refused, their retry set). A test waits for them before it moves the clock on: the mail can be
    in a mailbox before the transaction that writes the row for the copies, or the retry, commits."""
    with transaction(engine) as session:
        query = (
            select(func.count())
            .select_from(Outbox)
            .where(Outbox.channel == "email", Outbox.state == "pending", Outbox.recipient == recipient)
        )
        if refused:
            query = query.where(Outbox.last_error.is_not(None))  # type: ignore[union-attr]
        return int(session.scalar(query) or 0)
