"""`/help <command>` over the real Zulip channel and the fake server: one command's details as
posted, with the usage as code and nothing else active; an unknown word echoed inert."""

from __future__ import annotations

from tests.fakes.zulip import FakeZulip
from tests.zulip.conftest import ALICE, ENGINEER
from tests.zulip.markdown_check import active_markup
from tests.zulip.test_end_to_end import ZulipDesk


def test_engineer_help_for_one_command_and_an_unknown_word_over_zulip(desk: ZulipDesk, fake: FakeZulip) -> None:
    desk.customer("Alice Customer", ALICE, credits=1)
    desk.start()
    fake.post_dm(ENGINEER, "/help credits grant")
    grant = desk.wait_dm(ENGINEER, "add a pack of n credits").content
    assert grant.startswith("`/credits grant <customer> <n> [purchased]` — add a pack of n credits")
    assert "In Portuguese: `/creditos`" in grant and "For example: `/credits grant <customer> 3`" in grant
    fake.post_dm(ENGINEER, "/ajuda responder")
    reply = desk.wait_dm(ENGINEER, "send text to the customer").content
    assert reply.startswith("`/reply <number> <text>`") and "`/responder`" in reply
    fake.post_dm(ENGINEER, "/help @**all**")
    unknown = desk.wait_dm(ENGINEER, "Unknown command").content
    assert "@**all**" in unknown and "Usage: /help [command] [subcommand]" in unknown
    fake.post_dm(ALICE, "help ABRIR")
    customer = desk.wait_dm(ALICE, "open a new incident").content
    assert customer.startswith("open [text] — ") and "In Portuguese: abrir" in customer
    for posted in (grant, reply, unknown, customer):
        assert active_markup(posted) == [], posted
