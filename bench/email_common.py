"""What the email benchmarks share: the real mail servers outside pytest, the bots, the answers.

The servers are the tests' own (tests/mail/): a Dovecot started with a configuration in a
temporary folder (IMAP, LMTP) and the aiosmtpd submission server delivering into it, both
in this process's care; every bot is a process of its own (bench/_common.py `BotProcess`).
A customer's mail is put into the bot's mailbox over LMTP, as mail from the internet
arrives; a bot's answer is timed when the submission server accepts it (before its `250`).

* `echo_email(...)`: the bare echo bot, `python -m bench.email_echo` (bench/email_echo.py).
* `deskbot_email(...)`: **the hook for deskbot's email channel**: `deskbot run` given the
  mailbox through its settings (SPEC §6, `MailServers.env()`), a store and a health port.
  Everything deskbot-specific in the benchmarks goes through it and `DESKBOT_CHANNEL`.
"""

from __future__ import annotations

import argparse
import email.utils
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/x.py` as well as `python -m bench.x`
    sys.path.insert(0, str(REPO))

from bench._common import BotProcess, base_env, free_port  # noqa: E402
from tests.mail.dovecot import DovecotError  # noqa: E402
from tests.mail.mailbox import Mailbox  # noqa: E402
from tests.mail.servers import MailServers  # noqa: E402
from tests.mail.smtp import AcceptedMessage  # noqa: E402

#: The channel name deskbot's store links email identities under (bench/_common.seed_customers).
DESKBOT_CHANNEL = "email"
ECHO_ADDRESS = "echo@example.com"


def bots_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bots", default="echo,deskbot", help="comma-separated: echo, deskbot (default both)")


def chosen_bots(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    bots = [b.strip() for b in args.bots.split(",") if b.strip()]
    if not bots or set(bots) - {"echo", "deskbot"}:
        parser.error("--bots takes echo, deskbot or both")
    return bots


def customer_address(i: int) -> str:
    return f"customer{i:04d}@customers.example"


def start_servers(customers: int) -> tuple[MailServers, list[Mailbox]]:
    """Running servers with the support mailbox, an echo mailbox and `customers` customers."""
    mail = MailServers().start()
    mail.echo = mail.add_user(ECHO_ADDRESS, "Echo")  # type: ignore[attr-defined]
    return mail, [mail.add_user(customer_address(i), f"Customer {i:04d}") for i in range(customers)]


def mailbox_env(mail: MailServers, mailbox: Mailbox) -> dict[str, str]:
    """The SPEC §6 settings for `mailbox` (IMAP with STARTTLS, SMTP with STARTTLS) and the CA."""
    return mail.env() | {
        "EMAIL_CA_FILE": str(mail.ca_file),
        "EMAIL_ADDRESS": mailbox.address,
        "EMAIL_USERNAME": mailbox.address,
        "EMAIL_PASSWORD": mailbox.password,
    }


def echo_email(mail: MailServers, mailbox: Mailbox, tmp: Path, name: str = "echo-email") -> BotProcess:
    """The echo bot on `mailbox`; it prints `ready` (bench._common.wait_ready waits for it)."""
    argv = [sys.executable, "-m", "bench.email_echo"]
    return BotProcess(name, argv, base_env() | mailbox_env(mail, mailbox), tmp / f"{name}.log", REPO)


def deskbot_email(
    mail: MailServers, mailbox: Mailbox, database_url: str, tmp: Path, name: str = "deskbot-email"
) -> BotProcess:
    """HOOK: `deskbot run` with the email channel on `mailbox` (usually `mail.support`).

    Ready when /readyz answers on `http_port` (bench._common.wait_ready). Settings the email
    channel grows (an answer budget for a benchmark's thousand mails, say) belong here.
    """
    port = free_port()
    env = base_env() | mailbox_env(mail, mailbox)
    env |= {
        "DESKBOT_DATABASE_URL": database_url,
        "DESKBOT_HTTP_ADDR": f"127.0.0.1:{port}",
        # One customer writes hundreds of mails here: lift the per-address cap on automatic answers.
        "EMAIL_ANSWERS_PER_HOUR": "1000",
    }
    deskbot = Path(sys.executable).parent / "deskbot"
    argv = [str(deskbot), "run"] if deskbot.exists() else [sys.executable, "-m", "bot.cli", "run"]
    bot = BotProcess(name, argv, env, tmp / f"{name}.log", REPO)
    bot.http_port = port  # type: ignore[attr-defined]
    return bot


def lmtp_burst(mail: MailServers, to: Mailbox, messages: list[EmailMessage]) -> float:
    """Put `messages` into `to`'s mailbox over one LMTP connection; returns the seconds it took."""
    import smtplib
    from email import policy

    started = time.monotonic()
    with smtplib.LMTP(mail.dovecot.host, mail.dovecot.lmtp_port, timeout=60) as lmtp:
        for message in messages:
            sender = email.utils.parseaddr(str(message["From"]))[1]
            refused = lmtp.sendmail(sender, [to.address], message.as_bytes(policy=policy.SMTP))
            if refused:
                raise DovecotError(f"LMTP refused {refused}")
    return time.monotonic() - started


@dataclass
class Answer:
    at: float  # time.monotonic() when the submission server accepted it
    in_reply_to: str
    message: AcceptedMessage


@dataclass
class Answers:
    """Every answer the submission server accepts, by the Message-ID it answers."""

    mail: MailServers
    by_parent: dict[str, list[Answer]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)
        self.mail.smtp.on_accept(self._record)

    def _record(self, accepted: AcceptedMessage) -> None:
        now = time.monotonic()
        parent = str(accepted.message.get("In-Reply-To") or "").strip()
        with self.arrived:
            self.by_parent.setdefault(parent, []).append(Answer(now, parent, accepted))
            self.arrived.notify_all()

    def wait(self, parents: list[str], timeout: float, bot: BotProcess | None = None) -> dict[str, Answer]:
        """Until every Message-ID in `parents` has an answer; the first answer of each.

        Fails if an answer comes twice (the echo and deskbot both promise one each).
        """
        deadline = time.monotonic() + timeout
        wanted = set(parents)
        with self.arrived:
            while True:
                missing = [p for p in wanted if p not in self.by_parent]
                if not missing:
                    break
                if time.monotonic() > deadline:
                    log = f"; {bot.name}'s log ends:\n{bot.tail()}" if bot is not None else ""
                    raise RuntimeError(f"{len(missing)} of {len(wanted)} mails unanswered after {timeout:.0f} s{log}")
                if bot is not None:
                    bot.check()
                self.arrived.wait(0.1)
            doubled = [p for p in wanted if len(self.by_parent[p]) > 1]
            if doubled:
                raise RuntimeError(f"{len(doubled)} mails answered more than once, e.g. {doubled[0]}")
            return {p: self.by_parent[p][0] for p in wanted}


def status_mails(
    customers: list[Mailbox], to: Mailbox, count: int, text: Callable[[int], str] = lambda k: "status"
) -> list[EmailMessage]:
    """`count` new mails to `to`, round robin over `customers`, each with its own subject."""
    return [customers[k % len(customers)].compose(f"Question {k}", text(k), to=to.address) for k in range(count)]
