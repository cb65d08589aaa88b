"""Mentions the bot did not receive as they came: where a first start begins, and
the DMs of notification requests accepted at start.

* `newest_mentions`: on the very first start the channel begins after the
  newest mention notification, so that the account's history is not answered.
* `await_merge`: accepting a request only schedules the merge of its
  notifications (Mastodon's `UnfilterNotificationsWorker`); until it has run
  they are missing from `/api/v1/notifications`. They keep their old ids.
* `mention_pages`: the walk through mention notifications after a cursor,
  a page at a time: how every catch-up reads them.
* `mentions_from`: one sender's mentions, oldest first, however old: how a
  restart finds the DMs of a request it accepted (they are older than its
  cursor, so the catch-up from the cursor never sees them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

from mastodon.errors import MastodonError

from adapters.paging import pages

from .inbound import id_key, plain
from .pacing import API
from .transport import Transport

log = logging.getLogger("deskbot.adapters.mastodon")


def newest_mentions(transport: Transport, page_size: int, stop: threading.Event) -> tuple[str, str]:
    """The id of the newest mention notification ("0" if there is none) and how many
    mentions there are up to it: exact below `page_size`, else "<page_size> or more"
    (counting them all would mean paging through the whole history)."""
    page = transport.request(API, partial(transport.recv.notifications, types=["mention"], limit=page_size), stop=stop)
    newest = max((str(n["id"]) for n in page), key=id_key, default="0")
    return newest, f"{page_size} or more" if len(page) >= page_size else str(len(page))


def await_merge(transport: Transport, wait: float, stop: threading.Event) -> None:
    """Return once Mastodon says accepted requests are merged, or after `wait` seconds."""
    deadline = time.monotonic() + wait
    while not stop.is_set():
        try:
            if transport.paced(API, transport.recv.notifications_merged, stop):
                return
        except MastodonError:
            return  # an older Mastodon without the endpoint: nothing to wait for
        if time.monotonic() >= deadline:
            log.info("mastodon: accepted notification requests not merged after %.0fs; going on", wait)
            return
        stop.wait(min(0.5, wait))


def mention_pages(
    transport: Transport, stop: threading.Event, *, after: str, page_size: int, account_id: str | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Mention notifications after `after` (a `min_id`), a page at a time, each oldest first, as plain JSON.

    Mastodon answers `min_id` with the page right after it; the walk goes on from the newest of
    each page and ends with a short one (`adapters.paging`). `account_id`: only that sender's.
    """
    api = transport.recv
    only = {"account_id": account_id} if account_id is not None else {}

    def fetch(min_id: str) -> list[Any]:
        call = partial(api.notifications, types=["mention"], min_id=min_id, limit=page_size, **only)
        return transport.request(API, call, stop=stop)

    def following(page: list[Any]) -> str | None:
        return max((str(n["id"]) for n in page), key=id_key) if len(page) >= page_size else None

    for page in pages(fetch, after, following, stop):
        yield sorted((plain(n) for n in page), key=lambda n: id_key(str(n["id"])))


def mentions_from(transport: Transport, sender: str, page_size: int, stop: threading.Event) -> Iterator[dict[str, Any]]:
    """Every mention notification from account `sender`, oldest first, as plain JSON."""
    for page in mention_pages(transport, stop, after="0", page_size=page_size, account_id=sender):
        yield from page
