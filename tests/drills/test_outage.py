"""Drill 2: 60 seconds of 5xx answers and dropped connections on both platforms and the mail
servers down, then recovery.

While customers on Zulip, Mastodon and email go on writing, every request the
bot makes to either fake fails for 60 seconds: sends and receives alike (the
Zulip long-poll, `register`, the Mastodon stream and its REST catch-up);
the outage starts with the posts only, so the bot holds replies it cannot
deliver when everything else fails too. The failure changes every few
seconds between three kinds: a 5xx answer (an HTML
proxy page on Zulip), a connection closed without an answer, and — for
posts only — the post is done but its answer is lost (the other requests are
dropped meanwhile). Open connections are cut at each change.

Email fails as a mail provider's outage does: from the start the SMTP server
refuses every mail with `421` (the answers wait), and once everything fails
Dovecot is stopped, the whole of it: the bot's IMAP sessions (IDLE and the
Sent-folder look-ups) are cut and refused, and LMTP, how mail reaches the
support mailbox, is down too, so the customers' mail waits in their own mail
servers' queues (`CustomerMTA`) and arrives, in order, when Dovecot is back.
(An outage of IMAP alone, with mail still arriving, is milder: the bot only
finds more mail waiting.) The SMTP server answers `421` at the greeting for as
long as Dovecot is down, as a provider's submission server in trouble does.

Then everything recovers at once: within 10 seconds every DM and mail must be
answered (counted in the customers' mailboxes: one answer per mail, by its
In-Reply-To) and every outbox row delivered, nothing twice.

`DESKBOT_DRILL_OUTAGE_SECONDS` shortens the outage for local runs; CI runs
the full 60 seconds.
"""

from __future__ import annotations

import itertools
import os
import time

import pytest

from tests.fakes.mastodon import Fault as MastodonFault
from tests.fakes.zulip import Fault as ZulipFault
from tests.mail.servers import MailServers

from .conftest import BotProcess, CustomersWriting, Fakes, drill_store, open_incidents, wait_until

OUTAGE_SECONDS = float(os.environ.get("DESKBOT_DRILL_OUTAGE_SECONDS", "60"))
RECOVERY_BUDGET = 10.0
#: How long each kind of failure lasts before the next one takes over.
PHASE_SECONDS = 5.0
#: One DM on each platform this often during the outage.
WRITE_EVERY = 2.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(OUTAGE_SECONDS + 240)]


def fail_everything(fakes: Fakes, kind: str, seconds: float) -> None:
    """From now on for `seconds`, every request to either fake fails in the way `kind` says."""
    zulip, mastodon = fakes.zulip, fakes.mastodon
    zulip.clear_faults()
    mastodon.faults.clear()
    z_until, m_until = time.monotonic() + seconds, time.time() + seconds
    if kind == "5xx":
        zulip.faults.add(ZulipFault("status", status=502, body="html", until=z_until))
        mastodon.faults.add(MastodonFault(status=503, until=m_until))
    elif kind == "drop":
        zulip.faults.add(ZulipFault("drop", until=z_until))
        mastodon.faults.add(MastodonFault(status=None, until=m_until))
    elif kind == "lost-answer":
        # Posts go through but their answers are lost; everything else is dropped.
        zulip.faults.add(ZulipFault("drop_after", path="/messages", method="POST", until=z_until))
        zulip.faults.add(ZulipFault("drop", until=z_until))
        mastodon.faults.add(
            MastodonFault(
                status=None, method="POST", path_prefix="/api/v1/statuses", after_handling=True, until=m_until
            )
        )
        mastodon.faults.add(MastodonFault(status=None, until=m_until))
    else:
        raise ValueError(kind)
    # Whatever was open (long-polls, the stream) is cut too.
    zulip.kill_connections()
    mastodon.disconnect_streams()


def recover(fakes: Fakes) -> None:
    fakes.zulip.clear_faults()
    fakes.mastodon.faults.clear()


def test_a_minute_of_5xx_and_dropped_connections_then_everything_within_ten_seconds(
    fakes: Fakes, mail: MailServers, make_database, bots
) -> None:  # noqa: ANN001
    url = make_database("postgresql")
    fakes.add_mail(mail)
    engine, people, ledger = drill_store(fakes, url, zulip=2, mastodon=2, email=2)
    bot: BotProcess = bots("deskbot", fakes.env(url))
    bot.start().wait_ready()
    open_incidents(fakes, engine, people, ledger)  # an email customer's plain mail now answers the bot's mail
    before = len(fakes.sent)

    # The outage, with customers writing all along.
    writer = CustomersWriting(fakes, people, WRITE_EVERY)
    outage_started = time.monotonic()
    # The outage starts with the posts, so that the bot holds replies it cannot deliver …
    fakes.zulip.faults.add(ZulipFault("status", status=503, body="json", path="/messages", method="POST"))
    fakes.mastodon.faults.add(MastodonFault(status=503, method="POST", path_prefix="/api/v1/statuses"))
    mail.smtp.refuse_all(421)
    burst = [fakes.dm(person, kind, incident=person.incidents[0]) for kind in ("plain", "#N") for person in people]
    wait_until(
        lambda: all(ledger.processed_ids()[(dm.customer.channel, dm.message_id)] for dm in burst),
        10,
        "the bot to receive the DMs it cannot answer",
    )
    # … then every request fails, receives too, while customers go on writing; the mail servers are down.
    mail.dovecot.stop()
    mail.smtp.refuse_all(421, at="connect")
    writer.start()
    phases = itertools.cycle(["5xx", "drop", "lost-answer"])
    while (left := OUTAGE_SECONDS - (time.monotonic() - outage_started)) > 0:
        fail_everything(fakes, next(phases), min(PHASE_SECONDS, left) + 1.0)
        time.sleep(min(PHASE_SECONDS, left))
    writer.stop()
    failed_requests = (
        sum(1 for r in fakes.zulip.requests if r.fault is not None),
        fakes.mastodon.stats.faults,
        mail.smtp.counts["refused"],
    )
    answered_during = len(ledger.answered()) - before
    mail_waiting = fakes.mta.waiting if fakes.mta else 0
    mail.dovecot.start()  # returns once IMAP and LMTP answer
    mail.smtp.accept_all()
    recover(fakes)
    recovered_at = time.monotonic()

    # When each platform's DMs were all received (stored), all answered, and when everything was delivered.
    milestones: dict[str, float] = {}
    deadline = recovered_at + RECOVERY_BUDGET + 120
    while time.monotonic() < deadline and "everything" not in milestones:
        now = time.monotonic() - recovered_at
        stored = ledger.processed_ids()
        answered = ledger.answered()
        for channel in ("zulip", "mastodon", "email"):
            mine = [dm for dm in fakes.sent if dm.customer.channel == channel]
            if f"{channel} received" not in milestones and all(stored[(channel, dm.message_id)] for dm in mine):
                milestones[f"{channel} received"] = now
            if f"{channel} answered" not in milestones and all(dm.message_id in answered for dm in mine):
                milestones[f"{channel} answered"] = now
        if ledger.all_answered():
            milestones["everything"] = now
        time.sleep(0.1)
    recovery = milestones.get("everything", float("inf"))
    pending = [tuple(r) for r in ledger.outbox() if r.state == "pending"]
    status = bot.terminate()
    problems = ledger.problems()
    repeats = ledger.mail_repeats()  # no process died: not even a repeat with the same Message-ID
    written = len(fakes.sent) - before
    print(
        f"\n[drill outage] {recovered_at - outage_started:.0f}s of failures "
        f"(Zulip requests failed: {failed_requests[0]}, Mastodon: {failed_requests[1]}, "
        f"SMTP sessions refused: {failed_requests[2]}; customers' mails waiting for Dovecot at its return: "
        f"{mail_waiting}); {written} DMs and mails written meanwhile, {answered_during} answered during the outage; "
        f"everything delivered {recovery:.1f}s after recovery (budget {RECOVERY_BUDGET:.0f}s; "
        f"{', '.join(f'{k} {v:.1f}s' for k, v in milestones.items())}); "
        f"{ledger.counts()}; lost/doubled: {len(problems)}"
    )
    engine.dispose()
    assert problems == []
    assert repeats == {}
    assert status == 0, bot.log_tail()
    assert recovery < float("inf"), f"not everything delivered 130s after recovery; still pending: {pending[:5]}"
    assert recovery <= RECOVERY_BUDGET, f"delivered {recovery:.1f}s after recovery; still pending: {pending[:5]}"


#: Enough failed posts for two sends in a row to give up (each send tries 4 times on both platforms).
FAILED_POSTS = 8


def test_replies_queued_behind_a_failed_send_go_out_within_ten_seconds_of_recovery(
    fakes: Fakes, make_database, bots
) -> None:  # noqa: ANN001
    """A short outage of the posts alone, so that the cause of a slow recovery is unambiguous.

    Two sends in a row give up; the replies claimed behind them must come back with the failed
    row, not when their claim lease runs out (they waited ~26 s for the 30 s lease before ba33d80).
    """
    url = make_database("postgresql")
    engine, people, ledger = drill_store(fakes, url)
    bot: BotProcess = bots("deskbot", fakes.env(url))
    bot.start().wait_ready()
    open_incidents(fakes, engine, people, ledger)

    zulip_fault = fakes.zulip.fail_next(FAILED_POSTS, status=503, path="/messages", method="POST", body="json")
    mastodon_fault = fakes.mastodon.fail_next(FAILED_POSTS, 503, method="POST", path="/api/v1/statuses")
    for kind in ("plain", "status", "#N"):
        for person in people:
            fakes.dm(person, kind, incident=person.incidents[0])
    wait_until(
        lambda: zulip_fault.remaining == 0 and mastodon_fault.served >= FAILED_POSTS,
        60,
        "the injected failures to be served",
        interval=0.02,
    )
    recovered_at = time.monotonic()
    try:
        wait_until(ledger.all_answered, RECOVERY_BUDGET + 50, "everything to be delivered", interval=0.1)
        recovery = time.monotonic() - recovered_at
    except AssertionError:
        recovery = float("inf")
    status = bot.terminate()
    problems = ledger.problems()
    print(
        f"\n[drill short outage] {FAILED_POSTS} failed posts on each platform; everything delivered "
        f"{recovery:.1f}s after the last failure (budget {RECOVERY_BUDGET:.0f}s); lost/doubled: {len(problems)}"
    )
    engine.dispose()
    assert problems == []
    assert status == 0, bot.log_tail()
    assert recovery < float("inf"), "not everything delivered 60s after recovery"
    assert recovery <= RECOVERY_BUDGET, f"delivered {recovery:.1f}s after recovery"
