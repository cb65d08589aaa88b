"""What the channel checks and learns at start: its own account and the support stream.

* `check_account`: the API key works; the bot's user id, email and name, and
  the server's feature level.
* `check_support_stream`: the support stream exists, the bot is subscribed to
  it, and it is private (invite-only, not web-public): case topics carry
  customers' words, so a public stream stops start-up.
* `find_user_id`, `find_user`: the user id of the account an email names, where Zulip
  shows the bot that address (engineers' emails in DESKBOT_ENGINEERS, and
  `deskbot customers add --zulip-email`).
"""

from __future__ import annotations

import time
from urllib.parse import quote

import zulip

from adapters.channel import PermanentChannelError

from .state import ServerState
from .transport import Credentials, Transport, ZulipApiError


def check_account(transport: Transport, client: zulip.Client, credentials: Credentials, state: ServerState) -> None:
    """Record who the bot is in `state`; PermanentChannelError if Zulip refuses the key."""
    try:
        me = transport.call(client, "GET", "users/me")
    except ZulipApiError as exc:
        if exc.code in ("INVALID_API_KEY", "UNAUTHORIZED", "USER_DEACTIVATED"):
            raise PermanentChannelError(
                f"Zulip rejected the API key for {credentials.email} at {credentials.site} ({exc.code})"
            ) from None
        raise PermanentChannelError(f"Zulip refused GET /users/me: {exc}") from None
    state.user_id = int(me["user_id"])
    state.email = str(me.get("email", credentials.email))
    state.full_name = str(me.get("full_name", ""))
    state.feature_level = int(getattr(client, "feature_level", 0) or 0)


def check_support_stream(transport: Transport, client: zulip.Client, state: ServerState) -> None:
    """Record the support stream in `state`; PermanentChannelError if it is missing, unsubscribed or public."""
    name = state.stream_name
    try:
        found = transport.call(client, "GET", "get_stream_id", {"stream": name})
    except ZulipApiError:
        raise PermanentChannelError(
            f"support stream '{name}' does not exist or the bot is not subscribed to it"
        ) from None
    state.stream_id = int(found["stream_id"])
    try:
        subs = transport.call(client, "GET", "users/me/subscriptions")
    except ZulipApiError as exc:
        raise PermanentChannelError(f"Zulip refused GET /users/me/subscriptions: {exc}") from None
    mine = next((s for s in subs.get("subscriptions", []) if s.get("stream_id") == state.stream_id), None)
    if mine is None:
        raise PermanentChannelError(f"the bot is not subscribed to support stream '{name}'")
    state.subscribed = True
    state.invite_only = bool(mine.get("invite_only", False))
    state.is_web_public = bool(mine.get("is_web_public", False))
    state.privacy_checked_at = time.monotonic()
    problem = state.privacy_problem()
    if problem:
        raise PermanentChannelError(f"refusing to start: {problem}; it must be invite-only and not web-public")


def find_user_id(transport: Transport, client: zulip.Client, email: str) -> int | None:
    """The user id of the account whose address is `email`, or None when Zulip shows the bot none
    (`find_user`)."""
    found = find_user(transport, client, email)
    return None if found is None else found[0]


def find_user(transport: Transport, client: zulip.Client, email: str) -> tuple[int, str] | None:
    """The user id of the account whose address is `email` and the address its messages show (its
    API email), or None when Zulip shows the bot none.

    `GET /users/{email}` finds an account by its API email, which is the real address only where
    the account lets everyone see it (else a stand-in `user123@…`), and by the real address where
    the bot may see it (administrators): then the two differ. ZulipUnavailable propagates: try
    again later.
    """
    try:
        found = transport.call(client, "GET", f"users/{quote(email.strip(), safe='@')}")
    except ZulipApiError:
        return None
    user = found.get("user") or {}
    if "user_id" not in user:
        return None
    return int(user["user_id"]), str(user.get("email") or email)
