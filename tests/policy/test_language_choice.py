"""`written_in_portuguese` weighs the signs of Portuguese against those of English: a Portuguese
courtesy in English text ("the share is not visible. Obrigado!") chooses nothing, while a short
Portuguese message still chooses Portuguese."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy.language import written_in_portuguese
from tests.policy.test_language import ENGLISH

#: What a customer writing English adds in Portuguese to be kind.
COURTESIES = [
    "obrigado", "obrigada", "muito obrigado", "muito obrigada", "obrigadão", "olá", "bom dia", "boa tarde",
    "boa noite", "cumprimentos",
]  # fmt: skip
#: Everyday English words, of which an English sentence has at least one.
EVERYDAY = ["the", "is", "it", "please", "I", "my", "not", "can", "you", "thanks", "hello", "hi"]
CASES = [str, str.capitalize, str.upper, str.title]


@settings(max_examples=500, deadline=None)
@given(
    words=st.lists(st.sampled_from(ENGLISH), max_size=30),
    everyday=st.sampled_from(EVERYDAY),
    courtesy=st.sampled_from(COURTESIES),
    case=st.sampled_from(CASES),
    punctuation=st.sampled_from(["", "!", ".", ",", " 🙏", "!!"]),
    places=st.tuples(st.integers(min_value=0), st.integers(min_value=0)),
    sep=st.sampled_from([" ", ", ", ". ", "\n"]),
)
def test_an_english_sentence_with_one_portuguese_courtesy_is_not_portuguese(
    words, everyday, courtesy, case, punctuation, places, sep
):
    sentence = list(words)
    sentence.insert(places[0] % (len(sentence) + 1), everyday)
    sentence.insert(places[1] % (len(sentence) + 1), case(courtesy) + punctuation)
    assert not written_in_portuguese(sep.join(sentence))


@pytest.mark.parametrize(
    "text",
    [
        "Hi, the share is not visible. Obrigado!",
        "Hello, I cannot reach the NAS since this morning. Cumprimentos, Ana",
        "Bom dia! The backup job fails every night",
        "thanks, obrigada",
    ],
)
def test_english_with_a_portuguese_courtesy_chooses_nothing(text):
    assert not written_in_portuguese(text)


@pytest.mark.parametrize(
    "text",
    [
        "Olá, preciso de ajuda",
        "obrigado",
        "Obrigada!",
        "muito obrigado 🙏",
        "Bom dia, o NAS não arranca",
        "Olá, o disco não arranca desde o update",
        "Olá, preciso de ajuda: the log says error 42",  # an English line quoted in Portuguese
    ],
)
def test_short_portuguese_messages_still_choose_portuguese(text):
    assert written_in_portuguese(text)
