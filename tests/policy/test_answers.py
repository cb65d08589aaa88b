"""A customer's bare answer to the bot's question (bot.policy.answers): examples and properties, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy.answers import bare_answer, thank_you


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


@pytest.mark.parametrize("text", ["Thanks!", "thank you 🙏", "Muito obrigado!!", "obrigadão", "THX", "Many thanks."])
def test_a_bare_thank_you(text: str) -> None:
    assert thank_you(text)


@pytest.mark.parametrize(
    "text", ["thanks, but it still fails", "yes", "ok 👍", "obrigado, o disco voltou a falhar", "", "no thanks"]
)
def test_a_thank_you_with_more_to_say_is_text(text: str) -> None:
    assert not thank_you(text)


@given(
    st.sampled_from(["thanks", "Thank you!", "obrigada", "muito obrigado"]),
    st.sampled_from(["but the disk fails", "it broke again", "está lento", "erro 42", "and one more thing"]),
    st.sampled_from([" ", ", ", ". ", " - "]),
)
def test_a_thank_you_with_anything_more_is_text(thanks: str, more: str, sep: str) -> None:
    assert thank_you(thanks) and not thank_you(thanks + sep + more) and not thank_you(more + sep + thanks)
