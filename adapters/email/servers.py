"""Where the mailbox is: `EMAIL_IMAP_URL` and `EMAIL_SMTP_URL` read into host, port and TLS mode.

`imaps://host[:993][/FOLDER]` (TLS from the first byte) or `imap://host[:143][/FOLDER]`
(STARTTLS); `smtps://host[:465]` or `smtp://host[:587]` (STARTTLS), RFC 8314. TLS is
required: a server that does not offer STARTTLS is refused, except on a loopback host
(a mail server on the same machine, or the tests'), where plain text is allowed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

Security = Literal["tls", "starttls"]

_SCHEMES: dict[str, tuple[str, Security, int]] = {
    "imaps": ("imap", "tls", 993),
    "imap": ("imap", "starttls", 143),
    "smtps": ("smtp", "tls", 465),
    "smtp": ("smtp", "starttls", 587),
}


@dataclass(frozen=True)
class MailServer:
    protocol: Literal["imap", "smtp"]
    host: str
    port: int
    security: Security
    #: IMAP: the folder read (default INBOX).
    folder: str = "INBOX"

    @property
    def loopback(self) -> bool:
        """A host on this machine: the one place where a server without TLS is accepted."""
        return loopback_host(self.host)

    def __str__(self) -> str:
        scheme = self.protocol + ("s" if self.security == "tls" else "")
        return f"{scheme}://{self.host}:{self.port}"


def loopback_host(host: str) -> bool:
    """Whether `host` is this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_server_url(url: str, protocol: Literal["imap", "smtp"]) -> MailServer:
    """`url` as a server of `protocol`; ValueError says what is wrong (never echoing a password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"expected {_form(protocol)}") from None
    known = _SCHEMES.get(parts.scheme.lower())
    if known is None or known[0] != protocol:
        raise ValueError(f"expected {_form(protocol)}, not a {parts.scheme or 'scheme-less'} URL")
    if not parts.hostname:
        raise ValueError(f"expected {_form(protocol)}: the host is missing")
    if parts.username or parts.password:
        raise ValueError("the login belongs in EMAIL_USERNAME and EMAIL_PASSWORD, not in the URL")
    if parts.query or parts.fragment:
        raise ValueError(f"expected {_form(protocol)}, without ? or #")
    folder = unquote(parts.path.strip("/"))
    if protocol == "smtp" and folder:
        raise ValueError(f"expected {_form(protocol)}, without a path")
    _proto, security, default_port = known
    return MailServer(protocol, parts.hostname, port or default_port, security, folder or "INBOX")


def _form(protocol: str) -> str:
    if protocol == "imap":
        return "imaps://HOST[:993][/FOLDER] or imap://HOST[:PORT][/FOLDER] (STARTTLS)"
    return "smtps://HOST[:465] or smtp://HOST[:587] (STARTTLS)"
