"""Run the fake Zulip server on its own (for the container test).

    python -m tests.fakes.zulip --port 9991 \
        --bot-email deskbot-bot@example.com --api-key SECRET \
        --stream support --engineer eng@example.com --customer alice@example.com

or `--config fake.json` with the same information:

    {"port": 9991, "heartbeat": 50, "queue_idle_timeout": 600, "round_trip": 0.02,
     "rate_limit": {"limit": 200, "window": 60},
     "users": [{"email": "bot@example.com", "full_name": "Desk Bot", "api_key": "K", "is_bot": true}],
     "streams": [{"name": "support", "invite_only": true, "subscribers": ["bot@example.com"]}]}

A user given as `email:key` gets that API key; otherwise the key is derived
from the email (see the JSON line printed at start-up, which lists every user
and key). Control endpoints for scripts: GET /_fake/state, POST /_fake/dm
{"from","content"}, POST /_fake/stream_message, POST /_fake/make_stream_public
{"name"}, POST /_fake/expire_queues, POST /_fake/fault {"kind","status","path",
"remaining"|"for_seconds"}, POST /_fake/hold and POST /_fake/release (API requests
are taken in but not answered in between, like a hung server).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from .server import FakeZulip


def _split(spec: str) -> tuple[str, str | None]:
    email, _, key = spec.partition(":")
    return email, key or None


def build(config: dict[str, Any]) -> FakeZulip:
    rate = config.get("rate_limit")
    fake = FakeZulip(
        host=config.get("host", "127.0.0.1"),
        port=int(config.get("port", 9991)),
        heartbeat=float(config.get("heartbeat", 50.0)),
        queue_idle_timeout=float(config.get("queue_idle_timeout", 600.0)),
        max_message_length=int(config.get("max_message_length", 10000)),
        rate_limit=(int(rate["limit"]), float(rate["window"])) if rate else None,
        round_trip=float(config.get("round_trip", 0.0)),
    )
    for u in config.get("users", []):
        fake.add_user(
            u["email"], u.get("full_name"), u.get("api_key"), is_bot=u.get("is_bot", False), role=u.get("role", 400)
        )
    for s in config.get("streams", []):
        fake.add_stream(
            s["name"],
            invite_only=s.get("invite_only", True),
            is_web_public=s.get("is_web_public", False),
            subscribers=s.get("subscribers", []),
        )
    return fake


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.config:
        with open(args.config) as fh:
            config = json.load(fh)
    else:
        config = {"users": [], "streams": []}
    for key in ("host", "port", "heartbeat", "queue_idle_timeout"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.rate_limit:
        limit, _, window = args.rate_limit.partition("/")
        config["rate_limit"] = {"limit": int(limit), "window": float(window or 60)}
    members: list[str] = []
    if args.bot_email:
        config["users"].append(
            {"email": args.bot_email, "full_name": "deskbot", "api_key": args.api_key, "is_bot": True}
        )
        members.append(args.bot_email)
    for spec in args.engineer:
        email, key = _split(spec)
        config["users"].append({"email": email, "api_key": key})
        members.append(email)
    for spec in args.customer:
        email, key = _split(spec)
        config["users"].append({"email": email, "api_key": key})
    if args.stream:
        config["streams"].append({"name": args.stream, "invite_only": True, "subscribers": members})
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.zulip",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="JSON file describing users, streams and settings")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--bot-email")
    parser.add_argument("--api-key", help="the bot's API key")
    parser.add_argument("--stream", help="private stream with the bot and the engineers subscribed")
    parser.add_argument("--engineer", action="append", default=[], metavar="EMAIL[:KEY]")
    parser.add_argument("--customer", action="append", default=[], metavar="EMAIL[:KEY]")
    parser.add_argument("--heartbeat", type=float, help="long-poll timeout in seconds (default 50)")
    parser.add_argument("--queue-idle-timeout", type=float, help="seconds before an unpolled queue expires")
    parser.add_argument("--rate-limit", metavar="N/SECONDS", help="per-user rate limit, e.g. 200/60")
    args = parser.parse_args(argv)
    fake = build(config_from_args(args))
    fake.start()
    users = [
        {"email": u.email, "api_key": u.api_key, "user_id": u.user_id, "is_bot": u.is_bot}
        for u in fake.realm.users.values()
    ]
    print(json.dumps({"url": fake.url, "users": users}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
