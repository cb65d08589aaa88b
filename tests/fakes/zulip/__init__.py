"""A fake Zulip server: real HTTP on 127.0.0.1, driven by the real `zulip.Client`.

Built from `../shared/reference/zulip/` (example payloads and NOTES.md). It
models users (with hidden email addresses: stand-in `email`, `delivery_email`
as each user's `email_address_visibility` allows), user groups, private and
public streams, event queues with long-polling and idle expiry, `GET /messages` narrows and anchors, `POST /messages` with the
server's normalisation and silent truncation, Basic auth, per-user rate
limits and fault injection. Run it on its own with
`python -m tests.fakes.zulip --help`.
"""

from .limits import Fault
from .model import (
    ADMINS,
    EVERYONE,
    MEMBERS,
    MODERATORS,
    NOBODY,
    FakeGroup,
    FakeStream,
    FakeUser,
    StoredMessage,
    Truncation,
)
from .routes import RequestRecord
from .server import FakeZulip

__all__ = (
    "ADMINS",
    "EVERYONE",
    "MEMBERS",
    "MODERATORS",
    "NOBODY",
    "FakeGroup",
    "FakeStream",
    "FakeUser",
    "FakeZulip",
    "Fault",
    "RequestRecord",
    "StoredMessage",
    "Truncation",
)
