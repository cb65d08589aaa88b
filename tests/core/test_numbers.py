"""Numbers people write: ASCII digits only, of bounded length; a number no row has is answered as unknown.

Each of these crashed a handler before (an apology and a traceback every time): "²" passes
`isdigit()` and then fails `int()`, 4,300 digits make `int()` raise, and SQLite cannot
bind an integer above 2⁶³.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.numbers import MAX_DIGITS, day, month, whole_number
from bot.services.billing import Month
from tests.desk import Desk

APOLOGY = "Sorry, something went wrong"
ABOVE_2_63 = str(2**63 + 5)


@pytest.mark.parametrize(
    "text",
    ["²", "1²", "٣", "１２", "⑦", " 7", "7 ", "+7", "-7", "1_000", "0x1F", "", "1" * (MAX_DIGITS + 1), "1" * 4300],
)
def test_what_is_not_a_number(text):
    assert whole_number(text) is None


def test_what_is_a_number():
    assert whole_number("0") == 0
    assert whole_number("007") == 7
    assert whole_number(ABOVE_2_63) == 2**63 + 5
    assert whole_number("9" * MAX_DIGITS) == 10**MAX_DIGITS - 1


@given(st.text(max_size=40))
def test_a_number_is_exactly_a_short_run_of_ascii_digits(text):
    expected = int(text) if text and len(text) <= MAX_DIGITS and all("0" <= c <= "9" for c in text) else None
    assert whole_number(text) == expected


def test_dates_and_months_take_ascii_digits_only():
    assert day("2026-03-31") == date(2026, 3, 31)
    for text in ("٢٠٢٦-٠٣-٣١", "2026-0３-31", "2026-02-30", "0000-01-01", "20260331", "2026-W13-1", "2026-3-31"):
        assert day(text) is None, text
    assert month("2026-12") == (2026, 12)
    for text in ("٢٠٢٦-١٢", "2026-13", "2026-00", "0000-01", "2026-²"):
        assert month(text) is None, text
    with pytest.raises(ValueError):
        Month.parse("٢٠٢٦-١٢")


# -- through the router, on SQLite and PostgreSQL ------------------------------------------------


def test_hash_with_thousands_of_digits_is_answered_like_an_unknown_incident(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Printer on fire")

    out = desk.say("Acme", "#" + "9" * 4300 + " still burning")

    assert APOLOGY not in out
    assert "You have no incident #" + "9" * MAX_DIGITS + "…" in out
    assert len(out) < 500


def test_numbers_above_2_63_name_no_incident(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Printer on fire")

    for line in (f"#{ABOVE_2_63} hello", f"status {ABOVE_2_63}", f"close {ABOVE_2_63}", f"status #{ABOVE_2_63}"):
        out = desk.say("Acme", line)
        assert APOLOGY not in out, line
        assert f"You have no incident #{ABOVE_2_63}." in out, (line, out)


def test_unicode_digits_are_not_case_numbers(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=2)
    desk.say("Acme", "open Printer on fire")

    out = desk.say("Acme", "close ²")
    assert APOLOGY not in out and "Which incident?" in out
    out = desk.say("Acme", "close ٣")  # int("٣") is 3: it must not be read as incident 3 (or 1)
    assert APOLOGY not in out and "Which incident?" in out
    out = desk.say("Acme", "status ²")
    assert APOLOGY not in out


def test_engineer_commands_take_ascii_numbers_only(engine, db_url, clock):
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    desk.say("Acme", "open Printer on fire")

    out = desk.engineer(f"/case {ABOVE_2_63}")
    assert f"There is no case #{ABOVE_2_63}." in out
    assert "No customer" in desk.engineer(f"/customer show {ABOVE_2_63}")
    assert "No customer" in desk.engineer("/customer show ²")
    assert "must be a whole number" in desk.engineer("/credits grant Acme ²")
    assert "must be a whole number" in desk.engineer("/credits grant Acme ٣")
    assert "must be a whole number" in desk.engineer("/credits grant Acme " + "9" * 4300)
    assert "must be a date" in desk.engineer("/credits grant Acme 2 ٢٠٢٦-٠١-٠١")
    out = desk.engineer(f"/credits grant Acme {ABOVE_2_63}")
    assert APOLOGY not in out and "between 1 and 10000" in out
    out = desk.engineer("/credits grant Acme 3 2026-01-10")
    assert "Pack 2: 3 credits for" in out and "bought 10 Jan 2026, valid until 10 Jan 2027 inclusive." in out


def test_a_choice_written_in_digits_takes_ascii_digits_only():
    # fold() maps "²" to "2" (NFKD), so a severity-like choice accepted "²" as "2".
    from bot.commands import Arg, Command, ParseError, parse_args

    cmd = Command(("level",), "engineer", (Arg("level", "choice", choices=("1", "2", "3", "4")),), "", print)
    assert parse_args(cmd, "2", None) == {"level": "2"}
    assert parse_args(cmd, "02", None) == {"level": "2"}
    for token in ("²", "٢", "２", "9" * 4300):
        with pytest.raises(ParseError):
            parse_args(cmd, token, None)


# -- dates people write are within 2000-01-01 … 2099-12-31 ---------------------------------------


def test_dates_and_months_are_within_the_range_people_write():
    assert day("2000-01-01") == date(2000, 1, 1) and day("2099-12-31") == date(2099, 12, 31)
    for text in ("9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"):
        assert day(text) is None, text
    assert month("2000-01") == (2000, 1) and month("2099-12") == (2099, 12)
    for text in ("9999-12", "0001-01", "1999-12", "2100-01"):
        assert month(text) is None, text
    with pytest.raises(ValueError, match="from 2000-01 to 2099-12"):
        Month.parse("9999-12")


def test_a_grant_dated_out_of_range_names_the_range_and_the_customer_still_shows(engine, db_url, clock):
    # A pack bought on 9999-12-31 would be valid into year 10000: every listing of the customer failed.
    desk = Desk(engine, db_url, clock)
    desk.customer("Acme", credits=1)
    for line in (
        "/credits grant Acme 2 9999-12-31",
        "/credits grant 1 2 0001-01-01",
        "/credits grant Acme 2 2100-01-01",
    ):
        out = desk.engineer(line)
        assert APOLOGY not in out, line
        assert "[purchased] must be a date from 2000-01-01 to 2099-12-31, like 2026-03-31." in out, (line, out)
    shown = desk.engineer("/customer show Acme")
    assert APOLOGY not in shown and "credits left: 1" in shown
    assert "Pack 2: 2 credits" in desk.engineer("/credits grant Acme 2 2099-12-31")


def test_no_pack_is_granted_outside_the_range_whoever_asks(engine, db_url, clock):
    from bot.services.credits import grant_credits
    from bot.services.customers import CustomerError, find_customer
    from storage.db import transaction

    desk = Desk(engine, db_url, clock)
    desk.customer("Acme")
    with transaction(engine) as session:
        acme = find_customer(session, "Acme")
        with pytest.raises(CustomerError, match="from 2000-01-01 to 2099-12-31"):
            grant_credits(session, acme, 1, date(9999, 12, 31), "test", clock(), months=12)
