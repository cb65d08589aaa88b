"""One test certificate authority (trustme) for the mail servers and their clients.

The servers present a certificate for 127.0.0.1, localhost and mail.example.com signed by
this CA; a client trusts it through `ca_file` (a PEM file a bot's settings or
`SSL_CERT_FILE` can name) or `client_context()`. The files sit in a folder of their own
that the `dovecot` user can read, because Dovecot's processes drop root.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost", "mail.example.com")


class MailTLS:
    """The CA and one server certificate, written as PEM files into `folder`."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="deskbot test mail CA")
        self.server = self.ca.issue_cert(*SERVER_NAMES)
        self.ca_file = folder / "ca.pem"
        self.cert_file = folder / "server-cert.pem"
        self.key_file = folder / "server-key.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.server.cert_chain_pems[0].write_to_path(str(self.cert_file))
        for pem in self.server.cert_chain_pems[1:]:
            pem.write_to_path(str(self.cert_file), append=True)
        self.server.private_key_pem.write_to_path(str(self.key_file))
        for path in (self.ca_file, self.cert_file):
            path.chmod(0o644)
        self.key_file.chmod(0o600)  # read by Dovecot's config process, which runs as root

    def server_context(self) -> ssl.SSLContext:
        """For the SMTP server's STARTTLS and implicit TLS."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that verifies the servers' certificate (hostname included)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context
