"""Peak resident memory of `deskbot run` while files far over the limit come from each side (issue 14, item 8).

    PYTHONPATH=. .venv/bin/python bench/file_memory.py [--size-mb 200] [--limit-mb 25] [--json]

One `deskbot run` process with all three channels (SQLite in a temporary
directory), against a fake Zulip (engineers, and one customer) and a fake
Mastodon (another customer) running in this process (bench/_common.py), and
the tests' real mail servers (tests/mail: Dovecot for IMAP and LMTP, the
aiosmtpd submission server; bench/email_common.py) with the support mailbox
and an email customer. Files of `--size-mb` against
DESKBOT_MAX_ATTACHMENT_MB=`--limit-mb`:

1. customer, Zulip: a DM linking an upload of that size (Zulip's own limit
   raised so that it exists): Zulip declares its length, so the bot refuses
   it before reading a byte;
2. customer, email: after an opening mail (its case and topic), a mail in
   that thread carrying a file of that size (base64, so the mail is about
   4/3 of it), streamed over LMTP into the support mailbox from a generator:
   the channel sees its RFC822.SIZE over the limit and fetches the header
   block only; checked: the customer gets a mail saying it was not passed
   on, and the case topic says only its headers were read;
3. customer, Mastodon: a status whose medium is an endless body (no length
   declared): the download is cut off at the limit;
4. engineer to the Zulip customer, and 5. engineer to the Mastodon customer:
   `/reply` linking an upload of that size: refused, both sides told;
6. engineer to the email customer: `/reply` in the case topic linking that
   upload: refused before any byte (Zulip declares the length); checked: the
   topic says it was not sent, the customer's mail names the file;
7. for scale, a file the bot does carry: an image just under Mastodon's
   16 MB image limit, from the engineer to the Mastodon customer (fetched,
   stored, uploaded as a medium).

The email steps come before the Mastodon medium's and the carried image's
because VmHWM only grows: a step's own peak shows only while it is above
every earlier one (the endless medium's 25 MB, the carried image's copies).

After each step: VmRSS and VmHWM (the peak so far) of the bot's process,
from /proc/<pid>/status, 1 second after the step's last message arrived.
Bounded means the peak stays near the limit (plus the process's own size),
never near the size of the file.
"""

from __future__ import annotations

import argparse
import base64
import email.utils
import smtplib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    ENGINEER,
    MASTODON_TOKEN,
    STREAM,
    BotProcess,
    deskbot_zulip,
    json_dump,
    machine,
    mastodon_customer,
    mastodon_fake,
    rss_kib,
    wait_ready,
    zulip_customer,
    zulip_fake,
)
from bench.email_common import mailbox_env  # noqa: E402
from tests.mail.mailbox import Mailbox, body_text  # noqa: E402
from tests.mail.servers import MailServers  # noqa: E402

SETTLE = 1.0
MIB = 1024 * 1024
#: The first bytes of a PNG: enough for the bot to call the file an image.
PNG_HEAD = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")


def wait_for(what: str, found: Callable[[], bool], bot: BotProcess, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while not found():
        bot.check()
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"no {what} within {timeout}s:\n{bot.tail()}")
        time.sleep(0.1)
    return time.monotonic() - started


def run(size_mb: int, limit_mb: int) -> dict[str, Any]:
    zulip = zulip_fake(1)
    mastodon = mastodon_fake(1)
    zulip.realm.max_file_upload_size_mib = size_mb + 1  # so that people can upload the big files
    steps: list[dict[str, Any]] = []
    try:
        mail = MailServers().start()
        try:
            with tempfile.TemporaryDirectory(prefix="bench-file-memory-") as tmp_name:
                tmp = Path(tmp_name)
                url = f"sqlite:///{tmp / 'deskbot.db'}"
                seed(url, mail.customers[0].address)
                bot = deskbot_zulip(zulip.url, url, tmp, "deskbot")
                bot.env |= mailbox_env(mail, mail.support) | {
                    "MASTODON_API_BASE_URL": mastodon.url,
                    "MASTODON_ACCESS_TOKEN": MASTODON_TOKEN,
                    "DESKBOT_MAX_ATTACHMENT_MB": str(limit_mb),
                }
                bot.start()
                try:
                    wait_ready(bot)
                    steps.append(sample(bot, "started"))
                    steps += scenario(zulip, mastodon, mail, bot, size_mb)
                finally:
                    bot.stop()
        finally:
            mail.close()
    finally:
        zulip.stop()
        mastodon.stop()
    return {"machine": machine(), "size_mb": size_mb, "limit_mb": limit_mb, "steps": steps}


def seed(database_url: str, email_address: str) -> None:
    """Migrate; a customer on each channel, with credits."""
    from datetime import UTC, datetime

    from bot.services import credits, customers
    from storage.db import make_engine, transaction, upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with transaction(engine) as session:
        for name, channel, address in (
            ("Zed", "zulip", zulip_customer(0)),
            ("Max", "mastodon", mastodon_customer(0)),
            ("Ana", "email", email_address),
        ):
            customer, _code = customers.create_customer(session, name, None, "en", now)
            customers.link_identity(session, customer, channel, address, now)
            credits.grant_credits(session, customer, 5, now.date(), "bench", now, months=12)
    engine.dispose()


def scenario(zulip: Any, mastodon: Any, mail: MailServers, bot: BotProcess, size_mb: int) -> list[dict[str, Any]]:
    customer, fan, ana = zulip_customer(0), mastodon_customer(0), mail.customers[0]
    big = PNG_HEAD + b"\0" * (size_mb * MIB)
    bot_id = zulip.user("deskbot-bot@example.com").user_id

    def dm_to(email: str, containing: str) -> Callable[[], bool]:
        user_id = zulip.user(email).user_id
        return lambda: any(
            m.sender_id == bot_id and user_id in m.participants and containing in m.content for m in zulip.messages
        )

    def status_with(containing: str, media: bool = False) -> Callable[[], bool]:
        return lambda: any(
            containing in p.source_text and (not media or p.status["media_attachments"])
            for p in mastodon.posted_by("deskbot")
        )

    def in_topic(*containing: str) -> Callable[[], Any]:
        """The bot's first message in the support stream containing all of `containing`."""
        return lambda: next(
            (
                m
                for m in zulip.messages
                if m.sender_id == bot_id and m.stream_id is not None and all(c in m.content for c in containing)
            ),
            None,
        )

    def mail_to_ana(*containing: str) -> Callable[[], Any]:
        """The bot's first mail in the email customer's inbox containing all of `containing`."""
        return lambda: next(
            (
                m
                for m in ana.messages()
                if mail.support.address in str(m["From"]) and all(c in body_text(m) for c in containing)
            ),
            None,
        )

    steps = []
    # The cases: #1 the Zulip customer's, #2 the email customer's, #3 the Mastodon customer's.
    path = zulip.upload(customer, "huge.png", big)
    zulip.post_dm(customer, f"open The disk image [huge.png]({path})")
    wait_for("notice to the Zulip customer", dm_to(customer, "was not passed on"), bot)
    steps.append(sample(bot, "customer, Zulip: declared over the limit"))

    opening = ana.send("Export logs", "open The export stops halfway.")
    wait_for("the email case's topic", lambda: in_topic("The export stops halfway")() is not None, bot)
    wait_for("the answer to the opening mail", lambda: mail_to_ana()() is not None, bot)
    answer = mail_to_ana()()
    case_topic = in_topic("The export stops halfway")().subject
    sent = time.monotonic()
    wire = send_big_mail(mail, ana, answer, opening, size_mb)
    print(f"    (the mail: {wire / MIB:.1f} MiB over LMTP in {time.monotonic() - sent:.1f} s)", flush=True)
    wait_for("notice to the email customer", lambda: mail_to_ana("was not passed on")() is not None, bot)
    wait_for("the headers-only line in the topic", lambda: in_topic("only its headers were read")() is not None, bot)
    steps.append(sample(bot, "customer, email: RFC822.SIZE over, headers only"))

    endless = mastodon.media("endless.png", None)
    mastodon.post_status(fan, "@deskbot open A recording", media=[endless])
    wait_for("notice to the Mastodon customer", status_with("was not passed on"), bot)
    steps.append(sample(bot, "customer, Mastodon: endless body, cut off"))

    engineers = zulip.upload(ENGINEER, "core.png", big)
    zulip.post_dm(ENGINEER, f"/reply 1 The core dump [core.png]({engineers})")
    wait_for("notice to the Zulip customer", dm_to(customer, "not sent:"), bot)
    steps.append(sample(bot, "engineer to Zulip customer: over the limit"))

    zulip.post_dm(ENGINEER, f"/reply 3 The core dump [core.png]({engineers})")
    wait_for("notice to the Mastodon customer", status_with("not sent:"), bot)
    steps.append(sample(bot, "engineer to Mastodon customer: over the limit"))

    zulip.post_stream_message(ENGINEER, STREAM, case_topic, f"/reply The core dump [core.png]({engineers})")
    wait_for(
        "notice in the case topic", lambda: in_topic("Not sent to the customer on email", "core.png")() is not None, bot
    )
    wait_for(
        "notice to the email customer", lambda: mail_to_ana("The core dump", "core.png", "not sent:")() is not None, bot
    )
    steps.append(sample(bot, "engineer to email customer: over the limit"))

    carried = zulip.upload(ENGINEER, "photo.png", PNG_HEAD + b"\0" * (15 * MIB))
    zulip.post_dm(ENGINEER, f"/reply 3 A photo [photo.png]({carried})")
    wait_for("the medium on Mastodon", status_with("A photo", media=True), bot)
    steps.append(sample(bot, "engineer to Mastodon customer: 15 MB image carried"))
    return steps


def send_big_mail(mail: MailServers, ana: Mailbox, answer: Any, opening: Any, size_mb: int) -> int:
    """`ana`'s answer to the bot's `answer`, carrying capture.png of `size_mb` MiB (PNG head and
    zeros), streamed over LMTP into the support mailbox; returns the bytes sent."""
    subject = str(answer["Subject"] or "Export logs")
    parent = str(answer["Message-ID"]).strip()
    references = " ".join([*str(answer.get("References") or opening["Message-ID"]).split(), parent])
    boundary = "bench-file-memory-boundary"
    head = (
        f"From: {ana.name} <{ana.address}>\r\n"
        f"To: {mail.support.address}\r\n"
        f"Subject: {subject if subject.lower().startswith('re:') else 'Re: ' + subject}\r\n"
        f"Date: {email.utils.formatdate(localtime=False)}\r\n"
        f"Message-ID: {email.utils.make_msgid(domain=ana.domain)}\r\n"
        f"In-Reply-To: {parent}\r\n"
        f"References: {references}\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "The capture is attached.\r\n"
        f"--{boundary}\r\n"
        "Content-Type: image/png\r\n"
        'Content-Disposition: attachment; filename="capture.png"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        left = len(PNG_HEAD) + size_mb * MIB
        step = 57 * 16384  # whole base64 lines of 76 characters
        first = True
        while left > 0:
            n = min(step, left)
            data = PNG_HEAD + b"\0" * (n - len(PNG_HEAD)) if first else b"\0" * n
            first, left = False, left - n
            yield base64.encodebytes(data).replace(b"\n", b"\r\n")  # no line starts with "."
        yield f"--{boundary}--\r\n".encode()

    sent = 0
    with smtplib.LMTP(mail.dovecot.host, mail.dovecot.lmtp_port, timeout=300) as lmtp:
        lmtp.ehlo_or_helo_if_needed()
        for reply in (lmtp.mail(ana.address), lmtp.rcpt(mail.support.address)):
            if reply[0] != 250:
                raise RuntimeError(f"LMTP refused the big mail: {reply}")
        lmtp.putcmd("data")
        code, text = lmtp.getreply()
        if code != 354:
            raise RuntimeError(f"LMTP DATA: {code} {text!r}")
        for chunk in chunks():
            lmtp.send(chunk)
            sent += len(chunk)
        lmtp.send(b".\r\n")
        code, text = lmtp.getreply()
        if code != 250:
            raise RuntimeError(f"LMTP did not take the big mail: {code} {text!r}")
    return sent


def sample(bot: BotProcess, what: str) -> dict[str, Any]:
    time.sleep(SETTLE)
    bot.check()
    rss = rss_kib(bot.pid)
    print(f"  {what:52} VmRSS {rss['VmRSS'] / 1024:7.1f} MiB   peak {rss['VmHWM'] / 1024:7.1f} MiB", flush=True)
    return {"step": what, "rss_kib": rss["VmRSS"], "peak_kib": rss["VmHWM"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the oversized files (MiB)")
    parser.add_argument("--limit-mb", type=int, default=25, help="DESKBOT_MAX_ATTACHMENT_MB")
    parser.add_argument("--json", action="store_true", help="print one JSON document at the end")
    args = parser.parse_args(argv)
    print(f"Peak resident memory of deskbot run, files of {args.size_mb} MiB against a {args.limit_mb} MB limit")
    result = run(args.size_mb, args.limit_mb)
    if args.json:
        print(json_dump(result))
    else:
        peak = max(step["peak_kib"] for step in result["steps"]) / 1024
        print(f"  {result['machine']}; highest peak {peak:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
