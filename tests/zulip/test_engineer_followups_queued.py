"""A `/reply` queued while the customer's channel is down, sent from the case topic written in other
capitals (the same topic to Zulip): the line that says it is queued is posted once, in the case topic,
not a second time "where the engineer wrote". The whole bot with Zulip and Mastodon, as
tests/zulip/test_answers_not_out_yet.py runs it (SQLite and PostgreSQL)."""

from __future__ import annotations

from bot.runtime import Runtime
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.zulip import FakeZulip
from tests.mastodon.conftest import wait_until
from tests.zulip.test_answers_not_out_yet import (  # noqa: F401 (fixtures)
    QUEUED,
    customer_got,
    desk,
    engineer,
    in_topic,
    mastodon,
    open_case,
    topic_lines,
    zulip,
)


def test_a_queued_reply_from_the_topic_in_other_capitals_is_said_once(
    mastodon: FakeMastodon,  # noqa: F811 (the fixtures imported above)
    zulip: FakeZulip,  # noqa: F811
    desk: Runtime,  # noqa: F811
) -> None:
    topic = open_case(mastodon, zulip)
    mastodon.fail_during(600, status=None)
    mastodon.disconnect_streams()
    wait_until(lambda: "mastodon unreachable" in desk.ready()[1], 30)
    engineer(zulip, topic.upper(), "/reply Unplug it, then plug it back in.")
    in_topic(zulip, "Unplug it, then plug it back in.")
    in_topic(zulip, QUEUED)
    engineer(zulip, topic.upper(), "/note waiting for mastodon")  # answered after the reply's lines
    wait_until(lambda: any("Note saved on #1." in line for line in topic_lines(zulip, topic.upper())), 15)
    assert topic_lines(zulip, topic).count(QUEUED) == 1
    assert QUEUED not in topic_lines(zulip, topic.upper())
    assert not customer_got(mastodon, "Unplug it")
