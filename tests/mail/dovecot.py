"""A real Dovecot (IMAP + LMTP) with a configuration of its own, for tests, drills and benchmarks.

`Dovecot()` writes everything into one temporary folder (configuration, users file, maildirs,
run and state folders, log), starts `dovecot -F -c …` as a child process and waits until IMAP
answers. It listens on 127.0.0.1 only, on free ports:

* `imap_port`: IMAP, plain, offering STARTTLS (the login works with or without it);
* `imaps_port`: IMAP over implicit TLS (0 with `plain=True`: no TLS at all);
* `lmtp_port`: LMTP, how mail is put into a mailbox (`deliver`).

Logins: PLAIN and LOGIN with the users' passwords (`add_user`); given an
`oauth2_introspection_url`, also XOAUTH2 and OAUTHBEARER with bearer tokens (tests/mail/oauth.py).

TLS uses the certificate of a `MailTLS` (trustme). Every mailbox has a `Sent` folder with the
`\\Sent` special-use attribute (created on first login), as Dovecot setups in the field do.

Permissions (see ../shared/reference/email/NOTES.md): Dovecot runs its mail processes as the
`dovecot` user, so the folder must be traversable by it and the maildirs owned by it; the
folder is made 0755 under the system temporary folder (pytest's own are 0700). Starting it
needs root, as .ci/run and CI run.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import email.utils
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

from tests.mail.tls import MailTLS

HOST = "127.0.0.1"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
START_TIMEOUT = 15.0
LOG_TAIL_LINES = 80

CONFIG = """\
# Written by tests/mail/dovecot.py for one test run; nothing here is read from /etc/dovecot.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = {host}
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
auth_username_format = %Lu
auth_verbose = yes
auth_cache_size = 0
mail_location = maildir:{root}/mail/%u
# A test's mail need not survive a power cut; it must survive Dovecot being killed, which
# the page cache sees to. fsync per delivery would make every test and benchmark wait on the disk.
mail_fsync = never
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
first_valid_gid = 1
default_internal_user = dovecot
default_login_user = dovenull
# No "Server shutting down" grace period: a stop cuts the clients at once, as a crash would.
shutdown_clients = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
{passwd_mechanisms}}}
{oauth2_passdb}userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
{imaps}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp_port}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@example.com
}}
namespace inbox {{
  inbox = yes
  separator = .
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = create
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
}}
"""


TLS_SETTINGS = """\
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2"""

# A password must not pass as a bearer token (XOAUTH2 would try it against this file too),
# nor a token as a password. "none" is the lookup without a login, the static userdb's check
# that a user exists (LMTP delivery): without it every delivery fails.
PASSWD_MECHANISMS = """\
  mechanisms = plain login none
"""

OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {args}
}}
"""

# Read by the auth process; the issuer's introspection endpoint answers for the tokens.
OAUTH2_ARGS = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""

IMAPS_LISTENER = """\
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}"""


class DovecotError(RuntimeError):
    """Dovecot did not start, or refused a delivery; the message carries its log's last lines."""


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (held together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    """Run in the child: a test process killed hard must not leave a Dovecot behind."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Dovecot:
    """One Dovecot in a temporary folder. Use as a context manager or call `close()`."""

    def __init__(
        self,
        tls: MailTLS | None = None,
        *,
        host: str = HOST,
        plain: bool = False,
        oauth2_introspection_url: str | None = None,
    ) -> None:
        """`plain`: no TLS at all (no STARTTLS, no IMAPS port), as a mail server on the same
        machine may be set up; what a bot may use only on a loopback host.

        `oauth2_introspection_url`: also take XOAUTH2 and OAUTHBEARER logins, each token checked
        by Dovecot's `oauth2` passdb at that RFC 7662 endpoint (a `TokenIssuer`'s), at every
        login (no auth cache). A password then passes only PLAIN and LOGIN, a token only XOAUTH2
        and OAUTHBEARER."""
        self.host = host
        self.plain = plain
        self.oauth2_introspection_url = oauth2_introspection_url
        self.root = Path(tempfile.mkdtemp(prefix="deskbot-dovecot-"))
        self.root.chmod(0o755)  # traversable by the dovecot user
        self.tls = tls or MailTLS(self.root / "tls")  # read by Dovecot's config process (root)
        self.mail_root = self.root / "mail"
        self.mail_root.mkdir()
        shutil.chown(self.mail_root, "dovecot", "dovecot")
        self.users_file = self.root / "users"
        self.users_file.write_text("")
        self.users_file.chmod(0o644)
        self.log_file = self.root / "dovecot.log"
        self.conf_file = self.root / "dovecot.conf"
        self.passwords: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self.imap_port = self.imaps_port = self.lmtp_port = 0
        self._write_config()
        self.starts = 0

    # ---- life cycle -------------------------------------------------------------------------

    def _write_config(self) -> None:
        self.imap_port, self.imaps_port, self.lmtp_port = free_ports(3)
        if self.plain:
            self.imaps_port = 0
        ssl = "ssl = no" if self.plain else TLS_SETTINGS.format(cert=self.tls.cert_file, key=self.tls.key_file)
        imaps = "" if self.plain else IMAPS_LISTENER.format(host=self.host, imaps_port=self.imaps_port)
        oauth2 = dict(oauth2_mechanisms="", passwd_mechanisms="", oauth2_passdb="")
        if self.oauth2_introspection_url is not None:
            args_file = self.root / "dovecot-oauth2.conf.ext"
            args_file.write_text(OAUTH2_ARGS.format(url=self.oauth2_introspection_url))
            args_file.chmod(0o644)  # read by the auth process, which runs as the dovecot user
            oauth2 = dict(
                oauth2_mechanisms=" xoauth2 oauthbearer",
                passwd_mechanisms=PASSWD_MECHANISMS,
                oauth2_passdb=OAUTH2_PASSDB.format(args=args_file),
            )
        self.conf_file.write_text(
            CONFIG.format(
                root=self.root,
                host=self.host,
                ssl=ssl,
                imaps=imaps,
                **oauth2,
                imap_port=self.imap_port,
                lmtp_port=self.lmtp_port,
            )
        )

    def start(self) -> Dovecot:
        """Start Dovecot (same ports as before after a stop) and wait until IMAP and LMTP answer."""
        with self._lock:
            if self.running:
                return self
            for attempt in range(3):
                self._spawn()
                try:
                    self._wait_ready()
                    break
                except DovecotError:
                    self._terminate()
                    # A port taken between choosing and binding: choose again, but only before
                    # the first successful start (clients hold the URLs after that).
                    if attempt == 2 or self.starts or "Address already in use" not in self.log():
                        raise
                    self._write_config()
            if not self.starts:
                atexit.register(self.close)  # a test run interrupted before its teardown
            self.starts += 1
            return self

    def _spawn(self) -> None:
        main_thread = threading.current_thread() is threading.main_thread()
        with open(self.root / "dovecot.stderr", "ab") as stderr:  # the child keeps its own copy
            self._process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.conf_file)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
                # PDEATHSIG fires when the *thread* that forked ends, so only the main thread sets
                # it (a restart from stop_for's timer thread would otherwise die with that thread).
                preexec_fn=_die_with_parent if main_thread and sys.platform == "linux" else None,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        pending = {self.imap_port: b"* OK", self.lmtp_port: b"220 "}
        while pending:
            assert self._process is not None
            if self._process.poll() is not None:
                raise DovecotError(f"dovecot exited with status {self._process.returncode}\n{self.log_tail()}")
            for port, greeting in list(pending.items()):
                with contextlib.suppress(OSError):
                    with socket.create_connection((self.host, port), timeout=1) as sock:
                        if sock.recv(64).startswith(greeting):
                            del pending[port]
            if pending and time.monotonic() > deadline:
                raise DovecotError(
                    f"dovecot did not answer on {sorted(pending)} in {START_TIMEOUT:.0f} s\n{self.log_tail()}"
                )
            if pending:
                time.sleep(0.01)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop Dovecot: every IMAP connection is cut and new ones are refused until `start()`."""
        with self._lock:
            self._terminate()

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # SIGTERM to the whole group: every process ends at once and the clients are cut. (To
        # the master alone, it waits a second for its children before it exits.)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # The master is gone; make sure no imap/lmtp child outlives it holding a connection.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def restart(self) -> None:
        """Stop and start again on the same ports (the bot's IMAP connections are cut)."""
        with self._lock:
            self._terminate()
            self.start()

    def stop_for(self, seconds: float) -> threading.Thread:
        """Stop now and start again after `seconds` (a drill's outage); join the thread to wait."""
        self.stop()

        def come_back() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=come_back, name="dovecot-outage", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop Dovecot and remove its folder."""
        atexit.unregister(self.close)
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- users and mail ---------------------------------------------------------------------

    def add_user(self, address: str, password: str) -> None:
        """A mailbox `address` (its login) with `password`; Dovecot rereads the file at once."""
        if any(c in address + password for c in ":\n"):
            raise ValueError("a user's address and password cannot hold ':' or a newline")
        address = address.lower()
        with self._lock:
            self.passwords[address] = password
            self.users_file.write_text(
                "".join(f"{user}:{{PLAIN}}{secret}::::::\n" for user, secret in self.passwords.items())
            )

    def deliver(self, raw: bytes, to: str, *, mail_from: str | None = None) -> None:
        """Put `raw` into `to`'s INBOX over LMTP, as the receiving mail server would.

        `mail_from` is the envelope sender (Dovecot writes it as `Return-Path`); by default the
        address in the message's From header; "" is the null sender of a bounce.
        """
        if mail_from is None:
            headers = message_from_bytes(raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0], policy=policy.compat32)
            mail_from = email.utils.parseaddr(str(headers.get("From", "")))[1]
        try:
            with smtplib.LMTP(self.host, self.lmtp_port, timeout=30) as lmtp:
                lmtp.sendmail(mail_from, [to], raw)
        except (smtplib.SMTPException, OSError) as exc:
            raise DovecotError(f"LMTP delivery to {to} failed: {exc!r}\n{self.log_tail()}") from exc

    def maildir(self, address: str, folder: str = "INBOX") -> Path:
        """The maildir folder on disk (Maildir++: INBOX is the root, others are `.Name`)."""
        base = self.mail_root / address.lower()
        return base if folder == "INBOX" else base / f".{folder}"

    def doveadm(self, *args: str) -> str:
        """Run `doveadm -c <this configuration> ARGS…` (needs the server running for user look-ups)."""
        result = subprocess.run(
            [DOVEADM, "-c", str(self.conf_file), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise DovecotError(f"doveadm {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def uidvalidity(self, address: str, folder: str = "INBOX") -> int:
        """The folder's UIDVALIDITY as the server holds it."""
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", address, "uidvalidity", folder)
        return int(out.strip().split("=", 1)[1])

    def change_uidvalidity(self, address: str, folder: str = "INBOX", *, renumber: bool = True) -> int:
        """Give `folder` a new, higher UIDVALIDITY and return it, as a recreated or migrated folder has.

        The messages and their flags stay. With `renumber` (the default) Dovecot is stopped, the
        folder's index and UID list are removed and Dovecot is started again, so it rebuilds them
        from the maildir: a new UIDVALIDITY and UIDs from 1 again, below any cursor a client kept
        (a client that ignored UIDVALIDITY would miss new mail, so a test of it can fail); every
        connection is cut, as in a migration. (Removing the files under a running Dovecot leaves
        a selected client connected to a confused server: not a state to test against.) Without
        `renumber`, `doveadm mailbox update` changes only the UIDVALIDITY, live, and Dovecot
        disconnects the clients that have the folder selected.
        """
        old = self.uidvalidity(address, folder)
        if renumber:
            with self._lock:
                self._terminate()
                for path in self.maildir(address, folder).iterdir():
                    if path.name == "dovecot-uidlist" or path.name.startswith("dovecot.index"):
                        path.unlink()
                self.start()
        else:
            self.doveadm("mailbox", "update", "-u", address, "--uid-validity", str(old + 1), folder)
        new = self.uidvalidity(address, folder)
        if new <= old:
            raise DovecotError(f"UIDVALIDITY of {address} {folder} went from {old} to {new}")
        return new

    # ---- diagnostics ------------------------------------------------------------------------

    def log(self) -> str:
        parts = []
        for name in ("dovecot.stderr", "dovecot.log"):
            with contextlib.suppress(OSError):
                parts.append((self.root / name).read_text(errors="replace"))
        return "".join(parts)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        tail = self.log().splitlines()[-lines:]
        return "Dovecot's log (last lines):\n" + "\n".join("  " + line for line in tail)
