"""Saying something: the one way the core writes a message to be sent (SPEC §7).

An address says where: `Direct` (a person on a channel: the sender of the message being
handled, `to_sender`, or a customer on their latest channel, `incidents.customer_route`)
or `Topic` (a case topic, `incidents.case_topic`). `Outgoing.say` writes the outbox row in
the transaction of the change that caused it, and keeps it: whoever commits that
transaction hands `Outgoing.rows` to the dispatcher (bot.intake, bot.runtime).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from adapters.channel import Inbound, OutboundFile, Said
from bot.i18n import language_tag
from bot.services import copies
from storage import outbox
from storage.models import Incident
from storage.outbox import NewRow


@dataclass(frozen=True, slots=True)
class Direct:
    """A person on a channel; `conversation` is what a reply answers (a Mastodon status id)."""

    channel: str
    recipient: str
    conversation: str | None = None
    #: The subject of the message answered (an email's, without "Re:" and tags); None for words
    #: about an incident that answer no particular message (they bear the incident's subject).
    subject: str | None = None
    #: The incident the message answered names beside its text (an email subject's `[#N]`).
    case_hint: int | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic of the engineers' support stream."""

    channel: str
    topic: str


Address = Direct | Topic


def to_sender(message: Inbound) -> Address:
    """Where the sender of `message` reads the answer: their DM, or the topic they wrote in."""
    if message.kind == "topic" and message.topic is not None:
        return Topic(message.channel, message.topic)
    return Direct(message.channel, message.sender, message.conversation, message.subject_hint, message.case_hint)


def subject_of(to: Direct, incident: Incident | None) -> str | None:
    """The subject of a direct row (email: "Re: <it>" in answer to a mail, `[#N]` before it on a row
    about incident N): the subject of the message answered, as the customer wrote it, so that their
    mail client keeps the answer in that conversation; its own tag where the row is about no incident
    (a `status` sent in an incident's thread). A row about an incident that answers no message (a
    `/reply`), or a message naming another incident, bears the incident's subject."""
    if incident is None:
        return f"[#{to.case_hint}] {to.subject or ''}".rstrip() if to.case_hint is not None else to.subject
    if to.subject is None or to.case_hint not in (None, incident.id):
        return incident.subject
    return to.subject


class Outgoing:
    """The messages one transaction says, in order.

    `leased`: the channel whose rows go to the writer itself right after the commit (the
    dispatcher said it may send them at once: no claim query, see bot.dispatcher).
    """

    def __init__(
        self,
        session: Session,
        now: datetime,
        leased: str | None = None,
        answer_caps: Mapping[str, int] | None = None,
        *,
        deferred: bool = False,
    ) -> None:
        self.session = session
        self.now = now
        self.leased = leased
        #: Rows are kept (`pending`) for the transaction's last statement to write, not written at once:
        #: bot.intake writes them with the message's record on PostgreSQL (one round trip fewer).
        self.deferred = deferred
        #: With `deferred`: the column values of the rows said, in order, not written yet (see `written`).
        self.pending: list[dict[str, object]] = []
        #: Per channel, the most automatic answers an address gets an hour: people copied on an
        #: incident (bot.services.copies) are left out of an automatic answer past theirs.
        self.answer_caps = answer_caps or {}
        self.rows: list[NewRow] = []
        #: Set when a person's command causes what is said (an engineer's): the customer reads
        #: their words or their decision, not an automatic answer (`Outbound.automatic`).
        self.by_person = False

    def say(
        self,
        to: Address,
        text: str,
        *,
        quote: str | None = None,
        said: Said | None = None,
        files: Sequence[OutboundFile] = (),
        incident_id: int | None = None,
        secret: str | None = None,
        lang: str | None = None,
    ) -> None:
        """Write `text` (and a `quote` of someone's words, `said` by whom) for `to`.

        `lang`: the language `text` is written in (ours: "en", "pt"), for a direct row; the channel
        tags the message with it where the platform can.
        `secret`: a value `text` shows in clear (an activation code); the outbox masks it in
        the stored text once the message is delivered. `files`: stored files the channel shows
        with the row (a case topic: uploaded under the header).
        """
        if isinstance(to, Topic):
            where: dict[str, object] = {"kind": "topic", "topic": to.topic}
        else:
            incident = self.session.get(Incident, incident_id) if incident_id is not None else None
            # A row about an incident copies the people copied on it (issue 17).
            copied = self._copies(incident_id, to.channel, to.recipient) if incident_id is not None else []
            where = {
                "kind": "direct",
                "recipient": to.recipient,
                "conversation": to.conversation,
                "subject": subject_of(to, incident),
                "automatic": not self.by_person,
                "copies": json.dumps(copied) if copied else None,
                "lang": language_tag(lang) if lang else None,
            }
        values = outbox.row_values(
            channel=to.channel,
            text=text,
            quote=quote,
            said=json.dumps(dataclasses.asdict(said)) if said is not None else None,
            files=json.dumps([dataclasses.asdict(f) for f in files]) if files else None,
            incident_id=incident_id,
            now=self.now,
            secret=secret,
            leased=to.channel == self.leased,
            **where,
        )
        if self.deferred:
            self.pending.append(values)
        else:
            self.rows.append(outbox.write(self.session, values))

    def written(self, row_ids: list[int]) -> None:
        """The `pending` rows were written, with these ids (in order): they join `rows`."""
        self.rows.extend(outbox.new_row(row_id, values) for row_id, values in zip(row_ids, self.pending, strict=True))
        self.pending = []

    def _copies(self, incident_id: int, channel: str, recipient: str, only: Collection[str] | None = None) -> list[str]:
        return copies.for_row(
            self.session,
            incident_id,
            channel,
            recipient,
            automatic=not self.by_person,
            cap=self.answer_caps.get(channel),
            now=self.now,
            only=only,
        )

    def copy_new(self, incident_id: int, channel: str, added: Collection[str]) -> None:
        """People just copied on the incident (`added`, on `channel`) join the rows about it this
        transaction wrote already (the answer to the very message that copied them)."""

        def amended(kind: object, about: object, on: object, recipient: object, copies: object) -> str | None:
            """A row's copies with the new people its answer should reach, or None if none."""
            if kind != "direct" or about != incident_id or on != channel or not recipient:
                return None
            more = self._copies(incident_id, channel, str(recipient), only=added)
            return json.dumps([*json.loads(str(copies or "[]")), *more]) if more else None

        for values in self.pending:  # not written yet: amended where they wait
            copied = amended(
                values["kind"], values["incident_id"], values["channel"], values["recipient"], values["copies"]
            )
            if copied is not None:
                values["copies"] = copied
        for index, row in enumerate(self.rows):
            copied = amended(row.kind, row.incident_id, row.channel, row.recipient, row.copies)
            if copied is not None:
                outbox.set_copies(self.session, row.id, copied)
                self.rows[index] = dataclasses.replace(row, copies=copied)
