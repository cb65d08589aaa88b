"""The whole mail set-up in one object: Dovecot, the submission server, an OAuth 2 token issuer
both take XOAUTH2 tokens from, the support mailbox and two customers, and the settings a bot
takes (SPEC §6). Used by tests/email/conftest.py, the self-tests and the email benchmarks
(which run outside pytest).

    with MailServers() as mail:
        mail.customers[0].send("Our API is down", "open\\nNothing answers since 9:00.")
        env = mail.env()          # EMAIL_ADDRESS, EMAIL_IMAP_URL, … for `deskbot run`
        env = mail.oauth_env()    # the same with EMAIL_OAUTH2_* instead of EMAIL_PASSWORD
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Literal

from tests.mail.dovecot import Dovecot
from tests.mail.mailbox import Mailbox
from tests.mail.oauth import TokenIssuer
from tests.mail.smtp import SubmissionServer
from tests.mail.tls import MailTLS

SUPPORT_ADDRESS = "support@example.com"
SUPPORT_NAME = "Example Support"
# Two customers of different companies, one writing in English and one in Portuguese.
CUSTOMERS = (
    ("ana.lima@customer.example", "Ana Lima"),
    ("bruno.costa@cliente.example.pt", "Bruno Costa"),
)
# The support mailbox's OAuth 2 client (client-credentials grant, as Microsoft 365 gives a
# service); the scope is Exchange Online's, the one such a client asks for.
OAUTH_CLIENT_ID = "deskbot-test"
OAUTH_SCOPE = "https://outlook.office365.com/.default"


class MailServers:
    """Start with `start()` or `with MailServers() as mail:`; `close()` stops and removes all."""

    def __init__(self, *, plain: bool = False) -> None:
        """`plain`: servers with no TLS at all (IMAP without STARTTLS, SMTP without STARTTLS,
        no IMAPS or SMTPS port), which a bot may use only on a loopback host."""
        self.plain = plain
        self._tls_folder = Path(tempfile.mkdtemp(prefix="deskbot-mail-tls-"))
        self.tls = MailTLS(self._tls_folder)
        # Made first: its port (held from here on) goes into the Dovecot's configuration.
        self.oauth = TokenIssuer()
        self.dovecot = Dovecot(self.tls, plain=plain, oauth2_introspection_url=self.oauth.introspection_url)
        self.smtp = SubmissionServer(self.dovecot, plain=plain, oauth=self.oauth, oauth_scope=OAUTH_SCOPE)
        self.support = self.add_user(SUPPORT_ADDRESS, SUPPORT_NAME)
        self.customers = [self.add_user(address, name) for address, name in CUSTOMERS]
        self.oauth_client_secret = secrets.token_urlsafe(24)
        self.oauth.register_client(OAUTH_CLIENT_ID, self.oauth_client_secret, SUPPORT_ADDRESS, scope=OAUTH_SCOPE)
        # For a bot given a refresh token once the mailbox's owner consented (secret optional).
        self.oauth_refresh_token = secrets.token_urlsafe(32)
        self.oauth.register_refresh_token(self.oauth_refresh_token, OAUTH_CLIENT_ID, SUPPORT_ADDRESS)

    def start(self) -> MailServers:
        self.oauth.start()
        try:
            self.dovecot.start()
            try:
                self.smtp.start()
            except BaseException:
                self.dovecot.close()
                raise
        except BaseException:
            self.oauth.stop()
            raise
        return self

    def close(self) -> None:
        try:
            self.smtp.stop()
        finally:
            try:
                self.dovecot.close()
            finally:
                self.oauth.stop()
                shutil.rmtree(self._tls_folder, ignore_errors=True)

    def __enter__(self) -> MailServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add_user(self, address: str, name: str = "", password: str | None = None) -> Mailbox:
        """A new mailbox on the Dovecot (a customer, or anyone else) with a random password."""
        password = password or secrets.token_urlsafe(12)
        self.dovecot.add_user(address, password)
        return Mailbox(self.dovecot, address, password, name=name, submission=self.smtp, default_to=SUPPORT_ADDRESS)

    # ---- what a bot is given ----------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        """The test CA's PEM file: `SSL_CERT_FILE` for a bot process, or a CA-file setting."""
        return self.tls.ca_file

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the test CA (for a bot started in the test's process)."""
        return self.tls.client_context()

    @property
    def imap_url(self) -> str:
        """IMAP with STARTTLS offered (none with `plain`); plain-text login allowed too."""
        return f"imap://{self.dovecot.host}:{self.dovecot.imap_port}"

    @property
    def imaps_url(self) -> str:
        if self.plain:
            raise ValueError("plain mail servers have no IMAPS port")
        return f"imaps://{self.dovecot.host}:{self.dovecot.imaps_port}"

    @property
    def smtp_url(self) -> str:
        """SMTP with STARTTLS (AUTH only after it); with `plain`, no STARTTLS and AUTH in plain text."""
        return f"smtp://{self.smtp.host}:{self.smtp.port}"

    @property
    def smtps_url(self) -> str:
        if self.plain:
            raise ValueError("plain mail servers have no SMTPS port")
        return f"smtps://{self.smtp.host}:{self.smtp.tls_port}"

    def env(self, tls: Literal["starttls", "implicit"] = "starttls") -> dict[str, str]:
        """The bot's email settings (SPEC §6) for the support mailbox, plus `SSL_CERT_FILE` so
        a `deskbot run` child process trusts the test CA (Python's default context reads it, as
        an operator's would); `ca_file` is there for a bot's `EMAIL_CA_FILE` instead."""
        implicit = tls == "implicit"
        return {
            "EMAIL_ADDRESS": SUPPORT_ADDRESS,
            "EMAIL_IMAP_URL": self.imaps_url if implicit else self.imap_url,
            "EMAIL_SMTP_URL": self.smtps_url if implicit else self.smtp_url,
            "EMAIL_USERNAME": SUPPORT_ADDRESS,
            "EMAIL_PASSWORD": self.support.password,
            "SSL_CERT_FILE": os.fspath(self.ca_file),
        }

    def oauth_env(self, tls: Literal["starttls", "implicit"] = "starttls") -> dict[str, str]:
        """`env()` with the support mailbox's OAuth 2 client (client-credentials grant at the
        test issuer) instead of `EMAIL_PASSWORD`: the bot logs in to both servers with XOAUTH2."""
        env = self.env(tls)
        del env["EMAIL_PASSWORD"]
        env.update(
            EMAIL_OAUTH2_TOKEN_URL=self.oauth.token_url,
            EMAIL_OAUTH2_CLIENT_ID=OAUTH_CLIENT_ID,
            EMAIL_OAUTH2_CLIENT_SECRET=self.oauth_client_secret,
            EMAIL_OAUTH2_SCOPE=OAUTH_SCOPE,
        )
        return env
