"""A customer's bare answer to the bot's question (bot.policy.answers): examples and properties, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy.answers import bare_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("Yes!", "yes"),
        ("  OK 👍 ", "yes"),
        ("👍🏽", "yes"),
        ("Sim, por favor.", "yes"),
        ("claro", "yes"),
        ("no thanks", "no"),
        ("Não.", "no"),
        ("nao obrigada", "no"),
        ("👎", "no"),
        ("a new one", "new"),
        ("Um novo incidente", "new"),
        ("NEW!", "new"),
        # Anything more is text about the problem, whatever it starts with.
        ("yes, and the disk is full too", None),
        ("New error after the update", None),
        ("no network since Monday", None),
        ("open", None),
        ("yes 👎", None),  # says both
        ("", None),
        ("?!", None),
    ],
)
def test_examples(text: str, expected: str | None) -> None:
    assert bare_answer(text) == expected


@given(st.text(max_size=200))
def test_any_text_is_one_answer_or_none_and_never_raises(text: str) -> None:
    assert bare_answer(text) in ("yes", "no", "new", None)


@given(st.sampled_from(["yes", "sim", "no", "não", "a new one", "novo"]), st.text(alphabet=" .,!?¡¿…", max_size=6))
def test_punctuation_and_case_around_an_answer_change_nothing(word: str, around: str) -> None:
    expected = bare_answer(word)
    assert expected is not None
    assert bare_answer(around + word.upper() + around) == expected


@given(st.sampled_from(["yes", "sim", "no", "não", "novo"]), st.text(alphabet="abcdefghij", min_size=3, max_size=12))
def test_an_answer_followed_by_a_word_of_text_is_text(word: str, more: str) -> None:
    assert bare_answer(f"{word} {more}") is None


@given(st.text(alphabet="abc ", min_size=60, max_size=300))
def test_a_long_message_is_never_an_answer(text: str) -> None:
    assert bare_answer(text) is None
