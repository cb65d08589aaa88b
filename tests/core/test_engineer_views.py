"""Customer and stranger text in engineer views stays inert by Zulip's rules (console desk, both databases).

Every engineer view (`/case`, `/cases`, `/customer show|code|add`, `/credits
grant`, `/contacts`, `/assign`) is read back from the outbox, as the Zulip channel
would post it, and judged with tests/zulip/markdown_check.py. (The case-topic
header above a customer's words is written by the channel: tests/zulip.)
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from adapters.console import ENGINEER
from adapters.markup import inert
from bot.services import customers
from storage.db import transaction
from storage.models import Customer, Outbox
from tests.desk import Desk
from tests.zulip.markdown_check import HOSTILE, active_markup


def engineer_rows(desk: Desk, after: int = 0) -> list[Outbox]:
    """What the bot said to the engineer and in case topics, in order."""
    with transaction(desk.engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.id > after).order_by(Outbox.id)).all()
        return [r for r in rows if r.kind == "topic" or r.recipient == ENGINEER]


def last_row_id(desk: Desk) -> int:
    with transaction(desk.engine) as session:
        return max(session.scalars(select(Outbox.id)).all(), default=0)


def one_line(text: str) -> str:
    return " ".join("".join(c for c in text if c.isspace() or c.isprintable()).split())


@pytest.mark.parametrize("hostile", HOSTILE)
def test_every_engineer_view_keeps_customer_text_inert(engine, db_url, clock, hostile: str) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    account = f"{hostile} Ltd"
    customer = desk.customer(account, credits=3)  # its console account is its name
    assert "Incident #1 is open" in desk.say(account, f"open {hostile}")
    desk.say(f"stranger {hostile}", "hello")  # a contact whose name and address are theirs
    start = last_row_id(desk)
    desk.engineer("/assign 1 me")
    desk.engineer(f"/resolve 1 {hostile}")
    desk.engineer(f"/waive 1 {hostile}")  # a reason in the history, shown by `/case 1`
    views = {
        command: desk.engineer(command)
        for command in (
            "/case 1",
            "/cases all",
            "/cases unassigned",
            f"/customer show {customer}",
            f"/customer code {customer}",
            f"/credits grant {customer} 1",
            "/contacts",
            f"/customer show {hostile}",  # "No customer …", echoing what was typed
        )
    }
    rows = engineer_rows(desk)
    assert len(engineer_rows(desk, start)) >= len(views) + 2
    for row in rows:
        assert active_markup(row.text) == [], (row.text, active_markup(row.text))
    subject = one_line(hostile.splitlines()[0])
    # The case topic's header above the customer's words is the channel's to write, inert
    # (tests/zulip/test_relay.py): the core hands over who said it, as data, and no text.
    [mirrored] = [r for r in rows if r.said is not None]
    assert mirrored.text == "" and json.loads(mirrored.said)["name"] == " ".join(account.split())
    for command in ("/case 1", "/cases all", f"/customer show {customer}"):
        assert inert(subject) in views[command], (command, views[command])
    assert inert(one_line(account)) in views["/cases all"]  # whose case it is, as inert as the subject
    contacts = [r.text for r in rows if r.text.startswith("Unknown contacts")][-1]
    assert inert(f"console:stranger {hostile}") in contacts


def test_the_console_shows_plain_names_as_inline_code(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    acme = desk.customer("Acme", credits=1)
    desk.say("Acme", "open Printer on fire")
    assert "• #1 `Printer on fire` from `Acme` · severity 3 (normal) · open · due " in desk.engineer("/cases")
    assert "**#1** `Printer on fire`\n  customer: `Acme` (reads English) · state: open" in desk.engineer("/case 1")
    desk.say("Acme", "It is\n  still `burning`")
    desk.engineer("/reply 1 Unplug it")
    desk.engineer("/note 1 not for the customer")
    shown = desk.engineer("/case 1")
    assert "latest messages:" in shown and "not for the customer`" not in shown.split("latest messages:")[1]
    said = shown.split("latest messages:")[1].splitlines()[1:4]
    assert said[0].endswith("customer `Acme`: `Printer on fire`")
    assert said[1].endswith("customer `Acme`: `` It is still `burning` ``")  # one line, inert
    assert said[2].endswith("reply `engineer@console`: `Unplug it`")
    shown = desk.engineer(f"/customer show {acme}")
    assert "**`Acme`** (id 1)" in shown and "accounts: `console:Acme`" in shown
    assert "No customer `Nobody`." in desk.engineer("/customer show Nobody")


def test_a_customer_is_found_by_email_and_a_partial_name_is_only_suggested(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    desk.engineer("/customer add Beta Corp ops@beta.example")
    desk.engineer("/customer add Alphabet Beta")
    desk.engineer("/customer add 100% Gamma")
    assert "**`Beta Corp`** (id 1) `ops@beta.example`" in desk.engineer("/customer show OPS@Beta.example")
    with transaction(desk.engine) as session:  # another address of theirs (`deskbot customers email add`)
        customers.add_email(session, session.get(Customer, 1), "billing@beta.example", clock.now)
    assert "**`Beta Corp`** (id 1)" in desk.engineer("/customer show billing@beta.example")
    out = desk.engineer("/credits grant beta 2")
    assert "No customer `beta`. Did you mean `Alphabet Beta` (id 2), `Beta Corp` (id 1)?" in out
    assert "Pack" not in desk.engineer("/credits grant beta 2")  # suggested, never granted
    # A part of the email address is suggested as a part of the name is.
    assert "Did you mean `Beta Corp` (id 1)?" in desk.engineer("/customer show beta.example")
    # What was typed is text, not a pattern: `%` and `_` match themselves only.
    assert "Did you mean `100% Gamma` (id 3)?" in desk.engineer("/customer show 100%")
    out = desk.engineer("/customer show _")
    assert "No customer `_`." in out and "Did you mean" not in out
    for n in range(6):
        desk.engineer(f"/customer add Delta {n}")
    assert "`Delta 4` (id 8), …? Give the name in full or the id." in desk.engineer("/customer show delta")


# -- the function, and the judge it is tested with ---------------------------------------------

# (`inert` itself is property-tested in tests/zulip/test_markup.py.)


def test_the_judge_sees_what_would_act() -> None:
    for hostile in HOSTILE[:10]:
        assert active_markup(f"• #1 {hostile} · open"), hostile
    assert active_markup("/poll Which one?") and active_markup("x\n```spoiler\n@**all**\n```")
    assert active_markup("`a` @**all** `b`") == ["mention: @**all**"]
    assert active_markup("``x` @**all**") == ["mention: @**all**"]  # an unclosed span is no span
    assert active_markup("\\`@**all**`") == []  # after a backslash the span starts one later: still code
    assert active_markup("```text\n@**all**\n```") == []


def test_a_refused_customer_name_is_echoed_inert(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.engineer("/customer add @**all**")
    out = desk.engineer("/customer add @**all**")
    assert "A customer named `@**all**` already exists." in out


def test_a_grant_says_what_the_customer_has_and_warns_of_a_pack_that_gives_nothing_today(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)  # bought today (2 Dec 2026)
    out = desk.engineer("/credits grant Acme 3")
    assert (
        "Pack 2: 3 credits for `Acme`, bought 2 Dec 2026, valid until 2 Dec 2027 inclusive. `Acme` has 5 credits left."
        in out
    )
    assert "⚠️" not in out
    out = desk.engineer("/credits grant Acme 1 2025-12-01")  # the year mistyped: it ended yesterday
    assert "valid until 1 Dec 2026 inclusive. `Acme` has 5 credits left.\n  ⚠️ This pack has expired already" in out
    out = desk.engineer("/credits grant Acme 1 2026-12-03")
    assert "⚠️ This pack is not valid before 3 Dec 2026: the customer cannot use it until then." in out
    assert "1 Dec 2026" in desk.engineer("/customer show Acme")  # granted all the same, as asked


def test_engineers_are_told_when_the_customer_reads_portuguese(engine, db_url, clock) -> None:  # noqa: ANN001
    """`/reply` text reaches the customer as the engineer wrote it: the new case's line in its
    topic and `/case` say which language the customer reads."""
    desk = Desk(engine, db_url, clock)
    desk.customer("Cliente", credits=2, lang="pt")
    desk.customer("Acme", credits=2)
    out = desk.say("Cliente", "abrir O NAS não arranca")
    assert "📥 New case #1 from `Cliente`: `O NAS não arranca`" in out
    assert "(Lisbon time) · the customer reads Portuguese: `/reply` in Portuguese" in out
    assert "reads Portuguese" not in desk.say("Acme", "open The NAS does not boot")
    assert "customer: `Cliente` (reads Portuguese) · state: open" in desk.engineer("/case 1")
    assert "customer: `Acme` (reads English) · state: open" in desk.engineer("/case 2")


def test_an_empty_case_list_reads_naturally(engine, db_url, clock) -> None:  # noqa: ANN001
    desk = Desk(engine, db_url, clock)
    answers = {which: desk.engineer(f"/cases {which}") for which in ("open", "mine", "overdue", "unassigned", "all")}
    assert "No open cases." in answers["open"]
    assert "No open cases are assigned to you." in answers["mine"]
    assert "No overdue cases." in answers["overdue"]
    assert "No open cases are unassigned." in answers["unassigned"]
    assert "No cases yet." in answers["all"]
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Printer on fire")
    assert "No open cases are assigned to you." in desk.engineer("/cases mine")
    listing = desk.engineer("/cases unassigned")
    assert "unassigned open cases, by severity, then due time:" in listing and "Printer on fire" in listing
    desk.engineer("/assign 1 me")
    assert "your open cases, by severity, then due time:" in desk.engineer("/cases mine")
