"""A real OAuth 2 authorization server for the tests (plain HTTP on 127.0.0.1).

`TokenIssuer` answers the token endpoint (RFC 6749: the client-credentials and refresh-token
grants, the errors of §5.2) and the introspection endpoint (RFC 7662), which Dovecot's
`oauth2` passdb calls for each XOAUTH2/OAUTHBEARER login and the submission server asks
through `valid()`. Switches for the failure tests: `revoke_all()`, a short `token_lifetime`,
`fail_next()`; `requests` and `introspections` say what was asked.

    with TokenIssuer() as issuer:
        issuer.register_client("deskbot-test", "s3cret", "support@example.com")
        httpx.post(issuer.token_url, data={"grant_type": "client_credentials", ...})

The port is taken when the issuer is made (Dovecot's configuration names the URL before
anything starts), and kept across `stop()` and `start()`, as the Dovecot's ports are.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.server
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote_plus

HOST = "127.0.0.1"
FORM = "application/x-www-form-urlencoded"


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400, *, basic: bool = False) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status, self.basic = error, description, status, basic


@dataclass
class _Client:
    secret: str
    username: str
    scope: str | None


@dataclass
class _RefreshToken:
    client_id: str
    username: str
    revoked: bool = False


@dataclass
class _AccessToken:
    username: str
    client_id: str
    scope: str | None
    expires_at: float  # time.monotonic()
    revoked: bool = False


class TokenIssuer:
    """The authorization server; `start()` it (or use it as a context manager), `stop()` it."""

    def __init__(self, *, host: str = HOST, token_lifetime: float = 3600, rotate_refresh_tokens: bool = True) -> None:
        self.host = host
        self.token_lifetime = token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.introspections = 0
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._requests: list[tuple[str, str]] = []
        self._failures: list[tuple[int, dict[str, Any] | str]] = []
        self._server: http.server.ThreadingHTTPServer | None = self._make_server(0)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    # ---- life cycle -------------------------------------------------------------------------

    def _make_server(self, port: int) -> http.server.ThreadingHTTPServer:
        issuer = self

        class Handler(_Handler):
            pass

        Handler.issuer = issuer
        server = http.server.ThreadingHTTPServer((self.host, port), Handler)
        server.daemon_threads = True  # a client that never finishes its request must not hold up stop()
        return server

    def start(self) -> TokenIssuer:
        """Serve (again, on the same port after a `stop()`)."""
        if self._thread is not None:
            return self
        if self._server is None:
            self._server = self._make_server(self.port)
        # serve_forever looks for shutdown() once per poll_interval: 0.5 s by default, per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="oauth-issuer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering: new connections are refused until `start()`; the tokens stay."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is None:
            return
        if thread is not None:
            server.shutdown()
            thread.join(timeout=10)
        server.server_close()

    close = stop

    def __enter__(self) -> TokenIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.base_url}/introspect"

    # ---- what the tests set up --------------------------------------------------------------

    def register_client(self, client_id: str, client_secret: str, username: str, scope: str | None = None) -> None:
        """A confidential client allowed the client-credentials grant, its tokens logging in as
        `username`; with `scope`, a request for any other scope gets `invalid_scope`."""
        with self._lock:
            self._clients[client_id] = _Client(client_secret, username, scope)

    def register_refresh_token(self, refresh_token: str, client_id: str, username: str) -> None:
        """The refresh grant with `refresh_token` (by `client_id`) gives tokens for `username`.
        The client's secret may be left out; if sent, it must be `client_id`'s registered one."""
        with self._lock:
            self._refresh_tokens[refresh_token] = _RefreshToken(client_id, username)

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """The refresh grant with it gets `invalid_grant` from now on (the user withdrew consent)."""
        with self._lock:
            if refresh_token in self._refresh_tokens:
                self._refresh_tokens[refresh_token].revoked = True

    def revoke_all(self) -> None:
        """Every access token issued so far stops working (refresh tokens stay good)."""
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    def fail_next(self, status: int, body: dict[str, Any] | str, count: int = 1) -> None:
        """The next `count` token requests get `status` with `body` (a dict as JSON, a str as
        text/plain, as a proxy's error page would come), whatever they ask."""
        with self._lock:
            self._failures.extend([(status, body)] * count)

    def issue(self, username: str, *, client_id: str = "", scope: str | None = None) -> str:
        """A new access token for `username`, as if a grant had given it (for tests of the
        servers that need a token without a round trip)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _AccessToken(username, client_id, scope, time.monotonic() + self.token_lifetime)
        return token

    # ---- what happened ----------------------------------------------------------------------

    def valid(self, token: str) -> str | None:
        """The username of an issued, unexpired, unrevoked access token; None for any other."""
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None or issued.revoked or time.monotonic() >= issued.expires_at:
                return None
            return issued.username

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(grant_type, client_id) of every token request so far, failed ones included."""
        with self._lock:
            return list(self._requests)

    # ---- the endpoints (called on the server's threads) -------------------------------------

    def _token_request(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        client_id = basic[0] if basic is not None else form.get("client_id", "")
        with self._lock:
            self._requests.append((grant_type, client_id))
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            raise _Canned(*failure)
        if basic is not None and form.get("client_secret") is not None:
            raise OAuthError("invalid_request", "more than one client authentication method")
        if basic is not None and form.get("client_id", basic[0]) != basic[0]:
            raise OAuthError("invalid_request", "client_id differs from the Authorization header's")
        secret = basic[1] if basic is not None else form.get("client_secret")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is missing")
        if grant_type == "client_credentials":
            return self._client_credentials(client_id, secret, form.get("scope"), basic=basic is not None)
        if grant_type == "refresh_token":
            return self._refresh(
                client_id, secret, form.get("refresh_token"), form.get("scope"), basic=basic is not None
            )
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    def _authenticate_client(self, client_id: str, secret: str | None, *, basic: bool) -> _Client:
        with self._lock:
            client = self._clients.get(client_id)
        if client is None or secret is None or not secrets.compare_digest(client.secret, secret):
            raise OAuthError("invalid_client", "client authentication failed", 401, basic=basic)
        return client

    def _client_credentials(self, client_id: str, secret: str | None, scope: str | None, *, basic: bool) -> dict:
        if not client_id:
            raise OAuthError("invalid_request", "client_id is missing")
        client = self._authenticate_client(client_id, secret, basic=basic)
        if client.scope is not None and scope is not None and scope != client.scope:
            raise OAuthError("invalid_scope", f"scope {scope!r} is not granted to this client")
        return self._grant(client.username, client_id, scope if scope is not None else client.scope)

    def _refresh(
        self, client_id: str, secret: str | None, refresh_token: str | None, scope: str | None, *, basic: bool
    ) -> dict:
        if not refresh_token:
            raise OAuthError("invalid_request", "refresh_token is missing")
        if not client_id:
            raise OAuthError("invalid_request", "client_id is missing")
        if secret is not None:  # optional here (a public client has none), but checked if sent
            self._authenticate_client(client_id, secret, basic=basic)
        with self._lock:
            grant = self._refresh_tokens.get(refresh_token)
        if grant is None or grant.revoked or grant.client_id != client_id:
            raise OAuthError("invalid_grant", "the refresh token is invalid, expired, revoked or another client's")
        answer = self._grant(grant.username, client_id, scope)
        if self.rotate_refresh_tokens:
            new = secrets.token_urlsafe(32)
            self.register_refresh_token(new, client_id, grant.username)  # the old one stays good
            answer["refresh_token"] = new
        return answer

    def _grant(self, username: str, client_id: str, scope: str | None) -> dict[str, Any]:
        lifetime = self.token_lifetime
        answer: dict[str, Any] = {
            "access_token": self.issue(username, client_id=client_id, scope=scope),
            "token_type": "Bearer",
            # A JSON integer as real servers send, unless a test set a fraction of a second.
            "expires_in": int(lifetime) if float(lifetime).is_integer() else lifetime,
        }
        if scope is not None:
            answer["scope"] = scope
        return answer

    def _introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            self.introspections += 1
        username = self.valid(token)
        if username is None:
            return {"active": False}
        return {"active": True, "username": username, "token_type": "Bearer"}


class _Canned(Exception):
    """A `fail_next` answer."""

    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class _Handler(http.server.BaseHTTPRequestHandler):
    issuer: TokenIssuer
    # HTTP/1.0: one request per connection, so a stopped issuer serves no kept-alive client.
    protocol_version = "HTTP/1.0"
    server_version = "deskbot-test-oauth"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # the tests read `requests`; stderr noise would only hide a failure's output

    def do_GET(self) -> None:
        self._send(405, {"error": "invalid_request", "error_description": "use POST"}, allow="POST")

    def do_POST(self) -> None:
        try:
            form = self._form()
            if self.path == "/token":
                self._send(200, self.issuer._token_request(form, self._basic()))
            elif self.path == "/introspect":
                self._send(200, self.issuer._introspect(form.get("token", "")))
            else:
                self._send(404, {"error": "not_found"})
        except _Canned as canned:
            self._send(canned.status, canned.body)
        except OAuthError as error:
            extra = {"www_authenticate": 'Basic realm="token"'} if error.basic else {}
            self._send(error.status, {"error": error.error, "error_description": error.description}, **extra)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != FORM:
            raise OAuthError("invalid_request", f"the body must be {FORM}")
        try:
            fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError) as exc:
            raise OAuthError("invalid_request", "the body is not a valid form") from exc
        if any(len(values) > 1 for values in fields.values()):
            raise OAuthError("invalid_request", "a parameter is repeated")  # RFC 6749 §3.2
        return {name: values[0] for name, values in fields.items()}

    def _basic(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", f"unsupported authentication scheme {scheme!r}", 401, basic=True)
        try:
            client_id, colon, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401, basic=True) from exc
        if not colon:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401, basic=True)
        # RFC 6749 §2.3.1: both are form-urlencoded before Basic encodes them.
        return unquote_plus(client_id), unquote_plus(secret)

    def _send(self, status: int, body: dict[str, Any] | str, *, allow: str = "", www_authenticate: str = "") -> None:
        if isinstance(body, str):
            data, content_type = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(body).encode("utf-8"), "application/json;charset=UTF-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")  # RFC 6749 §5.1
        self.send_header("Pragma", "no-cache")
        if allow:
            self.send_header("Allow", allow)
        if www_authenticate:
            self.send_header("WWW-Authenticate", www_authenticate)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)
