"""Case topics on Zulip: the channel names them (`case_topic`) and reads their case back (`Inbound.case`).

No network: a channel that was never started names topics, and messages are read
from payloads as the receive loop gets them.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.printable import JOINING
from adapters.topics import case_in_topic, clip_topic
from adapters.zulip import ZulipChannel
from adapters.zulip.compose import MAX_TOPIC_LENGTH
from adapters.zulip.inbound import to_inbound
from adapters.zulip.state import ServerState
from tests.zulip.conftest import ALICE, BOT, BOT_KEY, ENGINEER, STREAM

BOT_ID, ENGINEER_ID, ALICE_ID, STREAM_ID = 8, 10, 11, 5
CHANNEL = ZulipChannel(site="http://127.0.0.1:1", email=BOT, api_key=BOT_KEY, stream=STREAM)


# -- naming a case's topic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer", "subject", "expected"),
    [
        ("Alice Customer", "printer on fire", "#12 Alice Customer: printer on fire"),
        ("Alice\tCustomer", "printer\non   fire ", "#12 Alice Customer: printer on fire"),
        ("Acme", "x" * 80, "#12 Acme: " + "x" * 49 + "…"),
        ("Acme", "word " * 20, "#12 Acme: " + "word " * 9 + "word…"),
        # Issue 16.4: Zulip refuses a topic name with a control character (colours, a bell, bidi overrides).
        ("Alice Customer", "\x1b[31mRED\x1b[0m disk\x07 alarm\u202e", "#12 Alice Customer: [31mRED[0m disk alarm"),
        ("\u200bAl\u00adice", "zero\u200bwidth", "#12 Alice: zerowidth"),
        # Joiners are not acting characters: a family emoji and a Persian word keep theirs.
        (
            "\U0001f468\u200d\U0001f469\u200d\U0001f467",
            "\u0633\u0644\u0627\u0645\u200c\u062e\u0648\u0628\u06cc",
            "#12 \U0001f468\u200d\U0001f469\u200d\U0001f467: \u0633\u0644\u0627\u0645\u200c\u062e\u0648\u0628\u06cc",
        ),
    ],
)
def test_case_topic_is_one_line_of_printable_characters_within_zulips_limit(
    customer: str, subject: str, expected: str
) -> None:
    assert CHANNEL.case_topic(12, customer, subject) == expected


def test_a_cut_never_leaves_a_combining_mark_dangling() -> None:
    name = CHANNEL.case_topic(1, "Zoë", "e\u0301" * 40)
    assert len(name) <= MAX_TOPIC_LENGTH and name.endswith("e\u0301…")  # the letter keeps its accent


def test_a_cut_never_splits_a_flag_or_an_emoji_sequence() -> None:
    flags = "\U0001f1f5\U0001f1f9" * 40  # 🇵🇹: two code points each
    name = CHANNEL.case_topic(1, "Acme", flags)
    assert len(name) <= MAX_TOPIC_LENGTH and name.endswith("\U0001f1f5\U0001f1f9…")
    assert (len(name) - len("#1 Acme: …")) % 2 == 0


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("#12 Alice: printer on fire", "#12 Alice: printer on fire"),
        ("  #12   spaced  out ", "#12 spaced out"),
        ("#1 " + "a" * 80, "#1 " + "a" * 56 + "…"),
    ],
)
def test_a_topic_a_row_names_is_clipped_the_same_way(topic: str, expected: str) -> None:
    assert clip_topic(topic, MAX_TOPIC_LENGTH) == expected


@given(st.integers(min_value=1, max_value=2**31 - 1), st.text(max_size=120), st.text(max_size=120))
def test_every_case_topic_fits_zulip_and_names_its_case(number: int, customer: str, subject: str) -> None:
    name = CHANNEL.case_topic(number, customer, subject)
    assert len(name) <= MAX_TOPIC_LENGTH
    assert not any(unicodedata.category(c).startswith("C") and c not in JOINING for c in name)
    assert "\n" not in name
    assert case_of(stream_message(name)) == number


# -- reading the case back from a message in its topic -------------------------------------------------


def state() -> ServerState:
    return ServerState(stream_name=STREAM, user_id=BOT_ID, email=BOT, full_name="Deskbot", stream_id=STREAM_ID)


def stream_message(topic: str) -> dict[str, object]:
    return {
        "id": 100,
        "type": "stream",
        "stream_id": STREAM_ID,
        "subject": topic,
        "sender_id": ENGINEER_ID,
        "sender_email": ENGINEER,
        "sender_full_name": "Erin Engineer",
        "content": "/assign me",
        "timestamp": 1_700_000_000,
    }


def case_of(message: dict[str, object]) -> int | None:
    inbound = to_inbound(message, state())
    assert inbound is not None
    return inbound.case


@pytest.mark.parametrize(
    ("topic", "case"),
    [
        ("#12 Alice Customer: printer", 12),
        ("#12", 12),
        ("#0 test", 0),
        ("#007 Bond: licence", 7),
        # The number ends where the digits do, as the core's rule did (`^#([0-9]+)(?![0-9])`).
        ("#12abc", 12),
        ("#12: x", 12),
        # At most 32 digits (bot.numbers.MAX_DIGITS): a longer run is no number; a number too
        # large for an id is still read, and then names no case (the core answers as for any).
        ("#" + "9" * 30 + " x", int("9" * 30)),
        ("#" + "9" * 32, int("9" * 32)),
        ("#" + "9" * 33 + " x", None),
        ("#" + "1" * 5000, None),
        # Only the very start counts, and only ASCII digits.
        (" #12 Alice", None),
        ("Re: #12 Alice", None),
        ("12 Alice", None),
        ("# 12", None),
        ("#", None),
        ("", None),
        ("#\uff11\uff12 full-width", None),
        ("#\u0663 Arabic-Indic", None),
        ("#-1", None),
        ("#+1", None),
        ("deskbot alerts", None),
    ],
)
def test_a_topic_message_carries_the_case_its_topic_starts_with(topic: str, case: int | None) -> None:
    assert case_of(stream_message(topic)) == case


def test_a_direct_message_carries_no_case() -> None:
    message = {
        "id": 101,
        "type": "private",
        "display_recipient": [{"id": BOT_ID}, {"id": ALICE_ID}],
        "sender_id": ALICE_ID,
        "sender_email": ALICE,
        "sender_full_name": "Alice Customer",
        "content": "#12 is still broken",
        "timestamp": 1_700_000_000,
    }
    inbound = to_inbound(message, state())
    assert inbound is not None and inbound.kind == "direct" and inbound.case is None and inbound.topic is None


@pytest.mark.parametrize(
    ("topic", "case"),
    [("#12 Alice: printer", 12), ("\u2714 #12 Alice: printer", 12), ("\u2714#12 Alice", None), ("x \u2714 #12", None)],
)
def test_a_topic_zulip_marked_resolved_is_still_its_cases(topic: str, case: int | None) -> None:
    assert case_in_topic(topic) == case
    assert case_of(stream_message(topic)) == case
