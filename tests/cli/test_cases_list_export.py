"""`deskbot cases list` filters and limits, in the order cases are worked (by severity, then due time,
then newest first: issue 13), and `deskbot cases export` (issue 15, item 8).

Cases are made through the real router (the `Desk` harness) at times around the real clock, since
`--overdue` compares with the time the command runs.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from adapters.channel import Attachment
from adapters.console import console_line
from storage.db import transaction
from storage.models import Identity
from tests.cli.conftest import Run, assert_one_error_line
from tests.conftest import FakeClock
from tests.desk import Desk


@pytest.fixture
def three_cases(engine, db_url) -> Desk:  # noqa: ANN001
    """#1 Acme's, open and overdue; #2 Beta's, answered and resolved; #3 Beta's, open and due later."""
    clock = FakeClock(datetime.now(UTC) - timedelta(days=40))
    desk = Desk(engine, db_url, clock, DESKBOT_SERVICE_HOURS="mon-sun 00:00-24:00", DESKBOT_HOLIDAYS="none")
    desk.customer("Acme", credits=3)
    desk.customer("Beta", credits=3)
    desk.say("Acme", "open The printer jams")
    desk.say("Beta", "open Shares are slow")
    desk.say("Beta", "The log says ```EIO``` and then ````more````")
    desk.engineer("/note 2 probably the disk")
    desk.engineer("/reply 2 Please try another disk")
    desk.engineer("/resolve 2 Disk replaced")
    clock.advance(days=41)
    desk.say("Beta", "open Backups fail")
    return desk


def _numbers(result) -> list[int]:  # noqa: ANN001
    assert result.code == 0, result
    return [record["number"] for record in json.loads(result.stdout)]


def test_list_by_due_time_with_filters(cli: Run, three_cases: Desk) -> None:
    # One severity (3): the overdue case first, then the one due later, then the resolved one (no due time).
    assert _numbers(cli("cases", "list", "--json")) == [1, 3, 2]
    assert _numbers(cli("cases", "list", "--customer", "Beta", "--json")) == [3, 2]
    acme = json.loads(cli("cases", "list", "--json").stdout)[0]["customer_id"]
    assert _numbers(cli("cases", "list", "--customer", str(acme), "--json")) == [1]
    assert _numbers(cli("cases", "list", "--overdue", "--json")) == [1]
    assert _numbers(cli("cases", "list", "--state", "open", "--json")) == [1, 3]
    assert _numbers(cli("cases", "list", "--state", "open", "--customer", "Beta", "--json")) == [3]
    assert _numbers(cli("cases", "list", "--overdue", "--customer", "Beta", "--json")) == []

    text = cli("cases", "list")
    assert text.code == 0, text
    assert text.stdout.index("printer") < text.stdout.index("Backups fail") < text.stdout.index("Shares are slow")
    assert text.stderr == ""
    assert cli("cases", "list", "--overdue", "--customer", "Beta").stdout.startswith("No cases match.")


def test_list_by_severity_first(cli: Run, three_cases: Desk) -> None:
    assert "now has severity 1 (critical)" in three_cases.say("Beta", "severity 3 1")
    listed = json.loads(cli("cases", "list", "--json").stdout)
    assert [(r["number"], r["severity"]) for r in listed] == [(3, 1), (1, 3), (2, 3)]
    assert _numbers(cli("cases", "list", "--severity", "1", "--json")) == [3]
    assert _numbers(cli("cases", "list", "--severity", "3", "--state", "open", "--json")) == [1]
    assert _numbers(cli("cases", "list", "--severity", "4", "--json")) == []
    assert cli("cases", "list", "--severity", "4").stdout.startswith("No cases match.")
    text = cli("cases", "list").stdout
    assert "1 (critical)" in text and text.index("Backups fail") < text.index("printer")
    shown = cli("cases", "show", "3")
    assert shown.code == 0 and "severity: 1 (critical)" in shown.stdout
    assert json.loads(cli("cases", "show", "3", "--json").stdout)["severity"] == 1
    assert "- Severity: 1 (critical)" in cli("cases", "export", "3").stdout
    assert json.loads(cli("cases", "export", "3", "--json").stdout)["severity"] == 1


def test_list_limit(cli: Run, three_cases: Desk) -> None:
    assert _numbers(cli("cases", "list", "--limit", "2", "--json")) == [1, 3]
    limited = cli("cases", "list", "--limit", "1")
    assert limited.code == 0, limited
    assert "printer" in limited.stdout and "Backups fail" not in limited.stdout
    assert "The first 1 of 3 cases" in limited.stderr

    help_text = " ".join(cli("cases", "list", "--help").stdout.split())
    assert "by severity, then the next response due" in help_text and "--limit" in help_text
    assert "default: 50" in help_text and "--severity" in help_text


def test_list_bad_input_is_one_line(cli: Run, three_cases: Desk) -> None:
    assert_one_error_line(cli("cases", "list", "--customer", "Nobody"), "no customer 'Nobody'")
    assert_one_error_line(cli("cases", "list", "--limit", "0"), "--limit", code=2)
    assert_one_error_line(cli("cases", "list", "--limit", "many"), "--limit", code=2)
    assert_one_error_line(cli("cases", "list", "--severity", "5"), "--severity", code=2)
    assert_one_error_line(cli("cases", "list", "--severity", "high"), "--severity", code=2)


def test_list_default_limit_is_fifty(cli: Run, engine, db_url) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, FakeClock(datetime.now(UTC)), DESKBOT_SERVICE_HOURS="mon-sun 00:00-24:00")
    for n in range(52):
        desk.customer(f"Customer {n}", credits=1)
        desk.say(f"Customer {n}", f"open Question {n}")
    shown = _numbers(cli("cases", "list", "--json"))
    assert shown == list(range(52, 2, -1))


def test_export_markdown(cli: Run, three_cases: Desk) -> None:
    exported = cli("cases", "export", "2")
    assert exported.code == 0, exported
    assert exported.stderr == ""
    md = exported.stdout
    assert md.startswith("# Case #2: Shares are slow\n")
    assert "- Customer: Beta" in md and "- State: resolved" in md
    conversation = md[md.index("## Conversation") : md.index("## History")]
    kinds = [line.split(" · ")[1] for line in conversation.splitlines() if line.startswith("### ")]
    assert kinds == ["customer", "customer", "internal note", "reply to the customer"]
    # Customer text is kept verbatim inside a fence that its own backtick runs cannot close.
    assert "`````text\nThe log says ```EIO``` and then ````more````\n`````" in conversation
    assert "Please try another disk" in conversation and "probably the disk" in conversation
    history = md[md.index("## History") :]
    assert "opened (→ open)" in history and "(open → resolved): Disk replaced" in history


def test_export_json_is_one_document(cli: Run, three_cases: Desk) -> None:
    by_format = cli("cases", "export", "2", "--format", "json")
    assert by_format.code == 0, by_format
    document = json.loads(by_format.stdout)
    assert json.loads(cli("cases", "export", "2", "--json").stdout) == document
    assert document["number"] == 2 and document["customer"] == "Beta" and document["state"] == "resolved"
    assert [(m["direction"], m["body"]) for m in document["messages"]] == [
        ("in", "Shares are slow"),
        ("in", "The log says ```EIO``` and then ````more````"),
        ("note", "probably the disk"),
        ("out", "Please try another disk"),
    ]
    assert [e["action"] for e in document["history"]][0] == "opened"
    assert document["history"][-1]["to_state"] == "resolved"


def test_export_bad_input_is_one_line(cli: Run, three_cases: Desk) -> None:
    assert_one_error_line(cli("cases", "export", "99"), "no case #99")
    assert_one_error_line(cli("cases", "export", "2", "--format", "pdf"), "--format", code=2)
    assert_one_error_line(cli("cases", "export", "two"), "'N'", code=2)
    assert_one_error_line(cli("cases", "export"), "N", code=2)


def test_show_and_export_list_the_files(cli: Run, engine, db_url) -> None:  # noqa: ANN001
    """Issue 14, item 6: a case's files (name, type, size, SHA-256; a refused one with its limit)."""
    desk = Desk(engine, db_url, FakeClock(datetime.now(UTC)))
    desk.customer("Acme", credits=3)
    png = Attachment("shot.png", "image/png", 70, "ab" * 32, data=b"x" * 70)
    big = Attachment("huge.iso", "application/octet-stream", 30 * 1024 * 1024, None, refused_over=25 * 1024 * 1024)
    line = console_line("Acme", "open See the screenshot", "f1", datetime.now(UTC))
    desk.runtime.intake.deliver(dataclasses.replace(line, attachments=(png, big)))
    desk.runtime.dispatcher.drain("console")
    shown = cli("cases", "show", "1")
    assert shown.code == 0, shown
    assert "shot.png" in shown.stdout and "ab" * 32 in shown.stdout and "huge.iso" in shown.stdout
    markdown = cli("cases", "export", "1").stdout
    assert "## Files" in markdown and "image/png, 70 bytes, sha256 " + "ab" * 32 in markdown
    assert "30.0 MB, not kept: over the 25.0 MB limit" in markdown
    files = json.loads(cli("cases", "export", "1", "--json").stdout)["files"]
    assert [(f["name"], f["sha256"], f["refused_over"]) for f in files] == [
        ("shot.png", "ab" * 32, None),
        ("huge.iso", None, 25 * 1024 * 1024),
    ]


def test_show_and_export_name_the_customers_accounts(cli: Run, three_cases: Desk) -> None:
    """A customer's account is stored by its address (a Zulip user id, "10"): people read its name."""
    with transaction(three_cases.engine) as session:
        for identity in session.scalars(select(Identity).where(Identity.address == "Beta")):
            identity.display_name = "Bea Beta"
    md = cli("cases", "export", "2").stdout
    assert "· customer · Bea Beta (console Beta) via console" in md
    assert "· Bea Beta (console Beta) · opened (→ open)" in md
    shown = cli("cases", "show", "2").stdout
    assert "Bea Beta (console" in shown
    # JSON keeps the address as stored.
    document = json.loads(cli("cases", "export", "2", "--format", "json").stdout)
    assert {m["author"] for m in document["messages"] if m["direction"] == "in"} == {"Beta"}
