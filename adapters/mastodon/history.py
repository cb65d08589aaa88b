"""Mentions the bot did not receive as they came: where a first start begins, and
the DMs of notification requests accepted at start.

* `newest_mentions`: on the very first start the channel begins after the
  newest mention notification, so that the account's history is not answered.
* `await_merge`: accepting a request only schedules the merge of its
  notifications (Mastodon's `UnfilterNotificationsWorker`); until it has run
  they are missing from `/api/v1/notifications`. They keep their old ids.
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


def mentions_from(transport: Transport, sender: str, page_size: int, stop: threading.Event) -> Iterator[dict[str, Any]]:
    """Every mention notification from account `sender`, oldest first, as plain JSON."""
    min_id = "0"
    while not stop.is_set():
        page = transport.request(
            API,
            partial(transport.recv.notifications, types=["mention"], account_id=sender, min_id=min_id, limit=page_size),
            stop=stop,
        )
        items = sorted((plain(n) for n in page), key=lambda n: id_key(str(n["id"])))
        yield from items
        if len(page) < page_size:
            return
        min_id = str(items[-1]["id"])
