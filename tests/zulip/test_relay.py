"""Message bodies for Zulip: inert quotes, splitting, nothing added (no network)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.zulip.compose import (
    CONTINUATION,
    as_stored,
    compose,
    fence_for,
)
from tests.zulip.relay_check import assert_commonmark_inert, longest_run, parse_relayed, unguard

HEADER = "**Alice Customer** (zulip, alice@example.com) wrote:"

# Characters that matter to Zulip's Markdown, plus ordinary text.
quote_text = st.text(
    alphabet=st.sampled_from(list("`~@*_/>#[]()!$\\ \n\r\tabcxyz0é😀") + ["\u200b"]), min_size=0, max_size=400
)


def test_fence_is_longer_than_any_backtick_run() -> None:
    assert fence_for("plain") == "```"
    assert fence_for("a ``` b") == "````"
    assert fence_for("`" * 10) == "`" * 11
    # Where backticks abound the fence switches to tildes, so that it stays short (issue 16.1).
    assert fence_for("`" * 20) == "~~~"
    assert fence_for("`" * 20 + "~" * 5) == "~~~~~~"
    assert fence_for("`" * 20 + "~" * 15) == "~" * 16
    assert fence_for("`" * 20 + "~" * 20) == "~" * 17  # guarded mode


@given(quote=quote_text)
@settings(max_examples=300, deadline=None)
def test_quote_always_stays_inside_the_fence(quote: str) -> None:
    [body] = compose(HEADER, quote)
    relayed = parse_relayed(body)
    normalised = quote.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    assert relayed.inside == normalised.split("\n")
    assert len(relayed.fence) > longest_run(quote, relayed.fence[0])
    assert relayed.outside == [HEADER, relayed.fence + "text", relayed.fence]


@given(quote=quote_text, max_length=st.integers(min_value=120, max_value=400))
@settings(max_examples=200, deadline=None)
def test_split_parts_fit_and_reassemble(quote: str, max_length: int) -> None:
    parts = compose(HEADER, quote, max_length)
    assert all(len(p) <= max_length for p in parts)
    inside: list[str] = []
    for number, part in enumerate(parts, 1):
        relayed = parse_relayed(part)
        # Customer text never starts a part: the first line is the header or the continuation mark.
        assert part.split("\n")[0] == (HEADER if number == 1 else CONTINUATION)
        assert len(relayed.fence) > longest_run(quote, relayed.fence[0]) or not relayed.inside
        inside.extend(relayed.inside)
    normalised = quote.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    # Hard-split long lines come back as several lines; their concatenation is the text.
    assert "".join(inside) == normalised.replace("\n", "")


def test_long_text_is_split_at_lines() -> None:
    text = "\n".join(f"line {i:04d} " + "x" * 90 for i in range(300))  # ~30,000 characters
    parts = compose(text, None)
    assert len(parts) == 4
    assert all(len(p) <= 10000 for p in parts)
    assert [p.split("\n")[0] for p in parts[1:]] == [CONTINUATION] * 3
    lines = [line for p in parts for line in p.split("\n") if line.startswith("line ")]
    assert lines == text.split("\n")


def test_a_fence_in_trusted_text_is_closed_and_reopened() -> None:
    text = "Here is the fix:\n```python\n" + "\n".join(f"x{i} = {i}" for i in range(60)) + "\n```\nDone."
    parts = compose(text, None, max_length=200)
    assert len(parts) > 2
    for part in parts:
        body = part.split("\n")
        opens = sum(1 for line in body if line.startswith("```python"))
        closes = sum(1 for line in body if line == "```")
        assert opens == closes, part
    assert parts[1].split("\n")[:2] == [CONTINUATION, "```python"]


def test_nothing_is_added_to_what_people_read() -> None:
    # Issue 13, item 5: no reference token, no marker: a direct message is the text, as written.
    assert compose("hello", None) == ["hello"]
    assert compose("Hello Alice,\nwe are on it.", None) == ["Hello Alice,\nwe are on it."]
    assert all("ref dk" not in p for p in compose("x\n" * 8000, None))


def test_a_body_is_a_pure_function_of_the_row_and_kept_as_stored() -> None:
    # What the look-up after a crash relies on: the same row gives the same bodies, and the
    # server's normalisation (trailing whitespace, leading newlines) is known.
    text = "\n\nAnswer with trailing spaces   \n\n"
    assert compose(text, None) == compose(text, None)
    assert [as_stored(p) for p in compose(text, "quoted  \n")] == compose(text, "quoted  \n")
    assert as_stored("\n\nhi  \n") == "hi"


# -- Hostile fences (issue 16.1): runs of backticks and tildes up to 20,000 characters -------------

runs = st.lists(
    st.tuples(st.sampled_from(["`", "~", " ", "x", "\n", "\u3000"]), st.integers(min_value=1, max_value=20_000)),
    min_size=1,
    max_size=12,
).map(lambda rs: "".join(char * n for char, n in rs)[:20_000])


def _reassembled(parts: list[str]) -> tuple[list[str], list[str]]:
    """(quoted lines as the customer wrote them, fences used) across all parts, checking each part's inertness."""
    inside: list[str] = []
    fences: list[str] = []
    for part in parts:
        relayed = parse_relayed(part)
        assert_commonmark_inert(relayed)
        if relayed.fence:
            fences.append(relayed.fence)
        inside.extend(unguard(line, relayed.fence) for line in relayed.inside)
    return inside, fences


@given(quote=runs, max_length=st.sampled_from([200, 1000, 10000]))
@settings(max_examples=150, deadline=None)
def test_runs_of_fence_characters_stay_inert_in_few_bounded_parts(quote: str, max_length: int) -> None:
    parts = compose(HEADER, quote, max_length)
    assert all(len(p) <= max_length for p in parts)
    # Bounded: each part carries at least half its room of text (plus the one the header may leave).
    assert len(parts) <= len(quote) // (max_length // 2 - 5) + 2
    inside, fences = _reassembled(parts)
    assert all(3 <= len(f) <= 17 for f in fences)
    normalised = quote.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    assert "".join(inside) == normalised.replace("\n", "")


@pytest.mark.parametrize(
    "quote",
    [
        "`" * 4_990,  # hung the Zulip channel: the fence plus the text no longer fit one message
        "`" * 4_900,  # became 29 topic messages
        "`" * 10_000,
        "~" * 10_000,
        ("`" * 50 + "\n" + "~" * 50 + "\n") * 100,
        "`" * 5_000 + "\n" + "~" * 5_000,
        "x" * 10_000,
    ],
)
def test_a_ten_thousand_character_text_is_at_most_three_messages(quote: str) -> None:
    parts = compose(HEADER, quote)
    assert 1 <= len(parts) <= 3
    assert all(len(p) <= 10_000 for p in parts)
    inside, _ = _reassembled(parts)
    assert "".join(inside) == quote.rstrip("\n").replace("\n", "")


def test_a_fence_only_line_is_indented_when_both_fence_characters_abound() -> None:
    quote = "`" * 40 + "\n" + "~" * 40 + "\n" + "~" * 16 + "\u3000\n  ~~~"
    [body] = compose(HEADER, quote)
    relayed = parse_relayed(body)
    assert relayed.fence == "~" * 17
    assert relayed.inside == ["    " + "`" * 40, "    " + "~" * 40, "    " + "~" * 16 + "\u3000", "      ~~~"]


def test_a_trusted_text_with_a_huge_fence_line_is_still_split() -> None:
    # An engineer's reply: a fence opener longer than half a part is not carried across parts.
    text = "```" + "x" * 30_000 + "\nmore\n```"
    parts = compose(text, None)
    assert len(parts) == 4
    assert all(len(p) <= 10_000 for p in parts)


def test_a_sixteen_tilde_fence_leaves_lines_as_written() -> None:
    # Found by bench/fuzz.py: a 16-tilde fence chosen by run length guards nothing (a backtick
    # line cannot close it), and must not be mistaken for the guarded fence.
    quote = "~" * 15 + "\n" + "    " + "`" * 30 + "    "
    [body] = compose(HEADER, quote)
    relayed = parse_relayed(body)
    assert relayed.fence == "~" * 16
    assert relayed.inside == quote.split("\n")
    assert [unguard(line, relayed.fence) for line in relayed.inside] == quote.split("\n")
