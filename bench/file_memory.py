"""Peak resident memory of `deskbot run` while files far over the limit come from each side (issue 14, item 8).

    PYTHONPATH=. .venv/bin/python bench/file_memory.py [--size-mb 200] [--limit-mb 25] [--json]

One `deskbot run` process with both channels (SQLite in a temporary
directory), against a fake Zulip (engineers, and one customer) and a fake
Mastodon (another customer) running in this process (bench/_common.py).
Files of `--size-mb` against DESKBOT_MAX_ATTACHMENT_MB=`--limit-mb`:

1. customer, Zulip: a DM linking an upload of that size (Zulip's own limit
   raised so that it exists): Zulip declares its length, so the bot refuses
   it before reading a byte;
2. customer, Mastodon: a status whose medium is an endless body (no length
   declared): the download is cut off at the limit;
3. engineer to the Zulip customer, and 4. engineer to the Mastodon customer:
   `/reply` linking an upload of that size: refused, both sides told;
5. for scale, a file the bot does carry: an image just under Mastodon's
   16 MB image limit, from the engineer to the Mastodon customer (fetched,
   stored, uploaded as a medium).

After each step: VmRSS and VmHWM (the peak so far) of the bot's process,
from /proc/<pid>/status, 1 second after the step's last message arrived.
Bounded means the peak stays near the limit (plus the process's own size),
never near the size of the file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    ENGINEER,
    MASTODON_TOKEN,
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
        with tempfile.TemporaryDirectory(prefix="bench-file-memory-") as tmp_name:
            tmp = Path(tmp_name)
            url = f"sqlite:///{tmp / 'deskbot.db'}"
            seed(url)
            bot = deskbot_zulip(zulip.url, url, tmp, "deskbot")
            bot.env |= {
                "MASTODON_API_BASE_URL": mastodon.url,
                "MASTODON_ACCESS_TOKEN": MASTODON_TOKEN,
                "DESKBOT_MAX_ATTACHMENT_MB": str(limit_mb),
            }
            bot.start()
            try:
                wait_ready(bot)
                steps.append(sample(bot, "started"))
                steps += scenario(zulip, mastodon, bot, size_mb)
            finally:
                bot.stop()
    finally:
        zulip.stop()
        mastodon.stop()
    return {"machine": machine(), "size_mb": size_mb, "limit_mb": limit_mb, "steps": steps}


def seed(database_url: str) -> None:
    """Migrate; a customer on each channel, with credits."""
    from datetime import UTC, datetime

    from bot.services import credits, customers
    from storage.db import make_engine, transaction, upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with transaction(engine) as session:
        for name, channel, address in (("Zed", "zulip", zulip_customer(0)), ("Max", "mastodon", mastodon_customer(0))):
            customer, _code = customers.create_customer(session, name, None, "en", now)
            customers.link_identity(session, customer, channel, address, now)
            credits.grant_credits(session, customer, 5, now.date(), "bench", now)
    engine.dispose()


def scenario(zulip: Any, mastodon: Any, bot: BotProcess, size_mb: int) -> list[dict[str, Any]]:
    customer, fan = zulip_customer(0), mastodon_customer(0)
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

    steps = []
    path = zulip.upload(customer, "huge.png", big)
    zulip.post_dm(customer, f"open The disk image [huge.png]({path})")
    wait_for("notice to the Zulip customer", dm_to(customer, "was not passed on"), bot)
    steps.append(sample(bot, "customer, Zulip: declared over the limit"))

    endless = mastodon.media("endless.png", None)
    mastodon.post_status(fan, "@deskbot open A recording", media=[endless])
    wait_for("notice to the Mastodon customer", status_with("was not passed on"), bot)
    steps.append(sample(bot, "customer, Mastodon: endless body, cut off"))

    engineers = zulip.upload(ENGINEER, "core.png", big)
    zulip.post_dm(ENGINEER, f"/reply 1 The core dump [core.png]({engineers})")
    wait_for("notice to the Zulip customer", dm_to(customer, "not sent:"), bot)
    steps.append(sample(bot, "engineer to Zulip customer: over the limit"))

    zulip.post_dm(ENGINEER, f"/reply 2 The core dump [core.png]({engineers})")
    wait_for("notice to the Mastodon customer", status_with("not sent:"), bot)
    steps.append(sample(bot, "engineer to Mastodon customer: over the limit"))

    carried = zulip.upload(ENGINEER, "photo.png", PNG_HEAD + b"\0" * (15 * MIB))
    zulip.post_dm(ENGINEER, f"/reply 2 A photo [photo.png]({carried})")
    wait_for("the medium on Mastodon", status_with("A photo", media=True), bot)
    steps.append(sample(bot, "engineer to Mastodon customer: 15 MB image carried"))
    return steps


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
