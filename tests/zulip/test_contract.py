"""The fake's answers and the bot's requests, checked against Zulip's OpenAPI description."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests
import zulip

from adapters.channel import Outbound, OutboundFile, PermanentChannelError, PermanentSendError
from adapters.zulip import ZulipChannel
from tests.fakes.zulip import ADMINS, NOBODY, FakeZulip, payloads
from tests.fakes.zulip.model import FakeGroup, FakeStream, FakeUser, StoredMessage
from tests.fakes.zulip.openapi import REFERENCE_DIR, ContractViolation, contract
from tests.zulip.conftest import ALICE, BOB, BOT, BOT_KEY, ENGINEER, STREAM, RecordingSink

#: Every endpoint the adapter calls (as the OpenAPI description names them).
BOT_ENDPOINTS = {
    ("GET", "/server_settings"),
    ("GET", "/users/me"),
    ("GET", "/users/{email}"),
    ("GET", "/get_stream_id"),
    ("GET", "/users/me/subscriptions"),
    ("POST", "/register"),
    ("GET", "/events"),
    ("DELETE", "/events"),
    ("GET", "/messages"),
    ("POST", "/messages"),
    ("GET", "/messages/{message_id}"),
    ("POST", "/user_uploads"),
}


class _OneFile:
    """A FileStore with one small file that was never uploaded."""

    def data(self, file_id: int) -> bytes | None:
        return b"png"

    def uploaded(self, file_id: int, channel: str) -> str | None:
        return None

    def record_upload(self, file_id: int, channel: str, where: str) -> None:
        pass


def validate_all(fake: FakeZulip, *, only_user: str | None = None) -> set[tuple[str, str]]:
    """Validate every recorded exchange; return the endpoints seen."""
    spec = contract()
    seen = set()
    for record in list(fake.requests):
        if only_user is not None and record.user not in (None, only_user):
            continue
        seen.add((record.method, record.path))
        spec.validate_request(record.method, record.path, record.params)
        if record.response is not None:
            spec.validate_response(record.method, record.path, record.status or 200, record.response)
    return seen


def test_yaml_is_loaded_once_and_fast() -> None:
    started = time.monotonic()
    first = contract()
    assert contract() is first
    assert time.monotonic() - started < 5
    assert first.spec_path("/users/12") == "/users/{user_id}"
    assert first.spec_path("/users/me") == "/users/me"


def test_the_contract_catches_mistakes() -> None:
    spec = contract()
    with pytest.raises(ContractViolation, match="not documented"):
        spec.validate_request("GET", "/messages", {"num_before": "0", "num_after": "0", "bogus": "1"})
    with pytest.raises(ContractViolation, match="required parameter"):
        spec.validate_request("POST", "/messages", {"type": "direct", "to": "[1]"})
    with pytest.raises(ContractViolation):
        spec.validate_request("GET", "/messages", {"num_before": "x", "num_after": "0"})
    with pytest.raises(ContractViolation):
        spec.validate_response("GET", "/users/me", 200, {"result": "success", "msg": "", "surprise": 1})
    with pytest.raises(ContractViolation):
        spec.validate_response(
            "GET", "/events", 400, {"result": "error", "msg": "x", "code": "BAD_EVENT_QUEUE_ID", "extra": 1}
        )


def test_every_request_of_the_adapter_and_every_answer_of_the_fake(
    fake: FakeZulip, make_channel: Callable[..., ZulipChannel], run_channel: Callable[..., object]
) -> None:
    sink = RecordingSink()
    sink.set_cursor("zulip:last_message_id", "0")  # so the first start catches up
    fake.set_email_visibility(BOB, ADMINS)  # his messages show a stand-in address
    fake.add_group("support-engineers", [ENGINEER])
    fake.post_dm(ALICE, "before start")
    channel = make_channel(engineer_emails=[ENGINEER, BOB, "nobody@example.com"], engineer_groups=["support-engineers"])
    with run_channel(channel, sink):  # type: ignore[operator]
        fake.add_to_group("support-engineers", BOB)
        fake.remove_from_group("support-engineers", BOB)
        hello = fake.post_dm(ALICE, "hello")
        fake.post_stream_message(ENGINEER, STREAM, "#1 Alice: hello", "/reply 1 hi")
        fake.post_dm(ALICE, "group", to=[BOT, BOB])
        fake.post_stream_message(ENGINEER, "general", "chat", "elsewhere")
        sink.wait_count(3)
        fake.edit_message(ALICE, hello, "hello again")  # read back with GET /messages/{id}
        sink.wait_count(4)
        fake.expire_queues()  # BAD_EVENT_QUEUE_ID, re-register, catch-up
        fake.post_dm(BOB, "after expiry")
        sink.wait_count(5)
        channel.send(Outbound(1, "zulip", "direct", "hi", recipient=ALICE))
        channel.send(Outbound(2, "zulip", "topic", "**Alice** wrote:", topic="#1 Alice: hello", quote="@**all**"))
        channel.send(
            Outbound(2, "zulip", "topic", "**Alice** wrote:", topic="#1 Alice: hello", quote="@**all**", attempt=2)
        )
        channel.send(Outbound(3, "zulip", "direct", "hi", recipient=ALICE, attempt=2))
        channel.files = _OneFile()
        channel.send(
            Outbound(
                6, "zulip", "topic", "", topic="#1 Alice: hello", files=(OutboundFile(1, "a b.png", "image/png", 3),)
            )
        )
        # An engineer's file for a Zulip customer: uploaded, then linked in the DM.
        channel.send(
            Outbound(
                7, "zulip", "direct", "[#1] hi", recipient=ALICE, files=(OutboundFile(2, "b.png", "image/png", 3),)
            )
        )
        with pytest.raises(PermanentSendError):
            channel.send(Outbound(4, "zulip", "direct", "hi", recipient="ghost@example.com"))
        fake.fail_next(1, status=502, path="/messages", method="POST", body="json")
        channel.send(Outbound(5, "zulip", "direct", "x" * 12000, recipient=ALICE))
        fake.set_rate_limit(3, window=1.0)
        fake.post_dm(ALICE, "rate limited")
        sink.wait_count(6)
        for i in range(6):
            channel.send(Outbound(10 + i, "zulip", "direct", "paced", recipient=ALICE))
        fake.set_rate_limit(None)
        fake.make_stream_public(STREAM)
        deadline = time.monotonic() + 5
        while channel.state.privacy_problem() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    channel.close()
    with pytest.raises(PermanentChannelError):
        make_channel(api_key="wrong").start()
    with pytest.raises(PermanentChannelError):
        make_channel(stream="missing").start()
    seen = {(method, contract().spec_path(path)) for method, path in validate_all(fake, only_user=BOT)}
    assert BOT_ENDPOINTS <= seen, BOT_ENDPOINTS - seen
    statuses = {r.status for r in fake.requests}
    assert {200, 400, 401}.issubset(statuses)


def test_rate_limit_and_fault_answers(fake: FakeZulip) -> None:
    fake.set_rate_limit(1, window=5)
    session = requests.Session()
    session.auth = (BOT, BOT_KEY)
    session.get(fake.url + "/api/v1/users/me")
    limited = session.get(fake.url + "/api/v1/users/me")
    assert limited.status_code == 429
    contract().validate_response("GET", "/users/me", 429, limited.json())
    fake.set_rate_limit(None)
    fake.fail_next(1, status=500, body="json")
    failed = session.get(fake.url + "/api/v1/users/me")
    contract().validate_response("GET", "/users/me", 500, failed.json())


def test_endpoints_the_bot_does_not_use_yet(fake: FakeZulip) -> None:
    c = zulip.Client(site=fake.url, email=BOT, api_key=BOT_KEY, retry_on_errors=False)
    c.get_members()
    c.get_user_by_id(fake.user(ALICE).user_id)
    c.get_user_by_id(9999)
    c.get_streams()
    c.get_streams(include_all_active=True, include_web_public=True)
    c.get_subscriptions({"include_subscribers": True})
    c.get_stream_id("nope")
    q = c.register(
        event_types=["message"],
        narrow=[["is", "dm"]],
        fetch_event_types=["realm", "subscription", "message", "realm_user_groups"],
    )
    c.deregister(q["queue_id"])
    c.deregister(q["queue_id"])
    c.get_messages({"anchor": "first_unread", "num_before": 2, "num_after": 2, "narrow": [["dm", ALICE]]})
    c.send_message({"type": "stream", "to": "nope", "topic": "t", "content": "x"})
    seen = validate_all(fake)
    assert ("GET", "/users") in seen and ("GET", "/users/{user_id}") not in seen  # recorded by real path
    assert any(r.path.startswith("/users/") and r.path[7:].isdigit() for r in fake.requests)


def test_events_the_fake_emits(fake: FakeZulip) -> None:
    c = zulip.Client(site=fake.url, email=BOT, api_key=BOT_KEY, retry_on_errors=False)
    q = c.register(event_types=["message", "update_message", "stream", "user_group"])
    fake.set_email_visibility(ALICE, NOBODY)
    dm = fake.post_dm(ALICE, "dm")
    in_stream = fake.post_stream_message(ENGINEER, STREAM, "t", "in stream")
    alice = zulip.Client(site=fake.url, email=ALICE, api_key=fake.user(ALICE).api_key, retry_on_errors=False)
    # As the web app edits (the client's `update_message` would send the id in the body too).
    assert alice.call_endpoint(url=f"messages/{dm}", method="PATCH", request={"content": "dm, edited"})["result"] == (
        "success"
    )
    # Not hers, and in a stream she cannot see.
    assert alice.call_endpoint(url=f"messages/{in_stream}", method="PATCH", request={"content": "x"})["msg"] == (
        "Invalid message(s)"
    )
    fake.edit_message(ENGINEER, in_stream, "in stream, edited")
    fake.preview_link(dm)
    assert (
        c.call_endpoint(url=f"messages/{dm}", method="GET", request={"apply_markdown": False})["message"]["content"]
        == "dm, edited"
    )
    fake.make_stream_web_public(STREAM)
    fake.add_group("oncall", [ENGINEER])
    fake.add_group("support", [BOB], subgroups=["oncall"])
    fake.add_to_group("oncall", ALICE)
    fake.remove_from_group("oncall", ALICE)
    fake.realm.change_group("support", "remove_subgroups", [fake.group("oncall").id])
    fake.realm.change_group("support", "add_subgroups", [fake.group("oncall").id])
    fake.rename_group("oncall", "on-call")
    fake.remove_group("on-call")
    events = c.get_events(queue_id=q["queue_id"], last_event_id=-1)["events"]
    assert {e["type"] for e in events} == {"message", "update_message", "stream", "user_group"}
    edits = [e for e in events if e["type"] == "update_message"]
    assert [(e["message_id"], e["rendering_only"], e.get("stream_id")) for e in edits] == [
        (dm, False, None),
        (in_stream, False, fake.stream(STREAM).stream_id),
        (dm, True, None),
    ]
    assert [e["op"] for e in events if e["type"] == "user_group"] == [
        "add",
        "add",
        "add_members",
        "remove_members",
        "remove_subgroups",
        "add_subgroups",
        "update",
        "remove",
    ]
    for event in events:
        contract().validate_event(event)
    validate_all(fake)  # the edits' PATCH and the GET of one message too


def test_hidden_addresses_and_user_groups_as_the_openapi_describes_them(fake: FakeZulip) -> None:
    """Stand-in `email`/`sender_email`, `delivery_email` for those the setting lets see it; groups for
    members only (bots learn them from register)."""
    fake.add_user("admin@example.com", "Ada Admin", role=200)
    fake.set_email_visibility(ALICE, ADMINS)
    fake.add_group("support-engineers", [ENGINEER])
    alice = fake.user(ALICE).user_id
    stand_in = f"user{alice}@zulip.example.net"
    bot = zulip.Client(site=fake.url, email=BOT, api_key=BOT_KEY, retry_on_errors=False)
    admin = zulip.Client(
        site=fake.url, email="admin@example.com", api_key=fake.user("admin@example.com").api_key, retry_on_errors=False
    )
    member = zulip.Client(site=fake.url, email=ENGINEER, api_key=fake.user(ENGINEER).api_key, retry_on_errors=False)

    assert bot.get_user_by_id(alice)["user"]["email"] == stand_in
    assert bot.get_user_by_id(alice)["user"]["delivery_email"] is None
    assert admin.get_user_by_id(alice)["user"]["delivery_email"] == ALICE
    assert bot.call_endpoint(url=f"users/{stand_in}", method="GET")["user"]["user_id"] == alice
    assert bot.call_endpoint(url=f"users/{ALICE}", method="GET")["result"] == "error"  # hidden from the bot
    assert admin.call_endpoint(url=f"users/{ALICE}", method="GET")["user"]["user_id"] == alice
    assert bot.call_endpoint(url=f"users/{ENGINEER}", method="GET")["user"]["email"] == ENGINEER
    fake.post_dm(ALICE, "hello")
    [dm] = bot.get_messages({"anchor": "newest", "num_before": 1, "num_after": 0, "narrow": [["is", "dm"]]})["messages"]
    assert dm["sender_email"] == stand_in and dm["sender_id"] == alice
    assert {r["email"] for r in dm["display_recipient"]} == {stand_in, BOT}
    assert bot.send_message({"type": "direct", "to": [ALICE], "content": "x"})["result"] == "error"
    assert bot.send_message({"type": "direct", "to": [stand_in], "content": "x"})["result"] == "success"
    assert bot.send_message({"type": "direct", "to": [alice], "content": "x"})["result"] == "success"

    assert bot.get_user_groups()["msg"] == "This endpoint does not accept bot requests."
    [group] = member.get_user_groups()["user_groups"]
    assert group["name"] == "support-engineers" and group["members"] == [fake.user(ENGINEER).user_id]
    registered = bot.register(event_types=["user_group"], fetch_event_types=["realm_user_groups"])
    assert [g["name"] for g in registered["realm_user_groups"]] == ["support-engineers"]
    bot.deregister(registered["queue_id"])
    bot.get_members()
    admin.get_members()
    validate_all(fake)


def test_payload_templates_keep_the_reference_examples_keys() -> None:
    """The fake's builders follow the reference examples (with NOTES §7's patches)."""

    def example(name: str) -> dict:
        return json.loads((REFERENCE_DIR / "examples" / name).read_text())

    user = FakeUser(10, "hamlet@zulip.com", "King Hamlet", "k")
    group = FakeGroup(3, "hamletcharacters", "Characters of Hamlet", {3, 4})
    listed = json.loads((REFERENCE_DIR / "examples" / "is_user_group_member.json").read_text())
    assert "is_user_group_member" in listed
    assert set(payloads.group(group)) == {
        "description",
        "id",
        "name",
        "members",
        "direct_subgroup_ids",
        "is_system_group",
        "can_mention_group",
    }
    contract().validate_response(
        "GET", "/user_groups", 200, {"result": "success", "msg": "", "user_groups": [payloads.group(group)]}
    )
    settings = payloads.server_settings(zulip_version="9", feature_level=247, realm_uri="http://x", realm_name="x")
    assert set(example("server_settings.json")) | {"zulip_feature_level"} == set(settings)
    assert set(example("user_by_id_member.json")["user"]) == set(payloads.user(user))
    assert set(example("users_me.json")) == set(payloads.own_user(user, 30))
    stream = FakeStream(2, "management", description="A private stream")
    assert set(example("streams_with_invite_only.json")["streams"][0]) == set(payloads.stream(stream, 18))
    sub = payloads.subscription(stream, 18, True)
    assert set(example("subscriptions.json")["subscriptions"][0]) <= set(sub)
    dm = example("get_messages_response_dm_and_stream.json")["messages"][0]
    m = StoredMessage(16, 10, "private", "x", 1, 27, participants=frozenset({10}))
    built = payloads.message(m, sender=user, participants=[user], stream_name=None, apply_markdown=True)
    assert set(dm) - {"flags"} == set(built)
    assert set(example("invalid_api_key_401.json")) == set(payloads.error("INVALID_API_KEY", "Invalid API key"))
