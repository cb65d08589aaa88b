"""The email channel's pure parts: subjects and tags read, thread chains kept in bounds, and the
mail of an outbox row (threading, the stable Message-ID, Auto-Submitted)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.channel import Outbound
from adapters.email.compose import build, message_id, subject_line
from adapters.email.inbound import CHAIN_LIMIT, case_tag, clean_subject, thread_chain


@pytest.mark.parametrize(
    ("subject", "clean", "tag"),
    [
        ("VPN drops", "VPN drops", None),
        ("Re: [#12] VPN drops", "VPN drops", 12),
        ("RE: RES: Enc: [#7] Impressora", "Impressora", 7),
        ("AW: Fwd: Printer [#3]", "Printer", 3),
        ("Re[2]: status", "status", None),
        ("[# 44 ] anything", "anything", 44),
        ("Re:", None, None),
        # Mail gateways' tags before the prefixes, and the spaces a removed tag leaves.
        ("[EXTERNAL] RE: [#12] Server down", "Server down", 12),
        ("[EXT] Re: Fwd: [#3]  Printer  jam", "Printer jam", 3),
        ("[External Sender] AW: Drucker", "Drucker", None),
        ("RE: [EXTERNO] Impressora", "Impressora", None),
        ("[URGENT] Server down", "[URGENT] Server down", None),  # the sender's own tag stays
        ("", None, None),
    ],
)
def test_subjects_lose_prefixes_and_tags(subject: str, clean: str | None, tag: int | None) -> None:
    assert clean_subject(subject) == clean
    assert case_tag(subject) == tag


ids = st.from_regex(r"<[a-z0-9.]{1,60}@[a-z]{1,20}\.example>", fullmatch=True)


@given(st.lists(ids, min_size=1, max_size=60, unique=True), ids)
def test_a_thread_chain_fits_and_keeps_the_root_and_the_message(references: list[str], own: str) -> None:
    chain = thread_chain(own, references[-1], tuple(references)).split()
    assert len(" ".join(chain)) <= CHAIN_LIMIT
    assert chain[-1] == own
    assert chain[0] == (references[0] if own != references[0] else own)
    assert len(chain) == len(set(chain))


def _row(**changes: object) -> Outbound:
    values: dict[str, object] = {
        "outbox_id": 41,
        "channel": "email",
        "kind": "direct",
        "text": "Incident #3 is open.",
        "recipient": "ana@customer.example",
        "conversation": "<root@customer.example> <second@customer.example>",
        "written_at": datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC),
        "case": 3,
        "subject": "VPN drops",
    }
    values.update(changes)
    return Outbound(**values)  # type: ignore[arg-type]


def test_a_rows_mail_is_threaded_and_carries_a_stable_message_id() -> None:
    mail = build(_row(), address="support@example.com", display_name="Example Support", now=datetime.now(UTC))
    assert mail["From"] == "Example Support <support@example.com>"
    assert mail["Subject"] == "Re: [#3] VPN drops"
    assert mail["In-Reply-To"] == "<second@customer.example>"
    assert mail["References"] == "<root@customer.example> <second@customer.example>"
    assert mail["Auto-Submitted"] == "auto-replied"
    again = build(_row(attempt=2), address="support@example.com", display_name="S", now=datetime.now(UTC))
    assert again["Message-ID"] == mail["Message-ID"] == message_id(_row(), "example.com", "S")
    # A database made again numbers rows from 1 again, never at the same microsecond.
    assert message_id(_row(written_at=datetime(2027, 1, 1, tzinfo=UTC)), "example.com", "S") != mail["Message-ID"]


def test_an_engineers_words_carry_no_auto_submitted_and_a_first_mail_no_re() -> None:
    mail = build(_row(automatic=False), address="support@example.com", display_name="S", now=datetime.now(UTC))
    assert mail["Auto-Submitted"] is None and mail["X-Auto-Response-Suppress"] is None
    assert subject_line(_row(conversation=None, case=None, subject=None), "Example Support") == "Example Support"
    assert subject_line(_row(case=None, subject="Hello"), "S") == "Re: Hello"
