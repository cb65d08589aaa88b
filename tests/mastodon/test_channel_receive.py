"""MastodonChannel.start and .receive through the fake server."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from adapters.channel import PermanentChannelError, TransientChannelError
from adapters.mastodon import CURSOR_KEY, MastodonChannel, MastodonTuning
from tests.fakes.mastodon import FakeMastodon
from tests.mail.tls import MailTLS

from .conftest import RecordingSink, Running, wait_until


def test_remote_dm_is_delivered_with_the_right_fields(fake: FakeMastodon, run_channel: Callable[..., Running]) -> None:
    running = run_channel()
    status = fake.post_status(
        "alice@remote.example",
        "@deskbot My invoice is wrong\nplease check https://shop.example/orders/1",
        spoiler_text="Invoice",
        media=[{"url": None, "remote_url": "https://remote.example/m/1.png"}],
    )
    (message,) = running.sink.wait_for(1)
    assert message.channel == "mastodon"
    assert message.kind == "direct" and not message.public
    assert message.sender == "alice@remote.example"
    assert message.sender_name == "Alice Remote"
    assert message.conversation == message.message_id == status["id"]
    assert (
        message.text
        == "My invoice is wrong\nplease check https://shop.example/orders/1\n\nhttps://remote.example/m/1.png"
    )
    assert message.subject_hint == "Invoice"
    assert message.raw["status"]["id"] == status["id"]
    assert message.received_at.tzinfo is not None
    wait_until(lambda: running.sink.cursors.get(CURSOR_KEY) == "1")
    running.halt()


def test_local_account_gets_the_instance_domain(fake: FakeMastodon, run_channel: Callable[..., Running]) -> None:
    running = run_channel()
    fake.post_status("carol", "@deskbot hi from the same server")
    (message,) = running.sink.wait_for(1)
    assert message.sender == "carol@bot.example"
    running.halt()


def test_public_mention_yields_public_without_content(fake: FakeMastodon, run_channel: Callable[..., Running]) -> None:
    running = run_channel()
    fake.post_status("alice@remote.example", "@deskbot my password is hunter2", visibility="public")
    fake.post_status("alice@remote.example", "@deskbot followers only", visibility="private")
    messages = running.sink.wait_for(2)
    for message in messages:
        assert message.public and message.text == ""
        assert message.sender == "alice@remote.example"
        assert "hunter2" not in repr(message.raw)
    running.halt()


def test_own_statuses_and_other_notifications_only_move_the_cursor(
    fake: FakeMastodon, run_channel: Callable[..., Running]
) -> None:
    running = run_channel()
    fake.post_status("deskbot", "@alice@remote.example a note from the bot itself")
    fake.post_status("alice@remote.example", "@deskbot real one")
    (message,) = running.sink.wait_for(1)
    assert message.text == "real one"
    running.halt()


def test_on_a_restart_strangers_dms_arrive_once_the_policy_is_changed(
    fake: FakeMastodon, run_channel: Callable[..., Running]
) -> None:
    # Written while the bot was away and the policy (Mastodon's default) filtered it.
    early = fake.post_status("mallory@elsewhere.example", "@deskbot I never followed you")
    fake.post_status("alice@remote.example", "@deskbot handled before the restart")
    assert fake.notification_requests("deskbot")
    # The stored cursor is past the stranger's (older) notification: only the fetch by sender finds it.
    running = run_channel(RecordingSink({CURSOR_KEY: "2"}))
    assert fake.policy("deskbot")["for_private_mentions"] == "accept"
    assert fake.notification_requests("deskbot") == []
    fake.add_account("trudy@new.example")
    later = fake.post_status("trudy@new.example", "@deskbot first contact")
    messages = running.sink.wait_for(2)
    assert [m.message_id for m in messages] == [early["id"], later["id"]]
    wait_until(lambda: running.sink.cursors[CURSOR_KEY] == "3")
    running.halt()


def test_policy_left_alone_when_told(fake: FakeMastodon, make_channel: Callable[..., MastodonChannel]) -> None:
    make_channel(accept_strangers=False).start()
    assert fake.policy("deskbot")["for_private_mentions"] == "filter"


def test_stream_disconnect_in_the_middle_of_a_burst_loses_nothing(
    fake: FakeMastodon, run_channel: Callable[..., Running]
) -> None:
    fake.drop_streams_after(7)
    running = run_channel()
    sent = [fake.post_status("alice@remote.example", f"@deskbot burst {i}")["id"] for i in range(40)]
    fake.disconnect_streams()
    sent += [fake.post_status("carol", f"@deskbot while away {i}")["id"] for i in range(5)]
    running.sink.wait_for(45, timeout=15)
    assert sorted(m.message_id for m in running.sink.delivered) == sorted(sent)
    assert len(running.sink.delivered) == 45  # each once
    assert fake.streams.opened >= 2  # the first one died after 7 events
    wait_until(lambda: running.sink.cursors[CURSOR_KEY] == "45")
    running.halt()


def test_silent_stream_is_abandoned_after_the_heartbeat_timeout(
    fake: FakeMastodon, run_channel: Callable[..., Running]
) -> None:
    running = run_channel(poll_interval=30.0, heartbeat_timeout=0.8)
    opened = fake.streams.opened
    fake.stall_streams()
    fake.post_status("alice@remote.example", "@deskbot into the void")  # the stalled stream swallows it
    (message,) = running.sink.wait_for(1, timeout=10)  # by the catch-up after reconnecting
    assert message.text == "into the void"
    assert fake.streams.opened > opened
    fake.stall_streams(False)
    running.halt()


def test_polling_alone_when_streaming_is_off(fake: FakeMastodon, run_channel: Callable[..., Running]) -> None:
    running = run_channel(streaming=False, poll_interval=0.2)
    for i in range(3):
        fake.post_status("alice@remote.example", f"@deskbot polled {i}")
    assert [m.text for m in running.sink.wait_for(3)] == ["polled 0", "polled 1", "polled 2"]
    assert fake.streams.opened == 0
    running.halt()


def test_stream_refused_falls_back_to_polling(fake: FakeMastodon, run_channel: Callable[..., Running]) -> None:
    fake.fail_next(1000, 502, path="/api/v1/streaming")
    running = run_channel(wait_connected=False, poll_interval=0.3)
    fake.post_status("alice@remote.example", "@deskbot no stream today")
    assert running.sink.wait_for(1)[0].text == "no stream today"
    assert running.channel.connected
    running.halt()


def test_restart_resumes_from_the_cursor(fake: FakeMastodon, run_channel: Callable[..., Running]) -> None:
    sink = RecordingSink()
    first = run_channel(sink)
    fake.post_status("alice@remote.example", "@deskbot before restart")
    sink.wait_for(1)
    wait_until(lambda: sink.cursors.get(CURSOR_KEY) == "1")
    first.halt()
    fake.post_status("alice@remote.example", "@deskbot while down")
    second = run_channel(sink)
    sink.wait_for(2)
    time.sleep(0.3)
    assert [m.text for m in sink.delivered] == ["before restart", "while down"]
    assert sink.deliver_calls == 2  # the catch-up did not re-offer the first one
    second.halt()


def test_bad_token_is_one_line_permanent_error(
    fake: FakeMastodon, make_channel: Callable[..., MastodonChannel]
) -> None:
    with pytest.raises(PermanentChannelError) as error:
        make_channel(access_token="not-the-token").start()
    message = str(error.value)
    assert "\n" not in message and "access token" in message and "401" in message
    assert "not-the-token" not in message


def test_a_token_that_cannot_read_the_bots_statuses_stops_start_up(
    fake: FakeMastodon, make_channel: Callable[..., MastodonChannel]
) -> None:
    # Retried replies look up what was already posted: without read:statuses they would all fail later.
    own = fake.account("deskbot").id
    fake.fail_next(1, 403, method="GET", path=f"/api/v1/accounts/{own}/statuses")
    with pytest.raises(PermanentChannelError) as error:
        make_channel().start()
    message = str(error.value)
    assert "\n" not in message and "403" in message and "read:statuses" in message


def test_unreachable_instance_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = MastodonChannel(f"http://127.0.0.1:{port}", "t", tuning=MastodonTuning(request_timeout=2))
    with pytest.raises(TransientChannelError) as error:
        channel.start()
    assert "\n" not in str(error.value) and "connection refused" in str(error.value)


def test_an_instance_behind_a_private_certificate_authority(
    private_ca: MailTLS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not trusted: one line, for good (waiting would not change it), naming where the CA goes.
    # Named: both clients trust it (REQUESTS_CA_BUNDLE; the stream's httpx reads SSL_CERT_FILE).
    tls = private_ca
    with FakeMastodon(tls=tls.server_context()) as server:
        channel = MastodonChannel(server.url, "bot-token", tuning=MastodonTuning(request_timeout=5))
        with pytest.raises(PermanentChannelError) as error:
            channel.start()
        channel.close()
        message = str(error.value)
        assert "\n" not in message and "not trusted" in message and "REQUESTS_CA_BUNDLE" in message
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
        channel = MastodonChannel(server.url, "bot-token", tuning=MastodonTuning(request_timeout=5))
        channel.start()
        assert server.url.startswith("https://") and channel.max_characters == 500
        channel.close()


def test_max_characters_from_v2_then_v1_then_500(make_channel: Callable[..., MastodonChannel]) -> None:
    for v2, v1, expected in [(True, True, 1000), (False, True, 1000), (False, False, 500)]:
        with FakeMastodon(max_characters=1000, instance_v2=v2, instance_v1=v1) as server:
            channel = MastodonChannel(server.url, "bot-token")
            channel.start()
            assert channel.max_characters == expected
            channel.close()


def test_polling_stays_under_a_lowered_api_limit() -> None:
    with FakeMastodon(api_limit=6, api_period=1.0) as small:
        small.add_account("alice@remote.example")
        small.set_policy("deskbot", for_private_mentions="accept")
        channel = MastodonChannel(
            small.url, "bot-token", tuning=MastodonTuning(streaming=False, poll_interval=0.02, max_rate_wait=5.0)
        )
        channel.start()
        running = Running(channel, RecordingSink())
        running.thread.start()
        running.wait_started()
        for i in range(6):
            small.post_status("alice@remote.example", f"@deskbot slow {i}")
            time.sleep(0.3)
        running.sink.wait_for(6)
        running.halt()
        assert small.stats.ratelimited == 0
        assert small.stats.requests >= 10  # it did poll as fast as the limit allowed


def test_a_notification_that_cannot_be_read_is_logged_and_skipped_not_a_stall(
    fake: FakeMastodon, run_channel: Callable[..., Running], monkeypatch, caplog
) -> None:
    import adapters.mastodon.receive as receive_module

    real = receive_module.notification_to_inbound

    def picky(notification, **kwargs):  # noqa: ANN001, ANN003
        if "poison" in notification["status"]["content"]:
            raise KeyError("something this code does not expect")
        return real(notification, **kwargs)

    monkeypatch.setattr(receive_module, "notification_to_inbound", picky)
    running = run_channel()
    fake.post_status("alice@remote.example", "@deskbot poison")
    fake.post_status("alice@remote.example", "@deskbot still served")
    (message,) = running.sink.wait_for(1)
    assert message.text == "still served"
    wait_until(lambda: running.sink.cursors.get(CURSOR_KEY) == "2")
    assert any("cannot read Mastodon notification" in r.getMessage() for r in caplog.records)
    running.halt()
