"""Connections to the mailbox's servers: IMAP through `imapclient`, SMTP through `smtplib`, with TLS.

TLS is required (RFC 8314): `imaps://`/`smtps://` from the first byte, `imap://`/`smtp://`
with STARTTLS, refused when the server does not offer it, except on a loopback host,
where a server without TLS is used as it is. Certificates are checked against the
system's CAs, or `EMAIL_CA_FILE`.

Every failure becomes one line (`describe`) and one of the channel's errors: a refused
login is permanent (the password is wrong, retrying will not help), anything on the
way to it (host unknown, connection refused, TLS handshake) transient; the start-up
wait (`bot.channel_start`) names the setting when it never answers.

The login is a password (`LOGIN`, `AUTH PLAIN`/`LOGIN`), or, for a mailbox that takes
none, an OAuth 2 access token (SASL `XOAUTH2`, `adapters.email.oauth`): a token the
server refuses is replaced by a new one once before the login counts as refused.
"""

from __future__ import annotations

import imaplib
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from adapters.channel import ChannelError, PermanentChannelError, TransientChannelError

from .failures import describe
from .oauth import TokenSource, xoauth2
from .servers import MailServer

#: What a broken or vanished connection raises, in imaplib, imapclient and the socket.
CONNECTION_ERRORS = (OSError, EOFError, imaplib.IMAP4.error, IMAPClientError)

# imapclient logs every closed connection at INFO: the receiving side reconnects through outages,
# and the channel says what matters itself.
logging.getLogger("imapclient").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Login:
    """Who the bot is on both servers; never shown (see `__repr__`)."""

    username: str
    password: str
    ca_file: str | None = None
    timeout: float = 30.0
    #: Access tokens to log in with (SASL XOAUTH2) instead of the password.
    oauth2: TokenSource | None = None

    def __repr__(self) -> str:
        return f"Login({self.username!r})"

    @property
    def settings(self) -> str:
        """The settings a refused login names."""
        if self.oauth2 is None:
            return "EMAIL_USERNAME and EMAIL_PASSWORD"
        return "EMAIL_USERNAME and the OAuth 2 app's access to that mailbox (EMAIL_OAUTH2_CLIENT_ID)"

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


def open_imap(server: MailServer, login: Login) -> imapclient.IMAPClient:
    """An IMAP session, logged in (not yet in a folder). Raises the channel's errors."""
    try:
        client = imapclient.IMAPClient(
            server.host,
            port=server.port,
            ssl=server.security == "tls",
            ssl_context=login.tls_context(),
            timeout=login.timeout,
        )
    except (OSError, IMAPClientError, imaplib.IMAP4.error) as error:
        raise TransientChannelError(f"cannot reach the IMAP server {server}: {describe(error)}") from None
    try:
        if server.security == "starttls":
            if client.has_capability("STARTTLS"):
                client.starttls(login.tls_context())
            elif not server.loopback:
                raise PermanentChannelError(
                    f"the IMAP server {server} does not offer STARTTLS: use imaps:// (TLS is required)"
                )
        _imap_login(client, server, login)
    except LoginError as error:
        _close_imap(client)
        raise PermanentChannelError(
            f"the IMAP server {server} refused the login of {login.username} ({describe(error)}): "
            f"check {login.settings}"
        ) from None
    except ChannelError:
        _close_imap(client)
        raise
    except (OSError, IMAPClientError, imaplib.IMAP4.error) as error:
        _close_imap(client)
        raise TransientChannelError(f"cannot reach the IMAP server {server}: {describe(error)}") from None
    return client


def _imap_login(client: imapclient.IMAPClient, server: MailServer, login: Login) -> None:
    if login.oauth2 is None:
        client.login(login.username, login.password)
        return
    if not client.has_capability("AUTH=XOAUTH2"):
        raise PermanentChannelError(f"the IMAP server {server} offers no XOAUTH2 login: unset EMAIL_OAUTH2_TOKEN_URL")
    token = login.oauth2.token()
    try:
        client.oauth2_login(login.username, token)
    except LoginError:
        # Revoked before its time, or the clocks disagree: a new token, and one more try.
        login.oauth2.refused(token)
        client.oauth2_login(login.username, login.oauth2.token())


def _smtp_login(client: smtplib.SMTP, server: MailServer, login: Login) -> None:
    if login.oauth2 is None:
        client.login(login.username, login.password)
        return
    if "XOAUTH2" not in client.esmtp_features.get("auth", "").upper().split():
        raise PermanentChannelError(f"the SMTP server {server} offers no XOAUTH2 login: unset EMAIL_OAUTH2_TOKEN_URL")
    token = login.oauth2.token()
    try:
        _xoauth2(client, login.username, token)
    except smtplib.SMTPAuthenticationError:
        login.oauth2.refused(token)  # as for IMAP: a new token, and one more try
        _xoauth2(client, login.username, login.oauth2.token())


def _xoauth2(client: smtplib.SMTP, user: str, token: str) -> None:
    # A server refusing the token sends a challenge with its reasons; the answer to it is empty
    # (RFC 7628 §3.2.3), and then comes the 535 that smtplib raises.
    client.auth("XOAUTH2", lambda challenge=None: xoauth2(user, token) if challenge is None else "")


def _closed(*ways: Callable[[], object]) -> None:
    """Close a connection the first of `ways` that works (politely first); it may be gone already."""
    for way in ways:
        try:
            way()
            return
        except Exception:  # noqa: BLE001, S112 — a broken connection: try the next, blunter way
            continue


def _close_imap(client: imapclient.IMAPClient) -> None:
    _closed(client.shutdown)


def close_imap(client: imapclient.IMAPClient | None) -> None:
    """Log out politely if the connection still works; close it either way."""
    if client is not None:
        _closed(client.logout, client.shutdown)


def open_smtp(server: MailServer, login: Login) -> smtplib.SMTP:
    """An SMTP submission session, logged in. Raises the channel's errors."""
    try:
        if server.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                server.host, server.port, timeout=login.timeout, context=login.tls_context()
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=login.timeout)
    except (OSError, smtplib.SMTPException) as error:
        raise TransientChannelError(f"cannot reach the SMTP server {server}: {describe(error)}") from None
    try:
        client.ehlo()
        if server.security == "starttls":
            if client.has_extn("starttls"):
                client.starttls(context=login.tls_context())
                client.ehlo()
            elif not server.loopback:
                raise PermanentChannelError(
                    f"the SMTP server {server} does not offer STARTTLS: use smtps:// (TLS is required)"
                )
        if client.has_extn("auth"):
            _smtp_login(client, server, login)
        elif not server.loopback:
            raise PermanentChannelError(f"the SMTP server {server} offers no login (AUTH)")
    except smtplib.SMTPAuthenticationError as error:
        close_smtp(client)
        raise PermanentChannelError(
            f"the SMTP server {server} refused the login of {login.username} ({describe(error)}): "
            f"check {login.settings}"
        ) from None
    except ChannelError:
        close_smtp(client)
        raise
    except (OSError, smtplib.SMTPException) as error:
        close_smtp(client)
        raise TransientChannelError(f"cannot reach the SMTP server {server}: {describe(error)}") from None
    return client


def close_smtp(client: smtplib.SMTP | None) -> None:
    """QUIT politely if the connection still works; close it either way."""
    if client is not None:
        _closed(client.quit, client.close)
