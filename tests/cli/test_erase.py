"""`deskbot customers erase`: a customer's personal data gone from every table, invoicing records kept.

The cases are made through the real router and services (`Desk`); the store is then read whole,
every column of every table of `SQLModel.metadata`, so that a table added later is searched too.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from bot.services import copies, customers, incidents, strangers
from bot.services.outgoing import Outgoing
from storage import outbox
from storage.db import transaction
from storage.models import Customer, Identity, Incident, IncidentAttachment, Outbox
from tests.cli.conftest import Run, assert_one_error_line
from tests.desk import Desk

ACME, BETA = "Acme Portugal Lda", "Beta Consulting"
#: Everything of Acme's that must leave no trace: name, addresses, what they and the engineers wrote,
#: a file's name and bytes, the person they copied.
ACME_TRACES = (
    ACME,
    "ops@acme.example",
    "ana@social.example",
    "boss@acme.example",
    "The NAS does not boot",
    "It beeps three times",
    "probably the disk",
    "Please try another disk",
    "Disk replaced",
    "Shares are slow",
    "Check the SMB signing",
    "Also the printer jams",
    "Lost in translation",
    "Your 3 credits lapse soon",
    "nas-photo.png",
    "NASPHOTO-BYTES",
    "jam-photo.jpg",
)
BETA_TRACES = (
    BETA,
    "it@beta.example",
    "Printer offline at Beta",
    "Restart the spooler",
    "Another thing for Beta",
    "beta-log.txt",
    "Beta: 1 left",
)


def _broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    raise RuntimeError("boom")


def _acme_and_beta(engine, db_url, clock, monkeypatch) -> Desk:  # noqa: ANN001
    """Acme: a resolved case (messages both ways, a note, a file, a person copied) and a closed one,
    a draft with a file waiting, a message whose handling failed, a reminder not sent yet, an alert
    naming it; two more accounts. Beta: a resolved case with a file, a draft and a reminder of its own."""
    desk = Desk(engine, db_url, clock)
    acme = desk.customer(ACME, credits=3)
    beta = desk.customer(BETA, credits=2)
    desk.say(ACME, "open The NAS does not boot")
    desk.say(ACME, "It beeps three times")
    desk.engineer("/note 1 probably the disk")
    desk.engineer("/reply 1 Please try another disk")
    desk.engineer("/resolve 1 Disk replaced")
    desk.say(ACME, "open Shares are slow")
    desk.engineer("/reply 2 Check the SMB signing")
    desk.say(ACME, "close 2")
    desk.say(ACME, "Also the printer jams")
    with monkeypatch.context() as broken:
        broken.setattr(incidents, "open_incident", _broken)
        assert "Sorry, something went wrong" in desk.say(ACME, "open Lost in translation")
    desk.say(BETA, "open Printer offline at Beta")
    desk.engineer("/reply 3 Restart the spooler")
    desk.engineer("/resolve 3")
    desk.say(BETA, "Another thing for Beta")
    now = clock()
    with transaction(engine) as session:
        found = {c.id: c for c in session.scalars(sa.select(Customer))}
        customers.add_email(session, found[acme], "ops@acme.example", now)
        customers.link_identity(session, found[acme], "mastodon", "ana@social.example", now)
        customers.add_email(session, found[beta], "it@beta.example", now)
        copies.add(session, session.get(Incident, 1), "email", "boss@acme.example", "ops@acme.example", now)
        waiting_for = session.scalars(sa.select(Identity.id).where(Identity.address == ACME)).one()
        for incident_id, name, data, waiting in (
            (1, "nas-photo.png", b"NASPHOTO-BYTES", None),
            (None, "jam-photo.jpg", b"JAM", waiting_for),
            (3, "beta-log.txt", b"BETA-LOG", None),
        ):
            session.add(
                IncidentAttachment(
                    incident_id=incident_id,
                    waiting_for=waiting,
                    channel="console",
                    message_id="m1",
                    name=name,
                    media_type="image/png",
                    size=len(data),
                    sha256="ab" * 32,
                    data=data,
                    created_at=now,
                )
            )
        for address, text in (("ops@acme.example", "Your 3 credits lapse soon"), ("it@beta.example", "Beta: 1 left")):
            outbox.enqueue(session, channel="email", kind="direct", recipient=address, text=text, now=now)
        # An alert naming Acme, about no case: someone at its domain wrote (`deskbot alerts` topic).
        colleague = customers.get_identity(session, "email", "joao@acme.example", None, now)
        strangers.colleague_wrote(Outgoing(session, now), desk.runtime.deployment, colleague, found[acme])
    return desk


Store = dict[str, dict[tuple, dict]]


def _store(engine) -> Store:  # noqa: ANN001
    """Every row of every table (SQLModel.metadata), by primary key."""
    with engine.connect() as connection:
        return {
            table.name: {
                tuple(row[c.name] for c in table.primary_key): dict(row)
                for row in connection.execute(sa.select(table)).mappings()
            }
            for table in SQLModel.metadata.sorted_tables
        }


def _mentions(row: dict, traces: tuple[str, ...]) -> set[str]:
    """Which of `traces` the row holds, in any column (case aside; bytes read as text)."""
    texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row.values()]
    return {t for t in traces if any(t.lower() in text.lower() for text in texts)}


def _holding(store: Store, traces: tuple[str, ...]) -> dict[str, set[str]]:
    """Which of `traces` each table holds."""
    found = {table: set().union(*(_mentions(row, traces) for row in rows.values())) for table, rows in store.items()}
    return {table: held for table, held in found.items() if held}


def _rows(store: Store, keep) -> set[tuple[str, tuple]]:  # noqa: ANN001 (a predicate on a row)
    return {(table, key) for table, rows in store.items() for key, row in rows.items() if keep(row)}


def _billing(cli: Run) -> list[tuple]:
    report = json.loads(cli("report", "billing", "--month", "2026-12", "--json").stdout)
    # By customer id: the report lists customers by name, and Acme's is "erased customer 1" after.
    figures = sorted((c["customer_id"], c["incidents"], c["cases"], c["amount"]) for c in report["customers"])
    return [*figures, (report["total_incidents"], report["total_amount"])]


@pytest.fixture
def desk(engine, db_url, clock, monkeypatch) -> Desk:  # noqa: ANN001
    return _acme_and_beta(engine, db_url, clock, monkeypatch)


def test_no_trace_is_left_and_the_invoicing_records_stay(cli: Run, desk: Desk, engine) -> None:  # noqa: ANN001
    before, billed = _store(engine), _billing(cli)
    # The scenario really put Acme's data everywhere the erasure must reach.
    assert set(_holding(before, ACME_TRACES)) >= {
        "customer",
        "identity",
        "incident",
        "incidentmessage",
        "incidentattachment",
        "incidentevent",
        "draft",
        "incidentcopy",
        "outbox",
        "processedinbound",
    }

    result = cli("customers", "erase", ACME, "--yes")
    assert result.code == 0, result

    assert _holding(_store(engine), ACME_TRACES) == {}
    assert _billing(cli) == billed
    shown = json.loads(cli("customers", "show", "1", "--json").stdout)
    assert shown["name"] == "erased customer 1" and shown["identities"] == [] and shown["email"] is None
    assert [(c["number"], c["state"], c["chargeable"]) for c in shown["cases"]] == [
        (1, "resolved", True),
        (2, "closed", True),
    ]
    assert [(p["incidents"], p["used"]) for p in shown["credits"]["packs"]] == [(3, 2)]
    case = json.loads(cli("cases", "show", "1", "--json").stdout)
    assert case["subject"] == "case #1 (erased)"
    assert [(m["direction"], m["body"]) for m in case["messages"]] == [
        ("in", "[erased]"),
        ("in", "[erased]"),
        ("note", "[erased]"),
        ("out", "[erased]"),
        ("in", "[erased]"),  # the text added to the resolved case
    ]
    assert [(e["action"], e["actor"]) for e in case["history"]][0] == ("opened", "erased customer 1")
    with transaction(engine) as session:
        reminder = session.scalars(sa.select(Outbox).where(Outbox.channel == "email", Outbox.text == "[erased]")).one()
    assert (reminder.state, reminder.recipient) == ("failed", None)  # never sent now

    # What deskbot cannot erase is named: the case topics as they were, and what was sent.
    assert "Erased: customer 1 is now 'erased customer 1'." in result.stdout
    assert "#1 Acme Portugal Lda: The NAS does not boot" in result.stdout
    assert "#2 Acme Portugal Lda: Shares are slow" in result.stdout
    assert "stream 'support'" in result.stdout and "stay with their recipients" in result.stdout


def test_everything_not_acmes_stays_byte_for_byte(cli: Run, desk: Desk, engine) -> None:  # noqa: ANN001
    before = _store(engine)
    assert cli("customers", "erase", ACME, "--yes").code == 0
    after = _store(engine)

    changed = {
        (table, key) for table, rows in before.items() for key, row in rows.items() if after[table].get(key) != row
    }
    # Only rows that held Acme's data, or belong to Acme or to Acme's cases (#1, #2), changed or went.
    acmes = _rows(
        before,
        lambda row: _mentions(row, ACME_TRACES) or row.get("customer_id") == 1 or row.get("incident_id") in (1, 2),
    )
    assert changed and changed <= acmes
    assert all(after[table].keys() <= rows.keys() for table, rows in before.items())  # and nothing new
    betas = _rows(before, lambda row: _mentions(row, BETA_TRACES))
    assert {table for table, _ in betas} >= {"customer", "identity", "incident", "incidentmessage", "draft", "outbox"}
    assert not betas & changed


def test_an_open_case_is_refused_and_nothing_changes(cli: Run, desk: Desk, engine) -> None:  # noqa: ANN001
    desk.say(ACME, "open The fan is loud")
    before = _store(engine)
    assert_one_error_line(cli("customers", "erase", ACME, "--yes"), "close or resolve #4 first", "nothing was erased")
    assert_one_error_line(cli("customers", "erase", "ops@acme.example", "--dry-run"), "close or resolve #4 first")
    assert _store(engine) == before


def test_dry_run_and_a_declined_question_change_nothing(cli: Run, desk: Desk, engine) -> None:  # noqa: ANN001
    before = _store(engine)
    dry = cli("customers", "erase", "1", "--dry-run")
    assert dry.code == 0, dry
    assert dry.stdout.splitlines()[:6] == [
        f"Customer 1 '{ACME}': erasing removes",
        "  accounts: console Acme Portugal Lda, email ops@acme.example, mastodon ana@social.example",
        "  cases #1, #2: 7 message texts, 2 files, their subjects and topic names",
        "  also: 1 draft, 1 activation code, 1 person copied, 1 failed message's text",
        "  outbox: 2 unsent messages (cancelled), 23 sent messages' texts and recipients",
        "Kept for invoicing: cases #1, #2 (dates, states, severity, charge, pack), 1 credit pack.",
    ]
    assert "Dry run: nothing was changed." in dry.stdout
    assert _store(engine) == before

    declined = cli("customers", "erase", ACME, input="n\n")
    assert_one_error_line(declined, "nothing was erased")
    assert "Erase customer 1 for good? [y/N]" in declined.stdout
    assert _store(engine) == before

    confirmed = cli("customers", "erase", ACME, input="y\n")
    assert confirmed.code == 0, confirmed
    assert _holding(_store(engine), ACME_TRACES) == {}


def test_an_unknown_customer(cli: Run) -> None:
    assert_one_error_line(cli("customers", "erase", "Nobody", "--yes"), "no customer 'Nobody'")


def test_erasing_again_finds_nothing_more(cli: Run, desk: Desk, engine) -> None:  # noqa: ANN001
    assert cli("customers", "erase", ACME, "--yes").code == 0
    once = _store(engine)
    again = cli("customers", "erase", "erased customer 1", "--yes")
    assert again.code == 0, again
    assert "  accounts: none" in again.stdout
    assert _store(engine) == once
