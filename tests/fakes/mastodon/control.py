"""`/_fake/*`: the Python API over HTTP, for a bot running in another process.

Not part of Mastodon's API and not counted in `stats.requests`.

    POST /_fake/accounts   {"acct": "alice@remote.example", "token": "...", "display_name": "..."}
    POST /_fake/statuses   {"from": "alice@remote.example", "text": "@deskbot hi", "visibility": "direct",
                            "in_reply_to": null, "spoiler_text": "", "media": []}
    POST /_fake/follow     {"follower": "deskbot", "followed": "alice@remote.example"}
    POST /_fake/policy     {"acct": "echo", "for_private_mentions": "accept", ...}  -> the policy
    POST /_fake/faults     {"kind": "fail"|"drop", "count": 3, "status": 503, "method": "POST", "path": "/api/v1/statuses"}
    POST /_fake/streams/disconnect
    GET  /_fake/posted?acct=deskbot     -> [{"id", "text", "recipients", "in_reply_to_id", "idempotency_key",
                                          "stored_at"}]   (stored_at: the fake's time.monotonic(), seconds)
    GET  /_fake/inbox?acct=alice@remote.example
    GET  /_fake/stats
    GET  /_fake/policy?acct=deskbot
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .model import ApiError, Posted

if TYPE_CHECKING:
    from .server import FakeMastodon, _Handler


def _posted_json(posted: Posted) -> dict[str, Any]:
    return {
        "id": posted.id,
        "author": posted.author,
        "text": posted.source_text,
        "recipients": list(posted.recipients),
        "visibility": posted.status["visibility"],
        "in_reply_to_id": posted.status["in_reply_to_id"],
        "idempotency_key": posted.idempotency_key,
        "content": posted.status["content"],
        "stored_at": posted.stored_at,
    }


def handle_control(
    fake: FakeMastodon, handler: _Handler, method: str, path: str, query: dict[str, list[str]], raw: bytes
) -> None:
    data = json.loads(raw) if raw else {}
    acct = (query.get("acct") or [""])[0]
    try:
        if (method, path) == ("POST", "/_fake/accounts"):
            account = fake.add_account(data["acct"], token=data.get("token"), display_name=data.get("display_name"))
            body: Any = {"id": account.id, "acct": account.acct}
        elif (method, path) == ("POST", "/_fake/statuses"):
            body = fake.post_status(
                data["from"],
                data["text"],
                visibility=data.get("visibility", "direct"),
                in_reply_to=data.get("in_reply_to"),
                spoiler_text=data.get("spoiler_text", ""),
                media=data.get("media"),
            )
        elif (method, path) == ("POST", "/_fake/follow"):
            fake.follow(data["follower"], data["followed"])
            body = {}
        elif (method, path) == ("POST", "/_fake/policy"):
            who = data.pop("acct")
            fake.set_policy(who, **data)
            body = fake.policy(who)
        elif (method, path) == ("POST", "/_fake/faults"):
            if data.get("kind") == "drop":
                fake.drop_next(data.get("count", 1), method=data.get("method"), path=data.get("path"))
            else:
                fake.fail_next(
                    data.get("count", 1), data.get("status", 503), method=data.get("method"), path=data.get("path")
                )
            body = {}
        elif (method, path) == ("POST", "/_fake/streams/disconnect"):
            body = {"closed": fake.disconnect_streams()}
        elif (method, path) == ("GET", "/_fake/posted"):
            body = [_posted_json(p) for p in fake.posted_by(acct)]
        elif (method, path) == ("GET", "/_fake/inbox"):
            body = [_posted_json(p) for p in fake.inbox(acct)]
        elif (method, path) == ("GET", "/_fake/policy"):
            body = fake.policy(acct)
        elif (method, path) == ("GET", "/_fake/stats"):
            body = {
                "requests": fake.stats.requests,
                "ratelimited": fake.stats.ratelimited,
                "faults": fake.stats.faults,
                "by_route": dict(fake.stats.by_route),
                "by_account": dict(fake.stats.by_account),
                "streams_opened": fake.streams.opened,
            }
        else:
            raise ApiError(404, f"no control endpoint {method} {path}")
        status = 200
    except (KeyError, ValueError) as error:
        status, body = 400, {"error": str(error)}
    except ApiError as error:
        status, body = error.status, {"error": error.message}
    data_out = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data_out)))
    handler.end_headers()
    handler.wfile.write(data_out)
