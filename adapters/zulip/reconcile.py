"""Which parts of a row an earlier attempt already posted (SPEC §7, NOTES §3), found by their content.

Zulip has no idempotency key, and the client's own retries are off for sends.
So before a row is posted again (`attempt > 1`: the process may have died
between the post and the commit that records it), and after a failure the
server may have acted on (a timeout, a cut connection, a 5xx), the bot looks
for its own earlier send instead of posting blind. Three ways were weighed:

* A reference token in every message (`ref dk12`, what deskbot did before):
  exact, but every customer read it. SPEC §7 and issue 13 rule it out:
  nothing is added to a message for this.
* `queue_id` + `local_id` on `POST /messages` (local echo): the server hands
  `local_id` back only in the `message` event of that one event queue. The
  queue belongs to the receive loop (of whichever replica holds the channel),
  is dropped after 10 idle minutes, and is gone with the process whose crash
  is being repaired; `GET /messages` never returns `local_id`. The key is
  lost exactly when it is needed.
* The content (chosen): a body is a pure function of its row
  (`compose.compose`), the server keeps it as sent (`compose.as_stored`), and
  `GET /messages` with `apply_markdown=false` gives it back raw. The bot reads
  its own newest messages in the row's conversation (the recipient's direct
  messages, or the case topic; `sender` = the bot), posted no earlier than
  the row was written (less `CLOCK_SKEW`), and takes for each part, in order,
  the oldest message with exactly that body that is not another row's: not
  recorded as sent for another row in the store (`Channel.recorded_elsewhere`)
  nor posted or taken by this process for another row not yet recorded
  (`Claims`). Two rows with the same words for the same person (two answers to
  `status`) each find their own message, or none.

Only the newest `depth` messages are read. A look-up that fails for now makes
the send fail for now: sending blind could double the message.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import zulip

from adapters.backoff import Backoff
from adapters.channel import Outbound, PermanentSendError, TransientSendError
from adapters.topics import clip_topic

from .compose import MAX_TOPIC_LENGTH, as_stored
from .state import ServerState
from .transport import Transport, ZulipApiError, ZulipRateLimited, ZulipStopping, ZulipUnavailable, retrying

#: How far the Zulip server's clock may lag the bot's: a message stamped this much before the row
#: was written may still be the row's.
CLOCK_SKEW = timedelta(minutes=10)
#: Message ids this process remembers posting or taking, per outbox row, until the row is recorded.
CLAIMS_KEPT = 10_000

#: Of these message ids, those the store records as sent for rows other than this one.
RecordedElsewhere = Callable[[Outbound, set[str]], set[str]]


class Claims:
    """Which outbox row each message this process posted or took belongs to (the newest CLAIMS_KEPT).

    The dispatcher records a batch's deliveries together, after the batch: until then only this
    process knows that a message it posted is a row's.
    """

    def __init__(self, kept: int = CLAIMS_KEPT) -> None:
        self._owner: OrderedDict[int, int] = OrderedDict()
        self._kept = kept
        self._lock = threading.Lock()

    def claim(self, message_id: int, outbox_id: int) -> None:
        with self._lock:
            self._owner[message_id] = outbox_id
            self._owner.move_to_end(message_id)
            while len(self._owner) > self._kept:
                self._owner.popitem(last=False)

    def others(self, message_ids: set[int], outbox_id: int) -> set[int]:
        """Of `message_ids`, those claimed for another row."""
        with self._lock:
            return {i for i in message_ids if self._owner.get(i, outbox_id) != outbox_id}


def conversation_narrow(message: Outbound, state: ServerState) -> list[dict[str, Any]]:
    """The row's conversation as a `GET /messages` narrow, the bot's own messages only."""
    if message.kind == "direct":
        recipient = message.recipient or ""
        # A user id (rows written since issue 13), or an email (rows written before).
        operand: Any = [int(recipient)] if recipient.isascii() and recipient.isdigit() else recipient
        narrow = [{"operator": "dm", "operand": operand}]
    else:
        narrow = [
            {"operator": "stream", "operand": state.stream_id},
            {"operator": "topic", "operand": clip_topic(message.topic or "", MAX_TOPIC_LENGTH)},
        ]
    narrow.append({"operator": "sender", "operand": state.user_id})
    return narrow


def posted_parts(
    transport: Transport,
    client: zulip.Client,
    state: ServerState,
    message: Outbound,
    parts: list[str],
    *,
    claims: Claims,
    recorded_elsewhere: RecordedElsewhere | None,
    depth: int,
    retry: Backoff,
    max_rate_wait: float,
) -> dict[int, int]:
    """{part number: message id} of the parts of `message` (its bodies, `parts`) already posted.

    Parts are matched in order, each to a message newer than the previous part's; the first part
    not found ends the search (the parts after it cannot have been posted before it).
    """
    request = {
        "anchor": "newest",
        "num_before": depth,
        "num_after": 0,
        "narrow": conversation_narrow(message, state),
        "apply_markdown": False,
    }
    try:
        res = None
        for attempt in retrying(
            retry, transport.sleep, max_rate_wait=max_rate_wait, on_rate_wait=transport.note_rate_wait
        ):
            with attempt:
                res = transport.call(client, "GET", "messages", request, max_pause=max_rate_wait)
    except ZulipRateLimited as exc:
        raise TransientSendError(
            f"Zulip rate limit while checking for an earlier send: {exc}", retry_after=exc.retry_after
        ) from None
    except ZulipStopping as exc:
        raise TransientSendError(f"stopping while checking for an earlier send: {exc}") from None
    except ZulipUnavailable as exc:
        # Sending blind could double the message: try the whole row later instead.
        raise TransientSendError(f"cannot check for an earlier send: {exc}") from None
    except ZulipApiError as exc:
        raise PermanentSendError(f"Zulip refused the earlier-send lookup: {exc.code}: {exc.msg}") from None
    bodies = {as_stored(p) for p in parts}
    earliest = (message.written_at - CLOCK_SKEW).timestamp() if message.written_at is not None else None
    candidates = sorted(
        (int(m["id"]), str(m.get("content", "")))
        for m in (res or {}).get("messages", [])
        if str(m.get("content", "")) in bodies and (earliest is None or int(m.get("timestamp", 0)) >= earliest)
    )
    if not candidates:
        return {}
    ids = {i for i, _c in candidates}
    taken = claims.others(ids, message.outbox_id)
    if recorded_elsewhere is not None:
        taken |= {int(i) for i in recorded_elsewhere(message, {str(i) for i in ids - taken})}
    found: dict[int, int] = {}
    after = 0
    for number, part in enumerate(parts, 1):
        body = as_stored(part)
        hit = next((i for i, content in candidates if i > after and i not in taken and content == body), None)
        if hit is None:
            break
        found[number] = after = hit
    return found
