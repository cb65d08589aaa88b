"""The logs of a full run (issue 5, item 3): no secret ever, and ids on every line about a message.

One `deskbot run` with JSON logs at DEBUG level against both fakes:
customers open incidents, write to them, ask for their status and mistype
a command on both platforms; an engineer answers in the case topic; sends
fail with 5xx answers and lost acknowledgements (so the retry, the lookup
before a resend and the Idempotency-Key paths all log); the Mastodon stream
and the Zulip event queue are lost once each; then SIGTERM. The log file is
read as a whole.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from .conftest import (
    BOT_EMAIL,
    ENGINEER,
    STREAM,
    BotProcess,
    Databases,
    Fakes,
    SentDM,
    drill_store,
    open_incidents,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: A line that names an outbox row in its prose ("outbox row 12: …", "outbox 12 has no …").
NAMES_A_ROW = re.compile(r"\boutbox(?: row)? (\d+)\b")


@dataclass
class FullRun:
    fakes: Fakes
    bot: BotProcess
    status: int | None
    raw: bytes
    records: list[dict[str, Any]]
    lines: list[str]
    outbox_incident: dict[int, int | None]
    outbox_text: dict[int, str]
    dms: list[SentDM]
    #: Inbound message id → the incident it was about (customer DMs that open or add, engineer commands).
    incident_of: dict[str, int]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullRun]:
    directory = tmp_path_factory.mktemp("logs")
    databases = Databases(directory)
    fakes = Fakes().start()
    bot: BotProcess | None = None
    try:
        url = databases.make("postgresql")
        engine, people, ledger = drill_store(fakes, url)
        bot = BotProcess("deskbot", {**fakes.env(url), "DESKBOT_LOG_LEVEL": "DEBUG"}, directory / "deskbot.log")
        bot.start().wait_ready()

        open_incidents(fakes, engine, people, ledger)

        # Sends fail: a 5xx answer, then a post whose answer is lost (Zulip looks before resending;
        # Mastodon resends under the same Idempotency-Key).
        fakes.zulip.fail_next(1, status=502, path="/messages", method="POST")
        fakes.zulip.drop_next(1, path="/messages", method="POST", after_processing=True)
        fakes.mastodon.fail_next(1, 503, method="POST", path="/api/v1/statuses")
        fakes.mastodon.drop_next(1, method="POST", path="/api/v1/statuses", after_handling=True)
        for kind in ("plain", "status", "#N"):
            for person in people:
                fakes.dm(person, kind, incident=person.incidents[0])
        wait_until(ledger.all_answered, 60, "the DMs sent through failures to be answered", interval=0.2)

        # Both receive paths are lost once and come back.
        fakes.mastodon.disconnect_streams()
        fakes.zulip.expire_queues(BOT_EMAIL)
        fakes.zulip.kill_connections()
        time.sleep(1.0)
        for person in people:
            fakes.dm(person, "plain")
            fakes.dm(person, "typo")
        # An engineer answers each case in its topic; the answers go back to the customers.
        with engine.connect() as conn:
            topics = dict(conn.execute(sa.text("SELECT id, topic FROM incident")).all())
        engineer_said: dict[str, int] = {}
        for person in people:
            number = person.incidents[0]
            said = fakes.zulip.post_stream_message(
                ENGINEER, STREAM, topics[number], f"/reply Try the reset switch ({number})"
            )
            engineer_said[str(said)] = number

        def relayed() -> bool:
            texts = [m.content for m in fakes.zulip_bot_messages()] + [
                p.source_text for p in fakes.mastodon_bot_statuses()
            ]
            return all(any(f"Try the reset switch ({p.incidents[0]})" in t for t in texts) for p in people)

        wait_until(relayed, 60, "the engineer's answers to reach the customers", interval=0.2)
        wait_until(lambda: all(r.state != "pending" for r in ledger.outbox()), 60, "the outbox to drain")
        status = bot.terminate()
        with engine.connect() as conn:
            outbox_incident = dict(conn.execute(sa.text("SELECT id, incident_id FROM outbox")).all())
            outbox_text = dict(conn.execute(sa.text("SELECT id, text FROM outbox")).all())
        incident_of = {dm.message_id: dm.customer.incidents[0] for dm in fakes.sent if dm.kind in ("open", "add")}
        incident_of |= engineer_said
        engine.dispose()
        raw = bot.log_path.read_bytes()
        yield FullRun(
            fakes=fakes,
            bot=bot,
            status=status,
            raw=raw,
            records=bot.log_records(),
            lines=[line for line in raw.decode(errors="replace").splitlines() if line.strip()],
            outbox_incident=outbox_incident,
            outbox_text=outbox_text,
            dms=list(fakes.sent),
            incident_of=incident_of,
        )
    finally:
        if bot is not None and bot.alive:
            bot.terminate()
        fakes.stop()
        databases.drop_all()


def test_a_full_run_logs_json_lines_and_stops_cleanly(full_run: FullRun) -> None:
    not_json = [line for line in full_run.lines if not line.startswith("{")]
    print(f"\n[drill logs] {len(full_run.lines)} log lines, {len(full_run.records)} JSON records")
    assert full_run.status == 0
    assert len(full_run.records) > 50
    assert not_json == [], not_json[:5]


def test_no_token_or_api_key_appears_in_the_logs(full_run: FullRun) -> None:
    fakes = full_run.fakes
    basic = base64.b64encode(f"{BOT_EMAIL}:{fakes.zulip_key}".encode()).decode()
    secrets = {
        "Zulip API key": fakes.zulip_key,
        "Zulip Basic credentials": basic,
        "Mastodon access token": fakes.mastodon_token,
    }
    # The run did talk to both platforms with them (so the check is not vacuous).
    assert fakes.zulip.requests_to("POST", "/messages") and fakes.mastodon.stats.count("POST /api/v1/statuses")
    leaked = {name: full_run.raw.count(value.encode()) for name, value in secrets.items()}
    # Also a recognisable fragment, in case a line cut or wrapped a secret.
    leaked |= {
        f"{name} (first 12 characters)": full_run.raw.count(value[:12].encode()) for name, value in secrets.items()
    }
    assert {name: n for name, n in leaked.items() if n} == {}


def gaps(found: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [
        f"{kind}: {len(records)} line(s), e.g. {records[0].get('logger')}: {records[0].get('message')!r}"
        for kind, records in found.items()
    ]


def test_intake_and_dispatcher_lines_carry_channel_and_ids(full_run: FullRun) -> None:
    """`handled`, `sent`, `send failed …`: the channel, the message or outbox id, and the incident the store knows."""
    found: dict[str, list[dict[str, Any]]] = {}
    sent = [r for r in full_run.records if r.get("message") == "sent"]
    handled = [r for r in full_run.records if r.get("message") == "handled"]
    print(f"\n[drill logs] 'sent' lines: {len(sent)}, 'handled' lines: {len(handled)}")
    assert len(handled) == len(full_run.dms) + 2 and len(sent) == len(full_run.outbox_incident)
    for record in full_run.records:
        if "outbox_id" in record:
            row = record["outbox_id"]
            if not record.get("channel"):
                found.setdefault("outbox line without channel", []).append(record)
            if "incident_id" not in record or record["incident_id"] != full_run.outbox_incident.get(row):
                found.setdefault("outbox line without the row's incident id", []).append(record)
        if "message_id" in record and not record.get("channel"):
            found.setdefault("inbound line without channel", []).append(record)
        if record.get("message") == "handled":
            expected = full_run.incident_of.get(str(record.get("message_id")))
            if expected is not None and record.get("incident_id") != expected:
                found.setdefault("'handled' line without the incident the message was about", []).append(record)
    assert gaps(found) == []


#: Adapter lines that are about one outbox row's send: the Zulip transport retrying `POST messages`,
#: the Mastodon transport retrying (in this run only posts were made to fail), "outbox row N: …".
ABOUT_A_SEND = [
    ("deskbot.adapters.zulip", re.compile(r"\bPOST messages\b")),
    ("deskbot.adapters.mastodon", re.compile(r"; retry \d+$")),
    ("", NAMES_A_ROW),
]


def test_adapter_lines_about_a_send_carry_channel_and_outbox_id(full_run: FullRun) -> None:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in full_run.records:
        logger, message = str(record.get("logger", "")), str(record.get("message", ""))
        for prefix, pattern in ABOUT_A_SEND:
            if logger.startswith(prefix) and pattern.search(message):
                if not record.get("channel") or "outbox_id" not in record or "incident_id" not in record:
                    found.setdefault(f"{logger} line about a send without channel/outbox_id/incident_id", []).append(
                        record
                    )
    for line in gaps(found):
        print(f"[drill logs] missing: {line}")
    assert gaps(found) == []


NAMES_AN_INCIDENT = re.compile(r"[Ii]ncident #(\d+)\b")


def test_replies_about_an_incident_are_logged_with_its_id(full_run: FullRun) -> None:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in full_run.records:
        if record.get("message") != "sent":
            continue
        named = set(NAMES_AN_INCIDENT.findall(full_run.outbox_text.get(record["outbox_id"], "")))
        if len(named) == 1 and record.get("incident_id") != int(named.pop()):
            found.setdefault("'sent' line of a reply about incident #N without incident_id N", []).append(record)
    for line in gaps(found):
        print(f"[drill logs] missing: {line}")
    assert gaps(found) == []
