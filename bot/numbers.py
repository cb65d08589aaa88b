"""Numbers and dates written by people: the one parser for each.

Every number taken from a customer, an engineer, a CSV file or the command line
(case numbers, `#N`, counts, severities, ids, the parts of a date) goes through
`whole_number`. Python's own checks are too lenient for that: `str.isdigit`
accepts "²" (which `int` then refuses) and `int` accepts "٣", " 7", "1_000"; a
string of 4,300 digits makes `int` raise, and an id above 2⁶³ cannot even be
bound on SQLite. Here a number is ASCII digits only, and at most `MAX_DIGITS`
of them; one that is well formed but names no row (`is_id` says so: 2⁶³ is a
number, and no case has it) is for the caller to answer like any unknown one.

Dates people write (purchase dates, billing months) are from `FIRST_DAY` to `LAST_DAY`:
Python's dates go from year 1 to 9999, and a pack bought on 31 December 9999 would be valid
until a day no date can hold, so every listing of its customer would fail. A date outside
the range is refused where it is read, like a malformed one, and the error names the range
(`DAYS`, `MONTHS`).
"""

from __future__ import annotations

import re
from datetime import date

#: Longest number accepted. Longer runs of digits are not numbers at all (`int` of 4,300 digits
#: raises, and answering with one would flood the chat); shorter ones may still name no row.
MAX_DIGITS = 32
#: The largest id a row can have (a PostgreSQL INTEGER); a larger number names no row.
MAX_ID = 2**31 - 1

#: The first and last day a date people write may be (a purchase date; a billing month's days).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
#: The range as error messages name it.
DAYS = f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
MONTHS = f"{FIRST_DAY:%Y-%m} to {LAST_DAY:%Y-%m}"

_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def whole_number(text: str) -> int | None:
    """`text` as a non-negative integer if it is 1 to MAX_DIGITS ASCII digits (no sign, no spaces), else None."""
    if 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


def is_id(number: int | None) -> bool:
    """Can `number` be a row's id? (Anything else names no row: look it up and it is not there.)"""
    return number is not None and 0 < number <= MAX_ID


def day(text: str) -> date | None:
    """`YYYY-MM-DD` in ASCII digits as a date, or None (a malformed or impossible date, or one
    outside FIRST_DAY … LAST_DAY)."""
    match = _DAY.fullmatch(text.strip())
    if match is None:
        return None
    year, month_, day_ = (whole_number(part) for part in match.groups())
    try:
        parsed = date(year, month_, day_)  # type: ignore[arg-type]  (the pattern made each a number)
    except ValueError:
        return None
    return parsed if FIRST_DAY <= parsed <= LAST_DAY else None


def month(text: str) -> tuple[int, int] | None:
    """`YYYY-MM` in ASCII digits as (year, month), or None (also outside the years of FIRST_DAY … LAST_DAY)."""
    match = _MONTH.fullmatch(text.strip())
    if match is None:
        return None
    year, month_ = (whole_number(part) for part in match.groups())
    assert year is not None and month_ is not None  # the pattern made each a number
    return (year, month_) if FIRST_DAY.year <= year <= LAST_DAY.year and 1 <= month_ <= 12 else None
