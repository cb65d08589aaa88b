"""Mastodon notifications as deskbot's `Inbound` messages.

A customer message is a `mention` notification whose status is `direct`. A
mention in a public, unlisted or followers-only status becomes an Inbound with
`public=True` and no text (the router asks the person to write a direct
message), and its raw payload keeps identifiers only, so no public content is
stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.channel import Inbound

from .html_text import status_to_text

CHANNEL = "mastodon"


def id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are opaque strings ordered by (length, value)."""
    return len(value), value


def plain(entity: Any) -> Any:
    """A Mastodon.py entity as the JSON the server sent (ids as strings, times in ISO 8601).

    A direct copy: `Entity.to_json()` costs milliseconds per notification, which
    dominated catching up a backlog.
    """
    if isinstance(entity, dict):
        return {str(key): plain(value) for key, value in entity.items()}
    if isinstance(entity, list | tuple):
        return [plain(value) for value in entity]
    if isinstance(entity, datetime):
        return entity.isoformat()
    if isinstance(entity, str):
        return str(entity)  # Mastodon.py's id type is a str subclass
    return entity


def full_acct(account: dict[str, Any], local_domain: str) -> str:
    """`user@domain` for everyone, in lower case: local accounts get the instance's domain.

    Mastodon usernames are case-insensitive (`Bob` and `bob` are one account), and this
    string is the key a customer is linked by, so it is folded.
    """
    acct = str(account.get("acct") or account.get("username") or "")
    username, _, domain = acct.partition("@")
    return f"{username}@{domain or local_domain}".lower()


def notification_to_inbound(notification: dict[str, Any], *, own_account_id: str, local_domain: str) -> Inbound:
    """The Inbound for a `mention` notification (the caller checked type and author)."""
    status = notification["status"]
    account = status.get("account") or notification["account"]
    sender = full_acct(account, local_domain)
    status_id = str(status["id"])
    common = {
        "channel": CHANNEL,
        "sender": sender,
        "conversation": status_id,
        "message_id": status_id,
        "received_at": parse_time(status.get("created_at") or notification.get("created_at")),
        "sender_name": (account.get("display_name") or account.get("username") or None),
        "sender_platform_id": str(account["id"]),
    }
    if status.get("visibility") != "direct":
        return Inbound(
            **common,
            text="",
            public=True,
            raw={
                "notification_id": str(notification["id"]),
                "status_id": status_id,
                "visibility": status.get("visibility"),
                "url": status.get("url"),
            },
        )
    spoiler = (status.get("spoiler_text") or "").strip()
    text = status_to_text(status, own_account_id)
    reply_to = status.get("in_reply_to_id")
    return Inbound(
        **common,
        # All the words under the content warning, where the body has none: they are the message.
        text=text if text.strip() or not spoiler else spoiler,
        subject_hint=spoiler or None,
        # A reply to one of the bot's statuses about an incident joins that incident (the router
        # looks the posted status up), as an email answering the bot's mail does.
        replies_to=(str(reply_to),) if reply_to else (),
        raw=notification,
    )


def parse_time(value: Any) -> datetime:
    """A Mastodon time (ISO 8601 text, or Mastodon.py's datetime) as an aware datetime; now if absent."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.now(UTC)
