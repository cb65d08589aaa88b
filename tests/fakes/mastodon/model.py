"""The fake instance's state: accounts, statuses, notifications, policy, inboxes.

Pure data and rules, no HTTP. Every public method takes the one lock, so the
HTTP threads, the streaming threads and the test thread can share it.

Delivery follows Mastodon: a `direct` status reaches only the accounts it
mentions; a mention makes a `mention` notification for the mentioned account
unless that account's notification policy filters it (then it waits in a
notification request until accepted) or drops it.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from . import text as status_text

PAYLOADS = Path(__file__).with_name("payloads")
T = TypeVar("T")
NEW_ACCOUNT_AGE = timedelta(days=30)
POLICY_FIELDS = (
    "for_not_following",
    "for_not_followers",
    "for_new_accounts",
    "for_private_mentions",
    "for_limited_accounts",
)
#: Mastodon >= 4.3 defaults.
DEFAULT_POLICY = {
    "for_not_following": "accept",
    "for_not_followers": "accept",
    "for_new_accounts": "accept",
    "for_private_mentions": "filter",
    "for_limited_accounts": "filter",
}


def load_payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / f"{name}.json").read_text())["body"]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _page(items: list[T], key: Callable[[T], int], *, min_id: int | None, limit: int) -> list[T]:
    """Mastodon's Paginable: newest first; with `min_id`, the `limit` oldest after it."""
    items.sort(key=key)
    page = items[:limit] if min_id is not None else items[-limit:]
    return list(reversed(page))


class ApiError(Exception):
    """An error the HTTP layer answers with `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Account:
    id: str
    username: str
    domain: str | None  # None: local to the fake instance
    display_name: str
    created_at: datetime
    url: str
    uri: str
    bot: bool = False
    limited: bool = False
    policy: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_POLICY))
    #: The language a status of this account is tagged with when the post names none (Mastodon: the
    #: account's default posting language, else a guess from the text).
    default_language: str = "en"
    #: Kept as statuses are created: counting them on each render made long runs quadratic.
    statuses_count: int = 0

    @property
    def acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"


@dataclass
class Posted:
    """A status as the fake stored it, with who received it."""

    status: dict[str, Any]
    source_text: str
    author: str
    recipients: tuple[str, ...]
    idempotency_key: str | None = None
    #: Its versions as `GET /api/v1/statuses/:id/history` answers them, oldest first (StatusEdit
    #: entities); empty until its first edit, which records the original too, as Mastodon does.
    versions: list[dict[str, Any]] = field(default_factory=list)
    #: When the fake stored it (`time.monotonic()`): latencies are measured between two of these.
    stored_at: float = field(default_factory=time.monotonic)

    @property
    def id(self) -> str:
        return self.status["id"]


@dataclass
class Notification:
    id: int
    recipient_id: str
    type: str
    from_id: str
    status_id: str | None
    created_at: datetime
    filtered: bool = False


class Instance:
    """Accounts, statuses and notifications of one fake Mastodon instance."""

    def __init__(self, domain: str, base_url: str) -> None:
        self.domain = domain
        self.base_url = base_url
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, str] = {}  # token -> account id
        self.follows: set[tuple[str, str]] = set()  # (follower id, followed id)
        self.permissions: set[tuple[str, str]] = set()  # (recipient id, sender id): accepted requests
        self.statuses: dict[str, Posted] = {}
        self.notifications: list[Notification] = []
        self.inboxes: dict[str, list[str]] = {}  # account id -> status ids received
        self.idempotency: dict[tuple[str, str], tuple[str, float]] = {}
        self.idempotency_ttl = 3600.0
        #: Accepting a request merges its notifications at once, or (False) only at `release_merges`.
        self.merge_at_once = True
        self._unmerged: list[tuple[str, str]] = []  # (recipient id, sender id) accepted, not merged yet
        self._status_ids = itertools.count(1)
        self._account_ids = itertools.count(1)
        self._notification_ids = itertools.count(1)
        #: Called with (account id, event name, payload) for the user streams.
        self.on_event: Callable[[str, str, Any], None] = lambda *_: None

    # -- accounts --------------------------------------------------------

    def add_account(
        self,
        acct: str,
        *,
        token: str | None = None,
        display_name: str | None = None,
        bot: bool = False,
        created_at: datetime | None = None,
        limited: bool = False,
    ) -> Account:
        username, _, domain = acct.lstrip("@").partition("@")
        domain = domain.lower() or None
        if domain == self.domain:
            domain = None
        with self.lock:
            existing = self.find_account(acct)
            if existing is not None:
                raise ValueError(f"account {acct} exists")
            account_id = str(117440810000000000 + next(self._account_ids) * 4096)
            if domain is None:
                url, uri = f"{self.base_url}/@{username}", f"{self.base_url}/ap/users/{account_id}"
            else:
                url, uri = f"https://{domain}/@{username}", f"https://{domain}/users/{username}"
            account = Account(
                id=account_id,
                username=username,
                domain=domain,
                display_name=display_name if display_name is not None else username.title(),
                created_at=created_at or datetime(2024, 1, 1, tzinfo=UTC),
                url=url,
                uri=uri,
                bot=bot,
                limited=limited,
            )
            self.accounts[account_id] = account
            self.inboxes[account_id] = []
            if token:
                self.tokens[token] = account_id
            return account

    def find_account(self, handle: str) -> Account | None:
        username, _, domain = handle.lstrip("@").partition("@")
        domain = domain.lower() or None
        if domain == self.domain:
            domain = None
        with self.lock:
            for account in self.accounts.values():
                if account.username.lower() == username.lower() and account.domain == domain:
                    return account
        return None

    def account(self, handle: str) -> Account:
        found = self.find_account(handle)
        if found is None:
            raise KeyError(f"no account {handle}")
        return found

    def account_json(self, account: Account, *, credentials: bool = False) -> dict[str, Any]:
        body = load_payload("verify_credentials_account")
        if not credentials:
            for key in ("source", "role"):
                body.pop(key, None)
        body.update(
            id=account.id,
            username=account.username,
            acct=account.acct,
            display_name=account.display_name,
            bot=account.bot,
            locked=False,
            created_at=iso(account.created_at),
            url=account.url,
            uri=account.uri,
            statuses_count=account.statuses_count,
        )
        return body

    def mention_json(self, account: Account) -> dict[str, str]:
        return {"id": account.id, "username": account.username, "url": account.url, "acct": account.acct}

    # -- statuses --------------------------------------------------------

    def create_status(
        self,
        author: Account,
        source_text: str,
        *,
        visibility: str = "direct",
        content_html: str | None = None,
        mentions: list[str] | None = None,
        in_reply_to_id: str | None = None,
        spoiler_text: str = "",
        media: list[dict[str, Any]] | None = None,
        idempotency_key: str | None = None,
        max_characters: int | None = None,
        language: str | None = None,
    ) -> tuple[Posted, bool]:
        """Create a status (or return the one an Idempotency-Key names). (posted, created)."""
        if visibility not in ("public", "unlisted", "private", "direct"):
            raise ApiError(422, f"Validation failed: Visibility is not included in the list ({visibility})")
        with self.lock:
            if idempotency_key:
                known = self.idempotency.get((author.id, idempotency_key))
                if known and known[1] > time.time():
                    return self.statuses[known[0]], False
            if not source_text.strip() and not media:
                raise ApiError(422, "Validation failed: Text can't be blank")
            if max_characters is not None and status_text.countable_length(source_text, spoiler_text) > max_characters:
                raise ApiError(422, f"Validation failed: Text character limit of {max_characters} exceeded")
            parent = None
            if in_reply_to_id is not None:
                parent = self.statuses.get(in_reply_to_id)
                if parent is None:
                    raise ApiError(404, "Record not found")
            handles = mentions if mentions is not None else status_text.find_mentions(source_text)
            mentioned = [a for a in (self.find_account(h) for h in handles) if a is not None]
            if content_html is None:

                def resolve(handle: str) -> tuple[str, str] | None:
                    account = self.find_account(handle)
                    return (account.url, account.username) if account in mentioned else None

                content_html = status_text.render_html(source_text, resolve)
            status_id = str(117440841625302455 + next(self._status_ids) * 65536)
            now = datetime.now(UTC)
            status = load_payload("status_post_direct_with_mention")
            status.update(
                id=status_id,
                created_at=iso(now),
                in_reply_to_id=parent.id if parent else None,
                in_reply_to_account_id=parent.status["account"]["id"] if parent else None,
                spoiler_text=spoiler_text,
                sensitive=bool(spoiler_text),
                visibility=visibility,
                language=language or author.default_language,
                uri=f"{author.uri}/statuses/{status_id}",
                url=f"{author.url}/{status_id}",
                content=content_html,
                account=self.account_json(author),
                mentions=[self.mention_json(a) for a in mentioned],
                media_attachments=[self._media_json(m, i) for i, m in enumerate(media or [])],
            )
            recipients = {a.id for a in mentioned if a.id != author.id}
            if visibility != "direct":
                recipients |= {f for f, target in self.follows if target == author.id}
            posted = Posted(
                status=status,
                source_text=source_text,
                author=author.acct,
                recipients=tuple(self.accounts[r].acct for r in sorted(recipients)),
                idempotency_key=idempotency_key,
            )
            self.statuses[status_id] = posted
            author.statuses_count += 1
            if idempotency_key:
                self.idempotency[(author.id, idempotency_key)] = (status_id, time.time() + self.idempotency_ttl)
            for recipient_id in sorted(recipients):
                self.inboxes[recipient_id].append(status_id)
            self.on_event(author.id, "update", status)
            for account in mentioned:
                if account.id != author.id:
                    self._notify(account, "mention", author, posted)
            return posted, True

    def edit_status(
        self,
        author: Account,
        status_id: str,
        source_text: str,
        *,
        spoiler_text: str | None = None,
        sensitive: bool | None = None,
        language: str | None = None,
        max_characters: int | None = None,
    ) -> Posted:
        """Mastodon's UpdateStatusService: only the author edits (anyone else: 404); a change sets
        `edited_at`, records the version, notifies accounts newly mentioned, and pushes `status.update`
        to the home feeds the status is in (`FanOutOnWriteService` with `update: true`): the author's,
        and, for a direct status, those of the mentioned accounts that follow the author, for any other
        its followers'. An edit that changes nothing is answered with the status as it was, unedited."""
        with self.lock:
            posted = self.statuses.get(status_id)
            if posted is None or posted.status["account"]["id"] != author.id:
                raise ApiError(404, "Record not found")
            status = posted.status
            if not source_text.strip() and not status["media_attachments"]:
                raise ApiError(422, "Validation failed: Text can't be blank")
            spoiler = status["spoiler_text"] if spoiler_text is None else spoiler_text
            if max_characters is not None and status_text.countable_length(source_text, spoiler) > max_characters:
                raise ApiError(422, f"Validation failed: Text character limit of {max_characters} exceeded")
            # Mentions are added by an edit, never taken away (ProcessMentionsService keeps them).
            known = {m["id"] for m in status["mentions"]}
            added = [
                a
                for a in (self.find_account(h) for h in status_text.find_mentions(source_text))
                if a is not None and a.id not in known
            ]
            mentioned = [self.accounts[i] for i in known] + added

            def resolve(handle: str) -> tuple[str, str] | None:
                account = self.find_account(handle)
                return (account.url, account.username) if account in mentioned else None

            changes = {
                "content": status_text.render_html(source_text, resolve),
                "spoiler_text": spoiler,
                "sensitive": bool(spoiler) if sensitive is None else sensitive,
                "language": language or status["language"],
            }
            if all(status[key] == value for key, value in changes.items()) and not added:
                return posted  # NoChangesSubmittedError, swallowed by the service
            if not posted.versions:
                posted.versions.append(self._version(status, status["created_at"]))
            status.update(changes, edited_at=iso(datetime.now(UTC)))
            status["mentions"] = [self.mention_json(a) for a in mentioned]
            posted.source_text = source_text
            posted.versions.append(self._version(status, status["edited_at"]))
            if added:
                new = tuple(sorted({*posted.recipients, *(a.acct for a in added if a.id != author.id)}))
                posted.recipients = new
            for account in added:
                if account.id != author.id:
                    self.inboxes[account.id].append(status_id)
                    self._notify(account, "mention", author, posted)
            followers = {f for f, target in self.follows if target == author.id}
            if status["visibility"] == "direct":
                followers &= {a.id for a in mentioned}
            for account_id in [author.id, *sorted(followers - {author.id})]:
                self.on_event(account_id, "status.update", copy.deepcopy(status))
            return posted

    @staticmethod
    def _version(status: dict[str, Any], at: str) -> dict[str, Any]:
        """One StatusEdit entity (StatusEditSerializer): the words, the media, when and by whom."""
        return copy.deepcopy(
            {
                "content": status["content"],
                "spoiler_text": status["spoiler_text"],
                "sensitive": status["sensitive"],
                "created_at": at,
                "account": status["account"],
                "media_attachments": status["media_attachments"],
                "emojis": status.get("emojis", []),
            }
        )

    def history(self, posted: Posted) -> list[dict[str, Any]]:
        """`GET /api/v1/statuses/:id/history`: the versions, oldest first; the status alone if never edited."""
        with self.lock:
            return copy.deepcopy(posted.versions) or [self._version(posted.status, posted.status["created_at"])]

    def _media_json(self, media: dict[str, Any] | str, index: int) -> dict[str, Any]:
        if isinstance(media, str):
            media = {"url": media}
        if "id" in media:  # uploaded through the API: the entity as it was answered
            return dict(media)
        return {
            "id": str(117440900000000000 + index),
            "type": media.get("type", "image"),
            "url": media.get("url"),
            "preview_url": media.get("preview_url", media.get("url")),
            "remote_url": media.get("remote_url"),
            "description": media.get("description"),
            "meta": {},
            "blurhash": None,
        }

    # -- notifications and the policy --------------------------------------

    def _notify(self, recipient: Account, type_: str, sender: Account, posted: Posted) -> None:
        verdict = self._policy_verdict(recipient, sender, posted)
        if verdict == "drop":
            return
        notification = Notification(
            id=next(self._notification_ids),
            recipient_id=recipient.id,
            type=type_,
            from_id=sender.id,
            status_id=posted.id,
            created_at=datetime.now(UTC),
            filtered=verdict == "filter",
        )
        self.notifications.append(notification)
        if not notification.filtered:
            self.on_event(recipient.id, "notification", self.notification_json(notification))

    def _policy_verdict(self, recipient: Account, sender: Account, posted: Posted) -> str:
        """Mastodon's NotifyService Drop/FilterCondition, for mentions."""
        if (recipient.id, sender.id) in self.permissions:
            return "accept"
        policy = recipient.policy
        not_following = (recipient.id, sender.id) not in self.follows
        not_follower = (sender.id, recipient.id) not in self.follows
        new_account = sender.created_at > datetime.now(UTC) - NEW_ACCOUNT_AGE
        private_not_response = posted.status["visibility"] == "direct" and not self._responds_to(
            recipient, sender, posted
        )
        checks = {
            "for_limited_accounts": sender.limited and not_following,
            "for_not_following": not_following,
            "for_not_followers": not_follower,
            "for_new_accounts": new_account and not_following,
            "for_private_mentions": not_following and private_not_response,
        }
        verdicts = [policy[name] for name, applies in checks.items() if applies]
        if "drop" in verdicts:
            return "drop"
        return "filter" if "filter" in verdicts else "accept"

    def _responds_to(self, recipient: Account, sender: Account, posted: Posted) -> bool:
        parent = self.statuses.get(posted.status["in_reply_to_id"] or "")
        return bool(
            parent
            and parent.status["account"]["id"] == recipient.id
            and any(m["id"] == sender.id for m in parent.status["mentions"])
        )

    def notification_json(self, notification: Notification) -> dict[str, Any]:
        sender = self.accounts[notification.from_id]
        body: dict[str, Any] = {
            "id": str(notification.id),
            "type": notification.type,
            "created_at": iso(notification.created_at),
            "group_key": f"ungrouped-{notification.id}",
            "account": self.account_json(sender),
        }
        if notification.status_id:
            body["status"] = copy.deepcopy(self.statuses[notification.status_id].status)
        return body

    def update_policy(self, account: Account, changes: dict[str, str]) -> None:
        with self.lock:
            for name, value in changes.items():
                if name not in POLICY_FIELDS and name != "for_bots":
                    continue
                if value not in ("accept", "filter", "drop"):
                    raise ApiError(422, f"Validation failed: {name} is not included in the list")
                account.policy[name] = value

    def policy_json(self, account: Account) -> dict[str, Any]:
        requests = self.requests_for(account)
        return {
            **{name: account.policy[name] for name in POLICY_FIELDS},
            "for_bots": account.policy.get("for_bots", "accept"),
            "summary": {
                "pending_requests_count": len(requests),
                "pending_notifications_count": sum(r["count"] for r in requests),
            },
        }

    def requests_for(self, account: Account) -> list[dict[str, Any]]:
        """Pending notification requests: one per sender with filtered notifications."""
        grouped: dict[str, list[Notification]] = {}
        for n in self.notifications:
            if n.recipient_id == account.id and n.filtered:
                grouped.setdefault(n.from_id, []).append(n)
        out = []
        for sender_id, items in grouped.items():
            last = items[-1]
            out.append(
                {
                    "id": str(int(sender_id) + 7),  # stable per (recipient, sender) in this fake
                    "sender_id": sender_id,
                    "count": len(items),
                    "last": last,
                }
            )
        return sorted(out, key=lambda r: -r["last"].id)

    def request_json(self, request: dict[str, Any]) -> dict[str, Any]:
        last: Notification = request["last"]
        return {
            "id": request["id"],
            "created_at": iso(last.created_at),
            "updated_at": iso(last.created_at),
            "notifications_count": str(request["count"]),
            "account": self.account_json(self.accounts[request["sender_id"]]),
            "last_status": copy.deepcopy(self.statuses[last.status_id].status) if last.status_id else None,
        }

    def resolve_request(self, account: Account, request_id: str, accept: bool) -> None:
        with self.lock:
            for request in self.requests_for(account):
                if request["id"] == request_id:
                    sender_id = request["sender_id"]
                    break
            else:
                raise ApiError(404, "Record not found")
            if accept:
                self.permissions.add((account.id, sender_id))
                if self.merge_at_once:
                    self._merge(account.id, sender_id)
                else:  # Mastodon merges in a background job (UnfilterNotificationsWorker)
                    self._unmerged.append((account.id, sender_id))
            else:
                self.notifications = [
                    n
                    for n in self.notifications
                    if not (n.recipient_id == account.id and n.from_id == sender_id and n.filtered)
                ]

    def _merge(self, recipient_id: str, sender_id: str) -> None:
        for n in self.notifications:  # they keep their (older) ids
            if n.recipient_id == recipient_id and n.from_id == sender_id:
                n.filtered = False

    def merged(self, account: Account) -> bool:
        with self.lock:
            return not any(recipient == account.id for recipient, _ in self._unmerged)

    def release_merges(self) -> None:
        with self.lock:
            for recipient_id, sender_id in self._unmerged:
                self._merge(recipient_id, sender_id)
            self._unmerged.clear()

    def expire_idempotency_keys(self) -> None:
        """What Mastodon does an hour after a key's first use: a repeat now creates a new status."""
        with self.lock:
            self.idempotency.clear()

    def statuses_of(
        self,
        author: Account,
        visible: Callable[[Posted], bool],
        *,
        max_id: int | None = None,
        since_id: int | None = None,
        min_id: int | None = None,
        limit: int = 20,
        exclude_replies: bool = False,
    ) -> list[Posted]:
        """`author`'s statuses that `visible` lets through, newest first, paged like notifications."""
        with self.lock:
            items = [
                p
                for p in self.statuses.values()
                if p.status["account"]["id"] == author.id
                and visible(p)
                and not (exclude_replies and p.status["in_reply_to_id"])
                and (max_id is None or int(p.id) < max_id)
                and (since_id is None or int(p.id) > since_id)
                and (min_id is None or int(p.id) > min_id)
            ]
            return _page(items, lambda p: int(p.id), min_id=min_id, limit=limit)

    def list_notifications(
        self,
        account: Account,
        *,
        max_id: int | None = None,
        since_id: int | None = None,
        min_id: int | None = None,
        limit: int = 40,
        types: list[str] | None = None,
        exclude_types: list[str] | None = None,
        account_id: str | None = None,
        include_filtered: bool = False,
    ) -> list[Notification]:
        """`account`'s notifications, newest first, paged as Mastodon pages (`_page`)."""
        with self.lock:
            items = [
                n
                for n in self.notifications
                if n.recipient_id == account.id
                and (include_filtered or not n.filtered)
                and (not types or n.type in types)
                and (not exclude_types or n.type not in exclude_types)
                and (account_id is None or n.from_id == account_id)
                and (max_id is None or n.id < max_id)
                and (since_id is None or n.id > since_id)
                and (min_id is None or n.id > min_id)
            ]
            return _page(items, lambda n: n.id, min_id=min_id, limit=limit)

    # -- records for tests -------------------------------------------------

    def inbox(self, handle: str) -> list[Posted]:
        with self.lock:
            return [self.statuses[s] for s in self.inboxes[self.account(handle).id]]

    def posted_by(self, handle: str) -> list[Posted]:
        author = self.account(handle)
        with self.lock:
            return [p for p in self.statuses.values() if p.status["account"]["id"] == author.id]
