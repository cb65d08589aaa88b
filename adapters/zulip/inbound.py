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

An edit (an `update_message` event that changed what a message says) becomes an Inbound of its
own: the message as it stands, with the new text, `edit_of` naming it, and an id of its own per
edit (`edit_id`). The event names neither the message's recipients nor its sender's name, so the
message is read from the server first; `edited_message_id` says which edits are worth that.

A move of a topic within the support stream (an engineer renames a case topic, or marks it resolved:
Zulip's "✔ " before the name) is no message: `topic_move` reads it, and the receive loop tells the
sink when the whole topic moved, so that the case follows its topic.
"""

from __future__ import annotations

import dataclasses
import hashlib
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


def edited_message_id(event: dict[str, Any], state: ServerState) -> int | None:
    """The id of the message an `update_message` event changed the words of, if the bot may have to
    handle the edit; None for the rest: a rendering update (an inline URL preview, `rendering_only`),
    a topic or stream move (no `content`), words left as they were, the bot's own edits, and
    messages in streams other than the support stream."""
    if event.get("rendering_only") or event.get("user_id") is None or "content" not in event:
        return None
    if event.get("user_id") == state.user_id or event.get("content") == event.get("orig_content"):
        return None
    if event.get("stream_id") is not None and event.get("stream_id") != state.stream_id:
        return None
    message_id = event.get("message_id")
    return message_id if isinstance(message_id, int) else None


@dataclasses.dataclass(frozen=True, slots=True)
class TopicMove:
    """Messages an `update_message` event moved from topic `old` to topic `new` of the support stream.

    `whole` is True when the whole topic moved ("change_all"), False when only one message did
    ("change_one": never the whole case, even the topic's only message), and None for the move of
    the message `first` and every later one ("change_later"): that is the whole topic when no
    message older than `first` is left under `old`, which only the server can tell."""

    old: str
    new: str
    first: int
    whole: bool | None


def topic_move(event: dict[str, Any], state: ServerState) -> TopicMove | None:
    """The move within the support stream an `update_message` event tells of, or None: no move (an
    edit of the words alone), a move out of the support stream or into it from another (a case
    topic moved out keeps its name in the store: the bot's next post about the case opens it in
    the support stream again), and a rename to the same name."""
    old, new = event.get("orig_subject"), event.get("subject")
    if not isinstance(old, str) or not isinstance(new, str) or old == new:
        return None
    if state.stream_id is None or event.get("stream_id") != state.stream_id:
        return None
    if event.get("new_stream_id", state.stream_id) != state.stream_id:
        return None
    message_ids = [mid for mid in event.get("message_ids") or [event.get("message_id")] if isinstance(mid, int)]
    if not message_ids:
        return None
    mode = event.get("propagate_mode")
    whole = True if mode == "change_all" else None if mode == "change_later" else False
    return TopicMove(old=old, new=new, first=min(message_ids), whole=whole)


def edit_to_inbound(event: dict[str, Any], message: dict[str, Any], state: ServerState) -> Inbound | None:
    """An edit (`event`) of `message` (as `GET /messages/{id}` gives it) as an Inbound with the new
    text, or None where the message is not for the bot (`to_inbound`: the bot's own, a group DM)."""
    content = str(event["content"])
    inbound = to_inbound({**message, "content": content}, state)
    if inbound is None:
        return None
    edited_at = int(event.get("edit_timestamp") or message.get("timestamp", 0))
    return dataclasses.replace(
        inbound,
        message_id=edit_id(inbound.message_id, edited_at, content),
        received_at=datetime.fromtimestamp(edited_at, tz=UTC),
        edit_of=inbound.message_id,
    )


def edit_id(message_id: str, edited_at: int, content: str) -> str:
    """The exactly-once key of one edit: the message, when, and a digest of the new words. The same
    event delivered twice has the same key; two edits differ by their time (whole seconds in
    Zulip) or, within one second, by their words."""
    digest = hashlib.sha256(content.encode("utf-8", "replace")).hexdigest()[:12]
    return f"{message_id}:edit:{edited_at}:{digest}"
