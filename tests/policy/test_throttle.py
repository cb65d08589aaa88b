"""The fixed-window allowance (bot.policy.throttle): property tests, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.policy.throttle import Allowance, Window

START = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)

steps = st.lists(
    st.tuples(st.integers(min_value=0, max_value=7_200), st.integers(min_value=1, max_value=7)), max_size=60
)


@given(limit=st.integers(min_value=1, max_value=10), steps=steps)
def test_never_more_than_the_limit_within_one_window_and_a_refusal_spends_nothing(limit, steps):
    allowance = Allowance(limit, timedelta(hours=1))
    window, now, granted = Window(), START, []
    for gap, units in steps:
        now += timedelta(seconds=gap)
        before = window
        allowed, window = allowance.take(window, now, units)
        if allowed:
            granted.append((now, units))
        elif before.since is not None and now - before.since < allowance.length:
            assert window == before
    for start, _units in granted:
        in_window = sum(u for t, u in granted if start <= t < start + allowance.length)
        # Windows are fixed, not sliding: at most two of them overlap any hour.
        assert in_window <= 2 * limit
    # Within each fixed window, never more than the limit.
    assert window.used <= limit


@given(limit=st.integers(min_value=1, max_value=10), units=st.integers(min_value=1, max_value=10))
def test_after_a_whole_window_anything_within_the_limit_is_allowed(limit, units):
    allowance = Allowance(limit, timedelta(hours=1))
    full = Window(START, limit)
    allowed, window = allowance.take(full, START + timedelta(hours=1), units)
    assert allowed == (units <= limit)
    if allowed:
        assert window == Window(START + timedelta(hours=1), units)


def test_a_clock_that_went_back_starts_a_new_window():
    allowance = Allowance(1, timedelta(hours=1))
    assert allowance.take(Window(START, 1), START - timedelta(minutes=5)) == (
        True,
        Window(START - timedelta(minutes=5), 1),
    )
