"""A new mail that says it all in its subject: the subject is its text (not an empty message)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.email.inbound import mail_to_inbound
from adapters.email.reading import read_mail


def _inbound(subject: bytes, body: bytes = b"", extra: bytes = b"") -> str:
    raw = b"From: ana@customer.example\r\nTo: support@example.com\r\nSubject: " + subject + b"\r\n"
    raw += b"Message-ID: <1@customer.example>\r\n" + extra + b"\r\n" + body
    return mail_to_inbound(
        read_mail(raw), own_address="support@example.com", uid_key="u", received_at=datetime.now(UTC), authserv_id=None
    ).text


@pytest.mark.parametrize(
    ("subject", "body", "extra", "text"),
    [
        (b"Printer on fire", b"", b"", "Printer on fire"),
        (b"[EXTERNAL] Printer on fire", b"\r\n\r\n", b"", "Printer on fire"),
        (b"Printer on fire", b"It jams.\r\n", b"", "It jams."),  # a body says it
        (b"Re: [#3] Printer", b"", b"In-Reply-To: <x@example.com>\r\n", ""),  # a reply: no text of its own
        (b"", b"", b"", ""),
    ],
)
def test_a_new_mail_with_only_a_subject_is_its_subject(subject, body, extra, text) -> None:
    assert _inbound(subject, body, extra) == text
