"""SQLModel tables of the incident store.

Every time is stored as naive UTC and read back as aware UTC (`UTCDateTime`),
so SQLite and PostgreSQL behave the same. Each index here serves a query that
the router, the dispatcher or the CLI runs; the query is named beside it.

Every string column that holds text from a platform or a person is `Bounded`:
its length is long enough for what the platforms send (the constants below),
and a longer value is cut by the type itself before it is stored. PostgreSQL
refuses a value over a VARCHAR's length while SQLite keeps it whole; with the
cut in the column type, both store the same thing and neither fails.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Aware UTC in Python, naive UTC in the database."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


#: Display names: Mastodon federates names of up to 2,048 characters (Zulip allows 100).
NAME = 2048
#: Accounts and email addresses: an RFC 5321 path is at most 256 characters, a Mastodon
#: `user@domain` a username plus a domain of at most 253. 512 characters of any script fit
#: a PostgreSQL index entry, so (channel, address) stays uniquely indexed.
ADDRESS = 512
#: Platform message ids (a Zulip or Mastodon id, an email Message-ID), also a primary key.
MESSAGE_ID = 512
#: What a reply answers (a Mastodon status id, a Zulip email, an email's Message-ID).
CONVERSATION = 1024
#: A customer's name as the desk records it (chosen by an engineer or the operator).
CUSTOMER_NAME = 200
#: An incident's subject (bot.services.incidents cuts it shorter, for listings).
SUBJECT = 200
#: Zulip's topic name limit.
TOPIC = 60


def fit(value: str, limit: int, *, key: bool = False) -> str:
    """`value` cut to `limit` characters: the one place where stored text is shortened.

    Text for people ends in an ellipsis. A key (an account, a message id) keeps a digest of
    the whole value in its last characters instead, so that two long values never become
    one, and a look-up by the same long value finds the stored row.
    """
    if len(value) <= limit:
        return value
    if key:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"{value[: limit - 17]}~{digest}"
    return value[: limit - 1] + "…"


class Bounded(TypeDecorator):
    """A VARCHAR(limit) whose limit holds on every database: longer values are `fit` on the way in.

    The cut applies to every statement that binds the column, ORM or Core, and to look-ups
    (`address == :value`) as well as writes, so a key cut on the way in is found again.
    """

    impl = sa.String
    cache_ok = True

    def __init__(self, limit: int, key: bool = False) -> None:
        super().__init__(limit)
        self.limit = limit
        self.key = key

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else fit(value, self.limit, key=self.key)


def _text(limit: int, *, key: bool = False, default: object = None, **column: object):
    """A `Bounded` string field (see the module docstring)."""
    kwargs = {"sa_column_kwargs": column} if column else {}
    return Field(default=default, sa_type=Bounded(limit, key), **kwargs)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _time(nullable: bool = True, index: bool = False):
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = _text(CUSTOMER_NAME, default=..., unique=True)
    email: str | None = _text(ADDRESS, key=True)
    #: "en" or "pt"; None until chosen (`lang`, `--lang`) or read from a plainly Portuguese
    #: message (bot.router): answered in English meanwhile.
    lang: str | None = Field(default=None, max_length=8)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Identity(SQLModel, table=True):
    """A chat account on one channel; linked to a customer once it is known.

    Unlinked identities are the "unknown contacts" engineers can list.
    """

    __table_args__ = (sa.UniqueConstraint("channel", "address", name="uq_identity_channel_address"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    address: str = _text(ADDRESS, key=True, default=...)
    display_name: str | None = _text(NAME)
    # customer_id: identities of one customer ("/customer show").
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    lang: str | None = Field(default=None, max_length=8)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    last_seen_at: datetime | None = _time()
    #: When the "who are you" answer was last sent to this unknown contact (once a day).
    unknown_notice_at: datetime | None = _time()
    #: Wrong activation codes in the current window, and when that window began.
    failed_codes: int = 0
    failed_codes_since: datetime | None = _time()
    #: Answers this account got while unlinked, in the hour that began at `answers_since`.
    answers_used: int = 0
    answers_since: datetime | None = _time()
    #: When this account was last told to write a direct message instead of a public one.
    public_notice_at: datetime | None = _time()


class StrangerAnswers(SQLModel, table=True):
    """Posts that answers to unlinked accounts used on a channel, in the window begun at `since`."""

    channel: str = Field(primary_key=True, max_length=32)
    since: datetime | None = _time()
    used: int = 0


class CreditPack(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # customer_id: packs of one customer (every entitlement check).
    customer_id: int = Field(foreign_key="customer.id", index=True)
    purchased: date
    #: The last day the pack can be used, inclusive: fixed when it is granted, from the validity
    #: then in force (bot.policy.entitlements); a later change of the setting leaves it be.
    #: Indexed: the expiry reminders look for packs whose day is near.
    valid_until: date = Field(index=True)
    incidents: int = Field(ge=1)
    #: Credits currently consumed (a /bug gives one back).
    used: int = 0
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    granted_by: str | None = _text(ADDRESS, key=True)
    #: When the customer was reminded that the pack's unused credits lapse (bot.reminders; once).
    expiry_reminded_at: datetime | None = _time()
    #: Credits cancelled by an operator or engineer (a grant made by mistake): never the customer's
    #: to use. `incidents` stays the size as bought; what may be used is `incidents - cancelled`.
    cancelled: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    cancelled_at: datetime | None = _time()
    cancelled_by: str | None = _text(ADDRESS, key=True)


class IncidentState(StrEnum):
    """Where an incident is in its life (SPEC §1): open (with the team or the customer),
    resolved (the customer may reopen it at no charge for 7 days), closed."""

    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Incident(SQLModel, table=True):
    __table_args__ = (
        # "status", "any other text", "close N": a customer's incidents by state, latest first.
        sa.Index("ix_incident_customer_state", "customer_id", "state", "id"),
        # the response-target watcher and "/cases overdue": open incidents by due time.
        sa.Index("ix_incident_state_due", "state", "due_at"),
        # "/cases", "deskbot cases list": open incidents by severity, then due time.
        sa.Index("ix_incident_state_severity_due", "state", "severity", "due_at"),
        # "report billing": incidents opened in a month.
        sa.Index("ix_incident_opened_at", "opened_at"),
        # every engineer's command in a case topic, and a topic moved: the case by its topic's name,
        # case aside as Zulip compares names (bot.services.incidents._cases_in).
        sa.Index("ix_incident_topic_lower", sa.text("lower(topic)")),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id")
    pack_id: int | None = Field(default=None, foreign_key="creditpack.id")
    subject: str = _text(SUBJECT, default=...)
    #: An `IncidentState` value.
    state: str = Field(default=IncidentState.OPEN, max_length=16)
    chargeable: bool = True
    #: 1 critical, 2 high, 3 normal, 4 low (SPEC §1); cases are worked by severity, then due time.
    severity: int = Field(default=3, ge=1, le=4, sa_column_kwargs={"server_default": "3"})
    #: When `DESKBOT_URGENT_NOTIFY` was mentioned in the case topic (once per case, at severity 1).
    urgent_notified_at: datetime | None = _time()
    assignee: str | None = _text(ADDRESS, key=True)
    topic: str | None = _text(TOPIC)
    opened_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    #: When the next engineer response is due; None while the case waits on the customer.
    due_at: datetime | None = _time()
    #: When the clock of `due_at` started: `due_at` is this plus the severity's response target.
    clock_from: datetime | None = _time()
    #: The due time a warning / a missed notice was posted for (each exactly once).
    warned_for: datetime | None = _time()
    missed_for: datetime | None = _time()
    first_response_at: datetime | None = _time()
    resolved_at: datetime | None = _time()
    closed_at: datetime | None = _time()
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class IncidentMessage(SQLModel, table=True):
    __table_args__ = (
        # "status N", "/case N": the latest messages of a case; the reply route.
        sa.Index("ix_incidentmessage_incident_id", "incident_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    #: in (customer), out (engineer reply), note (internal).
    direction: str = Field(max_length=8)
    author: str = _text(ADDRESS, key=True, default=...)
    channel: str | None = Field(default=None, max_length=32)
    #: Inbound only: the identity that wrote it and what a reply should answer.
    identity_id: int | None = Field(default=None, foreign_key="identity.id")
    conversation: str | None = _text(CONVERSATION, key=True)
    body: str
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


#: A file's name as shown (the adapters keep names to this length).
FILE_NAME = 200


class IncidentAttachment(SQLModel, table=True):
    """A file that came with a customer's message on an incident (SPEC §4 "Files and images").

    `media_type` is sniffed from the bytes. `data` holds the bytes until the case topic's
    channel has uploaded them (`uploads`, JSON: channel → where), then it is cleared; kept in
    the store so that any replica, after any restart, can send the outbox row that links it.
    A file over a size limit is recorded without bytes or digest: `refused_over` is the limit.
    A file that came with text the bot kept as a draft waits with it (`waiting_for`: the
    identity whose draft it is; no incident yet) and joins the incident the draft goes to.
    """

    id: int | None = Field(default=None, primary_key=True)
    # incident_id: "status N", "/case N" list an incident's files.
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    # waiting_for: the files waiting with an identity's draft (bot.services.attachments).
    waiting_for: int | None = Field(default=None, foreign_key="identity.id", index=True)
    channel: str = Field(max_length=32)
    #: The platform message the file came with.
    message_id: str = _text(MESSAGE_ID, key=True, default=...)
    name: str = _text(FILE_NAME, default=...)
    media_type: str = Field(max_length=128)
    size: int = Field(sa_type=sa.BigInteger)
    sha256: str | None = Field(default=None, max_length=64)
    refused_over: int | None = Field(default=None, sa_type=sa.BigInteger)
    data: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    uploads: str | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class IncidentEvent(SQLModel, table=True):
    """The history: every state change of a case, by whom, when."""

    id: int | None = Field(default=None, primary_key=True)
    # incident_id: "/case N" shows the history.
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    actor: str = _text(ADDRESS, key=True, default=...)
    action: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str | None = Field(default=None, max_length=16)
    detail: str | None = None


class Draft(SQLModel, table=True):
    """Text kept while the bot asks a question (SPEC §2), for the one answer it asked for.

    `awaits` says which answer uses it (bot.services.drafts): "open" (`open` alone),
    "either" (`open` alone or `#N` alone), "reopen" (`reopen N` of `incident_id`, to which
    the text was added already, or `open` alone), "link" (an unlinked account's text, for
    after `link CODE`). `created_at` is when the question was asked.
    """

    identity_id: int = Field(primary_key=True, foreign_key="identity.id")
    text: str
    awaits: str = Field(default="open", max_length=16, sa_column_kwargs={"server_default": "open"})
    #: The resolved incident the text was added to (awaits "reopen").
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    #: The people the message with the text copied (JSON list of addresses, `Inbound.copies`): they
    #: are copied on the incident the text goes to (bot.services.copies).
    copies: str | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ActivationCode(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    #: SHA-256 of the code: a database dump does not give working codes away.
    code_hash: str = Field(sa_column_kwargs={"unique": True}, max_length=64)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = _time()
    used_by: int | None = Field(default=None, foreign_key="identity.id")


class Outbox(SQLModel, table=True):
    __table_args__ = (
        # the dispatcher: next pending rows of a channel whose time has come.
        sa.Index("ix_outbox_channel_state_next", "channel", "state", "next_attempt_at"),
        # a Zulip send retried after a crash: the messages recorded for other rows of its conversation.
        sa.Index("ix_outbox_conversation", "channel", "recipient", "topic"),
        # /metrics: depth and age of what is pending (sent rows pile up; keep them out of the index).
        sa.Index(
            "ix_outbox_pending_created",
            "created_at",
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    kind: str = Field(max_length=8)
    recipient: str | None = _text(ADDRESS, key=True)
    conversation: str | None = _text(CONVERSATION, key=True)
    topic: str | None = _text(TOPIC)
    text: str
    quote: str | None = None
    #: Topic rows that quote someone: who, as JSON (the channel writes the header; see adapters.channel.Said).
    said: str | None = None
    #: Topic rows that show a customer's files: JSON list of `adapters.channel.OutboundFile` fields.
    files: str | None = None
    #: Direct rows: the conversation's subject (the incident's, or the message's answered).
    subject: str | None = _text(SUBJECT)
    #: Direct rows: the bot's own answer (True) or a person's words (False: an engineer's reply).
    automatic: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    #: Direct rows about an incident: the people it copies on this channel (JSON list of addresses),
    #: fixed when the row is written so that every attempt carries the same ones (`IncidentCopy`).
    copies: str | None = None
    #: Direct rows: the language the text is written in, as a BCP 47 tag ("en", "pt-PT"; see
    #: `adapters.channel.Outbound.lang`); None where it is not one (an apology in both).
    lang: str | None = Field(default=None, max_length=16)
    #: A secret the text carries in clear (an activation code) until the row is sent or fails:
    #: then every occurrence in `text` is masked and this is cleared (see storage.outbox).
    secret: str | None = None
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    #: pending, sent, failed (can never succeed).
    state: str = Field(default="pending", max_length=8)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    sent_at: datetime | None = _time()
    platform_ids: str | None = None
    last_error: str | None = None


class IncidentCopy(SQLModel, table=True):
    """Someone the customer copies on an incident (issue 17): an address on a channel that gets every
    later answer on the incident beside the customer (email: in `Cc`), and whose replies in its
    thread join it. Learned from a customer's message (`added_by` the customer's address) or
    added by an engineer (`/cc`); `removed_at` set by `/cc remove`: no longer copied, and not
    learned again from the customer's mail (only `/cc add` brings it back)."""

    __table_args__ = (sa.UniqueConstraint("incident_id", "channel", "address", name="uq_incidentcopy_address"),)

    id: int | None = Field(default=None, primary_key=True)
    # incident_id: the copies of an incident (every answer on it reads them).
    incident_id: int = Field(foreign_key="incident.id", index=True)
    channel: str = Field(max_length=32)
    # address: "which incidents copy this address" (a reply from it finds its incident).
    address: str = _text(ADDRESS, key=True, default=..., index=True)
    added_by: str = _text(ADDRESS, key=True, default=...)
    added_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    removed_at: datetime | None = _time()


class PostedMessage(SQLModel, table=True):
    """A message the bot posted to a customer about an incident, by its platform id: a message that
    answers it (`Inbound.replies_to`, an email's In-Reply-To/References) joins that incident."""

    channel: str = Field(primary_key=True, max_length=32)
    platform_id: str = Field(primary_key=True, sa_type=Bounded(MESSAGE_ID, key=True))
    incident_id: int = Field(foreign_key="incident.id")


class ChannelCursor(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=128)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ProcessedInbound(SQLModel, table=True):
    """Inbound platform messages already handled: the exactly-once key."""

    channel: str = Field(primary_key=True, max_length=32)
    message_id: str = Field(primary_key=True, sa_type=Bounded(MESSAGE_ID, key=True))
    received_at: datetime = Field(sa_type=UTCDateTime)
    processed_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    #: The text of a message whose handling failed, kept for the team (see bot.intake).
    failed_text: str | None = None
