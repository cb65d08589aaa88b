"""What Mastodon customers really send, through the fake Mastodon and Zulip servers and the real
runtime: a command with a screenshot, an answer in the bot's thread, a colleague mentioned first,
words only under a content warning, a status that only mentions the bot."""

from __future__ import annotations

import sqlalchemy as sa

from bot.runtime import Runtime
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip
from tests.zulip import conftest as zulip_side

from .conftest import PNG, in_topic, wait_until
from .runtime_bot import ALICE


def _replies(fake: FakeMastodon, count: int) -> list[str]:
    wait_until(lambda: len(fake.posted_by("deskbot")) >= count, 10)
    return [p.source_text for p in fake.posted_by("deskbot")]


def _messages(engine: sa.Engine, number: int) -> list[str]:
    with engine.connect() as conn:
        query = sa.text("SELECT body FROM incidentmessage WHERE incident_id = :n AND direction = 'in' ORDER BY id")
        return [body for (body,) in conn.execute(query, {"n": number})]


def test_a_command_with_a_screenshot_is_still_the_command(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    fake.post_status(ALICE, "@deskbot open The dashboard is blank", media=[fake.media("a.png", PNG)])
    assert "Incident #1 is open: The dashboard is blank" in _replies(fake, 1)[0]
    assert _messages(engine, 1) == ["The dashboard is blank"]  # no address of the medium in the words
    fake.post_status(ALICE, "@deskbot status 1", media=[fake.media("b.png", PNG)])
    answer = _replies(fake, 2)[1]
    assert "Unexpected" not in answer and "The dashboard is blank" in answer


def test_a_medium_that_cannot_be_fetched_is_named_by_its_address(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    gone = {"url": fake.url + "/system/media_attachments/files/999/original/gone.png", "type": "image"}
    fake.post_status(ALICE, "@deskbot open The dashboard is blank", media=[gone])
    _replies(fake, 1)
    assert _messages(engine, 1) == ["The dashboard is blank\n\n" + gone["url"]]


def test_an_answer_in_the_bots_thread_joins_the_incident_it_answers(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    fake.post_status(ALICE, "@deskbot open The VPN drops")
    _replies(fake, 1)
    fake.post_status(ALICE, "@deskbot open The printer jams")
    _replies(fake, 2)  # asked first: a second credit
    fake.post_status(ALICE, "@deskbot open")
    assert "Incident #2 is open" in _replies(fake, 3)[2]
    topic = in_topic(zulip, "The printer jams").subject
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, "/reply Please reboot the printer.")
    wait_until(lambda: any("Please reboot" in p.source_text for p in fake.posted_by("deskbot")), 10)
    ours = next(p for p in fake.posted_by("deskbot") if "Please reboot" in p.source_text)
    fake.post_status(ALICE, "@deskbot still jams after the reboot", in_reply_to=ours.id)
    wait_until(lambda: "still jams after the reboot" in _messages(engine, 2), 10)
    assert "still jams after the reboot" not in _messages(engine, 1)


def test_a_colleague_mentioned_before_the_command_does_not_hide_it(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    fake.add_account("bob@remote.example")
    fake.post_status(ALICE, "@deskbot @bob@remote.example open The VPN drops every hour")
    assert "Incident #1 is open: The VPN drops every hour" in _replies(fake, 1)[0]


def test_words_only_under_a_content_warning_are_the_message(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    fake.post_status(ALICE, "@deskbot", spoiler_text="open the admin password leaked")
    assert "Incident #1 is open" in _replies(fake, 1)[0]
    assert _messages(engine, 1) == ["the admin password leaked"]


def test_a_status_that_only_mentions_the_bot_gets_a_pointer_to_help(
    fake: FakeMastodon, zulip: FakeZulip, desk: Runtime, engine: sa.Engine
) -> None:
    fake.post_status(ALICE, "@deskbot open The VPN drops")
    _replies(fake, 1)
    fake.post_status(ALICE, "@deskbot")
    assert 'Your message was empty. Send "help" to see what I can do.' in _replies(fake, 2)[1]
    assert _messages(engine, 1) == ["The VPN drops"]
