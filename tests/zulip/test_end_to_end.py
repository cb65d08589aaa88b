"""The whole bot (runtime, router, store, outbox, dispatcher) over the Zulip channel and the fake.

Runs on SQLite and PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from adapters.channel import Outbound
from adapters.zulip import ZulipChannel
from bot.runtime import Runtime
from bot.services import credits as credit_service
from bot.services import customers
from storage.db import transaction
from storage.models import Outbox
from tests.desk import EVERY_MESSAGE_ANSWERED, make_settings
from tests.fakes.zulip import FakeZulip, StoredMessage
from tests.zulip.conftest import ALICE, BOB, BOT, ENGINEER, STREAM
from tests.zulip.markdown_check import HOSTILE, active_markup
from tests.zulip.relay_check import parse_relayed

TOPIC = "#1 Alice Customer: My printer is on fire @**all**"  # topic names are plain text


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class ZulipDesk:
    """Start and stop real runtimes on one database, each with a fresh Zulip channel."""

    def __init__(self, fake: FakeZulip, engine, db_url: str, clock, make_channel) -> None:  # noqa: ANN001
        self.fake = fake
        self.engine = engine
        self.clock = clock
        self.make_channel = make_channel
        self.settings = make_settings(
            db_url,
            DESKBOT_ENGINEERS=f"{ENGINEER.upper()}, other@example.com",
            DESKBOT_ZULIP_STREAM=STREAM,
            **EVERY_MESSAGE_ANSWERED,
        )
        self.runtimes: list[Runtime] = []

    def channel(self, **overrides: object) -> ZulipChannel:
        """A Zulip channel on the fake with the desk's DESKBOT_ENGINEERS, as `deskbot run` builds it."""
        engineers = self.settings.engineer_entries
        return self.make_channel(
            engineer_ids=engineers.user_ids,
            engineer_emails=engineers.emails,
            engineer_groups=engineers.groups,
            **overrides,
        )

    def start(self, channel: ZulipChannel | None = None) -> Runtime:
        channel = channel or self.channel()
        runtime = Runtime(self.settings, [channel], engine=self.engine, clock=self.clock, migrate=False)
        runtime.start()
        self.runtimes.append(runtime)
        wait_until(lambda: channel.connected, what="the Zulip channel to connect")
        return runtime

    def stop_all(self) -> None:
        while self.runtimes:
            self.runtimes.pop().stop(drain_seconds=2)

    def customer(self, name: str, zulip_email: str, credits: int) -> None:
        """A customer linked to the Zulip account with this (real) address: by its user id, as the store keys it."""
        now = self.clock()
        with transaction(self.engine) as session:
            customer, _code = customers.create_customer(session, name, None, "en", now)
            customers.link_identity(session, customer, "zulip", str(self.fake.user(zulip_email).user_id), now)
            credit_service.grant_credits(session, customer, credits, now.date(), "test", now, months=12)

    # -- what the bot posted ------------------------------------------------------
    def dms_to(self, email: str) -> list[StoredMessage]:
        return self.fake.sent_by(BOT, to=email)

    def in_topic(self, topic: str = TOPIC) -> list[StoredMessage]:
        return self.fake.sent_by(BOT, stream=STREAM, topic=topic)

    def wait_dm(self, email: str, containing: str) -> StoredMessage:
        return wait_until(  # type: ignore[return-value]
            lambda: next((m for m in self.dms_to(email) if containing in m.content), None),
            what=f"a DM to {email} containing {containing!r}",
        )

    def wait_topic(self, containing: str, topic: str = TOPIC) -> StoredMessage:
        return wait_until(  # type: ignore[return-value]
            lambda: next((m for m in self.in_topic(topic) if containing in m.content), None),
            what=f"a message in {topic!r} containing {containing!r}",
        )


def assert_each_message_once(engine: sa.Engine, fake: FakeZulip) -> None:
    """Nothing lost, nothing doubled: every message the bot posted on Zulip is recorded for exactly one
    sent outbox row, and every part of every sent row is on Zulip (no reference is needed for this).

    A message the fake has just taken is recorded by the dispatcher a moment later (after the send
    returns): its record is waited for, a few seconds at most, before a message recorded for no row
    is called a double."""

    def recorded() -> tuple[Counter[str], Counter[str]]:
        with engine.connect() as conn:
            sent = conn.execute(
                sa.text("SELECT id, platform_ids FROM outbox WHERE state = 'sent' AND channel = 'zulip'")
            )
            owners = Counter(i for _row, ids in sent for i in json.loads(ids or "[]"))
        return owners, Counter(str(m.id) for m in fake.sent_by(BOT))

    def all_recorded() -> bool:
        owners, posted = recorded()
        return not set(posted) - set(owners)

    with suppress(AssertionError):  # not within the wait: the assertions below say what is wrong
        wait_until(all_recorded, timeout=5.0, what="every post recorded")
    owners, posted = recorded()
    assert [i for i, n in owners.items() if n > 1] == [], "a message recorded for two rows: one row's answer is lost"
    assert set(owners) - set(posted) == set(), "a row recorded as sent whose message is not on Zulip"
    doubled = [fake.message(int(i)).content[:60] for i in set(posted) - set(owners)]
    assert doubled == [], f"posted but recorded for no row (a double): {doubled}"


def open_case(desk: ZulipDesk) -> None:
    desk.fake.post_dm(ALICE, "open My printer is on fire @**all**")
    desk.wait_dm(ALICE, "Incident #1 is open")
    desk.wait_topic("My printer is on fire")


def test_customer_dm_opens_a_case_that_appears_in_its_topic(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    answer = desk.dms_to(ALICE)[-1]
    # The customer's own words are shown inert: their mention does not act, even in their own DM.
    assert answer.content.startswith("Incident #1 is open: `My printer is on fire @**all**`\n")
    assert active_markup(answer.content) == []
    # Nothing internal reaches the customer (issue 13, item 5): no reference, no markup of the bot's.
    assert "ref dk" not in answer.content and answer.content.count("`") == 2
    assert answer.content.split("\n")[-1] == "Anything you write now is added to this incident."
    [mirrored] = [m for m in desk.in_topic() if "wrote:" in m.content]
    relayed = parse_relayed(mirrored.content)
    alice = desk.fake.user(ALICE).user_id
    assert relayed.outside[0] == f"**`Alice Customer`** via zulip (user `{alice}`) wrote:"
    assert relayed.inside == ["My printer is on fire @**all**"]  # the mention is fenced, inert
    assert all(len(m.subject) <= 60 for m in desk.in_topic())
    assert desk.fake.truncations == [] and desk.fake.rate_limited == []


def test_engineer_reply_in_the_topic_reaches_the_customer(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply Please unplug it, then plug it back in.")
    dm = desk.wait_dm(ALICE, "[#1] Please unplug it")
    assert dm.content.split("\n")[0] == "[#1] Please unplug it, then plug it back in."
    echo = parse_relayed(desk.wait_topic("replied to the customer").content)
    assert echo.outside[0] == f"**{ENGINEER}** replied to the customer via zulip:"
    assert echo.inside == ["Please unplug it, then plug it back in."]
    # Engineers talking among themselves in the topic never reach the customer.
    before = len(desk.dms_to(ALICE))
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "I think it is the fuser")
    desk.fake.post_dm(ENGINEER, "/case 1")
    summary = desk.wait_dm(ENGINEER, "#1").content
    assert len(desk.dms_to(ALICE)) == before
    # The customer's Zulip account is keyed by user id: engineers read it by name.
    alice = desk.fake.user(ALICE).user_id
    assert f"`Alice Customer (zulip {alice})`: opened" in summary
    assert f"customer `Alice Customer (zulip {alice})`: `My printer" in summary


def test_a_dm_sent_the_moment_readiness_passes_on_a_first_start_is_answered(desk: ZulipDesk) -> None:
    """/readyz passes only once the channel listens: on a first start (no stored cursor) what
    came before is history from before the bot, so a DM sent before the event queue is registered
    and the cursor set would never be answered. The registration is slowed here, and readiness
    is asked as fast as it can be. (`Runtime.placed` also closes the short gap between `start()`
    and the receive loop taking the channel, which this does not catch reliably: the loop is
    usually there before `start()` returns.)"""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.fake.delay_next(1, 0.5, path="/register", method="POST")
    channel = desk.channel()
    runtime = Runtime(desk.settings, [channel], engine=desk.engine, clock=desk.clock, migrate=False)
    runtime.start()
    desk.runtimes.append(runtime)
    deadline = time.monotonic() + 15
    while not runtime.ready()[0]:
        assert time.monotonic() < deadline, runtime.ready()
    assert channel.connected and desk.fake.requests_to("POST", "/register")
    desk.fake.post_dm(ALICE, "open My printer is on fire")
    desk.wait_dm(ALICE, "Incident #1 is open: My printer is on fire")


def test_a_non_engineer_is_refused(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.fake.subscribe(STREAM, BOB)  # a colleague who can see the stream but is not an engineer
    desk.start()
    open_case(desk)
    dms_before = len(desk.dms_to(ALICE))
    desk.fake.post_stream_message(BOB, STREAM, TOPIC, "/reply You are on your own.")
    desk.wait_topic("not authorised")
    desk.fake.post_dm(BOB, "/resolve 1")
    desk.wait_dm(BOB, "not authorised")
    time.sleep(0.3)
    assert len(desk.dms_to(ALICE)) == dms_before
    assert not any("on your own" in m.content for m in desk.fake.sent_by(BOT))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the "killed" dispatcher
@pytest.mark.parametrize("reached_zulip", [True, False], ids=["sent-then-killed", "killed-before-send"])
def test_killed_between_outbox_commit_and_send_confirmation(desk: ZulipDesk, reached_zulip: bool) -> None:
    """The process dies inside `send` (before or after the POST reached Zulip), before the row
    is marked sent. After a restart every row is delivered once: none lost, none doubled."""
    desk.customer("Alice Customer", ALICE, credits=2)
    first = desk.channel()
    real_send = first.send
    killed: list[int] = []

    def dying_send(message: Outbound) -> list[str]:
        if not killed:
            killed.append(message.outbox_id)
            if reached_zulip:
                real_send(message)
            raise Killed
        return real_send(message)

    first.send = dying_send  # type: ignore[method-assign]
    desk.start(first)
    desk.fake.post_dm(ALICE, "open My printer is on fire @**all**")
    wait_until(lambda: killed, what="the first send")
    time.sleep(0.3)  # the dispatcher thread is dead; the rows stay leased to it
    desk.stop_all()
    with transaction(desk.engine) as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert rows and all(r.state == "pending" for r in rows)
        before = {r.id for r in rows}
    # Restart once the dead process's lease on the rows has run out.
    desk.clock.advance(seconds=31)
    desk.start()

    def all_sent() -> bool:
        with transaction(desk.engine) as session:
            return all(r.state == "sent" for r in session.scalars(select(Outbox)))

    wait_until(all_sent, what="every outbox row to be sent")
    with transaction(desk.engine) as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert {r.id for r in rows} >= before
        assert all(r.attempts >= 2 for r in rows if r.id in before)
    assert_each_message_once(desk.engine, desk.fake)
    assert "Incident #1 is open" in desk.dms_to(ALICE)[0].content
    posts = desk.fake.requests_to("POST", "/messages")
    assert len([p for p in posts if p.status == 200]) == len(desk.fake.sent_by(BOT))


def test_a_dm_of_thousands_of_backticks_neither_hangs_the_channel_nor_floods_the_topic(desk: ZulipDesk) -> None:
    # Issue 16.1: around 4,990 backticks the relay's splitting loop never finished and the
    # receiving thread, which sends the mirror inline, stopped taking messages.
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    before = len(desk.in_topic())
    desk.fake.post_dm(ALICE, "`" * 4_990)
    desk.fake.post_dm(ALICE, "status")
    desk.wait_dm(ALICE, "My printer is on fire")  # the status answer: the channel kept receiving
    mirrored = wait_until(lambda: desk.in_topic()[before:], what="the mirror of the backticks")
    assert 1 <= len(mirrored) <= 2
    inside = [line for m in mirrored for line in parse_relayed(m.content).inside]
    assert "".join(inside) == "`" * 4_990
    assert desk.fake.truncations == []


def test_a_customers_own_words_never_act_in_the_answers_to_them(desk: ZulipDesk) -> None:
    # The bot's answers quote the customer (the subject, a file's name, the latest messages of
    # `status N`): their words must not act as Zulip markdown there either (a mention, a link, an
    # image, TeX, a widget). Plain words stay as they are.
    desk.customer("Alice Customer", ALICE, credits=len(HOSTILE) + 1)
    desk.start()

    def ask(text: str, answer_containing: str) -> str:
        before = len(desk.dms_to(ALICE))
        desk.fake.post_dm(ALICE, text)
        answer = wait_until(
            lambda: next((m for m in desk.dms_to(ALICE)[before:] if answer_containing in m.content), None),
            what=f"an answer to {text!r} containing {answer_containing!r}",
        )
        return answer.content  # type: ignore[attr-defined]

    opened = ask("open VPN down since Monday, again", "Incident #1 is open")
    assert opened.startswith("Incident #1 is open: VPN down since Monday, again\n")
    for number, hostile in enumerate(HOSTILE, start=2):
        # Incidents are open: the answer asks first, listing them (the hostile subjects among them).
        asked = ask(f"open {hostile} (case {number})", 'reply "open" again within')
        assert active_markup(asked) == [], (hostile, asked)
        opened = ask("open", f"Incident #{number} is open")
        assert active_markup(opened) == [], (hostile, opened)
        detail = ask(f"status {number}", "Latest messages (Lisbon time):")
        assert active_markup(detail) == [], (hostile, detail)
    listing = ask("status", "Your incidents:")
    assert active_markup(listing) == [], listing
    last = len(HOSTILE) + 1
    assert f"#{last} `{HOSTILE[-1]} (case {last})` — " in listing
    assert ask("status 1", "Incident #1: ").startswith("Incident #1: VPN down since Monday, again\n")


def test_control_characters_in_a_subject_never_reach_the_topic_name(desk: ZulipDesk) -> None:
    # Issue 16.4: Zulip refuses a topic name with a control character, and every mirror and
    # warning of the case then failed for good.
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    desk.fake.post_dm(ALICE, "open \x1b[31mRED\x1b[0m disk\x07 alarm\u202e")
    desk.wait_dm(ALICE, "Incident #1 is open")
    topic = "#1 Alice Customer: [31mRED[0m disk alarm"
    mirrored = desk.wait_topic("wrote:", topic=topic)
    assert "\x1b[31mRED" in parse_relayed(mirrored.content).inside[0]  # the text itself is kept, fenced
    assert desk.fake.sent_by(BOT, stream=STREAM, topic="deskbot alerts") == []


def test_a_post_the_case_topic_refuses_for_good_is_reported_and_counted(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=2)
    runtime = desk.start()
    open_case(desk)
    # Only topic posts follow: the engineer's command in the topic is answered there.
    desk.fake.fail_next(1, status=400, body="json", path="/messages", method="POST")
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/assign me")
    alert = desk.wait_topic("could not be posted", topic="deskbot alerts")
    assert alert.content.startswith("⚠ A message for case #1 could not be posted in its topic, for good: `")
    assert runtime.metrics.delivery_failures.labels("zulip", "failed_topic")._value.get() == 1


def test_a_credit_expiry_reminder_reaches_the_customer_by_dm_once(desk: ZulipDesk) -> None:
    """The watcher's reminder (bot/reminders.py) goes out as a DM to the customer's Zulip account,
    by user id, once however many passes run (the running runtime's own watcher among them)."""
    from datetime import date

    user_id = str(desk.fake.user(ALICE).user_id)
    with transaction(desk.engine) as session:
        alice, _code = customers.create_customer(session, "Alice Customer", None, "en", desk.clock())
        customers.link_identity(session, alice, "zulip", user_id, desk.clock())
        credit_service.grant_credits(session, alice, 2, date(2025, 12, 22), "test", desk.clock(), months=12)
    runtime = desk.start()
    runtime.watch_once()
    dm = desk.wait_dm(ALICE, "A reminder:")
    assert dm.content.startswith(
        "A reminder: 2 support credits from the pack you bought on 22 Dec 2025 are still unused."
    )
    runtime.watch_once()
    with transaction(desk.engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.channel == "zulip", Outbox.recipient == user_id))
        found = [(r.id, r.text[:40], r.state) for r in rows]
        assert len(found) == 1, found
    assert [m.content[:11] for m in desk.dms_to(ALICE)] == ["A reminder:"]
    assert_each_message_once(desk.engine, desk.fake)
