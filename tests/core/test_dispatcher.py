"""The dispatcher's handling of failures: order kept, rows behind a failure handed back at once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from adapters.channel import Channel, Outbound, TransientSendError
from bot.dispatcher import Dispatcher
from storage import outbox
from storage.db import transaction
from storage.models import Outbox


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
