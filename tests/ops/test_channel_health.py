"""bot.channel_health with a clock the test moves: what an outage of an hour writes to the log."""

from __future__ import annotations

import logging

import pytest

from bot.channel_health import ChannelHealth, seconds_text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="deskbot.channels")
    return caplog


def _told(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What an operator reads at the default level (INFO)."""
    return [f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.levelno >= logging.INFO]


def test_an_hour_down_is_one_warning_a_reminder_a_minute_and_one_line_when_back(lines) -> None:  # noqa: ANN001
    clock = Clock()
    changes: list[tuple[str, bool]] = []
    health = ChannelHealth(["zulip", "mastodon"], on_change=lambda c, up: changes.append((c, up)), clock=clock)
    # The channel retries every second or so for an hour; the runtime looks every second.
    for second in range(3600):
        clock.now = 1000.0 + second
        health.trouble("zulip", f"GET events: connection refused (try {second})")
        health.failing("zulip")
        health.reached("mastodon")
        health.tick()
    assert health.is_down("zulip") and not health.is_down("mastodon")
    assert health.outages() == {"zulip": "unreachable for 59m 59s: GET events: connection refused (try 3599)"}
    clock.now += 1
    health.reached("zulip")

    told = _told(lines)
    assert told[0].startswith("WARNING zulip: cannot reach the platform: GET events: connection refused (try 5)")
    reminders = [t for t in told if "still cannot reach" in t]
    assert len(reminders) == 59  # one a minute, the first a minute after the warning
    assert (
        reminders[0]
        == "WARNING zulip: still cannot reach the platform after 1m 5s: GET events: connection refused (try 65)"
    )
    assert told[-1] == "INFO zulip: reaching the platform again after 1h 0m down"
    assert len(told) == 61
    assert changes == [("zulip", False), ("zulip", True)]
    assert health.outages() == {}


def test_a_blip_shorter_than_the_grace_period_is_not_told(lines) -> None:  # noqa: ANN001
    clock = Clock()
    health = ChannelHealth(["zulip"], clock=clock)
    for _blip in range(100):  # a queue re-registered now and then, a lost request
        health.failing("zulip", "GET events: connection closed by the server")
        clock.now += 4.0
        health.tick()
        health.reached("zulip")
        clock.now += 1.0
    assert _told(lines) == []
    assert not health.is_down("zulip")


def test_a_stale_reason_is_not_given_for_a_later_outage(lines) -> None:  # noqa: ANN001
    clock = Clock()
    health = ChannelHealth(["mastodon"], clock=clock)
    health.trouble("mastodon", "polling notifications failed: HTTP 502")  # long ago, while connected
    clock.now += 3600
    health.failing("mastodon")
    clock.now += 6
    health.tick()
    assert _told(lines) == [
        "WARNING mastodon: cannot reach the platform: not connected; retrying with back-off, quietly "
        "(a reminder once a minute while it lasts, one line when it is back)"
    ]


def test_durations_read_as_people_write_them() -> None:
    assert [seconds_text(s) for s in (0, 4.6, 59, 60, 125, 3599, 3600, 12_345)] == [
        "0s", "5s", "59s", "1m 0s", "2m 5s", "59m 59s", "1h 0m", "3h 25m"
    ]  # fmt: skip


def test_a_channel_stopped_for_good_gets_no_reminders_of_an_outage(lines) -> None:  # noqa: ANN001
    # An operator audit: after "channel stopped for good: … INVALID_API_KEY", the log went on saying
    # "still cannot reach the platform … connection refused" every minute, though Zulip answered.
    clock = Clock()
    health = ChannelHealth(["zulip"], clock=clock)
    for second in range(30):
        clock.now = 1000.0 + second
        health.failing("zulip", "GET events: connection refused")
        health.tick()
    assert health.is_down("zulip")
    health.stopped("zulip")
    before = len(_told(lines))
    for second in range(30, 600):
        clock.now = 1000.0 + second
        health.tick()
    assert _told(lines)[before:] == [] and health.outages() == {} and not health.is_down("zulip")


def test_the_database_is_told_as_the_database(lines) -> None:  # noqa: ANN001
    clock = Clock()
    health = ChannelHealth(["database"], clock=clock, what="the database", field="component")
    for second in range(10):
        clock.now = 1000.0 + second
        health.failing("database", "OperationalError: connection refused")
        health.tick()
    health.reached("database")
    told = _told(lines)
    assert told[0].startswith("WARNING database: cannot reach the database: OperationalError: connection refused;")
    assert told[-1] == "INFO database: reaching the database again after 9s down"
    assert [getattr(r, "component", None) for r in lines.records if r.levelno >= logging.INFO] == ["database"] * 2
