"""The quiet rule for messages added to an open case (bot/policy/acknowledgements.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.policy.acknowledgements import acknowledge

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
gaps = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3))
QUIET_FOR = timedelta(minutes=10)
quiets = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1))


def test_a_burst_is_acknowledged_once() -> None:
    assert acknowledge(None, NOW, QUIET_FOR)  # the case's first message (opened by a draft)
    assert not acknowledge(("sender", NOW - timedelta(minutes=1)), NOW, QUIET_FOR)
    assert not acknowledge(("sender", NOW - QUIET_FOR + timedelta(seconds=1)), NOW, QUIET_FOR)
    assert acknowledge(("sender", NOW - QUIET_FOR), NOW, QUIET_FOR)
    assert acknowledge(
        ("other", NOW - timedelta(seconds=5)), NOW, QUIET_FOR
    )  # after the team's answer, or a colleague's message
    assert acknowledge(("sender", NOW - timedelta(seconds=5)), NOW, QUIET_FOR, asked=True)  # "#N" for a draft


@given(gaps)
def test_after_someone_elses_message_always(gap: timedelta) -> None:
    assert acknowledge(("other", NOW - gap), NOW, QUIET_FOR)


@given(gaps, quiets)
def test_after_the_customers_own_message_only_once_quiet_for_has_passed(gap: timedelta, quiet: timedelta) -> None:
    assert acknowledge(("sender", NOW - gap), NOW, quiet) == (gap >= quiet)


@given(gaps)
def test_quiet_for_zero_answers_every_message(gap: timedelta) -> None:
    assert acknowledge(("sender", NOW - gap), NOW, timedelta(0))


@given(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3)))
def test_a_previous_message_dated_later_is_no_burst(ahead: timedelta) -> None:
    # Clocks of replicas or a platform's timestamps can disagree: never stay silent on that.
    assert acknowledge(("sender", NOW + ahead), NOW, QUIET_FOR)


@given(st.sampled_from(["sender", "other"]), gaps)
def test_an_answer_to_the_bots_question_always(direction: str, gap: timedelta) -> None:
    assert acknowledge((direction, NOW - gap), NOW, QUIET_FOR, asked=True)  # type: ignore[arg-type]
