"""Polite answers to the bot's question (bot.policy.answers.bare_answer): "yes please, open it",
"sim, por favor abram o pedido", "não, obrigado" are the answers they are, while any text that
carries something more (a problem, a question) is not. Examples and properties, no database."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy.answers import bare_answer, only_noted

YES = [
    "yes please",
    "Yes please, open it",
    "yes, please open it",
    "please do",
    "Go ahead!",
    "sure, go ahead",
    "ok, open it please",
    "sim",
    "Sim, por favor",
    "Sim, por favor abram o pedido.",
    "sim por favor abram o pedido",
    "Pode abrir.",
    "Abram, por favor.",
    "Sim, pode abrir, obrigado",
    "claro, avancem",
    "abram-no, se faz favor",
]
NO = ["Não, obrigado.", "no thanks", "No, don't open it", "não abram, obrigada", "not now, thanks", "deixa estar"]
NEW = ["yes, a new one please", "open a new incident", "sim, um novo pedido", "um novo, por favor"]
#: Real descriptions of problems and questions, as customers write them.
PROBLEMS = [
    "the disk is full",
    "o disco do servidor está cheio",
    "backups fail every night",
    "can you open the firewall port 443?",
    "a impressora não imprime",
    "why was I charged twice?",
    "the VPN drops every hour since Monday",
    "pode verificar o certificado?",
    "open files limit is too low",
    "abram a porta 22 no firewall",
]


@pytest.mark.parametrize("text", YES)
def test_polite_confirmations_are_a_yes(text: str) -> None:
    assert bare_answer(text) == "yes"


@pytest.mark.parametrize("text", NO)
def test_polite_refusals_are_a_no(text: str) -> None:
    assert bare_answer(text) == "no"


@pytest.mark.parametrize("text", NEW)
def test_asking_for_a_new_one_politely_is_new(text: str) -> None:
    assert bare_answer(text) == "new"


@pytest.mark.parametrize(
    "text",
    [
        "yes, and the disk is full too",
        "sim, mas o disco continua cheio",
        "yes please, what does it cost?",
        "no, it is the other server",
        "yes no",  # both
        "sim, não",
        "open",  # a command alone, not an answer to one
        "abrir",
        "obrigado",  # a thank-you is no yes (bot.policy.answers.thank_you)
    ],
)
def test_an_answer_with_anything_more_or_mixed_is_text(text: str) -> None:
    assert bare_answer(text) is None


@given(
    st.sampled_from(PROBLEMS),
    st.sampled_from(["yes", "Yes please", "sim", "sim, por favor", "ok", "go ahead", "pode abrir", "abram"]),
    st.sampled_from(["before", "after", "inside"]),
    st.sampled_from([" ", ", ", ". ", "! ", " - "]),
)
def test_a_problem_with_a_yes_inside_is_never_an_answer(problem: str, yes: str, where: str, sep: str) -> None:
    words = problem.split()
    if where == "before":
        text = yes + sep + problem
    elif where == "after":
        text = problem + sep + yes
    else:
        middle = len(words) // 2
        text = " ".join(words[:middle]) + sep + yes + sep + " ".join(words[middle:])
    assert bare_answer(text) is None


def _accented(text: str) -> str:
    """The Portuguese accents a keyboard adds or leaves out: "nao" ↔ "não", "avancem" ↔ "avançem"."""
    return text.replace("nao", "não").replace("avanc", "avanç").replace("esta bem", "está bem")


@given(
    st.sampled_from([(t, "yes") for t in YES] + [(t, "no") for t in NO] + [(t, "new") for t in NEW]),
    st.lists(st.booleans(), min_size=60, max_size=60),
    st.text(alphabet=" .,!?¡¿…;:-", max_size=4),
    st.booleans(),
    st.booleans(),
)
def test_case_punctuation_and_accents_change_no_answer(
    example: tuple[str, str], upper: list[bool], around: str, accents: bool, strip_accents: bool
) -> None:
    text, expected = example
    varied = "".join(
        ch.upper() if flip else ch.lower() for ch, flip in zip(text, upper + [False] * len(text), strict=False)
    )
    if accents:
        varied = _accented(varied)
    if strip_accents:
        varied = "".join(c for c in unicodedata.normalize("NFKD", varied) if not unicodedata.combining(c))
    assert bare_answer(around + varied + around) == expected
    assert bare_answer(varied.replace(" ", ", ")) == expected  # commas between the words


@given(
    st.sampled_from(YES + NO + NEW),
    st.sampled_from(["disk", "printer", "servidor", "erro", "lento", "backup", "why", "porque", "but", "mas"]),
)
def test_one_word_of_content_makes_any_answer_text(answer: str, word: str) -> None:
    assert bare_answer(f"{answer} {word}") is None and bare_answer(f"{word} {answer}") is None


@given(st.lists(st.sampled_from(["yes", "please", "sim", "por favor", "obrigado", "ok"]), min_size=11, max_size=20))
def test_more_words_than_a_short_answer_are_text(words: list[str]) -> None:
    assert bare_answer(" ".join(words)) is None


@pytest.mark.parametrize("text", ["ok", "OK 👍", "👍", "Está bem.", "ok, obrigado", "got it"])
def test_a_bare_ok_only_notes(text: str) -> None:
    assert only_noted(text)


@pytest.mark.parametrize("text", ["yes please", "sim, abram", "go ahead", "ok, open it", "ok the disk is full", ""])
def test_a_yes_that_asks_for_something_is_more_than_noted(text: str) -> None:
    assert not only_noted(text)
