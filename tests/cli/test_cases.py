"""`deskbot cases list | show`, on cases made through the real router and services."""

from __future__ import annotations

import json

from tests.cli.conftest import Run, assert_one_error_line
from tests.desk import Desk


def _two_cases(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=3)
    desk.customer("Beta", credits=1)
    desk.say("Acme", "open The NAS does not boot")
    desk.say("Acme", "It beeps three times")
    desk.engineer("/note 1 probably the disk")
    desk.engineer("/reply 1 Please try another disk")
    desk.engineer("/resolve 1 Disk replaced")
    desk.say("Beta", "open Shares are slow")


def test_list(cli: Run, engine, db_url, clock) -> None:  # noqa: ANN001
    assert cli("cases", "list").stdout.startswith("No cases yet.")
    _two_cases(engine, db_url, clock)

    listed = cli("cases", "list")
    assert listed.code == 0, listed
    assert "The NAS does not boot" in listed.stdout and "Shares are slow" in listed.stdout

    records = json.loads(cli("cases", "list", "--json").stdout)
    assert [(r["number"], r["customer"], r["state"]) for r in records] == [(2, "Beta", "open"), (1, "Acme", "resolved")]
    assert records[0]["due_at"] is not None and records[1]["chargeable"] is True

    only_open = json.loads(cli("cases", "list", "--state", "open", "--json").stdout)
    assert [r["number"] for r in only_open] == [2]
    assert cli("cases", "list", "--state", "closed").stdout.startswith("No closed cases.")
    assert_one_error_line(cli("cases", "list", "--state", "lost"), "--state", code=2)


def test_show_has_messages_and_history(cli: Run, engine, db_url, clock) -> None:  # noqa: ANN001
    _two_cases(engine, db_url, clock)

    shown = cli("cases", "show", "1")
    assert shown.code == 0, shown
    for text in (
        "#1 The NAS does not boot",
        "It beeps three times",
        "probably the disk",
        "Please try another disk",
        "resolved",
        "Disk replaced",
    ):
        assert text in shown.stdout

    document = json.loads(cli("cases", "show", "1", "--json").stdout)
    assert document["customer"] == "Acme" and document["state"] == "resolved"
    assert [(m["direction"], m["body"]) for m in document["messages"]] == [
        ("in", "The NAS does not boot"),
        ("in", "It beeps three times"),
        ("note", "probably the disk"),
        ("out", "Please try another disk"),
    ]
    actions = [(e["action"], e["to_state"]) for e in document["history"]]
    assert actions[0] == ("opened", "open") and actions[-1][1] == "resolved"
    assert all(e["actor"] and e["at"] for e in document["history"])


def test_show_unknown_case(cli: Run) -> None:
    assert_one_error_line(cli("cases", "show", "99"), "no case #99")
    assert_one_error_line(cli("cases", "show", "x"), "'N'", code=2)


def test_what_customers_wrote_cannot_drive_the_terminal(cli: Run, engine, db_url, clock) -> None:  # noqa: ANN001
    # Escape sequences (colour, an OSC window title, clearing the screen), a carriage return that
    # writes over the line, a bell and a bidi override, in a name, a subject, a body and a file name.
    hostile = "\x1b[31mRED\x1b[0m \x1b]0;pwned\x07title \x1b[2J\rover\u202eevil"
    desk = Desk(engine, db_url, clock)
    name = "Acme\x1b[5m Lda"
    desk.customer(name, credits=1)
    desk.say(name, f"open Printer {hostile}")
    desk.say(name, f"line one\n\tindented {hostile}\nline three")
    desk.engineer(f"/resolve 1 fixed {hostile}")

    outputs = {
        "show": cli("cases", "show", "1"),
        "export": cli("cases", "export", "1"),
        "list": cli("cases", "list"),
        "customers show": cli("customers", "show", "1"),
        "customers list": cli("customers", "list"),
    }
    for command, result in outputs.items():
        assert result.code == 0, (command, result)
        for control in ("\x1b", "\x07", "\r", "\u202e"):
            assert control not in result.output, (command, control, result.output)
        assert "Acme[5m Lda" in result.stdout, command  # what is left of a sequence without its ESC is inert
    assert "#1 Printer [31mRED[0m ]0;pwnedtitle [2J\n" in outputs["show"].stdout  # the subject
    # Line breaks and tabs stay (the export fences the text line by line: the carriage return ends one).
    body = "line one\n\tindented [31mRED[0m ]0;pwnedtitle [2J\noverevil\nline three"
    assert f"```text\n{body}\n```" in outputs["export"].stdout
    # JSON escapes them: what was stored is given whole.
    document = json.loads(cli("cases", "show", "1", "--json").stdout)
    assert document["messages"][1]["body"] == f"line one\n\tindented {hostile}\nline three"
