"""The pieces every adapter shares: back-off, rate-limit headers, paging (no network)."""

from __future__ import annotations

import threading
from email.utils import formatdate

import pytest
import requests
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from adapters.backoff import Backoff
from adapters.http_session import settle_environment
from adapters.mastodon.pacing import Pacer
from adapters.mastodon.transport import Transport as MastodonTransport
from adapters.paging import pages
from adapters.ratelimit import RateLimitHeaders, read_rate_limit

# -- back-off ---------------------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10_000))
def test_each_wait_grows_from_a_floor_by_at_most_the_jitter_and_never_past_the_cap(attempt: int) -> None:
    backoff = Backoff(initial=0.5, maximum=8.0, jitter=0.5)
    floor = min(0.5 * 2.0 ** min(attempt - 1, 64), 8.0)
    assert floor <= backoff.seconds(attempt) <= min(floor + 0.5, 8.0)


def test_without_jitter_it_doubles() -> None:
    assert [Backoff(initial=1.0, maximum=5.0, jitter=0.0).seconds(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_tenacity_waits_by_it() -> None:
    slept: list[float] = []
    with pytest.raises(OSError):
        for attempt in tenacity.Retrying(
            stop=tenacity.stop_after_attempt(4),
            wait=Backoff(initial=1.0, maximum=3.0, jitter=0.0).tenacity_wait(),
            sleep=slept.append,
            reraise=True,
        ):
            with attempt:
                raise OSError("down")
    assert slept == [1.0, 2.0, 3.0]


# -- rate-limit headers -----------------------------------------------------------------------------------


def test_zulips_headers() -> None:
    seen = read_rate_limit(
        {
            "X-RateLimit-Limit": "200",
            "X-RateLimit-Remaining": "17",
            "X-RateLimit-Reset": "1700000060",
            "Date": formatdate(1_700_000_000, usegmt=True),
            "Retry-After": "2.5",
        }
    )
    assert seen == RateLimitHeaders(200, 17, 1_700_000_060.0, 1_700_000_000.0, 2.5)
    assert seen.reset_in(now=1_800_000_000) == 60.0  # measured against the server's clock


def test_mastodons_headers() -> None:
    seen = read_rate_limit(
        {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "2023-11-14T22:15:00.000Z",
            "Date": "Tue, 14 Nov 2023 22:13:20 GMT",
        }
    )
    assert (seen.limit, seen.remaining, seen.retry_after) == (300, 0, None)
    assert seen.reset_in(now=0.0) == 100.0


def test_missing_or_unreadable_headers_are_none() -> None:
    assert read_rate_limit({}) == RateLimitHeaders()
    seen = read_rate_limit(
        {"X-RateLimit-Remaining": "many", "X-RateLimit-Reset": "soon", "Date": "yesterday", "Retry-After": "inf"}
    )
    assert seen == RateLimitHeaders()
    assert read_rate_limit({"X-RateLimit-Reset": "100"}).reset_in(now=40.0) == 60.0  # no Date: the local clock


def test_retry_after_as_an_http_date() -> None:
    seen = read_rate_limit(
        {"Retry-After": formatdate(1_000_030, usegmt=True), "Date": formatdate(1_000_000, usegmt=True)}
    )
    assert seen.retry_after == 30.0


# -- paging -----------------------------------------------------------------------------------------------


def test_pages_walk_from_the_cursor_until_a_page_is_the_last() -> None:
    items = list(range(1, 12))
    asked: list[int] = []

    def fetch(after: int) -> list[int]:
        asked.append(after)
        return [i for i in items if i > after][:4]

    walked = list(pages(fetch, 0, lambda page: page[-1] if len(page) == 4 else None))
    assert walked == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]
    assert asked == [0, 4, 8]


def test_the_next_page_is_asked_for_only_once_this_one_is_handled() -> None:
    events: list[str] = []

    def fetch(after: int) -> list[int]:
        events.append(f"fetch {after}")
        return [after + 1]

    for page in pages(fetch, 0, lambda page: page[-1] if page[-1] < 3 else None):
        events.append(f"handled {page}")
    assert events == ["fetch 0", "handled [1]", "fetch 1", "handled [2]", "fetch 2", "handled [3]"]


def test_a_walk_ends_when_stop_is_set() -> None:
    stop = threading.Event()
    walked = []
    for page in pages(lambda after: [after + 1], 0, lambda page: page[-1], stop):
        walked.append(page)
        if len(walked) == 3:
            stop.set()
    assert walked == [[1], [2], [3]]


def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company.pem")


def test_proxy_and_ca_settings_are_read_once_for_the_site(monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch)
    session = requests.Session()
    settle_environment(session, "https://chat.example.com")
    assert session.trust_env is False  # requests no longer walks the environment on every request
    assert session.proxies["https"] == "http://proxy.example:3128"
    assert session.verify == "/etc/ssl/company.pem"

    monkeypatch.setenv("no_proxy", "chat.example.com")
    bypassed = requests.Session()
    settle_environment(bypassed, "https://chat.example.com")
    assert "https" not in bypassed.proxies


def test_both_mastodon_clients_read_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The receiving and the sending client: each answer's post goes through the second.
    _environment(monkeypatch)
    transport = MastodonTransport(
        "https://social.example.com",
        "token",
        Pacer(),
        user_agent="deskbot-test",
        request_timeout=5.0,
        retry=Backoff(),
        max_rate_wait=1.0,
    )
    for client in (transport.recv, transport.send):
        assert client.session.trust_env is False
        assert client.session.proxies["https"] == "http://proxy.example:3128"
        assert client.session.verify == "/etc/ssl/company.pem"
