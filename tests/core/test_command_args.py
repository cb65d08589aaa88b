"""A customer's name in an engineer command needs no quotes (`Arg` kind "name"):
`/credits grant Acme Lda 3 2026-01-05` reads the name as every word the later arguments leave."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import Arg, Command, ParseError, parse_args
from bot.handlers.engineer import set_severity
from tests.desk import Desk

GRANT = Command(
    {"en": "credits"},
    "engineer",
    (Arg("customer", "name"), Arg("n", "int"), Arg("purchased", "date", required=False)),
    "grant",
    lambda *a, **k: None,
    sub="grant",
)


def _parse(rest: str) -> dict:
    return parse_args(GRANT, "grant " + rest, None)


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("Acme 3", ("Acme", 3, None)),
        ("Acme Lda 3", ("Acme Lda", 3, None)),
        ("Acme Lda 3 2026-01-05", ("Acme Lda", 3, date(2026, 1, 5))),
        ('"Acme Lda" 3', ("Acme Lda", 3, None)),
        ("Team 42 3", ("Team 42", 3, None)),  # a name ending in a number: the last number is n
        ("Team 42 3 2026-01-05", ("Team 42", 3, date(2026, 1, 5))),
        ("ana@acme.pt 2", ("ana@acme.pt", 2, None)),
        ("7 2", ("7", 2, None)),  # a customer id
    ],
)
def test_the_name_is_what_the_later_arguments_leave(rest, expected):
    values = _parse(rest)
    assert (values["customer"], values["n"], values["purchased"]) == expected


@pytest.mark.parametrize(
    ("rest", "error"),
    [
        ("Acme Lda", "Missing"),  # no n: the name is not taken to be "Acme" with n "Lda" silently
        ("Acme Lda x", "Missing"),  # a word: part of the name; then no n is given
        ("Acme Lda 3.5", "must be a whole number"),  # digits: meant as n
        ("Acme 3 2026-13-01", "must be a date"),
        ("Acme Lda 3 2026-02-30", "must be a date"),  # the name is not "Acme", with n "Lda"
        ("Acme Lda 3 9999-12-31", "must be a date"),
        ("Acme 3 2026-01-05 extra", "Unexpected text"),
        ("", "Missing"),
    ],
)
def test_what_does_not_fit_is_still_an_error(rest, error):
    with pytest.raises(ParseError) as raised:
        _parse(rest)
    assert error in raised.value.msgid


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÁÉçãõ-.&'", min_size=1, max_size=8)


@given(
    words=st.lists(WORD, min_size=1, max_size=4),
    n=st.integers(min_value=1, max_value=10_000),
    purchased=st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
)
def test_any_name_of_words_comes_back_whole(words, n, purchased):
    rest = " ".join([*words, str(n), *([purchased.isoformat()] if purchased else [])])
    values = _parse(rest)
    assert (values["customer"], values["n"], values["purchased"]) == (" ".join(words), n, purchased)


def test_an_engineer_grants_to_a_name_with_spaces_without_quotes(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme Lda")
    desk.customer("Acme")
    out = desk.engineer("/credits grant Acme Lda 3")
    assert "Pack 1: 3 credits for `Acme Lda`" in out
    assert "Pack 2: 1 credit for `Acme`" in desk.engineer("/credits grant Acme 1")


def test_an_engineer_is_told_which_argument_is_wrong_after_a_name_with_spaces(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme Corp")
    out = desk.engineer("/credits grant Acme Corp 5 2026-02-30")
    assert "[purchased] must be a date from 2000-01-01 to 2099-12-31, like 2026-03-31." in out
    assert "Missing <n>. Usage: /credits grant <customer> <n> [purchased]" in desk.engineer("/credits grant Acme Corp")
    assert "must be a whole number" not in out + desk.engineer("/credits grant Acme Corp")


@pytest.mark.parametrize(
    ("rest", "topic_case", "expected"),
    [
        ("12 high", None, {"number": 12, "severity": "2"}),
        ("12 CRÍTICA", None, {"number": 12, "severity": "1"}),
        ("critical", 7, {"number": 7, "severity": "1"}),  # in a case topic the number may be left out
        ("baixa", 7, {"number": 7, "severity": "4"}),
        ("7 3", None, {"number": 7, "severity": "3"}),
    ],
)
def test_a_severity_is_a_level_or_its_name_in_either_language(rest: str, topic_case: int | None, expected: dict):
    assert parse_args(set_severity.command, rest, topic_case) == expected
