"""Whether a customer's message starts an open case's response clock (bot/policy/response_clock.py):
examples and properties, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy.answers import thank_you
from bot.policy.response_clock import starts_response_clock

#: Bare thank-yous as people write them, each a whole message.
THANKS = [
    "Great, thanks!",
    "Thanks!",
    "thank you very much",
    "Muito obrigado 🙏",
    "obrigada!!",
    "Cheers",
    "OK, thanks.",
]
#: Words of a thank-you (`answers._THANKS`) and courtesy that ask for nothing.
THANKS_WORDS = ["thanks", "thank you", "many thanks", "obrigado", "muito obrigada", "ok thanks", "cheers"]


@pytest.mark.parametrize("text", THANKS)
def test_a_bare_thank_you_starts_no_stopped_clock(text: str) -> None:
    assert not starts_response_clock(text, with_files=False, clock_running=False)


@pytest.mark.parametrize(
    "text",
    [
        "thanks, but it fails again after the reboot",
        "Obrigado, mas continua a falhar",
        "Great, thanks! One more question: can we upgrade in place?",
        "still broken",
        "",  # files alone, or an empty mail: not a thank-you
    ],
)
def test_anything_more_than_a_thank_you_starts_a_stopped_clock(text: str) -> None:
    assert starts_response_clock(text, with_files=False, clock_running=False)


def test_a_thank_you_with_a_file_starts_it() -> None:
    # "Thanks! Here is the log you asked for": the file asks the team to look.
    assert starts_response_clock("Thanks!", with_files=True, clock_running=False)


@given(st.text(max_size=200), st.booleans())
def test_a_running_clock_is_never_started_again(text: str, with_files: bool) -> None:
    # The earliest unanswered message set the due time: writing more never pushes it out.
    assert not starts_response_clock(text, with_files=with_files, clock_running=True)


@given(st.text(max_size=200))
def test_a_stopped_clock_starts_for_exactly_what_is_not_a_bare_thank_you(text: str) -> None:
    assert starts_response_clock(text, with_files=False, clock_running=False) is not thank_you(text)


@given(st.text(max_size=200))
def test_a_stopped_clock_always_starts_with_a_file(text: str) -> None:
    assert starts_response_clock(text, with_files=True, clock_running=False)


punctuation = st.text(alphabet=" !.,?🙏😊", max_size=4)


@given(st.sampled_from(THANKS_WORDS), punctuation, punctuation, st.booleans())
def test_a_thank_you_however_written_starts_nothing(words: str, before: str, after: str, upper: bool) -> None:
    text = before + (words.upper() if upper else words.capitalize()) + after
    assert not starts_response_clock(text, with_files=False, clock_running=False)


@given(
    st.sampled_from(THANKS_WORDS),
    st.sampled_from(
        ["but", "still broken", "error 42", "falha", "please check", "the disk"]
    ),  # not "again": "thanks again" is one
)
def test_a_thank_you_that_says_something_more_starts_it(words: str, more: str) -> None:
    assert starts_response_clock(f"{words}, {more}", with_files=False, clock_running=False)
