"""The dispatcher: order kept, rows behind a failure handed back at once, replies sent inline when nothing waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select

from adapters.channel import Channel, Inbound, Outbound, TransientSendError
from bot.deployment import Deployment
from bot.dispatcher import Dispatcher
from bot.intake import Intake
from bot.router import Router
from storage import outbox
from storage.db import transaction
from storage.models import Outbox
from tests.desk import make_settings


class FlakyChannel(Channel):
    name = "flaky"

    def __init__(self) -> None:
        self.failing = True
        self.sent: list[str] = []

    def receive(self, sink, stop) -> None:  # noqa: ANN001
        stop.wait()

    def send(self, message: Outbound) -> list[str]:
        if self.failing:
            raise TransientSendError("platform down", retry_after=2.0)
        self.sent.append(message.text)
        return [str(message.outbox_id)]


def test_rows_behind_a_failed_send_are_handed_back_and_go_out_in_order_after_recovery(engine, clock):
    with transaction(engine) as s:
        for n in range(5):
            outbox.enqueue(s, channel="flaky", kind="direct", recipient="a", text=f"m{n}", now=clock())
    channel = FlakyChannel()
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock)
    assert dispatcher.drain("flaky") == 0
    with transaction(engine) as s:
        rows = s.scalars(select(Outbox).order_by(Outbox.id)).all()
        # the failed row is due when the platform asked; the untried ones with it, not a lease later
        assert {r.next_attempt_at for r in rows} == {clock() + timedelta(seconds=2)}
        assert [r.attempts for r in rows] == [1, 0, 0, 0, 0]
    channel.failing = False
    clock.advance(seconds=2)
    assert dispatcher.drain("flaky") == 5
    assert channel.sent == ["m0", "m1", "m2", "m3", "m4"]


def _intake(engine, db_url, clock, dispatcher):  # noqa: ANN001, ANN202
    return Intake(engine, Router(Deployment(settings=make_settings(db_url))), dispatcher, clock)


def _dm(clock, message_id: str, text: str = "help") -> Inbound:  # noqa: ANN001
    return Inbound(
        channel="flaky", sender="ann", conversation="ann", text=text, message_id=message_id, received_at=clock()
    )


def test_a_reply_leaves_from_the_receiving_thread_at_once_leased_and_recorded(engine, db_url, clock):
    channel = FlakyChannel()
    channel.failing = False
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)
    _intake(engine, db_url, clock, dispatcher).deliver(_dm(clock, "1"))
    assert len(channel.sent) == 1 and "help" in channel.sent[0].lower()  # no drain was needed
    with transaction(engine) as s:
        (row,) = s.scalars(select(Outbox)).all()
        # written leased to this process (attempt 1), so no loop could claim it meanwhile
        assert (row.state, row.attempts, row.platform_ids) == ("sent", 1, f'["{row.id}"]')


def test_nothing_is_sent_inline_while_an_earlier_row_of_the_channel_waits_for_a_retry(engine, db_url, clock):
    channel = FlakyChannel()
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)
    intake = _intake(engine, db_url, clock, dispatcher)
    with transaction(engine) as s:
        outbox.enqueue(s, channel="flaky", kind="direct", recipient="ann", text="earlier", now=clock())
    assert dispatcher.drain("flaky") == 0  # the platform is down: "earlier" waits 2 s
    channel.failing = False
    intake.deliver(_dm(clock, "1"))
    assert channel.sent == []  # the reply queues behind "earlier" instead of overtaking it
    clock.advance(seconds=2)
    assert dispatcher.drain("flaky") == 2
    assert channel.sent[0] == "earlier" and "help" in channel.sent[1].lower()
    intake.deliver(_dm(clock, "2"))  # nothing waits any more: inline again
    assert len(channel.sent) == 3


def test_a_redelivered_message_changes_nothing_and_sends_nothing(engine, db_url, clock):
    channel = FlakyChannel()
    channel.failing = False
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)
    intake = _intake(engine, db_url, clock, dispatcher)
    intake.deliver(_dm(clock, "1"), cursor=("flaky:last", "1"))
    intake.deliver(_dm(clock, "1"), cursor=("flaky:last", "1"))
    assert len(channel.sent) == 1
    assert intake.get_cursor("flaky:last") == "1"
    with transaction(engine) as s:
        assert len(s.scalars(select(Outbox)).all()) == 1


def wait_until(predicate, what: str, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class GatedChannel(FlakyChannel):
    """Sends only once the gate is open; the first `fail` sends fail (the platform asks for 2 s)."""

    name = "flaky"

    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.failing = False
        self.fail = fail
        self.gate = threading.Event()
        self.sending = threading.Event()

    def send(self, message: Outbound) -> list[str]:
        self.sending.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.fail:
            self.fail -= 1
            raise TransientSendError("platform down", retry_after=2.0)
        return super().send(message)


@contextmanager
def running_loop(dispatcher: Dispatcher) -> Iterator[threading.Event]:
    stop = threading.Event()
    loop = threading.Thread(target=dispatcher.run, args=("flaky", stop, 0.05), daemon=True)
    loop.start()
    wait_until(lambda: "flaky" in dispatcher._running, what="the loop to run")
    try:
        yield stop
    finally:
        stop.set()
        dispatcher.wake()
        loop.join(10)
        assert not loop.is_alive()


def _rows(engine) -> list[Outbox]:  # noqa: ANN001
    with transaction(engine) as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)).all())


def test_with_the_loop_running_the_receiving_thread_never_waits_for_a_send(engine, db_url, clock):
    channel = GatedChannel()
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)
    intake = _intake(engine, db_url, clock, dispatcher)
    with running_loop(dispatcher):
        intake.deliver(_dm(clock, "1", "help"))
        assert channel.sending.wait(5)  # the loop is sending the first reply, and is held there
        started = time.monotonic()
        intake.deliver(_dm(clock, "2", "credits"))  # the receiving thread is not held up by that send
        assert time.monotonic() - started < 2.0 and channel.sent == []
        rows = _rows(engine)
        # both written leased to this process (attempt 1): nothing else may claim them meanwhile
        assert [(r.state, r.attempts) for r in rows] == [("pending", 1), ("pending", 1)]
        assert all(r.next_attempt_at > clock() for r in rows)
        channel.gate.set()
        wait_until(lambda: len(channel.sent) == 2, what="both replies")
    assert "help" in channel.sent[0].lower() and "know this account" in channel.sent[1].lower()  # in order
    assert [(r.state, r.attempts) for r in _rows(engine)] == [("sent", 1), ("sent", 1)]


def test_rows_handed_over_behind_a_send_that_fails_wait_for_it_and_keep_their_order(engine, db_url, clock):
    channel = GatedChannel(fail=1)
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)
    intake = _intake(engine, db_url, clock, dispatcher)
    with running_loop(dispatcher):
        intake.deliver(_dm(clock, "1", "help"))
        assert channel.sending.wait(5)
        intake.deliver(_dm(clock, "2", "credits"))  # handed over while the first send is under way
        channel.gate.set()  # the first send fails: the platform asks for 2 s
        wait_until(lambda: _rows(engine)[1].attempts == 0, what="the second row handed back to the store")
        first, second = _rows(engine)
        assert second.state == "pending" and second.next_attempt_at == first.next_attempt_at  # due with it
        assert channel.sent == []
        clock.advance(seconds=2)
        wait_until(lambda: len(channel.sent) == 2, what="both replies after the retry")
    assert "help" in channel.sent[0].lower() and "know this account" in channel.sent[1].lower()
    assert [(r.state, r.attempts) for r in _rows(engine)] == [("sent", 2), ("sent", 1)]


def test_after_a_restart_a_reply_waits_behind_an_earlier_row_to_its_person_that_waits_for_a_retry(
    engine, db_url, clock
):
    # Before the restart, the platform asked for a minute before "earlier" to Ann is tried again.
    with transaction(engine) as s:
        row = outbox.enqueue(s, channel="flaky", kind="direct", recipient="ann", text="earlier", now=clock())
        outbox.mark_retry(s, row.id, "429 Too Many Requests", clock() + timedelta(minutes=1))
    channel = FlakyChannel()
    channel.failing = False
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)  # the new process
    intake = _intake(engine, db_url, clock, dispatcher)
    with running_loop(dispatcher):
        intake.deliver(_dm(clock, "1"))
        time.sleep(0.3)  # the loop looks every 0.05 s: a reply sent out of turn would show
        assert channel.sent == []
        clock.advance(minutes=1)
        wait_until(lambda: len(channel.sent) == 2, what="both, after the retry's wait")
    assert channel.sent[0] == "earlier" and "help" in channel.sent[1].lower()


class ThreadedChannel(FlakyChannel):
    """Records which thread sent each reply."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.threads: list[str] = []

    def send(self, message: Outbound) -> list[str]:
        self.threads.append(threading.current_thread().name)
        return super().send(message)


def _stranger(clock, n: int) -> Inbound:  # noqa: ANN001
    """A message of the n-th unknown sender (each gets its own answer)."""
    return Inbound(
        channel="flaky", sender=f"s{n}", conversation=f"s{n}", text="hello", message_id=str(n), received_at=clock()
    )


def test_a_backlog_page_is_sent_by_the_receiving_thread_after_what_was_handed_over_before(engine, db_url, clock):
    channel = ThreadedChannel()
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)
    intake = _intake(engine, db_url, clock, dispatcher)
    me = threading.current_thread().name
    with running_loop(dispatcher):
        intake.deliver(_dm(clock, "1", "help"))  # live: the loop sends it
        wait_until(lambda: len(channel.sent) == 1, what="the live reply")
        assert channel.threads[0] != me
        # A backlog page: written and sent by this thread before deliver_many returns, in order.
        page = [(_stranger(clock, n), ("flaky:last", str(n))) for n in (2, 3, 4)]
        intake.deliver_many(page, backlog=True)
        assert channel.threads[1:] == [me, me, me] and len(channel.sent) == 4
        # A burst received live is still the loop's to send.
        intake.deliver_many([(_stranger(clock, n), ("flaky:last", str(n))) for n in (5, 6)])
        wait_until(lambda: len(channel.sent) == 6, what="the live burst")
        assert me not in channel.threads[4:]
    assert [(r.state, r.attempts) for r in _rows(engine)] == [("sent", 1)] * 6
    assert intake.get_cursor("flaky:last") == "6"


class StreamReadChannel(ThreadedChannel):
    """Reads the platform on a thread of its own (as Mastodon's stream): its receiver is free to send."""

    reads_on_its_own_thread = True


def test_a_channel_that_reads_on_its_own_thread_has_its_receiver_send_live_replies(engine, db_url, clock):
    channel = StreamReadChannel()
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)
    intake = _intake(engine, db_url, clock, dispatcher)
    me = threading.current_thread().name
    with running_loop(dispatcher):
        intake.deliver(_dm(clock, "1", "help"), cursor=("flaky:last", "1"))
        # Sent before deliver returned, by this thread: no hop to the loop's.
        assert channel.threads == [me] and "help" in channel.sent[0].lower()
        intake.deliver_many([(_stranger(clock, n), ("flaky:last", str(n))) for n in (2, 3)])
        assert channel.threads == [me, me, me]
    assert [(r.state, r.attempts) for r in _rows(engine)] == [("sent", 1)] * 3
    assert intake.get_cursor("flaky:last") == "3"


def test_rows_handed_to_the_loop_go_out_before_a_backlog_page_the_receiver_sends(engine, db_url, clock):
    channel = GatedChannel()
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, caller_sends=True)
    intake = _intake(engine, db_url, clock, dispatcher)
    with running_loop(dispatcher):
        intake.deliver(_dm(clock, "1", "help"))
        assert channel.sending.wait(5)  # the loop holds the lane, sending the first reply
        intake.deliver(_dm(clock, "2", "credits"))  # handed over behind it
        threading.Timer(0.2, channel.gate.set).start()
        intake.deliver_many([(_stranger(clock, n), None) for n in (3, 4)], backlog=True)
        wait_until(lambda: len(channel.sent) == 4, what="every reply")
    assert "help" in channel.sent[0].lower() and "know this account" in channel.sent[1].lower()
    assert [r.state for r in _rows(engine)] == ["sent"] * 4
    assert [r.id for r in _rows(engine)] == sorted(r.id for r in _rows(engine))


class CopyingChannel(FlakyChannel):
    """Delivers every row, but refuses the people copied on it that are in `refused` (as a mail server
    refuses a `Cc` at RCPT TO while the customer takes the mail)."""

    def __init__(self, refused: dict[str, str]) -> None:
        super().__init__()
        self.failing = False
        self.refused = refused

    def send(self, message: Outbound) -> list[str]:
        from adapters.channel import Sent

        ids = super().send(message)
        return Sent(ids, {a: self.refused[a] for a in message.copies if a in self.refused})


def _case(session, clock):  # noqa: ANN001, ANN202
    """Acme's case #1, with its topic."""
    from storage.models import Customer, Incident

    customer = Customer(name="Acme")
    session.add(customer)
    session.flush()
    incident = Incident(customer_id=customer.id, subject="VPN", topic="#1 Acme: VPN", opened_at=clock())
    session.add(incident)
    session.flush()
    return incident


def test_copies_a_channel_refused_are_told_once_each_in_the_case_topic_and_the_row_stays_sent(engine, clock):
    with transaction(engine) as s:
        incident = _case(s, clock)
        for text, copies in (("answer", '["bob@x.example", "eve@x.example", "carla@x.example"]'), ("plain", None)):
            outbox.enqueue(
                s,
                channel="flaky",
                kind="direct",
                recipient="ann",
                text=text,
                now=clock(),
                incident_id=incident.id,
                copies=copies,
            )
        outbox.enqueue(
            s, channel="flaky", kind="direct", recipient="zed", text="no case", now=clock(), copies='["bob@x.example"]'
        )
    channel = CopyingChannel({"bob@x.example": "550 5.1.1 no such user", "eve@x.example": "550 `@**all**`\n/poll x"})
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, case_channel="console")
    assert dispatcher.drain("flaky") == 3
    assert dispatcher.drain("flaky") == 0  # nothing goes twice
    rows = _rows(engine)
    assert [(r.channel, r.state) for r in rows[:3]] == [("flaky", "sent")] * 3
    notices = [(r.kind, r.topic, r.incident_id, r.text) for r in rows[3:]]
    assert notices == [
        (
            "topic",
            "#1 Acme: VPN",
            incident.id,
            "⚠ The answer was not delivered to `bob@x.example` (copied on this incident): the flaky server refused "
            "it (`550 5.1.1 no such user`). Remove them with /cc remove `bob@x.example`, or correct the address.",
        ),
        (
            "topic",
            "#1 Acme: VPN",
            incident.id,
            # The platform's words stay one line of inline code: no mention, no /poll.
            "⚠ The answer was not delivered to `eve@x.example` (copied on this incident): the flaky server refused "
            "it (``550 `@**all**` /poll x``). Remove them with /cc remove `eve@x.example`, or correct the address.",
        ),
    ]
    assert [r.channel for r in rows[3:]] == ["console", "console"]


class PoisonChannel(FlakyChannel):
    """Takes every row but those whose text is in `poison` (a 5xx for that content, every time)."""

    def __init__(self, *poison: str) -> None:
        super().__init__()
        self.failing = False
        self.poison = set(poison)
        self.tried: list[str] = []

    def send(self, message: Outbound) -> list[str]:
        self.tried.append(message.text)
        if message.text in self.poison:
            raise TransientSendError("HTTP 502 for this message", retry_after=2.0)
        return super().send(message)


def _enqueue(engine, clock, *rows: tuple[str, str]) -> None:  # noqa: ANN001
    with transaction(engine) as s:
        for recipient, text in rows:
            outbox.enqueue(s, channel="flaky", kind="direct", recipient=recipient, text=text, now=clock())


def test_a_row_that_fails_again_while_the_platform_takes_others_holds_up_only_its_conversation(engine, clock):
    _enqueue(engine, clock, ("ann", "poison"), ("bob", "b1"), ("ann", "a2"), ("carl", "c1"))
    channel = PoisonChannel("poison")
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock)
    # Its first failure looks like an outage: the batch stops there.
    assert dispatcher.drain("flaky") == 0 and channel.tried == ["poison"]
    clock.advance(seconds=2)
    # It fails again: the next row of another conversation is tried, and goes; so do the rest,
    # but Ann's later answer, which waits behind her first.
    assert dispatcher.drain("flaky") == 2
    assert channel.sent == ["b1", "c1"]
    assert [(r.text, r.state) for r in _rows(engine)] == [
        ("poison", "pending"),
        ("b1", "sent"),
        ("a2", "pending"),
        ("c1", "sent"),
    ]
    # New rows to other people keep going while Ann's first answer is retried.
    _enqueue(engine, clock, ("dora", "d1"))
    clock.advance(seconds=2)
    assert dispatcher.drain("flaky") == 1 and channel.sent[-1] == "d1"
    assert "a2" not in channel.tried


def test_through_an_outage_a_retry_costs_one_more_attempt_at_most_and_nothing_goes_out_of_turn(engine, clock):
    from bot.policy.send_failures import PROBE_EVERY

    _enqueue(engine, clock, ("ann", "a1"), ("bob", "b1"), ("carl", "c1"), ("dora", "d1"))
    channel = FlakyChannel()  # down for everything
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock)
    assert dispatcher.drain("flaky") == 0
    clock.advance(seconds=2)
    assert dispatcher.drain("flaky") == 0  # a1 again, then b1 to see whether it is a1's fault: both fail
    assert [r.attempts for r in _rows(engine)] == [2, 1, 0, 0]
    # The platform is down: a retry that fails again stops the batch, as a first failure does; one
    # more row is tried only once every PROBE_EVERY (each failing attempt can take seconds).
    for _ in range(3):
        clock.advance(seconds=5)
        assert dispatcher.drain("flaky") == 0
    assert [r.attempts for r in _rows(engine)] == [5, 1, 0, 0]
    clock.advance(seconds=PROBE_EVERY.total_seconds())
    assert dispatcher.drain("flaky") == 0
    assert [r.attempts for r in _rows(engine)] == [6, 2, 0, 0]
    channel.failing = False
    clock.advance(seconds=2)
    assert dispatcher.drain("flaky") == 4
    assert channel.sent == ["a1", "b1", "c1", "d1"]


def test_a_row_failing_alone_for_an_hour_fails_for_good_the_engineers_are_told_and_its_conversation_goes_on(
    engine, clock
):
    from bot.policy.send_failures import LONE_FAILURES, LONE_GIVE_UP

    with transaction(engine) as s:
        incident = _case(s, clock)
        outbox.enqueue(
            s, channel="flaky", kind="direct", recipient="ann", text="poison", now=clock(), incident_id=incident.id
        )
        outbox.enqueue(s, channel="flaky", kind="direct", recipient="ann", text="a2", now=clock())
    channel = PoisonChannel("poison")
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, case_channel="console")
    dispatcher.drain("flaky")  # the first failure
    rounds = 0
    while _rows(engine)[0].state == "pending":
        rounds += 1
        assert rounds <= LONE_FAILURES + LONE_GIVE_UP.total_seconds() / 60 + 1, "never given up"
        _enqueue(engine, clock, ("bob", f"b{rounds}"))  # the platform takes Bob's rows meanwhile
        clock.advance(minutes=1)
        dispatcher.drain("flaky")
        if rounds < LONE_GIVE_UP.total_seconds() / 60:
            assert _rows(engine)[0].state == "pending", f"given up after {rounds} minutes"
    assert rounds >= LONE_FAILURES
    poison, a2 = _rows(engine)[:2]
    assert poison.state == "failed" and "HTTP 502 for this message" in poison.last_error
    clock.advance(seconds=2)
    dispatcher.drain("flaky")
    assert _rows(engine)[1].state == "sent" and "a2" in channel.sent  # Ann's next answer goes at last
    told = [r.text for r in _rows(engine) if r.channel == "console"]
    assert len(told) == 1 and told[0].startswith("⚠ Could not deliver a message to the customer via flaky: ")
    assert "HTTP 502 for this message" in told[0] and "given up" in told[0]


class StreamDownChannel(FlakyChannel):
    """Takes direct messages; every post to a topic fails (one endpoint of the platform is down)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def send(self, message: Outbound) -> list[str]:
        if message.kind == "topic":
            raise TransientSendError("HTTP 503 on stream posts")
        return super().send(message)


def test_a_topic_post_failing_while_only_direct_messages_go_is_an_outage_of_posts_never_given_up(engine, clock):
    with transaction(engine) as s:
        outbox.enqueue(s, channel="flaky", kind="topic", topic="#1 Acme: VPN", text="line 1", now=clock())
    channel = StreamDownChannel()
    dispatcher = Dispatcher(engine, {"flaky": channel}, clock, case_channel="flaky")
    dispatcher.drain("flaky")  # its first failure
    for minute in range(90):
        _enqueue(engine, clock, ("ann", f"a{minute}"))
        clock.advance(minutes=1)
        dispatcher.drain("flaky")
    # Ann had every answer; the case topic's line waits for posts to work again: it is not given up,
    # since no post of its kind went meanwhile.
    assert channel.sent == [f"a{minute}" for minute in range(90)]
    assert [(r.text, r.state) for r in _rows(engine) if r.kind == "topic"] == [("line 1", "pending")]
