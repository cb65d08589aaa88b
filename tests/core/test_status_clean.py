"""`status N` shows what an engineer wrote as the customer read it (SPEC §2: customers never see
the bot's internal references or markup meant for Zulip): a reply, and the summary given to
`/resolve`, with the same words as the answer that brought them, never another customer's topic,
a wildcard mention or Zulip's markup off Zulip.

The whole bot as `deskbot run` has it: the runtime with the Zulip channel (the fake Zulip over
HTTP: the engineers, and Bob Lda writing in direct messages) and the Mastodon channel (the fake
Mastodon over HTTP: Alice). Runs on SQLite and PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.mastodon import MastodonChannel
from bot.runtime import Runtime
from bot.services import credits as credit_service
from bot.services import customers
from storage.db import transaction
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip
from tests.mastodon.conftest import BOT_TOKEN, fast, mastodon_with_customer, wait_until
from tests.zulip.conftest import BOB, BOT, ENGINEER, STREAM
from tests.zulip.support_desk import running_desk, support_settings, zulip_with_support_stream

ALICE = "alice@remote.example"
#: What the engineers' Zulip markup becomes nowhere a customer reads it.
ZULIP_ONLY = ("#**", "@**", "**all**", "support>")


@pytest.fixture
def mastodon() -> Iterator[FakeMastodon]:
    with mastodon_with_customer(ALICE, "Alice Remote") as server:
        yield server


@pytest.fixture
def zulip() -> Iterator[FakeZulip]:
    with zulip_with_support_stream() as server:
        yield server


@pytest.fixture
def desk(mastodon: FakeMastodon, zulip: FakeZulip, engine, db_url, clock) -> Iterator[Runtime]:  # noqa: ANN001
    """Alice on Mastodon and Bob Lda on Zulip, each with credits, and each with an open case:
    Alice's #1 and Bob Lda's #2."""
    with transaction(engine) as session:
        for name, channel, address in (
            ("Alice", "mastodon", ALICE),
            ("Bob Lda", "zulip", str(zulip.user(BOB).user_id)),
        ):
            customer, _code = customers.create_customer(session, name, None, "en", clock())
            customers.link_identity(session, customer, channel, address, clock())
            credit_service.grant_credits(session, customer, 3, clock().date(), "test", clock(), months=12)
    channel = MastodonChannel(mastodon.url, BOT_TOKEN, tuning=fast(poll_interval=0.2))
    with running_desk(zulip, support_settings(db_url), channel, engine=engine, clock=clock) as runtime:
        alice_says(mastodon, "open The NAS fan is loud", "Incident #1 is open")
        bob_says(zulip, "open Backups fail on the pool", "Incident #2 is open")
        yield runtime


def alice_says(mastodon: FakeMastodon, text: str, answer: str) -> str:
    """Alice writes to the bot; what the bot then posts her, once it contains `answer` (the parts of
    a long answer joined)."""
    before = len(mastodon.posted_by("deskbot"))
    mastodon.post_status(ALICE, f"@deskbot {text}")
    return wait_until(lambda: _joined(mastodon, before, answer), 15)


def alice_got(mastodon: FakeMastodon, answer: str) -> str:
    return wait_until(lambda: _joined(mastodon, 0, answer), 15)


def _joined(mastodon: FakeMastodon, since: int, answer: str) -> str | None:
    posted = [p.source_text.removeprefix(f"@{ALICE}").strip() for p in mastodon.posted_by("deskbot")[since:]]
    text = "\n".join(posted)
    return text if answer in text else None


def bob_says(zulip: FakeZulip, text: str, answer: str) -> str:
    before = len(zulip.sent_by(BOT, to=BOB))
    zulip.post_dm(BOB, text)
    return bob_got(zulip, answer, before)


def bob_got(zulip: FakeZulip, answer: str, since: int = 0) -> str:
    return wait_until(
        lambda: next((m.content for m in zulip.sent_by(BOT, to=BOB)[since:] if answer in m.content), None), 15
    )


def topic_of(zulip: FakeZulip, number: int) -> str:
    """The name of case `number`'s topic ("#2 Bob Lda: Backups fail on the pool"), once the bot posted in it."""
    return wait_until(
        lambda: next(
            (m.subject for m in zulip.sent_by(BOT, stream=STREAM) if m.subject.startswith(f"#{number} ")), None
        ),
        15,
    )


def line_of(answer: str, start: str) -> str:
    """The line of `answer` that begins with `start`, without it."""
    return next(line.removeprefix(start) for line in answer.splitlines() if line.startswith(start))


def support_line(answer: str) -> str:
    """What the latest message from support says in a `status N` answer."""
    (words,) = [line.split("): ", 1)[1] for line in answer.splitlines() if line.startswith("— support (")]
    return words


def test_status_shows_an_engineers_reply_and_resolution_to_a_customer_off_zulip_as_they_read_them(
    mastodon: FakeMastodon, zulip: FakeZulip, desk: Runtime
) -> None:
    bobs = topic_of(zulip, 2)
    reply = f"Please run **`btrfs fi show`** and see #**{STREAM}>{bobs}** — also @**all** [docs](https://rockstor.com/docs/)"
    zulip.post_stream_message(ENGINEER, STREAM, topic_of(zulip, 1), f"/reply {reply}")
    relayed = line_of(alice_got(mastodon, "[#1] Please run"), "[#1] ")
    assert "btrfs fi show" in relayed and "https://rockstor.com/docs/" in relayed

    shown = alice_says(mastodon, "status 1", "Latest messages")
    assert support_line(shown) == relayed  # the words she was sent, no more
    for leak in ("Bob", "Backups fail", "**", "`", "[docs]", *ZULIP_ONLY):
        assert leak not in shown

    summary = f"Fixed with **`btrfs scrub`**, as in #**{STREAM}>{bobs}** @**all**"
    zulip.post_stream_message(ENGINEER, STREAM, topic_of(zulip, 1), f"/resolve 1 {summary}")
    resolved = alice_got(mastodon, "Incident #1 is resolved.").splitlines()
    told = resolved[resolved.index("Incident #1 is resolved.") + 1]
    assert told == "Fixed with btrfs scrub, as in"
    shown = alice_says(mastodon, "status 1", "Resolution:")
    assert line_of(shown, "Resolution: ") == told
    for leak in ("Bob", "Backups fail", "**", "`", *ZULIP_ONLY):
        assert leak not in shown


def test_status_shows_an_engineers_reply_to_a_customer_on_zulip_without_links_into_the_organisation(
    mastodon: FakeMastodon, zulip: FakeZulip, desk: Runtime
) -> None:
    alices = topic_of(zulip, 1)
    reply = f"Please run **`btrfs fi show`**, as #**{STREAM}>{alices}** did @**all**"
    zulip.post_stream_message(ENGINEER, STREAM, topic_of(zulip, 2), f"/reply {reply}")
    relayed = line_of(bob_got(zulip, "[#2] Please run"), "[#2] ")

    shown = bob_says(zulip, "status 2", "Latest messages")
    # On Zulip the customer's own client renders the emphasis: only what points inside goes.
    assert support_line(shown) == relayed == "Please run **`btrfs fi show`**, as did"
    for leak in ("Alice", "NAS fan", *ZULIP_ONLY):
        assert leak not in shown
