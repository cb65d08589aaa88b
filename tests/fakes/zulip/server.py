"""`FakeZulip`: the Python API tests drive the fake through."""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from .limits import Fault, FaultPlan, RateLimiter
from .model import EVERYONE, FakeGroup, FakeStream, FakeUser, Realm, StoredMessage, Truncation
from .routes import Api, RequestRecord, _ClientName, _HTTPServer


class FakeZulip:
    """A Zulip server on 127.0.0.1 that the real `zulip.Client` talks to.

    >>> with FakeZulip(heartbeat=0.5) as fake:
    ...     fake.add_user("bot@example.com", "Desk Bot", "KEY", is_bot=True)
    ...     fake.add_stream("support", subscribers=["bot@example.com"])
    ...     zulip.Client(site=fake.url, email="bot@example.com", api_key="KEY")

    `heartbeat` is how long a `GET /events` long-poll waits before answering
    with a heartbeat; `queue_idle_timeout` is how long a queue nobody polls
    lives. Everything the fake received is in `requests`; every message is in
    `messages` (content after the server's normalisation and truncation).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat: float = 50.0,
        queue_idle_timeout: float = 600.0,
        max_message_length: int = 10000,
        zulip_version: str = "9.0-dev-fake",
        feature_level: int = 247,
        realm_name: str = "deskbot fake",
        rate_limit: tuple[int, float] | None = None,
        round_trip: float = 0.0,
        realm_host: str = "zulip.example.net",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        #: Serve HTTPS with this server context (its certificate), instead of plain HTTP.
        self.tls = tls
        #: A simulated network round trip, in seconds, added to every API request: half before
        #: the request is handled (on its way in), half before the answer leaves (on its way back).
        self.round_trip = round_trip
        self.port = port
        self.zulip_version = zulip_version
        self.feature_level = feature_level
        self.realm_name = realm_name
        #: (user, path) of each file served from `/user_uploads/`.
        self.downloads: list[tuple[str, str]] = []
        self.realm = Realm(
            max_message_length=max_message_length,
            queue_idle_timeout=queue_idle_timeout,
            heartbeat=heartbeat,
            host=realm_host,
        )
        self.faults = FaultPlan()
        self.rate_limiter: RateLimiter | None = RateLimiter(*rate_limit) if rate_limit else None
        self.requests: list[RequestRecord] = []
        self.rate_limited: list[RequestRecord] = []
        self.api = Api(self)
        #: Called with (method, path, params) before each API request is handled: lets a
        #: test make something happen at an exact point of the bot's conversation.
        self.before_request: Callable[[str, str, dict[str, str]], None] | None = None
        self._current_client = _ClientName()
        self._records_lock = threading.Lock()
        #: Cleared while answers are held (`hold_answers`); (method, path) of each request held.
        self._answering = threading.Event()
        self._answering.set()
        self._held: list[tuple[str, str]] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> FakeZulip:
        self.realm.closing = False
        self._httpd = _HTTPServer((self.host, self.port), self)
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-zulip", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (in-flight long-polls end)."""
        if self._httpd is None:
            return
        with self.realm.cond:
            self.realm.closing = True
            self.realm.cond.notify_all()
        self._httpd.shutdown()
        self._httpd.kill_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def restart(self, *, lose_queues: bool = True) -> None:
        """Stop and start again on the same port, like a server restart."""
        self.stop()
        if lose_queues:
            self.realm.expire_queues()
        self.start()

    def kill_connections(self) -> None:
        """Cut every open connection without stopping (a network blip)."""
        if self._httpd is not None:
            self._httpd.kill_connections()

    def __enter__(self) -> FakeZulip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls is not None else 'http'}://{self.host}:{self.port}"

    # -- directory -----------------------------------------------------------------
    def add_user(
        self,
        email: str,
        full_name: str | None = None,
        api_key: str | None = None,
        *,
        is_bot: bool = False,
        role: int = 400,
        email_address_visibility: int = EVERYONE,
    ) -> FakeUser:
        """`email` is the real address; `email_address_visibility` says who sees it (model.EVERYONE …
        model.MODERATORS): where not everyone, the API shows the stand-in `user{id}@{realm_host}`."""
        key = api_key or hashlib.sha256(email.encode()).hexdigest()[:32]
        return self.realm.add_user(
            email,
            full_name or email.split("@")[0].title(),
            key,
            is_bot=is_bot,
            role=role,
            email_address_visibility=email_address_visibility,
        )

    def user(self, email: str) -> FakeUser:
        """By the real address."""
        return self.realm.require_user(email)

    def api_email(self, email: str) -> str:
        """The address the API shows for the person whose real address is `email` (a stand-in where hidden)."""
        return self.realm.api_email(self.user(email))

    def set_email_visibility(self, email: str, visibility: int) -> None:
        with self.realm.cond:
            self.user(email).email_address_visibility = visibility

    # -- user groups ---------------------------------------------------------------------
    def add_group(self, name: str, members: Iterable[str] = (), subgroups: Iterable[str] = ()) -> FakeGroup:
        """A user group of the people with these real addresses (and these groups), announced to queues."""
        return self.realm.add_group(
            name,
            [self.user(e).user_id for e in members],
            [self.realm.group_by_name(g).id for g in subgroups],
        )

    def group(self, name: str) -> FakeGroup:
        return self.realm.group_by_name(name)

    def add_to_group(self, name: str, *emails: str) -> None:
        self.realm.change_group(name, "add_members", [self.user(e).user_id for e in emails])

    def remove_from_group(self, name: str, *emails: str) -> None:
        self.realm.change_group(name, "remove_members", [self.user(e).user_id for e in emails])

    def rename_group(self, name: str, new_name: str) -> None:
        self.realm.change_group(name, "update", name=new_name)

    def remove_group(self, name: str) -> None:
        self.realm.change_group(name, "remove")

    @property
    def bot(self) -> FakeUser:
        """The first bot user added (the default recipient of `post_dm`)."""
        return next(u for u in self.realm.users.values() if u.is_bot)

    def add_stream(
        self,
        name: str,
        *,
        invite_only: bool = True,
        is_web_public: bool = False,
        subscribers: Iterable[str] = (),
        description: str = "",
    ) -> FakeStream:
        return self.realm.add_stream(
            name, invite_only=invite_only, is_web_public=is_web_public, subscribers=subscribers, description=description
        )

    def stream(self, name: str) -> FakeStream:
        s = self.realm.stream_by_name(name)
        if s is None:
            raise KeyError(name)
        return s

    def subscribe(self, stream: str, email: str) -> None:
        with self.realm.cond:
            self.stream(stream).subscribers.add(self.user(email).user_id)

    def unsubscribe(self, stream: str, email: str) -> None:
        with self.realm.cond:
            self.stream(stream).subscribers.discard(self.user(email).user_id)

    def make_stream_public(self, name: str) -> None:
        """invite_only → false, with the `stream` update event subscribers receive."""
        self.realm.update_stream(name, invite_only=False, history_public_to_subscribers=True)

    def make_stream_web_public(self, name: str) -> None:
        self.realm.update_stream(name, is_web_public=True, invite_only=False, history_public_to_subscribers=True)

    def make_stream_private(self, name: str) -> None:
        self.realm.update_stream(name, invite_only=True, is_web_public=False)

    def zuliprc(self, email: str, path: Path) -> Path:
        u = self.user(email)
        path.write_text(f"[api]\nemail={u.email}\nkey={u.api_key}\nsite={self.url}\n")
        return path

    # -- people writing ------------------------------------------------------------------
    def post_dm(self, from_user: str, content: str, to: str | list[str] | None = None) -> int:
        """A direct message from `from_user` (to the bot unless `to` says otherwise); returns its id."""
        sender = self.user(from_user)
        named = [self.bot.email] if to is None else ([to] if isinstance(to, str) else list(to))
        # By user id: the people a test names by real address may hide it from the sender.
        recipients = [self.user(email).user_id for email in named]
        return self.realm.post(sender, type_="direct", to=recipients, content=content).id

    def edit_message(self, editor: str, message_id: int, content: str) -> dict[str, Any]:
        """`editor` changes what their message says (as `PATCH /messages/{id}`); the `update_message`
        event everyone who received the message gets (for `redeliver`)."""
        return self.realm.edit(self.user(editor), message_id, content)

    def move_topic(
        self, mover: str, message_id: int, topic: str, propagate_mode: str = "change_all", stream: str | None = None
    ) -> dict[str, Any]:
        """`mover` moves message `message_id` (and, by `propagate_mode`, the rest of its topic) to
        `topic` (as `PATCH /messages/{id}`; of stream `stream` if given); the `update_message` event."""
        stream_id = self.stream(stream).stream_id if stream is not None else None
        return self.realm.move(
            self.user(mover), message_id, topic=topic, stream_id=stream_id, propagate_mode=propagate_mode
        )

    def preview_link(self, message_id: int) -> dict[str, Any]:
        """The server adds an inline URL preview to a message: a `rendering_only` `update_message` event."""
        return self.realm.preview(message_id)

    def redeliver(self, event: dict[str, Any]) -> None:
        """Deliver an `update_message` event again, as it was (a queue given the same event twice)."""
        self.realm.redeliver(event)

    def upload(self, uploader: str, filename: str, data: bytes) -> str:
        """A file uploaded by `uploader` (as `POST /user_uploads`); its `/user_uploads/…` path."""
        return self.realm.upload(self.user(uploader), filename, data)

    def download(self, email: str, path: str) -> tuple[int, bytes]:
        """`GET path` over HTTP as `email` (Basic auth, like the API): (status, body)."""
        u = self.user(email)
        response = httpx.get(self.url + path, auth=(u.email, u.api_key), timeout=10)
        return response.status_code, response.content

    def post_stream_message(self, sender: str, stream: str, topic: str, content: str) -> int:
        return self.realm.post(self.user(sender), type_="stream", to=stream, content=content, topic=topic).id

    def expire_queues(self, email: str | None = None) -> int:
        """Garbage-collect event queues now (all, or one user's); returns how many."""
        return self.realm.expire_queues(self.user(email).user_id if email else None)

    # -- what happened -----------------------------------------------------------------
    @property
    def messages(self) -> list[StoredMessage]:
        with self.realm.cond:
            return list(self.realm.messages)

    def message(self, message_id: int) -> StoredMessage:
        return next(m for m in self.messages if m.id == message_id)

    def sent_by(
        self, email: str, *, stream: str | None = None, topic: str | None = None, to: str | None = None
    ) -> list[StoredMessage]:
        """Messages `email` sent, optionally only to a stream/topic or as a 1:1 DM to `to`."""
        sender = self.user(email)
        out = []
        for m in self.messages:
            if m.sender_id != sender.user_id:
                continue
            if stream is not None and (m.stream_id is None or self.realm.streams[m.stream_id].name != stream):
                continue
            if topic is not None and m.subject != topic:
                continue
            if to is not None and m.participants != frozenset({sender.user_id, self.user(to).user_id}):
                continue
            out.append(m)
        return out

    @property
    def truncations(self) -> list[Truncation]:
        with self.realm.cond:
            return list(self.realm.truncations)

    def requests_to(self, method: str, path: str) -> list[RequestRecord]:
        with self._records_lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # -- rate limits and faults ------------------------------------------------------------
    def set_rate_limit(self, limit: int | None, window: float = 60.0) -> None:
        """`limit` requests per `window` seconds per user; None turns limiting off."""
        self.rate_limiter = RateLimiter(limit, window) if limit else None

    def fail_next(
        self, n: int = 1, *, status: int = 502, path: str | None = None, method: str | None = None, body: str = "html"
    ) -> Fault:
        """Answer the next `n` matching requests with `status` (an HTML proxy page by default)."""
        return self.faults.add(Fault("status", status=status, body=body, path=path, method=method, remaining=n))

    def fail_for(
        self,
        seconds: float,
        *,
        status: int = 502,
        path: str | None = None,
        method: str | None = None,
        body: str = "html",
        containing: str | None = None,
    ) -> Fault:
        """Answer every matching request with `status` for the next `seconds`; `containing`: only
        those whose `content` holds that text."""
        until = time.monotonic() + seconds
        return self.faults.add(
            Fault("status", status=status, body=body, path=path, method=method, until=until, containing=containing)
        )

    def drop_next(
        self, n: int = 1, *, path: str | None = None, method: str | None = None, after_processing: bool = False
    ) -> Fault:
        """Close the connection without answering; `after_processing`: handle the request first."""
        kind = "drop_after" if after_processing else "drop"
        return self.faults.add(Fault(kind, path=path, method=method, remaining=n))

    def delay_next(self, n: int, seconds: float, *, path: str | None = None, method: str | None = None) -> Fault:
        return self.faults.add(Fault("delay", path=path, method=method, remaining=n, seconds=seconds))

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- a server that does not answer ------------------------------------------------------
    def hold_answers(self) -> None:
        """Take API requests in but answer none, like a hung server (`kill -STOP`): a request that
        comes in now waits before it is handled, one being handled waits before its answer goes
        out; all go on when `release_answers` is called (or are cut when the fake stops)."""
        self._answering.clear()

    def release_answers(self) -> None:
        self._answering.set()

    @property
    def held(self) -> list[tuple[str, str]]:
        """(method, API path) of each request waiting for `release_answers` now."""
        with self._records_lock:
            return list(self._held)

    def _wait_until_answering(self, method: str, path: str) -> bool:
        """Wait while answers are held; False when the fake stopped meanwhile (the handler then drops)."""
        if self._answering.is_set():
            return True
        with self._records_lock:
            self._held.append((method, path))
        try:
            while not self._answering.wait(0.05):
                if self.realm.closing:
                    return False
            return True
        finally:
            with self._records_lock:
                self._held.remove((method, path))

    # -- internals used by the handler -------------------------------------------------------
    def _record(self, record: RequestRecord) -> None:
        with self._records_lock:
            self.requests.append(record)

    def _count_rate_limited(self, record: RequestRecord) -> None:
        with self._records_lock:
            self.rate_limited.append(record)

    def snapshot(self) -> dict[str, Any]:
        """A JSON summary for standalone use (GET /_fake/state)."""
        realm = self.realm
        with realm.cond:
            return {
                "url": self.url,
                "messages": [
                    {
                        "id": m.id,
                        "sender": realm.users[m.sender_id].email,
                        "type": m.type,
                        "stream": realm.streams[m.stream_id].name if m.stream_id is not None else None,
                        "topic": m.subject,
                        "to": sorted(realm.users[i].email for i in m.participants),
                        "content": m.content,
                        "truncated": m.truncated,
                        "stored_at": m.stored_at,
                    }
                    for m in realm.messages
                ],
                "truncations": len(realm.truncations),
                "rate_limited": len(self.rate_limited),
                "queues": len(realm.queues),
                "expired_queues": realm.expired_queues,
                "requests": len(self.requests),
                "requests_by_user": self._requests_by_user(),
            }

    def _requests_by_user(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._records_lock:
            for r in self.requests:
                key = r.user or "-"
                counts[key] = counts.get(key, 0) + 1
        return counts
