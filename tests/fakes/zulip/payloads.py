"""JSON shapes the fake answers with, taken from the reference examples.

Each builder follows one file in `../shared/reference/zulip/examples/` (named
in its docstring), with the points NOTES §7 lists patched: `server_settings`
gains `zulip_feature_level`, message events carry `flags`, stream messages
carry `subject`/`stream_id`, DM `display_recipient` includes the sender, and
content is raw Markdown unless `apply_markdown` is asked for. They are copied
here rather than read at run time so that the fake also runs where the
reference directory is absent (the container test). `test_fake_contract.py`
checks that they keep the examples' keys.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import FakeGroup, FakeStream, FakeUser, StoredMessage

OK: dict[str, Any] = {"result": "success", "msg": ""}


def server_settings(*, zulip_version: str, feature_level: int, realm_uri: str, realm_name: str) -> dict[str, Any]:
    """examples/server_settings.json, plus zulip_feature_level."""
    return {
        **OK,
        "authentication_methods": {
            "password": True,
            "dev": False,
            "email": True,
            "ldap": False,
            "remoteuser": False,
            "github": False,
            "azuread": False,
            "google": False,
            "saml": False,
        },
        "external_authentication_methods": [],
        "zulip_version": zulip_version,
        "zulip_feature_level": feature_level,
        "zulip_merge_base": zulip_version,
        "push_notifications_enabled": False,
        "is_incompatible": False,
        "email_auth_enabled": True,
        "require_email_format_usernames": True,
        "realm_uri": realm_uri,
        "realm_name": realm_name,
        "realm_icon": realm_uri + "/static/images/icon.png",
        "realm_description": "<p>deskbot fake Zulip</p>",
        "realm_web_public_access_enabled": False,
    }


def user(u: FakeUser, *, email: str | None = None, delivery_email: str | None = None) -> dict[str, Any]:
    """examples/user_by_id_member.json (`user`), for humans and bots.

    `email` is the API email the viewer is shown (default: the real one), `delivery_email` the
    real address where the viewer may see it (default: null, as in the example).
    """
    out: dict[str, Any] = {
        "date_joined": u.date_joined,
        "full_name": u.full_name,
        "is_guest": u.role == 600,
        "user_id": u.user_id,
        "is_bot": u.is_bot,
        "bot_type": 1 if u.is_bot else None,
        "timezone": "",
        "is_admin": u.role <= 200,
        "is_owner": u.role == 100,
        "is_billing_admin": False,
        "role": u.role,
        "avatar_url": None,
        "is_active": u.is_active,
        "email": email if email is not None else u.email,
        "delivery_email": delivery_email,
    }
    if u.is_bot:
        out["bot_owner_id"] = u.bot_owner_id
    else:
        out["profile_data"] = {}
    return out


def own_user(u: FakeUser, max_message_id: int, *, email: str | None = None) -> dict[str, Any]:
    """examples/users_me.json (`email`: the API email, `delivery_email` the real one: it is one's own)."""
    out = {
        **OK,
        "avatar_url": "",
        "avatar_version": 1,
        "email": email if email is not None else u.email,
        "delivery_email": u.email,
        "full_name": u.full_name,
        "is_admin": u.role <= 200,
        "is_owner": u.role == 100,
        "role": u.role,
        "is_guest": u.role == 600,
        "is_billing_admin": False,
        "is_bot": u.is_bot,
        "is_active": u.is_active,
        "timezone": "",
        "date_joined": u.date_joined,
        "max_message_id": max_message_id,
        "user_id": u.user_id,
    }
    if not u.is_bot:
        out["profile_data"] = {}
    return out


def stream(s: FakeStream, first_message_id: int | None) -> dict[str, Any]:
    """examples/streams_with_invite_only.json (one element)."""
    return {
        "can_remove_subscribers_group": 10,
        "date_created": s.date_created,
        "description": s.description,
        "first_message_id": first_message_id,
        "history_public_to_subscribers": s.history_public_to_subscribers,
        "invite_only": s.invite_only,
        "is_announcement_only": False,
        "is_default": False,
        "is_web_public": s.is_web_public,
        "message_retention_days": None,
        "name": s.name,
        "rendered_description": f"<p>{html.escape(s.description)}</p>" if s.description else "",
        "stream_id": s.stream_id,
        "stream_post_policy": 1,
        "stream_weekly_traffic": None,
    }


def subscription(s: FakeStream, first_message_id: int | None, include_subscribers: bool) -> dict[str, Any]:
    """examples/subscriptions.json (one element), with the privacy flags."""
    out = {
        "audible_notifications": None,
        "color": "#e79ab5",
        "description": s.description,
        "rendered_description": f"<p>{html.escape(s.description)}</p>" if s.description else "",
        "desktop_notifications": None,
        "email_notifications": None,
        "push_notifications": None,
        "wildcard_mentions_notify": None,
        "is_muted": False,
        "invite_only": s.invite_only,
        "is_web_public": s.is_web_public,
        "history_public_to_subscribers": s.history_public_to_subscribers,
        "name": s.name,
        "pin_to_top": False,
        "stream_id": s.stream_id,
        "date_created": s.date_created,
        "stream_post_policy": 1,
        "message_retention_days": None,
        "first_message_id": first_message_id,
        "stream_weekly_traffic": None,
        "can_remove_subscribers_group": 10,
        "is_announcement_only": False,
    }
    if include_subscribers:
        out["subscribers"] = sorted(s.subscribers)
    return out


def render_markdown(content: str) -> str:
    """Just enough of Zulip's renderer for `apply_markdown=true` callers."""
    return "\n".join(f"<p>{html.escape(p)}</p>" for p in content.split("\n\n"))


def message(
    m: StoredMessage,
    *,
    sender: FakeUser,
    participants: list[FakeUser],
    stream_name: str | None,
    apply_markdown: bool,
    api_email: Callable[[FakeUser], str] = lambda u: u.email,
) -> dict[str, Any]:
    """examples/get_messages_response_dm_and_stream.json (one message, without flags).

    Addresses are API emails (`api_email`): a stand-in where the person hides their real one.
    """
    out: dict[str, Any] = {
        "id": m.id,
        "sender_id": sender.user_id,
        "content": render_markdown(m.content) if apply_markdown else m.content,
        "content_type": "text/html" if apply_markdown else "text/x-markdown",
        "recipient_id": m.recipient_id,
        "timestamp": m.timestamp,
        "client": m.client,
        "subject": m.subject,
        "topic_links": [],
        "is_me_message": m.content.startswith("/me "),
        "reactions": [],
        "submessages": [],
        "sender_full_name": sender.full_name,
        "sender_email": api_email(sender),
        "sender_realm_str": "zulip",
        "avatar_url": None,
    }
    if m.last_edit_timestamp is not None:
        out["last_edit_timestamp"] = m.last_edit_timestamp
    if m.type == "stream":
        out["type"] = "stream"
        out["display_recipient"] = stream_name
        out["stream_id"] = m.stream_id
    else:
        out["type"] = "private"
        out["display_recipient"] = [
            {"id": p.user_id, "email": api_email(p), "full_name": p.full_name, "is_mirror_dummy": False}
            for p in participants
        ]
    return out


def group(g: FakeGroup) -> dict[str, Any]:
    """One element of `GET /user_groups` (its example) and of register's `realm_user_groups` (`UserGroup`)."""
    return {
        "description": g.description,
        "id": g.id,
        "name": g.name,
        "members": sorted(g.members),
        "direct_subgroup_ids": sorted(g.direct_subgroup_ids),
        "is_system_group": g.is_system_group,
        "can_mention_group": 11,
    }


def update_message(
    m: StoredMessage, *, editor_id: int | None, orig_content: str | None, stream: FakeStream | None
) -> dict[str, Any]:
    """The `update_message` event of the OpenAPI description (its example, without a move), for
    one message (without `flags`, which are each receiver's). `editor_id` None: a rendering update
    (`rendering_only`, as for an inline URL preview), which carries only the content; otherwise a
    change of content by its sender, with the content before (`orig_content`) and, for a stream
    message, the stream (`stream_id` on every edit of one since feature level 112)."""
    out: dict[str, Any] = {
        "type": "update_message",
        "user_id": editor_id,
        "edit_timestamp": m.last_edit_timestamp if editor_id is not None else int(time.time()),
        "message_id": m.id,
        "message_ids": [m.id],
        "rendering_only": editor_id is None,
        "content": m.content,
        "rendered_content": render_markdown(m.content),
    }
    if editor_id is None:
        return out
    out.update(
        orig_content=orig_content,
        orig_rendered_content=render_markdown(orig_content or ""),
        prev_rendered_content_version=1,
        is_me_message=m.content.startswith("/me "),
    )
    if stream is not None:
        out.update(stream_id=stream.stream_id, stream_name=stream.name)
    return out


def messages_moved(
    m: StoredMessage,
    moved: list[int],
    *,
    mover_id: int,
    propagate_mode: str,
    stream: FakeStream,
    orig_subject: str,
    new_stream: FakeStream | None,
) -> dict[str, Any]:
    """The `update_message` event of a move (the OpenAPI description's example without the content
    fields): `m` is the message the mover named, now where it moved to, `moved` every message that
    moved with it (`message_ids`); `subject` and `topic_links` only when the topic changed,
    `new_stream_id` only when the stream did. Without `flags`, which are each receiver's."""
    out: dict[str, Any] = {
        "type": "update_message",
        "user_id": mover_id,
        "edit_timestamp": int(time.time()),
        "message_id": m.id,
        "message_ids": sorted(moved),
        "rendering_only": False,
        "propagate_mode": propagate_mode,
        "stream_id": stream.stream_id,
        "stream_name": stream.name,
        "orig_subject": orig_subject,
    }
    if m.subject != orig_subject:
        out.update(subject=m.subject, topic_links=[])
    if new_stream is not None:
        out["new_stream_id"] = new_stream.stream_id
    return out


def error(code: str, msg: str, **extra: Any) -> dict[str, Any]:
    """examples/*_400.json, invalid_api_key_401.json, rate_limit_hit_429.json."""
    return {"result": "error", "msg": msg, "code": code, **extra}
