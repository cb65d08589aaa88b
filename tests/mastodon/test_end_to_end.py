"""The real runtime (intake, router, outbox, dispatcher) with the Mastodon channel, against the fake.

Engineers work on the console channel (it carries the case topics), so no
Zulip server is needed; customers write from Mastodon accounts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import select

from adapters.channel import Outbound
from adapters.mastodon import MastodonChannel
from bot.services import credits as credit_service
from storage.db import transaction
from storage.models import Customer, Incident, IncidentMessage, Outbox, ProcessedInbound
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.mastodon.text import countable_length, find_mentions

from .conftest import BOT_TOKEN, FAST, wait_until
from .runtime_bot import ALICE, Bot, bot_replies


@pytest.fixture
def bot(fake: FakeMastodon, engine, db_url, clock, customer) -> Iterator[Bot]:  # noqa: ANN001
    running = Bot(fake, engine, db_url, clock).start()
    yield running
    running.halt()


def test_a_remote_accounts_dm_opens_a_case_and_gets_the_answer(fake: FakeMastodon, bot: Bot, engine) -> None:  # noqa: ANN001
    dm = fake.post_status(ALICE, "@deskbot open My VPN does not connect", spoiler_text="VPN")
    (reply,) = bot_replies(fake, 1)
    assert "Incident #1 is open" in reply.source_text
    assert reply.status["in_reply_to_id"] == dm["id"]
    assert reply.status["visibility"] == "direct"
    assert reply.recipients == (ALICE,)
    assert find_mentions(reply.source_text) == [ALICE]
    with transaction(engine) as session:
        incident = session.get(Incident, 1)
        assert incident is not None and incident.subject == "VPN"  # the content warning is the subject hint
        (first,) = session.scalars(select(IncidentMessage).where(IncidentMessage.incident_id == 1))
        assert "My VPN does not connect" in first.body
        assert session.get(ProcessedInbound, ("mastodon", dm["id"])) is not None


def test_an_engineers_reply_reaches_the_customer_as_a_thread(fake: FakeMastodon, bot: Bot) -> None:
    dm = fake.post_status(ALICE, "@deskbot open Printer jams")
    bot_replies(fake, 1)
    follow_up = fake.post_status(ALICE, "@deskbot it jams on page 2", in_reply_to=dm["id"])
    bot_replies(fake, 2)
    answer = " ".join(
        f"Step {i}: open tray {i}, remove the paper, and check the roller at https://kb.example/rollers/{i}."
        for i in range(1, 20)
    )[:1400]
    bot.engineer(f"/reply 1 {answer}", "e1")

    def whole_thread() -> list:
        parts = fake.posted_by("deskbot")[2:]
        last = re.search(r"\((\d+)/(\d+)\)$", parts[-1].source_text) if parts else None
        return parts if last and last.group(1) == last.group(2) else []

    posted = wait_until(whole_thread, 10)
    assert len(posted) >= 3
    parent = follow_up["id"]  # the customer's latest status
    for part in posted:
        assert part.status["in_reply_to_id"] == parent
        assert countable_length(part.source_text) <= 500
        assert find_mentions(part.source_text) == [ALICE] and part.recipients == (ALICE,)
        parent = part.id
    text = " ".join(p.source_text.split(" ", 1)[1].rsplit(" (", 1)[0] for p in posted)
    assert " ".join(answer.split()[:5]) in text and answer.split()[-1] in text
    assert fake.inbox("carol") == [] and fake.inbox("mallory@elsewhere.example") == []


def test_public_mention_is_answered_directly_and_not_stored(fake: FakeMastodon, bot: Bot, engine) -> None:  # noqa: ANN001
    fake.post_status(ALICE, "@deskbot my licence key is SECRET-123", visibility="public")
    (reply,) = bot_replies(fake, 1)
    assert reply.status["visibility"] == "direct" and reply.recipients == (ALICE,)
    with transaction(engine) as session:
        stored = " ".join(m.body for m in session.scalars(select(IncidentMessage)))
        assert "SECRET-123" not in stored


class _Crash(BaseException):
    """The process dies: not an Exception, so nothing on the way catches it."""


class CrashAfterSend(MastodonChannel):
    def send(self, message: Outbound) -> list[str]:
        super().send(message)
        raise _Crash()


def test_killed_between_sending_and_recording_then_restarted_does_not_post_twice(
    fake: FakeMastodon,
    engine,
    db_url,
    clock,
    customer,  # noqa: ANN001
) -> None:
    first = Bot(fake, engine, db_url, clock, CrashAfterSend(fake.url, BOT_TOKEN, tuning=FAST)).start(dispatch=False)
    fake.post_status(ALICE, "@deskbot open " + "The backup job fails every night. " * 30)
    wait_until(lambda: _pending(engine), 10)
    with pytest.raises(_Crash):
        first.runtime.dispatcher.drain("mastodon")
    first.halt()
    posted_once = [p.id for p in fake.posted_by("deskbot")]
    assert posted_once

    clock.advance(seconds=31)  # the dead process's claim on the row runs out
    second = Bot(fake, engine, db_url, clock).start(dispatch=False)
    assert second.runtime.dispatcher.drain("mastodon") == 1
    second.halt()
    assert [p.id for p in fake.posted_by("deskbot")] == posted_once
    with transaction(engine) as session:
        row = session.scalars(select(Outbox).where(Outbox.channel == "mastodon")).one()
        assert row.state == "sent" and row.attempts == 2


def _pending(engine) -> bool:  # noqa: ANN001
    with transaction(engine) as session:
        return (
            session.scalars(select(Outbox).where(Outbox.channel == "mastodon", Outbox.state == "pending")).first()
            is not None
        )


def test_with_the_rate_limit_lowered_every_dm_is_answered_without_a_429(engine, db_url, clock, customer) -> None:  # noqa: ANN001
    with FakeMastodon(api_limit=40, api_period=2.0, status_limit=6, status_period=1.5, heartbeat_interval=0.3) as small:
        small.add_account(ALICE)
        small.follow("deskbot", ALICE)
        running = Bot(small, engine, db_url, clock).start()
        for i in range(15):
            small.post_status(ALICE, f"@deskbot #{i} status")
        wait_until(lambda: len(small.posted_by("deskbot")) >= 15, 30)
        running.halt()
        assert small.stats.ratelimited == 0
        assert len(small.posted_by("deskbot")) == 15


def test_a_credit_expiry_reminder_is_a_direct_post_of_its_own_that_reaches_the_customer(
    fake: FakeMastodon, bot: Bot, engine, clock, customer: int
) -> None:  # noqa: ANN001
    """Nothing to answer: a new direct post (no `in_reply_to_id`) that mentions the customer, so
    that it reaches them (a direct post without the mention reaches nobody)."""
    with transaction(engine) as session:
        acme = session.get_one(Customer, customer)
        credit_service.grant_credits(
            session, acme, 1, date(2025, 12, 22), "test", clock(), months=12
        )  # lapses after 22 Dec
    bot.runtime.watch_once()
    (reminder,) = bot_replies(fake, 1)
    assert "A reminder: 1 support credit from the pack you bought on 22 Dec 2025" in reminder.source_text
    assert reminder.status["in_reply_to_id"] is None and reminder.status["visibility"] == "direct"
    assert reminder.recipients == (ALICE,) and find_mentions(reminder.source_text) == [ALICE]


def test_every_answer_is_tagged_with_the_language_it_is_written_in(fake: FakeMastodon, bot: Bot) -> None:
    """Mastodon tags a status with a language (screen readers read it in that voice, the translate
    button offers to translate from it); untagged, a Portuguese answer took the bot account's."""
    fake.account("deskbot").default_language = "ja"  # a wrong guess, as the cassettes show one
    fake.post_status(ALICE, "@deskbot idioma pt")
    (switched,) = bot_replies(fake, 1)
    assert switched.status["language"] == "pt", switched.source_text
    fake.post_status(ALICE, "@deskbot abrir A impressora encrava")
    (opened,) = bot_replies(fake, 2)[1:]
    assert "foi aberto" in opened.source_text and opened.status["language"] == "pt"
    bot.engineer("/reply 1 Já vimos: é o rolo.", "e1")
    (relayed,) = bot_replies(fake, 3)[2:]
    assert "[#1] Já vimos" in relayed.source_text and relayed.status["language"] == "pt"
    # An engineer who writes English to her is tagged English; a log line quoted in Portuguese is not.
    bot.engineer("/reply 1 Please check the roller and tell us what you see.", "e2")
    bot.engineer("/reply 1 O registo diz: the roller is worn", "e3")
    english, quoted = bot_replies(fake, 5)[3:]
    assert english.status["language"] == "en" and quoted.status["language"] == "pt", english.source_text
    fake.post_status(ALICE, "@deskbot lang en")
    fake.post_status(ALICE, "@deskbot status")
    answers = bot_replies(fake, 7)[5:]
    assert [a.status["language"] for a in answers] == ["en", "en"], [a.source_text for a in answers]
    assert "Your incidents:" in answers[1].source_text
