"""The fake realm: users, user groups, streams, messages, event queues and narrows.

All state sits behind one condition variable, which the long-polls of
`GET /events` wait on. The rules follow the real server as NOTES.md records
them (message normalisation and truncation, topic truncation, queue expiry,
narrow operators, anchors, hidden email addresses, user groups).

Email addresses (OpenAPI `email_address_visibility`, NOTES "Hidden email
addresses"): each user's setting decides who sees their real address. Where
it is not "everyone", every API field named `email` or `sender_email` carries
the stand-in `user{id}@{realm host}` (for every viewer, administrators too),
and `delivery_email` is the real address for those the setting lets see it
(members, moderators, administrators; nobody) and null for the others. Bots'
addresses are always real. The API finds an account by its API email, or by
the real address where the caller may see it. `FakeUser.email` is the real
address: tests name people by it.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import payloads

MAX_TOPIC_LENGTH = 60
#: email_address_visibility (OpenAPI, `PATCH /settings`): who may see a user's real address.
EVERYONE, MEMBERS, ADMINS, NOBODY, MODERATORS = 1, 2, 3, 4, 5
#: What GET /messages reports as the anchor of `anchor=newest` (zerver/lib/narrow.py).
LARGER_THAN_MAX_MESSAGE_ID = 10000000000000000
TRUNCATION_SUFFIX = "\n[message truncated]"


class ApiError(Exception):
    """An error answer: HTTP status and the JSON body."""

    def __init__(self, status: int, code: str, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.status = status
        self.body = payloads.error(code, msg, **extra)


def bad_request(msg: str, **extra: Any) -> ApiError:
    return ApiError(400, "BAD_REQUEST", msg, **extra)


@dataclass
class FakeUser:
    user_id: int
    email: str
    full_name: str
    api_key: str
    is_bot: bool = False
    role: int = 400
    is_active: bool = True
    bot_owner_id: int | None = None
    date_joined: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    #: Who may see `email`, the real address (EVERYONE … MODERATORS); bots' addresses are always public.
    email_address_visibility: int = EVERYONE


@dataclass
class FakeGroup:
    """A user group (OpenAPI `UserGroup`)."""

    id: int
    name: str
    description: str = ""
    members: set[int] = field(default_factory=set)
    direct_subgroup_ids: set[int] = field(default_factory=set)
    is_system_group: bool = False


@dataclass
class FakeStream:
    stream_id: int
    name: str
    invite_only: bool = True
    is_web_public: bool = False
    history_public_to_subscribers: bool = False
    description: str = ""
    date_created: int = field(default_factory=lambda: int(time.time()))
    subscribers: set[int] = field(default_factory=set)

    @property
    def private(self) -> bool:
        return self.invite_only and not self.is_web_public


@dataclass
class StoredMessage:
    """A message as the fake stores it (content after the server's normalisation)."""

    id: int
    sender_id: int
    type: str  # "stream" or "private", as the server reports it
    content: str
    timestamp: int
    recipient_id: int
    client: str = "website"
    stream_id: int | None = None
    subject: str = ""
    participants: frozenset[int] = frozenset()
    #: Set when the server cut the content to max_message_length.
    truncated: bool = False
    original_length: int = 0
    original_topic: str | None = None
    #: The uploads this message shares: those it links that its sender could read when it was sent.
    shares: frozenset[str] = frozenset()
    #: When its sender last edited its content (`last_edit_timestamp`), if ever.
    last_edit_timestamp: int | None = None
    #: time.monotonic() when stored: for latency measurements on the server's side.
    stored_at: float = field(default_factory=time.monotonic)


@dataclass
class Truncation:
    message_id: int
    sender_email: str
    what: str  # "content" or "topic"
    original_length: int


@dataclass
class EventQueue:
    queue_id: str
    user_id: int
    event_types: list[str] | None
    narrow: list[tuple[str, Any, bool]]
    apply_markdown: bool
    all_public_streams: bool
    idle_timeout: float
    events: list[dict[str, Any]] = field(default_factory=list)
    next_event_id: int = 0
    last_touched: float = field(default_factory=time.monotonic)
    pollers: int = 0
    dead: bool = False

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types

    def push(self, event: dict[str, Any]) -> dict[str, Any]:
        event = {**event, "id": self.next_event_id}
        self.next_event_id += 1
        self.events.append(event)
        return event

    def acknowledge(self, last_event_id: int) -> None:
        self.events = [e for e in self.events if e["id"] > last_event_id]


def parse_narrow(raw: Any) -> list[tuple[str, Any, bool]]:
    """Both narrow syntaxes (`[["is","dm"]]` and `[{"operator":…}]`) → (op, operand, negated)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request("Invalid narrow")
    out = []
    for term in raw:
        if isinstance(term, dict) and "operator" in term and "operand" in term:
            out.append((str(term["operator"]).lower(), term["operand"], bool(term.get("negated", False))))
        elif isinstance(term, list) and len(term) == 2:
            op, operand = term
            negated = isinstance(op, str) and op.startswith("-")
            out.append((str(op).lstrip("-").lower(), operand, negated))
        else:
            raise bad_request("Invalid narrow")
    return out


class Realm:
    """The whole fake organisation."""

    def __init__(
        self,
        *,
        max_message_length: int = 10000,
        queue_idle_timeout: float = 600.0,
        heartbeat: float = 50.0,
        host: str = "zulip.example.net",
    ) -> None:
        self.cond = threading.Condition(threading.RLock())
        #: The realm's host: stand-in addresses are `user{id}@{host}`.
        self.host = host
        self.max_message_length = max_message_length
        self.queue_idle_timeout = queue_idle_timeout
        self.heartbeat = heartbeat
        self.users: dict[int, FakeUser] = {}
        self.groups: dict[int, FakeGroup] = {}
        self.streams: dict[int, FakeStream] = {}
        self.messages: list[StoredMessage] = []
        self.queues: dict[str, EventQueue] = {}
        self.truncations: list[Truncation] = []
        self.expired_queues = 0
        self.closing = False
        #: Called (under the realm's lock) with each message as it is stored: for timing.
        self.on_message: Callable[[StoredMessage], None] | None = None
        self._next_user_id = 8
        self._next_group_id = 1
        self._next_stream_id = 1
        self._next_message_id = 100
        self._dm_recipients: dict[frozenset[int], int] = {}
        #: Uploaded files by their path (`/user_uploads/…`): (uploader's user id, bytes).
        self.uploads: dict[str, tuple[int, bytes]] = {}
        self.max_file_upload_size_mib = 25
        self._next_upload = 1

    # -- files -------------------------------------------------------------------
    def upload(self, uploader: FakeUser, filename: str, data: bytes) -> str:
        """Store a file as `POST /user_uploads` does; its path (`/user_uploads/{realm}/{xx}/{random}/{name}`)."""
        if len(data) > self.max_file_upload_size_mib * 1024 * 1024:
            raise bad_request(f"File is larger than the maximum upload size ({self.max_file_upload_size_mib} MiB)")
        safe = re.sub(r"[^\w.-]", "_", filename.rsplit("/", 1)[-1]).strip("._") or "uploaded-file"
        with self.cond:
            number, self._next_upload = self._next_upload, self._next_upload + 1
            path = f"/user_uploads/2/{number % 256:02x}/upload{number:08d}/{safe}"
            self.uploads[path] = (uploader.user_id, data)
        return path

    def can_read_upload(self, viewer: FakeUser, path: str) -> bool:
        """Zulip's rule: the uploader, and whoever can see a message that shares the file (one whose
        sender could read it when they linked it: linking a file one cannot see shares nothing)."""
        found = self.uploads.get(path)
        if found is None:
            return False
        if found[0] == viewer.user_id:
            return True
        with self.cond:
            return any(path in m.shares and self.can_see(viewer, m) for m in self.messages)

    def add_user(
        self,
        email: str,
        full_name: str,
        api_key: str,
        *,
        is_bot: bool = False,
        role: int = 400,
        email_address_visibility: int = EVERYONE,
    ) -> FakeUser:
        with self.cond:
            if self.user_by_email(email) is not None:
                raise ValueError(f"user {email} exists")
            u = FakeUser(
                self._next_user_id,
                email,
                full_name,
                api_key,
                is_bot=is_bot,
                role=role,
                email_address_visibility=email_address_visibility,
            )
            if is_bot:
                u.bot_owner_id = next((x.user_id for x in self.users.values() if not x.is_bot), None)
            self._next_user_id += 1
            self.users[u.user_id] = u
            return u

    def user_by_email(self, email: str) -> FakeUser | None:
        """By the real address: for tests and the fake's own bookkeeping, not for API callers."""
        email = email.strip().lower()
        return next((u for u in self.users.values() if u.email.lower() == email), None)

    def require_user(self, email_or_id: str | int) -> FakeUser:
        if isinstance(email_or_id, int):
            u = self.users.get(email_or_id)
        else:
            u = self.user_by_email(email_or_id)
        if u is None:
            raise bad_request(f"Invalid email '{email_or_id}'")
        return u

    def api_email(self, u: FakeUser) -> str:
        """The address the API shows for `u`: the real one only where everyone may see it."""
        if u.is_bot or u.email_address_visibility == EVERYONE:
            return u.email
        return f"user{u.user_id}@{self.host}"

    def sees_email(self, viewer: FakeUser | None, u: FakeUser) -> bool:
        """May `viewer` see the real address of `u` (as `delivery_email`)?"""
        if u.is_bot or (viewer is not None and viewer.user_id == u.user_id):
            return True
        if viewer is None:
            return u.email_address_visibility == EVERYONE
        return {
            EVERYONE: True,
            MEMBERS: viewer.role != 600,
            ADMINS: viewer.role <= 200,
            NOBODY: False,
            MODERATORS: viewer.role <= 300,
        }.get(u.email_address_visibility, False)

    def user_for(self, viewer: FakeUser, email: str) -> FakeUser | None:
        """The account an API caller names by `email`: its API email, or its real address where `viewer` may see it."""
        key = email.strip().lower()
        for u in self.users.values():
            if self.api_email(u).lower() == key or (u.email.lower() == key and self.sees_email(viewer, u)):
                return u
        return None

    # -- user groups -------------------------------------------------------------
    def add_group(
        self, name: str, members: Iterable[int] = (), subgroups: Iterable[int] = (), *, description: str = ""
    ) -> FakeGroup:
        """A new user group, with the `user_group` `add` event every queue that wants it receives."""
        with self.cond:
            g = FakeGroup(self._next_group_id, name, description, set(members), set(subgroups))
            self._next_group_id += 1
            self.groups[g.id] = g
            self._emit(lambda q: q.wants("user_group"), {"type": "user_group", "op": "add", "group": payloads.group(g)})
            self.cond.notify_all()
            return g

    def group_by_name(self, name: str) -> FakeGroup:
        found = next((g for g in self.groups.values() if g.name.lower() == name.strip().lower()), None)
        if found is None:
            raise KeyError(name)
        return found

    def change_group(self, group: str, op: str, ids: Iterable[int] = (), **data: str) -> None:
        """`op` on the group named `group`: add_members / remove_members (user ids), add_subgroups /
        remove_subgroups (group ids), update (`data`: name, description) or remove; with the event the
        server sends."""
        with self.cond:
            g = self.group_by_name(group)
            ids = sorted(set(ids))
            event: dict[str, Any] = {"type": "user_group", "op": op, "group_id": g.id}
            if op == "add_members":
                g.members.update(ids)
                event["user_ids"] = ids
            elif op == "remove_members":
                g.members.difference_update(ids)
                event["user_ids"] = ids
            elif op == "add_subgroups":
                g.direct_subgroup_ids.update(ids)
                event["direct_subgroup_ids"] = ids
            elif op == "remove_subgroups":
                g.direct_subgroup_ids.difference_update(ids)
                event["direct_subgroup_ids"] = ids
            elif op == "update":
                g.name = data.get("name", g.name)
                g.description = data.get("description", g.description)
                event["data"] = dict(data)
            elif op == "remove":
                del self.groups[g.id]
            else:
                raise ValueError(f"unknown user_group op {op!r}")
            self._emit(lambda q: q.wants("user_group"), event)
            self.cond.notify_all()

    def add_stream(
        self,
        name: str,
        *,
        invite_only: bool = True,
        is_web_public: bool = False,
        subscribers: Iterable[str] = (),
        description: str = "",
    ) -> FakeStream:
        with self.cond:
            s = FakeStream(
                self._next_stream_id,
                name,
                invite_only=invite_only,
                is_web_public=is_web_public,
                history_public_to_subscribers=not invite_only,
                description=description,
            )
            self._next_stream_id += 1
            s.subscribers = {self.require_user(e).user_id for e in subscribers}
            self.streams[s.stream_id] = s
            return s

    def stream_by_name(self, name: str) -> FakeStream | None:
        key = name.strip().lower()
        return next((s for s in self.streams.values() if s.name.lower() == key), None)

    def can_access_stream(self, u: FakeUser, s: FakeStream) -> bool:
        return u.user_id in s.subscribers or not s.invite_only

    def first_message_id(self, s: FakeStream) -> int | None:
        return next((m.id for m in self.messages if m.stream_id == s.stream_id), None)

    def update_stream(self, name: str, **changes: bool) -> FakeStream:
        """Change privacy flags and emit the `stream` update events the server sends."""
        with self.cond:
            s = self.stream_by_name(name)
            if s is None:
                raise KeyError(name)
            props = ("invite_only", "is_web_public", "history_public_to_subscribers")
            changed = [p for p in props if p in changes and getattr(s, p) != changes[p]]
            for prop in changed:
                setattr(s, prop, changes[prop])
            for prop in changed:
                event = {
                    "type": "stream",
                    "op": "update",
                    "stream_id": s.stream_id,
                    "name": s.name,
                    "property": prop,
                    "value": changes[prop],
                }
                if prop == "invite_only":
                    event["history_public_to_subscribers"] = s.history_public_to_subscribers
                    event["is_web_public"] = s.is_web_public
                self._emit(lambda q: q.wants("stream") and self._sees_stream(q, s), event)
            self.cond.notify_all()
            return s

    # -- messages ----------------------------------------------------------------
    def post(
        self,
        sender: FakeUser,
        *,
        type_: str,
        to: Any,
        content: str | None,
        topic: str | None = None,
        client: str = "website",
    ) -> StoredMessage:
        """The rules of POST /messages (zerver/views/message_send.py, lib/message.py)."""
        if content is None:
            raise ApiError(400, "REQUEST_VARIABLE_MISSING", "Missing 'content' argument", var_name="content")
        if "\x00" in content:
            raise bad_request("Message must not contain null bytes")
        content = content.rstrip().lstrip("\n")
        if not content:
            raise bad_request("Message must not be empty")
        original_length = len(content)
        truncated = original_length > self.max_message_length
        if truncated:
            content = content[: self.max_message_length - len(TRUNCATION_SUFFIX)] + TRUNCATION_SUFFIX
        with self.cond:
            if type_ in ("stream", "channel"):
                s = self._resolve_stream(to)
                if s is None:
                    name = str(to)
                    raise ApiError(400, "STREAM_DOES_NOT_EXIST", f"Stream '{name}' does not exist", stream=name)
                if s.invite_only and sender.user_id not in s.subscribers:
                    raise bad_request(f"Not authorized to send to stream '{s.name}'")
                if topic is None:
                    raise bad_request("Missing topic")
                topic = topic.strip() or "(no topic)"
                # zerver/lib/string_validation.py check_string_is_printable: Cc, Cs and Cn refused.
                bad = next((i for i, c in enumerate(topic, 1) if unicodedata.category(c) in ("Cc", "Cs", "Cn")), None)
                if bad is not None:
                    raise bad_request(f"Invalid character in topic, at position {bad}!")
                original_topic = topic
                if len(topic) > MAX_TOPIC_LENGTH:
                    topic = topic[: MAX_TOPIC_LENGTH - 3] + "..."
                m = StoredMessage(
                    self._next_message_id,
                    sender.user_id,
                    "stream",
                    content,
                    int(time.time()),
                    recipient_id=1000 + s.stream_id,
                    client=client,
                    stream_id=s.stream_id,
                    subject=topic,
                    truncated=truncated,
                    original_length=original_length,
                    original_topic=original_topic if original_topic != topic else None,
                )
            elif type_ in ("direct", "private"):
                recipients = self._resolve_dm_recipients(sender, to)
                participants = frozenset({sender.user_id, *(u.user_id for u in recipients)})
                rid = self._dm_recipients.setdefault(participants, 5000 + len(self._dm_recipients))
                m = StoredMessage(
                    self._next_message_id,
                    sender.user_id,
                    "private",
                    content,
                    int(time.time()),
                    recipient_id=rid,
                    client=client,
                    participants=participants,
                    truncated=truncated,
                    original_length=original_length,
                )
            else:
                raise bad_request("Invalid message type")
            self._next_message_id += 1
            m.shares = frozenset(p for p in self.uploads if p in content and self.can_read_upload(sender, p))
            self.messages.append(m)
            if self.on_message is not None:
                self.on_message(m)
            if m.truncated:
                self.truncations.append(Truncation(m.id, sender.email, "content", original_length))
            if m.original_topic is not None:
                self.truncations.append(Truncation(m.id, sender.email, "topic", len(m.original_topic)))
            for q in self._live_queues():
                viewer = self.users[q.user_id]
                if q.wants("message") and self._receives(viewer, m, q) and self._matches(viewer, m, q.narrow):
                    q.push(
                        {
                            "type": "message",
                            "message": self.render(m, q.apply_markdown),
                            "flags": self._flags(viewer, m),
                        }
                    )
            self.cond.notify_all()
            return m

    def message(self, viewer: FakeUser, message_id: int) -> StoredMessage:
        """The message `viewer` may see (GET and PATCH /messages/{message_id}), else "Invalid message(s)"."""
        with self.cond:
            found = next((m for m in self.messages if m.id == message_id), None)
            if found is None or not self.can_see(viewer, found):
                raise bad_request("Invalid message(s)")
            return found

    def edit(self, editor: FakeUser, message_id: int, content: str | None) -> dict[str, Any]:
        """The rules of PATCH /messages/{message_id} for a change of content (zerver/actions/message_edit.py):
        only its sender edits what a message says; the content is normalised as a new message's; the
        `update_message` event goes to everyone who received the message. Returns the event (without
        its per-queue id and flags), for a test to deliver again (`redeliver`)."""
        if content is None:
            raise bad_request("Nothing to change")
        with self.cond:
            m = self.message(editor, message_id)
            if m.sender_id != editor.user_id:
                raise bad_request("You don't have permission to edit this message")
            content = content.rstrip().lstrip("\n")
            if not content:
                raise bad_request("Message must not be empty")  # the real server deletes it instead
            if len(content) > self.max_message_length:
                content = content[: self.max_message_length - len(TRUNCATION_SUFFIX)] + TRUNCATION_SUFFIX
            before, m.content = m.content, content
            m.last_edit_timestamp = int(time.time())
            m.shares |= frozenset(p for p in self.uploads if p in content and self.can_read_upload(editor, p))
            stream = self.streams[m.stream_id] if m.stream_id is not None else None
            event = payloads.update_message(m, editor_id=editor.user_id, orig_content=before, stream=stream)
            self.redeliver(event)
            return event

    def move(
        self,
        mover: FakeUser,
        message_id: int,
        *,
        topic: str | None,
        stream_id: int | None = None,
        propagate_mode: str = "change_one",
    ) -> dict[str, Any]:
        """The rules of PATCH /messages/{message_id} for a move (zerver/actions/message_edit.py, without
        the realm's time limits and policies: anyone who may read the stream moves): the message
        named, the later ones of its topic as well ("change_later") or all of them ("change_all"),
        go to topic `topic` (trimmed, cut like a new message's) and/or stream `stream_id`; one
        `update_message` event goes to everyone who received them. Returns the event, for a test to
        deliver again (`redeliver`). Zulip's notices of the move ("This topic was moved …") are not
        posted."""
        if propagate_mode not in ("change_one", "change_later", "change_all"):
            raise bad_request("Invalid propagate_mode")
        with self.cond:
            m = self.message(mover, message_id)
            if m.type != "stream" or m.stream_id is None:
                raise bad_request("Direct messages cannot be moved to channels.")
            stream = self.streams[m.stream_id]
            new_stream = self.streams.get(stream_id) if stream_id is not None else None
            if stream_id is not None and (new_stream is None or not self.can_access_stream(mover, new_stream)):
                raise bad_request("Invalid channel ID")
            if new_stream is not None and new_stream.stream_id == stream.stream_id:
                new_stream = None
            new_topic = m.subject if topic is None else (topic.strip() or "(no topic)")
            if len(new_topic) > MAX_TOPIC_LENGTH:
                new_topic = new_topic[: MAX_TOPIC_LENGTH - 3] + "..."
            if new_topic == m.subject and new_stream is None:
                raise bad_request("Nothing to change")
            orig_subject = m.subject
            in_topic = [
                other
                for other in self.messages
                if other.stream_id == stream.stream_id and other.subject.lower() == orig_subject.lower()
            ]
            moving = {
                "change_one": [m],
                "change_later": [other for other in in_topic if other.id >= m.id],
                "change_all": in_topic,
            }[propagate_mode]
            # Received by those who could have received them where they were (before the move).
            receivers = [
                q
                for q in self._live_queues()
                if q.wants("update_message") and self._receives(self.users[q.user_id], m, q)
            ]
            for other in moving:
                other.subject = new_topic
                if new_stream is not None:
                    other.stream_id, other.recipient_id = new_stream.stream_id, 1000 + new_stream.stream_id
            event = payloads.messages_moved(
                m,
                [other.id for other in moving],
                mover_id=mover.user_id,
                propagate_mode=propagate_mode,
                stream=stream,
                orig_subject=orig_subject,
                new_stream=new_stream,
            )
            for q in receivers:
                q.push({**event, "flags": self._flags(self.users[q.user_id], m)})
            self.cond.notify_all()
            return event

    def preview(self, message_id: int) -> dict[str, Any]:
        """A rendering update of a message's content (an inline URL preview): the `update_message`
        event with `rendering_only` and no editor, to everyone who received the message."""
        with self.cond:
            m = next(m for m in self.messages if m.id == message_id)
            event = payloads.update_message(m, editor_id=None, orig_content=None, stream=None)
            self.redeliver(event)
            return event

    def redeliver(self, event: dict[str, Any]) -> None:
        """Push an `update_message` event (again) to each live queue whose user received its message,
        with that user's flags: as the server sends it, or as a queue gets an event twice."""
        with self.cond:
            m = next(m for m in self.messages if m.id == event["message_id"])
            for q in self._live_queues():
                viewer = self.users[q.user_id]
                if q.wants("update_message") and self._receives(viewer, m, q):
                    q.push({**event, "flags": self._flags(viewer, m)})
            self.cond.notify_all()

    def _resolve_stream(self, to: Any) -> FakeStream | None:
        if isinstance(to, list) and len(to) == 1:
            to = to[0]
        if isinstance(to, int):
            return self.streams.get(to)
        if isinstance(to, str):
            if to.isdigit() and int(to) in self.streams and self.stream_by_name(to) is None:
                return self.streams[int(to)]
            return self.stream_by_name(to)
        return None

    def _resolve_dm_recipients(self, sender: FakeUser, to: Any) -> list[FakeUser]:
        if isinstance(to, str):
            to = [t for t in (p.strip() for p in to.split(",")) if t]
        if isinstance(to, int):
            to = [to]
        if not isinstance(to, list) or not to:
            raise bad_request("Invalid recipients")
        found = []
        for t in to:
            u = self.users.get(t) if isinstance(t, int) else self.user_for(sender, str(t))
            if u is None:
                raise bad_request(f"Invalid email '{t}'" if isinstance(t, str) else f"Invalid user ID {t}")
            found.append(u)
        return found

    def render(self, m: StoredMessage, apply_markdown: bool) -> dict[str, Any]:
        sender = self.users[m.sender_id]
        stream_name = self.streams[m.stream_id].name if m.stream_id is not None else None
        participants = [self.users[i] for i in sorted(m.participants)]
        return payloads.message(
            m,
            sender=sender,
            participants=participants,
            stream_name=stream_name,
            apply_markdown=apply_markdown,
            api_email=self.api_email,
        )

    def _flags(self, viewer: FakeUser, m: StoredMessage) -> list[str]:
        return ["read"] if m.sender_id == viewer.user_id else []

    def can_see(self, viewer: FakeUser, m: StoredMessage) -> bool:
        if m.type == "private":
            return viewer.user_id in m.participants
        s = self.streams[m.stream_id]  # type: ignore[index]
        return self.can_access_stream(viewer, s)

    def _receives(self, viewer: FakeUser, m: StoredMessage, q: EventQueue) -> bool:
        if m.type == "private":
            return viewer.user_id in m.participants
        s = self.streams[m.stream_id]  # type: ignore[index]
        return viewer.user_id in s.subscribers or (q.all_public_streams and not s.invite_only)

    def _sees_stream(self, q: EventQueue, s: FakeStream) -> bool:
        return q.user_id in s.subscribers or not s.invite_only

    # -- narrows -----------------------------------------------------------------
    def _matches(self, viewer: FakeUser, m: StoredMessage, narrow: list[tuple[str, Any, bool]]) -> bool:
        return all(self._term(viewer, m, op, operand) != negated for op, operand, negated in narrow)

    def _term(self, viewer: FakeUser, m: StoredMessage, op: str, operand: Any) -> bool:
        if op == "is":
            if operand in ("dm", "private"):
                return m.type == "private"
            if operand == "unread":
                return m.sender_id != viewer.user_id
            raise bad_request(f"Invalid narrow operator: unknown 'is' operand {operand}")
        if op in ("stream", "channel"):
            s = self._resolve_stream(operand)
            return s is not None and m.stream_id == s.stream_id
        if op in ("topic", "subject"):
            return m.type == "stream" and m.subject.lower() == str(operand).lower()
        if op == "sender":
            u = self._user_operand(viewer, operand)
            return u is not None and m.sender_id == u.user_id
        if op in ("dm", "pm-with"):
            users = self._users_operand(viewer, operand)
            return m.type == "private" and m.participants == frozenset({viewer.user_id, *users})
        if op == "dm-including":
            u = self._user_operand(viewer, operand)
            return m.type == "private" and u is not None and u.user_id in m.participants
        if op == "search":
            needle = str(operand).lower()
            return needle in m.content.lower() or needle in m.subject.lower()
        if op == "id":
            return m.id == int(operand)
        raise bad_request(f"Invalid narrow operator: unknown operator {op}")

    def _user_operand(self, viewer: FakeUser, operand: Any) -> FakeUser | None:
        if isinstance(operand, int) or (isinstance(operand, str) and operand.isdigit()):
            return self.users.get(int(operand))
        return self.user_for(viewer, str(operand))

    def _users_operand(self, viewer: FakeUser, operand: Any) -> set[int]:
        items = operand if isinstance(operand, list) else str(operand).split(",")
        out = set()
        for item in items:
            u = self._user_operand(viewer, item.strip() if isinstance(item, str) else item)
            if u is None:
                raise bad_request(f"Invalid user ID or email {item}")
            out.add(u.user_id)
        return out

    def query(
        self,
        viewer: FakeUser,
        *,
        narrow: list[tuple[str, Any, bool]],
        anchor: str,
        num_before: int,
        num_after: int,
        include_anchor: bool,
        apply_markdown: bool,
    ) -> dict[str, Any]:
        """GET /messages (zerver/views/message_fetch.py, simplified but faithful in its answers)."""
        with self.cond:
            matching = [m for m in self.messages if self.can_see(viewer, m) and self._matches(viewer, m, narrow)]
            if anchor == "newest":
                anchor_id = matching[-1].id if matching else LARGER_THAN_MAX_MESSAGE_ID
                reported = LARGER_THAN_MAX_MESSAGE_ID
            elif anchor == "oldest":
                anchor_id, reported = 0, 0
            elif anchor == "first_unread":
                unread = [m for m in matching if m.sender_id != viewer.user_id]
                anchor_id = unread[0].id if unread else (matching[-1].id if matching else LARGER_THAN_MAX_MESSAGE_ID)
                reported = anchor_id
            else:
                try:
                    anchor_id = int(anchor)
                except ValueError:
                    raise bad_request(f"Invalid anchor {anchor!r}") from None
                reported = anchor_id
            before_all = [m for m in matching if m.id < anchor_id]
            after_all = [m for m in matching if m.id > anchor_id]
            at = [m for m in matching if m.id == anchor_id]
            before = before_all[max(0, len(before_all) - num_before) :] if num_before else []
            after = after_all[:num_after]
            chosen = before + (at if include_anchor else []) + after
            result = {
                **payloads.OK,
                "anchor": reported,
                "found_anchor": bool(at),
                "found_oldest": len(before_all) <= num_before,
                "found_newest": len(after_all) <= num_after,
                "history_limited": False,
                "messages": [{**self.render(m, apply_markdown), "flags": self._flags(viewer, m)} for m in chosen],
            }
            return result

    # -- event queues ------------------------------------------------------------
    def register(
        self,
        viewer: FakeUser,
        *,
        event_types: list[str] | None,
        narrow: list[tuple[str, Any, bool]],
        apply_markdown: bool,
        all_public_streams: bool,
        lifespan: float | None,
    ) -> EventQueue:
        with self.cond:
            q = EventQueue(
                uuid.uuid4().hex,
                viewer.user_id,
                event_types,
                narrow,
                apply_markdown,
                all_public_streams,
                idle_timeout=lifespan if lifespan is not None else self.queue_idle_timeout,
            )
            self.queues[q.queue_id] = q
            return q

    def _live_queues(self) -> list[EventQueue]:
        return [q for q in self.queues.values() if not q.dead]

    def collect_garbage(self) -> None:
        """Drop queues nobody polled for `idle_timeout` (the server's GC)."""
        now = time.monotonic()
        with self.cond:
            for q in list(self.queues.values()):
                if not q.dead and q.pollers == 0 and now - q.last_touched > q.idle_timeout:
                    self._kill(q)

    def _kill(self, q: EventQueue) -> None:
        q.dead = True
        del self.queues[q.queue_id]
        self.expired_queues += 1
        self.cond.notify_all()

    def expire_queues(self, user_id: int | None = None) -> int:
        with self.cond:
            victims = [q for q in self.queues.values() if user_id is None or q.user_id == user_id]
            for q in victims:
                self._kill(q)
            return len(victims)

    def _queue(self, viewer: FakeUser, queue_id: str | None) -> EventQueue:
        q = self.queues.get(queue_id or "")
        if q is None or q.dead or q.user_id != viewer.user_id:
            raise ApiError(400, "BAD_EVENT_QUEUE_ID", f"Bad event queue ID: {queue_id}", queue_id=queue_id or "")
        return q

    def get_events(
        self, viewer: FakeUser, queue_id: str | None, last_event_id: int | None, dont_block: bool
    ) -> list[dict[str, Any]]:
        with self.cond:
            q = self._queue(viewer, queue_id)
            if last_event_id is not None:
                q.acknowledge(last_event_id)
            floor = -1 if last_event_id is None else last_event_id
            q.pollers += 1
            try:
                deadline = time.monotonic() + self.heartbeat
                while True:
                    if q.dead:
                        raise ApiError(400, "BAD_EVENT_QUEUE_ID", f"Bad event queue ID: {queue_id}", queue_id=queue_id)
                    pending = [e for e in q.events if e["id"] > floor]
                    if pending or dont_block:
                        return pending
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self.closing:
                        return [q.push({"type": "heartbeat"})]
                    self.cond.wait(remaining)
            finally:
                q.pollers -= 1
                q.last_touched = time.monotonic()

    def delete_queue(self, viewer: FakeUser, queue_id: str | None) -> None:
        with self.cond:
            q = self._queue(viewer, queue_id)
            q.dead = True
            del self.queues[q.queue_id]
            self.cond.notify_all()

    def _emit(self, want: Any, event: dict[str, Any]) -> None:
        for q in self._live_queues():
            if want(q):
                q.push(event)
