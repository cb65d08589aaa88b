"""Mail that must never be answered: robots, bounces, lists, and the support address itself.

Two robots that answer each other never stop; a bounce answered bounces again.
RFC 3834 and the headers mail software sets in practice say which mail a
person did not write (see the notes on automatic mail): such mail is stored
but gets no answer. The reason is one short word, for the logs and the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

#: Local parts of the addresses bounces come from.
_BOUNCE_SENDERS = {"mailer-daemon", "postmaster"}
#: The same in a `From` that has no domain ("MAILER-DAEMON (Mail Delivery System)").
_BOUNCE_FROM = re.compile(r"(?:^|[\s<\"])(?:mailer-daemon|postmaster)(?:[@>\s\"]|$)", re.IGNORECASE)
#: RFC 3834 §2: a `Precedence` of these is mail sent to many, or by a program ("auto_reply" is not in
#: the RFC, but vacation programs set it).
_BULK = {"bulk", "junk", "list", "auto_reply"}


def automatic_reason(
    header: Callable[[str], str | None],
    *,
    sender: str,
    content_type: str,
    own_addresses: Collection[str] = (),
) -> str | None:
    """Why the mail must never be answered, or None if a person may be answered.

    `header(name)` gives a header's value (None when the mail has none); `sender` is the `From`
    addr-spec, lower-cased ('' when there is none); `content_type` the mail's own, lower-cased.
    """
    if sender and sender in {address.strip().lower() for address in own_addresses}:
        return "own address"
    return_path = header("Return-Path")
    if (
        (return_path is not None and return_path.strip() in ("<>", ""))
        or content_type == "multipart/report"
        or sender.split("@", 1)[0] in _BOUNCE_SENDERS
        or _BOUNCE_FROM.search(header("From") or "")
    ):
        return "bounce"
    if not sender:
        return "null sender"
    auto_submitted = _token(header("Auto-Submitted"))
    if auto_submitted is not None and auto_submitted != "no":
        return "auto-submitted"
    if header("X-Autoreply") is not None or header("X-Autorespond") is not None:
        return "autoreply"
    # Exchange sets it on its own automatic mail; "None" is the one value that suppresses nothing.
    suppress = _token(header("X-Auto-Response-Suppress"))
    if suppress is not None and suppress != "none":
        return "auto-response-suppress"
    if _token(header("Precedence")) in _BULK:
        return "precedence"
    # RFC 2919/2369 list headers; since 2024 Gmail and Yahoo require List-Unsubscribe of every bulk
    # sender, so newsletters carry it even when they are no list.
    if header("List-Id") is not None or header("List-Unsubscribe") is not None:
        return "list"
    return None


def _token(value: str | None) -> str | None:
    """A header's first word, lower-cased, without parameters or comments ("auto-replied; …" → …)."""
    if value is None:
        return None
    words = value.split(";", 1)[0].split("(", 1)[0].split()
    return words[0].lower() if words else ""
