"""The console channel: play customer, engineer or stranger in a terminal, no accounts anywhere.

Lines typed are inbound messages; the bot's answers, and the case topics that
Zulip would carry, are printed. `\\as customer [NAME]`, `\\as engineer` and
`\\as stranger` (an account linked to no customer) switch roles without
leaving; Ctrl-D (end of input) leaves. On start it says how to play each role
and how to grant the customer credits.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar, TextIO

from adapters.channel import Channel, Inbound, InboundSink, Outbound, Said, size_text
from adapters.topics import case_topic_name

ENGINEER = "engineer@console"
#: The console account a stranger writes from, before the runtime picks one linked to no customer.
STRANGER = "stranger"
ROLES = ("customer", "engineer", "stranger")
#: The console prints the case topics Zulip would carry, named as Zulip names them (its 60-character limit).
TOPIC_LENGTH = 60


def said_header(said: Said) -> str:
    """The plain line above a quote in a case topic: who said it, on which channel."""
    if said.role == "engineer":
        return f"{said.name} replied to the customer via {said.channel}:"
    address = f" ({said.address})" if said.address else ""
    return f"{said.name} via {said.channel}{address} wrote{' (edited)' if said.edited else ''}:"


def console_line(sender: str, text: str, message_id: str, received_at: datetime) -> Inbound:
    """A line typed at the console as the one inbound type: each person is their own conversation."""
    return Inbound(
        channel=ConsoleChannel.name,
        sender=sender,
        conversation=sender,
        text=text,
        message_id=message_id,
        received_at=received_at,
        sender_name=sender,
    )


class ConsoleChannel(Channel):
    name: ClassVar[str] = "console"
    carries_case_topics: ClassVar[bool] = True

    def __init__(
        self,
        customer: str,
        role: str = "customer",
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        on_switch: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self.customer = customer
        #: The account played by `\\as stranger` (the runtime keeps it linked to no customer).
        self.stranger = STRANGER
        #: A line the runtime adds to the introduction (the customer's credits).
        self.note: str | None = None
        self.role = role
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        #: Called with (role, customer) when the person switches roles (the runtime links the customer's
        #: account, or picks a stranger's account linked to no customer); it returns None, or a line
        #: saying why the switch cannot be made (a name no customer can have), and the role stays.
        self.on_switch = on_switch
        self._ids = itertools.count(1)
        self._run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        self._lock = threading.Lock()

    def case_topic(self, number: int, customer: str, subject: str) -> str:
        return case_topic_name(number, customer, subject, TOPIC_LENGTH)

    @property
    def sender(self) -> str:
        return {"engineer": ENGINEER, "stranger": self.stranger}.get(self.role, self.customer)

    def _prompt(self) -> str:
        return f"{self.role if self.role != 'customer' else self.customer}> "

    def introduction(self) -> str:
        """What the console says on start: who you are, and how to play the others and grant credits."""
        return "\n".join(
            [
                f"deskbot console: you are {self.playing}. Type help (or ajuda) for the commands.",
                "  \\as engineer       play the engineer: /help lists the engineer commands, and",
                f'                     /credits grant "{self.customer}" 3 gives {self.customer} 3 credits',
                "  \\as customer NAME  play a customer (created and linked to this console if needed)",
                "  \\as stranger       play an account linked to no customer: it can link itself with",
                "                     the activation code /customer add NAME prints (link <code>)",
                "  Ctrl-D leaves.",
            ]
        )

    @property
    def playing(self) -> str:
        if self.role == "engineer":
            return "the engineer"
        if self.role == "stranger":
            return f'a stranger: the console account "{self.stranger}", linked to no customer'
        return f"the customer {self.customer}"

    def notice(self, text: str) -> None:
        """A line of the console's own (not the bot's)."""
        self._print(text)

    def _interactive(self) -> bool:
        return self.stdin is sys.stdin and sys.stdin.isatty()

    def receive(self, sink: InboundSink, stop: threading.Event) -> None:
        if self._interactive():
            import readline  # noqa: F401  (line editing and history for input())
        self._print(self.introduction() + (f"\n{self.note}" if self.note else ""))
        while not stop.is_set():
            line = self._read()
            if line is None:
                break
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("\\as"):
                self._switch(line)
                continue
            sink.deliver(console_line(self.sender, line, f"{self._run_id}-{next(self._ids)}", datetime.now(UTC)))

    def _read(self) -> str | None:
        if self._interactive():
            try:
                return input(self._prompt())
            except EOFError:
                self._print("")
                return None
        line = self.stdin.readline()
        return line if line else None

    def _switch(self, line: str) -> None:
        words = line.split(maxsplit=2)
        role = words[1] if len(words) > 1 else ""
        if role not in ROLES:
            self._print("usage: \\as engineer | \\as customer [NAME] | \\as stranger")
            return
        before = self.role, self.customer
        self.role = role
        if role == "customer" and len(words) > 2:
            self.customer = words[2].strip()
        refused = self.on_switch(self.role, self.customer) if self.on_switch else None
        if refused is not None:
            self.role, self.customer = before
            self._print(f"({refused} You are still {self.playing}.)")
            return
        self._print(f"(you are now {self.playing})")

    def send(self, message: Outbound) -> list[str]:
        if message.kind == "topic":
            head = message.text
            if message.said is not None:  # the header, then any text of the row's own (none expected)
                head = said_header(message.said) + (f"\n{message.text}" if message.text else "")
            lines = [f"[{message.topic}] {head}", *_file_lines(message, "    ")]
            if message.quote is not None:
                lines += [f"    | {q}" for q in message.quote.splitlines() or [""]]
        else:
            lines = [f"deskbot → {message.recipient}:"] + [f"  {t}" for t in message.text.splitlines()]
            lines += _file_lines(message, "  ")
        self._print("\n".join(lines))
        return [f"console-{message.outbox_id}"]

    def _print(self, text: str) -> None:
        with self._lock:
            self.stdout.write(text + "\n")
            self.stdout.flush()


def _file_lines(message: Outbound, indent: str) -> list[str]:
    """A line naming each file the row carries: the console has nowhere to upload one (or to
    show it to a customer), so it names it, with why it was left out where the row says."""
    lines = []
    for file in message.files:
        kept = "not kept: over the limit" if file.refused_over is not None else file.media_type
        line = f"{indent}+ file {' '.join(file.name.split())!r} ({size_text(file.size)}, {kept})"
        lines.append(f"{line}: {file.left_out}" if file.left_out else line)
    return lines
