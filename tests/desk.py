"""A test desk: the real runtime with the console channel, driven line by line.

`Desk.say(who, text)` delivers one console message as `who` (a customer
name, or ENGINEER) through the real intake, drains the outbox through the
real console channel, and returns what the console printed.
"""

from __future__ import annotations

import io
import itertools
from datetime import UTC

import sqlalchemy as sa

from adapters.channel import Inbound
from adapters.console import ENGINEER, ConsoleChannel, console_line
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import credits as credit_service
from bot.services import customers
from storage.db import transaction
from storage.models import CreditPack, Incident, IncidentMessage, Outbox

#: For tests of a channel, which find each message handled by its answer: every message added to a
#: case answered (by default one that follows the customer's own soon after is not; tests/core).
EVERY_MESSAGE_ANSWERED = {"DESKBOT_ACK_QUIET_MINUTES": 0}


def make_settings(db_url: str, **overrides: object) -> Settings:
    values = {"DESKBOT_DATABASE_URL": db_url, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


class Desk:
    def __init__(self, engine: sa.Engine, db_url: str, clock, **settings: object) -> None:  # noqa: ANN001
        self.out = io.StringIO()
        self.console = ConsoleChannel(customer="nobody", stdin=io.StringIO(), stdout=self.out)
        self.clock = clock
        self.runtime = Runtime(
            make_settings(db_url, **settings),
            [self.console],
            engine=engine,
            clock=clock,
            trusted_engineers=frozenset({("console", ENGINEER)}),
            migrate=False,
        )
        # No receive loop runs: the test delivers the console's lines itself, so the channel is placed.
        self.runtime.placed.add(self.console.name)
        self._ids = itertools.count(1)

    @property
    def engine(self) -> sa.Engine:
        return self.runtime.engine

    def restarted(self, **settings: object) -> Desk:
        """The deployment started again with `settings` (the default for any not given): the same
        store and clock; the console's message ids go on, as a platform's would."""
        desk = Desk(self.engine, self.runtime.settings.database_url, self.clock, **settings)
        desk._ids = self._ids
        return desk

    def customer(self, name: str, credits: int = 0, lang: str = "en", purchased=None) -> int:  # noqa: ANN001
        """Create a customer linked to the console account `name`, with a pack of `credits`."""
        now = self.clock()
        with transaction(self.engine) as session:
            customer, _code = customers.create_customer(session, name, None, lang, now)
            customers.link_identity(session, customer, "console", name, now)
            if credits:
                credit_service.grant_credits(
                    session,
                    customer,
                    credits,
                    purchased or now.date(),
                    "test",
                    now,
                    months=self.runtime.settings.pack_validity_months,
                )
            return customer.id

    def say(self, who: str, text: str, message_id: str | None = None) -> str:
        start = len(self.out.getvalue())
        self.runtime.intake.deliver(
            console_line(who, text, message_id or f"m{next(self._ids)}", self.clock().astimezone(UTC))
        )
        self.runtime.dispatcher.drain("console")
        return self.out.getvalue()[start:]

    def engineer(self, text: str) -> str:
        return self.say(ENGINEER, text)

    def mail(
        self, sender: str, text: str, *, subject: str = "Printer", thread: str | None = None, verified: bool = True
    ) -> str:
        """A mail from `sender` handled as the email channel hands it over (a new thread unless
        `thread` names one); what the console printed (the engineers' topics). No mail server
        here: what the bot writes back is read with `mails_to` (tests/email has the real one)."""
        start = len(self.out.getvalue())
        n = next(self._ids)
        self.runtime.intake.deliver(
            Inbound(
                channel="email",
                sender=sender,
                conversation=thread or f"<t{n}@mail.example>",
                text=text,
                message_id=f"<m{n}@mail.example>",
                received_at=self.clock().astimezone(UTC),
                subject_hint=subject,
                verified=verified,
            )
        )
        self.runtime.dispatcher.drain("console")
        return self.out.getvalue()[start:]

    def mails_to(self, address: str) -> list[tuple[str | None, str | None, str]]:
        """(subject, language, text) of each email row to `address`, oldest first."""
        with transaction(self.engine) as session:
            rows = session.scalars(
                sa.select(Outbox).where(Outbox.channel == "email", Outbox.recipient == address).order_by(Outbox.id)
            )
            return [(r.subject, r.lang, r.text) for r in rows]

    def bodies(self, number: int) -> list[str]:
        """What incident `number`'s messages say, oldest first."""
        with transaction(self.engine) as session:
            query = sa.select(IncidentMessage.body).where(IncidentMessage.incident_id == number)
            return list(session.scalars(query.order_by(IncidentMessage.id)))

    def incident_count(self) -> int:
        with transaction(self.engine) as session:
            return session.scalar(sa.select(sa.func.count()).select_from(Incident))

    def credits_used(self) -> int:
        with transaction(self.engine) as session:
            return sum(session.scalars(sa.select(CreditPack.used)))
