"""Self-tests of the mail servers the email tests, drills and benchmarks run against.

Everything goes through real clients: smtplib/LMTP and imapclient against the real Dovecot
and the real aiosmtpd server, over TLS verified against the test CA.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
import threading
import time

import imapclient.exceptions
import pytest
from imapclient import IMAPClient

from tests.mail.mailbox import body_text
from tests.mail.servers import SUPPORT_ADDRESS, MailServers


def imap_login(mail: MailServers, *, implicit: bool = True) -> IMAPClient:
    if implicit:
        client = IMAPClient(
            "127.0.0.1", port=mail.dovecot.imaps_port, ssl=True, ssl_context=mail.ssl_context(), timeout=10
        )
    else:
        client = IMAPClient("127.0.0.1", port=mail.dovecot.imap_port, ssl=False, timeout=10)
        client.starttls(mail.ssl_context())
    client.login(SUPPORT_ADDRESS, mail.support.password)
    return client


def submit(mail: MailServers, raw: bytes, to: list[str], *, implicit: bool = False) -> dict:
    """Send as the support mailbox, the way the bot will."""
    if implicit:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL("127.0.0.1", mail.smtp.tls_port, context=mail.ssl_context(), timeout=10)
    else:
        smtp = smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=10)
        smtp.starttls(context=mail.ssl_context())
    with smtp:
        smtp.login(SUPPORT_ADDRESS, mail.support.password)
        return smtp.sendmail(SUPPORT_ADDRESS, to, raw)


def answer(mail: MailServers, n: int, to: str) -> bytes:
    return mail.support.compose(
        f"Re: [#{n}] Help", f"answer {n}", to=to, message_id=f"<answer-{n}@example.com>"
    ).as_bytes()


def test_lmtp_delivery_is_read_over_imap_unseen(mail: MailServers) -> None:
    ana = mail.customers[0]
    sent = ana.send("Cannot log in", "open\nThe portal says my password is wrong.", cc=[mail.customers[1].address])
    [got] = mail.support.wait_for(timeout=5)
    assert got["Message-ID"] == sent["Message-ID"]
    assert got["From"].addresses[0].addr_spec == ana.address
    assert got["From"].addresses[0].display_name == "Ana Lima"
    assert got["Return-Path"] == f"<{ana.address}>"  # Dovecot writes the envelope sender
    assert body_text(got).startswith("open\nThe portal says")
    assert mail.customers[1].wait_for(timeout=5)[0]["Message-ID"] == sent["Message-ID"]  # the Cc got it too
    with imap_login(mail, implicit=False) as client:  # STARTTLS on the plain port
        client.select_folder("INBOX", readonly=True)
        [flags] = client.get_flags(client.search("ALL")).values()
        assert b"\\Seen" not in flags  # reading (BODY.PEEK[]) never set it


def test_a_bounce_keeps_the_null_sender(mail: MailServers) -> None:
    mail.customers[0].send("Undelivered Mail Returned to Sender", "gone", mail_from="")
    [got] = mail.support.wait_for(timeout=5)
    assert got["Return-Path"] == "<>"


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_smtp_with_tls_and_auth_delivers_into_dovecot(mail: MailServers, implicit: bool) -> None:
    bruno = mail.customers[1]
    assert (
        submit(mail, answer(mail, 7, bruno.address), [bruno.address, "someone@elsewhere.example"], implicit=implicit)
        == {}
    )
    [got] = bruno.wait_for(timeout=5)
    assert got["Message-ID"] == "<answer-7@example.com>"
    [accepted] = mail.smtp.accepted
    assert accepted.tls and accepted.implicit_tls is implicit
    assert accepted.login == SUPPORT_ADDRESS
    assert accepted.delivered == [bruno.address]
    assert accepted.elsewhere == ["someone@elsewhere.example"]
    assert mail.smtp.counts["auth_ok"] == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_auth_takes_plain_and_login(mail: MailServers, mechanism: str) -> None:
    with smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=10) as smtp:
        smtp.starttls(context=mail.ssl_context())
        smtp.ehlo()
        smtp.user, smtp.password = mail.customers[1].address, mail.customers[1].password
        code, _text = smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
        assert code == 235
        smtp.sendmail(mail.customers[1].address, [SUPPORT_ADDRESS], b"Subject: hello\r\n\r\nhi\r\n")
    assert mail.smtp.accepted[0].login == mail.customers[1].address
    assert mail.smtp.counts["auth_ok"] == 1 and mail.smtp.counts["auth_failed"] == 0


def test_smtp_refuses_a_wrong_password_and_auth_without_tls(mail: MailServers) -> None:
    with smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")  # not before STARTTLS
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail(SUPPORT_ADDRESS, [mail.customers[0].address], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 530
        smtp.starttls(context=mail.ssl_context())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(SUPPORT_ADDRESS, "not the password")
    assert mail.smtp.counts["auth_failed"] >= 1 and mail.smtp.counts["auth_ok"] == 0  # smtplib tries PLAIN, then LOGIN
    assert mail.smtp.accepted == []


def test_a_customer_submits_through_smtp_to_the_support_mailbox(mail: MailServers) -> None:
    sent = mail.customers[0].send("Invoice", "Where is it?", via="smtp")
    [got] = mail.support.wait_for(timeout=5)
    assert got["Message-ID"] == sent["Message-ID"]
    assert mail.smtp.accepted[0].login == mail.customers[0].address


def test_421_refuses_for_a_while_then_accepts(mail: MailServers) -> None:
    to = mail.customers[0].address
    mail.smtp.refuse_all(421, for_seconds=0.5)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        submit(mail, answer(mail, 1, to), [to])
    assert refused.value.smtp_code == 421
    assert mail.smtp.accepted == []
    time.sleep(0.6)
    assert submit(mail, answer(mail, 1, to), [to]) == {}
    assert len(mail.customers[0].wait_for(timeout=5)) == 1
    assert mail.smtp.counts["refused"] == 1


def test_451_after_the_content_takes_nothing(mail: MailServers) -> None:
    to = mail.customers[0].address
    mail.smtp.refuse_all(451, at="DATA")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(mail, answer(mail, 12, to), [to])
    assert refused.value.smtp_code == 451
    mail.smtp.accept_all()
    assert submit(mail, answer(mail, 12, to), [to]) == {}
    assert len(mail.smtp.accepted) == 1
    assert len(mail.customers[0].wait_for(timeout=5)) == 1


def test_421_at_the_greeting_closes_the_connection(mail: MailServers) -> None:
    mail.smtp.refuse_all(421, at="connect")
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=10)
    assert refused.value.smtp_code == 421
    mail.smtp.accept_all()
    to = mail.customers[0].address
    assert submit(mail, answer(mail, 2, to), [to]) == {}


def test_550_refuses_one_recipient_and_the_others_get_the_mail(mail: MailServers) -> None:
    ana, bruno = mail.customers
    mail.smtp.refuse_recipient(bruno.address)
    refused = submit(mail, answer(mail, 3, ana.address), [ana.address, bruno.address])
    assert refused == {bruno.address: (550, refused[bruno.address][1])}
    assert b"User unknown" in refused[bruno.address][1]
    assert len(ana.wait_for(timeout=5)) == 1
    assert bruno.messages() == []
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        submit(mail, answer(mail, 4, bruno.address), [bruno.address])


def _raw_smtp_until_data(mail: MailServers) -> socket.socket:
    """A client that authenticates and sends MAIL, RCPT and DATA by hand, then stops reading."""
    context = mail.ssl_context()
    sock = socket.create_connection(("127.0.0.1", mail.smtp.tls_port), timeout=10)
    tls = context.wrap_socket(sock, server_hostname="127.0.0.1")
    stream = tls.makefile("rb")

    def command(line: bytes) -> bytes:
        tls.sendall(line + b"\r\n")
        reply = stream.readline()
        while reply[3:4] == b"-":
            reply = stream.readline()
        return reply

    assert stream.readline().startswith(b"220")
    assert command(b"EHLO client.example").startswith(b"250")
    token = base64.b64encode(f"\0{SUPPORT_ADDRESS}\0{mail.support.password}".encode())
    assert command(b"AUTH PLAIN " + token).startswith(b"235")
    assert command(f"MAIL FROM:<{SUPPORT_ADDRESS}>".encode()).startswith(b"250")
    assert command(f"RCPT TO:<{mail.customers[0].address}>".encode()).startswith(b"250")
    tls.sendall(b"DATA\r\n")
    return tls


def test_a_client_killed_before_data_completes_delivers_nothing_and_its_retry_passes(mail: MailServers) -> None:
    held = mail.smtp.hold_data("command")
    client = _raw_smtp_until_data(mail)
    assert held.wait(5), "the server never held the DATA command"
    client.close()  # the bot dies while waiting for the 354
    time.sleep(0.2)
    assert mail.smtp.accepted == []
    to = mail.customers[0].address
    assert submit(mail, answer(mail, 8, to), [to]) == {}  # the restarted bot's retry is not held
    [got] = mail.customers[0].wait_for(timeout=5)
    assert got["Message-ID"] == "<answer-8@example.com>"
    assert len(mail.smtp.accepted) == 1 and mail.smtp.counts["held_command"] == 1


def test_held_after_the_content_the_mail_is_delivered_though_the_client_never_sees_250(mail: MailServers) -> None:
    to = mail.customers[0].address
    held = mail.smtp.hold_data("reply")
    outcome: list[BaseException | dict] = []

    def send() -> None:
        try:
            outcome.append(submit(mail, answer(mail, 5, to), [to]))
        except BaseException as exc:  # noqa: BLE001 (what the client saw is the test's result)
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert held.wait(5)
    assert len(mail.customers[0].wait_for(timeout=5)) == 1  # taken before the reply
    assert outcome == []  # the client is still waiting for its 250
    mail.smtp.release_data()
    sender.join(5)
    assert outcome == [{}]


def test_sent_copies_are_kept_only_when_asked_as_gmail_does(mail: MailServers) -> None:
    to = mail.customers[0].address
    submit(mail, answer(mail, 10, to), [to])
    assert mail.support.messages("Sent") == []  # Dovecot set-ups keep nothing: the client appends
    mail.smtp.keep_sent_copies()
    submit(mail, answer(mail, 11, to), [to])
    [kept] = mail.support.messages("Sent")
    assert kept["Message-ID"] == "<answer-11@example.com>"
    assert len(mail.customers[0].wait_for(count=2, timeout=5)) == 2


def test_mail_accepted_while_dovecot_is_down_is_delivered_when_it_is_back(mail: MailServers) -> None:
    to = mail.customers[0].address
    back = mail.dovecot.stop_for(1.0)
    assert submit(mail, answer(mail, 6, to), [to]) == {}
    assert mail.smtp.queued == 1
    [got] = mail.customers[0].wait_for(timeout=10)  # waits out the outage too
    back.join(10)
    assert got["Message-ID"] == "<answer-6@example.com>"
    assert mail.smtp.queued == 0


def test_restart_cuts_the_imap_connection_and_keeps_the_mail(mail: MailServers) -> None:
    mail.customers[0].send("Before the restart", "one")
    client = imap_login(mail)
    client.select_folder("INBOX")
    client.idle()
    started = time.monotonic()
    mail.dovecot.restart()
    assert time.monotonic() - started < 5  # about 1.1 s: Dovecot's master waits a second for an idling child
    with pytest.raises((imapclient.exceptions.IMAPClientAbortError, OSError, ssl.SSLError)):
        client.idle_check(timeout=5)
        client.idle_done()
        client.noop()
    client.shutdown()
    mail.dovecot.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", mail.dovecot.imap_port), timeout=2)
    mail.dovecot.start()
    [kept] = mail.support.messages()
    assert kept["Subject"] == "Before the restart"


@pytest.mark.parametrize("renumber", [True, False], ids=["recreated", "doveadm"])
def test_uidvalidity_change_voids_the_uids(mail: MailServers, renumber: bool) -> None:
    for n in range(3):
        mail.customers[0].send(f"mail {n}", "text")
    mail.support.wait_for(count=3, timeout=5)
    client = imap_login(mail)
    before = client.select_folder("INBOX")[b"UIDVALIDITY"]
    client.delete_messages([1])
    client.expunge()
    assert client.search("ALL") == [2, 3]
    new = mail.dovecot.change_uidvalidity(SUPPORT_ADDRESS, renumber=renumber)
    assert new > before
    with pytest.raises((imapclient.exceptions.IMAPClientAbortError, OSError)):
        client.noop()  # Dovecot drops a client whose selected folder changed under it
    client.shutdown()
    with imap_login(mail) as client:
        assert client.select_folder("INBOX")[b"UIDVALIDITY"] == new
        assert client.search("ALL") == ([1, 2] if renumber else [2, 3])
        subjects = [m[b"ENVELOPE"].subject for m in client.fetch(client.search("ALL"), ["ENVELOPE"]).values()]
        assert sorted(subjects) == [b"mail 1", b"mail 2"]


def test_list_shows_the_sent_folder_and_appending_to_it_works(mail: MailServers) -> None:
    folders = dict((name, flags) for flags, name in mail.support.folders())
    assert b"\\Sent" in folders["Sent"]
    with imap_login(mail) as client:
        assert b"SPECIAL-USE" in client.capabilities() and b"UIDPLUS" in client.capabilities()
        assert b"IDLE" in client.capabilities() and b"MOVE" in client.capabilities()
        assert client.find_special_folder(b"\\Sent") == "Sent"
        client.append("Sent", answer(mail, 9, mail.customers[0].address), flags=[imapclient.SEEN])
    [kept] = mail.support.messages("Sent")
    assert kept["Message-ID"] == "<answer-9@example.com>"


def test_a_reply_in_outlook_style_threads_with_the_answer(mail: MailServers) -> None:
    ana = mail.customers[0]
    opening = ana.send("Printer on fire", "open\nIt is on fire.")
    submit(mail, mail.support.reply(opening, "We are on it.", style="gmail", to=ana.address).as_bytes(), [ana.address])
    [bot_answer] = ana.wait_for(timeout=5)
    reply = ana.send_reply(bot_answer, "Still burning.", style="outlook", language="pt", signature="Ana Lima\nACME")
    assert reply["In-Reply-To"] == bot_answer["Message-ID"]
    assert reply["References"].split() == [opening["Message-ID"], bot_answer["Message-ID"]]
    assert reply["Subject"] == "Re: Printer on fire"  # one prefix, whoever added it
    text = body_text(reply)
    assert text.startswith("Still burning.\n\n-- \nAna Lima")
    assert "\nDe: Example Support <support@example.com>\nEnviado: " in text
    threads = mail.support.threads()
    assert [[m["Message-ID"] for m in thread] for thread in threads] == [[opening["Message-ID"], reply["Message-ID"]]]


def test_html_only_mail_with_an_attachment(mail: MailServers) -> None:
    sent = mail.customers[1].send(
        "Fatura",
        html="<p>Segue em anexo.</p>",
        attachments=[("fatura.pdf", b"%PDF-1.4 test", "application/pdf")],
    )
    [got] = mail.support.wait_for(timeout=5)
    assert got.get_body(preferencelist=("plain",)) is None
    assert "Segue em anexo." in got.get_body(preferencelist=("html",)).get_content()
    [attachment] = got.iter_attachments()
    assert attachment.get_filename() == "fatura.pdf" and attachment.get_content() == b"%PDF-1.4 test"
    assert got["Message-ID"] == sent["Message-ID"]


def test_the_settings_a_bot_is_given(mail: MailServers) -> None:
    env = mail.env()
    assert env["EMAIL_IMAP_URL"] == f"imap://127.0.0.1:{mail.dovecot.imap_port}"
    assert env["EMAIL_SMTP_URL"] == f"smtp://127.0.0.1:{mail.smtp.port}"
    implicit = mail.env("implicit")
    assert implicit["EMAIL_IMAP_URL"].startswith("imaps://") and implicit["EMAIL_SMTP_URL"].startswith("smtps://")
    # A client with only the CA file verifies the servers' certificate, name included.
    context = ssl.create_default_context(cafile=env["SSL_CERT_FILE"])
    with IMAPClient("127.0.0.1", port=mail.dovecot.imaps_port, ssl=True, ssl_context=context) as client:
        client.login(env["EMAIL_USERNAME"], env["EMAIL_PASSWORD"])
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            "127.0.0.1",
            port=mail.dovecot.imaps_port,
            ssl=True,
            ssl_context=ssl.create_default_context(cafile=None, capath="/nonexistent"),
        )


def test_mail_that_came_before_idle_is_told_at_once_but_imapclient_idle_check_misses_it(mail: MailServers) -> None:
    """Facts an IMAP reader (deskbot's channel, bench/email_echo.py) must live with.

    1. Mail that arrives while the client is busy is told (EXISTS) in the answer to its next
       command, and not again once the client IDLEs.
    2. Mail that arrives after the client's last command is told at once when IDLE begins,
       often in the same packet as the `+ idling` continuation; imaplib then holds it in its
       read buffer, and imapclient's `idle_check`, which polls the socket, does not see it
       (it comes out of `idle_done`): a reader that trusts `idle_check` alone leaves such
       mail unread until the next one arrives or its IDLE ends.
    3. Mail that arrives during IDLE is told about 0.5 s later (Dovecot's notify delay).
    """
    with imap_login(mail, implicit=False) as client:
        client.select_folder("INBOX")
        mail.customers[0].send("While the client was busy", "text")
        _text, untagged = client.noop()
        assert (1, b"EXISTS") in untagged
        client.idle()
        assert _news(client.idle_check(timeout=1.0)) == []
        assert _news(client.idle_done()[1]) == []  # (1) told once, in the NOOP's answer

        mail.customers[0].send("Between the last command and IDLE", "text")
        client.idle()
        assert client._imap.file.peek(1).startswith(b"* 2 EXISTS")  # (2) already read, with "+ idling"
        seen = client.idle_check(timeout=1.0)
        # … where idle_check does not look, unless something else reaches the socket meanwhile and
        # wakes its poll: Dovecot's keepalive (below), which then comes after the mail's lines.
        assert seen == [] or (seen[:2] == [(2, b"EXISTS"), (2, b"RECENT")] and len(seen) > 2), seen
        assert (2, b"EXISTS") in seen + client.idle_done()[1]

        client.idle()
        started = time.monotonic()
        mail.customers[0].send("During IDLE", "text")
        told: list = []
        while not told and time.monotonic() - started < 5:  # a keepalive alone wakes idle_check too
            told = _news(client.idle_check(timeout=5))
        assert (3, b"EXISTS") in told  # (3)
        assert 0.3 < time.monotonic() - started < 2
        client.idle_done()


def _news(responses: list) -> list:
    """What an IMAP answer tells about the mailbox, without Dovecot's `* OK Still here` keepalive.

    Its first one is timed to align a user's connections, so now and then it comes within any
    given second (CI saw one during the first IDLE above); it says nothing about mail.
    """
    return [response for response in responses if response != (b"OK", b"Still here")]


def test_plain_servers_offer_no_tls_and_take_a_plain_text_login() -> None:
    """What a bot may use only on a loopback host (a mail server on the same machine)."""
    with MailServers(plain=True) as mail:
        assert mail.dovecot.imaps_port == 0 and mail.smtp.tls_port == 0
        with IMAPClient("127.0.0.1", port=mail.dovecot.imap_port, ssl=False, timeout=10) as client:
            assert b"STARTTLS" not in client.capabilities()
            client.login(SUPPORT_ADDRESS, mail.support.password)
        with smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=10) as smtp:
            smtp.ehlo()
            assert not smtp.has_extn("starttls") and smtp.has_extn("auth")
            smtp.login(SUPPORT_ADDRESS, mail.support.password)
            to = mail.customers[0].address
            smtp.sendmail(SUPPORT_ADDRESS, [to], answer(mail, 13, to))
        assert mail.customers[0].wait_for(timeout=5)[0]["Message-ID"] == "<answer-13@example.com>"
        assert not mail.smtp.accepted[0].tls
        sent = mail.customers[1].send("Plain", "text", via="smtp")
        assert mail.support.wait_for(timeout=5)[0]["Message-ID"] == sent["Message-ID"]
        assert mail.env()["EMAIL_IMAP_URL"] == f"imap://127.0.0.1:{mail.dovecot.imap_port}"
        with pytest.raises(ValueError):
            mail.env("implicit")
