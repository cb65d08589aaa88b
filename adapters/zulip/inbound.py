"""Zulip messages as deskbot's `Inbound` messages.

A one-to-one direct message to the bot becomes a `direct` Inbound; a message in
the support stream a `topic` Inbound, with the case its topic is named after
(`adapters.topics.case_in_topic`). Everything else (the bot's own messages,
other streams, group direct messages) is not for the bot: None.

The sender is their Zulip user id, never their `sender_email`: where the
organisation restricts email visibility that is a stand-in (`user123@…`),
and a person changing their visibility setting would change it. The email is
passed on as an alias only, so that an identity stored under it before
(deskbot keyed Zulip accounts by email until issue 13) is found and re-keyed.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from adapters.channel import Inbound
from adapters.topics import case_in_topic

from .state import ServerState

log = logging.getLogger("deskbot.adapters.zulip")

CHANNEL = "zulip"


def to_inbound(message: dict[str, Any], state: ServerState) -> Inbound | None:
    """A Zulip message → Inbound, or None for what the bot does not handle (logged)."""
    mid = message.get("id")
    if message.get("sender_id") == state.user_id:
        return None
    received_at = datetime.fromtimestamp(int(message.get("timestamp", 0)), tz=UTC)
    user_id = str(int(message["sender_id"]))
    email = str(message.get("sender_email") or "")
    common = dict(
        channel=CHANNEL,
        sender=user_id,
        conversation=user_id,
        text=strip_own_mention(str(message.get("content", "")), state.full_name),
        message_id=str(mid),
        received_at=received_at,
        raw=message,
        sender_name=message.get("sender_full_name"),
        sender_platform_id=user_id,
        # As messages showed it, and as `deskbot customers add --zulip-email` stored it (lower case).
        sender_aliases=tuple(dict.fromkeys((email, email.lower()))) if email else (),
    )
    if message.get("type") == "stream":
        if message.get("stream_id") != state.stream_id:
            log.debug("ignoring message %s in another stream", mid)
            return None
        topic = str(message.get("subject", ""))
        return Inbound(kind="topic", topic=topic, case=case_in_topic(topic), **common)
    recipients = message.get("display_recipient")
    if not isinstance(recipients, list):
        return None
    others = {r.get("id") for r in recipients if r.get("id") != state.user_id}
    if others != {message.get("sender_id")}:
        log.info("ignoring group direct message %s (%d participants)", mid, len(others) + 1)
        return None
    return Inbound(kind="direct", **common)


def strip_own_mention(text: str, full_name: str) -> str:
    """Drop a leading `@**Bot Name**` (or `@_**Bot Name|id**`) addressed to the bot."""
    if not full_name:
        return text
    pattern = r"^\s*@_?\*\*" + re.escape(full_name) + r"(?:\|\d+)?\*\*[\s:,]*"
    return re.sub(pattern, "", text, count=1)
