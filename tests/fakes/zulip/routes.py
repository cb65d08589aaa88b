"""The HTTP side of the fake: routing, Basic auth, rate limits, faults, records."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import payloads
from .limits import Fault
from .model import ApiError, FakeUser, Realm, bad_request, parse_narrow

log = logging.getLogger("tests.fakes.zulip")

PROXY_ERROR_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"


@dataclass
class RequestRecord:
    """One request the fake received and what it answered."""

    method: str
    path: str  # the API path without /api/v1, e.g. "/messages"
    query: dict[str, str]
    form: dict[str, str]
    user: str | None
    status: int | None  # None: the connection was dropped
    response: Any  # parsed JSON, or None
    fault: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def params(self) -> dict[str, str]:
        return {**self.query, **self.form}


def _json_param(params: dict[str, str], name: str, default: Any = None) -> Any:
    if name not in params:
        return default
    try:
        return json.loads(params[name])
    except ValueError:
        raise ApiError(400, "BAD_REQUEST", f'Argument "{name}" is not valid JSON.') from None


def _bool_param(params: dict[str, str], name: str, default: bool) -> bool:
    value = _json_param(params, name, default)
    if not isinstance(value, bool):
        raise bad_request(f"{name} is not a boolean")
    return value


def _int_param(params: dict[str, str], name: str, default: int | None = None, *, required: bool = False) -> int | None:
    if name not in params:
        if required:
            raise ApiError(400, "REQUEST_VARIABLE_MISSING", f"Missing '{name}' argument", var_name=name)
        return default
    try:
        return int(params[name])
    except ValueError:
        raise bad_request(f"{name} is not an integer") from None


def _multipart_files(ctype: str, raw: bytes) -> list[tuple[str, bytes]]:
    """The files of a multipart/form-data body, as (filename, bytes)."""
    message = BytesParser(policy=email_policy.HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
    files = []
    for part in message.iter_parts():
        filename = part.get_filename()
        if filename is not None:
            files.append((filename, part.get_payload(decode=True) or b""))
    return files


class Api:
    """The endpoints, as functions of (user, params) → JSON body."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.realm: Realm = owner.realm
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., dict[str, Any]]]] = [
            ("GET", re.compile(r"^/server_settings$"), self.server_settings),
            ("GET", re.compile(r"^/users/me$"), self.users_me),
            ("GET", re.compile(r"^/users/me/subscriptions$"), self.subscriptions),
            ("GET", re.compile(r"^/users$"), self.users),
            ("GET", re.compile(r"^/users/(?P<user_id>\d+)$"), self.user_by_id),
            ("GET", re.compile(r"^/users/(?P<email>[^/]+@[^/]+)$"), self.user_by_email),
            ("GET", re.compile(r"^/user_groups$"), self.user_groups),
            ("GET", re.compile(r"^/get_stream_id$"), self.get_stream_id),
            ("GET", re.compile(r"^/streams$"), self.streams),
            ("POST", re.compile(r"^/register$"), self.register),
            ("GET", re.compile(r"^/events$"), self.get_events),
            ("DELETE", re.compile(r"^/events$"), self.delete_events),
            ("GET", re.compile(r"^/messages$"), self.get_messages),
            ("POST", re.compile(r"^/messages$"), self.post_messages),
            ("GET", re.compile(r"^/messages/(?P<message_id>\d+)$"), self.get_message),
            ("PATCH", re.compile(r"^/messages/(?P<message_id>\d+)$"), self.update_message),
            ("POST", re.compile(r"^/user_uploads$"), self.upload_file),
        ]

    def route(self, method: str, path: str) -> tuple[Callable[..., dict[str, Any]], dict[str, str]]:
        for m, rx, fn in self.routes:
            match = rx.match(path)
            if match and m == method:
                return fn, match.groupdict()
        raise ApiError(404, "BAD_REQUEST", "Not Found")

    def upload_file(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        """`POST /user_uploads`: one file in a multipart body (the fake's handler parses it into `_files`)."""
        files: Any = params.get("_files")
        if not isinstance(files, list) or len(files) != 1:
            raise bad_request(
                "You must specify a file to upload" if not files else "You may only upload one file at a time"
            )
        filename, data = files[0]
        path = self.realm.upload(user, filename, data)
        # The description kept in reference/ answers `uri` only (Zulip 9 added `url` and `filename`).
        return {**payloads.OK, "uri": path}

    def server_settings(self, user: FakeUser | None, params: dict[str, str]) -> dict[str, Any]:
        o = self.owner
        return payloads.server_settings(
            zulip_version=o.zulip_version, feature_level=o.feature_level, realm_uri=o.url, realm_name=o.realm_name
        )

    def users_me(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        max_id = max((m.id for m in self.realm.messages if self.realm.can_see(user, m)), default=-1)
        return payloads.own_user(user, max_id, email=self.realm.api_email(user))

    def _user(self, viewer: FakeUser, u: FakeUser) -> dict[str, Any]:
        """A user as `viewer` sees them: the API email, and the real address only if allowed."""
        realm = self.realm
        return payloads.user(
            u, email=realm.api_email(u), delivery_email=u.email if realm.sees_email(viewer, u) else None
        )

    def users(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        return {**payloads.OK, "members": [self._user(user, u) for u in self.realm.users.values()]}

    def user_by_id(self, user: FakeUser, params: dict[str, str], user_id: str) -> dict[str, Any]:
        target = self.realm.users.get(int(user_id))
        if target is None:
            raise bad_request("No such user")
        return {**payloads.OK, "user": self._user(user, target)}

    def user_by_email(self, user: FakeUser, params: dict[str, str], email: str) -> dict[str, Any]:
        """By API email, or by the real address where the caller may see it (NOTES "Hidden email addresses")."""
        target = self.realm.user_for(user, unquote(email))
        if target is None:
            raise bad_request("No such user")
        return {**payloads.OK, "user": self._user(user, target)}

    def user_groups(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        """Members and administrators only (NOTES "User groups"): bots learn groups from register."""
        if user.is_bot or user.role == 600:
            raise bad_request("This endpoint does not accept bot requests.")
        return {**payloads.OK, "user_groups": [payloads.group(g) for g in self.realm.groups.values()]}

    def get_stream_id(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        name = params.get("stream")
        if name is None:
            raise ApiError(400, "REQUEST_VARIABLE_MISSING", "Missing 'stream' argument", var_name="stream")
        s = self.realm.stream_by_name(name)
        if s is None or not self.realm.can_access_stream(user, s):
            raise bad_request(f"Invalid stream name '{name}'")
        return {**payloads.OK, "stream_id": s.stream_id}

    def streams(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        include_public = _bool_param(params, "include_public", True)
        include_web_public = _bool_param(params, "include_web_public", False)
        include_subscribed = _bool_param(params, "include_subscribed", True)
        include_all = _bool_param(params, "include_all_active", False)
        out = []
        for s in self.realm.streams.values():
            if (
                include_all
                or (include_public and not s.invite_only)
                or (include_web_public and s.is_web_public)
                or (include_subscribed and user.user_id in s.subscribers)
            ):
                out.append(payloads.stream(s, self.realm.first_message_id(s)))
        return {**payloads.OK, "streams": out}

    def subscriptions(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        include = _bool_param(params, "include_subscribers", False)
        subs = [
            payloads.subscription(s, self.realm.first_message_id(s), include)
            for s in self.realm.streams.values()
            if user.user_id in s.subscribers
        ]
        return {**payloads.OK, "subscriptions": subs}

    def register(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        event_types = _json_param(params, "event_types")
        narrow = parse_narrow(_json_param(params, "narrow", []))
        fetch = _json_param(params, "fetch_event_types", event_types)
        lifespan = _int_param(params, "queue_lifespan_secs")
        q = self.realm.register(
            user,
            event_types=event_types,
            narrow=narrow,
            apply_markdown=_bool_param(params, "apply_markdown", False),
            all_public_streams=_bool_param(params, "all_public_streams", False),
            lifespan=float(lifespan) if lifespan else None,
        )
        o = self.owner
        body: dict[str, Any] = {
            **payloads.OK,
            "queue_id": q.queue_id,
            "last_event_id": -1,
            "zulip_version": o.zulip_version,
            "zulip_feature_level": o.feature_level,
            "zulip_merge_base": o.zulip_version,
        }
        wanted = set(fetch) if fetch is not None else {"realm", "subscription", "message"}
        if "realm" in wanted:
            body.update(
                max_message_length=self.realm.max_message_length,
                max_file_upload_size_mib=self.realm.max_file_upload_size_mib,
                max_topic_length=60,
                max_stream_name_length=60,
                max_stream_description_length=1024,
                event_queue_longpoll_timeout_seconds=max(1, round(self.realm.heartbeat * 1.8)),
                realm_name=o.realm_name,
                realm_uri=o.url,
            )
        if "subscription" in wanted:
            body["subscriptions"] = [
                payloads.subscription(s, self.realm.first_message_id(s), True)
                for s in self.realm.streams.values()
                if user.user_id in s.subscribers
            ]
            body["unsubscribed"] = []
            body["never_subscribed"] = [
                {**payloads.stream(s, self.realm.first_message_id(s)), "subscribers": sorted(s.subscribers)}
                for s in self.realm.streams.values()
                if user.user_id not in s.subscribers and not s.invite_only
            ]
            for item in body["never_subscribed"]:
                item.pop("is_default", None)
        if "realm_user_groups" in wanted:
            body["realm_user_groups"] = [payloads.group(g) for g in self.realm.groups.values()]
        if "message" in wanted:
            body["max_message_id"] = max((m.id for m in self.realm.messages if self.realm.can_see(user, m)), default=-1)
        return body

    def get_events(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        queue_id = params.get("queue_id")
        last_event_id = _int_param(params, "last_event_id")
        events = self.realm.get_events(user, queue_id, last_event_id, _bool_param(params, "dont_block", False))
        return {**payloads.OK, "events": events, "queue_id": queue_id}

    def delete_events(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        self.realm.delete_queue(user, params.get("queue_id"))
        return dict(payloads.OK)

    def get_messages(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        num_before = _int_param(params, "num_before", required=True)
        num_after = _int_param(params, "num_after", required=True)
        assert num_before is not None and num_after is not None
        if num_before < 0 or num_after < 0 or num_before + num_after > 5000:
            raise bad_request("Too many messages requested (maximum 5000).")
        anchor = params.get("anchor", "newest")
        if _bool_param(params, "use_first_unread_anchor", False):
            anchor = "first_unread"
        return self.realm.query(
            user,
            narrow=parse_narrow(_json_param(params, "narrow", [])),
            anchor=anchor,
            num_before=num_before,
            num_after=num_after,
            include_anchor=_bool_param(params, "include_anchor", True),
            apply_markdown=_bool_param(params, "apply_markdown", True),
        )

    def get_message(self, user: FakeUser, params: dict[str, str], message_id: str) -> dict[str, Any]:
        """`GET /messages/{message_id}` (feature level 120+: the message object, and `raw_content`)."""
        m = self.realm.message(user, int(message_id))
        rendered = self.realm.render(m, _bool_param(params, "apply_markdown", True))
        return {**payloads.OK, "raw_content": m.content, "message": {**rendered, "flags": self.realm._flags(user, m)}}

    def update_message(self, user: FakeUser, params: dict[str, str], message_id: str) -> dict[str, Any]:
        """`PATCH /messages/{message_id}`: a change of content, or a move to another topic and/or
        stream (`topic`, `stream_id`, `propagate_mode`); not both at once in the fake."""
        if "topic" in params or "stream_id" in params:
            if "content" in params:
                raise bad_request("The fake Zulip does not edit and move a message at once")
            self.realm.move(
                user,
                int(message_id),
                topic=params.get("topic"),
                stream_id=_int_param(params, "stream_id"),
                propagate_mode=params.get("propagate_mode", "change_one"),
            )
            return dict(payloads.OK)
        self.realm.edit(user, int(message_id), params.get("content"))
        return dict(payloads.OK)

    def post_messages(self, user: FakeUser, params: dict[str, str]) -> dict[str, Any]:
        type_ = params.get("type")
        if type_ is None:
            raise ApiError(400, "REQUEST_VARIABLE_MISSING", "Missing 'type' argument", var_name="type")
        if "to" not in params:
            raise ApiError(400, "REQUEST_VARIABLE_MISSING", "Missing 'to' argument", var_name="to")
        raw_to = params["to"]
        try:
            to: Any = json.loads(raw_to)
        except ValueError:
            to = raw_to
        m = self.realm.post(
            user,
            type_=type_,
            to=to,
            content=params.get("content"),
            topic=params.get("topic", params.get("subject")),
            client=self.owner._current_client.get(),
        )
        return {**payloads.OK, "id": m.id}


class _ClientName(threading.local):
    value = "website"

    def get(self) -> str:
        return self.value


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: Any) -> None:
        self.owner = owner
        self.open_sockets: set[socket.socket] = set()
        self._sock_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sock_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sock_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def kill_connections(self) -> None:
        with self._sock_lock:
            sockets = list(self.open_sockets)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("fake zulip: " + format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        form: dict[str, Any] = {}
        ctype = self.headers.get("Content-Type") or ""
        if parts.path.startswith("/user_uploads/") and method == "GET":
            self._serve_upload(unquote(parts.path))
            return
        uploads: list[tuple[str, bytes]] = []
        if raw and ctype.startswith("multipart/form-data"):
            # Zulip takes the one file of the body whatever its field is called (the `zulip` client
            # names it after the file); the record names it as the OpenAPI description does.
            uploads = _multipart_files(ctype, raw)
            form = {"filename": f"<{sum(len(d) for _n, d in uploads)} bytes>"}
        elif raw and "json" not in ctype:
            form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        if parts.path.startswith("/_fake/"):
            self._control(parts.path[len("/_fake/") :], method, raw)
            return
        if not parts.path.startswith("/api/v1/"):
            self._send_json(404, payloads.error("BAD_REQUEST", "Not Found"))
            return
        path = parts.path[len("/api/v1") :]
        if not owner._wait_until_answering(method, path):  # the request on its way in: not handled yet
            self._drop()
            return
        record = RequestRecord(method, path, query, form, None, None, None)
        if owner.round_trip:
            time.sleep(owner.round_trip / 2)  # the request on its way in
        owner.realm.collect_garbage()
        if owner.before_request is not None:
            owner.before_request(method, path, {**query, **form})

        fault = owner.faults.take(method, path, {**query, **form})
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "drop":
                owner._record(record)
                self._drop()
                return
            elif fault.kind == "status":
                record.status = fault.status
                owner._record(record)
                if not owner._wait_until_answering(method, path):
                    self._drop()
                    return
                if fault.body == "json":
                    self._send_json(fault.status, payloads.error("BAD_REQUEST", "Internal server error"))
                else:
                    self._send_bytes(fault.status, PROXY_ERROR_PAGE, "text/html")
                return

        headers: dict[str, str] = {}
        try:
            fn, path_args = owner.api.route(method, path)
            user = None
            if path != "/server_settings":
                user = self._authenticate()
                record.user = user.email
                verdict = owner.rate_limiter.check(user.email) if owner.rate_limiter else None
                if verdict is not None:
                    headers = {
                        "X-RateLimit-Limit": str(verdict.limit),
                        "X-RateLimit-Remaining": str(verdict.remaining),
                        "X-RateLimit-Reset": str(verdict.reset),
                    }
                    if not verdict.allowed:
                        owner._count_rate_limited(record)
                        headers["Retry-After"] = f"{verdict.retry_after:.3f}"
                        raise ApiError(
                            429,
                            "RATE_LIMIT_HIT",
                            "API usage exceeded rate limit",
                            **{"retry-after": verdict.retry_after},
                        )
            owner._current_client.value = self.headers.get("User-Agent", "website").split(" ")[0]
            status, body = 200, fn(user, {**query, **form, **({"_files": uploads} if uploads else {})}, **path_args)
        except ApiError as exc:
            status, body = exc.status, exc.body
        record.status, record.response = status, body
        owner._record(record)
        if fault is not None and fault.kind == "drop_after":
            record.status = None
            self._drop()
            return
        if owner.round_trip:
            time.sleep(owner.round_trip / 2)  # the answer on its way back
        if not owner._wait_until_answering(method, path):  # handled, but the answer never leaves
            self._drop()
            return
        self._send_json(status, body, headers)

    def _authenticate(self) -> FakeUser:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            raise ApiError(401, "UNAUTHORIZED", "Missing 'Authorization' header.")
        try:
            email, _, key = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except ValueError:
            raise ApiError(401, "UNAUTHORIZED", "Invalid authorization header.") from None
        realm = self.server.owner.realm
        # The account's real address (how bots and most clients log in) or its API email.
        user = realm.user_by_email(email) or next(
            (u for u in realm.users.values() if realm.api_email(u).lower() == email.strip().lower()), None
        )
        if user is None or user.api_key != key:
            raise ApiError(401, "INVALID_API_KEY", "Invalid API key")
        if not user.is_active:
            raise ApiError(401, "USER_DEACTIVATED", "Account is deactivated")
        return user

    def _serve_upload(self, path: str) -> None:
        """`GET /user_uploads/…` (the file itself, not an API endpoint: not among the API records) with
        the API's Basic auth: the file to whoever may read it, else 404 as Zulip answers."""
        owner = self.server.owner
        try:
            user = self._authenticate()
            if not owner.realm.can_read_upload(user, path):
                raise ApiError(404, "BAD_REQUEST", "File not found")
        except ApiError as exc:
            self._send_json(exc.status, exc.body)
            return
        owner.downloads.append((user.email, path))
        self._send_bytes(200, owner.realm.uploads[path][1], "application/octet-stream")

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode("utf-8"), "application/json", headers)

    def _send_bytes(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    # -- control endpoints for standalone use (container tests) -----------------------
    def _control(self, action: str, method: str, raw: bytes) -> None:
        owner = self.server.owner
        try:
            args = json.loads(raw) if raw else {}
            if action == "state" and method == "GET":
                body = owner.snapshot()
            elif action == "dm" and method == "POST":
                body = {"id": owner.post_dm(args["from"], args["content"], to=args.get("to"))}
            elif action == "stream_message" and method == "POST":
                body = {"id": owner.post_stream_message(args["sender"], args["stream"], args["topic"], args["content"])}
            elif action == "make_stream_public" and method == "POST":
                owner.make_stream_public(args["name"])
                body = {}
            elif action == "expire_queues" and method == "POST":
                body = {"expired": owner.expire_queues()}
            elif action == "hold" and method == "POST":
                owner.hold_answers()
                body = {}
            elif action == "release" and method == "POST":
                owner.release_answers()
                body = {}
            elif action == "fault" and method == "POST":
                window = args.pop("for_seconds", None)
                if window is not None:
                    args["until"] = time.monotonic() + float(window)
                owner.faults.add(Fault(**args))
                body = {}
            else:
                self._send_json(404, {"error": f"unknown control {method} {action}"})
                return
        except (KeyError, TypeError, ValueError, ApiError) as exc:
            self._send_json(400, {"error": str(exc)})
            return
        self._send_json(200, body)
