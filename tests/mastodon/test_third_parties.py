"""No status of the bot reaches anyone but its customer, whatever text it echoes.

Issue 16, item 2: "²", "½" or "௰" are word characters to Python's `\\w` but
not to Mastodon (Ruby's `[[:word:]]`), so `²@victim@host` is a mention there
and the old check let it through. Text a stranger controls comes back in
usage errors ("Unexpected text: …"), in incident subjects listed by `status`,
and in engineer replies that quote it. Driven through the real Mastodon.py
client against the fake server, whose mention rule is Mastodon's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from adapters.channel import Outbound, PermanentSendError
from adapters.mastodon import MastodonChannel
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.mastodon.text import find_mentions

from .conftest import wait_until
from .runtime_bot import ALICE, Bot

VICTIMS = ("carol", "mallory@elsewhere.example")


def statuses_from_the_bot_to(fake: FakeMastodon, acct: str) -> list[str]:
    return [p.source_text for p in fake.inbox(acct) if p.author == "deskbot"]


def assert_only_alice_was_written_to(fake: FakeMastodon) -> None:
    posted = fake.posted_by("deskbot")
    assert posted, "the bot answered nothing: the test would prove nothing"
    for victim in VICTIMS:
        assert statuses_from_the_bot_to(fake, victim) == []
    for status in posted:
        assert status.recipients == (ALICE,)
        assert [m["acct"] for m in status.status["mentions"]] == [ALICE]
        assert find_mentions(status.source_text) == [ALICE]


@pytest.mark.parametrize(
    "text",
    [
        "Unexpected text: ²@mallory@elsewhere.example",
        "Unknown command: ½@carol",
        "#1 ௰@carol: the printer jams",
        "x" * 485 + "@carol please",  # fills part 1 exactly: the cut falls right before "@carol"
    ],
)
def test_crafted_text_sent_on_the_channel_reaches_only_the_customer(
    fake: FakeMastodon, make_channel: Callable[..., MastodonChannel], text: str
) -> None:
    channel = make_channel()
    channel.start()
    customer_status = fake.post_status(ALICE, "@deskbot hello")["id"]
    channel.send(
        Outbound(
            outbox_id=1,
            channel="mastodon",
            kind="direct",
            text=text,
            recipient=ALICE,
            conversation=customer_status,
        )
    )
    assert_only_alice_was_written_to(fake)
    shown = " ".join(p.source_text.split(" ", 1)[1] for p in fake.posted_by("deskbot")).replace("\u200d", "")
    assert text.split("@")[-1].split()[0] in shown  # the text is still there to read


@pytest.fixture
def bot(fake: FakeMastodon, engine, db_url, clock, customer) -> Iterator[Bot]:  # noqa: ANN001
    running = Bot(fake, engine, db_url, clock).start()
    yield running
    running.halt()


def test_a_customers_crafted_text_echoed_by_the_bot_reaches_no_third_party(fake: FakeMastodon, bot: Bot) -> None:
    def answered(count: int) -> None:
        wait_until(lambda: len(fake.posted_by("deskbot")) >= count, 10)

    # Usage error: the rest of the line comes back as "Unexpected text: …".
    fake.post_status(ALICE, "@deskbot credits ²@mallory@elsewhere.example")
    answered(1)
    # The subject is shown again on every later `status`.
    fake.post_status(ALICE, "@deskbot open ½@carol the printer jams")
    answered(2)
    fake.post_status(ALICE, "@deskbot status")
    answered(3)
    # An engineer's reply quoting it.
    bot.engineer("/reply 1 You wrote: ௰@carol, we will look", "e1")
    answered(4)
    texts = [p.source_text.replace("\u200d", "") for p in fake.posted_by("deskbot")]
    assert "²@mallory@elsewhere.example" in texts[0]
    assert "½@carol" in texts[2]
    assert "௰@carol" in texts[3]
    assert_only_alice_was_written_to(fake)


def test_a_reply_that_would_still_mention_another_account_is_not_posted(
    fake: FakeMastodon, make_channel: Callable[..., MastodonChannel]
) -> None:
    # A recipient Mastodon would read as someone else: "@al!ce@…" mentions "@al".
    # The last check before posting refuses it for good, and nothing is posted.
    fake.add_account("al")
    channel = make_channel()
    channel.start()
    customer_status = fake.post_status(ALICE, "@deskbot hello")["id"]
    message = Outbound(
        outbox_id=1,
        channel="mastodon",
        kind="direct",
        text="hello",
        recipient="al!ce@remote.example",
        conversation=customer_status,
    )
    with pytest.raises(PermanentSendError, match="would also mention"):
        channel.send(message)
    assert fake.posted_by("deskbot") == [] and fake.inbox("al") == []
