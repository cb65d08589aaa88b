"""Message bodies for Zulip: inert quotes, references, splitting (no network)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.zulip._relay import (
    CONTINUATION,
    clip_topic,
    compose,
    fence_for,
    find_reference,
)
from tests.zulip.relay_check import longest_backtick_run, parse_relayed

HEADER = "**Alice Customer** (zulip, alice@example.com) wrote:"

# Characters that matter to Zulip's Markdown, plus ordinary text.
quote_text = st.text(
    alphabet=st.sampled_from(list("`~@*_/>#[]()!$\\ \n\r\tabcxyz0é😀") + ["\u200b"]), min_size=0, max_size=400
)


def test_fence_is_longer_than_any_backtick_run() -> None:
    assert fence_for("plain") == "```"
    assert fence_for("a ``` b") == "````"
    assert fence_for("`" * 10) == "`" * 11


@given(quote=quote_text)
@settings(max_examples=300, deadline=None)
def test_quote_always_stays_inside_the_fence(quote: str) -> None:
    [body] = compose(HEADER, quote, "dk1")
    relayed = parse_relayed(body)
    normalised = quote.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    assert relayed.inside == normalised.split("\n")
    assert len(relayed.fence) > longest_backtick_run(quote)
    assert relayed.outside == [HEADER, relayed.fence + "text", relayed.fence, "`ref dk1`"]


@given(quote=quote_text, max_length=st.integers(min_value=120, max_value=400))
@settings(max_examples=200, deadline=None)
def test_split_parts_fit_and_reassemble(quote: str, max_length: int) -> None:
    parts = compose(HEADER, quote, "dk42", max_length)
    assert all(len(p) <= max_length for p in parts)
    inside: list[str] = []
    for number, part in enumerate(parts, 1):
        relayed = parse_relayed(part)
        assert (relayed.reference, relayed.part, relayed.total) == ("dk42", number, len(parts))
        # Customer text never starts a part: the first line is the header or the continuation mark.
        assert part.split("\n")[0] == (HEADER if number == 1 else CONTINUATION)
        assert len(relayed.fence) > longest_backtick_run(quote) or not relayed.inside
        inside.extend(relayed.inside)
    normalised = quote.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    # Hard-split long lines come back as several lines; their concatenation is the text.
    assert "".join(inside) == normalised.replace("\n", "")


def test_long_text_is_split_at_lines_and_numbered() -> None:
    text = "\n".join(f"line {i:04d} " + "x" * 90 for i in range(300))  # ~30,000 characters
    parts = compose(text, None, "dk7")
    assert len(parts) == 4
    assert all(len(p) <= 10000 for p in parts)
    assert [find_reference(p) for p in parts] == [("dk7", 1), ("dk7", 2), ("dk7", 3), ("dk7", 4)]
    lines = [line for p in parts for line in p.split("\n") if line.startswith("line ")]
    assert lines == text.split("\n")


def test_a_fence_in_trusted_text_is_closed_and_reopened() -> None:
    text = "Here is the fix:\n```python\n" + "\n".join(f"x{i} = {i}" for i in range(40)) + "\n```\nDone."
    parts = compose(text, None, "dk9", max_length=200)
    assert len(parts) > 2
    for part in parts:
        body = part.split("\n")[:-1]
        opens = sum(1 for line in body if line.startswith("```python"))
        closes = sum(1 for line in body if line == "```")
        assert opens == closes, part
    assert parts[1].split("\n")[:2] == [CONTINUATION, "```python"]


def test_every_part_carries_the_reference() -> None:
    assert compose("hello", None, "dk3") == ["hello\n`ref dk3`"]
    assert find_reference("hello\n`ref dk3`") == ("dk3", 1)
    assert find_reference("hello\n`ref dk3 2/5`") == ("dk3", 2)
    assert find_reference("someone wrote `ref dk3` mid-line\nand more") is None


def test_reference_cannot_break_out_of_inline_code() -> None:
    [body] = compose("hello", None, "dk`@**all**")
    assert body.endswith("`ref dkall`")


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("#12 Alice: printer on fire", "#12 Alice: printer on fire"),
        ("  #12   spaced  out ", "#12 spaced out"),
        ("#1 " + "a" * 80, "#1 " + "a" * 56 + "…"),
        ("#1 " + "e\u0301" * 40, None),
    ],
)
def test_clip_topic(topic: str, expected: str | None) -> None:
    clipped = clip_topic(topic)
    assert len(clipped) <= 60
    if expected is not None:
        assert clipped == expected
    else:
        # Never ends with a combining mark cut off from its letter.
        assert clipped.endswith("e…")
