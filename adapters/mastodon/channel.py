"""The Mastodon channel: direct messages in and out, through Mastodon.py.

Receiving (`receive.py`): the streaming API, read by our own SSE reader,
plus polls of the notifications from the stored cursor whenever the stream
is (re)connected or down.

Sending (`outbound.py`): one `direct` status per part of the reply, each
starting with the customer's mention and replying to the previous part, each
with the Idempotency-Key `deskbot-<outbox id>-<part>`. Mastodon keeps a key
one hour, and a repeated key may even answer HTTP 500 although the status
exists (mastodon/mastodon#40399), so a retried row (`attempt > 1`) first
looks up the parts already posted and posts only the missing ones.

Files: an engineer's files go as media where the instance takes them (see
`media.py`); the others are named in the text, left out (`cannot_carry`).

Errors and limits: requests are paced by the `X-RateLimit-*` headers and the
posting budget (`pacing.py`); 5xx answers and network errors are retried with
jittered exponential back-off (tenacity), a bounded number of times;
anything else the server refuses is reported, not retried.
"""

from __future__ import annotations

import logging
import threading
from typing import ClassVar

import httpx
from mastodon.errors import (
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from adapters.channel import (
    Channel,
    FileRefusal,
    InboundSink,
    Outbound,
    OutboundFile,
    PermanentChannelError,
    TransientChannelError,
)

from .media import MediaLimits, MediaUploader
from .outbound import ReplyPoster
from .pacing import API, Pacer
from .receive import Receiver
from .startup import check_reads_own_statuses, open_to_strangers, read_instance
from .transport import NOT_TLS, UNTRUSTED, Transport, describe
from .tuning import MastodonTuning

log = logging.getLogger("deskbot.adapters.mastodon")


class MastodonChannel(Channel):
    """Customers' direct messages on one Mastodon account."""

    name: ClassVar[str] = "mastodon"
    #: Mastodon's statuses limit: 300 per 3 hours per account; a reply is split into statuses of
    #: max_characters (500 on most instances, the smallest allowed).
    posting_budget: ClassVar[tuple[int, float] | None] = (300, 3 * 3600.0)
    post_size: ClassVar[int | None] = 500
    #: The stream is read by a thread of its own (stream.SSEConnection); without it, the receiver
    #: polls every few seconds, and a send between two polls delays neither.
    reads_on_its_own_thread: ClassVar[bool] = True

    def __init__(self, api_base_url: str, access_token: str, *, tuning: MastodonTuning = MastodonTuning()) -> None:
        """`api_base_url` and `access_token` are the settings; `tuning` holds the knobs (`MastodonTuning`)."""
        if not api_base_url or not access_token:
            raise PermanentChannelError("Mastodon needs both an API base URL and an access token")
        self._base_url = api_base_url.rstrip("/")
        self._token = access_token
        self.tuning = tuning
        self._pacer = Pacer(
            reserve=tuning.ratelimit_reserve, posting_budget=tuning.posting_budget, posting_window=tuning.posting_window
        )
        self._closing = threading.Event()
        self._transport: Transport | None = None
        self._http: httpx.Client | None = None
        self._poster: ReplyPoster | None = None
        self._receiver: Receiver | None = None
        self._me: dict[str, str] = {}
        self.domain = ""
        self.max_characters = 500
        #: What the instance takes as media; Mastodon's defaults until `start` reads the instance's own.
        self.media_limits = MediaLimits()
        self.streaming_url = ""

    def __repr__(self) -> str:  # never show the token
        return f"MastodonChannel({self._base_url!r})"

    # -- start ----------------------------------------------------------------

    def start(self) -> None:
        """Check the token, read the instance's limits, make sure strangers' DMs arrive."""
        self._transport = Transport(
            self._base_url,
            self._token,
            self._pacer,
            user_agent=self.tuning.user_agent,
            request_timeout=self.tuning.request_timeout,
            retry=self.tuning.send_retry,
            max_rate_wait=self.tuning.max_rate_wait,
            on_wait=self.report_rate_limit_wait,
        )
        try:
            me = self._transport.paced(API, self._transport.recv.account_verify_credentials, self._closing)
        except MastodonUnauthorizedError as error:
            raise PermanentChannelError(
                f"Mastodon at {self._base_url} rejected the access token ({describe(error)}): check MASTODON_ACCESS_TOKEN"
            ) from None
        except (MastodonNetworkError, MastodonServerError, MastodonRatelimitError) as error:
            why = describe(error)
            if why in (UNTRUSTED, NOT_TLS):  # waiting would not change it
                raise PermanentChannelError(self._tls_failure(why)) from None
            raise TransientChannelError(f"cannot reach Mastodon at {self._base_url}: {why}") from None
        except MastodonNotFoundError as error:  # no such API there: another server, or a path too many
            raise PermanentChannelError(
                f"MASTODON_API_BASE_URL: {self._base_url} does not answer like a Mastodon server ({describe(error)})"
            ) from None
        except MastodonError as error:
            raise PermanentChannelError(f"Mastodon at {self._base_url} refused the bot: {describe(error)}") from None
        self._me = {"id": str(me["id"]), "acct": str(me["acct"]), "url": str(me.get("url") or "")}
        facts = read_instance(self._transport, self._base_url, self._closing)
        self.max_characters, self.domain, self.streaming_url = facts.max_characters, facts.domain, facts.streaming_url
        self.media_limits = facts.media
        if facts.version:
            self._transport.set_version(facts.version)
        accepted = open_to_strangers(self._transport, self._base_url, self.tuning.accept_strangers, self._closing)
        check_reads_own_statuses(self._transport, self._base_url, self._me["id"], self._closing)
        self._poster = ReplyPoster(
            self._transport,
            self._pacer,
            own_id=self._me["id"],
            domain=self.domain,
            max_characters=self.max_characters,
            max_rate_wait=self.tuning.max_rate_wait,
            attempts=self.tuning.send_retry.attempts,
            stop=self._closing,
            media=MediaUploader(
                self._transport,
                self.media_limits,
                wait=self.tuning.media_wait,
                poll_interval=self.tuning.media_poll_interval,
                attempts=self.tuning.send_retry.attempts,
                stop=self._closing,
            ),
            files=lambda: self.files,
        )
        self._http = httpx.Client(headers={"User-Agent": self.tuning.user_agent})
        self._receiver = Receiver(
            self._transport,
            self._http,
            tuning=self.tuning,
            token=self._token,
            streaming_url=self.streaming_url,
            own_id=self._me["id"],
            domain=self.domain,
            accepted=accepted,
            closing=self._closing,
            on_trouble=self.report_trouble,
            max_attachment_bytes=lambda: self.max_attachment_bytes,
        )
        log.info(
            "mastodon: signed in as @%s@%s, max_characters=%d",
            self._me["acct"],
            self.domain,
            self.max_characters,
        )

    def _tls_failure(self, why: str) -> str:
        """The line for a TLS handshake that failed at start, naming the setting; for a bare host
        (Mastodon.py adds https://), how to say http:// to a server that speaks plain HTTP."""
        if self._base_url.startswith(("http://", "https://")) or why != NOT_TLS:
            return f"MASTODON_API_BASE_URL: TLS error talking to Mastodon at {self._base_url}: {why}"
        host = self._base_url
        return (
            f"MASTODON_API_BASE_URL: TLS error talking to Mastodon at https://{host}: {why} (https:// was added"
            f" to the bare host {host}; a server that speaks plain HTTP needs http://{host})"
        )

    # -- receive ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._receiver is not None and self._receiver.connected

    def receive(self, sink: InboundSink, stop: threading.Event) -> None:
        """Hand every DM (and public mention) to `sink` until `stop` is set (see `receive.py`).

        Exceptions raised by the sink propagate; the cursor has not moved past
        the message, so calling `receive` again delivers it again.
        """
        if self._receiver is None:
            raise RuntimeError("MastodonChannel.start() was not called")
        self._receiver.run(sink, stop)

    # -- send ---------------------------------------------------------------------

    def cannot_carry(self, file: OutboundFile) -> FileRefusal | None:
        """A file the instance takes no media of that type, or over its limit (`media.MediaLimits`)."""
        return self.media_limits.refusal(file)

    def send(self, message: Outbound) -> list[str]:
        """Post the reply as a thread of direct statuses; return their ids (see `outbound.py`)."""
        if self._poster is None:
            raise RuntimeError("MastodonChannel.start() was not called")
        return self._poster.send(message)

    def close(self) -> None:
        self._closing.set()
        if self._receiver is not None:
            self._receiver.close()
        if self._http is not None:
            self._http.close()
