"""The outbox dispatcher: delivers outbox rows through their channels and marks each delivery.

One loop per channel, so a slow or failing platform never holds up another.
Rows of a channel go out in order; a transient failure stops the batch (so a
later message never overtakes an earlier one) and the row is retried with
exponential back-off and jitter, or after the platform's Retry-After; until
then the later rows of its conversation (a person's direct messages, a case
topic) wait behind it, in the store, in their order (`outbox.claim`), on
every replica, and nothing is sent inline. A row that fails again while the
platform is not known to be down is not taken for an outage until a row of
another conversation fails too: while others go, only its conversation waits,
and after an hour of failing while rows of its kind went, the fault is the
row's and it fails for good (the rules: bot.policy.send_failures). A refusal of
one recipient for now (`RecipientDeferred`: a full mailbox) stops nothing: the
batch goes on.
A permanent failure marks the row failed and tells the engineers: a message
to a customer in its case topic, a post the case topic refused in the
alerts topic, which is counted too (`on_result` "failed_topic"); what the topics say is
bot.services.delivery_notices.
A row delivered to its recipient but not to some of the people copied on it (the channel
returns a `Sent` naming them) stays sent; the case topic says so, once per refused person,
in the transaction that records the delivery.

Each channel has one send lane, and one loop (`run`) that owns it. Intake
writes the replies to a message leased to this process in the message's own
transaction and hands them to the loop (`inline`, `send_claimed`): no claim
query, and the thread that received the message goes straight back to
receiving while the loop sends — a channel that long-polls (Zulip) keeps its
poll outstanding during the send, so a message arriving meanwhile is not held
up by it, and the receiving thread never waits for a batch the loop is
sending. Without a running loop (tests, `deskbot chat`) the caller sends the
rows itself.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from adapters.channel import (
    Channel,
    Outbound,
    OutboundFile,
    PermanentSendError,
    RecipientDeferred,
    Said,
    Sent,
    TransientSendError,
)
from bot.config import Settings
from bot.logs import log_context
from bot.policy.send_failures import SendFailures
from bot.services import delivery_notices as notices
from storage import outbox
from storage.db import transaction
from storage.models import Outbox

log = logging.getLogger("deskbot.dispatcher")

#: Retries of a failing platform are at most this far apart, so a recovery is noticed within seconds.
MAX_BACKOFF = 5.0
#: Without a running loop: how long intake waits for a drain under way before leaving its rows to it.
INLINE_WAIT = 2.0
#: Rows handed over by intake that the loop sends together (one delivery record for the lot).
HANDED_BATCH = 50
#: How long the thread handing rows over waits for the loop to take them (see `send_claimed`).
PICKUP_WAIT = 0.005
#: What `_send_one` returns for a row that failed for good (it is marked failed; go on).
FAILED: list[str] = []
#: What `_send_one` returns for a row whose recipient was refused for now (`RecipientDeferred`;
#: its retry is set): the rows to other recipients go on.
DEFERRED: list[str] = []
#: A row whose recipient is still refused for now (`RecipientDeferred`) this long after it was written
#: fails for good, and the engineers are told (mail servers give up on a queued mail after four or
#: five days, RFC 5321 §4.5.4.1).
RECIPIENT_GIVE_UP = timedelta(days=5)
#: People copied on a row whom the platform refused for now get it, without the others, after this wait
#: (greylisting lets a mail in after a few minutes; see `_send_copies_later`).
COPY_RETRY = timedelta(minutes=1)


def backoff_seconds(attempts: int) -> float:
    """Exponential back-off with full jitter: up to 1, 2, 4 … seconds, capped at MAX_BACKOFF."""
    return random.uniform(0, min(MAX_BACKOFF, 2.0 ** max(attempts - 1, 0)))


def to_outbound(row: Outbox | outbox.NewRow) -> Outbound:
    return Outbound(
        outbox_id=row.id,
        channel=row.channel,
        kind=row.kind,  # type: ignore[arg-type]
        text=row.text,
        recipient=row.recipient,
        conversation=row.conversation,
        topic=row.topic,
        quote=row.quote,
        attempt=row.attempts,
        said=Said(**json.loads(row.said)) if row.said else None,
        written_at=row.created_at,
        files=tuple(OutboundFile(**f) for f in json.loads(row.files)) if row.files else (),
        case=row.incident_id,
        subject=row.subject,
        automatic=row.automatic,
        copies=tuple(json.loads(row.copies)) if row.copies else (),
        lang=row.lang,
    )


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        channels: dict[str, Channel],
        clock: Callable[[], datetime],
        case_channel: str | None = None,
        on_result: Callable[[str, str, float], None] | None = None,
        caller_sends: bool = False,
        on_store: Callable[[DBAPIError | None], None] | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.engine = engine
        #: The rules an answer that never reached its customer goes back under (its due time:
        #: `delivery_notices.failed_for_good`); None: only the notice.
        self.settings = settings
        #: Called with the error when a loop finds the store unreachable, with None when a drain
        #: reached it (the runtime tells a database outage once, bot.channel_health).
        self.on_store = on_store
        self.channels = channels
        self.clock = clock
        self.case_channel = case_channel
        #: Without a running loop, does the writer of rows send them itself (`deskbot chat`, whose
        #: answers print before the next prompt)? Otherwise they wait in the store for a drain.
        self.caller_sends = caller_sends
        #: Called with (channel, "sent"|"retry"|"failed", seconds since the row was written).
        self.on_result = on_result
        self._wake = {name: threading.Event() for name in channels}
        #: Set by `wake`: due rows may be waiting in the store (the loop drains them).
        self._due = dict.fromkeys(channels, True)
        #: Rows leased to this process and handed to the channel's loop, in order.
        self._handed: dict[str, deque[tuple[list[tuple[Outbound, datetime, int | None]], threading.Event]]] = {
            name: deque() for name in channels
        }
        #: Channels whose loop is running (and so takes hand-overs).
        self._running: set[str] = set()
        #: Rows this process holds and has not finished: claimed, or handed over (leases renewed).
        self._held: dict[str, set[int]] = {name: set() for name in channels}
        self._held_lock = threading.Lock()
        self._retry_at: dict[int, datetime] = {}
        #: The error of each row's latest transient failure (for the engineers, if it is given up).
        self._last_error: dict[int, str] = {}
        #: An outage, or one row's own fault? (bot.policy.send_failures)
        self._failures = SendFailures()
        #: One sender per channel at a time (the channel's loop, or intake sending inline).
        self._lanes = {name: threading.Lock() for name in channels}
        #: False while a row of the channel waits to be retried: nothing may be sent inline.
        self._clear = dict.fromkeys(channels, True)
        #: When the row that last stopped a channel's batch is due again (rows behind it wait as long).
        self._stopped_at: dict[str, datetime] = {}
        #: The channel whose lane this thread holds to send its own rows (`inline(here=True)`).
        self._here = threading.local()

    def recorded_elsewhere(self, message: Outbound, platform_ids: set[str]) -> set[str]:
        """`Channel.recorded_elsewhere`: of `platform_ids`, those recorded as sent for other rows."""
        with transaction(self.engine) as session:
            return outbox.recorded_for_others(session, message.outbox_id, message.channel, platform_ids)

    def held(self, channel: str) -> dict[str, str]:
        """The kinds of row `channel` may not post for now, with why (`Channel.held_back`)."""
        found = self.channels.get(channel)
        return dict(found.held_back()) if found is not None else {}

    def wake(self, channels: set[str] | None = None) -> None:
        """New rows were committed (for `channels`, or any): look now rather than at the next poll."""
        for name, event in self._wake.items():
            if channels is None or name in channels:
                self._due[name] = True
                event.set()

    def hand_over(self, rows: list[outbox.NewRow]) -> None:
        """Rows just committed: send those written leased to this process (see `inline`) now, in
        order, and wake the loops of the channels the others are for."""
        leased: dict[str, list[outbox.NewRow]] = {}
        others: set[str] = set()
        for row in rows:
            if row.attempts:  # written leased (attempt 1) rather than due for a loop to claim
                leased.setdefault(row.channel, []).append(row)
            else:
                others.add(row.channel)
        for channel, mine in leased.items():
            mine.sort(key=lambda r: r.id)
            self.send_claimed(channel, [(to_outbound(r), r.created_at, r.incident_id) for r in mine])
        if others:
            self.wake(others)

    @contextmanager
    def inline(self, channel: str, *, here: bool = False) -> Iterator[bool]:
        """For a caller about to write rows of `channel` leased to itself: yields whether it may.

        It may when nothing of the channel waits behind a failure (that row goes first).
        With the channel's loop running, the rows are then handed to it (`send_claimed`)
        and the caller never waits for the lane, unless it asks to send `here` itself, or the
        channel reads the platform on a thread of its own (`Channel.reads_on_its_own_thread`):
        a channel working through a backlog has no queue to keep polled, and a thread
        that writes a page of replies and sends them, page after page, gets through a
        backlog faster than two threads passing each reply between them (they take
        turns at the interpreter, and each evicts what the other had in the CPU's
        caches). Without a loop, and if `caller_sends`, the caller sends them itself.
        A caller that sends holds the lane, after waiting up to INLINE_WAIT for a batch
        under way; rows handed to the loop before go first.
        """
        lane = self._lanes.get(channel)
        if lane is None or (channel not in self._running and not self.caller_sends):
            yield False
            return
        if channel in self._running and not (here or self.channels[channel].reads_on_its_own_thread):
            yield self._clear[channel]
            return
        if not lane.acquire(timeout=INLINE_WAIT):
            yield False
            return
        self._here.channel = channel
        try:
            self._send_handed(channel, lane_held=True)
            yield self._clear[channel]
        finally:
            self._here.channel = None
            lane.release()

    def send_claimed(self, channel: str, messages: list[tuple[Outbound, datetime, int | None]]) -> int:
        """Send rows already leased to this process (inside `inline`); return how many were sent now.

        With the channel's loop running they are handed to it, in order, and 0 is returned
        once the loop has taken them (or after PICKUP_WAIT, if it is busy sending): the caller
        is the thread that receives, and the interpreter runs one thread at a time, so a
        receiver going straight back to its platform (a Zulip long-poll is about half a
        millisecond of Python before it waits on the network) would keep the loop from
        starting the send. This way the reply's request goes out first and the receiver
        polls again while it is on the wire. Otherwise they are sent here. On a failure
        the loop takes over either way.
        """
        if channel in self._running and getattr(self._here, "channel", None) != channel:
            self._hold(channel, [m.outbox_id for m, _c, _i in messages])
            picked = threading.Event()
            self._handed[channel].append((messages, picked))
            self._wake[channel].set()
            picked.wait(PICKUP_WAIT)
            return 0
        messages = self._without_held(channel, messages)
        sent, stopped = self._send_batch(channel, messages)
        if stopped:
            self.wake({channel})
        return sent

    def _send_handed(self, channel: str, *, lane_held: bool = False) -> None:
        """Send what intake handed over, oldest first, a few hand-overs per delivery record."""
        handed = self._handed[channel]
        while handed:
            batch: list[tuple[Outbound, datetime, int | None]] = []
            while handed and len(batch) < HANDED_BATCH:
                messages, picked = handed.popleft()
                batch.extend(messages)
                picked.set()
            with nullcontext() if lane_held else self._lanes[channel]:
                batch = self._without_held(channel, batch)
                if self._clear[channel]:
                    _sent, stopped = self._send_batch(channel, batch)
                    if stopped:
                        self._due[channel] = True
                    continue
                # A send failed since these were handed over: they queue behind it, in the store.
                ids = [m.outbox_id for m, _c, _i in batch]
                with transaction(self.engine) as session:
                    outbox.release(session, ids, self._stopped_at.get(channel, self.clock()))
                self._unhold(channel, ids)
                self._due[channel] = True

    def _without_held(
        self, channel: str, batch: list[tuple[Outbound, datetime, int | None]]
    ) -> list[tuple[Outbound, datetime, int | None]]:
        """`batch` less the rows of kinds the channel holds back for now: those go back to the store,
        due at once, to be claimed in their order once the channel posts them again."""
        held = self.held(channel)
        if not held:
            return batch
        back = [m.outbox_id for m, _c, _i in batch if m.kind in held]
        if back:
            with transaction(self.engine) as session:
                outbox.release(session, back, self.clock())
            self._unhold(channel, back)
            self._due[channel] = True
        return [item for item in batch if item[0].kind not in held]

    def drain(self, channel: str, batch_size: int = 20) -> int:
        """Send every due row of `channel` once; return how many were sent.

        Deliveries of one batch are recorded together, in one transaction after the batch
        (or before stopping at a failure): a crash in between leaves sent rows pending, and
        their next attempt (attempt > 1) makes the channel check before sending again.
        Rows behind a transient failure are handed back at once, due when the failed row is.
        """
        sent = 0
        with self._lanes[channel]:
            while True:
                now = self.clock()
                held = self.held(channel)
                with transaction(self.engine) as session:
                    rows = outbox.claim(session, channel, now, limit=batch_size, held=list(held))
                    batch = [(to_outbound(r), r.created_at, r.incident_id) for r in rows]
                done, stopped = self._send_batch(channel, batch)
                sent += done
                if stopped or len(batch) < batch_size:
                    # A short batch was everything that was due; rows written meanwhile wake us again.
                    if not stopped and not self._clear[channel]:
                        with transaction(self.engine) as session:
                            self._clear[channel] = not outbox.has_pending(session, channel, held=list(held))
                    return sent

    def _send_batch(self, channel: str, batch: list[tuple[Outbound, datetime, int | None]]) -> tuple[int, bool]:
        """Send claimed rows in order: (how many were sent, whether a failure stopped the batch).

        A transient failure stops the batch (the platform is most likely down: the rest would
        fail too), unless the row failed before and the platform is not known to be down
        (`SendFailures.may_try_others`): then only the row may be at fault (content a server answers with a
        5xx, a channel bug it triggers). Its conversation waits, and the rows of other
        conversations are tried: if one fails too, the batch stops; once a row of its kind goes,
        the fault is the row's (`_lone`), and one row cannot hold up the whole channel.
        """
        held = [m.outbox_id for m, _c, _i in batch]
        self._hold(channel, held)
        delivered: list[tuple[Outbound, list[str], datetime, dict[str, object]]] = []
        stopped = False
        #: Conversations waiting in this batch (a recipient refused for now, a row failing again)
        #: -> when their waiting row is retried.
        deferred: dict[tuple[str, str | None, str | None], datetime] = {}
        #: A row that failed again in this batch, while nothing since showed the platform up.
        suspect: tuple[Outbound, datetime, dict[str, object]] | None = None
        try:
            for index, (message, created_at, incident_id) in enumerate(batch):
                conversation = (message.kind, message.recipient, message.topic)
                if conversation in deferred:  # behind its conversation's waiting row
                    with transaction(self.engine) as session:
                        outbox.release(session, [message.outbox_id], deferred[conversation])
                    continue
                about = {"channel": message.channel, "outbox_id": message.outbox_id, "incident_id": incident_id}
                ids = self._send_one(message, created_at, about)
                if ids is DEFERRED:
                    deferred[conversation] = self._retry_at.pop(message.outbox_id, self.clock())
                    continue
                if (
                    ids is None
                    and message.attempt > 1
                    and suspect is None
                    and self._failures.may_try_others(channel, self.clock())
                ):
                    deferred[conversation] = self._retry_at.pop(message.outbox_id, self.clock())
                    suspect = (message, created_at, about)
                    continue
                if ids is None:
                    stopped = True
                    self._failures.stopped(channel)
                    stopped_at = self._retry_at.pop(message.outbox_id, self.clock())
                    self._stopped_at[channel] = stopped_at
                    untried = [m.outbox_id for m, _c, _i in batch[index + 1 :]]
                    with transaction(self.engine) as session:
                        outbox.release(session, untried, stopped_at)
                    break
                self._last_error.pop(message.outbox_id, None)  # sent, or failed for good
                self._failures.done(message.outbox_id)
                if ids is not FAILED:
                    delivered.append((message, ids, created_at, about))
                    self._failures.went(channel)
                    # Only a row of its kind clears it: a platform may take direct messages while
                    # its stream posts fail (an outage of one endpoint is not one row's fault).
                    if suspect is not None and suspect[0].kind == message.kind:
                        self._lone(*suspect)
                        suspect = None
            self._record_sent(delivered)
        finally:
            self._unhold(channel, held)
        if stopped or deferred:
            # Rows queue behind a failed one: until a drain finds none left, nobody sends out of turn.
            self._clear[channel] = False
        return len(delivered), stopped

    def _lone(self, message: Outbound, created_at: datetime, about: dict[str, object]) -> None:
        """`message` failed again and the platform took a row of its kind since: the fault may be the
        row's. Given up (`SendFailures.failed_alone`), it fails for good and the engineers are told,
        so that its conversation's later rows go on."""
        now = self.clock()
        given_up = self._failures.failed_alone(message.outbox_id, now)
        if given_up is None:
            return
        error = self._last_error.pop(message.outbox_id, "a transient error")
        minutes = round((now - given_up.since).total_seconds() / 60)
        self._failed(
            message,
            created_at,
            about,
            PermanentSendError(
                f"{error} (failed {given_up.failures} times in {minutes} minutes while the {message.channel} server"
                " took other messages: given up)"
            ),
        )

    def _hold(self, channel: str, row_ids: list[int]) -> None:
        with self._held_lock:
            self._held.setdefault(channel, set()).update(row_ids)

    def _unhold(self, channel: str, row_ids: list[int]) -> None:
        with self._held_lock:
            self._held.setdefault(channel, set()).difference_update(row_ids)

    def renew_leases(self, stop: threading.Event, every: float | None = None) -> None:
        """Keep the lease of rows being sent by this process, until `stop` is set.

        If the process dies, renewals stop, and another replica may take its rows once the
        (short) lease runs out.
        """
        interval = every if every is not None else outbox.LEASE.total_seconds() / 3
        while not stop.wait(interval):
            with self._held_lock:
                held = [row_id for ids in self._held.values() for row_id in ids]
            if not held:
                continue
            try:
                with transaction(self.engine) as session:
                    outbox.renew(session, held, self.clock())
            except DBAPIError as exc:
                self._store_seen(exc)
                log.debug("could not renew outbox leases: the store is unreachable: %s", exc)
            except Exception:
                log.exception("could not renew outbox leases")

    def _store_seen(self, error: DBAPIError | None) -> None:
        if self.on_store is not None:
            self.on_store(error)

    def _record_sent(self, delivered: list[tuple[Outbound, list[str], datetime, dict[str, object]]]) -> None:
        if not delivered:
            return
        now = self.clock()
        with transaction(self.engine) as session:
            outbox.mark_all_sent(session, [(message.outbox_id, ids) for message, ids, _c, _a in delivered], now)
            # What a customer's answer may name (an email's In-Reply-To) to join the incident.
            outbox.record_posted(
                session,
                [
                    (message.channel, platform_id, message.case)
                    for message, ids, _c, _a in delivered
                    if message.kind == "direct" and message.case is not None
                    for platform_id in ids
                ],
            )
            told = False
            for message, ids, _c, _a in delivered:
                if isinstance(ids, Sent) and ids.refused_copies:
                    told |= notices.refused_copies(session, now, self.case_channel, message, ids.refused_copies)
                if isinstance(ids, Sent) and ids.deferred_copies:
                    self._send_copies_later(session, now, message, ids.deferred_copies)
                if isinstance(ids, Sent) and ids.unsent_files:
                    told |= notices.unsent_files(session, now, self.case_channel, message, ids.unsent_files)
        if told and self.case_channel is not None:
            self.wake({self.case_channel})
        for message, _ids, created_at, about in delivered:
            log.info("sent", extra=about)
            self._report(message.channel, "sent", created_at)

    @staticmethod
    def _send_copies_later(session: Session, now: datetime, message: Outbound, deferred: dict[str, str]) -> None:
        """A row for the people copied on `message` whom the platform refused for now: the same
        words, to them only (the others have them), the first as its recipient and the rest copied,
        tried after the first retry's wait and then as any row whose recipient is refused for now
        (`RecipientDeferred`; one of them still refused then gets a row of its own again). One row,
        not one each: the files it carries are dropped from the store once a mail has them."""
        first, *rest = deferred
        values = outbox.row_values(
            channel=message.channel,
            kind="direct",
            text=message.text,
            quote=message.quote,
            files=json.dumps([dataclasses.asdict(f) for f in message.files]) if message.files else None,
            recipient=first,
            copies=json.dumps(rest) if rest else None,
            conversation=message.conversation,
            subject=message.subject,
            automatic=message.automatic,
            incident_id=message.case,
            now=now,
        )
        values["next_attempt_at"] = now + COPY_RETRY
        outbox.write(session, values)

    def _send_one(self, message: Outbound, created_at: datetime, about: dict[str, object]) -> list[str] | None:
        """The platform ids on success; FAILED for a permanent failure; None to stop (retry later);
        DEFERRED when only the row's recipient was refused for now (retry later, go on)."""
        try:
            return self._attempt(message, created_at, about)
        finally:
            log_context.set(None)

    def _attempt(self, message: Outbound, created_at: datetime, about: dict[str, object]) -> list[str] | None:
        channel = self.channels[message.channel]
        # Whatever the channel logs while sending (its retries, its checks) names this row too.
        log_context.set(about)
        try:
            return channel.send(message)
        except RecipientDeferred as exc:
            if self.clock() - created_at >= RECIPIENT_GIVE_UP:
                given_up = f"{exc} (refused for now for {RECIPIENT_GIVE_UP.days} days: given up)"
                return self._failed(message, created_at, about, PermanentSendError(given_up))
            # People copied on the row who took it are not sent it again; the engineers hear of it
            # at the row's first refusal (not at each retry).
            self._retry(
                message,
                created_at,
                about,
                exc,
                copies=exc.copies_left,
                refused=exc.refused_copies,
                tell=message.attempt <= 1,
            )
            return DEFERRED
        except TransientSendError as exc:
            self._retry(message, created_at, about, exc)
            return None
        except PermanentSendError as exc:
            return self._failed(message, created_at, about, exc)
        except Exception as exc:  # a channel bug must not kill the loop; treat as transient
            log.exception("send raised", extra=about)
            retry_at = self.clock() + timedelta(seconds=backoff_seconds(message.attempt))
            self._retry_at[message.outbox_id] = retry_at
            self._last_error[message.outbox_id] = f"{type(exc).__name__} in the {message.channel} channel"
            with transaction(self.engine) as session:
                outbox.mark_retry(session, message.outbox_id, repr(exc), retry_at)
            self._report(message.channel, "retry", created_at)
            return None

    def _retry(
        self,
        message: Outbound,
        created_at: datetime,
        about: dict[str, object],
        exc: TransientSendError,
        *,
        copies: tuple[str, ...] | None = None,
        refused: dict[str, str] | None = None,
        tell: bool = False,
    ) -> None:
        """The row is tried again after the channel's `retry_after`, or after a jittered back-off.
        `copies`: whom the retry is still to copy, if no longer all of the row's copies; `refused`:
        people copied on it the platform refused for good meanwhile (told in the case topic, as
        `Sent.refused_copies`); `tell`: its recipient was refused for now, say so in the case topic."""
        wait = exc.retry_after if exc.retry_after is not None else backoff_seconds(message.attempt)
        # Told at a row's first failure; its retries through an outage are the runtime's to tell, once.
        level = logging.WARNING if message.attempt <= 1 else logging.DEBUG
        log.log(level, "send failed, will retry", extra={**about, "error": str(exc), "retry_in": round(wait, 1)})
        retry_at = self.clock() + timedelta(seconds=wait)
        self._retry_at[message.outbox_id] = retry_at
        self._last_error[message.outbox_id] = str(exc)
        told = False
        with transaction(self.engine) as session:
            outbox.mark_retry(session, message.outbox_id, str(exc), retry_at, copies=copies)
            if refused:
                told |= notices.refused_copies(session, self.clock(), self.case_channel, message, refused)
            if tell:
                told |= notices.not_reached_yet(
                    session, self.clock(), self.case_channel, message, str(exc), RECIPIENT_GIVE_UP.days
                )
        if told and self.case_channel is not None:
            self.wake({self.case_channel})
        self._report(message.channel, "retry", created_at)

    def _failed(
        self, message: Outbound, created_at: datetime, about: dict[str, object], exc: PermanentSendError
    ) -> list[str]:
        """The row can never go: marked failed, the engineers told (`_fail`)."""
        log.error("send failed for good", extra={**about, "error": str(exc)})
        self._fail(message, str(exc))
        self._report(message.channel, "failed_topic" if message.kind == "topic" else "failed", created_at)
        return FAILED

    def _fail(self, message: Outbound, error: str) -> None:
        with transaction(self.engine) as session:
            row = outbox.mark_failed(session, message.outbox_id, error)
            told = row is not None and notices.failed_for_good(
                session, self.clock(), self.case_channel, row, error, settings=self.settings
            )
        if told and self.case_channel is not None:
            self.wake({self.case_channel})

    def _report(self, channel: str, result: str, created_at: datetime) -> None:
        if self.on_result:
            self.on_result(channel, result, (self.clock() - created_at).total_seconds())

    def run(self, channel: str, stop: threading.Event, poll: float = 1.0) -> None:
        """Deliver `channel`'s rows until `stop` is set: what intake hands over, and due rows.

        The store is looked at when `wake` says rows were written for the loop, and every
        `poll` seconds (retries coming due); rows handed over need no look. What was handed
        over before `stop` is still sent.
        """
        wake = self._wake[channel]
        # Rows from before this process started may wait for a retry: nothing of the channel is
        # sent inline (a reply would overtake them) until a drain finds none left.
        self._clear[channel] = False
        with suppress(Exception):  # the store down: the loop's drains will tell
            with transaction(self.engine) as session:
                self._clear[channel] = not outbox.has_pending(session, channel, held=list(self.held(channel)))
        self._running.add(channel)
        next_look = time.monotonic()
        try:
            while True:
                wake.clear()
                try:
                    self._send_handed(channel)
                    if stop.is_set():
                        break
                    if self._due[channel] or time.monotonic() >= next_look:
                        self._due[channel] = False
                        next_look = time.monotonic() + poll
                        self.drain(channel)
                        self._store_seen(None)
                except DBAPIError as exc:
                    # The store is gone (an outage, a password changed under the process): told
                    # once by the runtime, not as a traceback every second; the loop retries.
                    self._store_seen(exc)
                    log.debug("dispatcher loop: the store is unreachable: %s", exc, extra={"channel": channel})
                    stop.wait(1.0)
                except Exception:
                    log.exception("dispatcher loop error", extra={"channel": channel})
                    stop.wait(1.0)
                if not self._handed[channel]:
                    wake.wait(max(0.0, next_look - time.monotonic()))
        finally:
            self._running.discard(channel)
            # A hand-over racing the exit: sent here rather than left leased.
            self._send_handed(channel)
