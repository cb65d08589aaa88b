"""What an email customer reads when an engineer answers in Zulip's markup with links into the
organisation (SPEC §2): the whole path, the fake Zulip over HTTP and the tests' mail servers."""

from __future__ import annotations

from adapters.zulip.plain import for_customer
from tests.fakes.zulip import FakeZulip
from tests.mail.servers import MailServers
from tests.zulip import conftest as zulip_side
from tests.zulip.test_plain import topic_link

from .channel_bot import from_bot
from .test_files_with_zulip import case_opened_by_mail, desk, in_topic, zulip  # noqa: F401 (fixtures)

#: Another customer's case, in the topic Zulip names after their subject.
BETA = "#2 Beta Corp: glob *.log fails after upgrade"


def test_an_engineers_reply_reaches_the_email_customer_as_plain_text_naming_no_other_case(
    mail: MailServers,
    zulip: FakeZulip,  # noqa: F811 (the fixture imported above)
    desk,  # noqa: ANN001, F811
) -> None:
    ana, topic = case_opened_by_mail(mail, zulip)
    words = (
        f"See {topic_link(BETA)} and #**support>{BETA}** for details, @**Erin Engineer|9** knows.\n"
        "Run this:\n```bash\nrm -rf /tmp/cache\n```\n"
        "**Ana**, it is *one* step, not ~~two~~ :tada: (`lpq`)\n\n"
        "> it jammed\n\n| tray | paper |\n|---|---|\n| 1 | A4 |"
    )
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, "/reply " + words)
    (reply,) = ana.wait_for(lambda m: from_bot(m) and "Run this" in m.get_body(("plain",)).get_content())
    body = reply.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert (
        "[#1] See and for details, Erin Engineer knows.\nRun this:\n\n    rm -rf /tmp/cache\n\n"
        "Ana, it is one step, not two 🎉 (lpq)\n\n> it jammed\n\ntray | paper\n1 | A4"
    ) in body
    for internal in ("Beta", "glob", "support", "narrow", "|9", "**", "```", "~~", "`", "|---"):
        assert internal not in body
    # The topic shows what the engineer wrote; a customer on Zulip reads it without the links.
    assert in_topic(zulip, f"#**support>{BETA}**")
    assert "Beta" not in for_customer(words, zulip.url, on_zulip=True)


def test_a_reply_of_nothing_but_links_into_zulip_is_refused_not_sent_empty(
    mail: MailServers,
    zulip: FakeZulip,  # noqa: F811 (the fixture imported above)
    desk,  # noqa: ANN001, F811
) -> None:
    ana, topic = case_opened_by_mail(mail, zulip)
    before = len(ana.messages())
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, f"/reply {topic_link(BETA)} @**all**")
    assert in_topic(zulip, "Nothing of that reply would reach the customer")
    zulip.post_stream_message(zulip_side.ENGINEER, zulip_side.STREAM, topic, "/reply Try tray 2.")
    ana.wait_for(lambda m: from_bot(m) and "Try tray 2." in m.get_body(("plain",)).get_content())
    assert len(ana.messages()) == before + 1  # the refused one never went
