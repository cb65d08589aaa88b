"""The Zulip channel: customers' direct messages and the engineers' case topics.

`ZulipChannel` is the adapter, `ZulipTuning` (`tuning`) its knobs; the rest are its parts, named as in every
adapter (see `adapters`): `startup` (the account and the support stream),
`receive` (register / catch-up / long-poll loop), `inbound` (messages to
`Inbound`), `outbound` (rows posted as messages), `reconcile` (the parts a
retried row already posted, found by their content), `compose` (message
bodies: fences, splitting), `transport` (clients, errors, retries), `pacing`
(rate limits), `state` (what the adapter knows about the server and the
support stream) and `directory` (the engineers, by user id: DESKBOT_ENGINEERS
resolved, user groups kept current).
"""

from .channel import ZulipChannel
from .receive import CURSOR_KEY
from .tuning import ZulipTuning

__all__ = ("CURSOR_KEY", "ZulipChannel", "ZulipTuning")
