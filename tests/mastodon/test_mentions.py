"""Mentions as Mastodon finds them (Ruby's `[[:word:]]`), and text that mentions nobody.

Two implementations of Mastodon's rule meet here: the adapter's compiled
regex (adapters/mastodon/mentions.py) and the fake server's hand-written scan
(tests/fakes/mastodon/text.py). Hypothesis holds them to each other over
arbitrary Unicode, and holds neutralised text to having no mention by either.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.mastodon.mentions import ZWJ, find_mentions, is_word_char, neutralise_mentions, third_party_mentions
from tests.fakes.mastodon.text import mention_spans, ruby_word

#: Characters that are word characters to Python's `\w` and not to Ruby's
#: `[[:word:]]` (numbers other than decimal digits), and the other way round (marks).
NOT_RUBY_WORD = ["²", "½", "௰", "¹", "౸"]
MARKS = ["\u0301", "\u0903", "\u20dd"]


@pytest.mark.parametrize("number", NOT_RUBY_WORD)
def test_a_number_that_is_not_a_digit_does_not_shield_a_mention(number: str) -> None:
    text = f"Unexpected text: {number}@victim@host.example"
    assert re.search(r"\w@", text), "Python's \\w takes it for a word character: the old check saw no mention"
    assert find_mentions(text) == ["victim@host.example"]
    assert [m.handle for m in mention_spans(text)] == ["victim@host.example"]
    assert find_mentions(neutralise_mentions(text)) == []
    assert list(mention_spans(neutralise_mentions(text))) == []


@pytest.mark.parametrize("mark", MARKS)
def test_a_combining_mark_is_a_word_character_so_no_mention_follows_it(mark: str) -> None:
    text = f"e{mark}@victim"
    assert find_mentions(text) == [] and list(mention_spans(text)) == []
    assert neutralise_mentions(text) == text  # nothing to neutralise: Mastodon sees no mention


def test_word_characters_are_rubys() -> None:
    for char in "aZ_9٣é\u0301ⅫⒶ‿":  # letters, digits, marks, letter numbers, circled letters, connectors
        assert is_word_char(char) and ruby_word(char), char
    for char in "²½௰ -./=@!\u200d😀":
        assert not is_word_char(char) and not ruby_word(char), char


@pytest.mark.parametrize(
    ("text", "handles"),
    [
        ("@alice hi", ["alice"]),
        ("hi @bob@remote.example.", ["bob@remote.example"]),
        ("mail a@b.example", []),
        ("see https://x.example/@u or a=@v", []),
        ("@first.last-name@sub.host-name.example", ["first.last-name@sub.host-name.example"]),
        ("@trailing.@host", ["trailing", "host"]),  # a username cannot end with a dot; "." shields nothing
        ("@@twice", ["twice"]),
        ("@a@b@c", ["a@b"]),  # the second @c follows a word character
        ("@\u212aelvin", ["\u212aelvin"]),  # KELVIN SIGN folds to k under /i
        ("@ünïcode", []),
    ],
)
def test_mentions_found_like_mastodon(text: str, handles: list[str]) -> None:
    assert find_mentions(text) == handles
    assert [m.handle for m in mention_spans(text)] == handles


def test_third_party_mentions_leave_out_the_recipient_however_written() -> None:
    text = "@alice@Remote.Example hi @ALICE@remote.example and @carol, @carol@bot.example, @dave@x.example"
    assert third_party_mentions(text, "alice@remote.example", "bot.example") == [
        "carol",
        "carol@bot.example",
        "dave@x.example",
    ]
    assert third_party_mentions(text, "carol", "bot.example") == [
        "alice@Remote.Example",
        "ALICE@remote.example",
        "dave@x.example",
    ]


# Any Unicode, with the characters that decide a mention made frequent.
interesting = st.sampled_from(["@", "@", ".", "-", "=", "/", "_", "a", "Z", "9", " ", "\n", ZWJ, "\u212a", "\u0130"])
unicode_text = st.text(
    st.one_of(interesting, st.sampled_from(NOT_RUBY_WORD + MARKS), st.characters(exclude_categories=["Cs"])),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(unicode_text)
@example("²@victim@host")
@example("@a@b@c")
def test_the_fake_and_the_adapter_find_the_same_mentions(text: str) -> None:
    assert [m.handle for m in mention_spans(text)] == find_mentions(text)


@settings(max_examples=400, deadline=None)
@given(unicode_text)
@example("²@victim@host ½@x ௰@y")
def test_neutralised_text_mentions_nobody_and_reads_the_same(text: str) -> None:
    neutral = neutralise_mentions(text)
    assert find_mentions(neutral) == []
    assert list(mention_spans(neutral)) == []
    # Only ZERO WIDTH JOINERs were added, each right after an `@`.
    assert neutral.replace("@" + ZWJ, "@") == text.replace("@" + ZWJ, "@")
    assert len(neutral) - len(text) == neutral.count("@" + ZWJ) - text.count("@" + ZWJ)


@settings(max_examples=200, deadline=None)
@given(unicode_text, unicode_text)
def test_neutralised_text_after_the_recipients_mention_mentions_only_the_recipient(before: str, after: str) -> None:
    status = "@alice@remote.example " + neutralise_mentions(before) + " " + neutralise_mentions(after)
    assert third_party_mentions(status, "alice@remote.example", "bot.example") == []
    assert [m.handle for m in mention_spans(status)] == ["alice@remote.example"]


def test_every_code_point_is_classed_alike_by_both() -> None:
    # The whole of Unicode, once: the two definitions of Ruby's word class agree everywhere.
    disagree = [
        hex(code)
        for code in range(0x110000)
        if unicodedata.category(chr(code)) != "Cs" and is_word_char(chr(code)) != ruby_word(chr(code))
    ]
    assert disagree == []
