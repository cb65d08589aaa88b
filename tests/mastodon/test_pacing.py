"""The pacer: learns windows from headers, reserves requests, knows the posting budget."""

from __future__ import annotations

from email.utils import formatdate

from adapters.mastodon.pacing import API, STATUSES, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def headers(limit: int, remaining: int, reset: float, now: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset)),
        "Date": formatdate(now, usegmt=True),
    }


def test_waits_for_the_reset_when_the_window_is_used_up() -> None:
    clock = Clock()
    pacer = Pacer(reserve=1, clock=clock)
    pacer.observe("GET", "/api/v1/notifications", 200, headers(300, 3, clock.now + 60, clock.now))
    assert pacer.acquire(API) == 0.0
    assert pacer.acquire(API) == 0.0  # 3 - 2 reserved = 1 left = the reserve
    assert 59 <= pacer.acquire(API) <= 61
    clock.now += 61
    assert pacer.acquire(API) == 0.0  # a new window


def test_posts_count_against_both_families_and_report_the_statuses_one() -> None:
    clock = Clock()
    pacer = Pacer(reserve=0, clock=clock)
    pacer.observe("GET", "/api/v1/instance", 200, headers(300, 10, clock.now + 300, clock.now))
    pacer.observe("POST", "/api/v1/statuses", 200, headers(300, 1, clock.now + 3600, clock.now))
    assert pacer.acquire(STATUSES) == 0.0
    assert pacer.acquire(STATUSES) > 3000
    assert pacer.acquire(API) == 0.0  # the API window still has room


def test_concurrent_answers_never_raise_the_count_within_a_window() -> None:
    clock = Clock()
    pacer = Pacer(reserve=0, clock=clock)
    reset = clock.now + 60
    pacer.observe("GET", "/a", 200, headers(10, 4, reset, clock.now))
    pacer.observe("GET", "/b", 200, headers(10, 6, reset, clock.now))  # an older answer arriving late
    for _ in range(4):
        assert pacer.acquire(API) == 0.0
    assert pacer.acquire(API) > 0


def test_a_429_without_headers_still_stops_until_the_known_reset() -> None:
    clock = Clock()
    pacer = Pacer(reserve=0, clock=clock)
    pacer.observe("GET", "/a", 200, headers(10, 5, clock.now + 30, clock.now))
    pacer.observe(
        "GET", "/a", 429, {"X-RateLimit-Reset": str(int(clock.now + 30)), "Date": formatdate(clock.now, usegmt=True)}
    )
    assert pacer.acquire(API) > 25


def test_own_posting_budget_and_the_wait_for_a_whole_thread() -> None:
    clock = Clock()
    pacer = Pacer(reserve=0, posting_budget=5, posting_window=3600, clock=clock)
    for _ in range(3):
        assert pacer.acquire(STATUSES) == 0.0
        clock.now += 10
    assert pacer.statuses_wait(2) == 0.0
    assert 3500 < pacer.statuses_wait(3) <= 3600  # the oldest post has to age out first
    clock.now += 3600
    assert pacer.statuses_wait(5) == 0.0


def test_skewed_server_clock_is_corrected_with_the_date_header() -> None:
    clock = Clock()
    pacer = Pacer(reserve=0, clock=clock)
    server_now = clock.now + 3600  # the server's clock is an hour ahead
    pacer.observe("GET", "/a", 200, headers(10, 0, server_now + 20, server_now))
    assert 19 <= pacer.acquire(API) <= 21


def test_one_request_at_a_time_until_a_new_window_is_known() -> None:
    clock = Clock()
    pacer = Pacer(reserve=0, clock=clock)
    assert pacer.acquire(STATUSES) == 0.0  # the probe
    assert pacer.acquire(STATUSES) > 0  # waits for the probe's answer
    pacer.observe("POST", "/api/v1/statuses", 200, headers(10, 9, clock.now + 60, clock.now))
    assert pacer.acquire(STATUSES) == 0.0
    assert pacer.acquire(STATUSES) == 0.0


def test_a_lost_probe_does_not_block_forever() -> None:
    clock = Clock()
    pacer = Pacer(reserve=0, clock=clock)
    assert pacer.acquire(API) == 0.0
    pacer.abandon(API)  # the request failed without an answer
    assert pacer.acquire(API) == 0.0
    clock.now += 11  # or its answer never came
    assert pacer.acquire(API) == 0.0
