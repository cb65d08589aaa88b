"""`written_in_portuguese`: the signs of Portuguese that no English text carries (the weighing of
them against signs of English: test_language_choice)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy.language import reply_language, signs, written_in_portuguese

ENGLISH = (
    "hello I need help with my NAS the disk is full again since the update yesterday please "
    "open a new incident thanks error 42 in the log status of my case can you call me back "
    "it does not work any more and the shares are slow"
).split()


@pytest.mark.parametrize(
    "text",
    [
        "Olá, preciso de ajuda com o meu NAS",
        "O disco não arranca",
        "bom dia, tenho um problema",
        "OBRIGADO",
        "Boa tarde. As partilhas estão lentas",
        "erro 42 ao arrancar",
        "A configuração das partilhas está errada desde a atualização",
    ],
)
def test_portuguese_first_messages(text: str) -> None:
    assert written_in_portuguese(text)


@pytest.mark.parametrize(
    "text",
    [
        "Hello, I need help with my NAS",
        "hola, necesito ayuda",  # Spanish: none of the signs
        "status",
        "",
        "Nao, no",  # without its tilde "não" is no sign
        "Estoy bien, tengo un error",
        "João from our IT team says the log shows error 42",
        "Our São Paulo office cannot reach the NAS",
    ],
)
def test_other_first_messages(text: str) -> None:
    assert not written_in_portuguese(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ENGLISH), max_size=30), st.sampled_from([" ", ", ", ". ", "\n"]))
def test_english_words_are_never_taken_for_portuguese(words: list[str], sep: str) -> None:
    assert not written_in_portuguese(sep.join(words))


NAMES = ["João", "São", "Conceição", "Simões", "Guimarães", "Magalhães", "Ãgueda"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(ENGLISH), max_size=30),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=4),
    st.randoms(use_true_random=False),
    st.sampled_from([" ", ", ", "\n"]),
)
def test_portuguese_names_in_english_text_are_not_portuguese(words, names, random, sep) -> None:
    mixed = [*words, *names]
    random.shuffle(mixed)
    assert not written_in_portuguese(sep.join(mixed))


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=200), st.sampled_from(["não", "estão", "atualização", "põe", "lições"]), st.integers(min_value=0)
)
def test_a_word_with_a_nasal_vowel_not_capitalised_is_a_sign_of_portuguese_anywhere(text, word, at) -> None:
    at %= len(text) + 1
    mixed = text[:at] + " " + word + " " + text[at:]
    assert word in signs(mixed).portuguese
    if not signs(mixed).english:  # English around it is weighed against it (test_language_choice)
        assert written_in_portuguese(mixed)


def test_only_the_start_of_a_long_message_is_read() -> None:
    assert written_in_portuguese("Olá! " + "x " * 1_000_000)
    assert not written_in_portuguese("Hello " * 1000 + "olá")  # past the first 2,000 characters


@pytest.mark.parametrize(
    ("text", "customer", "tagged"),
    [
        ("Please check the cable and reboot, then tell us what you see.", "pt", "en"),
        ("Check the SATA cable", "pt", "en"),
        ("Pode verificar o cabo e reiniciar, por favor?", "en", "pt"),
        ("Obrigado, já está resolvido.", "en", "pt"),
        ("O log diz: the disk is full", "pt", "pt"),  # a quoted line changes nothing
        ("The log says: o disco está cheio", "en", "en"),
        ("Verifique o cabo SATA e reinicie.", "pt", "pt"),
        ("Verifique o cabo SATA e reinicie.", "en", "en"),  # no sign: the customer's
        ("Thanks!", "pt", "pt"),  # one word is no sign
        ("Update the OS of the NAS at example.com", "pt", "en"),  # os, nas, com: no Portuguese
        ("ok", "en", "en"),
    ],
)
def test_an_answer_is_tagged_with_the_language_it_is_written_in(text: str, customer: str, tagged: str) -> None:
    assert reply_language(text, customer) == tagged


@given(st.lists(st.sampled_from(ENGLISH), max_size=40), st.sampled_from(["en", "pt"]))
def test_english_words_never_make_an_answer_portuguese(words: list[str], customer: str) -> None:
    assert reply_language(" ".join(words), customer) in {customer, "en"}
    assert reply_language(" ".join(words), "en") == "en"
