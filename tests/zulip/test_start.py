"""Start-up checks: credentials and the support stream, each failure one clear line."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.channel import PermanentChannelError, TransientChannelError
from adapters.zulip import ZulipChannel
from adapters.zulip.transport import load_credentials
from tests.fakes.zulip import FakeZulip
from tests.mail.tls import MailTLS
from tests.zulip.conftest import BOT, BOT_KEY, BOT_NAME, FAST, STREAM, populate


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_start_learns_identity_and_stream(fake: FakeZulip, make_channel: Callable[..., ZulipChannel]) -> None:
    channel = make_channel()
    channel.start()
    assert channel.state.user_id == fake.user(BOT).user_id
    assert channel.state.full_name == BOT_NAME
    assert channel.state.stream_id == fake.stream(STREAM).stream_id
    assert channel.state.stream_private
    assert channel.name == "zulip" and channel.carries_case_topics


def test_a_zulip_behind_a_private_certificate_authority(private_ca: MailTLS, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not trusted: one line that says so and where to name the CA. Named: every request trusts it,
    # the constructor's first (requests reads the environment) and the later ones (read once).
    tls = private_ca
    with FakeZulip(tls=tls.server_context()) as server:
        populate(server)

        def start() -> ZulipChannel:
            channel = ZulipChannel(site=server.url, email=BOT, api_key=BOT_KEY, stream=STREAM, tuning=FAST)
            try:
                channel.start()
            finally:
                channel.close()
            return channel

        with pytest.raises(PermanentChannelError) as refused:
            start()  # the CA named nowhere: the certificate is not trusted
        assert "certificate is not trusted" in str(refused.value) and "REQUESTS_CA_BUNDLE" in str(refused.value)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
        assert server.url.startswith("https://") and start().state.stream_private


def test_bad_api_key_is_one_permanent_line(
    make_channel: Callable[..., ZulipChannel], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermanentChannelError) as info:
        make_channel(api_key="not-the-key").start()
    message = one_line(info.value)
    assert "rejected the API key" in message and BOT in message and "INVALID_API_KEY" in message
    assert "not-the-key" not in message and "not-the-key" not in caplog.text


def test_unreachable_site_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    channel = ZulipChannel(site=f"http://127.0.0.1:{port}", email=BOT, api_key=BOT_KEY)
    with pytest.raises(TransientChannelError) as info:
        channel.start()
    assert "unreachable" in one_line(info.value)


def test_missing_configuration_is_permanent() -> None:
    with pytest.raises(PermanentChannelError) as info:
        ZulipChannel(site="http://127.0.0.1:1", email=BOT).start()
    assert one_line(info.value) == "ZULIP_API_KEY not set (or ZULIP_CONFIG, a zuliprc file)"


def test_zuliprc(fake: FakeZulip, tmp_path: Path) -> None:
    rc = fake.zuliprc(BOT, tmp_path / "zuliprc")
    channel = ZulipChannel(config_file=str(rc), stream=STREAM)
    channel.start()
    assert channel.state.email == BOT
    with pytest.raises(PermanentChannelError) as info:
        ZulipChannel(config_file=str(tmp_path / "missing"), stream=STREAM).start()
    assert one_line(info.value).startswith("ZULIP_CONFIG: cannot read zuliprc")
    # A zuliprc without what the channel needs names the options and the settings that would give them.
    bare = tmp_path / "bare"
    bare.write_text("[api]\nemail=bot@example.com\n")
    with pytest.raises(PermanentChannelError) as info:
        ZulipChannel(config_file=str(bare), stream=STREAM).start()
    assert one_line(info.value) == (
        f"ZULIP_CONFIG: {bare} has no site, key in its [api] section, and ZULIP_SITE and ZULIP_API_KEY are not set"
    )


def test_a_zuliprc_is_read_as_written(tmp_path: Path) -> None:
    # configparser's interpolation would refuse a lone `%` with a traceback-shaped error.
    rc = tmp_path / "zuliprc"
    rc.write_text("[api]\nsite=https://zulip.example.com\nemail=bot@example.com\nkey=ab%cd%%ef\n")
    assert load_credentials(None, None, None, str(rc)).api_key == "ab%cd%%ef"


def test_missing_stream_is_refused(make_channel: Callable[..., ZulipChannel]) -> None:
    with pytest.raises(PermanentChannelError) as info:
        make_channel(stream="helpdesk").start()
    assert one_line(info.value).startswith("support stream 'helpdesk' does not exist")


@pytest.mark.parametrize("make_public", ["make_stream_public", "make_stream_web_public"])
def test_public_support_stream_is_refused(
    fake: FakeZulip, make_channel: Callable[..., ZulipChannel], make_public: str
) -> None:
    getattr(fake, make_public)(STREAM)
    with pytest.raises(PermanentChannelError) as info:
        make_channel().start()
    message = one_line(info.value)
    assert f"support stream '{STREAM}'" in message and "refusing to start" in message


def test_unsubscribed_bot_is_refused(fake: FakeZulip, make_channel: Callable[..., ZulipChannel]) -> None:
    # A private stream is invisible to non-subscribers, so the server cannot tell us which it is.
    fake.unsubscribe(STREAM, BOT)
    with pytest.raises(PermanentChannelError) as info:
        make_channel().start()
    assert one_line(info.value) == f"support stream '{STREAM}' does not exist or the bot is not subscribed to it"
    # A public stream the bot can see but has not joined.
    fake.add_stream("lobby", invite_only=False)
    with pytest.raises(PermanentChannelError) as info:
        make_channel(stream="lobby").start()
    assert one_line(info.value) == "the bot is not subscribed to support stream 'lobby'"


def test_not_a_zulip_server() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotZulip(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"hello": "world"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotZulip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        channel = ZulipChannel(site=f"http://127.0.0.1:{server.server_address[1]}", email=BOT, api_key=BOT_KEY)
        with pytest.raises(PermanentChannelError) as info:
            channel.start()
        assert "does not answer like a Zulip server" in one_line(info.value)
    finally:
        server.shutdown()
        server.server_close()


def test_api_key_never_in_repr(make_channel: Callable[..., ZulipChannel]) -> None:
    assert BOT_KEY not in repr(make_channel())
