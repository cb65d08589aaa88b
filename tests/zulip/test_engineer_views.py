"""Engineer views over the real Zulip channel: what strangers and customers wrote stays inert as posted.

The messages are read back from the fake server exactly as the bot posted
them (header and all) and judged by Zulip's rules
(tests/zulip/markdown_check.py).
"""

from __future__ import annotations

from tests.fakes.zulip import FakeZulip
from tests.zulip.conftest import ALICE, BOT, ENGINEER, STREAM
from tests.zulip.markdown_check import active_markup
from tests.zulip.test_end_to_end import ZulipDesk

HOSTILE_NAME = "@**all** @*support-team* [login](https://evil.example) ![x](https://evil.example/x.png) `"
HOSTILE_SUBJECT = "@**everyone** see [this](https://evil.example/a) $$\\href{https://evil.example}{x}$$ ``"


def test_contacts_case_cases_and_customer_show_post_nothing_active(desk: ZulipDesk, fake: FakeZulip) -> None:
    desk.customer(HOSTILE_NAME, ALICE, credits=2)
    stranger = fake.add_user("mallory@example.com", HOSTILE_NAME + " Mallory")
    desk.start()
    fake.post_dm(stranger.email, "hello?")
    desk.wait_dm(stranger.email, "I don't know this account yet")
    fake.post_dm(ALICE, f"open {HOSTILE_SUBJECT}")
    desk.wait_dm(ALICE, "Incident #1 is open")
    for command, expect in (
        ("/contacts", "Unknown contacts"),
        ("/case 1", "customer:"),
        ("/cases", "open cases"),
        ("/customer show 1", "credits left: 1"),
    ):
        fake.post_dm(ENGINEER, command)
        desk.wait_dm(ENGINEER, expect)
    posted = desk.dms_to(ENGINEER) + fake.sent_by(BOT, stream=STREAM)
    assert len(posted) >= 5
    for message in posted:
        assert active_markup(message.content) == [], message.content
    contacts = next(m.content for m in desk.dms_to(ENGINEER) if "Unknown contacts" in m.content)
    # A Zulip account is its user id (issue 13): that is what engineers see for it.
    assert "Mallory" in contacts and str(stranger.user_id) in contacts
    # The engineer wrote to the bot too, linked to no customer: an engineer is no unknown contact.
    assert f"zulip:{fake.user(ENGINEER).user_id}" not in contacts
