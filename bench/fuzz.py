"""Fuzz every place hostile text meets the bot: 100,000 inputs a target, counts of what went wrong.

    PYTHONPATH=. .venv/bin/python bench/fuzz.py [--inputs N] [--seed S] [--limit SECONDS] [--only T] [--json]

Targets:
* router   — a message from a random kind of sender (customer, stranger, engineer, in a case
             topic or not, public mention) through the real intake and router on SQLite; an
             error is a handler failure (the apology path) or an exception out of intake; every
             reply is then composed for Mastodon and checked for third-party mentions.
* html     — `adapters.html_text.html_to_text` on random, often deeply nested HTML.
* relay    — `adapters.zulip.compose.compose` on texts of backtick and tilde runs up to 20,000
             characters; an error is a part over the limit, customer text outside the fence
             (Zulip's rule or CommonMark's), or more parts than the text needs.
* mastodon — `adapters.mastodon.invariants.reply_violations` (the composer's promises,
             third-party mentions by Mastodon's own rule among them).

Each input runs under a time limit (`--limit`, default 2 s, enforced with SIGALRM); one that
exceeds it counts as hung. Inputs are drawn from a seeded generator: a run can be repeated.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.console import ENGINEER, ConsoleChannel, console_line
from adapters.html_text import html_to_text
from adapters.mastodon.invariants import reply_violations
from adapters.zulip.compose import compose
from tests.fuzz.inputs import NASTY, WORDS
from tests.zulip.relay_check import assert_commonmark_inert, parse_relayed, unguard


class Hung(Exception):
    pass


def _alarm(_signum, _frame):  # noqa: ANN001
    raise Hung


@dataclasses.dataclass
class Tally:
    target: str
    inputs: int = 0
    errors: int = 0
    hung: int = 0
    third_party_mentions: int = 0
    seconds: float = 0.0
    examples: list[str] = dataclasses.field(default_factory=list)

    def note(self, what: str, sample: object) -> None:
        if len(self.examples) < 3:
            self.examples.append(f"{what}: {sample!r}"[:300])


# -- input generators -------------------------------------------------------------------------


def random_text(rng: random.Random, size: int = 200) -> str:
    pieces = []
    for _ in range(rng.randint(0, 12)):
        kind = rng.random()
        if kind < 0.35:
            pieces.append(rng.choice(NASTY))
        elif kind < 0.55:
            pieces.append(rng.choice(WORDS) + " ")
        elif kind < 0.8:
            pieces.append(
                "".join(
                    chr(rng.choice([rng.randint(32, 126), rng.randint(0, 0x2FFFF)])) for _ in range(rng.randint(1, 20))
                )
            )
        else:
            pieces.append(rng.choice("`~ x@\n") * rng.randint(1, 50))
    return "".join(pieces)[: size * 4]


def random_html(rng: random.Random) -> str:
    tags = ["p", "span", "a", "br", "blockquote", "div", "b", "i", "ul", "li", "pre", "code", "h1", "x-custom"]
    # Mostly shallow, as real statuses are; one in fifty nested deep enough to break a recursive walk.
    depth = rng.choice([1, 3, 10, 50]) if rng.random() < 0.98 else rng.choice([1_000, 3_000])
    out, stack = [], []
    for _ in range(depth):
        tag = rng.choice(tags)
        attrs = rng.choice(
            ["", ' class="mention u-url"', ' href="https://x.example/@bob"', ' class="invisible"', " data-x='\"<>'"]
        )
        out.append(f"<{tag}{attrs}>")
        stack.append(tag)
        if rng.random() < 0.3:
            out.append(random_text(rng, 30).replace("<", "&lt;"))
        if rng.random() < 0.1 and stack:
            out.append(f"</{stack.pop()}>")
    if rng.random() < 0.7:
        out.extend(f"</{t}>" for t in reversed(stack))
    return "".join(out)


def random_runs(rng: random.Random) -> str:
    parts = []
    total = 0
    while total < rng.choice([100, 2_000, 10_000, 20_000]):
        run = rng.choice(["`", "~", "x", " ", "\n", "\u3000", "@**all**"]) * rng.randint(1, 5_000)
        parts.append(run)
        total += len(run)
    return "".join(parts)[:20_000]


# -- targets ----------------------------------------------------------------------------------


def fuzz_relay(rng: random.Random, tally: Tally) -> None:
    quote = random_runs(rng)
    max_length = rng.choice([200, 1_000, 10_000])
    parts = compose("**Alice** (zulip) wrote:", quote, max_length)
    budget = max_length
    inside: list[str] = []
    ok = len(parts) <= len(quote) // (budget // 2 - 5) + 2 and all(len(p) <= max_length for p in parts)
    try:
        for part in parts:
            relayed = parse_relayed(part)
            assert_commonmark_inert(relayed)
            inside.extend(unguard(line, relayed.fence) for line in relayed.inside)
    except AssertionError:
        ok = False
    if not ok or "".join(inside) != quote.rstrip("\n").replace("\n", ""):
        tally.errors += 1
        tally.note("relay", quote[:80])


def fuzz_html(rng: random.Random, tally: Tally) -> None:
    text = html_to_text(random_html(rng), [], None)
    if not isinstance(text, str):
        tally.errors += 1


def fuzz_mastodon(rng: random.Random, tally: Tally) -> None:
    body = random_text(rng, rng.choice([50, 200, 2_000]))
    problems = reply_violations(body, max_characters=rng.choice([500, 1_000]))
    mentions = [p for p in problems if "mention" in p]
    tally.third_party_mentions += len(mentions)
    if problems:
        tally.errors += len(problems) - len(mentions)
        tally.note("mastodon", body[:80])


class RouterTarget:
    SENDERS = ["customer", "stranger", "engineer", "engineer in topic", "stranger in topic", "public"]

    def __init__(self, tmp: Path) -> None:
        from bot.runtime import Runtime
        from bot.services import credits as credit_service
        from bot.services import customers
        from storage.db import transaction
        from tests.desk import make_settings

        self.now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
        self.out = io.StringIO()
        console = ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=self.out)
        url = f"sqlite:///{tmp / 'fuzz.db'}"
        self.runtime = Runtime(
            make_settings(url), [console], clock=lambda: self.now,
            trusted_engineers=frozenset({("console", ENGINEER)}), migrate=True,
        )  # fmt: skip
        with transaction(self.runtime.engine) as session:
            customer, _code = customers.create_customer(session, "Acme", None, "en", self.now)
            customers.link_identity(session, customer, "console", "Acme", self.now)
            credit_service.grant_credits(session, customer, 10_000, self.now.date(), "fuzz", self.now)
        self.count = 0

    def __call__(self, rng: random.Random, tally: Tally) -> None:
        from sqlalchemy import func, select

        from storage.db import transaction
        from storage.models import Outbox, ProcessedInbound

        self.count += 1
        self.now += timedelta(seconds=rng.choice([1, 60, 3_600]))
        sender = rng.choice(self.SENDERS)
        text = random_text(rng)
        message = console_line("Acme", text, f"f{self.count}", self.now)
        if sender == "stranger":
            who = f"stranger{rng.randint(1, 50)}"
            message = dataclasses.replace(message, sender=who, conversation=who)
        elif sender == "engineer":
            message = dataclasses.replace(message, sender=ENGINEER, conversation=ENGINEER)
        elif sender.endswith("in topic"):
            who = ENGINEER if sender.startswith("engineer") else "Acme"
            message = dataclasses.replace(message, sender=who, kind="topic", topic=f"#{rng.randint(1, 5)} Acme: x")
        elif sender == "public":
            message = dataclasses.replace(message, public=True)
        self.runtime.intake.deliver(message)
        with transaction(self.runtime.engine) as session:
            failed = session.scalar(
                select(func.count())
                .select_from(ProcessedInbound)
                .where(ProcessedInbound.message_id == message.message_id, ProcessedInbound.failed_text.is_not(None))
            )
            replies = session.scalars(
                select(Outbox.text).where(Outbox.kind == "direct", Outbox.state == "pending")
            ).all()
            session.execute(Outbox.__table__.update().where(Outbox.state == "pending").values(state="sent"))
        if failed:
            tally.errors += 1
            tally.note("router", (sender, text[:80]))
        for reply in replies:  # as the Mastodon channel would post it to this sender
            for problem in reply_violations(reply, recipient="acme@remote.example"):
                if "mention" in problem:
                    tally.third_party_mentions += 1
                    tally.note("router mention", reply[:80])


def run(name: str, target: Callable[[random.Random, Tally], None], inputs: int, seed: int, limit: float) -> Tally:
    rng = random.Random(f"{seed}:{name}")
    tally = Tally(name)
    signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    for _ in range(inputs):
        tally.inputs += 1
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            target(rng, tally)
        except Hung:
            tally.hung += 1
        except Exception as exc:  # noqa: BLE001 — counting them is the point
            tally.errors += 1
            tally.note(f"{name} raised {type(exc).__name__}", exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    tally.seconds = round(time.perf_counter() - start, 1)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=2.0, help="seconds an input may take before it counts as hung")
    parser.add_argument("--only", choices=["router", "html", "relay", "mastodon"], action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.CRITICAL)  # the router logs each withheld answer; the counts are what matter here
    with tempfile.TemporaryDirectory() as tmp:
        targets: dict[str, Callable[[random.Random, Tally], None]] = {
            "relay": fuzz_relay,
            "html": fuzz_html,
            "mastodon": fuzz_mastodon,
        }
        if not args.only or "router" in args.only:
            targets["router"] = RouterTarget(Path(tmp))
        tallies = [
            run(n, t, args.inputs, args.seed, args.limit) for n, t in targets.items() if not args.only or n in args.only
        ]
    if args.json:
        print(json.dumps([dataclasses.asdict(t) for t in tallies], indent=2))
    else:
        print(f"{'target':<10} {'inputs':>8} {'errors':>7} {'hung':>5} {'3rd-party mentions':>19} {'seconds':>8}")
        for t in tallies:
            print(f"{t.target:<10} {t.inputs:>8} {t.errors:>7} {t.hung:>5} {t.third_party_mentions:>19} {t.seconds:>8}")
            for example in t.examples:
                print(f"    e.g. {example}")
    return 1 if any(t.errors or t.hung or t.third_party_mentions for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
