"""An outage after the channels have connected (issue 15, items 3 and 4): told once, not at every retry.

One `deskbot run` against both fakes, connected and answering. Then the platforms fail: first the
posts only (so replies wait in the outbox), then every request, with open connections cut, for
`OUTAGE_SECONDS`. Meanwhile `/readyz` must say which channels are down and `/metrics` must show
`deskbot_channel_up` 0 for them; the log must say so once per channel — not a warning at every
retry, every few seconds, as it did. After the recovery, one line per channel says it is back,
everything is delivered, and nothing is lost or doubled.
"""

from __future__ import annotations

import time

import pytest

from tests.fakes.mastodon import Fault as MastodonFault
from tests.fakes.zulip import Fault as ZulipFault

from .conftest import BotProcess, Fakes, drill_store, open_incidents, wait_until
from .test_metrics_scrape import metric as _metric

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: Long enough for both channels to be declared down (Mastodon notices after its polls fail for
#: 15 s), short of the one-minute reminder.
OUTAGE_SECONDS = 35.0
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def test_an_outage_is_told_once_per_channel_and_readyz_and_metrics_name_the_channels_down(
    fakes: Fakes, make_database, bots
) -> None:  # noqa: ANN001
    url = make_database("postgresql")
    engine, people, ledger = drill_store(fakes, url)
    bot: BotProcess = bots("deskbot", fakes.env(url))
    bot.start().wait_ready()
    open_incidents(fakes, engine, people, ledger)
    status, metrics = bot.get("/metrics")
    assert status == 200
    assert _metric(metrics, "deskbot_channel_up", channel="zulip") == 1.0
    assert _metric(metrics, "deskbot_channel_up", channel="mastodon") == 1.0
    before = len(bot.log_records())

    # The posts fail first, so that replies wait in the outbox …
    fakes.zulip.faults.add(ZulipFault("status", status=503, body="json", path="/messages", method="POST"))
    fakes.mastodon.faults.add(MastodonFault(status=503, method="POST", path_prefix="/api/v1/statuses"))
    burst = [fakes.dm(person, "plain") for person in people]
    wait_until(
        lambda: all(ledger.processed_ids()[(dm.customer.channel, dm.message_id)] for dm in burst),
        15,
        "the bot to receive the DMs it cannot answer",
    )
    # … then every request is dropped, and what was open is cut.
    outage_began = time.monotonic()
    fakes.zulip.faults.add(ZulipFault("drop", until=outage_began + OUTAGE_SECONDS))
    fakes.mastodon.faults.add(MastodonFault(status=None, until=time.time() + OUTAGE_SECONDS))
    fakes.zulip.kill_connections()
    fakes.mastodon.disconnect_streams()

    def both_named() -> str | None:
        code, text = bot.get("/readyz")
        return text if code == 503 and "zulip unreachable" in text and "mastodon unreachable" in text else None

    readyz = wait_until(both_named, OUTAGE_SECONDS - 5, "/readyz to name both channels down")
    status, metrics = bot.get("/metrics")
    assert _metric(metrics, "deskbot_channel_up", channel="zulip") == 0.0
    assert _metric(metrics, "deskbot_channel_up", channel="mastodon") == 0.0
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_began)))
    during = bot.log_records()[before:]
    fakes.zulip.clear_faults()
    fakes.mastodon.faults.clear()

    wait_until(ledger.all_answered, 30, "every DM to be answered after the recovery")
    wait_until(bot.ready, 15, "/readyz to be 200 again")
    back = wait_until(
        lambda: len([r for r in bot.log_records()[before:] if "reaching the platform again" in r["message"]]) == 2,
        15,
        "one line per channel saying it is back",
    )
    assert back
    status, metrics = bot.get("/metrics")
    assert _metric(metrics, "deskbot_channel_up", channel="zulip") == 1.0
    assert _metric(metrics, "deskbot_channel_up", channel="mastodon") == 1.0
    records = bot.log_records()[before:]
    exit_status = bot.terminate()

    def lines(text: str) -> dict[str, int]:
        found = [r for r in records if text in r["message"]]
        return {channel: sum(1 for r in found if r.get("channel") == channel) for channel in ("zulip", "mastodon")}

    loud = [r for r in during if LEVELS[r["level"]] >= LEVELS["warning"]]
    told = [f"{r['level']} {r.get('logger')}: {r['message']}" for r in during if LEVELS[r["level"]] >= LEVELS["info"]]
    print(f"\n[quiet outage] /readyz said: {readyz.strip()}; {len(told)} lines at INFO+ during the outage:")
    print("\n".join("  " + line for line in told))
    assert lines("cannot reach the platform") == {"zulip": 1, "mastodon": 1}
    assert lines("reaching the platform again") == {"zulip": 1, "mastodon": 1}
    assert lines("still cannot reach") == {"zulip": 0, "mastodon": 0}  # less than a minute: no reminder yet
    # Besides the two outage warnings, only each waiting reply's first failed send: once per row,
    # not at each retry.
    sends = [r for r in loud if r["message"] == "send failed, will retry"]
    assert len({r["outbox_id"] for r in sends}) == len(sends) <= 4, told
    assert len(loud) - len(sends) == 2, told
    assert len(told) <= 12, told
    assert ledger.problems() == []
    assert exit_status == 0, bot.log_tail()
    engine.dispose()
