"""A fake Mastodon server speaking real HTTP on 127.0.0.1.

Driven by the real `Mastodon.py` client and by an `httpx` SSE reader. Built
from the recorded payloads in `../shared/reference/mastodon/` (copied into
`payloads/`). See `FakeMastodon` for the Python API tests use.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .limits import Fault, FaultPlan, Verdict, WindowLimit
from .media import MediaRoutes, Medium, multipart
from .model import Account, ApiError, Instance, Posted
from .routes import RestRoutes
from .streaming import CLOSE_CLEAN, CLOSE_DROP, StreamHub, frame

log = logging.getLogger("tests.fakes.mastodon")


@dataclass
class Stats:
    """What the fake served. `requests` counts REST requests (not stream connections)."""

    requests: int = 0
    ratelimited: int = 0
    faults: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    #: REST requests per account, by the token they carried (acct; "" for none or an unknown token).
    by_account: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str, int]] = field(default_factory=list)

    def count(self, route: str) -> int:
        """Requests served for a route such as "POST /api/v1/statuses"."""
        return self.by_route[route]


Route = tuple[str, re.Pattern[str], str]
ROUTES: list[Route] = [
    (m, re.compile(p + r"/?$"), name)
    for m, p, name in [
        ("GET", r"/api/v1/instance", "instance_v1"),
        ("GET", r"/api/v2/instance", "instance_v2"),
        ("GET", r"/api/v1/accounts/verify_credentials", "verify_credentials"),
        ("GET", r"/api/v1/notifications", "notifications"),
        ("GET", r"/api/v1/notifications/requests", "requests"),
        ("GET", r"/api/v1/notifications/requests/merged", "requests_merged"),
        ("GET", r"/api/v1/notifications/requests/(?P<id>\d+)", "request"),
        ("POST", r"/api/v1/notifications/requests/(?P<id>\d+)/(?P<action>accept|dismiss)", "request_action"),
        ("POST", r"/api/v1/notifications/requests/(?P<action>accept|dismiss)", "requests_action"),
        ("GET", r"/api/v1/notifications/(?P<id>\d+)", "notification"),
        ("GET", r"/api/v2/notifications/policy", "policy"),
        ("PATCH", r"/api/v2/notifications/policy", "policy_update"),
        ("POST", r"/api/v1/statuses", "post_status"),
        ("GET", r"/api/v1/statuses/(?P<id>\d+)", "status"),
        ("PUT", r"/api/v1/statuses/(?P<id>\d+)", "edit_status"),
        ("GET", r"/api/v1/statuses/(?P<id>\d+)/history", "status_history"),
        ("GET", r"/api/v1/statuses/(?P<id>\d+)/context", "context"),
        ("GET", r"/api/v1/statuses/(?P<id>\d+)/source", "status_source"),
        ("GET", r"/api/v1/accounts/(?P<id>\d+)/statuses", "account_statuses"),
        ("POST", r"/api/v2/media", "media_post"),
        ("GET", r"/api/v1/media/(?P<id>\d+)", "media"),
    ]
]
STREAM_PATHS = {"/api/v1/streaming/user": False, "/api/v1/streaming/user/notification": True}
UNAUTHENTICATED = {"instance_v1", "instance_v2"}
#: The scopes a token needs for a route, any one of them (Mastodon's `doorkeeper_authorize!` in each
#: controller: a top-level scope covers its own `read:…`/`write:…`). Only checked for tokens given
#: scopes (`FakeMastodon.set_scopes`); any other token may do everything. Streams are not checked.
ROUTE_SCOPES = {
    "verify_credentials": ("read", "read:accounts", "profile"),
    "notifications": ("read", "read:notifications"),
    "requests": ("read", "read:notifications"),
    "requests_merged": ("read", "read:notifications"),
    "request": ("read", "read:notifications"),
    "request_action": ("write", "write:notifications"),
    "requests_action": ("write", "write:notifications"),
    "notification": ("read", "read:notifications"),
    "policy": ("read", "read:notifications"),
    "policy_update": ("write", "write:notifications"),
    "post_status": ("write", "write:statuses"),
    "status": ("read", "read:statuses"),
    "edit_status": ("write", "write:statuses"),
    "status_history": ("read", "read:statuses"),
    "context": ("read", "read:statuses"),
    "status_source": ("read", "read:statuses"),
    "account_statuses": ("read", "read:statuses"),
    "media_post": ("write", "write:media"),
    "media": ("write", "write:media"),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeMastodon


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._handle(self, "POST")

    def do_PATCH(self) -> None:
        self.server.fake._handle(self, "PATCH")

    def do_PUT(self) -> None:
        self.server.fake._handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.fake._handle(self, "DELETE")


class FakeMastodon(RestRoutes, MediaRoutes):
    """A fake Mastodon instance on http://127.0.0.1:PORT.

    Use as a context manager (or `start()`/`stop()`). The bot's account is
    created from `bot_acct` with `bot_token`. People are added with
    `add_account("alice@remote.example")` and write with `post_status(...)`.
    What the bot posted and who received it: `posted_by(bot)`, `inbox(acct)`.
    Counters: `stats.requests`, `stats.ratelimited`, `stats.by_route`.
    Faults: `fail_next`, `fail_during`, `drop_next`, `disconnect_streams`,
    `drop_streams_after`, `stall_streams`. Mastodon's own ways:
    `expire_idempotency_keys`, `fail_keyed_repeats`, `hold_merges`.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        domain: str = "bot.example",
        bot_acct: str = "deskbot",
        bot_token: str = "bot-token",
        max_characters: int = 500,
        instance_v2: bool = True,
        instance_v1: bool = True,
        api_limit: int = 300,
        api_period: float = 300.0,
        status_limit: int = 300,
        status_period: float = 3 * 3600.0,
        heartbeat_interval: float = 15.0,
        bot_policy: dict[str, str] | None = None,
        round_trip: float = 0.0,
        image_size_limit: int | None = None,
        video_size_limit: int | None = None,
        media_processing: float = 0.3,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`round_trip`: a simulated network round trip, in seconds, for every client. Each REST
        request and stream connection waits half of it before it is handled (on its way in) and
        half before its answer leaves (on its way back); each streamed event leaves half of it
        after it happened (on its way out), without holding up the events behind it."""
        self._requested_port = port
        self.round_trip = round_trip
        #: Serve HTTPS with this server context (its certificate), instead of plain HTTP.
        self.tls = tls
        self.domain = domain
        self.max_characters = max_characters
        self.serve_instance_v2 = instance_v2
        self.serve_instance_v1 = instance_v1
        self.api_limit = WindowLimit(api_limit, api_period)
        self.status_limit = WindowLimit(status_limit, status_period)
        self.heartbeat_interval = heartbeat_interval
        #: Media files served at `/system/media_attachments/files/…`: bytes, or None for a body that never ends.
        self.media_files: dict[str, bytes | None] = {}
        #: Media uploaded through `POST /api/v2/media`, by id (see `media.py`).
        self.uploads: dict[str, Medium] = {}
        #: The instance's media limits, where a test sets its own (else the recorded entity's).
        self.image_size_limit = image_size_limit
        self.video_size_limit = video_size_limit
        #: Seconds an upload answered 202 takes to process; `media_async`: images too answer 202.
        self.media_processing = media_processing
        self.media_async = False
        #: The scopes of tokens given some (`set_scopes`); a token not here may do everything.
        self.token_scopes: dict[str, frozenset[str]] = {}
        self.stats = Stats()
        self.faults = FaultPlan()
        self.streams = StreamHub()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stats_lock = threading.Lock()
        self.url = ""
        self.instance = Instance(domain, "http://127.0.0.1")
        self.instance.on_event = self.streams.publish
        self._bot_setup = (bot_acct, bot_token, bot_policy)
        self.bot: Account | None = None
        #: Set by `fail_keyed_repeats`: the status answering a repeated Idempotency-Key.
        self.keyed_repeat_status: int | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FakeMastodon:
        server = _Server(("127.0.0.1", self._requested_port), _Handler)
        server.fake = self
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        scheme = "https" if self.tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        self.instance.base_url = self.url
        if self.bot is None:
            acct, token, policy = self._bot_setup
            self.bot = self.instance.add_account(acct, token=token, display_name="Support", bot=True)
            if policy:
                self.bot.policy.update(policy)
        self._thread = threading.Thread(target=server.serve_forever, name="fake-mastodon", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.streams.disconnect_all(clean=True)
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def __enter__(self) -> FakeMastodon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    # -- people and records --------------------------------------------------

    def add_account(self, acct: str, **kwargs: Any) -> Account:
        """Add a person: `"alice"` is local, `"bob@remote.example"` remote. Takes
        `token`, `display_name`, `bot`, `created_at`, `limited`."""
        return self.instance.add_account(acct, **kwargs)

    def account(self, acct: str) -> Account:
        return self.instance.account(acct)

    def follow(self, follower: str, followed: str) -> None:
        with self.instance.lock:
            self.instance.follows.add((self.account(follower).id, self.account(followed).id))

    def set_scopes(self, token: str, scopes: str) -> None:
        """Give `token` only these scopes ("read write:statuses"): a request outside them is
        answered 403 "This action is outside the authorized scopes", as Mastodon does."""
        self.token_scopes[token] = frozenset(scopes.split())

    def set_policy(self, acct: str, **policy: str) -> None:
        self.instance.update_policy(self.account(acct), policy)

    def policy(self, acct: str) -> dict[str, str]:
        return dict(self.account(acct).policy)

    def media(self, name: str, data: bytes | None, *, type_: str = "image", description: str | None = None) -> dict:
        """A file on the instance's file host, as a status's `media` entry (`data` None: an endless body)."""
        path = f"/system/media_attachments/files/{len(self.media_files) + 1:03d}/original/{name}"
        self.media_files[path] = data
        return {"url": self.url + path, "type": type_, "description": description}

    def post_status(
        self,
        from_acct: str,
        text_html: str,
        visibility: str = "direct",
        mentions: list[str] | None = None,
        in_reply_to: str | None = None,
        spoiler_text: str = "",
        media: list[dict[str, Any] | str] | None = None,
    ) -> dict[str, Any]:
        """Someone writes a status. `text_html` is either Mastodon HTML (starts
        with "<"; then give `mentions`) or plain text that is rendered as
        Mastodon would, its `@user`/`@user@domain` mentions resolved."""
        author = self.account(from_acct)
        if text_html.lstrip().startswith("<"):
            posted, _ = self.instance.create_status(
                author,
                re.sub(r"<[^>]+>", " ", text_html),
                visibility=visibility,
                content_html=text_html,
                mentions=mentions or [],
                in_reply_to_id=in_reply_to,
                spoiler_text=spoiler_text,
                media=media,  # type: ignore[arg-type]
            )
        else:
            posted, _ = self.instance.create_status(
                author,
                text_html,
                visibility=visibility,
                mentions=mentions,
                in_reply_to_id=in_reply_to,
                spoiler_text=spoiler_text,
                media=media,  # type: ignore[arg-type]
            )
        return posted.status

    def posted_by(self, acct: str) -> list[Posted]:
        """Every status `acct` posted, oldest first, with its recipients."""
        return self.instance.posted_by(acct)

    def inbox(self, acct: str) -> list[Posted]:
        """Every status delivered to `acct` (it was mentioned, or follows a non-direct author)."""
        return self.instance.inbox(acct)

    def status(self, status_id: str) -> Posted:
        return self.instance.statuses[status_id]

    def notification_requests(self, acct: str) -> list[dict[str, Any]]:
        return [self.instance.request_json(r) for r in self.instance.requests_for(self.account(acct))]

    # -- faults --------------------------------------------------------------

    def fail_next(
        self, count: int, status: int = 503, *, method: str | None = None, path: str | None = None, skip: int = 0
    ) -> Fault:
        """Answer the next `count` matching REST requests with `status` (after letting `skip` through)."""
        return self.faults.add(Fault(status=status, count=count, method=method, path_prefix=path, skip=skip))

    def fail_during(
        self, seconds: float, status: int = 503, *, method: str | None = None, path: str | None = None
    ) -> Fault:
        return self.faults.add(Fault(status=status, until=time.time() + seconds, method=method, path_prefix=path))

    def drop_next(
        self, count: int, *, method: str | None = None, path: str | None = None, after_handling: bool = False
    ) -> Fault:
        """Close the connection instead of answering; `after_handling`: do the work first."""
        return self.faults.add(
            Fault(status=None, count=count, method=method, path_prefix=path, after_handling=after_handling)
        )

    def expire_idempotency_keys(self) -> None:
        """Forget every Idempotency-Key, as Mastodon does an hour after its first use."""
        self.instance.expire_idempotency_keys()

    def fail_keyed_repeats(self, status: int | None = 500) -> None:
        """Answer a repeated Idempotency-Key with `status`, keeping the status the first request
        posted, as Mastodon does since its 2026 lock change (mastodon/mastodon#40399). None: replay."""
        self.keyed_repeat_status = status

    def hold_merges(self, held: bool = True) -> None:
        """Accepted notification requests stay unmerged (`requests/merged` says false) until
        `release_merges`, as while Mastodon's background job has not run."""
        self.instance.merge_at_once = not held

    def release_merges(self) -> None:
        self.instance.release_merges()

    def disconnect_streams(self, *, clean: bool = False) -> int:
        """Close every open stream now (abruptly unless `clean`). Returns how many."""
        return self.streams.disconnect_all(clean=clean)

    def drop_streams_after(self, events: int | None) -> None:
        """Streams opened from now on drop after writing `events` events."""
        self.streams.drop_after = events

    def stall_streams(self, stalled: bool = True) -> None:
        """Open (and new) streams go silent: no events, no heartbeats."""
        self.streams.stall_all(stalled)

    # -- HTTP ------------------------------------------------------------------

    def _handle(self, handler: _Handler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length) if length else b""
        if path.startswith("/_fake/"):
            from .control import handle_control

            return handle_control(self, handler, method, path, query, raw_body)
        self._travel()  # the request on its way in
        if method == "GET" and path in self.media_files:
            return self._serve_media(handler, self.media_files[path])
        if method == "GET" and path.rstrip("/") in STREAM_PATHS:
            return self._stream(handler, path.rstrip("/"), query)
        if method == "GET" and path.rstrip("/") == "/api/v1/streaming/health":
            return self._send(handler, 200, "OK", raw=True)
        if (
            method == "GET"
            and path.rstrip("/") == "/api/v1/streaming"
            and query.get("stream") in (["user"], ["user:notification"])
        ):
            target = "/api/v1/streaming/user" + ("/notification" if query["stream"] == ["user:notification"] else "")
            return self._stream(handler, target, query)

        route_name, params = self._route(method, path)
        route_key = f"{method} {path if route_name is None else self._template(method, route_name)}"
        token = self._token(handler, query)
        account = self.instance.accounts.get(self.instance.tokens.get(token or "", ""), None)
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.by_route[route_key] += 1
            self.stats.by_account[account.acct if account else ""] += 1

        fault = self.faults.take(method, path)
        if fault is not None and not fault.after_handling:
            with self._stats_lock:
                self.stats.faults += 1
            if fault.status is None:
                return self._drop(handler)
            return self._send(handler, fault.status, {"error": "Injected failure"}, route=route_key)

        if route_name is None:
            return self._send(handler, 404, {"error": "Record not found"}, route=route_key)

        rate_key = f"token:{token}" if token else "ip:127.0.0.1"
        api_verdict = self.api_limit.hit(rate_key)
        if not api_verdict.allowed:
            return self._send(handler, 429, {"error": "Too many requests"}, verdict=api_verdict, route=route_key)
        if route_name not in UNAUTHENTICATED and account is None:
            return self._send(
                handler, 401, {"error": "The access token is invalid"}, verdict=api_verdict, route=route_key
            )
        scopes = self.token_scopes.get(token or "")
        if scopes is not None and route_name in ROUTE_SCOPES and not scopes & set(ROUTE_SCOPES[route_name]):
            return self._send(
                handler,
                403,
                {"error": "This action is outside the authorized scopes"},
                verdict=api_verdict,
                route=route_key,
            )

        form = self._form(handler, raw_body)
        try:
            status, body, verdict = getattr(self, f"_r_{route_name}")(account, params, query, form, handler)
        except ApiError as error:
            status, body, verdict = error.status, {"error": error.message}, None
            if route_name == "post_status":
                verdict = self.status_limit.peek(f"account:{account.id}") if account else None
        if fault is not None:  # after_handling: the work is done, the answer is lost
            with self._stats_lock:
                self.stats.faults += 1
            if fault.status is None:
                return self._drop(handler)
            return self._send(handler, fault.status, {"error": "Injected failure"}, route=route_key)
        self._send(
            handler, status, body, verdict=verdict or api_verdict, route=route_key, link=getattr(body, "link", None)
        )

    @staticmethod
    def _template(method: str, name: str) -> str:
        for m, pattern, n in ROUTES:
            if m == method and n == name:
                return re.sub(r"\(\?P<(\w+)>[^)]*\)", r":\1", pattern.pattern.replace(r"/?$", ""))
        return name

    @staticmethod
    def _route(method: str, path: str) -> tuple[str | None, dict[str, str]]:
        for m, pattern, name in ROUTES:
            match = pattern.match(path)
            if m == method and match:
                return name, match.groupdict()
        return None, {}

    @staticmethod
    def _token(handler: _Handler, query: dict[str, list[str]]) -> str | None:
        header = handler.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[7:].strip()
        return (query.get("access_token") or [None])[0]

    @staticmethod
    def _form(handler: _Handler, raw_body: bytes) -> dict[str, list[str]]:
        if not raw_body:
            return {}
        ctype = handler.headers.get("Content-Type") or ""
        if ctype.startswith("multipart/form-data"):
            fields, files = multipart(ctype, raw_body)
            return {**fields, "__files__": files}  # type: ignore[dict-item]
        if "json" in ctype:
            data = json.loads(raw_body)
            return {k: v if isinstance(v, list) else [v] for k, v in data.items()}
        return parse_qs(raw_body.decode(), keep_blank_values=True)

    def _serve_media(self, handler: _Handler, data: bytes | None) -> None:
        """A media file, public like Mastodon's file host; None: chunks until the client hangs up."""
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/octet-stream")
            if data is not None:
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)
                return
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            chunk = b"\0" * 65536
            while True:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            handler.close_connection = True

    def _send(
        self,
        handler: _Handler,
        status: int,
        body: Any,
        *,
        verdict: Verdict | None = None,
        route: str = "",
        link: str | None = None,
        raw: bool = False,
    ) -> None:
        data = body.encode() if raw else json.dumps(body).encode()
        self._travel()  # the answer on its way back
        with self._stats_lock:
            self.stats.by_status[status] += 1
            self.stats.log.append((handler.command, handler.path, status))
            if status == 429:
                self.stats.ratelimited += 1
        handler.send_response(status)  # adds the one Date header
        handler.send_header("Content-Type", "text/plain" if raw else "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        if verdict is not None:
            for name, value in verdict.headers().items():
                handler.send_header(name, value)
        if link:
            handler.send_header("Link", link)
        handler.end_headers()
        handler.wfile.write(data)

    def _travel(self) -> None:
        """Half the simulated round trip: one way across the network."""
        if self.round_trip:
            time.sleep(self.round_trip / 2)

    @staticmethod
    def _drop(handler: _Handler) -> None:
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- streaming ---------------------------------------------------------------

    def _stream(self, handler: _Handler, path: str, query: dict[str, list[str]]) -> None:
        fault = self.faults.take("GET", path)
        if fault is not None:
            if fault.status is None:
                return self._drop(handler)
            return self._send(handler, fault.status, {"error": "Injected failure"})
        token = self._token(handler, query)
        account = self.instance.accounts.get(self.instance.tokens.get(token or "", ""), None)
        if account is None:
            return self._send(handler, 401, {"error": "Error: Invalid access token"})
        connection = self.streams.open(account.id, STREAM_PATHS[path])
        handler.close_connection = True
        try:
            self._travel()  # the answer on its way back; events meanwhile are queued already
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Cache-Control", "private, no-store")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            self._write_chunk(handler, b":)\n")
            while True:
                try:
                    item = connection.queue.get(timeout=self.heartbeat_interval)
                except queue.Empty:
                    if not connection.stalled:
                        self._write_chunk(handler, b":thump\n")
                    continue
                if item is CLOSE_CLEAN:
                    handler.wfile.write(b"0\r\n\r\n")
                    return
                if item is CLOSE_DROP:
                    return self._drop(handler)
                if connection.stalled:
                    continue
                published, event, payload = item
                on_the_way = published + self.round_trip / 2 - time.monotonic()
                if on_the_way > 0:  # the event is due at the client half a round trip after it happened
                    time.sleep(on_the_way)
                self._write_chunk(handler, frame(event, payload))
                connection.events_sent += 1
                if connection.drop_after is not None and connection.events_sent >= connection.drop_after:
                    return self._drop(handler)
        except OSError:
            return
        finally:
            self.streams.close(connection)

    @staticmethod
    def _write_chunk(handler: _Handler, data: bytes) -> None:
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        handler.wfile.flush()
