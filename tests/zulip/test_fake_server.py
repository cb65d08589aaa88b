"""The fake Zulip server itself, driven by the real `zulip.Client`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import requests
import zulip

from tests.fakes.zulip import FakeZulip
from tests.zulip.conftest import ALICE, BOB, BOT, BOT_KEY, ENGINEER, STREAM

REPO = Path(__file__).resolve().parents[2]


def client(fake: FakeZulip, email: str = BOT, key: str | None = None) -> zulip.Client:
    return zulip.Client(site=fake.url, email=email, api_key=key or fake.user(email).api_key, retry_on_errors=False)


def test_constructor_and_profile(fake: FakeZulip) -> None:
    c = client(fake)
    assert c.zulip_version and c.feature_level == 247
    me = c.get_profile()
    assert me["result"] == "success" and me["email"] == BOT and me["is_bot"] is True


def test_bad_key_is_401_invalid_api_key(fake: FakeZulip) -> None:
    c = client(fake, key="wrong")
    assert c.get_profile()["code"] == "INVALID_API_KEY"
    assert fake.requests_to("GET", "/users/me")[-1].status == 401


def test_narrows_and_anchors(fake: FakeZulip) -> None:
    ids = [fake.post_dm(ALICE, f"a{i}") for i in range(5)]
    fake.post_dm(BOB, "from bob")
    fake.post_stream_message(ENGINEER, STREAM, "t1", "in stream")
    fake.post_dm(ALICE, "group", to=[BOT, BOB])
    c = client(fake)

    def get(**kw: object) -> dict:
        res = c.get_messages({"num_before": 0, "num_after": 0, "apply_markdown": False, **kw})
        assert res["result"] == "success", res
        return res

    res = get(anchor=ids[1], num_after=2, include_anchor=False, narrow=[{"operator": "dm", "operand": ALICE}])
    assert [m["id"] for m in res["messages"]] == ids[2:4] and not res["found_newest"]
    res = get(anchor=ids[3], num_after=10, include_anchor=False, narrow=[{"operator": "dm", "operand": ALICE}])
    assert [m["id"] for m in res["messages"]] == [ids[4]] and res["found_newest"]
    res = get(anchor="newest", num_before=100, narrow=[{"operator": "is", "operand": "dm"}])
    assert len(res["messages"]) == 7 and res["found_newest"] and res["found_oldest"]
    res = get(anchor="newest", num_before=100, narrow=[{"operator": "stream", "operand": STREAM}])
    assert [m["content"] for m in res["messages"]] == ["in stream"]
    assert res["messages"][0]["content_type"] == "text/x-markdown"
    res = get(anchor="oldest", num_after=2, narrow=[["sender", ALICE]])
    assert [m["id"] for m in res["messages"]] == ids[:2]
    res = get(anchor="newest")
    assert len(res["messages"]) == 1 and res["found_anchor"]
    res = get(anchor="first_unread", num_after=1)
    assert res["messages"][0]["id"] == ids[0]
    html = c.get_messages({"anchor": "newest", "num_before": 1, "num_after": 0})
    assert html["messages"][0]["content"].startswith("<p>")


def test_dm_display_recipient_includes_sender(fake: FakeZulip) -> None:
    fake.post_dm(ALICE, "hi")
    m = client(fake).get_messages({"anchor": "newest", "num_before": 1, "num_after": 0})["messages"][0]
    assert sorted(r["email"] for r in m["display_recipient"]) == sorted([ALICE, BOT])
    assert m["type"] == "private" and m["subject"] == ""


def test_send_normalises_and_truncates_silently(fake: FakeZulip) -> None:
    c = client(fake)
    res = c.send_message({"type": "stream", "to": STREAM, "topic": "t" * 70, "content": "\n\nx" * 6000})
    assert res["result"] == "success"
    stored = fake.message(res["id"])
    assert len(stored.content) == 10000 and stored.content.endswith("\n[message truncated]")
    assert stored.subject == "t" * 57 + "..."
    assert {t.what for t in fake.truncations} == {"content", "topic"}
    assert c.send_message({"type": "direct", "to": [ALICE], "content": "   "})["msg"] == "Message must not be empty"
    res = c.send_message({"type": "stream", "to": "nope", "topic": "x", "content": "x"})
    assert res["code"] == "STREAM_DOES_NOT_EXIST"


def test_private_stream_needs_subscription(fake: FakeZulip) -> None:
    res = client(fake, ALICE).send_message({"type": "stream", "to": STREAM, "topic": "x", "content": "x"})
    assert res["result"] == "error" and "Not authorized" in res["msg"]
    assert client(fake, ALICE).get_stream_id(STREAM)["result"] == "error"


def test_long_poll_heartbeat_and_message(fake: FakeZulip) -> None:
    c = client(fake)
    q = c.register(event_types=["message"])
    started = time.monotonic()
    res = c.get_events(queue_id=q["queue_id"], last_event_id=-1)
    assert [e["type"] for e in res["events"]] == ["heartbeat"]
    assert 0.3 <= time.monotonic() - started < 2
    fake.post_dm(ALICE, "wake up")
    res = c.get_events(queue_id=q["queue_id"], last_event_id=res["events"][0]["id"])
    assert res["events"][0]["message"]["content"] == "wake up"


def test_register_narrow_is_dm(fake: FakeZulip) -> None:
    c = client(fake)
    q = c.register(event_types=["message"], narrow=[["is", "dm"]])
    fake.post_stream_message(ENGINEER, STREAM, "t", "stream")
    fake.post_dm(ALICE, "dm")
    res = c.get_events(queue_id=q["queue_id"], last_event_id=-1, dont_block=True)
    assert [e["message"]["content"] for e in res["events"]] == ["dm"]


def test_idle_queue_expires_with_bad_event_queue_id() -> None:
    with FakeZulip(heartbeat=0.2, queue_idle_timeout=0.3) as fake:
        fake.add_user(BOT, "Bot", BOT_KEY, is_bot=True)
        c = client(fake)
        q = c.register(event_types=["message"])
        time.sleep(0.5)
        res = c.get_events(queue_id=q["queue_id"], last_event_id=-1)
        assert res["code"] == "BAD_EVENT_QUEUE_ID" and res["queue_id"] == q["queue_id"]
        assert fake.realm.expired_queues == 1


def test_stream_update_event(fake: FakeZulip) -> None:
    c = client(fake)
    q = c.register(event_types=["stream"])
    fake.make_stream_public(STREAM)
    res = c.get_events(queue_id=q["queue_id"], last_event_id=-1, dont_block=True)
    first = res["events"][0]
    assert first["property"] == "invite_only" and first["value"] is False
    assert first["stream_id"] == fake.stream(STREAM).stream_id


def test_rate_limit_headers_and_429(fake: FakeZulip) -> None:
    fake.set_rate_limit(3, window=5)
    c = client(fake)
    session = requests.Session()
    session.auth = (BOT, BOT_KEY)
    seen = [session.get(fake.url + "/api/v1/users/me") for _ in range(4)]
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in seen[:3]] == ["2", "1", "0"]
    assert int(seen[0].headers["X-RateLimit-Reset"]) >= int(time.time())
    assert float(seen[3].headers["Retry-After"]) > 0
    assert seen[3].json()["code"] == "RATE_LIMIT_HIT" and seen[3].json()["retry-after"] > 0
    assert c.get_profile()["code"] == "RATE_LIMIT_HIT"  # the client hands the 429 body back
    assert len(fake.rate_limited) == 2


def test_faults_status_drop_and_window(fake: FakeZulip) -> None:
    c = client(fake)
    c.get_profile()  # connect once, so later connection errors are not "never connected"
    fake.fail_next(2, status=502, path="/users/me")
    assert c.get_profile()["result"] == "http-error"
    assert c.get_profile()["status_code"] == 502
    assert c.get_profile()["result"] == "success"
    fake.drop_next(1, path="/messages", method="POST", after_processing=True)
    before = len(fake.messages)
    with pytest.raises(requests.ConnectionError):
        c.send_message({"type": "direct", "to": [ALICE], "content": "lost ack"})
    assert len(fake.messages) == before + 1  # stored, but the client never heard
    fake.fail_for(2.0, status=503)
    assert c.get_profile()["status_code"] == 503
    time.sleep(2.1)
    assert c.get_profile()["result"] == "success"


def test_restart_keeps_messages_and_loses_queues(fake: FakeZulip) -> None:
    c = client(fake)
    q = c.register(event_types=["message"])
    fake.post_dm(ALICE, "kept")
    fake.restart()
    c2 = client(fake)
    assert c2.get_events(queue_id=q["queue_id"], last_event_id=-1)["code"] == "BAD_EVENT_QUEUE_ID"
    res = c2.get_messages({"anchor": "newest", "num_before": 1, "num_after": 0, "apply_markdown": False})
    assert res["messages"][0]["content"] == "kept"


def test_runs_standalone(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.zulip",
            "--port",
            "0",
            "--bot-email",
            BOT,
            "--api-key",
            BOT_KEY,
            "--stream",
            "support",
            "--engineer",
            ENGINEER,
            "--customer",
            f"{ALICE}:alice-key",
            "--heartbeat",
            "0.5",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        keys = {u["email"]: u["api_key"] for u in info["users"]}
        assert keys[BOT] == BOT_KEY and keys[ALICE] == "alice-key"
        c = zulip.Client(site=info["url"], email=BOT, api_key=BOT_KEY)
        subs = c.get_subscriptions()["subscriptions"]
        assert subs[0]["name"] == "support" and subs[0]["invite_only"] is True
        req = urllib.request.Request(
            info["url"] + "/_fake/dm", data=json.dumps({"from": ALICE, "content": "hi"}).encode(), method="POST"
        )
        with urllib.request.urlopen(req) as resp:
            assert json.load(resp)["id"] > 0
        with urllib.request.urlopen(info["url"] + "/_fake/state") as resp:
            state = json.load(resp)
        assert state["messages"][0]["content"] == "hi" and state["messages"][0]["to"] == sorted([ALICE, BOT])
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_get_messages_returns_all_of_fewer_matches_than_num_before() -> None:
    """62 matching messages and num_before=100 give all 62 (a negative slice once gave the newest 40)."""
    from tests.fakes.zulip import FakeZulip

    with FakeZulip() as fake:
        bot = fake.add_user("bot@example.com", "Bot", "bot-key", is_bot=True)
        fake.add_user("alice@example.com", "Alice", "alice-key")
        for n in range(62):
            fake.post_dm("alice@example.com", f"m{n}", to="bot@example.com")
        import zulip

        client = zulip.Client(email="bot@example.com", api_key="bot-key", site=fake.url)
        answer = client.get_messages(
            {
                "anchor": "newest",
                "num_before": 100,
                "num_after": 0,
                "apply_markdown": False,
                "narrow": [{"operator": "is", "operand": "dm"}],
            }
        )
        assert [m["content"] for m in answer["messages"]] == [f"m{n}" for n in range(62)]
        assert answer["found_oldest"] is True
        del bot


def test_uploads_follow_zulips_access_rule(fake: FakeZulip) -> None:
    """Issue 14, item 7: a file is the uploader's, and then of whoever sees a message that shares it;
    a message linking a file its sender cannot read shares nothing."""
    path = fake.upload(ALICE, "secret.txt", b"alice only")
    assert fake.download(ALICE, path) == (200, b"alice only")
    assert fake.download(BOB, path)[0] == 404
    fake.post_dm(BOB, f"look [x]({path})", to=ENGINEER)  # Bob cannot read it: sharing nothing
    assert fake.download(ENGINEER, path)[0] == 404
    fake.post_dm(ALICE, f"here [secret.txt]({path})", to=ENGINEER)
    assert fake.download(ENGINEER, path) == (200, b"alice only")
    assert fake.download(BOB, path)[0] == 404
    assert fake.download(ALICE, "/user_uploads/2/00/nothing/here.txt")[0] == 404
