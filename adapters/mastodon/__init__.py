"""The Mastodon channel: customers' direct messages on a Mastodon account.

`MastodonChannel` is the adapter, `MastodonTuning` (`tuning`) its knobs; the rest are its
parts, named as in every adapter (see `adapters`): `startup` (instance limits,
notification policy), `receive` (the stream and the catch-up polls), `stream`
(the SSE reader), `history` (paging through mentions, where a first start
begins, accepted requests' DMs), `inbound` (notifications to `Inbound`),
`edits` (customers' edits of their DMs, live and caught up),
`html_text` (status HTML to plain text), `outbound` (replies as threads of
statuses), `reconcile` (the parts a retried reply already posted), `compose`
(counting and splitting replies as Mastodon counts), `mentions` (what
Mastodon reads as a mention, and text that mentions nobody), `invariants`
(what every composed reply must satisfy, for tests and fuzzing), `transport`
(Mastodon.py clients, retries) and `pacing` (rate limits).
"""

from .channel import MastodonChannel
from .receive import CURSOR_KEY
from .tuning import MastodonTuning

__all__ = ("CURSOR_KEY", "MastodonChannel", "MastodonTuning")
