"""Calls to Mastodon's REST API: Mastodon.py clients, paced and retried.

Two clients share one token and one `Pacer`: `recv` for the receiving thread,
`send` for the dispatcher's, so neither waits on the other's connection. Each
has its own `requests.Session` whose response hook shows every response's
rate-limit headers to the pacer.

`request()` is the one way the channel calls the API: it waits for the
pacer (never longer than `max_rate_wait`; beyond that it raises `RateLimited`
with the wait), and retries 5xx answers and network errors with jittered
exponential back-off (`adapters.backoff`), a bounded number of times (tenacity).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from mastodon import Mastodon
from mastodon.errors import MastodonAPIError, MastodonNetworkError, MastodonRatelimitError, MastodonServerError
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from adapters.backoff import Backoff
from adapters.http_session import settle_environment

from .pacing import Pacer

#: The server's version until the instance entity says it (the oldest with the notification
#: policy API this channel needs, 4.3): see `Transport.set_version`.
ASSUMED_VERSION = "4.3.0"
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")

log = logging.getLogger("deskbot.adapters.mastodon")
T = TypeVar("T")


class RateLimited(MastodonRatelimitError):
    """A rate limit not waited out here; `wait` is the seconds left."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate limited for {wait:.0f}s")
        self.wait = wait


#: What `describe` says of a TLS certificate the client does not trust (and where to name a CA).
UNTRUSTED = "the server's certificate is not trusted; name a private certificate authority in REQUESTS_CA_BUNDLE"
#: … and of a server that answered the TLS handshake with something else (plain HTTP, mostly).
NOT_TLS = "the server does not speak TLS there"


def describe(error: BaseException) -> str:
    """One line for a Mastodon.py error: the status and the server's message, or the network failure."""
    args = getattr(error, "args", ())
    if isinstance(error, MastodonAPIError) and len(args) >= 4:
        return f"HTTP {args[1]}: {args[3] or args[2]}"
    text = " ".join(str(error).split())
    for needle, short in (
        ("CERTIFICATE_VERIFY_FAILED", UNTRUSTED),
        ("WRONG_VERSION_NUMBER", NOT_TLS),  # OpenSSL up to 3.1
        ("record layer failure", NOT_TLS),  # OpenSSL 3.2 and later
        ("refused", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "host not found"),
        ("nodename nor servname", "host not found"),
        ("NameResolutionError", "host not found"),
        ("name resolution", "host not found"),
        ("RemoteDisconnected", "connection closed by the server"),
        ("Connection aborted", "connection closed by the server"),
    ):
        if needle in text:
            return short
    return text[:200]


class Transport:
    def __init__(
        self,
        base_url: str,
        access_token: str,
        pacer: Pacer,
        *,
        user_agent: str,
        request_timeout: float,
        retry: Backoff,
        max_rate_wait: float,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._pacer = pacer
        #: Told of every wait the rate limits impose (the runtime counts them in /metrics).
        self._on_wait = on_wait
        self._retry = retry
        self._max_rate_wait = max_rate_wait
        self.requests_made = 0
        self.recv = self._client(base_url, access_token, user_agent, request_timeout)
        self.send = self._client(base_url, access_token, user_agent, request_timeout)
        self.set_version(ASSUMED_VERSION)

    def _client(self, base_url: str, token: str, user_agent: str, timeout: float) -> Mastodon:
        session = requests.Session()
        session.hooks["response"].append(self._observe)
        settle_environment(session, base_url)
        return Mastodon(
            access_token=token,
            api_base_url=base_url,
            version_check_mode="none",  # the checking modes misfire or recurse (see the notes)
            # Given, so that the client never asks the server itself (`set_version`).
            mastodon_version=ASSUMED_VERSION,
            ratelimit_method="throw",  # "pace" wedges after idling, "wait" can block for hours
            request_timeout=timeout,
            user_agent=user_agent,
            session=session,
        )

    def set_version(self, version: str) -> None:
        """Tell both clients the server's version (as the instance entity says it, "4.7.3").

        Mastodon.py's helpers that pick an endpoint by version (`media_post`: `/api/v2/media`
        from 3.1.4) otherwise fetch the instance endpoints on their first call, even in the
        "none" checking mode; and when that fetch fails they ask again from within themselves
        until Python's recursion limit, about a thousand requests in a burst. With a version
        given to the constructor they never fetch, but in the "none" mode they do not parse it
        either, so the numbers are set here."""
        match = _VERSION.match(version) or _VERSION.match(ASSUMED_VERSION)
        assert match is not None  # ASSUMED_VERSION is a version
        numbers = tuple(int(n) for n in match.groups())
        for client in (self.recv, self.send):
            client.mastodon_major, client.mastodon_minor, client.mastodon_patch = numbers

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests_made += 1
        request = response.request
        self._pacer.observe(
            request.method or "GET", urlsplit(request.url or "").path, response.status_code, response.headers
        )

    def request(self, family: str, call: Callable[[], T], *, stop: threading.Event, attempts: int = 3) -> T:
        """Make one API call within the rate limits, retrying transient failures: `attempts` tries
        (a receiving call gives up after 3, the next poll tries again; a post takes the tuning's)."""

        def retryable(error: BaseException) -> bool:
            if isinstance(error, RateLimited):
                return error.wait <= self._max_rate_wait
            return isinstance(error, (MastodonNetworkError, MastodonServerError))

        def log_retry(state: Any) -> None:
            log.debug("mastodon: %s; retry %d", describe(state.outcome.exception()), state.attempt_number)

        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=self._retry.tenacity_wait(),
            retry=retry_if_exception(retryable),
            sleep=lambda seconds: stop.wait(seconds),
            before_sleep=log_retry,
            reraise=True,
        )
        return retrying(self.paced, family, call, stop)

    def paced(self, family: str, call: Callable[[], T], stop: threading.Event) -> T:
        """Make one API call within the rate limits, without retrying."""
        while True:
            wait = self._pacer.acquire(family)
            if wait <= 0:
                break
            if self._on_wait is not None:
                self._on_wait(wait)
            if wait > self._max_rate_wait or stop.wait(wait):
                raise RateLimited(wait)
        try:
            return call()
        except MastodonRatelimitError:
            raise RateLimited(self._pacer.retry_after(family) or self._retry.maximum) from None
        except MastodonNetworkError:
            self._pacer.abandon(family)
            raise
