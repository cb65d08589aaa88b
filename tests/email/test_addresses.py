"""Answers to addresses that are not plain ASCII, through the real submission server (tests/mail).

An internationalised domain goes as punycode, in the envelope and the headers, through any
server; a local part with non-ASCII characters goes only through a server that offers SMTPUTF8
(the mail then in UTF-8), and without one the row fails for good (a copy is left out and named).
Whatever goes wrong in the middle of a transaction, the next mail goes on the same channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.channel import Outbound, PermanentSendError, Sent
from adapters.email import EmailChannel
from adapters.email.compose import message_id
from tests.mail.servers import SUPPORT_ADDRESS, SUPPORT_NAME, MailServers

from .channel_bot import FAST, email_settings

ANA = "ana.lima@customer.example"


@pytest.fixture
def channel(mail: MailServers) -> Iterator[EmailChannel]:
    email = EmailChannel(email_settings(mail), tuning=FAST)
    email.start()
    yield email
    email.close()


def row(recipient: str, number: int = 1, copies: tuple[str, ...] = ()) -> Outbound:
    return Outbound(
        outbox_id=number,
        channel="email",
        kind="direct",
        text="Olá, o seu pedido está aberto.",
        recipient=recipient,
        conversation="<n1@customer.example>",
        written_at=datetime(2026, 3, 3, 10, 0, number, tzinfo=UTC),
        case=1,
        subject="Servidor em baixo",
        copies=copies,
    )


def test_an_internationalised_domain_goes_as_punycode(mail: MailServers, channel: EmailChannel) -> None:
    channel.send(row("ana@café.pt", copies=("rui@münchen.example",)))
    (taken,) = mail.smtp.wait_accepted(1)
    assert taken.rcpt_tos == ["ana@xn--caf-dma.pt", "rui@xn--mnchen-3ya.example"]
    assert "SMTPUTF8" not in taken.mail_options  # nothing asked of the server
    assert taken.raw.partition(b"\r\n\r\n")[0].isascii()  # headers in plain ASCII
    assert (taken.message["To"], taken.message["Cc"]) == ("ana@xn--caf-dma.pt", "rui@xn--mnchen-3ya.example")


def test_a_non_ascii_local_part_goes_through_smtputf8(mail: MailServers, channel: EmailChannel) -> None:
    channel.send(row("joão@exemplo.pt"))
    channel.send(row(ANA, 2))  # and the session goes on
    first, second = mail.smtp.wait_accepted(2)
    assert first.rcpt_tos == ["joão@exemplo.pt"] and "SMTPUTF8" in first.mail_options
    assert first.message["To"] == "joão@exemplo.pt"
    assert "To: joão@exemplo.pt\r\n".encode() in first.raw  # UTF-8 in the header, no encoded word
    assert first.message.get_content().rstrip() == "Olá, o seu pedido está aberto."
    assert second.rcpt_tos == [ANA]


def test_without_smtputf8_the_row_fails_for_good_and_the_next_mail_goes(
    mail: MailServers, channel: EmailChannel
) -> None:
    mail.smtp.offer_smtputf8(False)
    with pytest.raises(PermanentSendError, match=r"joão@exemplo\.pt.*SMTPUTF8"):
        channel.send(row("joão@exemplo.pt"))
    assert channel.send(row(ANA, 2)) == [mid(2)]
    (taken,) = mail.smtp.wait_accepted(1)
    assert taken.rcpt_tos == [ANA]


def test_without_smtputf8_such_a_copy_is_left_out_and_named(mail: MailServers, channel: EmailChannel) -> None:
    mail.smtp.offer_smtputf8(False)
    sent = channel.send(row(ANA, copies=("joão@exemplo.pt", "rui@customer.example")))
    assert isinstance(sent, Sent)
    assert list(sent.refused_copies) == ["joão@exemplo.pt"]
    assert "SMTPUTF8" in sent.refused_copies["joão@exemplo.pt"]
    (taken,) = mail.smtp.wait_accepted(1)
    assert taken.rcpt_tos == [ANA, "rui@customer.example"]
    assert taken.message["Cc"] == "rui@customer.example"


def test_an_error_in_the_middle_of_a_transaction_leaves_no_half_done_mail_behind(
    mail: MailServers, channel: EmailChannel
) -> None:
    channel.send(row(ANA))  # the session is open and kept
    poster = channel._poster
    assert poster is not None and poster._smtp is not None
    smtp = poster._smtp
    real_rcpt = smtp.rcpt

    def broken_rcpt(*args: object, **kwargs: object) -> object:
        smtp.rcpt = real_rcpt  # once: after MAIL FROM was taken
        raise RuntimeError("a bug between MAIL FROM and RCPT TO")

    smtp.rcpt = broken_rcpt  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        channel.send(row(ANA, 2))
    channel.send(row(ANA, 3))  # not "503 nested MAIL command"
    assert [m.message_id for m in mail.smtp.wait_accepted(2)] == [mid(1), mid(3)]


def mid(number: int) -> str:
    """The Message-ID of `row(ANA, number)` as the channel writes it."""
    return message_id(row(ANA, number), SUPPORT_ADDRESS.partition("@")[2], SUPPORT_NAME)
