"""The Zulip channel: customers' direct messages and the engineers' case topics.

Private modules: `_channel` (the `Channel`), `_intake` (register / catch-up /
long-poll loop), `_relay` (message bodies: fences, references, splitting),
`_transport` (clients, errors, rate-limit pacing, back-off), `_state` (what
the adapter knows about the server and the support stream).
"""

from ._channel import ZulipChannel
from ._transport import RetryPolicy

__all__ = ["RetryPolicy", "ZulipChannel"]
