"""The email channel: the support mailbox, read over IMAP and answered over SMTP (SPEC §4 Email).

`EmailChannel` is the adapter, `EmailSettings` what the settings say about the mailbox and
`EmailTuning` (`tuning`) its knobs; the rest are its parts, named as in every adapter (see
`adapters`): `servers` (the two URLs read), `transport` (IMAP and SMTP sessions with TLS,
failures as one line), `oauth` (access tokens for a mailbox that takes no password), `receive` (IDLE, the UID cursor, the catch-up), `inbound` (a `Mail`
to `Inbound`), `outbound` (a row sent once over SMTP), `compose` (the mail of a row:
threading, Message-ID, Auto-Submitted), `reconcile` (the Sent folder); and `reading`, which
turns a raw message into a `Mail` (pure, no network), with `quoting` (the new part of a
reply), `automatic` (mail that must never be answered) and `authentication` (the trusted
server's DMARC verdict).

The exports are imported when first used: the settings read `servers` alone, without the
IMAP client and the mail reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .channel import EmailChannel, EmailSettings
    from .receive import CURSOR_KEY
    from .tuning import EmailTuning

__all__ = ("CURSOR_KEY", "EmailChannel", "EmailSettings", "EmailTuning")


def __getattr__(name: str) -> Any:
    if name == "CURSOR_KEY":
        from .receive import CURSOR_KEY

        return CURSOR_KEY
    if name == "EmailTuning":
        from .tuning import EmailTuning

        return EmailTuning
    if name in __all__:
        from . import channel

        return getattr(channel, name)
    raise AttributeError(name)
