"""Customers' edits of their Mastodon DMs (`PUT /api/v1/statuses/:id`), through the whole bot: the fake
Mastodon and the fake Zulip over HTTP, the real `Mastodon.py` and `zulip` clients, runtime, router
and store (both databases).

An edited DM joins the customer's case as a new message and shows in its topic as an edit, once,
found in the newest mentions the bot reads again (the notification stream it reads carries no
edits); edits of public statuses, of the bot's own, and edits that leave the words as they were
are not handled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from mastodon import Mastodon
from mastodon.errors import MastodonNotFoundError
from sqlalchemy import select

from adapters.mastodon.stream import Event, Opened, SSEConnection
from bot.runtime import Runtime
from storage.db import transaction
from storage.models import IncidentMessage, ProcessedInbound
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip
from tests.zulip.relay_check import parse_relayed
from tests.zulip.support_desk import topic_posts

from .conftest import BOT_TOKEN, in_topic, wait_until
from .runtime_bot import ALICE

RECORDED_UPDATE = Path(__file__).parents[1] / "fakes" / "mastodon" / "payloads" / "stream_status_update.json"


def client(fake: FakeMastodon, token: str) -> Mastodon:
    """A person's own Mastodon.py client: what their app does, over HTTP."""
    return Mastodon(api_base_url=fake.url, access_token=token, version_check_mode="none", mastodon_version="4.7.3")


def edit_as(fake: FakeMastodon, token: str, status_id: str, text: str, **changes: object) -> dict:
    """The holder of `token` edits their status with Mastodon.py's `status_update` (`PUT /api/v1/statuses/:id`)."""
    return client(fake, token).status_update(status_id, status=text, **changes)


def case_words(engine: sa.Engine) -> list[str]:
    """What the customer's messages on case #1 say, oldest first."""
    with transaction(engine) as session:
        query = select(IncidentMessage.body).where(IncidentMessage.incident_id == 1, IncidentMessage.direction == "in")
        return list(session.scalars(query.order_by(IncidentMessage.id)))


def handled(engine: sa.Engine) -> list[str]:
    """The Mastodon message ids (edits among them) the store records as handled."""
    with transaction(engine) as session:
        query = select(ProcessedInbound.message_id).where(ProcessedInbound.channel == "mastodon")
        return list(session.scalars(query))


def answered(fake: FakeMastodon, text: str, containing: str) -> None:
    """Alice sends `text` and its answer (`containing`) comes: every event Mastodon pushed the bot
    before her status has been handled by then (one stream, read in order)."""
    before = len(fake.posted_by("deskbot"))
    fake.post_status(ALICE, f"@deskbot {text}")
    wait_until(lambda: any(containing in p.source_text for p in fake.posted_by("deskbot")[before:]), 15)


def open_case(fake: FakeMastodon, zulip: FakeZulip, text: str) -> dict:
    """Alice opens case #1 with `text`: her status, once it is in the case topic and answered."""
    dm = fake.post_status(ALICE, f"@deskbot open {text}")
    in_topic(zulip, text)
    wait_until(lambda: any("Incident #1 is open" in p.source_text for p in fake.posted_by("deskbot")), 15)
    return dm


def edited_posts(zulip: FakeZulip) -> list[str]:
    """The bot's posts in the support stream that show an edit."""
    return [m.content for m in topic_posts(zulip, "wrote (edited):")]


# -- the fake, against the recorded payload ------------------------------------------------------


def test_the_fake_edits_a_status_as_mastodon_does(fake: FakeMastodon) -> None:
    """PUT by the author sets `edited_at`, keeps the versions, and pushes `status.update` with the
    recorded payload's shape to the home feeds the status is in; anyone else gets 404; an edit that
    changes nothing changes nothing."""
    dm = fake.post_status(ALICE, "@deskbot the printer is brokn")
    http = httpx.Client()
    stream = SSEConnection(
        http, f"{fake.url}/api/v1/streaming/user", {"Authorization": f"Bearer {BOT_TOKEN}"}, heartbeat_timeout=5
    ).start()
    try:
        assert isinstance(stream.items.get(timeout=5), Opened)
        edited = edit_as(fake, "alice-token", dm["id"], "@deskbot the printer is broken")
        assert edited["edited_at"] is not None and "broken" in edited["content"]
        event = wait_until(lambda: next(iter(_events(stream, "status.update")), None), 5)
        payload = json.loads(event.data)
        recorded = json.loads(RECORDED_UPDATE.read_text())["body"]
        # `pinned` only where the reader may pin the status: the recorded one is its author's public status.
        assert set(payload) == set(recorded) - {"pinned"}
        assert payload["id"] == dm["id"] and payload["edited_at"] and "broken" in payload["content"]
        history = client(fake, BOT_TOKEN).status_history(dm["id"])
        assert [("brokn" in v["content"], "broken" in v["content"]) for v in history] == [(True, False), (False, True)]
        with pytest.raises(MastodonNotFoundError):  # only the author edits
            edit_as(fake, "carol-token", dm["id"], "@deskbot hijacked")
        again = edit_as(fake, "alice-token", dm["id"], "@deskbot the printer is broken")
        assert again["edited_at"] == edited["edited_at"] and "broken" in again["content"]
        assert len(client(fake, BOT_TOKEN).status_history(dm["id"])) == 2
    finally:
        stream.close()
        http.close()


def _events(stream: SSEConnection, name: str) -> list[Event]:
    found = []
    while not stream.items.empty():
        item = stream.items.get_nowait()
        if isinstance(item, Event) and item.name == name:
            found.append(item)
    return found


# -- through the runtime -----------------------------------------------------------------------


def test_a_customers_edit_joins_their_case_once_and_shows_as_an_edit(
    fake: FakeMastodon, zulip: FakeZulip, start_desk: Callable[..., Runtime], engine: sa.Engine
) -> None:
    """Found by a look at the newest mentions, handed over once however often the bot looks again."""
    start_desk(safety_poll_interval=0.3)
    dm = open_case(fake, zulip, "The toner smells")
    pushed = fake.streams.opened
    edit_as(fake, "alice-token", dm["id"], "@deskbot open The toner smells burnt @**all** /poll x")
    mirrored = in_topic(zulip, "wrote (edited):")
    relayed = parse_relayed(mirrored.content)
    assert relayed.outside[0] == "**`Acme`** via mastodon (`alice@remote.example`) wrote (edited):"
    assert relayed.inside == ["The toner smells burnt @**all** /poll x"]  # an edited `open` opens nothing
    assert case_words(engine)[-2:] == ["The toner smells", "The toner smells burnt @**all** /poll x"]
    assert fake.streams.opened == pushed  # found by looking, not by a reconnect
    edits = [key for key in handled(engine) if key.startswith(f"{dm['id']}:edit:")]
    assert len(edits) == 1
    looks = fake.stats.count("GET /api/v1/notifications")
    wait_until(lambda: fake.stats.count("GET /api/v1/notifications") > looks + 4, 10)  # several looks more
    answered(fake, "status", "Your incidents")
    assert [key for key in handled(engine) if ":edit:" in key] == edits
    assert len(edited_posts(zulip)) == 1
    assert case_words(engine)[-1] == "The toner smells burnt @**all** /poll x"


def test_edits_that_bring_no_new_words_of_a_customers_dm_are_ignored(
    fake: FakeMastodon, zulip: FakeZulip, start_desk: Callable[..., Runtime], engine: sa.Engine
) -> None:
    """A public mention edited, the bot's own reply edited, and a DM only marked sensitive: none
    is handled, however often the bot looks (each has edited_at set)."""
    start_desk(safety_poll_interval=0.3)
    dm = open_case(fake, zulip, "Fax jammed")
    public = fake.post_status(ALICE, "@deskbot hello everyone", visibility="public")
    wait_until(lambda: any(p.status["in_reply_to_id"] == public["id"] for p in fake.posted_by("deskbot")), 15)
    edit_as(fake, "alice-token", public["id"], "@deskbot hello everyone, my fax jammed")
    own = fake.posted_by("deskbot")[0]
    edit_as(fake, BOT_TOKEN, own.id, own.source_text + " (corrected)")
    same = edit_as(fake, "alice-token", dm["id"], "@deskbot open Fax jammed", sensitive=True)
    assert same["edited_at"] is not None  # Mastodon calls it an edit
    before = handled(engine)
    looks = fake.stats.count("GET /api/v1/notifications")
    wait_until(lambda: fake.stats.count("GET /api/v1/notifications") > looks + 4, 10)
    answered(fake, "status", "Your incidents")
    assert len([key for key in handled(engine) if key not in before]) == 1  # the status only
    assert not [key for key in handled(engine) if ":edit:" in key]
    assert edited_posts(zulip) == []
    assert case_words(engine) == ["Fax jammed"]
