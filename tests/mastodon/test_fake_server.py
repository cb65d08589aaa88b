"""The fake Mastodon server behaves like the recorded one, driven by Mastodon.py itself."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import pytest
from mastodon import Mastodon, StreamListener
from mastodon.errors import (
    MastodonAPIError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from tests.fakes.mastodon import FakeMastodon

from .conftest import BOT_TOKEN, wait_until

ROOT = Path(__file__).parents[2]


def client(fake: FakeMastodon, token: str = BOT_TOKEN) -> Mastodon:
    return Mastodon(access_token=token, api_base_url=fake.url, ratelimit_method="throw")


def test_instance_and_credentials(fake: FakeMastodon) -> None:
    api = client(fake)
    assert api.instance_v2().configuration.statuses.max_characters == 500
    assert api.instance_v1().uri == "bot.example"
    assert api.account_verify_credentials().acct == "deskbot"
    with pytest.raises(MastodonUnauthorizedError):
        client(fake, "wrong").account_verify_credentials()


def test_notifications_paginate_like_mastodon(fake: FakeMastodon) -> None:
    for i in range(5):
        fake.post_status("alice@remote.example", f"@deskbot n{i}")
    api = client(fake)
    newest = api.notifications(types=["mention"], limit=2)
    assert [n.id for n in newest] == ["5", "4"]
    assert [n.id for n in api.notifications(types=["mention"], min_id="1", limit=2)] == ["3", "2"]
    assert [n.id for n in api.notifications(types=["mention"], since_id="1", limit=2)] == ["5", "4"]
    assert [n.id for n in api.notifications(types=["mention"], max_id="4")] == ["3", "2", "1"]
    assert [n.id for n in api.fetch_next(newest)] == ["3", "2"]
    response = httpx.get(
        f"{fake.url}/api/v1/notifications?types[]=mention&limit=2", headers={"Authorization": f"Bearer {BOT_TOKEN}"}
    )
    assert 'rel="next"' in response.headers["Link"] and 'rel="prev"' in response.headers["Link"]


def test_direct_status_reaches_only_mentioned_accounts(fake: FakeMastodon) -> None:
    status = fake.post_status("alice@remote.example", "@deskbot secret for the bot")
    assert [p.id for p in fake.inbox("deskbot")] == [status["id"]]
    assert fake.inbox("carol") == [] and fake.inbox("mallory@elsewhere.example") == []
    api = client(fake)
    reply = api.status_post("@alice@remote.example hi", in_reply_to_id=status["id"], visibility="direct")
    assert [m.acct for m in reply.mentions] == ["alice@remote.example"]
    assert fake.posted_by("deskbot")[0].recipients == ("alice@remote.example",)


def test_idempotency_key_returns_the_same_status(fake: FakeMastodon) -> None:
    api = client(fake)
    first = api.status_post("@carol one", visibility="direct", idempotency_key="k-1")
    again = api.status_post("@carol one", visibility="direct", idempotency_key="k-1")
    assert first.id == again.id and len(fake.posted_by("deskbot")) == 1


def test_idempotency_keys_expire_and_a_keyed_repeat_can_answer_500(fake: FakeMastodon) -> None:
    api = client(fake)
    first = api.status_post("@carol one", visibility="direct", idempotency_key="k-2")
    fake.fail_keyed_repeats(500)  # mastodon/mastodon#40399
    with pytest.raises(MastodonServerError) as error:
        api.status_post("@carol one", visibility="direct", idempotency_key="k-2")
    assert error.value.args[1] == 500
    assert [p.id for p in fake.posted_by("deskbot")] == [first.id]  # the first status stays, alone
    fake.expire_idempotency_keys()  # an hour later the key is forgotten: a repeat posts again
    again = api.status_post("@carol one", visibility="direct", idempotency_key="k-2")
    assert again.id != first.id and len(fake.posted_by("deskbot")) == 2


def test_status_source_and_context_as_the_bot_sees_them(fake: FakeMastodon) -> None:
    api = client(fake)
    question = fake.post_status("alice@remote.example", "@deskbot where is https://shop.example/a?")
    answer = api.status_post(
        "@alice@remote.example see https://kb.example/x", in_reply_to_id=question["id"], visibility="direct"
    )
    source = api.status_source(answer.id)
    assert (source.id, source.text, source.spoiler_text) == (
        answer.id,
        "@alice@remote.example see https://kb.example/x",
        "",
    )
    assert [s.id for s in api.status_context(question["id"]).descendants] == [answer.id]
    secret = fake.post_status("alice@remote.example", "@carol not for the bot")
    with pytest.raises(MastodonNotFoundError):
        api.status_source(secret["id"])


def test_account_statuses_show_the_owner_its_direct_statuses_and_others_what_they_may(fake: FakeMastodon) -> None:
    api = client(fake)
    bot_id = api.account_verify_credentials().id
    posted = [api.status_post(f"@alice@remote.example dm {i}", visibility="direct").id for i in range(45)]
    public = api.status_post("hello world", visibility="public").id
    newest = api.account_statuses(bot_id, limit=40)
    assert [s.id for s in newest] == [public, *reversed(posted[6:])]
    assert [s.id for s in api.fetch_next(newest)] == list(reversed(posted[:6]))
    assert [s.id for s in api.account_statuses(bot_id, max_id=posted[3])] == list(reversed(posted[:3]))
    assert len(client(fake, "alice-token").account_statuses(bot_id, limit=40)) == 40  # mentioned in them
    assert [s.id for s in client(fake, "carol-token").account_statuses(bot_id)] == [public]


def test_held_merges_keep_accepted_requests_out_of_the_notifications(fake: FakeMastodon) -> None:
    api = client(fake)
    fake.hold_merges()
    fake.post_status("mallory@elsewhere.example", "@deskbot let me in")
    api.accept_notification_request(api.notification_requests()[0].id)
    assert api.notifications_merged() is False and api.notifications(types=["mention"]) == []
    fake.release_merges()
    assert api.notifications_merged() is True
    assert [n.account.acct for n in api.notifications(types=["mention"])] == ["mallory@elsewhere.example"]


def test_422_beyond_max_characters_with_mastodons_counting(fake: FakeMastodon) -> None:
    api = client(fake)
    url = "https://example.com/" + "a" * 200
    # 500 counted: the mention counts "@alice" (6), the URL 23.
    ok = "@alice@remote.example " + url + " " + "x" * (500 - 6 - 1 - 23 - 1)
    api.status_post(ok, visibility="direct")
    with pytest.raises(MastodonAPIError) as error:
        api.status_post(ok + "x", visibility="direct")
    assert error.value.args[1] == 422 and "character limit of 500" in error.value.args[3]


def test_policy_filters_strangers_private_mentions_until_accepted(fake: FakeMastodon) -> None:
    api = client(fake)
    fake.post_status("mallory@elsewhere.example", "@deskbot let me in")
    assert api.notifications(types=["mention"]) == []
    requests = api.notification_requests()
    assert len(requests) == 1 and requests[0].account.acct == "mallory@elsewhere.example"
    assert api.notifications_policy().summary.pending_requests_count == 1
    api.accept_notification_request(requests[0].id)
    assert [n.status.account.acct for n in api.notifications(types=["mention"])] == ["mallory@elsewhere.example"]
    api.update_notifications_policy(for_private_mentions="accept")
    fake.add_account("trudy@elsewhere.example")
    fake.post_status("trudy@elsewhere.example", "@deskbot me too")
    assert len(api.notifications(types=["mention"])) == 2


def test_rate_limit_headers_and_429(fake: FakeMastodon) -> None:
    with FakeMastodon(api_limit=3, api_period=60) as small:
        api = client(small)
        api.account_verify_credentials()
        assert api.ratelimit_limit == 3 and api.ratelimit_remaining == 2
        api.account_verify_credentials()
        api.account_verify_credentials()
        with pytest.raises(MastodonRatelimitError):
            api.account_verify_credentials()
        assert small.stats.ratelimited == 1


def test_posting_budget_is_its_own_family(fake: FakeMastodon) -> None:
    with FakeMastodon(status_limit=2, status_period=3600) as small:
        small.add_account("carol")
        api = client(small)
        api.status_post("@carol a", visibility="direct")
        assert api.ratelimit_limit == 2 and api.ratelimit_remaining == 1
        api.status_post("@carol b", visibility="direct")
        with pytest.raises(MastodonRatelimitError):
            api.status_post("@carol c", visibility="direct")


def test_faults_fail_and_drop(fake: FakeMastodon) -> None:
    api = client(fake)
    fake.fail_next(2, 502)
    for _ in range(2):
        with pytest.raises(MastodonServerError):
            api.account_verify_credentials()
    assert api.account_verify_credentials().acct == "deskbot"
    fake.drop_next(1, method="POST", path="/api/v1/statuses", after_handling=True)
    with pytest.raises(MastodonNetworkError):
        api.status_post("@carol lost answer", visibility="direct", idempotency_key="drop-1")
    assert len(fake.posted_by("deskbot")) == 1  # it was posted; only the answer was lost


def test_stream_heartbeats_events_and_disconnects(fake: FakeMastodon) -> None:
    fake.set_policy("deskbot", for_private_mentions="accept")
    lines: list[str] = []
    with httpx.stream(
        "GET", f"{fake.url}/api/v1/streaming/user", headers={"Authorization": f"Bearer {BOT_TOKEN}"}, timeout=5
    ) as response:
        iterator = response.iter_lines()
        assert next(iterator) == ":)"
        fake.post_status("alice@remote.example", "@deskbot over the stream")
        for line in iterator:
            lines.append(line)
            if line.startswith("data:"):
                break
        assert "event: notification" in lines
        assert json.loads(lines[-1][5:])["status"]["visibility"] == "direct"
        assert next(iterator) == ""
        assert next(iterator) == ":thump"
        fake.disconnect_streams()
        with pytest.raises(httpx.HTTPError):
            for _ in iterator:
                pass


def test_round_trip_half_on_the_way_in_half_on_the_way_back_and_events_half_late() -> None:
    # Long enough that the client's own time (Mastodon.py reads a stream a byte at a time, beside
    # the fake's threads: up to a quarter of a second under load) cannot make an event look held.
    half = 1.0
    with FakeMastodon(bot_acct="deskbot", bot_token=BOT_TOKEN, heartbeat_interval=0.3, round_trip=2 * half) as fake:
        fake.add_account("alice@remote.example", token="alice-token")
        fake.set_policy("deskbot", for_private_mentions="accept")
        api = client(fake)
        sent = time.monotonic()
        reply = api.status_post("@alice@remote.example hi", visibility="direct")
        back = time.monotonic()
        stored = fake.status(reply.id).stored_at
        assert stored - sent >= half and back - stored >= half  # handled after half, answered after the other

        arrived: dict[str, float] = {}

        class Listener(StreamListener):
            def on_notification(self, notification: object) -> None:
                arrived[notification.status.id] = time.monotonic()  # type: ignore[attr-defined]

        handle = api.stream_user(Listener(), run_async=True)
        try:
            wait_until(lambda: fake.streams.connections, 10)
            first = fake.post_status("alice@remote.example", "@deskbot one")
            second = fake.post_status("alice@remote.example", "@deskbot two")
            wait_until(lambda: len(arrived) == 2, 10)
        finally:
            handle.close()
        for status in (first, second):
            late = arrived[status["id"]] - fake.status(status["id"]).stored_at
            # Half a round trip on its way to the client, each event on its own: the second is
            # not held up behind the first one's trip (that would make it a whole round trip late).
            assert half <= late < 1.6 * half, late


def test_standalone_server_with_control_endpoints(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.mastodon",
            "--port",
            str(port),
            "--token",
            "t0",
            "--account",
            "alice@remote.example:alice-token",
            "--private-mentions",
            "accept",
            "--round-trip",
            "0.1",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(base), 10, 0.1)
        body = json.dumps({"from": "alice@remote.example", "text": "@deskbot hi from outside"}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{base}/_fake/statuses", data=body, method="POST"))
        api = Mastodon(access_token="t0", api_base_url=base)
        started = time.monotonic()
        assert [n.status.account.acct for n in api.notifications(types=["mention"])] == ["alice@remote.example"]
        assert time.monotonic() - started >= 0.1  # the round trip
        policy = json.dumps({"acct": "alice@remote.example", "for_private_mentions": "accept"}).encode()
        request = urllib.request.Request(f"{base}/_fake/policy", data=policy, method="POST")
        assert json.loads(urllib.request.urlopen(request).read())["for_private_mentions"] == "accept"
        stats = json.loads(urllib.request.urlopen(f"{base}/_fake/stats").read())
        assert stats["by_route"]["GET /api/v1/notifications"] == 1
        assert stats["by_account"]["deskbot"] == 1
        posted = json.loads(urllib.request.urlopen(f"{base}/_fake/inbox?acct=deskbot").read())
        assert isinstance(posted[0]["stored_at"], float)
    finally:
        process.terminate()
        process.wait(5)


def _free_port() -> int:
    # A port the kernel just handed out: far less likely to be taken than a fixed one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _up(base: str) -> bool:
    try:
        urllib.request.urlopen(f"{base}/api/v1/instance", timeout=0.5)
        return True
    except OSError:
        time.sleep(0.05)
        return False


def test_media_are_uploaded_processed_and_attached_like_mastodon(fake: FakeMastodon) -> None:
    """`POST /api/v2/media`, `GET /api/v1/media/:id` and a status's `media_ids`, as Mastodon answers
    them (200 or 202, 206 while processing, 422 for what `validate_media!` refuses), and the instance's
    media configuration as the recorded entity has it."""
    import io

    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452")
    api = client(fake)
    config = api.instance_v2().configuration
    assert config.statuses.max_media_attachments == 4 and "image/png" in config.media_attachments.supported_mime_types
    assert api.instance_v1().configuration.media_attachments.image_size_limit == 16777216

    def upload(mime: str, data: bytes = png, name: str = "f") -> dict:
        return api.media_post(io.BytesIO(data), mime_type=mime, description=name, file_name=name)

    image = upload("image/png", name="shot.png")
    assert image.url and image.type == "image" and image.description == "shot.png"
    fake.media_processing = 0.3
    video = upload("video/mp4", b"\0" * 64)
    assert video.url is None  # 202: processing
    assert api.media(video.id).url is None  # 206 while processing
    with pytest.raises(MastodonAPIError, match="not finished processing"):
        api.status_post("@alice@remote.example v", media_ids=[video.id], visibility="direct")
    wait_until(lambda: api.media(video.id).url, 5)
    with pytest.raises(MastodonAPIError, match="video to a post that already contains images"):
        api.status_post("@alice@remote.example both", media_ids=[image.id, video.id], visibility="direct")
    five = [upload("image/png").id for _ in range(5)]
    with pytest.raises(MastodonAPIError, match="more than 4"):
        api.status_post("@alice@remote.example five", media_ids=five, visibility="direct")
    with pytest.raises(MastodonAPIError, match="not found"):
        api.status_post("@alice@remote.example ghost", media_ids=["1"], visibility="direct")
    with pytest.raises(MastodonAPIError, match="content type is invalid"):
        upload("text/plain", b"a log line\n")
    fake.image_size_limit = 10
    with pytest.raises(MastodonAPIError, match="file size"):
        upload("image/png")
    posted = api.status_post("@alice@remote.example here", media_ids=[image.id], visibility="direct")
    [medium] = posted.media_attachments
    assert medium.id == image.id and httpx.get(medium.url).content == png  # public on the file host
    with pytest.raises(MastodonAPIError, match="already attached"):
        api.status_post("@alice@remote.example again", media_ids=[image.id], visibility="direct")
    with pytest.raises(MastodonNotFoundError):
        api.media(image.id)  # Mastodon shows only unattached media
    assert fake.status(posted.id).recipients == ("alice@remote.example",)
