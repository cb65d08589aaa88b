"""Nothing lost, nothing doubled (SPEC §7), through the real runtime and real mail servers: a first
start, a changed UIDVALIDITY, Dovecot restarted while mail arrives, SMTP refusing with 421 for a
while, a recipient refused with 550, a wrong password and an unreachable host at start, and the
process dying around the SMTP transaction."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from adapters.channel import Outbound, PermanentChannelError, TransientChannelError
from adapters.email import EmailChannel
from adapters.email.outbound import MailPoster
from adapters.email.receive import Receiver
from adapters.email.servers import parse_server_url
from bot.channel_start import StartupTimeout, start_channels
from storage.db import transaction
from storage.models import Outbox
from tests.desk import make_settings
from tests.mail.dovecot import free_ports
from tests.mail.mailbox import parse
from tests.mail.servers import SUPPORT_ADDRESS, MailServers

from .channel_bot import FAST, EmailBot, answers_while_time_passes, count, email_settings, from_bot, handled, wait_until

ANA = "ana.lima@customer.example"
#: These tests count every answer: the hourly cap of automatic answers is lifted.
UNCAPPED = 10_000


def _channel(mail: MailServers, **changes: object) -> EmailChannel:
    return EmailChannel(email_settings(mail, answers_per_hour=UNCAPPED, **changes), tuning=FAST)


@pytest.fixture
def bot(mail: MailServers, engine, db_url, clock) -> Iterator[EmailBot]:  # noqa: ANN001
    running = EmailBot(mail, engine, db_url, clock, channel=_channel(mail))
    running.customer("Ana's company", ANA, credits=5)
    running.start()
    yield running
    running.halt()


def _answers_per_mail(mail: MailServers) -> Counter[str]:
    """How many answers the customer got to each of her mails (by In-Reply-To)."""
    return Counter(str(m["In-Reply-To"]) for m in mail.customers[0].messages() if from_bot(m))


def test_a_first_start_leaves_the_mail_already_there_alone_and_says_how_much(
    mail: MailServers, engine, db_url, clock, caplog: pytest.LogCaptureFixture
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    for number in range(3):
        ana.send(f"Old question {number}", "open\nFrom last year.")
    running = EmailBot(mail, engine, db_url, clock, channel=_channel(mail))
    running.customer("Ana's company", ANA)
    with caplog.at_level(logging.INFO, logger="deskbot.adapters.email"):
        running.start()
    try:
        assert "3 message(s) already in INBOX left alone" in caplog.text
        new = ana.send("New question", "open\nThe dashboard is blank.")
        (answer,) = ana.wait_for(from_bot)
        assert answer["In-Reply-To"] == new["Message-ID"]
        assert handled(engine) == 1
    finally:
        running.halt()


@pytest.mark.parametrize("renumber", [True, False], ids=["uids-renumbered", "uids-kept"])
def test_a_changed_uidvalidity_reads_the_folder_again_and_handles_nothing_twice(
    mail: MailServers, bot: EmailBot, engine, renumber: bool
) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    first = ana.send("Disk", "open\nThe disk is full.")
    ana.wait_for(from_bot)
    old = mail.dovecot.uidvalidity(SUPPORT_ADDRESS)
    # Renumbered: UIDs from 1 again, below the bot's cursor; kept: every mail is read again.
    new = mail.dovecot.change_uidvalidity(SUPPORT_ADDRESS, renumber=renumber)
    assert new != old
    second = ana.send("Disk", "#1 It is full again.")
    answers = ana.wait_for(from_bot, count=2, timeout=20)
    assert [a["In-Reply-To"] for a in answers] == [first["Message-ID"], second["Message-ID"]]
    wait_until(lambda: bot.email.connected, 10)
    assert handled(engine) == 2
    assert count(engine, select(func.count()).select_from(Outbox).where(Outbox.channel == "email")) == 2


def test_dovecot_restarted_while_mail_arrives_loses_nothing(mail: MailServers, bot: EmailBot, engine) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    ana.send("Sync", "open\nThe sync stopped.")
    ana.wait_for(from_bot)
    sent = []
    for number in range(20):
        if number in (5, 12):
            mail.dovecot.restart()  # every IMAP connection of the bot is cut
        sent.append(ana.send("Sync", f"#1 Update {number}"))
    wait_until(lambda: handled(engine) == 21, 30, "every mail handled")
    ana.wait_for(from_bot, count=21, timeout=30)
    counts = _answers_per_mail(mail)
    assert all(counts[m["Message-ID"]] == 1 for m in sent), counts


def test_smtp_answering_421_for_a_while_delivers_each_answer_once(mail: MailServers, bot: EmailBot, engine) -> None:  # noqa: ANN001
    ana = mail.customers[0]
    ana.send("Mail", "open\nOutgoing mail is stuck.")
    ana.wait_for(from_bot)
    mail.smtp.refuse_all(421, for_seconds=4)
    sent = [ana.send("Mail", f"#1 Still stuck ({number})") for number in range(5)]
    # The retries' back-off runs on the bot's (test) clock.
    wait_until(lambda: answers_while_time_passes(bot, ana, 6), 30, "every answer delivered")
    assert mail.smtp.counts["refused"] >= 1
    counts = _answers_per_mail(mail)
    assert all(counts[m["Message-ID"]] == 1 for m in sent), counts
    ids = [m.message_id for m in mail.smtp.accepted]
    assert len(ids) == len(set(ids)) == 6


def test_a_refused_recipient_fails_for_good_and_the_engineer_is_told(mail: MailServers, bot: EmailBot, engine) -> None:  # noqa: ANN001
    mail.smtp.refuse_recipient(ANA, 550)
    mail.customers[0].send("Printer", "open\nThe printer is offline.")
    wait_until(lambda: "Could not deliver a message to the customer via email" in bot.topics(), 15, "the notice")
    assert "550" in bot.topics()
    with transaction(engine) as session:
        (row,) = session.scalars(select(Outbox).where(Outbox.channel == "email")).all()
        assert row.state == "failed" and row.attempts == 1


def test_a_full_mailbox_holds_up_its_owner_alone_and_her_answers_keep_their_order(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    ana, bruno = mail.customers
    bot.customer("Bruno's company", bruno.address, credits=5)
    mail.smtp.refuse_recipient(ANA, 452, "4.2.2 Mailbox full")
    first = ana.send("Disk", "open\nThe disk is full.")

    def ana_rows() -> list[tuple[str, int, str | None]]:
        with transaction(engine) as session:
            rows = session.scalars(select(Outbox).where(Outbox.recipient == ANA).order_by(Outbox.id)).all()
            return [(r.state, r.attempts, r.last_error) for r in rows]

    wait_until(
        lambda: (
            [e for _s, _a, e in ana_rows()]
            == ["recipient ana.lima@customer.example refused: SMTP 452 4.2.2 Mailbox full"]
        ),
        15,
        "Ana's answer refused for now",
    )
    second = ana.send("Disk", "#1 It is full again.")
    # Bruno is not held up by Ana's mailbox: his answer goes at once, the clock standing still.
    bruno.send("VPN", "open\nThe VPN drops.")
    (answer,) = bruno.wait_for(from_bot, timeout=15)
    assert "VPN" in str(answer["Subject"])
    wait_until(lambda: len(ana_rows()) == 2, 15, "Ana's second answer written")
    time.sleep(0.5)  # the dispatcher looks every 0.1 s: a second answer sent out of turn would show
    assert [s for s, _a, _e in ana_rows()] == ["pending", "pending"]
    assert mail.smtp.counts["refused_recipients"] == 1  # retried after a minute, not at once
    assert [m.rcpt_tos for m in mail.smtp.accepted] == [[bruno.address]]
    # Her mailbox has room again: within the next retry both answers arrive, once each, in order.
    mail.smtp.accept_recipient(ANA)
    bot.clock.advance(seconds=91)  # the first retry: after 60 s and up to 30 s at random
    answers = ana.wait_for(from_bot, count=2, timeout=15)
    in_order = [first["Message-ID"], second["Message-ID"]]
    # Handed to the mail server in their order (what deskbot decides), and so filed in it.
    assert [parse(m.raw)["In-Reply-To"] for m in mail.smtp.accepted if m.rcpt_tos == [ANA]] == in_order
    assert [a["In-Reply-To"] for a in answers] == in_order
    # Recorded once the copy is in Sent, a moment after her server has the mail.
    wait_until(lambda: [s for s, _a, _e in ana_rows()] == ["sent", "sent"], 10, "both rows sent")
    time.sleep(0.5)
    assert len([m for m in ana.messages() if from_bot(m)]) == 2
    # The engineers heard of it once, in the case topic.
    assert [line.split("] ", 1)[1] for line in bot.topics().splitlines() if "has not reached" in line] == [
        f"⚠ The answer has not reached `{ANA}` yet: the email server refuses it for now "
        f"(`recipient {ANA} refused: SMTP 452 4.2.2 Mailbox full`). deskbot tries again for up to 5 days, "
        "and says so here if it gives up."
    ]


def test_an_address_refused_for_now_for_five_days_fails_for_good_and_the_engineer_is_told(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    mail.smtp.refuse_recipient(ANA, 452, "4.2.2 Mailbox full")
    mail.customers[0].send("Printer", "open\nThe printer is offline.")
    wait_until(lambda: mail.smtp.counts["refused_recipients"] == 1, 15, "the first refusal")
    wait_until(lambda: "has not reached" in bot.topics(), 15, "the engineers told")
    assert "Could not deliver" not in bot.topics()
    bot.clock.advance(days=4, hours=23)  # still trying: one more refusal, nothing told
    wait_until(lambda: mail.smtp.counts["refused_recipients"] == 2, 15, "the retry")
    wait_until(lambda: _retry_due_after(engine, bot.clock()) > 60, 10, "the retry's refusal recorded")
    assert "Could not deliver" not in bot.topics()
    bot.clock.advance(hours=2)  # five days since the answer was written
    wait_until(lambda: "Could not deliver a message to the customer via email" in bot.topics(), 15, "the notice")
    assert "452 4.2.2 Mailbox full (refused for now for 5 days: given up)" in bot.topics()
    assert bot.topics().count("has not reached") == 1  # told at the first refusal, not at each retry
    with transaction(engine) as session:
        (row,) = session.scalars(select(Outbox).where(Outbox.channel == "email")).all()
        assert (row.state, row.attempts) == ("failed", 3)


def test_a_wrong_password_stops_start_up_with_one_line_naming_the_settings(mail: MailServers, db_url) -> None:  # noqa: ANN001
    channel = EmailChannel(email_settings(mail, password="wrong"), tuning=FAST)
    with pytest.raises(PermanentChannelError) as raised:
        start_channels([channel], make_settings(db_url), threading.Event())
    line = str(raised.value)
    assert "\n" not in line and "wrong" not in line
    assert "EMAIL_USERNAME and EMAIL_PASSWORD" in line and SUPPORT_ADDRESS in line


def test_an_unreachable_host_stops_start_up_with_one_line_naming_the_url_settings(mail: MailServers, db_url) -> None:  # noqa: ANN001
    from adapters.email.servers import parse_server_url

    (closed,) = free_ports(1)
    channel = EmailChannel(
        email_settings(mail, imap=parse_server_url(f"imaps://127.0.0.1:{closed}", "imap")), tuning=FAST
    )
    with pytest.raises(TransientChannelError, match="connection refused"):
        channel.start()
    with pytest.raises(StartupTimeout) as raised:
        start_channels([channel], make_settings(db_url, DESKBOT_STARTUP_TIMEOUT=1), threading.Event())
    line = str(raised.value)
    assert "\n" not in line and line.startswith("EMAIL_IMAP_URL / EMAIL_SMTP_URL: cannot reach the IMAP server")


def test_a_server_certificate_not_trusted_is_one_line(mail: MailServers) -> None:
    channel = EmailChannel(email_settings(mail, ca_file=None), tuning=FAST)  # the system's CAs only
    with pytest.raises(TransientChannelError) as raised:
        channel.start()
    assert "TLS certificate not trusted" in str(raised.value) and "\n" not in str(raised.value)


# -- the process dies around the SMTP transaction -------------------------------------------


class _Crash(BaseException):
    """The process dies: not an Exception, so nothing on the way catches it."""


class _CrashAfterAccepted(MailPoster):
    """Dies right after the server's 250, before the copy in Sent and before the store records it."""

    def _submit(self, message: Outbound, raw: bytes, *args: object, **kwargs: object) -> None:
        super()._submit(message, raw, *args, **kwargs)  # type: ignore[arg-type]
        raise _Crash


def _retry_due_after(engine, now) -> float:  # noqa: ANN001
    """Seconds until the one email row is tried again: more than the 10 s of a claim's lease once a
    refusal is recorded (the clock must not move on before, or the retry would be set after it)."""
    with transaction(engine) as session:
        row = session.scalars(select(Outbox).where(Outbox.channel == "email")).one()
        return (row.next_attempt_at - now).total_seconds()


def _pending_row(engine) -> bool:  # noqa: ANN001
    with transaction(engine) as session:
        return (
            session.scalars(select(Outbox).where(Outbox.channel == "email", Outbox.state == "pending")).first()
            is not None
        )


def test_killed_after_the_servers_250_before_the_commit_repeats_at_most_once_with_the_same_message_id(
    mail: MailServers, engine, db_url, clock
) -> None:  # noqa: ANN001
    first = EmailBot(mail, engine, db_url, clock, channel=_channel(mail))
    first.customer("Ana's company", ANA)
    first.start(dispatch=False)
    poster = first.email._poster
    assert poster is not None
    poster.__class__ = _CrashAfterAccepted
    mail.customers[0].send("Scanner", "open\nThe scanner is broken.")
    wait_until(lambda: _pending_row(engine), 10, "the answer written")
    with pytest.raises(_Crash):
        first.runtime.dispatcher.drain("email")
    first.halt()
    assert len(mail.smtp.accepted) == 1

    clock.advance(seconds=31)  # the dead process's claim on the row runs out
    second = EmailBot(mail, engine, db_url, clock, channel=_channel(mail)).start(dispatch=False)
    try:
        assert second.runtime.dispatcher.drain("email") == 1
    finally:
        second.halt()
    accepted = mail.smtp.accepted
    assert len(accepted) == 2  # no copy in Sent: sent once more, the same mail
    assert accepted[0].message_id == accepted[1].message_id
    with transaction(engine) as session:
        row = session.scalars(select(Outbox).where(Outbox.channel == "email")).one()
        assert row.state == "sent" and row.attempts == 2


def test_killed_after_the_copy_in_sent_before_the_commit_sends_nothing_again(
    mail: MailServers, engine, db_url, clock
) -> None:  # noqa: ANN001
    class CrashAfterSend(EmailChannel):
        def send(self, message: Outbound) -> list[str]:
            super().send(message)
            raise _Crash

    first = EmailBot(mail, engine, db_url, clock, channel=CrashAfterSend(email_settings(mail), tuning=FAST))
    first.customer("Ana's company", ANA)
    first.start(dispatch=False)
    mail.customers[0].send("Scanner", "open\nThe scanner is broken.")
    wait_until(lambda: _pending_row(engine), 10, "the answer written")
    with pytest.raises(_Crash):
        first.runtime.dispatcher.drain("email")
    first.halt()
    clock.advance(seconds=31)
    second = EmailBot(mail, engine, db_url, clock, channel=_channel(mail)).start(dispatch=False)
    try:
        assert second.runtime.dispatcher.drain("email") == 1
    finally:
        second.halt()
    assert len(mail.smtp.accepted) == 1  # found in the Sent folder by its Message-ID
    assert len(mail.support.messages("Sent")) == 1


def test_killed_before_data_completes_is_delivered_once(mail: MailServers, engine, db_url, clock) -> None:  # noqa: ANN001
    first = EmailBot(mail, engine, db_url, clock, channel=_channel(mail))
    first.customer("Ana's company", ANA)
    first.start(dispatch=False)
    held = mail.smtp.hold_data("command")  # the server takes nothing before the 354
    mail.customers[0].send("Scanner", "open\nThe scanner is broken.")
    wait_until(lambda: _pending_row(engine), 10, "the answer written")
    sender = threading.Thread(target=first.runtime.dispatcher.drain, args=("email",), daemon=True)
    sender.start()
    assert held.wait(10)
    poster = first.email._poster
    assert poster is not None and poster._smtp is not None
    poster._smtp.sock.shutdown(2)  # the process is gone: its connection drops mid-DATA
    mail.smtp.release_data()
    sender.join(10)
    first.halt()
    assert mail.smtp.accepted == []

    clock.advance(seconds=31)
    second = EmailBot(mail, engine, db_url, clock, channel=_channel(mail)).start(dispatch=False)
    try:
        wait_until(lambda: second.runtime.dispatcher.drain("email") or not _pending_row(engine), 15, "the retry")
    finally:
        second.halt()
    assert len(mail.smtp.accepted) == 1
    assert len([m for m in mail.customers[0].messages() if from_bot(m)]) == 1


def _slow_renewal_bot(mail: MailServers, engine, db_url: str, clock) -> EmailBot:  # noqa: ANN001
    """A bot whose IDLE is renewed only every 10 minutes: mail it misses waits that long."""
    import dataclasses

    tuning = dataclasses.replace(FAST, idle_renew=600.0)
    channel = EmailChannel(email_settings(mail, answers_per_hour=UNCAPPED), tuning=tuning)
    running = EmailBot(mail, engine, db_url, clock, channel=channel)
    running.customer("Ana's company", ANA)
    return running


def test_mail_told_with_the_idle_continuation_is_not_left_for_the_next_renewal(
    mail: MailServers, engine, db_url, clock
) -> None:  # noqa: ANN001
    """Dovecot tells mail that came after the client's last command right after `+ idling`, in
    the same packet, where imaplib's buffer hides it from imapclient's `idle_check`."""
    running = _slow_renewal_bot(mail, engine, db_url, clock)
    ana = mail.customers[0]
    pending: list[str] = []

    class MailBeforeIdle(Receiver):
        def _idle(self, client, stop):  # noqa: ANN001, ANN202
            if pending:  # delivered (and stored by Dovecot) between the last command and IDLE
                ana.send("Race", pending.pop())
            return super()._idle(client, stop)

    running.start(wait=False)
    running.email._receiver.__class__ = MailBeforeIdle
    wait_until(lambda: running.email.connected, 10)
    try:
        ana.send("Race", "open\nFirst.")
        wait_until(lambda: handled(engine) == 1, 10, "the first mail")
        pending.append("#1 Second, as IDLE begins.")
        ana.send("Race", "#1 Third: wakes the first IDLE.")
        wait_until(lambda: handled(engine) == 3, 10, "the mail told with '+ idling'")
    finally:
        running.halt()


def test_mail_told_in_a_commands_answer_is_not_left_for_the_next_renewal(
    mail: MailServers, engine, db_url, clock
) -> None:  # noqa: ANN001
    """Mail that arrives while the bot fetches or flags is told in that command's answer, and
    Dovecot does not tell it again in IDLE."""
    running = _slow_renewal_bot(mail, engine, db_url, clock)
    ana = mail.customers[0]
    pending: list[str] = []

    class MailDuringAPage(Receiver):
        def _page(self, client, sink, cursor, uids):  # noqa: ANN001, ANN202
            if pending:
                ana.send("Race", pending.pop())
            return super()._page(client, sink, cursor, uids)

    running.start(wait=False)
    running.email._receiver.__class__ = MailDuringAPage
    wait_until(lambda: running.email.connected, 10)
    try:
        pending.append("#1 Second, while the first is fetched.")
        ana.send("Race", "open\nFirst.")
        wait_until(lambda: handled(engine) == 2, 10, "the mail told in a FETCH's answer")
    finally:
        running.halt()


def test_a_sender_refused_for_good_is_the_settings_fault_and_waits_for_them(
    mail: MailServers, bot: EmailBot, engine
) -> None:  # noqa: ANN001
    mail.smtp.refuse_all(553, at="MAIL", text="5.7.1 Sender address rejected: not owned by user")
    mail.customers[0].send("Printer", "open\nThe printer is offline.")
    wait_until(lambda: _row_error(engine), 15, "the failed attempt")
    assert "check EMAIL_ADDRESS and EMAIL_USERNAME" in _row_error(engine)
    with transaction(engine) as session:
        (row,) = session.scalars(select(Outbox).where(Outbox.channel == "email")).all()
        assert row.state == "pending"  # not failed: it goes once the settings are right
    mail.smtp.accept_all()
    wait_until(lambda: answers_while_time_passes(bot, mail.customers[0], 1), 15, "the answer after the fix")


def _row_error(engine) -> str:  # noqa: ANN001
    with transaction(engine) as session:
        row = session.scalars(select(Outbox).where(Outbox.channel == "email")).first()
        return (row.last_error or "") if row is not None else ""


class _Sink:
    """An `InboundSink` that stores cursors in memory and fails when told to (the database is down)."""

    def __init__(self) -> None:
        self.cursors: dict[str, str] = {}
        self.delivered: list[str] = []
        self.failing = False

    def deliver(self, message, *, cursor=None) -> None:  # noqa: ANN001
        self.deliver_many([(message, cursor)])

    def deliver_many(self, items, *, backlog: bool = False) -> None:  # noqa: ANN001
        if self.failing:
            raise RuntimeError("database unreachable")
        for message, cursor in items:
            self.delivered.append(message.message_id)
            if cursor:
                self.cursors[cursor[0]] = cursor[1]

    def get_cursor(self, key: str) -> str | None:
        return self.cursors.get(key)

    def set_cursor(self, key: str, value: str) -> None:
        self.cursors[key] = value


def _seen(mail: MailServers) -> dict[str, bool]:
    with mail.support.imap() as client:
        client.select_folder("INBOX", readonly=True)
        found = client.fetch(client.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    return {
        data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip(): b"\\Seen" in data[b"FLAGS"]
        for data in found.values()
    }


def test_seen_is_set_only_after_the_effects_are_stored(mail: MailServers) -> None:
    channel = _channel(mail)
    channel.start()
    sink, stop = _Sink(), threading.Event()
    raised: list[BaseException] = []

    def receive() -> None:
        try:
            channel.receive(sink, stop)
        except Exception as error:  # noqa: BLE001 — what the runtime's supervisor would see
            raised.append(error)

    receiving = threading.Thread(target=receive, daemon=True)
    receiving.start()
    try:
        wait_until(lambda: channel.connected, 10)
        cursor = sink.cursors["email:uid"]
        sink.failing = True
        first = mail.customers[0].send("Seen?", "First.")
        receiving.join(10)  # the sink's failure ends receive (the runtime restarts it)
        assert not receiving.is_alive() and "database unreachable" in str(raised)
        assert _seen(mail) == {first["Message-ID"]: False}
        assert sink.cursors["email:uid"] == cursor and sink.delivered == []

        sink.failing = False
        receiving = threading.Thread(target=receive, daemon=True)
        receiving.start()
        wait_until(lambda: sink.delivered == [first["Message-ID"]], 10, "the mail delivered")
        wait_until(lambda: _seen(mail) == {first["Message-ID"]: True}, 10, "the mail flagged \\Seen")
    finally:
        stop.set()
        receiving.join(10)
        channel.close()


class _SilentDrop:
    """A TCP relay to the IMAP server that can stop passing data on the connections it holds
    without closing them: what a NAT box that forgot a quiet connection does."""

    def __init__(self, port: int) -> None:
        import socket

        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped: list[threading.Event] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            dropped = threading.Event()
            self.dropped.append(dropped)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink, dropped), daemon=True).start()

    @staticmethod
    def _pump(source, sink, dropped: threading.Event) -> None:  # noqa: ANN001
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if not dropped.is_set():  # forgotten: what comes is swallowed, nothing is closed
                try:
                    sink.sendall(data)
                except OSError:
                    return

    def forget_all(self) -> None:
        for dropped in self.dropped:
            dropped.set()

    def close(self) -> None:
        self.listener.close()


def test_a_connection_dropped_silently_is_noticed_at_the_idle_renewal_and_nothing_is_lost(
    mail: MailServers, engine, db_url, clock
) -> None:  # noqa: ANN001
    import dataclasses

    relay = _SilentDrop(mail.dovecot.imap_port)
    tuning = dataclasses.replace(FAST, idle_renew=1.5, request_timeout=3.0)
    imap = parse_server_url(f"imap://127.0.0.1:{relay.port}", "imap")
    channel = EmailChannel(email_settings(mail, imap=imap, answers_per_hour=UNCAPPED), tuning=tuning)
    running = EmailBot(mail, engine, db_url, clock, channel=channel)
    running.customer("Ana's company", ANA)
    running.start()
    try:
        relay.forget_all()  # the receiving session (and the Sent look-ups') now talk into the void
        sent = mail.customers[0].send("Quiet", "open\nIs anyone there?")
        (answer,) = mail.customers[0].wait_for(from_bot, timeout=20)
        assert answer["In-Reply-To"] == sent["Message-ID"]
        assert handled(engine) == 1
    finally:
        running.halt()
        relay.close()


@pytest.mark.parametrize("server_keeps", [False, True], ids=["bot-appends", "server-files-copies"])
def test_the_sent_folder_holds_one_copy_of_each_answer(mail: MailServers, bot: EmailBot, server_keeps: bool) -> None:
    """Dovecot keeps nothing: the bot appends each answer. A server that files copies itself (as
    Gmail does) is noticed at the first answer, and nothing is appended twice."""
    mail.smtp.keep_sent_copies(server_keeps)
    ana = mail.customers[0]
    ana.send("Sent", "open\nFirst.")
    ana.wait_for(from_bot)
    for number in range(5):
        ana.send("Sent", f"#1 Update {number}")
    answers = ana.wait_for(from_bot, count=6)
    copies = wait_until(lambda: len(mail.support.messages("Sent")) >= 6 and mail.support.messages("Sent"), 10)
    assert sorted(m["Message-ID"] for m in copies) == sorted(m["Message-ID"] for m in answers)
    assert bot.email._poster is not None and bot.email._poster.sent.server_keeps is (True if server_keeps else False)


def test_a_sent_folder_session_the_server_closed_meanwhile_is_opened_again(mail: MailServers, bot: EmailBot) -> None:
    """Servers log out quiet sessions (after 30 minutes): the next answer's copy still reaches
    Sent, and the answer itself goes out once."""
    ana = mail.customers[0]
    ana.send("Kick", "open\nFirst.")
    ana.wait_for(from_bot)
    mail.dovecot.doveadm("kick", SUPPORT_ADDRESS)  # every session of the support mailbox is cut
    ana.send("Kick", "#1 Second.")
    answers = ana.wait_for(from_bot, count=2, timeout=20)
    copies = wait_until(lambda: len(mail.support.messages("Sent")) >= 2 and mail.support.messages("Sent"), 10)
    assert sorted(m["Message-ID"] for m in copies) == sorted(m["Message-ID"] for m in answers)
    assert len(mail.smtp.accepted) == 2


def test_an_smtp_session_the_server_closed_meanwhile_is_opened_again_before_sending(
    mail: MailServers, bot: EmailBot, engine, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    from adapters.email import outbound

    monkeypatch.setattr(outbound, "QUIET_SESSION", 0.0)  # every kept session counts as quiet
    ana = mail.customers[0]
    ana.send("Quiet", "open\nFirst.")
    ana.wait_for(from_bot)
    poster = bot.email._poster
    assert poster is not None and poster._smtp is not None
    poster._smtp.sock.shutdown(2)  # the session is gone, as a server closes a quiet one
    ana.send("Quiet", "#1 Second.")
    ana.wait_for(from_bot, count=2)

    def rows() -> list[tuple[str, int, str | None]]:
        with transaction(engine) as session:
            found = session.scalars(select(Outbox).where(Outbox.channel == "email").order_by(Outbox.id)).all()
            return [(r.state, r.attempts, r.last_error) for r in found]

    # The customer may read the answer before the dispatcher has recorded its delivery: wait for
    # that record, then both rows must be sent at the first attempt, with no error on the way.
    wait_until(lambda: all(state != "pending" for state, _a, _e in rows()), 10)
    assert rows() == [("sent", 1, None)] * 2


def test_a_server_killed_without_a_bye_is_noticed_at_once_and_nothing_is_lost(
    mail: MailServers,
    engine,
    db_url,
    clock,  # noqa: ANN001
) -> None:
    """Dovecot killed (SIGKILL: no BYE) while the bot idles: imapclient's idle_check then returns
    nothing at once, again and again. The receiver must take that as the connection gone, not spin
    until the IDLE renewal (here far beyond the test), and read the mail that came meanwhile."""
    import dataclasses
    import os
    import signal
    import time

    tuning = dataclasses.replace(FAST, idle_renew=600.0, idle_check=1.0)
    channel = EmailChannel(email_settings(mail, answers_per_hour=UNCAPPED), tuning=tuning)
    running = EmailBot(mail, engine, db_url, clock, channel=channel)
    running.customer("Ana's company", ANA, credits=5)
    running.start()
    try:
        ana = mail.customers[0]
        ana.send("Sync", "open\nThe sync stopped.")
        ana.wait_for(from_bot)
        time.sleep(1.0)  # the receiver is idling again
        process = mail.dovecot._process
        assert process is not None
        os.killpg(process.pid, signal.SIGKILL)  # no BYE, every connection reset
        process.wait(timeout=10)
        busy_from = time.process_time()
        time.sleep(3.0)
        # A receiver spinning on an empty idle_check burns a core; one that noticed waits out its back-off.
        assert time.process_time() - busy_from < 1.5
        mail.dovecot.start()
        sent = ana.send("Sync", "#1 Still stopped after your server came back?")
        wait_until(lambda: handled(engine) == 2, 20, "the mail after the restart handled")
        ana.wait_for(lambda m: from_bot(m) and m["In-Reply-To"] == sent["Message-ID"], timeout=20)
    finally:
        running.halt()
