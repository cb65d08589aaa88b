"""The Mastodon channel: customers' direct messages on a Mastodon account.

`MastodonChannel` is the adapter; the rest are its parts: `stream` (the SSE
reader), `html_text` (status HTML to plain text), `compose` (counting and
splitting replies as Mastodon counts), `pacing` (rate limits), `inbound`
(notifications to `Inbound`).
"""

from .channel import CURSOR_KEY, MastodonChannel

__all__ = ("CURSOR_KEY", "MastodonChannel")
