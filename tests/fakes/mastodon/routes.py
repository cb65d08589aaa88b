"""The REST routes of the fake Mastodon server, a mixin of `FakeMastodon`.

Each `_r_<route>` takes (account, path params, query, form, handler) and
returns (status, body, rate-limit verdict or None); `ApiError` becomes
`{"error": ...}` with its status.
"""

from __future__ import annotations

import time
from typing import Any

from .limits import WindowLimit
from .model import POLICY_FIELDS, Account, ApiError, Instance, Posted, load_payload


class LinkedList(list):
    """A JSON list carrying the Link header of its page."""

    link: str | None = None

    @classmethod
    def page(cls, bodies: list[Any], ids: list[Any], base: str, extra: str = "") -> LinkedList:
        """A page (newest first) with Mastodon's Link header: `next` goes back, `prev` forward."""
        body = cls(bodies)
        if ids:
            body.link = f'<{base}?max_id={ids[-1]}{extra}>; rel="next", <{base}?min_id={ids[0]}{extra}>; rel="prev"'
        return body


def _number(query: dict[str, list[str]], name: str) -> int | None:
    value = (query.get(name) or [None])[0]
    return int(value) if value not in (None, "") else None


class RestRoutes:
    instance: Instance
    status_limit: WindowLimit
    url: str
    domain: str
    max_characters: int
    serve_instance_v1: bool
    serve_instance_v2: bool
    keyed_repeat_status: int | None

    # -- REST routes: each returns (status, body, verdict or None) ----------------

    def _r_instance_v2(self, account, params, query, form, handler):
        if not self.serve_instance_v2:
            raise ApiError(404, "Record not found")
        body = load_payload("instance_v2")
        body["domain"] = self.domain
        body["configuration"]["urls"]["streaming"] = self.url.replace("http://", "ws://")
        body["configuration"]["statuses"]["max_characters"] = self.max_characters
        self.media_config(body["configuration"])
        return 200, body, None

    def _r_instance_v1(self, account, params, query, form, handler):
        if not self.serve_instance_v1:
            raise ApiError(404, "Record not found")
        body = load_payload("instance_v1")
        body["uri"] = self.domain
        body["urls"]["streaming_api"] = self.url.replace("http://", "ws://")
        body["configuration"]["statuses"]["max_characters"] = self.max_characters
        self.media_config(body["configuration"])
        return 200, body, None

    def _r_verify_credentials(self, account, params, query, form, handler):
        return 200, self.instance.account_json(account, credentials=True), None

    def _r_notifications(self, account, params, query, form, handler):
        items = self.instance.list_notifications(
            account,
            max_id=_number(query, "max_id"),
            since_id=_number(query, "since_id"),
            min_id=_number(query, "min_id"),
            limit=min(_number(query, "limit") or 40, 80),
            types=query.get("types[]") or query.get("types"),
            exclude_types=query.get("exclude_types[]") or query.get("exclude_types"),
            account_id=(query.get("account_id") or [None])[0],
            include_filtered=(query.get("include_filtered") or ["false"])[0] in ("true", "1"),
        )
        return (
            200,
            LinkedList.page(
                [self.instance.notification_json(n) for n in items],
                [n.id for n in items],
                f"{self.url}/api/v1/notifications",
                "".join(f"&types%5B%5D={t}" for t in (query.get("types[]") or [])),
            ),
            None,
        )

    def _r_notification(self, account, params, query, form, handler):
        for n in self.instance.notifications:
            if n.id == int(params["id"]) and n.recipient_id == account.id and not n.filtered:
                return 200, self.instance.notification_json(n), None
        raise ApiError(404, "Record not found")

    def _r_policy(self, account, params, query, form, handler):
        return 200, self.instance.policy_json(account), None

    def _r_policy_update(self, account, params, query, form, handler):
        changes = {k: v[0] for k, v in form.items() if k in POLICY_FIELDS or k == "for_bots"}
        self.instance.update_policy(account, changes)
        return 200, self.instance.policy_json(account), None

    def _r_requests(self, account, params, query, form, handler):
        requests = self.instance.requests_for(account)
        return 200, [self.instance.request_json(r) for r in requests], None

    def _r_request(self, account, params, query, form, handler):
        for r in self.instance.requests_for(account):
            if r["id"] == params["id"]:
                return 200, self.instance.request_json(r), None
        raise ApiError(404, "Record not found")

    def _r_request_action(self, account, params, query, form, handler):
        self.instance.resolve_request(account, params["id"], params["action"] == "accept")
        return 200, {}, None

    def _r_requests_action(self, account, params, query, form, handler):
        for request_id in form.get("id[]", []):
            self.instance.resolve_request(account, request_id, params["action"] == "accept")
        return 200, {}, None

    def _r_requests_merged(self, account, params, query, form, handler):
        return 200, {"merged": self.instance.merged(account)}, None

    def _r_status(self, account, params, query, form, handler):
        return 200, self._visible_status(params["id"], account).status, None

    def _r_edit_status(self, account, params, query, form, handler):
        """`PUT /api/v1/statuses/:id` (Api::V1::StatusesController#update): the author's own status only."""

        def first(name: str) -> Any:
            return (form.get(name) or [None])[0]

        sensitive = first("sensitive")
        posted = self.instance.edit_status(
            account,
            params["id"],
            first("status") or "",
            spoiler_text=first("spoiler_text"),
            sensitive=None if sensitive is None else sensitive in ("true", "1", "True"),
            language=first("language"),
            max_characters=self.max_characters,
        )
        return 200, posted.status, None

    def _r_status_history(self, account, params, query, form, handler):
        return 200, self.instance.history(self._visible_status(params["id"], account)), None

    def _r_status_source(self, account, params, query, form, handler):
        """Mastodon's StatusSourceSerializer, behind the same `show?` policy as the status itself."""
        posted = self._visible_status(params["id"], account)
        return 200, {"id": posted.id, "text": posted.source_text, "spoiler_text": posted.status["spoiler_text"]}, None

    def _r_account_statuses(self, account, params, query, form, handler):
        """Mastodon's AccountStatusesFilter: the author sees every status of their own, direct ones
        too; anyone else what a status page would show them. 20 a page by default, at most 40."""
        author = self.instance.accounts.get(params["id"])
        if author is None:
            raise ApiError(404, "Record not found")
        items = self.instance.statuses_of(
            author,
            lambda posted: self._visible(posted, account),
            max_id=_number(query, "max_id"),
            since_id=_number(query, "since_id"),
            min_id=_number(query, "min_id"),
            limit=min(_number(query, "limit") or 20, 40),
            exclude_replies=(query.get("exclude_replies") or ["false"])[0] in ("true", "1"),
        )
        return (
            200,
            LinkedList.page(
                [p.status for p in items],
                [p.id for p in items],
                f"{self.url}/api/v1/accounts/{author.id}/statuses",
            ),
            None,
        )

    def _r_context(self, account, params, query, form, handler):
        posted = self._visible_status(params["id"], account)
        ancestors, descendants = [], []
        parent = self.instance.statuses.get(posted.status["in_reply_to_id"] or "")
        while parent is not None:
            if self._visible(parent, account):
                ancestors.insert(0, parent.status)
            parent = self.instance.statuses.get(parent.status["in_reply_to_id"] or "")
        frontier = [posted.id]
        while frontier:
            current = frontier.pop(0)
            for p in self.instance.statuses.values():
                if p.status["in_reply_to_id"] == current:
                    frontier.append(p.id)
                    if self._visible(p, account):
                        descendants.append(p.status)
        return 200, {"ancestors": ancestors, "descendants": descendants}, None

    def _visible_status(self, status_id: str, account: Account) -> Posted:
        posted = self.instance.statuses.get(status_id)
        if posted is None or not self._visible(posted, account):
            raise ApiError(404, "Record not found")
        return posted

    def _visible(self, posted: Posted, account: Account) -> bool:
        if posted.status["visibility"] in ("public", "unlisted"):
            return True
        return posted.status["account"]["id"] == account.id or account.acct in posted.recipients

    def _r_post_status(self, account, params, query, form, handler):
        def first(name: str, default: Any = None) -> Any:
            return (form.get(name) or [default])[0]

        key = handler.headers.get("Idempotency-Key")
        known = key and self.instance.idempotency.get((account.id, key))
        if known and known[1] > time.time():  # a replay is neither rate-limited nor re-posted
            if self.keyed_repeat_status is not None:  # mastodon/mastodon#40399: the first status stays
                raise ApiError(self.keyed_repeat_status, "Internal Server Error")
            posted, _ = self.instance.create_status(account, "", idempotency_key=key)
            return 200, posted.status, self.status_limit.peek(f"account:{account.id}")
        budget_key = f"account:{account.id}"
        if not self.status_limit.peek(budget_key).allowed:
            return 429, {"error": "Too many requests"}, self.status_limit.hit(budget_key)
        media_ids = form.get("media_ids[]") or []
        media = self.take_media(account, media_ids)
        posted, _ = self.instance.create_status(
            account,
            first("status", ""),
            visibility=first("visibility") or "public",
            in_reply_to_id=first("in_reply_to_id") or None,
            spoiler_text=first("spoiler_text") or "",
            idempotency_key=key,
            max_characters=self.max_characters,
            language=first("language"),
            media=media,
        )
        self.attach(media_ids, str(posted.status["id"]))
        return 200, posted.status, self.status_limit.hit(budget_key)  # only created statuses count
