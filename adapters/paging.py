"""Reading a platform's history a page at a time: the one paging loop of the adapters.

Catching up is the same walk everywhere: ask for a page from a cursor, hand
it on, and ask again from where it ended until a page says it was the last
(Zulip: `found_newest` or an empty batch; Mastodon: a page shorter than
asked for). The caller says how to fetch a page and where the next one
starts; `pages` does the walking.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

Cursor = TypeVar("Cursor")
Page = TypeVar("Page")


def pages(
    fetch: Callable[[Cursor], Page],
    start: Cursor,
    following: Callable[[Page], Cursor | None],
    stop: threading.Event | None = None,
) -> Iterator[Page]:
    """The pages `fetch(cursor)` gives, from `start` on, until `following(page)` says None.

    `following(page)` is asked once the caller has handled `page` (when it asks for the next):
    the cursor the next page starts from, or None when `page` was the last. The walk also ends
    as soon as `stop` is set.
    """
    cursor = start
    while stop is None or not stop.is_set():
        page = fetch(cursor)
        yield page
        after = following(page)
        if after is None:
            return
        cursor = after
