"""What the channel learns and sets up at start: the instance's limits, the notification policy.

* `read_instance`: `max_characters` from the v2 instance endpoint, else v1,
  else 500; the instance's own domain (appended to local accounts); the
  streaming API's base URL; what it takes as media (`media.MediaLimits`).
* `open_to_strangers`: since Mastodon 4.3 the default notification policy
  filters private mentions from accounts the bot does not follow, so a new
  customer's first DM would sit in "notification requests" and never reach
  the bot. This reads the policy, sets to "accept" every field that filters
  (or drops) strangers, logs what it changed, and accepts requests already
  pending. Their DMs were written before this start: on a restart `receive`
  fetches them by sender (they are older than the cursor); on the very first
  start it leaves them unanswered, like the rest of the account's history.
* `check_reads_own_statuses`: a retried reply looks up the bot's own
  statuses first, so a token that cannot read them stops start-up.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from mastodon.errors import (
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
)

from adapters.channel import PermanentChannelError, TransientChannelError

from .inbound import parse_time
from .media import MediaLimits
from .pacing import API
from .transport import Transport, describe

log = logging.getLogger("deskbot.adapters.mastodon")

#: Policy fields that, set to "filter" or "drop", keep strangers' DMs from the bot.
#: (`for_limited_accounts` is moderation, left as the admins set it.)
STRANGER_FILTERS = ("for_private_mentions", "for_not_following", "for_not_followers", "for_new_accounts")
DEFAULT_MAX_CHARACTERS = 500


@dataclass(frozen=True)
class InstanceFacts:
    max_characters: int
    domain: str
    streaming_url: str
    #: What the instance takes as media (`configuration.media_attachments`, `statuses.max_media_attachments`).
    media: MediaLimits = field(default_factory=MediaLimits)
    #: The server's version ("4.7.3"), None where the instance entity does not say.
    version: str | None = None


def dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def read_instance(transport: Transport, base_url: str, stop: threading.Event) -> InstanceFacts:
    api = transport.recv
    v2: dict[str, Any] = {}
    v1: dict[str, Any] = {}
    try:
        v2 = dict(transport.paced(API, api.instance_v2, stop))
    except MastodonError as error:
        log.info("mastodon: no v2 instance information (%s), trying v1", describe(error))
    max_characters = dig(v2, "configuration", "statuses", "max_characters")
    domain = dig(v2, "domain")
    streaming = dig(v2, "configuration", "urls", "streaming")
    if max_characters is None or not domain or dig(v2, "configuration", "media_attachments") is None:
        try:
            v1 = dict(transport.paced(API, api.instance_v1, stop))
        except MastodonError as error:
            log.info("mastodon: no v1 instance information either (%s)", describe(error))
        max_characters = max_characters or dig(v1, "configuration", "statuses", "max_characters")
        domain = domain or dig(v1, "uri")
        streaming = streaming or dig(v1, "urls", "streaming_api")
    stream_base = base_url
    if streaming:  # "wss://host" (Mastodon may stream from another host)
        parts = urlsplit(str(streaming))
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        if scheme in ("http", "https") and parts.netloc:
            stream_base = f"{scheme}://{parts.netloc}"
    media_config = (
        dig(v2, "configuration") if dig(v2, "configuration", "media_attachments") else dig(v1, "configuration")
    )
    return InstanceFacts(
        media=MediaLimits.of(media_config),
        max_characters=int(max_characters or DEFAULT_MAX_CHARACTERS),
        domain=str(domain or urlsplit(base_url).netloc).lower(),
        streaming_url=stream_base + "/api/v1/streaming/user/notification",
        version=str(dig(v2, "version") or dig(v1, "version") or "") or None,
    )


def open_to_strangers(transport: Transport, base_url: str, accept: bool, stop: threading.Event) -> dict[str, datetime]:
    """Make DMs from strangers arrive. Returns the requests accepted now: for each sender's
    account id, when their request last changed (no DM of theirs it holds is newer)."""
    api = transport.recv
    try:
        policy = dict(transport.paced(API, api.notifications_policy, stop))
    except MastodonNotFoundError:
        log.info("mastodon: the server has no notification policy (Mastodon < 4.3); nothing to change")
        return {}
    except MastodonError as error:
        raise _start_error(base_url, "read the notification policy", error) from None
    changes = {f: "accept" for f in STRANGER_FILTERS if policy.get(f) not in (None, "accept")}
    if not accept:
        if changes:
            log.warning(
                "mastodon: the notification policy filters DMs from strangers (%s); new customers' DMs will not arrive",
                ", ".join(f"{f}={policy[f]}" for f in changes),
            )
        return {}
    if changes:
        try:
            transport.paced(API, partial(api.update_notifications_policy, **changes), stop)
        except MastodonError as error:
            raise _start_error(base_url, "change the notification policy", error) from None
        log.warning(
            "mastodon: notification policy changed so that DMs from strangers arrive: %s",
            ", ".join(f"{f} {policy[f]} -> accept" for f in changes),
        )
    if not dig(policy, "summary", "pending_requests_count"):
        return {}
    accepted: dict[str, datetime] = {}
    try:
        page = transport.paced(API, partial(api.notification_requests, limit=40), stop)
        while page:
            for request in page:
                transport.paced(API, partial(api.accept_notification_request, request["id"]), stop)
                accepted[str(request["account"]["id"])] = parse_time(request.get("updated_at"))
            page = transport.paced(API, partial(api.fetch_next, page), stop)
    except MastodonError as error:
        raise _start_error(base_url, "accept pending notification requests", error) from None
    if accepted:
        log.warning("mastodon: accepted %d pending notification request(s) the policy had filtered", len(accepted))
    return accepted


def check_reads_own_statuses(transport: Transport, base_url: str, own_id: str, stop: threading.Event) -> None:
    """Stop start-up now if the token cannot read the bot's own statuses.

    A reply sent again (`attempt > 1`) first looks up what the earlier attempt
    posted (`reconcile.py`). Without `read:statuses` every such reply would fail
    for good, one by one and long after start; better one clear line at start.
    """
    try:
        transport.paced(API, partial(transport.recv.account_statuses, own_id, limit=1), stop)
    except MastodonError as error:
        raise _start_error(base_url, "read the bot's own statuses", error, "read:statuses") from None


def _start_error(
    base_url: str, action: str, error: MastodonError, scopes: str = "read:notifications and write:notifications"
) -> Exception:
    if isinstance(error, (MastodonNetworkError, MastodonServerError, MastodonRatelimitError)):
        return TransientChannelError(f"cannot {action} on Mastodon at {base_url}: {describe(error)}")
    return PermanentChannelError(
        f"cannot {action} on Mastodon at {base_url} ({describe(error)}): the token needs {scopes}"
    )
