"""Run the fake Mastodon server on its own, e.g. for a container test.

    python -m tests.fakes.mastodon --port 3000 --bot-acct deskbot --token T \
        --account alice@remote.example:alice-token

People then write through the control endpoints (`/_fake/statuses`, see
`tests/fakes/mastodon/control.py`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from .server import FakeMastodon


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.mastodon", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--domain", default="bot.example", help="the instance's own domain (local accounts)")
    parser.add_argument("--bot-acct", default="deskbot")
    parser.add_argument("--token", default="bot-token", help="the bot's access token")
    parser.add_argument("--account", action="append", default=[], metavar="ACCT[:TOKEN]", help="add a person")
    parser.add_argument("--max-characters", type=int, default=500)
    parser.add_argument("--api-limit", type=int, default=300)
    parser.add_argument("--api-period", type=float, default=300.0)
    parser.add_argument("--status-limit", type=int, default=300)
    parser.add_argument("--status-period", type=float, default=3 * 3600.0)
    parser.add_argument("--heartbeat", type=float, default=15.0, help="seconds between :thump heartbeats")
    parser.add_argument(
        "--round-trip",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="simulated network round trip for every client: half before a request is handled, half before"
        " its answer leaves; a streamed event leaves half of it after it happened (default 0: bare loopback)",
    )
    parser.add_argument(
        "--private-mentions",
        choices=("accept", "filter", "drop"),
        default="filter",
        help="the bot's notification policy for private mentions from strangers (Mastodon's default: filter)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    fake = FakeMastodon(
        port=args.port,
        domain=args.domain,
        bot_acct=args.bot_acct,
        bot_token=args.token,
        max_characters=args.max_characters,
        api_limit=args.api_limit,
        api_period=args.api_period,
        status_limit=args.status_limit,
        status_period=args.status_period,
        heartbeat_interval=args.heartbeat,
        round_trip=args.round_trip,
        bot_policy={"for_private_mentions": args.private_mentions},
    )
    fake.start()
    for spec in args.account:
        acct, _, token = spec.partition(":")
        fake.add_account(acct, token=token or None)
    logging.getLogger("tests.fakes.mastodon").info("fake Mastodon on %s (bot @%s)", fake.url, args.bot_acct)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    fake.stop()


if __name__ == "__main__":
    main()
