"""Intake (SPEC §7): each inbound message recorded once, with its effects, in one transaction.

`Intake` is the `InboundSink` every channel hands its messages to. The
message id, the router's state changes, the outbox rows they caused and the
channel's cursor commit together; a redelivered message is a no-op. When the
router fails on a message, one central path logs the traceback, keeps the
text, and gives the person a short neutral answer — the message is never
lost and never retried into a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from adapters.channel import Inbound
from bot.i18n import _, render
from bot.router import Router
from storage import outbox
from storage.db import transaction
from storage.models import ChannelCursor, ProcessedInbound

log = logging.getLogger("deskbot.intake")

Clock = Callable[[], datetime]
APOLOGY = _("Sorry, something went wrong on our side. Your message is saved and the team has been told.")


def system_clock() -> datetime:
    return datetime.now(UTC)


class Intake:
    def __init__(
        self,
        engine: Engine,
        router: Router,
        clock: Clock = system_clock,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.router = router
        self.clock = clock
        self.on_commit = on_commit
        #: Called with (channel, context) after a message's transaction committed (metrics).
        self.on_handled: Callable[[str, object], None] | None = None
        self.handled = 0

    def deliver(self, message: Inbound, *, cursor: tuple[str, str] | None = None) -> None:
        """Handle `message` exactly once. Database outages propagate so the channel retries later."""
        try:
            self._deliver(message, cursor)
        except IntegrityError:
            # Another replica (or a redelivery racing us) recorded it first: it is handled.
            log.info("duplicate inbound ignored", extra={"channel": message.channel, "message_id": message.message_id})
            if cursor:
                self.set_cursor(*cursor)
        except OperationalError:
            raise
        except Exception:
            log.exception(
                "handling failed; text kept", extra={"channel": message.channel, "message_id": message.message_id}
            )
            self._deliver_failed(message, cursor)
        if self.on_commit:
            self.on_commit()

    def _deliver(self, message: Inbound, cursor: tuple[str, str] | None) -> None:
        now = self.clock()
        with transaction(self.engine) as session:
            if not self._record(session, message, now):
                self._store_cursor(session, cursor, now)
                return
            ctx = self.router.handle(session, message, now)
            self._store_cursor(session, cursor, now)
        self.handled += 1
        if self.on_handled:
            self.on_handled(message.channel, ctx)
        log.info(
            "handled",
            extra={
                "channel": message.channel,
                "message_id": message.message_id,
                "incident_id": ctx.incident_id,
                "replies": len(ctx.replies),
            },
        )

    def _deliver_failed(self, message: Inbound, cursor: tuple[str, str] | None) -> None:
        now = self.clock()
        with transaction(self.engine) as session:
            if not self._record(session, message, now, failed_text=None if message.public else message.text):
                return
            outbox.enqueue(
                session,
                channel=message.channel,
                kind=message.kind,
                recipient=message.sender if message.kind == "direct" else None,
                conversation=message.conversation,
                topic=message.topic,
                # The sender's language is not known here (the failed transaction held it): say it in both.
                text="\n".join(render(lang, APOLOGY) for lang in ("en", "pt")),
                now=now,
            )
            self._store_cursor(session, cursor, now)

    @staticmethod
    def _record(session: Session, message: Inbound, now: datetime, failed_text: str | None = None) -> bool:
        """Mark `message` as handled; False if it already was (a redelivery)."""
        if session.get(ProcessedInbound, (message.channel, message.message_id)) is not None:
            return False
        session.add(
            ProcessedInbound(
                channel=message.channel,
                message_id=message.message_id,
                received_at=message.received_at,
                processed_at=now,
                failed_text=failed_text,
            )
        )
        session.flush()
        return True

    @staticmethod
    def _store_cursor(session: Session, cursor: tuple[str, str] | None, now: datetime) -> None:
        if cursor is None:
            return
        key, value = cursor
        row = session.get(ChannelCursor, key)
        if row is None:
            session.add(ChannelCursor(key=key, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now

    def get_cursor(self, key: str) -> str | None:
        with transaction(self.engine) as session:
            row = session.get(ChannelCursor, key)
            return row.value if row else None

    def set_cursor(self, key: str, value: str) -> None:
        with transaction(self.engine) as session:
            self._store_cursor(session, (key, value), self.clock())
