"""MastodonChannel.send through the fake server: threads, recipients, retries, limits."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from adapters.channel import Outbound, PermanentSendError, TransientSendError
from adapters.mastodon import MastodonChannel
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.mastodon.text import countable_length, find_mentions

from .conftest import BOT_TOKEN, FAST, fast

ENGINEER_REPLY = " ".join(
    f"Step {i}: open the admin console, go to Settings > Network, and check that the proxy "
    f"at https://proxy{i}.example.com/config is reachable; then restart the agent."
    for i in range(1, 10)
)


def outbound(text: str, conversation: str | None, *, outbox_id: int = 1, attempt: int = 1, **extra) -> Outbound:
    return Outbound(
        outbox_id=outbox_id,
        channel="mastodon",
        kind="direct",
        text=text,
        recipient=extra.pop("recipient", "alice@remote.example"),
        conversation=conversation,
        attempt=attempt,
        **extra,
    )


@pytest.fixture
def channel(make_channel: Callable[..., MastodonChannel]) -> MastodonChannel:
    made = make_channel()
    made.start()
    return made


@pytest.fixture
def customer_status(fake: FakeMastodon) -> str:
    return fake.post_status("alice@remote.example", "@deskbot my VPN does not connect")["id"]


def test_a_1400_character_reply_arrives_as_a_correct_thread(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    text = (ENGINEER_REPLY + " Thanks, @carol will follow up.")[:1400]
    assert len(text) == 1400
    ids = channel.send(outbound(text, customer_status))
    posted = fake.posted_by("deskbot")
    assert [p.id for p in posted] == ids and len(ids) >= 3
    parent = customer_status
    for posted_status in posted:
        status = posted_status.status
        assert status["visibility"] == "direct"
        assert status["in_reply_to_id"] == parent
        assert countable_length(posted_status.source_text) <= 500
        assert posted_status.source_text.startswith("@alice@remote.example ")
        assert [m["acct"] for m in status["mentions"]] == ["alice@remote.example"]
        assert posted_status.recipients == ("alice@remote.example",)
        parent = status["id"]
    rebuilt = " ".join(p.source_text.split(" ", 1)[1].rsplit(" (", 1)[0] for p in posted)
    assert rebuilt.replace("\u200d", "").split() == text.split()


def test_no_status_ever_reaches_a_third_account(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    channel.send(
        outbound("Please ask @carol and @mallory@elsewhere.example, or mail help@bot.example", customer_status)
    )
    channel.send(
        outbound("Quoted: @carol said hi", customer_status, outbox_id=2, quote="@mallory@elsewhere.example hi")
    )
    assert fake.inbox("carol") == [] and fake.inbox("mallory@elsewhere.example") == []
    assert len(fake.inbox("alice@remote.example")) == 2
    for posted in fake.posted_by("deskbot"):
        assert find_mentions(posted.source_text) == ["alice@remote.example"]


def test_local_customer_is_mentioned_in_full_and_reached(fake: FakeMastodon, channel: MastodonChannel) -> None:
    status = fake.post_status("carol", "@deskbot hi")
    channel.send(outbound("Hello Carol", status["id"], recipient="carol@bot.example"))
    (posted,) = fake.posted_by("deskbot")
    assert posted.source_text == "@carol@bot.example Hello Carol" and posted.recipients == ("carol",)
    assert len(fake.inbox("carol")) == 1


def test_5xx_then_recovery_delivers_each_reply_exactly_once(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    fake.fail_next(2, 503, method="POST", path="/api/v1/statuses")
    ids = channel.send(outbound("First answer", customer_status, outbox_id=10))
    assert len(ids) == 1
    # Longer than the channel retries: the dispatcher gets a TransientSendError and retries later.
    fake.fail_next(10, 502, method="POST", path="/api/v1/statuses")
    with pytest.raises(TransientSendError):
        channel.send(outbound("Second answer", customer_status, outbox_id=11))
    fake.faults.clear()
    channel.send(outbound("Second answer", customer_status, outbox_id=11, attempt=2))
    texts = [p.source_text for p in fake.posted_by("deskbot")]
    assert texts == ["@alice@remote.example First answer", "@alice@remote.example Second answer"]


def test_answers_lost_on_the_way_back_do_not_duplicate(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    fake.drop_next(2, method="POST", path="/api/v1/statuses", after_handling=True)
    ids = channel.send(outbound("Posted, but the answer was lost twice", customer_status, outbox_id=12))
    assert len(fake.posted_by("deskbot")) == 1 and ids == [fake.posted_by("deskbot")[0].id]


def test_repeated_send_after_a_crash_does_not_post_twice(
    fake: FakeMastodon, make_channel: Callable[..., MastodonChannel], customer_status: str
) -> None:
    text = ENGINEER_REPLY[:1100]
    first = make_channel()
    first.start()
    ids = first.send(outbound(text, customer_status, outbox_id=7))
    first.close()  # the process dies before the outbox row is marked sent
    second = make_channel()
    second.start()
    again = second.send(outbound(text, customer_status, outbox_id=7, attempt=2))
    assert again == ids
    assert len(fake.posted_by("deskbot")) == len(ids)


def test_crash_in_the_middle_of_a_thread_completes_it_once(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    text = ENGINEER_REPLY[:1100]
    fake.fail_next(50, 503, method="POST", path="/api/v1/statuses", skip=1)  # part 1 goes through
    with pytest.raises(TransientSendError):
        channel.send(outbound(text, customer_status, outbox_id=8))
    assert len(fake.posted_by("deskbot")) == 1
    fake.faults.clear()
    ids = channel.send(outbound(text, customer_status, outbox_id=8, attempt=2))
    posted = fake.posted_by("deskbot")
    assert [p.id for p in posted] == ids and len(ids) >= 3


def test_with_the_rate_limit_lowered_every_send_succeeds_without_a_429(customer_status: str) -> None:
    # The posting budget is what sends meet first (on Mastodon 300 per 3 h against 300 requests per 5 min).
    with FakeMastodon(api_limit=100, api_period=2.0, status_limit=10, status_period=1.5) as small:
        small.add_account("alice@remote.example")
        small.set_policy("deskbot", for_private_mentions="accept")
        status = small.post_status("alice@remote.example", "@deskbot hi")["id"]
        channel = MastodonChannel(small.url, BOT_TOKEN, tuning=FAST)
        channel.start()
        errors: list[BaseException] = []

        def sender(offset: int) -> None:
            for i in range(10):
                try:
                    channel.send(outbound(f"answer {offset + i}", status, outbox_id=100 + offset + i))
                except BaseException as error:  # noqa: BLE001
                    errors.append(error)

        threads = [threading.Thread(target=sender, args=(n * 10,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        channel.close()
        assert errors == []
        assert len(small.posted_by("deskbot")) == 30
        assert small.stats.ratelimited == 0


def test_posting_budget_exhausted_is_transient_with_retry_after(customer_status: str) -> None:
    with FakeMastodon(status_limit=3, status_period=3600) as small:
        small.add_account("alice@remote.example")
        channel = MastodonChannel(small.url, BOT_TOKEN, tuning=fast(max_rate_wait=1.0))
        channel.start()
        for i in range(2):  # the pacer keeps one status of the budget in reserve
            channel.send(outbound(f"answer {i}", None, outbox_id=i + 1))
        with pytest.raises(TransientSendError) as error:
            channel.send(outbound("one too many", None, outbox_id=99))
        assert error.value.retry_after and error.value.retry_after > 1
        assert small.stats.ratelimited == 0
        channel.close()


def test_topic_messages_are_refused_loudly(channel: MastodonChannel) -> None:
    message = Outbound(outbox_id=3, channel="mastodon", kind="topic", text="x", topic="#1 a: b")
    with pytest.raises(PermanentSendError, match="topic"):
        channel.send(message)


def test_refusals_are_permanent_with_the_servers_message(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    fake.fail_next(1, 403, method="POST", path="/api/v1/statuses")
    with pytest.raises(PermanentSendError, match="403"):
        channel.send(outbound("forbidden", customer_status))


def test_reply_to_a_deleted_status_still_reaches_the_customer(fake: FakeMastodon, channel: MastodonChannel) -> None:
    ids = channel.send(outbound("Your answer", "999999999999999999"))
    (posted,) = fake.posted_by("deskbot")
    assert posted.id == ids[0] and posted.status["in_reply_to_id"] is None
    assert posted.recipients == ("alice@remote.example",)


def test_quote_is_appended(fake: FakeMastodon, channel: MastodonChannel, customer_status: str) -> None:
    channel.send(outbound("You wrote:", customer_status, quote="my VPN does not connect"))
    assert fake.posted_by("deskbot")[0].source_text == "@alice@remote.example You wrote:\n\nmy VPN does not connect"


# -- retries after the Idempotency-Key stopped protecting (expired, or #40399) ---------------------

TWO_PARTS = ENGINEER_REPLY[:700]


def _thread_of(fake: FakeMastodon, first_parent: str | None) -> list[str]:
    """The bot's statuses as one chain from `first_parent`; fails on a stray or a missing link."""
    posted = fake.posted_by("deskbot")
    parent = first_parent
    for status in posted:
        assert status.status["in_reply_to_id"] == parent
        parent = status.id
    return [p.source_text for p in posted]


def _retry_ends_with_one_status_per_part(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str, *, outbox_id: int
) -> None:
    ids = channel.send(outbound(TWO_PARTS, customer_status, outbox_id=outbox_id, attempt=2))
    texts = _thread_of(fake, customer_status)
    assert [p.id for p in fake.posted_by("deskbot")] == ids
    assert len(texts) == 2 and texts[0].endswith("(1/2)") and texts[1].endswith("(2/2)")


def test_a_fully_posted_row_retried_after_its_keys_expired_posts_nothing(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    ids = channel.send(outbound(TWO_PARTS, customer_status, outbox_id=21))
    assert len(ids) == 2
    fake.expire_idempotency_keys()  # the retry comes more than an hour later
    assert channel.send(outbound(TWO_PARTS, customer_status, outbox_id=21, attempt=2)) == ids
    assert [p.id for p in fake.posted_by("deskbot")] == ids


@pytest.mark.parametrize("went_through", [1, 0], ids=["part 1 posted", "nothing posted"])
def test_a_row_retried_after_its_keys_expired_posts_only_the_missing_parts(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str, went_through: int
) -> None:
    fake.fail_next(50, 503, method="POST", path="/api/v1/statuses", skip=went_through)
    with pytest.raises(TransientSendError):
        channel.send(outbound(TWO_PARTS, customer_status, outbox_id=22))
    assert len(fake.posted_by("deskbot")) == went_through
    fake.faults.clear()
    fake.expire_idempotency_keys()
    _retry_ends_with_one_status_per_part(fake, channel, customer_status, outbox_id=22)


def test_a_keyed_repeat_answered_500_ends_with_one_status_per_part(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    fake.fail_keyed_repeats(500)  # mastodon/mastodon#40399
    # Part 1 is posted but its answer is lost; every retry with its key then gets a 500.
    fake.drop_next(1, method="POST", path="/api/v1/statuses", after_handling=True)
    with pytest.raises(TransientSendError, match="500"):
        channel.send(outbound(TWO_PARTS, customer_status, outbox_id=24))
    assert len(fake.posted_by("deskbot")) == 1
    _retry_ends_with_one_status_per_part(fake, channel, customer_status, outbox_id=24)


def test_a_retry_whose_look_up_fails_for_now_posts_nothing_and_is_transient(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    ids = channel.send(outbound("Posted once", customer_status, outbox_id=25))
    fake.expire_idempotency_keys()
    fake.fail_next(20, 503, method="GET", path="/api/v1/statuses/")
    with pytest.raises(TransientSendError, match="already posted"):
        channel.send(outbound("Posted once", customer_status, outbox_id=25, attempt=2))
    fake.faults.clear()
    assert channel.send(outbound("Posted once", customer_status, outbox_id=25, attempt=3)) == ids
    assert len(fake.posted_by("deskbot")) == 1


def test_an_earlier_reply_with_other_text_is_not_taken_for_the_retried_one(
    fake: FakeMastodon, channel: MastodonChannel, customer_status: str
) -> None:
    channel.send(outbound("An earlier answer", customer_status, outbox_id=26))
    fake.fail_next(50, 503, method="POST", path="/api/v1/statuses")
    with pytest.raises(TransientSendError):
        channel.send(outbound("The answer being retried", customer_status, outbox_id=27))
    fake.faults.clear()
    fake.expire_idempotency_keys()
    channel.send(outbound("The answer being retried", customer_status, outbox_id=27, attempt=2))
    assert [p.source_text for p in fake.posted_by("deskbot")] == [
        "@alice@remote.example An earlier answer",
        "@alice@remote.example The answer being retried",
    ]


@pytest.mark.parametrize(
    ("conversation", "posts_for_part_1"),
    [(None, 1), ("999999999999999999", 2)],  # a deleted status: a 404, then part 1 answering nothing
    ids=["no status", "status deleted"],
)
def test_a_reply_answering_no_status_is_found_among_the_bots_own_statuses(
    fake: FakeMastodon, channel: MastodonChannel, conversation: str | None, posts_for_part_1: int
) -> None:
    fake.fail_next(50, 503, method="POST", path="/api/v1/statuses", skip=posts_for_part_1)
    with pytest.raises(TransientSendError):
        channel.send(outbound(TWO_PARTS, conversation, outbox_id=28))
    assert len(fake.posted_by("deskbot")) == 1
    fake.faults.clear()
    for i in range(45):  # more than a page of the bot's statuses come after part 1
        fake.post_status("deskbot", f"@carol later note {i}", visibility="direct")
    fake.expire_idempotency_keys()
    ids = channel.send(outbound(TWO_PARTS, conversation, outbox_id=28, attempt=2))
    mine = [p for p in fake.posted_by("deskbot") if p.recipients == ("alice@remote.example",)]
    assert [p.id for p in mine] == ids and len(ids) == 2
    assert mine[0].status["in_reply_to_id"] is None and mine[1].status["in_reply_to_id"] == ids[0]


def test_a_reply_that_would_reach_nobody_fails_for_good(fake: FakeMastodon, channel: MastodonChannel) -> None:
    # Mastodon takes a status whose only mention it cannot resolve (an account suspended, moved or
    # gone): posted, it reaches nobody. Recorded as sent, the customer would wait for ever.
    status = fake.post_status("alice@remote.example", "@deskbot hi")
    with pytest.raises(PermanentSendError, match="reaches nobody"):
        channel.send(outbound("Hello", status["id"], recipient="ghost@nowhere.example"))
    (posted,) = fake.posted_by("deskbot")
    assert posted.recipients == ()  # what Mastodon made of it: the reason it fails
