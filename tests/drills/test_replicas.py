"""Drill 3: two `deskbot run` replicas on one PostgreSQL database; the active one is SIGKILLed.

Both replicas have both channels. Exactly one of them receives from each
channel — seen from three sides: PostgreSQL's advisory locks (which session,
named by its `application_name`, holds each channel's lock), the fake Zulip
server (one event queue being long-polled) and the fake Mastodon server (one
open stream for the bot). Customers write on both platforms all along; then
a burst arrives and the replica that receives is killed with SIGKILL as soon
as it starts answering it, in the middle of its work. The other must take
over within 10 seconds on each platform, measured from the kill to the first
answer to a DM that it received appearing on the fake. At the end everything
is delivered once: what the dead replica had claimed comes back to the other
when the claim runs out, and is not sent twice.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from storage.leases import _key as lease_key

from .conftest import (
    BOT_EMAIL,
    IDEMPOTENCY_KEY,
    BotProcess,
    CustomersWriting,
    Fakes,
    drill_store,
    open_incidents,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TAKEOVER_BUDGET = 10.0
WRITE_EVERY = 0.5


def lease_holders(engine: sa.Engine) -> dict[str, list[str]]:
    """{channel: application names of the sessions holding its advisory lock}."""
    holders: dict[str, list[str]] = {"zulip": [], "mastodon": []}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT l.classid::bigint, l.objid::bigint, a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).all()
    for classid, objid, app in rows:
        for channel in holders:
            key = lease_key(channel) & 0xFFFFFFFFFFFFFFFF
            if (classid, objid) == (key >> 32, key & 0xFFFFFFFF):
                holders[channel].append(app)
    return holders


def zulip_queues_polled(fakes: Fakes, since: float) -> set[str]:
    """Event queues long-polled (GET /events) by the bot since `since` (wall-clock time)."""
    return {
        r.params.get("queue_id", "?")
        for r in fakes.zulip.requests_to("GET", "/events")
        if r.at >= since and r.user == BOT_EMAIL
    }


def mastodon_streams(fakes: Fakes) -> int:
    bot_id = fakes.mastodon.bot.id
    return sum(1 for c in fakes.mastodon.streams.connections if c.account_id == bot_id)


def one_receiver_each(engine: sa.Engine, fakes: Fakes, expected: str) -> dict[str, object]:
    """Seen from PostgreSQL and both fakes: `expected` alone receives from each channel."""
    since = time.time() - 3.0
    seen = {
        "locks": lease_holders(engine),
        "zulip_queues_polled_last_3s": len(zulip_queues_polled(fakes, since)),
        "mastodon_streams_open": mastodon_streams(fakes),
    }
    ok = (
        seen["locks"] == {"zulip": [expected], "mastodon": [expected]}
        and seen["zulip_queues_polled_last_3s"] == 1
        and seen["mastodon_streams_open"] == 1
    )
    return seen if ok else {}


def start_a_then_b(a: BotProcess, b: BotProcess, engine: sa.Engine) -> None:
    """Replica A first, so that it takes both channels; B once A holds both leases. Returns once B
    stands by (a replica that finds a channel taken says so before it is ready)."""
    a.start().wait_ready()
    wait_until(lambda: lease_holders(engine) == {"zulip": ["replica-a"], "mastodon": ["replica-a"]}, 20, "A's leases")
    b.start().wait_ready()
    wait_until(lambda: any("standing by to take over" in r["message"] for r in b.log_records()), 10, "B to stand by")


def test_two_replicas_one_receiver_per_channel_and_takeover_within_ten_seconds(
    fakes: Fakes, make_database, bots
) -> None:  # noqa: ANN001
    url = make_database("postgresql")
    engine, people, ledger = drill_store(fakes, url, zulip=3, mastodon=3)
    a: BotProcess = bots("replica-a", fakes.env(url + "?application_name=replica-a"))
    b: BotProcess = bots("replica-b", fakes.env(url + "?application_name=replica-b"))
    start_a_then_b(a, b, engine)
    open_incidents(fakes, engine, people)

    writer = CustomersWriting(fakes, people, WRITE_EVERY).start()
    # B has been up for a while and both have seen traffic: still one receiver per channel, A.
    time.sleep(4.0)
    before = wait_until(lambda: one_receiver_each(engine, fakes, "replica-a"), 10, "A alone receiving")

    # A burst, and A is killed as soon as it starts answering it: in the middle of its work.
    answers_before = len(fakes.zulip_bot_messages()) + len(fakes.mastodon_bot_statuses())
    for kind in ("plain", "#N", "status", "plain"):
        for person in people:
            fakes.dm(person, kind, incident=person.incidents[0])
    wait_until(
        lambda: len(fakes.zulip_bot_messages()) + len(fakes.mastodon_bot_statuses()) > answers_before + 2,
        10,
        "A to answer the burst",
        interval=0.01,
    )
    killed_at = a.kill()
    # Rows made from now on are B's: A is dead, and B makes none before it receives.
    with engine.connect() as conn:
        last_row_before = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM outbox")).scalar()
    # The first answer, on each platform, to a DM that B received: outbox rows made after the kill.
    first_answer: dict[str, float] = {}
    deadline = killed_at + TAKEOVER_BUDGET + 30
    while len(first_answer) < 2 and time.monotonic() < deadline:
        now = time.monotonic()
        if "zulip" not in first_answer:
            owners = ledger.zulip_owners()  # a message's row is known once the row is recorded as sent
            for m in fakes.zulip_bot_messages():
                if m.stream_id is None and any(row > last_row_before for row in owners.get(m.id, [])):
                    first_answer["zulip"] = m.stored_at - killed_at
                    break
        if "mastodon" not in first_answer:
            for p in fakes.mastodon_bot_statuses():
                key = IDEMPOTENCY_KEY.match(p.idempotency_key or "")
                if key and int(key.group(1)) > last_row_before:
                    first_answer["mastodon"] = now - killed_at
                    break
        time.sleep(0.05)
    after = wait_until(lambda: one_receiver_each(engine, fakes, "replica-b"), 15, "B alone receiving")
    writer.stop()
    # Rows A had claimed when it died come back to B when their claim runs out (storage/outbox.py LEASE).
    wait_until(ledger.all_answered, 90, "every DM to be answered", interval=0.25)
    status = b.terminate()
    problems = ledger.problems()
    print(
        f"\n[drill replicas] before the kill: {before}; after: {after}; takeover (kill → first answer to a "
        f"DM B received): zulip {first_answer.get('zulip', float('inf')):.2f}s, mastodon "
        f"{first_answer.get('mastodon', float('inf')):.2f}s (budget {TAKEOVER_BUDGET:.0f}s); "
        f"{ledger.counts()}; lost/doubled: {len(problems)}"
    )
    assert set(first_answer) == {"zulip", "mastodon"}, f"no takeover within the budget: {first_answer}"
    assert max(first_answer.values()) <= TAKEOVER_BUDGET, first_answer
    assert problems == []
    assert status == 0, b.log_tail()
    engine.dispose()


def test_a_replica_whose_locks_go_with_its_connection_stops_receiving_and_the_other_takes_over(
    fakes: Fakes, make_database, bots
) -> None:  # noqa: ANN001
    """A database restart frees every advisory lock (they live with the connection that took them):
    the standby takes the channels within seconds, and the replica that held them must stop
    receiving at once rather than go on beside it. Here the server ends the lock connections of A
    (what a restart does to them), while customers write all along."""
    url = make_database("postgresql")
    engine, people, ledger = drill_store(fakes, url)
    a: BotProcess = bots("replica-a", fakes.env(url + "?application_name=replica-a"))
    b: BotProcess = bots("replica-b", fakes.env(url + "?application_name=replica-b"))
    start_a_then_b(a, b, engine)
    open_incidents(fakes, engine, people)
    writer = CustomersWriting(fakes, people, WRITE_EVERY).start()
    wait_until(lambda: one_receiver_each(engine, fakes, "replica-a"), 10, "A alone receiving")

    with engine.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a WHERE a.application_name = 'replica-a' "
                "AND a.pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"
            )
        ).all()
    assert len(ended) == 2  # each channel's lock on a connection of its own
    after = wait_until(lambda: one_receiver_each(engine, fakes, "replica-b"), 20, "B alone receiving")
    # And it stays so: A does not take a channel back while B holds it.
    time.sleep(2 * 2.0)
    still = wait_until(lambda: one_receiver_each(engine, fakes, "replica-b"), 5, "B still alone receiving")
    assert still == after
    writer.stop()
    wait_until(ledger.all_answered, 60, "every DM to be answered", interval=0.25)
    told_a = [r["message"] for r in a.log_records()]
    told_b = [r["message"] for r in b.log_records()]
    assert sum("lost this channel's lock" in m for m in told_a) == 2, told_a[-10:]
    assert sum("took over receiving this channel" in m for m in told_b) == 2, told_b[-10:]
    assert ledger.problems() == []
    print(f"\n[drill replicas] after A's locks went: {after}; {ledger.counts()}")
    assert a.terminate() == 0 and b.terminate() == 0
    engine.dispose()
