"""The test mail servers as a program, for tests outside pytest (deploy/test-image.sh):

    python -m tests.mail --user support@example.com:SECRET --user alice@customer.example:SECRET2 \\
        --info /tmp/mail.env

starts a Dovecot (IMAP with STARTTLS, IMAPS, LMTP) and the submission server (STARTTLS,
implicit TLS, AUTH) on 127.0.0.1, each `--user` a mailbox with that password, and, once both
answer, writes the settings a bot and a test need to `--info` as shell assignments (written
whole, then renamed: a reader never sees half a file) and prints them: MAIL_IMAP_URL,
MAIL_IMAPS_URL, MAIL_SMTP_URL, MAIL_SMTPS_URL, MAIL_LMTP_PORT, MAIL_CA_FILE (the test CA,
for EMAIL_CA_FILE or SSL_CERT_FILE), and the OAuth 2 token endpoint that logs support@example.com
in with XOAUTH2 instead of a password (tests/mail/oauth.py): MAIL_OAUTH2_TOKEN_URL,
MAIL_OAUTH2_CLIENT_ID, MAIL_OAUTH2_CLIENT_SECRET, MAIL_OAUTH2_SCOPE, for the EMAIL_OAUTH2_*
settings of the same names. It runs until SIGTERM or SIGINT, then stops both
servers and removes their folders. Like every Dovecot of tests/mail, it needs root.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from tests.mail.servers import OAUTH_CLIENT_ID, OAUTH_SCOPE, MailServers


def _user(value: str) -> tuple[str, str]:
    address, colon, password = value.partition(":")
    if not colon or "@" not in address or not password:
        raise argparse.ArgumentTypeError(f"expected ADDRESS:PASSWORD, got {value.split(':', 1)[0]!r}:…")
    return address, password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mail", description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", type=_user, action="append", default=[], help="ADDRESS:PASSWORD, a mailbox")
    parser.add_argument("--info", type=Path, help="write the servers' settings here as shell assignments")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with MailServers() as mail:
        for address, password in args.user:
            mail.dovecot.add_user(address, password)
        info = {
            "MAIL_IMAP_URL": mail.imap_url,
            "MAIL_IMAPS_URL": mail.imaps_url,
            "MAIL_SMTP_URL": mail.smtp_url,
            "MAIL_SMTPS_URL": mail.smtps_url,
            "MAIL_LMTP_PORT": str(mail.dovecot.lmtp_port),
            "MAIL_CA_FILE": os.fspath(mail.ca_file),
            "MAIL_OAUTH2_TOKEN_URL": mail.oauth.token_url,
            "MAIL_OAUTH2_CLIENT_ID": OAUTH_CLIENT_ID,
            "MAIL_OAUTH2_CLIENT_SECRET": mail.oauth_client_secret,
            "MAIL_OAUTH2_SCOPE": OAUTH_SCOPE,
        }
        text = "".join(f"{key}={shlex.quote(value)}\n" for key, value in info.items())
        if args.info is not None:
            partial = args.info.with_name(args.info.name + ".partial")
            partial.write_text(text)
            partial.replace(args.info)
        print(text, end="", flush=True)
        while not stop.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
