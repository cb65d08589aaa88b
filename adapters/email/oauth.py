"""OAuth 2 access tokens for a mailbox that takes no password (Microsoft 365, Google): SASL `XOAUTH2`.

Microsoft 365 turned password login off for IMAP and is retiring it for SMTP
submission; such a mailbox is reached with an access token instead, which the
bot asks for at the token endpoint (`EMAIL_OAUTH2_TOKEN_URL`, RFC 6749):

* the client-credentials grant (§4.4): an app registration that was given
  access to the mailbox, as Microsoft 365 has it for services that run
  unattended (scope `https://outlook.office365.com/.default`);
* the refresh-token grant (§6), when `EMAIL_OAUTH2_REFRESH_TOKEN` is set: a
  mailbox whose owner consented once (Google, or a delegated Microsoft app).
  A rotated refresh token the endpoint hands back is used from then on (kept in
  memory: the setting's own stays valid where providers rotate).

A token is used until a minute before it expires. A server that refuses it (it
was revoked early, the clocks disagree) makes the bot ask for a new one and try
once more before saying the login was refused. The endpoint's refusal (a wrong
client id or secret, an expired grant) is one line naming the settings; its
silence or a 5xx is a platform outage, retried like a mail server's.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from adapters.channel import PermanentChannelError, TransientChannelError
from adapters.email.failures import describe
from adapters.email.servers import loopback_host

if TYPE_CHECKING:  # httpx stays off the start-up path of a bot that logs in with a password
    import httpx

log = logging.getLogger("deskbot.adapters.email")

#: A token is not used in its last minute: a slow session could still be logging in with it.
EXPIRY_MARGIN = 60.0
#: A token whose answer names no lifetime is used this long (RFC 6749 §5.1 makes it optional).
DEFAULT_LIFETIME = 3600.0
#: What the settings that make the login are called, for the one-line errors.
SETTINGS = "EMAIL_OAUTH2_CLIENT_ID, EMAIL_OAUTH2_CLIENT_SECRET, EMAIL_OAUTH2_REFRESH_TOKEN and EMAIL_OAUTH2_SCOPE"


@dataclass(frozen=True)
class OAuth2Settings:
    """Where and how the bot asks for access tokens; the secrets are never shown (`__repr__`)."""

    token_url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scope: str | None = None
    refresh_token: str | None = field(default=None, repr=False)


def check_token_url(url: str) -> str:
    """`url` if it can be a token endpoint: https, or http on this machine (the tests'). ValueError says why."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("expected https://host/path of the OAuth 2 token endpoint")
    if parts.username or parts.password:
        raise ValueError("the client's credentials belong in EMAIL_OAUTH2_CLIENT_ID and _SECRET, not in the URL")
    if parts.scheme == "http" and not loopback_host(parts.hostname):
        raise ValueError("the token endpoint must use https (TLS is required off this machine)")
    return url


class TokenSource:
    """The current access token, asked for when there is none or it is about to expire (thread-safe:
    the receiving session, the sender and the Sent folder share one)."""

    def __init__(
        self,
        settings: OAuth2Settings,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        # The provider's endpoint (login.microsoftonline.com): the system's CAs, never EMAIL_CA_FILE's.
        self._verify: ssl.SSLContext = ssl.create_default_context()
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._refresh_token = settings.refresh_token

    def __repr__(self) -> str:
        return f"TokenSource({self.settings.token_url!r}, client {self.settings.client_id!r})"

    def token(self) -> str:
        """A token good for at least another minute (asked for if needed). Raises the channel's errors."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires:
                self._token, lifetime = self._ask()
                self._expires = self._clock() + max(lifetime - EXPIRY_MARGIN, 0.0)
            return self._token

    def refused(self, token: str) -> None:
        """A server refused `token`: the next `token()` asks for a new one (unless another did already)."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _ask(self) -> tuple[str, float]:
        import httpx

        s = self.settings
        form = {"client_id": s.client_id}
        if self._refresh_token:
            form |= {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
        else:
            form["grant_type"] = "client_credentials"
        if s.client_secret:
            form["client_secret"] = s.client_secret
        if s.scope:
            form["scope"] = s.scope
        try:
            response = httpx.post(s.token_url, data=form, timeout=self._timeout, verify=self._verify)
        except httpx.HTTPError as error:
            raise TransientChannelError(
                f"cannot reach the OAuth 2 token endpoint {_shown(s.token_url)} (EMAIL_OAUTH2_TOKEN_URL): "
                f"{_describe(error)}"
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientChannelError(
                f"the OAuth 2 token endpoint {_shown(s.token_url)} answered HTTP {response.status_code}"
            )
        answer = _json(response)
        if response.status_code != 200:
            error = str(answer.get("error") or f"HTTP {response.status_code}")[:100]
            said = " ".join(str(answer.get("error_description") or "").split())[:200]
            raise PermanentChannelError(
                f"the OAuth 2 token endpoint {_shown(s.token_url)} refused deskbot ({error}"
                f"{f': {said}' if said else ''}): check {SETTINGS}"
            )
        token = answer.get("access_token")
        if not isinstance(token, str) or not token or not token.isascii():
            raise PermanentChannelError(
                f"the OAuth 2 token endpoint {_shown(s.token_url)} answered no access_token: check EMAIL_OAUTH2_TOKEN_URL"
            )
        rotated = answer.get("refresh_token")
        if self._refresh_token and isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
        try:
            seconds = float(answer.get("expires_in"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            seconds = DEFAULT_LIFETIME
        if not seconds > 0:  # also NaN
            seconds = DEFAULT_LIFETIME
        log.debug("email: an OAuth 2 access token for %s s", round(seconds))
        return token, seconds


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64), as Google and Microsoft define it."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def _json(response: httpx.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _shown(url: str) -> str:
    """The endpoint without its query (where a careless URL could carry a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _describe(error: httpx.HTTPError) -> str:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    # httpx wraps (through httpcore's) the socket's or TLS's own error: said as the mail servers' are.
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    return describe(cause or error)
