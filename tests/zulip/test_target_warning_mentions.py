"""The response-target warnings in a case topic notify the case's assignee with a real Zulip mention
(`@**Full Name|id**`, built by the Zulip channel), through the whole bot over the fake Zulip; an
unassigned case's, and one whose assignee Zulip cannot place, mention nobody (never a broken mention).

Runs on SQLite and PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

import re

import pytest

from tests.zulip.conftest import ALICE, ENGINEER, STREAM
from tests.zulip.test_end_to_end import TOPIC, ZulipDesk, open_case

COLLEAGUE = "other@example.com"  # in the desk's DESKBOT_ENGINEERS
MENTION = re.compile(r"@_?\*\*")


def warned(desk: ZulipDesk, assign: str | None) -> tuple[str, str]:
    """A case opened Wednesday 10:00 (due Friday 10:00), assigned by `/assign <assign>` in its topic:
    the warning posted at Thursday 17:30 and the notice posted once the target is missed."""
    desk.customer("Alice Customer", ALICE, credits=2)
    runtime = desk.start()
    open_case(desk)
    if assign is not None:
        desk.fake.post_stream_message(ENGINEER, STREAM, TOPIC, f"/assign {assign}")
        desk.wait_topic("#1 is assigned to")
    desk.clock.advance(days=1, hours=7, minutes=30)  # Thursday 17:30: 2.5 business hours left
    runtime.watch_once()
    warning = desk.wait_topic("🟠 Response due").content
    desk.clock.advance(hours=16, minutes=31)  # Friday 10:01
    runtime.watch_once()
    missed = desk.wait_topic("🔴 Response target missed").content
    return warning, missed


def test_the_assignees_warnings_mention_them(desk: ZulipDesk) -> None:
    warning, missed = warned(desk, "me")
    mention = f"@**Erin Engineer|{desk.fake.user(ENGINEER).user_id}**"
    assert warning.startswith(
        "🟠 Response due Friday, 4 December 2026 at 10:00 (Lisbon time): 2 h 30 min of service time left."
    )
    assert warning.endswith(f"(Severity 3, normal.) {mention}")
    assert missed.startswith("🔴 Response target missed") and missed.endswith(f" {mention}")
    assert len(MENTION.findall(warning)) == len(MENTION.findall(missed)) == 1


def test_an_assignee_who_never_wrote_is_looked_up_on_zulip(desk: ZulipDesk) -> None:
    """Assigned by address, by a colleague: the bot has never seen them write (`GET /users/{email}`)."""
    desk.fake.add_user(COLLEAGUE, "Olga Other")
    warning, missed = warned(desk, COLLEAGUE)
    mention = f"@**Olga Other|{desk.fake.user(COLLEAGUE).user_id}**"
    assert warning.endswith(f"(Severity 3, normal.) {mention}") and missed.endswith(f" {mention}")


@pytest.mark.parametrize("full_name", [None, "Olga *Star* Other"], ids=["no-such-account", "name-with-markup"])
def test_an_assignee_zulip_cannot_place_is_not_mentioned(desk: ZulipDesk, full_name: str | None) -> None:
    """No account with the address, or a name `@**…**` cannot carry: the warning as for nobody."""
    if full_name is not None:
        desk.fake.add_user(COLLEAGUE, full_name)
    warning, missed = warned(desk, COLLEAGUE)
    assert warning.endswith("(Severity 3, normal.)") and missed.endswith("(Severity 3, normal.)")
    assert not MENTION.search(warning) and not MENTION.search(missed)


def test_an_unassigned_cases_warnings_mention_nobody(desk: ZulipDesk) -> None:
    warning, missed = warned(desk, None)
    assert warning.endswith("(Severity 3, normal.)") and missed.endswith("(Severity 3, normal.)")
    assert "@" not in warning and "@" not in missed
