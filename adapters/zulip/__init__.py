"""The Zulip channel: customers' direct messages and the engineers' case topics.

`ZulipChannel` is the adapter, `ZulipTuning` its knobs; the rest are its parts, named as in every
adapter (see `adapters`): `startup` (the account and the support stream),
`receive` (register / catch-up / long-poll loop), `inbound` (messages to
`Inbound`), `outbound` (rows posted as messages), `reconcile` (the parts a
retried row already posted), `compose` (message bodies: fences, references,
splitting), `transport` (clients, errors, retries), `pacing` (rate limits)
and `state` (what the adapter knows about the server and the support stream).
"""

from .channel import ZulipChannel, ZulipTuning
from .receive import CURSOR_KEY

__all__ = ("CURSOR_KEY", "ZulipChannel", "ZulipTuning")
