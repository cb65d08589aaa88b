"""The business calendar: when the support desk is open, and business-time arithmetic.

Everything here is pure: callers pass the instants, nothing reads the clock.
All public methods take *aware* datetimes in any zone and return aware
datetimes in the calendar's own zone (``BusinessCalendar.tz``).

Model
-----
Each open day (a service weekday that is not a closed date) has one service
window ``[opens, closes)`` in local wall-clock time. The window's ends are
localised with zoneinfo per day, and business time inside a window is
measured in real elapsed time. For the default hours (08:00-18:00) a daylight-
saving change (01:00/02:00 in Lisbon) never falls inside a window, so every
service day holds exactly ``hours_per_day`` and "2 business days" is the same
clock time two open days later. Only hours that include the change itself
(for example 24/7) see a 23 h or 25 h day on the two change dates.

Think of a counter ``F(t)`` of business time elapsed up to instant ``t``: it
rises during windows and stays flat while closed. Then:

* ``add_business_hours(s, a)``  is the *earliest* ``t >= s`` with ``F(t) = F(s) + a``;
  so a due time may land exactly on a closing time, and for ``a > 0`` the
  result always lies in ``(opens, closes]`` of an open day;
* ``subtract_business_hours(e, a)`` is the *latest* ``t <= e`` with
  ``F(t) = F(e) - a``; for ``a > 0`` the result lies in ``[opens, closes)``;
* ``business_time_between(a, b)`` is ``F(b) - F(a)`` (negative when ``b < a``).

From these, for all ``s`` and all ``a, b >= 0``: ``add(add(s, a), b) ==
add(s, a + b)``, ``business_time_between(s, add(s, a)) == a``, and for
``a > 0``: ``subtract(add(s, a), a) == next_opening(s)``.

24/7 service is allowed: ``closes`` may be written ``24:00`` ("mon-sun
00:00-24:00"); it is stored as ``time(0, 0)``, which as a closing time means
the end of the day (a closing time of midnight is otherwise meaningless).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = ["BusinessCalendar", "ServiceHours", "days_later"]

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS_RE = re.compile(r"^(?P<days>[a-z][a-z,\-\s]*?)\s+(?P<opens>\d{1,2}:\d{2})\s*-\s*(?P<closes>\d{1,2}:\d{2})$")
_MIDNIGHT = time(0, 0)
_ONE_DAY = timedelta(days=1)
# A calendar with no opening in this many consecutive days is broken (every
# date closed); stop instead of looping forever.
_MAX_CLOSED_STREAK = 3660


def _day_index(name: str) -> int:
    if name in _DAY_NAMES:
        return _DAY_NAMES.index(name)
    if name in _FULL_DAY_NAMES:
        return _FULL_DAY_NAMES.index(name)
    raise ValueError(f"unknown weekday {name!r} (use mon, tue, wed, thu, fri, sat, sun)")


def _parse_weekdays(text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in re.sub(r"\s+", "", text).split(","):
        if not item:
            raise ValueError(f"empty weekday in {text!r}")
        first, sep, last = item.partition("-")
        start = _day_index(first)
        if not sep:
            days.add(start)
            continue
        end = _day_index(last)
        # Ranges may wrap the week ("sun-thu"), as some working weeks do.
        span = (end - start) % 7
        days.update((start + i) % 7 for i in range(span + 1))
    return frozenset(days)


def _parse_clock(text: str, *, closing: bool) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if closing and (hours, minutes) == (24, 0):
        return _MIDNIGHT
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        what, limit = ("closing", "00:00-24:00") if closing else ("opening", "00:00-23:59")
        raise ValueError(f"invalid {what} time {text!r} (expected HH:MM within {limit})")
    return time(hours, minutes)


def _format_clock(value: time, *, closing: bool) -> str:
    if closing and value == _MIDNIGHT:
        return "24:00"
    text = value.strftime("%H:%M")
    return text if not (value.second or value.microsecond) else value.isoformat()


def _format_day_runs(days: list[int], names: Sequence[str] | None = None) -> Iterator[str]:
    """``[0, 1, 2, 3, 4, 6]`` -> ``"mon-fri"``, ``"sun"`` (with ``names`` for Monday..Sunday)."""
    names = names or _DAY_NAMES
    start = 0
    while start < len(days):
        end = start
        while end + 1 < len(days) and days[end + 1] == days[end] + 1:
            end += 1
        if end - start >= 2:
            yield f"{names[days[start]]}-{names[days[end]]}"
        else:
            yield from (names[d] for d in days[start : end + 1])
        start = end + 1


@dataclass(frozen=True)
class ServiceHours:
    """Weekly service hours: the same window ``[opens, closes)`` on each of ``weekdays``.

    ``weekdays`` uses Monday = 0. ``closes == time(0, 0)`` means the end of
    the day (24:00); otherwise ``opens < closes``. Windows never span midnight.
    """

    weekdays: frozenset[int]
    opens: time
    closes: time

    def __post_init__(self) -> None:
        if not self.weekdays:
            raise ValueError("service hours need at least one weekday")
        if not self.weekdays <= frozenset(range(7)):
            raise ValueError(f"weekdays must be 0 (Monday) to 6 (Sunday), got {sorted(self.weekdays)}")
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("service hours are local wall-clock times; pass naive times")
        if self.closes != _MIDNIGHT and self.closes <= self.opens:
            raise ValueError(
                f"closing time {_format_clock(self.closes, closing=True)} must be after "
                f"opening time {_format_clock(self.opens, closing=False)}"
            )

    @classmethod
    def parse(cls, text: str) -> ServiceHours:
        """Parse ``"<days> HH:MM-HH:MM"``, e.g. ``"mon-fri 08:00-18:00"``.

        Days are a comma-separated list of days (``mon`` or ``monday``) and
        ranges (``mon-fri``; ``sun-thu`` wraps the week). Case-insensitive.
        The closing time may be ``24:00``. Raises ``ValueError`` on bad input.
        """
        normalised = " ".join(str(text).strip().lower().split())
        match = _HOURS_RE.match(normalised)
        if match is None:
            raise ValueError(f"invalid service hours {text!r} (expected e.g. 'mon-fri 08:00-18:00')")
        return cls(
            weekdays=_parse_weekdays(match["days"]),
            opens=_parse_clock(match["opens"], closing=False),
            closes=_parse_clock(match["closes"], closing=True),
        )

    def __str__(self) -> str:
        """The canonical text form, which ``parse`` reads back."""
        return self.describe()

    def describe(self, day_names: Sequence[str] | None = None) -> str:
        """The hours with the given names for Monday..Sunday (default: the canonical ``mon``..``sun``)."""
        days = ",".join(_format_day_runs(sorted(self.weekdays), day_names))
        opens = _format_clock(self.opens, closing=False)
        return f"{days} {opens}-{_format_clock(self.closes, closing=True)}"

    @property
    def length(self) -> timedelta:
        """Wall-clock length of one service window (24 h for 00:00-24:00)."""
        opens = timedelta(
            hours=self.opens.hour,
            minutes=self.opens.minute,
            seconds=self.opens.second,
            microseconds=self.opens.microsecond,
        )
        if self.closes == _MIDNIGHT:
            return _ONE_DAY - opens
        closes = timedelta(
            hours=self.closes.hour,
            minutes=self.closes.minute,
            seconds=self.closes.second,
            microseconds=self.closes.microsecond,
        )
        return closes - opens


def _load_closed_dates(spec: str) -> Container[date]:
    """Public holidays for ``"CC"`` or ``"CC-SUBDIV"``; ``""``/``"none"`` for no holidays."""
    cleaned = spec.strip()
    if cleaned.lower() in ("", "none"):
        return frozenset()
    # Country codes never contain "-", so the first one separates the subdivision.
    country, _, subdiv = cleaned.partition("-")
    try:
        return _country_holidays(country.upper(), subdiv or None)
    except NotImplementedError as exc:
        raise ValueError(f"unknown holidays {spec!r}: {exc}") from None


def _country_holidays(country: str, subdiv: str | None) -> holidays.HolidayBase:
    """`holidays.country_holidays(country, subdiv)`, loading that one country's module only.

    holidays has no public way to load one country alone: `country_holidays("PT")`, `holidays.PT`
    and `holidays.countries.portugal` all run `holidays/countries/__init__.py`, which imports
    all ~250 country modules. Measured with holidays 0.109 on CI's machine (bytecode compiled),
    building the PT table that way takes 70-160 ms and 8.1 MiB (238 more modules), against
    18-40 ms and 1.7 MiB for Portugal's module alone; without compiled bytecode 0.6-0.9 s
    against 0.01 s. Every CLI command and every replica would pay that, so the module the
    library's own registry names (`holidays.registry.COUNTRIES`) is loaded by itself. Anything
    unexpected (a registry or layout this code does not know) goes to the library's public
    loader instead, and tests/policy/test_calendar.py holds both to the same dates and names.
    """
    loaded = _country_module_alone(country, subdiv)
    # An explicit language keeps holiday names independent of the host locale.
    return loaded if loaded is not None else holidays.country_holidays(country, subdiv=subdiv, language="en_US")


def _country_module_alone(country: str, subdiv: str | None) -> holidays.HolidayBase | None:
    """The country's table from its own module file; None when the library is not laid out as expected."""
    from holidays.registry import COUNTRIES

    try:
        module_name, class_name = next(
            (m, names[0]) for m, names in COUNTRIES.items() if len(names) > 1 and names[1] == country
        )
        path = Path(holidays.__file__).parent / "countries" / f"{module_name}.py"
        spec = importlib.util.spec_from_file_location(f"deskbot.holidays.{module_name}", path)
        if spec is None or spec.loader is None or not path.is_file():
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        entity = getattr(module, class_name)
    except (StopIteration, ImportError, AttributeError, TypeError, ValueError):
        return None
    if not (isinstance(entity, type) and issubclass(entity, holidays.HolidayBase)):
        return None
    return entity(subdiv=subdiv, language="en_US")


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def days_later(at: datetime, days: int, tz: ZoneInfo) -> datetime:
    """The same wall-clock time in ``tz`` ``days`` calendar days after ``at`` (before it, when
    negative), in ``tz``: "until the same time a week later" as people there read it, which a
    daylight-saving change between the two makes an hour more or less than ``days`` × 24 hours.

    Aware arithmetic in one zone is wall-clock arithmetic; the round trip through UTC then gives
    the offset in force on the day reached. A time that day skips (a spring-forward gap) is read
    with the offset before the change, one hour later on the clock; a time it repeats (the
    fall-back hour) is its first occurrence.
    """
    local = _require_aware(at, "at").astimezone(tz)
    return (local + timedelta(days=days)).astimezone(UTC).astimezone(tz)


@dataclass(frozen=True)
class BusinessCalendar:
    """Service hours in one time zone, minus closed dates (public holidays).

    ``closed_dates`` is anything supporting ``date in closed_dates``.
    """

    tz: ZoneInfo
    hours: ServiceHours
    closed_dates: Container[date]

    @classmethod
    def from_settings(
        cls,
        timezone: str = "Europe/Lisbon",
        service_hours: str = "mon-fri 08:00-18:00",
        holidays_spec: str = "PT",
    ) -> BusinessCalendar:
        """Build from setting strings; any bad value raises ``ValueError`` naming it.

        ``holidays_spec`` is an ISO country code with an optional subdivision
        (``"PT"``, ``"PT-11"`` = Lisboa, which adds 13 June), or ``"none"``.
        """
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r}") from None
        return cls(tz=tz, hours=ServiceHours.parse(service_hours), closed_dates=_load_closed_dates(holidays_spec))

    @property
    def hours_per_day(self) -> timedelta:
        """Business hours in one service day: ``closes - opens`` (10 h by default)."""
        return self.hours.length

    def is_open_day(self, day: date) -> bool:
        """Whether ``day`` (a local date) is a service weekday and not a closed date."""
        return day.weekday() in self.hours.weekdays and day not in self.closed_dates

    def is_open(self, at: datetime) -> bool:
        """Whether the desk is open at instant ``at``: ``opens <= local time < closes``."""
        instant = _require_aware(at, "at")
        today = self._local_date(instant)
        # Windows never span local midnight, but checking yesterday's too is
        # cheap insurance against zones with odd transitions around midnight.
        for day in (today - _ONE_DAY, today):
            window = self._window(day)
            if window is not None and window[0] <= instant < window[1]:
                return True
        return False

    def next_opening(self, at: datetime) -> datetime:
        """``at`` itself if the desk is open then, else the next opening instant."""
        instant = _require_aware(at, "at")
        for opens, closes in self._windows_forward(instant):
            if instant < closes:
                return max(opens, instant).astimezone(self.tz)
        raise AssertionError("unreachable: _windows_forward is endless")

    def add_business_hours(self, start: datetime, amount: timedelta) -> datetime:
        """The earliest instant at which ``amount`` of business time has passed since ``start``.

        Closed time before the first opening does not count, so a clock
        started outside hours effectively starts at the next opening. The
        result may be exactly a closing time. ``amount`` must be >= 0.
        """
        instant = _require_aware(start, "start")
        if amount < timedelta(0):
            raise ValueError(f"amount must not be negative, got {amount}")
        if not amount:
            return instant.astimezone(self.tz)
        remaining = amount
        for opens, closes in self._windows_forward(instant):
            if closes <= instant:
                continue
            begin = max(opens, instant)
            available = closes - begin
            if remaining <= available:
                return (begin + remaining).astimezone(self.tz)
            remaining -= available
        raise AssertionError("unreachable: _windows_forward is endless")

    def subtract_business_hours(self, end: datetime, amount: timedelta) -> datetime:
        """The latest instant from which ``amount`` of business time runs until ``end``.

        E.g. "4 business hours before the due time". The result may be exactly
        an opening time, never a closing time (for ``amount > 0``).
        """
        instant = _require_aware(end, "end")
        if amount < timedelta(0):
            raise ValueError(f"amount must not be negative, got {amount}")
        if not amount:
            return instant.astimezone(self.tz)
        remaining = amount
        for opens, closes in self._windows_backward(instant):
            if opens >= instant:
                continue
            stop = min(closes, instant)
            available = stop - opens
            if remaining <= available:
                return (stop - remaining).astimezone(self.tz)
            remaining -= available
        raise AssertionError("unreachable: _windows_backward is endless")

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Business time from ``a`` to ``b``; negative when ``b`` is before ``a``."""
        first, last = _require_aware(a, "a"), _require_aware(b, "b")
        if last < first:
            return -self.business_time_between(b, a)
        total = timedelta(0)
        for opens, closes in self._windows_forward(first):
            if opens >= last:
                break
            overlap = min(closes, last) - max(opens, first)
            if overlap > timedelta(0):
                total += overlap
        return total

    def due_at(self, start: datetime, business_days: int) -> datetime:
        """Response due time: ``business_days`` service days of business time after ``start``.

        ``= add_business_hours(start, business_days * hours_per_day)``, so a
        case opened outside hours starts its clock at the next opening, and
        2 business days is the same clock time two open days later (opened
        at an opening time, it is due at the closing time of the day before).
        """
        if business_days < 0:
            raise ValueError(f"business_days must not be negative, got {business_days}")
        return self.add_business_hours(start, business_days * self.hours_per_day)

    # -- windows -------------------------------------------------------------

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC instants ``(opens, closes)`` of ``day``'s service, or None if closed."""
        if not self.is_open_day(day):
            return None
        opens = datetime.combine(day, self.hours.opens, tzinfo=self.tz)
        if self.hours.closes == _MIDNIGHT:
            closes = datetime.combine(day + _ONE_DAY, _MIDNIGHT, tzinfo=self.tz)
        else:
            closes = datetime.combine(day, self.hours.closes, tzinfo=self.tz)
        opens, closes = opens.astimezone(UTC), closes.astimezone(UTC)
        # Wall times inside a DST gap localise out of order; a window squeezed
        # to nothing by the change is simply empty that day.
        if closes <= opens:
            return None
        return opens, closes

    def _windows(self, day: date, step: timedelta) -> Iterator[tuple[datetime, datetime]]:
        closed_streak = 0
        while True:
            window = self._window(day)
            if window is None:
                closed_streak += 1
                if closed_streak > _MAX_CLOSED_STREAK:
                    raise ValueError(f"calendar has no service day within {_MAX_CLOSED_STREAK} days")
            else:
                closed_streak = 0
                yield window
            day += step

    def _windows_forward(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        # Start a day early, as in is_open: cheap insurance around midnight.
        return self._windows(self._local_date(instant) - _ONE_DAY, _ONE_DAY)

    def _windows_backward(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        return self._windows(self._local_date(instant) + _ONE_DAY, -_ONE_DAY)
