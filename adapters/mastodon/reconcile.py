"""Which parts of a reply an earlier attempt already posted.

An outbox row goes out again (`Outbound.attempt > 1`) after a crash or a
transient failure, perhaps hours later. Its Idempotency-Keys cannot be
trusted to stop a second copy then: Mastodon keeps a key for one hour only,
and since its 2026 lock change a repeated key may answer HTTP 500 although
the first status exists (mastodon/mastodon#40399). So the channel looks for
its own earlier parts first and posts only the ones missing.

Where they are: part 1 replies to the customer's status and part n+1 to part
n, so the bot's own statuses among that status's descendants
(`GET /api/v1/statuses/:id/context`) hold the thread. A reply that answers no
status (none given, or the customer deleted it, and the first attempt then
posted part 1 on its own) is looked for among the bot's latest statuses
(`GET /api/v1/accounts/:id/statuses`: Mastodon's `AccountStatusesFilter`
shows an account all of its own statuses, direct ones included). A status is
the part when its source text (`GET /api/v1/statuses/:id/source`) is exactly
the part's text; the rendered HTML would not do (links and mentions are
rewritten in it).

What it cannot tell apart: two rows with the same text answering the same
status are the same to this look-up, so the later one's retry takes the
earlier one's status as its own. Without a status to answer, only the bot's
latest `LOOKBACK` statuses are searched.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

from mastodon.errors import MastodonNotFoundError

from adapters.paging import pages

from .pacing import API
from .transport import Transport

#: How many of the bot's latest statuses are searched for a part that answers no status.
LOOKBACK = 200
_PAGE = 40  # Mastodon's largest page of an account's statuses


def posted_parts(
    transport: Transport, own_id: str, parts: list[str], conversation: str | None, stop: threading.Event
) -> list[str]:
    """The ids of the leading `parts` already posted, in order (none: post from part 1).

    Raises the Mastodon.py error of a look-up that failed, so that the caller
    can try later instead of posting blind.
    """
    own: list[dict[str, Any]] | None = None
    if conversation:
        try:
            context = transport.request(API, partial(transport.send.status_context, conversation), stop=stop)
            own = [s for s in context["descendants"] if str(s["account"]["id"]) == own_id]
        except MastodonNotFoundError:
            pass  # deleted: part 1 answers its id, or (deleted before it went out) nothing
    # Part 1 answers the conversation, or nothing when there is none to answer.
    roots = {conversation} if own is not None else {conversation, None}
    if own is None:
        own = _latest_own(transport, own_id, stop)
    found: list[str] = []
    for part in parts:
        parent_ids = roots if not found else {found[-1]}
        match = next(
            (
                str(s["id"])
                for s in own
                if _parent(s) in parent_ids and _source_text(transport, str(s["id"]), stop) == part
            ),
            None,
        )
        if match is None:
            break
        found.append(match)
    return found


def _parent(status: dict[str, Any]) -> str | None:
    parent = status.get("in_reply_to_id")
    return str(parent) if parent is not None else None


def _source_text(transport: Transport, status_id: str, stop: threading.Event) -> str | None:
    try:
        return str(transport.request(API, partial(transport.send.status_source, status_id), stop=stop)["text"])
    except MastodonNotFoundError:
        return None  # deleted since


def _latest_own(transport: Transport, own_id: str, stop: threading.Event) -> list[dict[str, Any]]:
    api = transport.send

    def fetch(max_id: str | None) -> list[dict[str, Any]]:
        return transport.request(API, partial(api.account_statuses, own_id, max_id=max_id, limit=_PAGE), stop=stop)

    def following(page: list[dict[str, Any]]) -> str | None:
        return str(page[-1]["id"]) if len(page) >= _PAGE else None  # newest first: go on below the oldest

    statuses: list[dict[str, Any]] = []
    for page in pages(fetch, None, following):
        statuses.extend(page)
        if len(statuses) >= LOOKBACK:
            break
    return statuses
