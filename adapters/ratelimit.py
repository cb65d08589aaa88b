"""What a platform's response says about its rate limit: the one reader of the headers.

Zulip and Mastodon both answer every request with `X-RateLimit-Limit`,
`-Remaining` and `-Reset` (Zulip: epoch seconds; Mastodon: ISO 8601, or
epoch seconds on some servers), and a 429 with `Retry-After` (seconds, or an
HTTP date). The reset time is the server's, so it is measured against the
server's own clock (the response's `Date`): a skewed local clock then neither
waits too little nor hours too long. Each adapter's pacer decides what to do
with the numbers (`zulip/pacing.py`, `mastodon/pacing.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RateLimitHeaders:
    """The rate-limit headers of one response; None where a header is missing or unreadable."""

    limit: int | None = None
    remaining: int | None = None
    #: When the window resets, in epoch seconds by the server's clock.
    reset: float | None = None
    #: The response's `Date`, in epoch seconds.
    server_time: float | None = None
    #: `Retry-After`, in seconds from the response.
    retry_after: float | None = None

    def reset_in(self, now: float) -> float | None:
        """Seconds from the response until the window resets (negative if it already has), measured
        against the server's `Date`; without one, against `now` (the local clock)."""
        if self.reset is None:
            return None
        return self.reset - (self.server_time if self.server_time is not None else now)


def read_rate_limit(headers: Mapping[str, str]) -> RateLimitHeaders:
    """The rate-limit headers of a response (`headers` as `requests` gives them: any case)."""
    server_time = _http_date(headers.get("Date"))
    return RateLimitHeaders(
        limit=_whole(headers.get("X-RateLimit-Limit")),
        remaining=_whole(headers.get("X-RateLimit-Remaining")),
        reset=_moment(headers.get("X-RateLimit-Reset")),
        server_time=server_time,
        retry_after=_retry_after(headers.get("Retry-After"), server_time),
    )


def _whole(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _number(value: str | None) -> float | None:
    """A finite number, or None."""
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _moment(value: str | None) -> float | None:
    """Epoch seconds, or ISO 8601 (`2026-03-10T14:05:00.000Z`), as epoch seconds."""
    number = _number(value)
    if number is not None or not value:
        return number
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _retry_after(value: str | None, server_time: float | None) -> float | None:
    """Retry-After as seconds: a number of seconds, or an HTTP date (counted from the response's Date)."""
    number = _number(value)
    if number is not None or not value:
        return number
    when = _http_date(value)
    if when is None or server_time is None:
        return None
    return max(0.0, when - server_time)
