"""An outage, or one row's own fault (bot.policy.send_failures): property tests, no database.

The dispatcher's behaviour built on these rules is tested end to end in tests/core/test_dispatcher.py
and, through the real `zulip` client, in tests/zulip/test_send.py.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.policy.send_failures import LONE_FAILURES, LONE_GIVE_UP, PROBE_EVERY, SendFailures

START = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)

gaps = st.lists(st.integers(min_value=0, max_value=900), min_size=1, max_size=80)


def test_a_channel_not_known_to_be_down_lets_every_failing_retry_try_others() -> None:
    failures = SendFailures()
    assert all(failures.may_try_others("zulip", START + timedelta(seconds=s)) for s in range(0, 100, 7))


@given(gaps=gaps)
def test_while_a_channel_is_down_other_rows_are_tried_at_most_once_per_probe_interval(gaps: list[int]) -> None:
    failures, now, allowed = SendFailures(), START, []
    failures.stopped("zulip")
    for gap in gaps:
        now += timedelta(seconds=gap)
        if failures.may_try_others("zulip", now):
            allowed.append(now)
    assert allowed, "the first failing retry of an outage may probe"
    assert all(later - earlier >= PROBE_EVERY for earlier, later in itertools.pairwise(allowed))
    # ... and not fewer: a probe is allowed as soon as the interval has passed since the last.
    last = allowed[-1]
    assert failures.may_try_others("zulip", last + PROBE_EVERY)


def test_down_is_per_channel_and_ends_when_a_row_goes() -> None:
    failures = SendFailures()
    failures.stopped("zulip")
    assert failures.may_try_others("zulip", START)
    assert not failures.may_try_others("zulip", START + timedelta(seconds=1))
    assert failures.may_try_others("mastodon", START + timedelta(seconds=1))
    failures.went("zulip")
    assert failures.may_try_others("zulip", START + timedelta(seconds=2))


@given(gaps=gaps)
def test_a_row_failing_alone_is_given_up_only_after_both_the_time_and_the_count(gaps: list[int]) -> None:
    failures, now, count = SendFailures(), START, 0
    first = START + timedelta(seconds=gaps[0])
    for gap in gaps:
        now += timedelta(seconds=gap)
        count += 1
        given_up = failures.failed_alone(7, now)
        if given_up is None:
            assert count < LONE_FAILURES or now - first < LONE_GIVE_UP
            continue
        # At the first moment both hold, with what was counted.
        assert count >= LONE_FAILURES and now - first >= LONE_GIVE_UP
        assert given_up.failures == count and given_up.since == first
        return


def test_a_row_that_went_starts_its_count_again() -> None:
    failures = SendFailures()
    for minute in range(LONE_FAILURES - 1):
        assert failures.failed_alone(7, START + timedelta(minutes=minute)) is None
    failures.done(7)
    late = START + LONE_GIVE_UP * 2
    for n in range(LONE_FAILURES - 1):
        assert failures.failed_alone(7, late + timedelta(minutes=n)) is None, "counted from the start again"
    given_up = failures.failed_alone(7, late + LONE_GIVE_UP)
    assert given_up is not None and given_up.since == late and given_up.failures == LONE_FAILURES


def test_rows_are_counted_apart() -> None:
    failures = SendFailures(give_up_after=timedelta(0), give_up_failures=2)
    assert failures.failed_alone(1, START) is None
    assert failures.failed_alone(2, START) is None
    assert failures.failed_alone(1, START) is not None
    assert failures.failed_alone(3, START) is None
