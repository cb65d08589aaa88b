"""One line for what went wrong on the way to a mail server or a token endpoint, without a traceback.

Shared by the IMAP and SMTP connections (`transport`), the token source (`oauth`) and the
channel's logs; a module of its own because `transport` uses `oauth`.
"""

from __future__ import annotations

import smtplib
import socket
import ssl


def describe(error: BaseException) -> str:
    """One line for a network, TLS or protocol failure, without a traceback."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed ({error.reason or error})"
    if isinstance(error, socket.gaierror):
        return "host not found"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else error.smtp_error
        return f"SMTP {error.smtp_code} {' '.join(str(text).split())[:200]}"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "connection closed by the server"
    first = error.args[0] if error.args else None
    # imaplib's errors carry the server's line as bytes, and imapclient's wrap that in a str: "b'…'".
    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(error)
    if len(text) > 2 and text[:2] in ("b'", 'b"') and text[-1] == text[1]:
        text = text[2:-1]
    return (" ".join(text.split()) or type(error).__name__)[:200]
