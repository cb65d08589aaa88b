"""What engineers working cases in Zulip met (the audit's follow-ups), through the whole bot: the fake
Zulip over HTTP, the real `zulip` client, runtime, router and store (SQLite and PostgreSQL).

- The response-target watcher looks its mentions up before it locks a case: a slow `GET /users/{email}`
  holds no case, and another transaction may change one meanwhile.
- Topic names are compared as Zulip compares them, whatever their case: a command in a topic whose name
  differs from the stored one only in case finds its case, and a move of it takes the case along.
- A case that follows its moved topic says so in its history (`/case`).
- A case topic opens with the customer's credits left, with when they expire, and their earlier cases.
- An engineer whose `/reply` follows a colleague's on the same case within two minutes is told so.
"""

from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa
from sqlalchemy import select

from adapters.markup import inert
from bot.i18n import format_day
from bot.services import credits as credit_service
from storage.db import is_postgresql, make_engine, transaction
from storage.models import CreditPack, Customer, IncidentEvent
from tests.zulip.conftest import ALICE, BOB, BOT, ENGINEER, STREAM
from tests.zulip.markdown_check import active_markup
from tests.zulip.test_edits import answered_after
from tests.zulip.test_end_to_end import TOPIC, ZulipDesk, open_case, wait_until
from tests.zulip.test_topic_moves import first_in, move_as, stored_topic

COLLEAGUE = "other@example.com"  # in the desk's DESKBOT_ENGINEERS
RENAMED = "Alice's printer (urgent)"
BOB_TOPIC = "#2 Bob Customer: Scanner jams"


def bob_opens_a_case(desk: ZulipDesk) -> None:
    desk.customer("Bob Customer", BOB, credits=1)
    desk.fake.post_dm(BOB, "open Scanner jams")
    desk.wait_dm(BOB, "Incident #2 is open")
    desk.wait_topic("Scanner jams", topic=BOB_TOPIC)


# -- 1. the watcher's mention look-up holds no case ------------------------------------------


def update_case_meanwhile(db_url: str, number: int) -> str:
    """Change case `number` from a transaction of its own, waiting one second at most for it:
    "updated", or what stopped it (the row or the database held by someone else)."""
    engine = make_engine(db_url) if "postgresql" in db_url else sa.create_engine(db_url, connect_args={"timeout": 1})
    try:
        with engine.begin() as connection:
            if is_postgresql(engine):
                connection.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
            connection.execute(sa.text("UPDATE incident SET subject = subject WHERE id = :id"), {"id": number})
        return "updated"
    except sa.exc.OperationalError as exc:
        return f"blocked: {exc.orig}"
    finally:
        engine.dispose()


def test_a_slow_mention_look_up_holds_no_case(desk: ZulipDesk, db_url: str) -> None:
    """Two cases owed a warning: Alice's, assigned to an engineer the bot knows from their messages, and
    Bob's, assigned to a colleague Zulip is asked about. While Zulip takes its time answering, another
    transaction changes both cases (PostgreSQL: their rows; SQLite: the database) without waiting."""
    desk.fake.add_user(COLLEAGUE, "Olga Other")
    desk.customer("Alice Customer", ALICE, credits=2)
    runtime = desk.start()
    open_case(desk)
    desk.clock.advance(minutes=1)  # Bob's is due a minute after Alice's: the watcher comes to it second
    bob_opens_a_case(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/assign me")
    desk.wait_topic("#1 is assigned to")
    desk.fake.post_stream_message(ENGINEER, STREAM, BOB_TOPIC, f"/assign {COLLEAGUE}")
    desk.wait_topic("#2 is assigned to", topic=BOB_TOPIC)

    meanwhile: list[str] = []

    def while_looking_up(method: str, path: str, _params: dict[str, str]) -> None:
        if method == "GET" and path.startswith("/users/") and COLLEAGUE in path and not meanwhile:
            meanwhile.extend(update_case_meanwhile(db_url, number) for number in (1, 2))

    desk.fake.before_request = while_looking_up
    desk.clock.advance(days=1, hours=7, minutes=30)  # Thursday 17:30: 2.5 business hours left on both
    runtime.watch_once()
    assert meanwhile == ["updated", "updated"]
    # What is posted is as before: each warning mentions its assignee.
    alice = desk.wait_topic("🟠 Response due").content
    bob = desk.wait_topic("🟠 Response due", topic=BOB_TOPIC).content
    assert alice.endswith(f"(Severity 3, normal.) @**Erin Engineer|{desk.fake.user(ENGINEER).user_id}**")
    assert bob.endswith(f"(Severity 3, normal.) @**Olga Other|{desk.fake.user(COLLEAGUE).user_id}**")


def test_a_case_assigned_during_the_look_ups_is_warned_in_the_next_pass(desk: ZulipDesk) -> None:
    """Assigned to someone else after the watcher looked its assignee's mention up: the watcher does
    not look up with the case locked; the next pass warns it, mentioning whoever holds it then."""
    desk.fake.add_user(COLLEAGUE, "Olga Other")
    desk.customer("Alice Customer", ALICE, credits=2)
    runtime = desk.start()
    open_case(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/assign {COLLEAGUE}")
    desk.wait_topic("#1 is assigned to")
    desk.clock.advance(days=1, hours=7, minutes=30)

    def erin_takes_it(method: str, path: str, _params: dict[str, str]) -> None:
        if method == "GET" and path.startswith("/users/") and COLLEAGUE in path:
            with transaction(desk.engine) as session:
                session.execute(sa.text("UPDATE incident SET assignee = :who WHERE id = 1"), {"who": ENGINEER})

    desk.fake.before_request = erin_takes_it
    runtime.watch_once()
    desk.fake.before_request = None
    assert not any("Response due" in m.content for m in desk.in_topic())
    runtime.watch_once()
    warning = desk.wait_topic("🟠 Response due").content
    assert warning.endswith(f"@**Erin Engineer|{desk.fake.user(ENGINEER).user_id}**")
    assert len([m for m in desk.in_topic() if "Response due" in m.content]) == 1


# -- 2. topic names whatever their case ----------------------------------------------------------


def renamed(desk: ZulipDesk) -> None:
    """Alice's case, its topic renamed by hand to a name without its number."""
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    move_as(desk, ENGINEER, first_in(desk, TOPIC), RENAMED, "change_all")
    wait_until(lambda: stored_topic(desk) == RENAMED, what="the case to follow its topic")


def test_a_command_in_the_topic_written_in_another_case_finds_its_case(desk: ZulipDesk) -> None:
    renamed(desk)
    other_case = RENAMED.upper()  # the same topic to Zulip
    desk.fake.post_stream_message(ENGINEER, STREAM, other_case, "/reply Unplug it, please")
    desk.wait_dm(ALICE, "[#1] Unplug it, please")
    desk.wait_topic("Unplug it, please", topic=RENAMED)  # the echo, under the name the case keeps
    desk.fake.post_stream_message(ENGINEER, STREAM, other_case.swapcase(), "/note the fuser again")
    desk.wait_topic("Note saved on #1.", topic=other_case.swapcase())


def test_a_move_of_the_topic_written_in_another_case_takes_the_case_along(desk: ZulipDesk) -> None:
    """Zulip moves a whole topic whatever the case its messages were written in; the event names the
    topic as the message moved shows it."""
    renamed(desk)
    shouted = desk.fake.post_stream_message(ENGINEER, STREAM, RENAMED.upper(), "Who has the spare fuser?")
    move_as(desk, ENGINEER, shouted, "Printer fixed?", "change_all")
    answered_after(desk, "It smokes again", "Added to incident #1.")
    desk.wait_topic("It smokes again", topic="Printer fixed?")
    assert stored_topic(desk) == "Printer fixed?"


# -- 3. a topic move in the case's history --------------------------------------------------------


def renames_of(desk: ZulipDesk) -> list[IncidentEvent]:
    with transaction(desk.engine) as session:
        query = select(IncidentEvent).where(IncidentEvent.action == "topic renamed").order_by(IncidentEvent.id)
        return list(session.scalars(query))


def test_a_case_that_follows_its_topic_says_so_in_its_history(desk: ZulipDesk) -> None:
    renamed(desk)
    [event] = renames_of(desk)
    assert (event.incident_id, event.actor, event.detail) == (1, "zulip", f"from “{TOPIC}” to “{RENAMED}”")
    desk.fake.post_stream_message(ENGINEER, STREAM, RENAMED, "/case")
    summary = desk.wait_topic("topic renamed", topic=RENAMED).content
    assert f"`zulip`: topic renamed ({inert(f'from “{TOPIC}” to “{RENAMED}”')})" in summary
    assert active_markup(summary) == []  # the subject's @**all** in the old name does nothing
    # Told again (a redelivered event), nothing more is written.
    event = desk.fake.move_topic(ENGINEER, first_in(desk, RENAMED), "✔ " + RENAMED, "change_all")
    wait_until(lambda: stored_topic(desk) == "✔ " + RENAMED, what="the second move")
    desk.fake.redeliver(event)
    answered_after(desk, "status", "Your incidents:")
    assert [e.detail for e in renames_of(desk)] == [
        f"from “{TOPIC}” to “{RENAMED}”",
        f"from “{RENAMED}” to “✔ {RENAMED}”",
    ]


def test_the_test_sink_is_told_of_topic_moves(fake, make_channel, sink, run_channel) -> None:  # noqa: ANN001
    """tests/zulip/conftest.py's sink takes `InboundSink.topic_renamed` as the intake does."""
    first = fake.post_stream_message(ENGINEER, STREAM, "#5 Acme: disks", "one")
    with run_channel(make_channel(), sink):
        fake.move_topic(ENGINEER, first, "#5 Acme: disks (done)", "change_all")
        sink.wait_for(lambda s: bool(s.renamed))
    assert sink.renamed == [("zulip", "#5 Acme: disks", "#5 Acme: disks (done)")]


# -- 4. what a case topic opens with -------------------------------------------------------------


def pack_ends(desk: ZulipDesk, name: str) -> list[date]:
    with transaction(desk.engine) as session:
        query = select(CreditPack.valid_until).join(Customer).where(Customer.name == name).order_by(CreditPack.id)
        return list(session.scalars(query))


def test_a_case_topic_opens_with_the_customers_credits_and_earlier_cases(desk: ZulipDesk) -> None:
    desk.customer("Alice Customer", ALICE, credits=4)
    desk.start()
    open_case(desk)
    first = desk.in_topic()[0].content
    [ends] = pack_ends(desk, "Alice Customer")
    assert f"\n💳 credits left: 3 (valid until {format_day(ends, 'en')} inclusive)\n🗂 no earlier cases" in first
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/resolve")
    desk.wait_dm(ALICE, "reopen it at no charge")
    with transaction(desk.engine) as session:  # a second pack, ending sooner
        alice = session.scalars(select(Customer).where(Customer.name == "Alice Customer")).one()
        credit_service.grant_credits(session, alice, 2, desk.clock().date(), "test", desk.clock(), months=1)
    desk.fake.post_dm(ALICE, "open Paper jam `in` tray 2 @**all**")
    desk.wait_dm(ALICE, "Incident #2 is open")
    topic = next(m.subject for m in desk.fake.sent_by(BOT, stream=STREAM) if m.subject.startswith("#2 "))
    second = desk.in_topic(topic)[0].content
    later, sooner = pack_ends(desk, "Alice Customer")
    assert (
        f"\n💳 credits left: 4 (1 valid until {format_day(sooner, 'en')}, 3 valid until {format_day(later, 'en')}, "
        "inclusive)\n🗂 earlier cases, newest first:\n• #1 `My printer is on fire @**all**` · resolved"
    ) in second
    assert active_markup(second) == []


# -- 5. two engineers answering at once ----------------------------------------------------------

OVERLAP = re.compile(r"⚠️ `(?P<who>[^`]+)` replied to this customer (?P<seconds>\d+) seconds? ago")


def echo_of(desk: ZulipDesk, text: str) -> str:
    return desk.wait_topic(text).content


def test_a_reply_soon_after_a_colleagues_says_so_in_its_echo(desk: ZulipDesk) -> None:
    desk.fake.add_user(COLLEAGUE, "Olga Other")
    desk.fake.subscribe(STREAM, COLLEAGUE)
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply Unplug it")
    assert not OVERLAP.search(echo_of(desk, "Unplug it"))
    desk.clock.advance(seconds=40)
    desk.fake.post_stream_message(COLLEAGUE, STREAM, TOPIC, "/reply Try another socket")
    desk.wait_dm(ALICE, "[#1] Try another socket")  # nothing blocks it
    found = OVERLAP.search(echo_of(desk, "Try another socket"))
    assert found is not None and found.group("who", "seconds") == (ENGINEER, "40")
    desk.clock.advance(seconds=30)
    desk.fake.post_stream_message(COLLEAGUE, STREAM, TOPIC, "/reply And wait a minute")
    # Her own reply a moment ago is no colleague's; Erin's is 70 seconds old now.
    found = OVERLAP.search(echo_of(desk, "And wait a minute"))
    assert found is not None and found.group("who", "seconds") == (ENGINEER, "70")
    desk.clock.advance(minutes=2, seconds=1)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply Any luck?")
    assert not OVERLAP.search(echo_of(desk, "Any luck?"))  # Olga's was more than two minutes ago


def test_a_reply_from_a_dm_soon_after_a_colleagues_is_told_in_the_dm_too(desk: ZulipDesk) -> None:
    desk.fake.add_user(COLLEAGUE, "Olga Other")
    desk.customer("Alice Customer", ALICE, credits=2)
    desk.start()
    open_case(desk)
    desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, "/reply Unplug it")
    echo_of(desk, "Unplug it")
    desk.clock.advance(seconds=1)
    desk.fake.post_dm(COLLEAGUE, "/reply 1 Try another socket")
    told = desk.wait_dm(COLLEAGUE, "Sent to the customer of #1 via zulip").content
    assert told == (
        "Sent to the customer of #1 via zulip (`Alice Customer`).\n"
        f"⚠️ `{ENGINEER}` replied to this customer 1 second ago:"
        " check that you are not repeating each other."
    )
    assert OVERLAP.search(echo_of(desk, "Try another socket"))
