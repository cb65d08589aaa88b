"""A Zulip server that takes requests in but answers none (a hung process, `kill -STOP`).

* Closing the channel (SIGTERM) returns at once even while a send, or the look-up for an
  earlier send, waits on it; the row cut off stays pending and goes out once after a restart.
* A request that hangs holds the sender for one timeout, not for every retry and look-up.
* The receive loop calls the server unreachable once a long-poll goes unanswered past the
  heartbeat, and recovers when it answers again; /readyz and `deskbot_channel_up` say so.

The fake's `hold_answers` stands for the hung server: connections are accepted and requests
read, but nothing is answered until `release_answers`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from adapters.channel import Outbound, TransientSendError
from adapters.zulip import ZulipChannel
from adapters.zulip.receive import long_poll_timeout
from tests.fakes.zulip import FakeZulip
from tests.zulip.conftest import ALICE, BOT, BOT_KEY, FAST, STREAM, RecordingSink, Running, populate
from tests.zulip.test_end_to_end import ZulipDesk, wait_until

MakeChannel = Callable[..., ZulipChannel]
TEXT = "Hello Alice, we are on it."


def dm(outbox_id: int, attempt: int = 1, text: str = TEXT) -> Outbound:
    return Outbound(outbox_id, "zulip", "direct", text, recipient=ALICE, attempt=attempt)


def posted(fake: FakeZulip, text: str = TEXT) -> list[int]:
    return [m.id for m in fake.sent_by(BOT, to=ALICE) if m.content == text]


class Sending:
    """`channel.send(message)` in a thread of its own: what it returned or raised."""

    def __init__(self, channel: ZulipChannel, message: Outbound) -> None:
        self.result: list[str] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(channel, message), daemon=True)
        self.thread.start()

    def _run(self, channel: ZulipChannel, message: Outbound) -> None:
        try:
            self.result = channel.send(message)
        except BaseException as exc:  # reported by the test
            self.error = exc


def close_within(channel: ZulipChannel, seconds: float) -> float:
    """Close `channel` in a thread (a close that hangs must not hang the test); how long it took."""
    closer = threading.Thread(target=channel.close, daemon=True)
    began = time.monotonic()
    closer.start()
    closer.join(seconds)
    assert not closer.is_alive(), f"close() still waiting after {seconds}s"
    return time.monotonic() - began


@pytest.fixture
def hung(fake: FakeZulip) -> Iterator[FakeZulip]:
    """The fake, its answers released after the test whatever happened."""
    try:
        yield fake
    finally:
        fake.before_request = None
        fake.release_answers()


@pytest.mark.parametrize(
    ("where", "attempt"),
    [("post-not-handled", 1), ("post-handled-answer-held", 1), ("earlier-send-lookup", 2)],
)
def test_close_cuts_a_send_waiting_on_a_hung_server_and_the_row_goes_once_after_restart(
    hung: FakeZulip, make_channel: MakeChannel, where: str, attempt: int
) -> None:
    # A request timeout far longer than the test: only close() can end the wait.
    channel = make_channel(request_timeout=60.0)
    channel.start()
    if where == "post-handled-answer-held":
        # The post is stored, its answer never leaves: the bot cannot know it went through.
        def hold_after(method: str, path: str, params: dict[str, str]) -> None:
            if (method, path) == ("POST", "/messages"):
                hung.hold_answers()

        hung.before_request = hold_after
    else:
        hung.hold_answers()
    sending = Sending(channel, dm(1, attempt=attempt))
    wanted = ("GET", "/messages") if where == "earlier-send-lookup" else ("POST", "/messages")
    wait_until(lambda: wanted in hung.held, what=f"{wanted} to reach the hung server")

    took = close_within(channel, 5.0)
    assert took < 2.0, f"close() took {took:.1f}s"
    sending.thread.join(2.0)
    assert not sending.thread.is_alive(), "the send was not cut off by close()"
    # Cut off by stopping: pending (tried again), never "sent" with made-up ids, never failed for good.
    assert sending.result is None
    assert isinstance(sending.error, TransientSendError), repr(sending.error)
    assert "stopping" in str(sending.error)

    hung.before_request = None
    hung.release_answers()
    assert len(posted(hung)) == (1 if where == "post-handled-answer-held" else 0)
    restarted = make_channel()
    [message_id] = restarted.send(dm(1, attempt=attempt + 1))
    assert posted(hung) == [int(message_id)], "the row cut off by close() was lost or doubled"


def test_a_request_that_hangs_holds_the_sender_for_one_timeout_not_every_retry(
    hung: FakeZulip, make_channel: MakeChannel
) -> None:
    channel = make_channel(request_timeout=1.0)
    channel.start()

    def hold_after(method: str, path: str, params: dict[str, str]) -> None:
        if (method, path) == ("POST", "/messages"):
            hung.hold_answers()  # stored, then the server hangs: the answer never comes

    hung.before_request = hold_after
    began = time.monotonic()
    with pytest.raises(TransientSendError, match="did not answer"):
        channel.send(dm(1))
    took = time.monotonic() - began
    # One timeout (1 s). Retrying it, with a look-up for the post before each retry and retries
    # of that look-up, would cost a timeout each: over 5 s.
    assert took < 2.5, f"the send held the sender for {took:.1f}s"
    hung.before_request = None
    hung.release_answers()
    # The dispatcher's next attempt finds the post that went through: not sent twice.
    assert channel.send(dm(1, attempt=2)) == [str(i) for i in posted(hung)]
    assert len(posted(hung)) == 1


def test_a_server_that_stops_answering_is_told_within_the_poll_timeout_then_recovers(
    hung: FakeZulip, make_channel: MakeChannel, sink: RecordingSink, run_channel: Any
) -> None:
    poll_timeout = 2.0  # production: 60 s (`long_poll_timeout`); the fake's heartbeat is 0.4 s
    channel = make_channel(poll_timeout=poll_timeout)
    troubles: list[tuple[float, str]] = []
    channel.on_trouble = lambda reason: troubles.append((time.monotonic(), reason))
    running: Running
    with run_channel(channel, sink) as running:
        hung.post_dm(ALICE, "before")
        sink.wait_count(1)
        hung.hold_answers()
        held_at = time.monotonic()
        wait_until(lambda: not channel.connected, timeout=10.0, what="the channel to notice")
        noticed = time.monotonic() - held_at
        # The poll in flight goes unanswered for its timeout: told then, not after another one.
        assert noticed < poll_timeout + 1.0, f"noticed after {noticed:.1f}s"
        told = [(at - held_at, reason) for at, reason in troubles if at >= held_at]
        assert told and told[0][0] < poll_timeout + 1.0, told
        assert "not answering" in told[0][1]
        during = hung.post_dm(ALICE, "written while the server hangs")
        time.sleep(poll_timeout)
        assert not channel.connected
        hung.release_answers()
        running.wait_connected(timeout=10.0)
        after = hung.post_dm(ALICE, "after")
        sink.wait_count(3)
    assert sink.ids[1:] == [during, after]


def test_readyz_and_channel_up_show_a_hung_zulip_and_its_recovery(hung: FakeZulip, desk: ZulipDesk) -> None:
    runtime = desk.start(desk.channel(poll_timeout=2.0))

    def channel_up() -> float | None:
        return runtime.metrics.registry.get_sample_value("deskbot_channel_up", {"channel": "zulip"})

    def outage() -> str | None:
        """/readyz's reason once the runtime calls it an outage (before: "not connected")."""
        ready, why = runtime.ready()
        return why if not ready and why.startswith("zulip unreachable") else None

    wait_until(lambda: runtime.ready()[0], what="ready")
    hung.hold_answers()
    # The poll timeout, then the runtime's grace before an outage is told (5 s).
    reason = str(wait_until(outage, timeout=12.0, what="/readyz to tell the outage"))
    assert "not answering" in reason, reason
    assert channel_up() == 0
    hung.release_answers()
    wait_until(lambda: runtime.ready()[0], timeout=15.0, what="ready again")
    assert channel_up() == 1


def test_the_long_poll_timeout_follows_zulips_heartbeat() -> None:
    # Zulip answers an idle long-poll within 55 s (heartbeat); 5 s margin. Its announced
    # long-poll timeout is 90 s: waiting that (+10) would hide a hung server for 100 s.
    assert long_poll_timeout(90) == 60.0
    assert long_poll_timeout(None) == 60.0
    assert long_poll_timeout(30) == 60.0  # never under the heartbeat Zulip sends whatever it announces
    assert long_poll_timeout(180) == 120.0  # a longer announced timeout: a longer heartbeat, in proportion


def test_close_cuts_a_send_over_https_too(private_ca: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Production Zulip is HTTPS: the cut must end a read blocked inside TLS as well.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(private_ca.ca_file))
    with FakeZulip(tls=private_ca.server_context(), heartbeat=0.4) as server:
        populate(server)
        channel = ZulipChannel(
            site=server.url, email=BOT, api_key=BOT_KEY, stream=STREAM, tuning=replace(FAST, request_timeout=60.0)
        )
        try:
            channel.start()
            server.hold_answers()
            sending = Sending(channel, dm(1))
            wait_until(lambda: ("POST", "/messages") in server.held, what="the post to reach the hung server")
            assert close_within(channel, 5.0) < 2.0
            sending.thread.join(2.0)
            assert not sending.thread.is_alive(), "the send was not cut off by close()"
            assert isinstance(sending.error, TransientSendError) and "stopping" in str(sending.error)
        finally:
            server.release_answers()
            channel.close()
