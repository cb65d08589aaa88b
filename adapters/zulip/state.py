"""What the adapter knows about the server, its own account and the support stream."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .compose import DEFAULT_MAX_MESSAGE_LENGTH

log = logging.getLogger("deskbot.adapters.zulip")


@dataclass
class ServerState:
    """Shared by the receive loop (which learns) and `send` (which obeys)."""

    stream_name: str
    user_id: int | None = None
    email: str = ""
    full_name: str = ""
    feature_level: int = 0
    stream_id: int | None = None
    invite_only: bool = True
    is_web_public: bool = False
    subscribed: bool = True
    max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH
    #: The largest file the server takes (`max_file_upload_size_mib` from `POST /register`).
    max_file_upload_mib: int = 25
    #: time.monotonic() when the stream's privacy was last learnt (start, register, a look-up).
    privacy_checked_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def stream_private(self) -> bool:
        return self.invite_only and not self.is_web_public

    def privacy_problem(self) -> str | None:
        """Why the support stream must not carry case messages, or None."""
        if not self.invite_only and self.is_web_public:
            return f"support stream '{self.stream_name}' is web-public"
        if not self.invite_only:
            return f"support stream '{self.stream_name}' is public (not invite-only)"
        if self.is_web_public:
            return f"support stream '{self.stream_name}' is web-public"
        return None

    def set_privacy(self, *, invite_only: bool | None = None, is_web_public: bool | None = None) -> None:
        """Record new privacy flags; a change to or from public is logged loudly."""
        with self._lock:
            before = self.privacy_problem()
            if invite_only is not None:
                self.invite_only = invite_only
            if is_web_public is not None:
                self.is_web_public = is_web_public
            after = self.privacy_problem()
            self.privacy_checked_at = time.monotonic()
        if after and not before:
            log.critical(
                "%s: mirroring paused, nothing is posted to it and case messages wait in the outbox"
                " (/readyz fails meanwhile); make it private again (invite-only, not web-public) to resume",
                after,
            )
        elif before and not after:
            log.warning(
                "support stream '%s' is private again: mirroring resumes, the case messages held back go out in order",
                self.stream_name,
            )

    def apply_stream_event(self, event: dict[str, Any]) -> None:
        """A `stream` event from the queue (NOTES §6)."""
        op = event.get("op")
        if op == "update" and event.get("stream_id") == self.stream_id:
            prop, value = event.get("property"), event.get("value")
            invite_only = value if prop == "invite_only" else None
            web_public = value if prop == "is_web_public" else event.get("is_web_public")
            self.set_privacy(
                invite_only=bool(invite_only) if invite_only is not None else None,
                is_web_public=bool(web_public) if web_public is not None else None,
            )
            if prop == "name" and isinstance(value, str):
                log.warning("support stream renamed from '%s' to '%s'", self.stream_name, value)
                self.stream_name = value
        elif op == "delete" and any(s.get("stream_id") == self.stream_id for s in event.get("streams", [])):
            log.critical("support stream '%s' was deleted: case topics cannot be mirrored", self.stream_name)
            self.subscribed = False

    def apply_subscriptions(self, subscriptions: list[dict[str, Any]]) -> None:
        """The `subscriptions` of a register answer: catches changes made while no queue listened."""
        mine = next((s for s in subscriptions if s.get("stream_id") == self.stream_id), None)
        if mine is None:
            if self.subscribed:
                log.critical("the bot is no longer subscribed to support stream '%s'", self.stream_name)
            self.subscribed = False
            return
        self.subscribed = True
        self.set_privacy(
            invite_only=bool(mine.get("invite_only", True)), is_web_public=bool(mine.get("is_web_public", False))
        )
