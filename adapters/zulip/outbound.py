"""deskbot's `Outbound` rows as Zulip messages: one row, one or more parts, posted once.

A row becomes message bodies (`compose.compose`: the header naming who said the
quote, `markup.said_header`, then the quote fenced so nothing in it acts, a
long row split; nothing else is added). Each part is posted with bounded
retries here (the client's own are off for sends). After a failure the server
may have acted on (a timeout, a cut connection, a 5xx) and before a retried
row (`attempt > 1`) goes out, the bot first looks for the parts already posted
(`reconcile.posted_parts`, by their exact content) and posts only the rest:
Zulip has no idempotency key.

Case-topic rows are held back while the support stream is not private
(`held_back`): they raise `TransientSendError` and wait, never fail for good
and never reach a public stream (SPEC §3).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from typing import Any

import zulip

from adapters.backoff import Backoff
from adapters.channel import FileStore, Outbound, PermanentSendError, Sent, TransientSendError
from adapters.topics import clip_topic

from .compose import MAX_TOPIC_LENGTH, compose
from .files import UploadRefused, file_lines, upload_answer
from .markup import said_header
from .reconcile import Claims, RecordedElsewhere, posted_parts
from .state import ServerState
from .transport import (
    Transport,
    ZulipApiError,
    ZulipRateLimited,
    ZulipStopping,
    ZulipTimedOut,
    ZulipUnavailable,
    retrying,
)

log = logging.getLogger("deskbot.adapters.zulip")

#: `"direct"` as a send type needs Zulip 7.0 (feature level 174); older servers say "private".
DIRECT_FEATURE_LEVEL = 174
#: How soon a held-back case-topic row is tried again (the dispatcher holds the rest back itself).
HELD_RETRY_SECONDS = 5.0


def written_text(message: Outbound) -> str:
    """The bot-written text above the row's quote: the header naming who said it (`Outbound.said`),
    then the row's own text (none is expected with a header; if there is some, it follows)."""
    if message.said is None:
        return message.text
    header = said_header(message.said)
    return f"{header}\n{message.text}" if message.text else header


class MessagePoster:
    """Posts outbox rows through one client, one row at a time (`lock`, shared with the channel)."""

    def __init__(
        self,
        transport: Transport,
        client: zulip.Client,
        state: ServerState,
        lock: threading.Lock,
        *,
        retry: Backoff,
        max_rate_wait: float,
        lookup_depth: int,
        recorded_elsewhere: Callable[[], RecordedElsewhere | None] = lambda: None,
        topics_held: Callable[[], str | None] = lambda: None,
        files: Callable[[], FileStore | None] = lambda: None,
    ) -> None:
        self.transport = transport
        self.client = client
        self.state = state
        self.lock = lock
        self.retry = retry
        self.max_rate_wait = max_rate_wait
        self.lookup_depth = lookup_depth
        #: The store's word on which messages are other rows' (`Channel.recorded_elsewhere`, set late).
        self.recorded_elsewhere = recorded_elsewhere
        #: Why case-topic posts are held back now, or None (`ZulipChannel.held_back`).
        self.topics_held = topics_held
        #: Where the bytes of a row's files wait (`Channel.files`, set late).
        self.files = files
        self.claims = Claims()

    def send(self, message: Outbound) -> list[str]:
        """Post one outbox row (several messages if it is long); return their ids."""
        target = self._target(message)
        written = written_text(message)
        unsent: dict[int, str] = {}
        if message.files:
            limit = self.state.max_file_upload_mib * 1024 * 1024
            with self.lock:
                lines, unsent = file_lines(message, self.files(), self._upload, limit)
            written = f"{written}\n{lines}" if written else lines
        parts = compose(written, message.quote, self.state.max_message_length)
        if not any(p.strip() for p in parts):
            raise PermanentSendError(f"outbox row {message.outbox_id}: nothing to say")
        with self.lock:
            already: dict[int, int] = {}
            if message.attempt > 1:
                already = self._posted(message, parts)
                if already:
                    log.info(
                        "outbox row %s: found %d part(s) already on Zulip; not sending them again",
                        message.outbox_id,
                        len(already),
                    )
            ids = []
            for number, content in enumerate(parts, 1):
                if number in already:
                    ids.append(already[number])
                else:
                    ids.append(self._post(message, target, content, number, parts))
                self.claims.claim(ids[-1], message.outbox_id)
        return Sent([str(i) for i in ids], unsent_files=unsent) if unsent else [str(i) for i in ids]

    def _upload(self, name: str, data: bytes) -> str:
        """`POST /user_uploads` (called with `lock` held); the path Zulip stored the file at."""
        fp = io.BytesIO(data)
        fp.name = name
        try:
            result = self.transport.call(self.client, "POST", "user_uploads", files=[fp], max_pause=self.max_rate_wait)
        except ZulipRateLimited as exc:
            raise TransientSendError(f"Zulip rate limit: {exc}", retry_after=exc.retry_after) from None
        except ZulipStopping as exc:
            raise TransientSendError(f"stopping: {exc}") from None
        except ZulipUnavailable as exc:
            raise TransientSendError(f"Zulip upload failed: {exc}") from None
        except ZulipApiError as exc:
            raise UploadRefused(exc.msg or exc.code) from None
        return upload_answer(result)

    def _target(self, message: Outbound) -> dict[str, Any]:
        if message.kind == "direct":
            if not message.recipient:
                raise PermanentSendError(f"outbox row {message.outbox_id}: a direct message needs a recipient")
            kind = "direct" if self.state.feature_level >= DIRECT_FEATURE_LEVEL else "private"
            recipient = message.recipient
            # A user id (identities are keyed by it since issue 13); rows written before carry an email.
            to: list[int | str] = [int(recipient)] if recipient.isascii() and recipient.isdigit() else [recipient]
            return {"type": kind, "to": to}
        if message.kind == "topic":
            if not message.topic:
                raise PermanentSendError(f"outbox row {message.outbox_id}: a topic message needs a topic")
            held = self.topics_held()
            if held:
                raise TransientSendError(f"case-topic posts held back: {held}", retry_after=HELD_RETRY_SECONDS)
            if self.state.stream_id is None:
                raise PermanentSendError("support stream unknown: the Zulip channel was not started")
            return {"type": "stream", "to": self.state.stream_id, "topic": clip_topic(message.topic, MAX_TOPIC_LENGTH)}
        raise PermanentSendError(f"the Zulip channel cannot send {message.kind!r} messages")

    def _posted(self, message: Outbound, parts: list[str]) -> dict[int, int]:
        return posted_parts(
            self.transport,
            self.client,
            self.state,
            message,
            parts,
            claims=self.claims,
            recorded_elsewhere=self.recorded_elsewhere(),
            depth=self.lookup_depth,
            retry=self.retry,
            max_rate_wait=self.max_rate_wait,
        )

    def _post(self, message: Outbound, target: dict[str, Any], content: str, number: int, parts: list[str]) -> int:
        """POST one part with bounded retries; before retrying after an ambiguous failure, look first.

        The first look follows the failure at once: it sends nothing, and a lost answer
        (the post went through) then costs a round trip, not a back-off (0.5-1 s).
        """
        transport = self.transport
        ambiguous = False
        looked = False

        def sleep(seconds: float) -> None:
            nonlocal looked
            if ambiguous and not looked:
                looked = True
                return
            transport.sleep(seconds)

        try:
            tries = retrying(self.retry, sleep, max_rate_wait=self.max_rate_wait, on_rate_wait=transport.note_rate_wait)
            for attempt in tries:
                with attempt:
                    if ambiguous:
                        found = self._posted(message, parts).get(number)
                        if found is not None:
                            return found
                    try:
                        res = transport.call(
                            self.client,
                            "POST",
                            "messages",
                            {**target, "content": content},
                            max_pause=self.max_rate_wait,
                        )
                    except ZulipUnavailable as exc:
                        ambiguous = ambiguous or exc.maybe_processed
                        raise
                    return int(res["id"])
        except ZulipRateLimited as exc:
            raise TransientSendError(f"Zulip rate limit: {exc}", retry_after=exc.retry_after) from None
        except ZulipStopping as exc:
            # Cut off by `close`: the row stays pending; whether the post reached Zulip is unknown,
            # and the next attempt (attempt > 1) looks for it before posting.
            raise TransientSendError(f"stopping: {exc}") from None
        except ZulipTimedOut as exc:
            # Not retried here (`retrying`): the row is tried again later, looking first.
            raise TransientSendError(f"Zulip did not answer: {exc}") from None
        except ZulipUnavailable as exc:
            raise TransientSendError(f"Zulip send failed after retries: {exc}") from None
        except ZulipApiError as exc:
            raise PermanentSendError(f"Zulip refused the message: {exc.code}: {exc.msg}") from None
        raise AssertionError("unreachable")  # pragma: no cover
