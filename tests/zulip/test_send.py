"""Sending through the fake: inert quotes, splitting, retries, rate limits, no double sends."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest
import requests
from sqlalchemy import select

from adapters.backoff import Backoff
from adapters.channel import Outbound, PermanentSendError, TransientSendError
from adapters.zulip import ZulipChannel, ZulipTuning
from adapters.zulip.compose import compose
from adapters.zulip.outbound import written_text
from bot.dispatcher import Dispatcher
from bot.policy.send_failures import LONE_GIVE_UP
from bot.services.delivery_notices import ALERTS_TOPIC
from storage import outbox
from storage.db import transaction
from storage.models import Outbox
from tests.fakes.zulip import FakeZulip, StoredMessage
from tests.zulip.conftest import ALICE, BOT, BOT_KEY, STREAM, populate
from tests.zulip.relay_check import assert_commonmark_inert, longest_run, parse_relayed

MakeChannel = Callable[..., ZulipChannel]
HEADER = "**Alice Customer** wrote via zulip (alice@example.com):"
TOPIC = "#12 Alice Customer: printer"

INJECTION_CORPUS = [
    "@**all** please look at this",
    "@**everyone** @**stream** @**channel** @**topic**",
    "@*support-team* ping the group",
    "@_**Erin Engineer** silent mention",
    "@_*support-team* silent group",
    "@**Erin Engineer|10** by id",
    "```\n@**all** inside a short fence\n```\n@**all** after it",
    "````\nfour\n````",
    "````````````````` seventeen backticks",
    "```",
    "``` text\nan info string",
    "~~~\n@**all** in tildes\n~~~",
    "/poll Which one?\nred\nblue",
    "/me deletes the database",
    "/todo take over",
    "> quoted @**all**",
    "[click](javascript:alert(1)) <script>alert(1)</script>",
    "$$\\href{http://x}{y}$$ and :emoji: and #**support>topic**",
    "line one\r\nline two\rline three",
    "    indented code\n\n\n\ntrailing blank lines\n\n",
    "ends with backticks ``",
]


def row(outbox_id: int, kind: str = "topic", **fields: object) -> Outbound:
    base: dict[str, object] = dict(outbox_id=outbox_id, channel="zulip", kind=kind, text=HEADER)
    if kind == "topic":
        base["topic"] = TOPIC
    else:
        base["recipient"] = ALICE
        base["text"] = "Hello Alice, we are on it."
    base.update(fields)
    return Outbound(**base)  # type: ignore[arg-type]


def deliver_like_the_dispatcher(channel: ZulipChannel, message: Outbound, *, pause: float = 0.1) -> list[str]:
    """Retry a row on TransientSendError with a growing attempt number, as bot.dispatcher does."""
    attempt = message.attempt
    for _ in range(50):
        try:
            return channel.send(dataclasses.replace(message, attempt=attempt))
        except TransientSendError as exc:
            attempt += 1
            time.sleep(exc.retry_after if exc.retry_after is not None else pause)
    raise AssertionError("never delivered")


def copies(fake: FakeZulip, message: Outbound, max_length: int = 10_000) -> list[StoredMessage]:
    """The bot's messages that carry one of the row's bodies (nothing else marks them: issue 13)."""
    bodies = set(compose(written_text(message), message.quote, max_length))
    return [m for m in fake.sent_by(BOT) if m.content in bodies]


def test_direct_message(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    ids = channel.send(row(1, "direct"))
    [stored] = fake.sent_by(BOT, to=ALICE)
    assert ids == [str(stored.id)]
    assert stored.content == "Hello Alice, we are on it."  # nothing added (issue 13, item 5)
    post = fake.requests_to("POST", "/messages")[-1]
    assert post.params["type"] == "direct" and post.params["to"] == f'["{ALICE}"]'


def test_direct_message_to_a_user_id(fake: FakeZulip, make_channel: MakeChannel) -> None:
    """Identities are keyed by Zulip user id: the row's recipient is one, sent as an integer."""
    channel = make_channel()
    channel.start()
    alice = fake.user(ALICE).user_id
    ids = channel.send(row(2, "direct", recipient=str(alice)))
    [stored] = fake.sent_by(BOT, to=ALICE)
    assert ids == [str(stored.id)] and stored.content == "Hello Alice, we are on it."
    assert fake.requests_to("POST", "/messages")[-1].params["to"] == f"[{alice}]"


def test_old_server_gets_private_type() -> None:
    with FakeZulip(heartbeat=0.3, feature_level=150) as fake:
        populate(fake)
        channel = ZulipChannel(site=fake.url, email=BOT, api_key=BOT_KEY, stream=STREAM)
        channel.start()
        channel.send(row(1, "direct"))
        assert fake.requests_to("POST", "/messages")[-1].params["type"] == "private"
        channel.close()


@pytest.mark.parametrize("quote", INJECTION_CORPUS)
def test_injection_corpus_stays_inert(fake: FakeZulip, make_channel: MakeChannel, quote: str) -> None:
    channel = make_channel()
    channel.start()
    channel.send(row(7, quote=quote))
    [stored] = fake.sent_by(BOT, stream=STREAM, topic=TOPIC)
    relayed = parse_relayed(stored.content)
    # Every line outside the fence is the bot's: the header and the fence lines, nothing else.
    assert relayed.outside == [HEADER, relayed.fence + "text", relayed.fence]
    # The fence is longer than any run of its own character (backticks, or tildes where backticks abound).
    assert len(relayed.fence) > longest_run(quote, relayed.fence[0])
    assert_commonmark_inert(relayed)
    assert "\n".join(relayed.inside) == quote.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    # The customer's text does not start the message (no /poll, /me widget).
    assert not stored.content.startswith(("/", "@", ">", "`"))
    assert stored.content.split("\n")[0] == HEADER
    post = fake.requests_to("POST", "/messages")[-1]
    assert post.params["type"] == "stream" and post.params["to"] == str(fake.stream(STREAM).stream_id)
    assert post.params["topic"] == TOPIC


def test_long_texts_are_split_never_truncated(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    quote = "\n".join(f"customer line {i} " + "q" * 80 for i in range(260))  # ~25,000 characters
    ids = channel.send(row(8, quote=quote))
    parts = fake.sent_by(BOT, stream=STREAM)
    assert [str(m.id) for m in parts] == ids and len(ids) == 3
    assert fake.truncations == []
    assert all(len(m.content) <= 10000 for m in parts)
    inside = [line for m in parts for line in parse_relayed(m.content).inside]
    assert inside == quote.split("\n")
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 60 for i in range(100))  # ~31,000 characters
    ids = channel.send(row(9, "direct", text=text))
    assert len(ids) == 4 and fake.truncations == []
    body = "\n".join(line for m in fake.sent_by(BOT, to=ALICE) for line in m.content.split("\n") if line != "…")
    # Every word, in order (the server strips the whitespace that ends a part).
    assert body.split() == text.split()


def test_split_follows_the_servers_max_message_length(make_channel: MakeChannel) -> None:
    with FakeZulip(heartbeat=0.3, max_message_length=1000) as fake:
        populate(fake)
        channel = ZulipChannel(
            site=fake.url, email=BOT, api_key=BOT_KEY, stream=STREAM, tuning=ZulipTuning(poll_timeout=2.0)
        )
        from tests.zulip.conftest import RecordingSink, Running

        running = Running(channel, RecordingSink())
        running.thread.start()
        running.wait_connected()
        try:
            assert channel.state.max_message_length == 1000  # learnt from register
            ids = channel.send(row(3, quote="x" * 4500))
            assert len(ids) == 5 and fake.truncations == []
        finally:
            running.halt()
            channel.close()


def test_topic_is_clipped_not_truncated_by_the_server(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    channel.send(row(4, topic="#4 " + "Very Long Customer Name " * 5))
    [stored] = fake.sent_by(BOT, stream=STREAM)
    assert len(stored.subject) <= 60 and stored.subject.endswith("…")
    assert fake.truncations == []


def test_5xx_window_then_recovery_delivers_each_message_exactly_once(
    fake: FakeZulip, make_channel: MakeChannel
) -> None:
    channel = make_channel()
    channel.start()
    fake.fail_for(0.8, status=502, path="/messages", method="POST")
    rows = [row(20 + i, quote=f"message {i}") for i in range(3)] + [row(30, "direct")]
    for r in rows:
        deliver_like_the_dispatcher(channel, r)
    for r in rows:
        assert len(copies(fake, r)) == 1, r.outbox_id
    failed = [x for x in fake.requests_to("POST", "/messages") if x.status == 502]
    assert failed, "the fault window was never hit"


def test_lost_acknowledgement_is_not_sent_twice(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    fake.drop_next(1, path="/messages", method="POST", after_processing=True)
    ids = channel.send(row(40, quote="only once please"))
    [stored] = copies(fake, row(40, quote="only once please"))
    assert ids == [str(stored.id)]
    assert len(fake.requests_to("POST", "/messages")) == 1  # found by the lookup, not re-posted


def test_attempt_after_a_send_that_reached_the_server_does_not_send_again(
    fake: FakeZulip, make_channel: MakeChannel
) -> None:
    first = make_channel()
    first.start()
    ids = first.send(row(50, quote="hello"))
    first.close()
    # The process died before marking the row sent; a new process retries it.
    second = make_channel()
    second.start()
    again = second.send(row(50, quote="hello", attempt=2))
    assert again == ids
    assert len(copies(fake, row(50, quote="hello"))) == 1
    lookup = fake.requests_to("GET", "/messages")[-1]
    assert '"sender"' in lookup.params["narrow"] and lookup.params["anchor"] == "newest"


def test_a_crash_between_parts_resends_only_the_missing_parts(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    posts = {"n": 0}

    def break_after_first_part(method: str, path: str, params: dict[str, str]) -> None:
        if method == "POST" and path == "/messages":
            posts["n"] += 1
            if posts["n"] == 2:
                fake.fail_next(100, status=503, path="/messages", method="POST")

    fake.before_request = break_after_first_part
    quote = "\n".join("z" * 99 for _ in range(250))  # three parts
    with pytest.raises(TransientSendError):
        channel.send(row(60, quote=quote))
    fake.before_request = None
    fake.clear_faults()
    bodies = compose(HEADER, quote)
    assert len(bodies) == 3 and [m.content for m in copies(fake, row(60, quote=quote))] == bodies[:1]
    ids = channel.send(row(60, quote=quote, attempt=2))
    stored = copies(fake, row(60, quote=quote))
    assert [m.content for m in stored] == bodies
    assert ids == [str(m.id) for m in stored]


def test_lookup_failure_never_sends_blind(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    fake.fail_for(3, status=500, path="/messages", method="GET")
    with pytest.raises(TransientSendError, match="earlier send"):
        channel.send(row(70, attempt=2))
    assert fake.requests_to("POST", "/messages") == []


def test_persistent_5xx_becomes_transient_after_bounded_tries(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    fake.fail_for(10, status=503, path="/messages", method="POST")
    started = time.monotonic()
    with pytest.raises(TransientSendError, match="after retries"):
        channel.send(row(80, "direct"))
    assert time.monotonic() - started < 6  # four tries with sub-second back-off
    assert len([r for r in fake.requests_to("POST", "/messages")]) == 4  # FAST.send_retry.attempts
    assert fake.sent_by(BOT) == []


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"kind": "direct", "recipient": "nobody@example.com", "text": "hi"}, "BAD_REQUEST: Invalid email"),
    ],
)
def test_4xx_is_permanent_with_the_servers_code(
    fake: FakeZulip, make_channel: MakeChannel, fields: dict[str, object], code: str
) -> None:
    channel = make_channel()
    channel.start()
    with pytest.raises(PermanentSendError) as info:
        channel.send(row(90, **fields))
    assert code in str(info.value)
    assert len(fake.requests_to("POST", "/messages")) == 1  # not retried


def test_removed_from_stream_is_permanent(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    fake.unsubscribe(STREAM, BOT)
    with pytest.raises(PermanentSendError, match="Not authorized to send to stream"):
        channel.send(row(91))


def test_bad_rows_are_permanent(make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    with pytest.raises(PermanentSendError, match="recipient"):
        channel.send(row(92, "direct", recipient=None))
    with pytest.raises(PermanentSendError, match="topic"):
        channel.send(row(93, topic=None))


def test_429_waits_for_retry_after(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    fake.set_rate_limit(2, window=1.0)
    other = requests.Session()  # another client of the same bot uses up the budget
    other.auth = (BOT, BOT_KEY)
    while other.get(fake.url + "/api/v1/users/me").status_code != 429:
        pass
    started = time.monotonic()
    channel.send(row(100, "direct"))
    assert 0.2 < time.monotonic() - started < 6
    assert len(copies(fake, row(100, "direct"))) == 1
    assert any(r.path == "/messages" for r in fake.rate_limited)


def test_long_retry_after_is_handed_back(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    fake.set_rate_limit(1, window=30.0)
    other = requests.Session()
    other.auth = (BOT, BOT_KEY)
    other.get(fake.url + "/api/v1/users/me")
    started = time.monotonic()
    with pytest.raises(TransientSendError) as info:
        channel.send(row(101, "direct"))
    assert time.monotonic() - started < 3  # not the 30 s the server asked for
    assert info.value.retry_after is not None and 20 < info.value.retry_after <= 30


def test_pacing_stays_under_the_limit(fake: FakeZulip, make_channel: MakeChannel) -> None:
    fake.set_rate_limit(8, window=1.0)
    channel = make_channel()
    channel.start()
    started = time.monotonic()
    for i in range(30):
        channel.send(row(200 + i, "direct", text=f"update {i}"))
    elapsed = time.monotonic() - started
    assert fake.rate_limited == []  # slowed down instead of collecting 429s
    assert len(fake.sent_by(BOT)) == 30
    assert elapsed >= 2.0  # 30 sends (+4 start-up calls) at 8 per second need several windows


def test_unknown_kind_is_a_loud_error(make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    with pytest.raises(PermanentSendError, match="cannot send 'email'"):
        channel.send(row(300, kind="email"))  # type: ignore[arg-type]


def test_fake_records_are_complete(fake: FakeZulip, make_channel: MakeChannel) -> None:
    channel = make_channel()
    channel.start()
    channel.send(row(400, "direct"))
    assert [r.path for r in fake.requests] == [
        "/server_settings",
        "/users/me",
        "/get_stream_id",
        "/users/me/subscriptions",
        "/messages",
    ]
    assert all(r.user in (None, BOT) for r in fake.requests)


def test_send_before_a_successful_start_starts_first(fake: FakeZulip, make_channel: MakeChannel) -> None:
    """The runtime dispatches even when start() failed transiently (Zulip down at boot)."""
    from adapters.channel import TransientChannelError

    channel = make_channel()
    fake.stop()
    with pytest.raises(TransientChannelError):
        channel.start()
    with pytest.raises(TransientSendError):
        channel.send(row(500))
    fake.start()
    ids = channel.send(row(501, quote="after the outage"))
    assert [str(m.id) for m in copies(fake, row(501, quote="after the outage"))] == ids


def test_rate_limit_waits_are_reported(fake: FakeZulip, make_channel: MakeChannel) -> None:
    """Pacing and 429 waits reach Channel.report_rate_limit_wait (the runtime's /metrics)."""
    channel = make_channel()
    waits: list[float] = []
    channel.on_rate_limit_wait = waits.append
    channel.start()
    fake.set_rate_limit(3, window=1.0)
    for i in range(5):
        channel.send(row(600 + i, "direct", text=f"paced {i}"))
    assert waits and all(w > 0 for w in waits)
    assert fake.rate_limited == []


def test_a_lost_acknowledgement_is_looked_up_at_once_not_after_a_back_off(
    fake: FakeZulip, make_channel: MakeChannel
) -> None:
    # Issue 15, item 9: the look costs a round trip; the production back-off (0.5-1 s) before
    # it held up every reply queued behind the lost answer. A back-off of 5 s here, so that a
    # busy machine's stall cannot be mistaken for one, nor one for a stall.
    channel = make_channel(
        send_retry=dataclasses.replace(ZulipTuning().send_retry, initial=5.0, maximum=5.0, jitter=0.0)
    )
    channel.start()
    fake.drop_next(1, path="/messages", method="POST", after_processing=True)
    started = time.monotonic()
    ids = channel.send(row(41, quote="once, and quickly"))
    assert time.monotonic() - started < 2.0
    [stored] = copies(fake, row(41, quote="once, and quickly"))
    assert ids == [str(stored.id)]
    assert len(fake.requests_to("POST", "/messages")) == 1


# -- finding an earlier send without a reference (issue 13, item 5) -------------------------------------


def test_the_same_words_twice_each_row_finds_its_own_message_or_posts(
    fake: FakeZulip, make_channel: MakeChannel
) -> None:
    """Two answers with the same words to the same person (two `status` answers): a retried row never
    takes the message the store records for the other row."""
    recorded: dict[str, int] = {}  # platform id → outbox row, as the store keeps them
    first = make_channel()
    first.recorded_elsewhere = lambda message, ids: {
        i for i in ids if recorded.get(i, message.outbox_id) != message.outbox_id
    }
    first.start()
    [sent] = first.send(row(1, "direct", text="You have 1 open incident."))
    recorded[sent] = 1
    # Row 2 says the same; its first attempt died before the post: the retry must post.
    again = first.send(row(2, "direct", text="You have 1 open incident.", attempt=2))
    assert again != [sent]
    recorded[again[0]] = 2
    assert len(fake.sent_by(BOT, to=ALICE)) == 2
    # And once more, for row 2, as if its record had been lost in a crash: it finds its own message.
    assert first.send(row(2, "direct", text="You have 1 open incident.", attempt=3)) == again
    assert len(fake.sent_by(BOT, to=ALICE)) == 2


def test_two_rows_with_the_same_words_both_posted_before_a_crash_are_told_apart(
    fake: FakeZulip, make_channel: MakeChannel
) -> None:
    """Both posted, neither recorded (the batch's record died with the process): after the restart each
    row takes one message, the older row the older message, and nothing is posted again."""
    dead = make_channel()
    dead.start()
    a = dead.send(row(10, "direct", text="Added to incident #1."))
    b = dead.send(row(11, "direct", text="Added to incident #1."))
    dead.close()
    restarted = make_channel()
    restarted.recorded_elsewhere = lambda message, ids: set()  # the store recorded neither
    restarted.start()
    posts = len(fake.requests_to("POST", "/messages"))
    assert restarted.send(row(10, "direct", text="Added to incident #1.", attempt=2)) == a
    assert restarted.send(row(11, "direct", text="Added to incident #1.", attempt=2)) == b
    assert len(fake.requests_to("POST", "/messages")) == posts


def test_a_lost_answer_is_found_past_an_identical_message_of_another_row(
    fake: FakeZulip, make_channel: MakeChannel
) -> None:
    channel = make_channel()
    channel.start()
    [older] = channel.send(row(20, "direct", text="Thanks, noted."))
    channel.recorded_elsewhere = lambda message, ids: ids & {older}
    fake.drop_next(1, path="/messages", method="POST", after_processing=True)
    [mine] = channel.send(row(21, "direct", text="Thanks, noted."))
    assert mine != older
    assert [str(m.id) for m in fake.sent_by(BOT, to=ALICE)] == [older, mine]
    assert len(fake.requests_to("POST", "/messages")) == 2  # the lost answer was looked up, not re-posted


def test_a_message_from_before_the_row_was_written_is_not_the_rows(fake: FakeZulip, make_channel: MakeChannel) -> None:
    from datetime import UTC, datetime, timedelta

    channel = make_channel()
    channel.start()
    [old] = channel.send(row(30, "direct", text="Your case is resolved."))
    later = datetime.now(UTC) + timedelta(hours=1)  # written long after that message
    [new] = channel.send(row(31, "direct", text="Your case is resolved.", attempt=2, written_at=later))
    assert new != old and len(fake.sent_by(BOT, to=ALICE)) == 2


def test_a_message_zulip_keeps_refusing_holds_up_only_its_topic_and_is_given_up_after_an_hour(
    fake: FakeZulip,
    make_channel: MakeChannel,
    engine,
    clock,  # noqa: ANN001
) -> None:
    """One line Zulip answers with a 502 every time (while it posts everything else) does not stop
    the channel: the other topics' lines go at once, its own topic's next line waits behind it,
    and after an hour it fails for good, the engineers are told, and its topic goes on."""
    channel = make_channel(send_retry=Backoff(initial=0.01, maximum=0.01, jitter=0.0, attempts=1))
    channel.start()
    fake.fail_for(600, status=502, path="/messages", method="POST", containing="POISON")
    acme, beta = "#1 Acme: VPN", "#2 Beta: mail"

    def write(*lines: tuple[str, str]) -> None:
        with transaction(engine) as s:
            for topic, text in lines:
                outbox.enqueue(s, channel="zulip", kind="topic", topic=topic, text=text, now=clock())

    def posted() -> list[tuple[str, str]]:
        return [(m.subject, m.content) for m in fake.sent_by(BOT, stream=STREAM)]

    write((acme, "POISON line"), (beta, "beta 1"), (acme, "acme 2"), (beta, "beta 2"))
    dispatcher = Dispatcher(engine, {"zulip": channel}, clock, case_channel="zulip")
    dispatcher.drain("zulip")  # its first 502 looks like an outage: the batch stops there
    assert posted() == []
    clock.advance(seconds=10)
    dispatcher.drain("zulip")  # a 502 again, and Zulip takes Beta's line: only Acme's topic waits
    assert posted() == [(beta, "beta 1"), (beta, "beta 2")]

    def poison_state() -> str:
        with transaction(engine) as s:
            return s.scalars(select(Outbox.state).where(Outbox.text == "POISON line")).one()

    minutes = 0
    while poison_state() == "pending":
        assert (acme, "acme 2") not in posted()
        minutes += 1
        assert minutes <= LONE_GIVE_UP.total_seconds() / 60 + 5, "never given up"
        write((beta, f"beta {minutes + 2}"))
        clock.advance(minutes=1)
        dispatcher.drain("zulip")
        assert posted()[-1] == (beta, f"beta {minutes + 2}")  # Beta is never held up
    assert poison_state() == "failed" and minutes >= LONE_GIVE_UP.total_seconds() / 60 - 1
    clock.advance(seconds=10)
    dispatcher.drain("zulip")
    # Acme's topic goes on, and the engineers hear why its line never came.
    assert posted()[-2] == (acme, "acme 2")
    subject, alert = posted()[-1]
    assert subject == ALERTS_TOPIC
    assert alert.startswith("⚠ A message for a case topic could not be posted in its topic, for good: ")
    assert "given up" in alert
    assert not any("POISON" in c for _s, c in posted())
