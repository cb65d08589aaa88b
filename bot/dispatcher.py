"""The outbox dispatcher: delivers outbox rows through their channels and marks each delivery.

One loop per channel, so a slow or failing platform never holds up another.
Rows of a channel go out in order; a transient failure stops the batch (so a
later message never overtakes an earlier one) and the row is retried with
exponential back-off and jitter, or after the platform's Retry-After.
A permanent failure marks the row failed and, when it was an engineer's
reply, tells the case topic.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from adapters.channel import Channel, Outbound, PermanentSendError, TransientSendError
from storage import outbox
from storage.db import transaction
from storage.models import Incident, Outbox

log = logging.getLogger("deskbot.dispatcher")

MAX_BACKOFF = 300.0
#: What `_send_one` returns for a row that failed for good (it is marked failed; go on).
FAILED: list[str] = []


def backoff_seconds(attempts: int) -> float:
    """Exponential back-off with full jitter: up to 1, 2, 4 … seconds, capped at five minutes."""
    return random.uniform(0, min(MAX_BACKOFF, 2.0 ** max(attempts - 1, 0)))


def reference_for(row_id: int) -> str:
    """The short token a relayed message carries, to find it again after a crash."""
    return f"dk{row_id}"


def to_outbound(row: Outbox) -> Outbound:
    return Outbound(
        outbox_id=row.id,
        channel=row.channel,
        kind=row.kind,  # type: ignore[arg-type]
        text=row.text,
        reference=reference_for(row.id),
        recipient=row.recipient,
        conversation=row.conversation,
        topic=row.topic,
        quote=row.quote,
        attempt=row.attempts,
    )


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        channels: dict[str, Channel],
        clock: Callable[[], datetime],
        case_channel: str | None = None,
        on_result: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.channels = channels
        self.clock = clock
        self.case_channel = case_channel
        #: Called with (channel, "sent"|"retry"|"failed", seconds since the row was written).
        self.on_result = on_result
        self._wake = {name: threading.Event() for name in channels}

    def wake(self) -> None:
        """New rows were committed: look now rather than at the next poll."""
        for event in self._wake.values():
            event.set()

    def drain(self, channel: str, batch_size: int = 20) -> int:
        """Send every due row of `channel` once; return how many were sent.

        Deliveries of one batch are recorded together, in one transaction after the batch
        (or before stopping at a failure): a crash in between leaves sent rows pending, and
        their next attempt (attempt > 1) makes the channel check before sending again.
        """
        sent = 0
        while True:
            now = self.clock()
            with transaction(self.engine) as session:
                rows = outbox.claim(session, channel, now, limit=batch_size)
                batch = [(to_outbound(r), r.created_at, r.incident_id) for r in rows]
            delivered: list[tuple[Outbound, list[str], datetime, dict[str, object]]] = []
            stopped = False
            for message, created_at, incident_id in batch:
                about = {"channel": message.channel, "outbox_id": message.outbox_id, "incident_id": incident_id}
                ids = self._send_one(message, created_at, about)
                if ids is None:
                    stopped = True
                    break
                if ids is not FAILED:
                    delivered.append((message, ids, created_at, about))
            self._record_sent(delivered)
            sent += len(delivered)
            if stopped or len(batch) < batch_size:
                # A short batch was everything that was due; rows written meanwhile wake us again.
                return sent

    def _record_sent(self, delivered: list[tuple[Outbound, list[str], datetime, dict[str, object]]]) -> None:
        if not delivered:
            return
        now = self.clock()
        with transaction(self.engine) as session:
            for message, ids, _created, _about in delivered:
                outbox.mark_sent(session, message.outbox_id, ids, now)
        for message, _ids, created_at, about in delivered:
            log.info("sent", extra=about)
            self._report(message.channel, "sent", created_at)

    def _send_one(self, message: Outbound, created_at: datetime, about: dict[str, object]) -> list[str] | None:
        """The platform ids on success; FAILED for a permanent failure; None to stop (retry later)."""
        channel = self.channels[message.channel]
        try:
            return channel.send(message)
        except TransientSendError as exc:
            wait = exc.retry_after if exc.retry_after is not None else backoff_seconds(message.attempt)
            log.warning("send failed, will retry", extra={**about, "error": str(exc), "retry_in": round(wait, 1)})
            with transaction(self.engine) as session:
                outbox.mark_retry(session, message.outbox_id, str(exc), self.clock() + timedelta(seconds=wait))
            self._report(message.channel, "retry", created_at)
            return None
        except PermanentSendError as exc:
            log.error("send failed for good", extra={**about, "error": str(exc)})
            self._fail(message, str(exc))
            self._report(message.channel, "failed", created_at)
            return FAILED
        except Exception as exc:  # a channel bug must not kill the loop; treat as transient
            log.exception("send raised", extra=about)
            with transaction(self.engine) as session:
                outbox.mark_retry(
                    session,
                    message.outbox_id,
                    repr(exc),
                    self.clock() + timedelta(seconds=backoff_seconds(message.attempt)),
                )
            self._report(message.channel, "retry", created_at)
            return None

    def _fail(self, message: Outbound, error: str) -> None:
        now = self.clock()
        with transaction(self.engine) as session:
            row = outbox.mark_failed(session, message.outbox_id, error)
            # Tell the engineers when a message to a customer could not be delivered.
            if row is not None and row.incident_id and row.kind == "direct" and self.case_channel:
                incident = session.get(Incident, row.incident_id)
                if incident is not None and incident.topic:
                    outbox.enqueue(
                        session,
                        channel=self.case_channel,
                        kind="topic",
                        topic=incident.topic,
                        text=f"⚠ Could not deliver a message to the customer via {row.channel}: {error[:200]}",
                        incident_id=incident.id,
                        now=now,
                    )

    def _report(self, channel: str, result: str, created_at: datetime) -> None:
        if self.on_result:
            self.on_result(channel, result, (self.clock() - created_at).total_seconds())

    def run(self, channel: str, stop: threading.Event, poll: float = 1.0) -> None:
        """Deliver `channel`'s rows until `stop` is set."""
        wake = self._wake[channel]
        while not stop.is_set():
            wake.clear()
            try:
                self.drain(channel)
            except Exception:
                log.exception("dispatcher loop error", extra={"channel": channel})
                stop.wait(1.0)
            wake.wait(poll)
