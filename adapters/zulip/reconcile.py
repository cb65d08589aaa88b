"""Which parts of a row an earlier attempt already posted (NOTES §3).

Zulip has no idempotency key, and the client's own retries are off for sends.
Every part the bot posts ends with its row's reference (`compose.reference_line`,
for example `ref dk12 2/3`), so before a row is posted again (`attempt > 1`,
or after an ambiguous failure) the bot reads its own newest messages in the
row's conversation (the recipient's direct messages, or the case topic) and
takes each part it finds as posted. Only the newest `depth` messages are read.
A look-up that fails for now makes the send fail for now: sending blind could
double the message.
"""

from __future__ import annotations

import zulip

from adapters.backoff import Backoff
from adapters.channel import Outbound, PermanentSendError, TransientSendError
from adapters.topics import clip_topic

from .compose import MAX_TOPIC_LENGTH, find_reference, safe_reference
from .state import ServerState
from .transport import Transport, ZulipApiError, ZulipRateLimited, ZulipUnavailable, retrying


def posted_parts(
    transport: Transport,
    client: zulip.Client,
    state: ServerState,
    message: Outbound,
    total: int,
    *,
    depth: int,
    retry: Backoff,
    max_rate_wait: float,
) -> dict[int, int]:
    """{part number: message id} of this row's parts the bot already posted."""
    ref = safe_reference(message.reference)
    if message.kind == "direct":
        narrow = [{"operator": "dm", "operand": message.recipient}]
    else:
        narrow = [
            {"operator": "stream", "operand": state.stream_id},
            {"operator": "topic", "operand": clip_topic(message.topic or "", MAX_TOPIC_LENGTH)},
        ]
    narrow.append({"operator": "sender", "operand": state.user_id})
    request = {
        "anchor": "newest",
        "num_before": depth,
        "num_after": 0,
        "narrow": narrow,
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
    except ZulipUnavailable as exc:
        # Sending blind could double the message: try the whole row later instead.
        raise TransientSendError(f"cannot check for an earlier send: {exc}") from None
    except ZulipApiError as exc:
        raise PermanentSendError(f"Zulip refused the earlier-send lookup: {exc.code}: {exc.msg}") from None
    found: dict[int, int] = {}
    for m in (res or {}).get("messages", []):
        hit = find_reference(str(m.get("content", "")))
        if hit is not None and hit[0] == ref and hit[1] <= total:
            found.setdefault(hit[1], int(m["id"]))
    return found
