"""The baseline for the email benchmarks: a bare IMAP -> SMTP echo bot (issue 11, item 10).

    PYTHONPATH=. .venv/bin/python -m bench.email_echo     # settings from the environment

It takes deskbot's own settings (SPEC §6): EMAIL_ADDRESS, EMAIL_IMAP_URL (`imaps://` or
`imap://`, STARTTLS when offered), EMAIL_SMTP_URL (`smtps://` or `smtp://` with STARTTLS),
EMAIL_USERNAME (default: the address), EMAIL_PASSWORD, and EMAIL_CA_FILE to trust a test CA.
It is written with the libraries deskbot's channel uses (imapclient, smtplib, `email`), and
does the least a correct bot must:

* reads with `BODY.PEEK[]` every message not yet `\\Seen` (the backlog first), newest UID
  kept in memory, then waits in IDLE (re-issued every few minutes) for more;
* answers each with its text, threaded (`Re:`, `In-Reply-To`, `References`, a Message-ID
  of its own, `Auto-Submitted: auto-replied`), from a second thread over one kept SMTP
  connection, so the IMAP side goes on reading while it sends;
* flags the answered messages `\\Seen` in batches, before each IDLE (its only memory
  across restarts);
* never answers its own address.

It prints `ready` once it is logged in to both servers, and one line per 100 answers.
"""

from __future__ import annotations

import email.utils
import os
import queue
import smtplib
import ssl
import sys
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import urlsplit

from imapclient import IMAPClient

IDLE_SECONDS = 300  # well inside the 29 minutes after which servers drop an idle client
FETCH_BATCH = 100


def tls_context() -> ssl.SSLContext:
    ca_file = os.environ.get("EMAIL_CA_FILE")
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


def server(url: str, default_ports: dict[str, int]) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in default_ports or not parts.hostname:
        raise SystemExit(f"email_echo: cannot use {url!r} (expected {' or '.join(default_ports)})")
    return parts.scheme, parts.hostname, parts.port or default_ports[parts.scheme]


def open_imap(url: str, username: str, password: str) -> IMAPClient:
    scheme, host, port = server(url, {"imaps": 993, "imap": 143})
    client = IMAPClient(host, port=port, ssl=scheme == "imaps", ssl_context=tls_context(), timeout=60)
    if scheme == "imap" and b"STARTTLS" in client.capabilities():
        client.starttls(tls_context())
    client.login(username, password)
    return client


def open_smtp(url: str, username: str, password: str) -> smtplib.SMTP:
    scheme, host, port = server(url, {"smtps": 465, "smtp": 587})
    if scheme == "smtps":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, context=tls_context(), timeout=60)
    else:
        smtp = smtplib.SMTP(host, port, timeout=60)
        smtp.starttls(context=tls_context())
    smtp.login(username, password)
    return smtp


def told_with_the_continuation(imap: IMAPClient) -> bool:
    """Did the server say something right after its `+ idling`?

    Dovecot announces mail that came since the client's last command (EXISTS) at once when
    IDLE begins, often in the same packet as the continuation; imaplib then holds it in its
    read buffer, and imapclient's `idle_check` polls the socket only, so it would wait for the
    next event (tests/mail/test_servers.py shows it). Looking into the buffer needs imaplib's
    file object: imapclient has no public way.
    """
    sock = imap.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)  # so that an empty buffer does not wait for the socket
    try:
        return bool(imap._imap.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(timeout)


def echo_of(raw: bytes, address: str) -> EmailMessage | None:
    """The answer to one mail: its own text, threaded; None for the bot's own mail."""
    incoming = message_from_bytes(raw, policy=policy.default)
    sender = email.utils.parseaddr(str(incoming.get("Reply-To") or incoming.get("From") or ""))[1]
    if not sender or sender.lower() == address.lower():
        return None
    body = incoming.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if body is not None else ""
    subject = str(incoming.get("Subject") or "")
    answer = EmailMessage()
    answer["From"] = address
    answer["To"] = sender
    answer["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    answer["Date"] = email.utils.formatdate(localtime=False)
    answer["Message-ID"] = email.utils.make_msgid(domain=address.rsplit("@", 1)[1])
    answer["Auto-Submitted"] = "auto-replied"
    parent = str(incoming.get("Message-ID") or "").strip()
    if parent:
        answer["In-Reply-To"] = parent
        answer["References"] = " ".join([*str(incoming.get("References") or "").split(), parent])
    answer.set_content(text)
    return answer


class Echo:
    def __init__(self) -> None:
        env = os.environ
        self.address = env["EMAIL_ADDRESS"]
        self.imap_url = env["EMAIL_IMAP_URL"]
        self.smtp_url = env["EMAIL_SMTP_URL"]
        self.username = env.get("EMAIL_USERNAME") or self.address
        self.password = env["EMAIL_PASSWORD"]
        self.outbox: queue.Queue[tuple[int, bytes]] = queue.Queue()
        self.answered: list[int] = []  # UIDs to flag \Seen, filled by the sender thread
        self.lock = threading.Lock()
        self.count = 0

    def run(self) -> None:
        imap = open_imap(self.imap_url, self.username, self.password)
        smtp = open_smtp(self.smtp_url, self.username, self.password)
        threading.Thread(target=self.send_loop, args=(smtp,), name="sender", daemon=True).start()
        imap.select_folder("INBOX")
        backlog = imap.search(["UNSEEN"])
        last = max(backlog, default=0)
        print("ready", flush=True)
        self.fetch(imap, backlog)
        while True:
            self.flag_answered(imap)
            # Searched after every other command: a command's answer may carry the EXISTS of
            # mail that came meanwhile, and the server does not tell it again in IDLE.
            # UID SEARCH n:* answers with the highest UID even when it is below n: filter.
            new = [uid for uid in imap.search(["UID", f"{last + 1}:*"]) if uid > last]
            if new:
                last = max(new)
                self.fetch(imap, new)
                continue
            imap.idle()
            # Until the server says something (new mail): no earlier wake-up, which would make
            # the echo poll and beat the server's own notification (Dovecot's comes 0.5 s late).
            if not told_with_the_continuation(imap):
                imap.idle_check(timeout=IDLE_SECONDS)
            imap.idle_done()

    def fetch(self, imap: IMAPClient, uids: list[int]) -> None:
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            for uid, data in sorted(imap.fetch(batch, ["BODY.PEEK[]"]).items()):
                self.outbox.put((uid, data[b"BODY[]"]))

    def flag_answered(self, imap: IMAPClient) -> None:
        with self.lock:
            done, self.answered = self.answered, []
        if done:
            imap.add_flags(done, [b"\\Seen"], silent=True)

    def send_loop(self, smtp: smtplib.SMTP) -> None:
        while True:
            uid, raw = self.outbox.get()
            answer = echo_of(raw, self.address)
            if answer is not None:
                try:
                    smtp.send_message(answer)
                except smtplib.SMTPServerDisconnected:
                    smtp = open_smtp(self.smtp_url, self.username, self.password)
                    smtp.send_message(answer)
                self.count += 1
                if self.count % 100 == 0:
                    print(f"answered {self.count}", flush=True)
            with self.lock:
                self.answered.append(uid)


def main() -> int:
    try:
        Echo().run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
