"""The channel interface: one inbound message type, one outbound type, one ABC.

Every channel (console, Zulip, Mastodon, email) turns platform
payloads into `Inbound` and takes `Outbound` back. Nothing outside
`adapters/` knows a platform's JSON.

Delivery contract (SPEC §7):

* A channel hands each inbound message to `InboundSink.deliver`, passing the
  cursor value that becomes true once this message is handled. The sink
  records the message, runs its effects, writes the replies to the outbox and
  stores the cursor in one transaction, so the cursor never moves past a
  message that was not stored. `deliver` is idempotent per
  (channel, message_id): a redelivered message is ignored.
* `Channel.send` delivers one outbox row. It returns the platform ids it
  created (a `Sent`, which also names the people copied on the row whom the
  platform refused), raises `TransientSendError` for anything worth retrying
  later (`RecipientDeferred` when only this row's recipient is refused for now,
  so that rows to others need not wait) and `PermanentSendError` for anything
  that can never succeed. When
  `Outbound.attempt > 1` a previous attempt may have reached the platform
  before the process died: the channel must make sure it does not deliver the
  text twice (Mastodon: the same Idempotency-Key, and since keys last an
  hour, first a look for the parts already posted; Zulip: a look among the
  bot's own recent messages to the recipient for the exact content, skipping
  those the store records for other rows, `Channel.recorded_elsewhere`).
  Nothing is added to what people read for this: no reference, no markup.
* A channel may hold back one kind of message for a while
  (`Channel.held_back`: Zulip holds case-topic posts while the support stream
  is public). The dispatcher then leaves those rows waiting, in order, and
  sends the others; the runtime reports the reason as not ready.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

#: "direct": a one-to-one conversation with a person (customer or engineer).
#: "topic": a message in a case topic of the engineers' support stream.
Kind = Literal["direct", "topic"]
#: What a text is as a customer's command (`Channel.customer_command`). "names_case": a command
#: written whole, its arguments and nothing else, naming an incident, which the customer's words
#: about it may follow ("close 12", "severity 12 1", "reopen 12 it broke"); "command": any other the
#: core would run ("status", "lang pt", "open the VPN drops", "close 12 thanks").
CommandShape = Literal["names_case", "command"]


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message that reached the bot, normalised.

    `sender` is the stable identity of the author on this channel, the key a
    customer record is linked by: a Zulip user id, a Mastodon `user@domain`
    account, a console name. `conversation` is what a reply needs to find the
    conversation again (Mastodon: the status id to reply to; Zulip: the
    sender's user id). `text` is plain text with the bot's own mention removed.
    """

    channel: str
    sender: str
    conversation: str
    text: str
    message_id: str
    received_at: datetime
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    kind: Kind = "direct"
    #: Case topic name for kind == "topic".
    topic: str | None = None
    #: The case a topic message is about: the adapter reads it from its own topic name
    #: (see `Channel.case_topic`), so the core never parses a platform's topic names.
    case: int | None = None
    #: Human-readable name, for headers and new customer records.
    sender_name: str | None = None
    #: The platform's immutable user id (Zulip user id, Mastodon account id).
    sender_platform_id: str | None = None
    #: Keys this sender's identity may be stored under from before `sender` was the key
    #: (Zulip: the email the message shows): the store re-keys such an identity to `sender`.
    sender_aliases: tuple[str, ...] = ()
    #: Mastodon spoiler text: a hint for the subject of a new incident.
    subject_hint: str | None = None
    #: A message the customer made public (a non-direct Mastodon mention):
    #: the router answers "write me a direct message" and stores no content.
    public: bool = False
    #: Files that came with the message (fetched by the channel, or refused over a size limit).
    attachments: tuple[Attachment, ...] = ()
    #: Platform ids of the messages this one answers, the one it answers directly last (email: its
    #: References, then In-Reply-To). The latest of them that the bot posted about an incident of
    #: the sender's customer puts the message on that incident.
    replies_to: tuple[str, ...] = ()
    #: A case number the sender named beside the text (email: a `[#N]` tag in the subject); the core
    #: takes it only for an incident of the sender's own customer.
    case_hint: int | None = None
    #: Sent by a machine (an autoresponder, a bounce, a mailing list, the bot's own address): the
    #: core records it (on the sender's incident it names, if any) and never answers it.
    automatic: bool = False
    #: False when the channel could not verify that `sender` wrote it (email failing DMARC where
    #: the operator trusts a server's verdict): the core treats it as from an unknown sender.
    verified: bool = True
    #: The other people the sender addressed the message to on this channel, as addresses (email:
    #: `To` and `Cc` but the sender, the support address and its aliases; never `Bcc`). From a
    #: customer, they become the copied people of the incident the message joins.
    copies: tuple[str, ...] = ()
    #: The message was over the size limit and only its headers were read (email): its text and
    #: its files (listed in `attachments`, not kept) never came, and the sender is told so.
    too_large: bool = False
    #: The platform id of an earlier message that the sender edited into this one (Zulip): the core
    #: handles it as a new message with the new text, shows it as an edit, and runs no engineer
    #: command again. `message_id` is the edit's own, one per edit, so that each is handled once.
    edit_of: str | None = None


#: The name of the one `Attachment` a message over the size limit lists when none of its parts is
#: named (`Inbound.too_large`): the message itself, not kept. Engineers see it as written; an
#: answer to the customer names it in their own language (bot.handlers.passed_on).
WHOLE_MESSAGE = "(the whole message)"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with an inbound message, as the channel fetched it (SPEC §4 "Files and images").

    `media_type` is sniffed from the bytes (`adapters.download`), never the sender's word. `data`
    holds the bytes; it is None when the file was not kept: `refused_over` then gives the limit in
    bytes it went over, and `size` what had arrived when the download was cut off (at least that).
    """

    name: str
    media_type: str
    size: int
    sha256: str | None
    data: bytes | None = field(default=None, compare=False, repr=False)
    refused_over: int | None = None
    #: The file could not be fetched, and why (English, for engineers); it is not recorded. An
    #: engineer's command names it back to them (a customer's message is handled without it).
    failed: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundFile:
    """A file an outbox row carries (`Outbound.files`): the channel fetches its bytes from
    `Channel.files` by `id` and records there where it uploaded them, so a retried send uploads
    nothing twice. A file with `refused_over` set was not kept: the channel says so instead."""

    id: int
    name: str
    media_type: str
    size: int
    refused_over: int | None = None
    #: Direct rows: the file is not carried, and this (in the reader's language, no markup) says
    #: why and that the engineer knows; the channel writes it after the file's name, which it
    #: writes its own safe way, instead of uploading the file.
    left_out: str | None = None
    #: Direct rows: what the channel writes after the file's name instead (in the reader's language,
    #: no markup) if it cannot carry the file after all when sending: its bytes are no longer stored,
    #: or the platform refuses the upload. The channel then names the file in `Sent.unsent_files`,
    #: and the engineers are told. Rows written before this field existed have none: the channel
    #: then writes its own English words.
    unsent: str | None = None


@dataclass(frozen=True, slots=True)
class FileRefusal:
    """Why a channel cannot carry a file to a person (`Channel.cannot_carry`): its kind
    ("type": the platform takes no such file) or its size ("size": over `limit` bytes)."""

    reason: Literal["type", "size"]
    limit: int | None = None
    #: For the engineers (English, no markup): the platform's own rule, e.g. "Mastodon takes images, video and audio".
    detail: str = ""


def size_text(size: int) -> str:
    """A file's size for people, alike in every view: "2.4 MB", "12.5 KB", "80 bytes" (1 MB = 1024 KB)."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"


class FileStore(Protocol):
    """Where the bytes of files wait until a channel has uploaded them (implemented by `bot`)."""

    def data(self, file_id: int) -> bytes | None:
        """The bytes of file `file_id`, or None if the store no longer has them."""

    def uploaded(self, file_id: int, channel: str) -> str | None:
        """Where an earlier attempt uploaded the file on `channel` (a URL or platform id), or None."""

    def record_upload(self, file_id: int, channel: str, where: str) -> None:
        """Remember, committed at once, that the file is uploaded on `channel` at `where`."""


@dataclass(frozen=True, slots=True)
class Said:
    """Who a quoted text in a case topic is from: the channel writes the header above the quote
    in its own markup (the core never writes platform markup)."""

    #: The customer's display name, or the engineer's email.
    name: str
    #: The channel the text came in or went out on.
    channel: str
    #: The customer's address on that channel; None for an engineer.
    address: str | None = None
    #: "customer": they wrote the quote; "engineer": they sent it to the customer.
    role: Literal["customer", "engineer"] = "customer"
    #: The subject the customer gave their message (an email's, cleaned of "Re:" and tags), if any.
    subject: str | None = None
    #: The quote is the new text of an earlier message of theirs, which they edited (`Inbound.edit_of`).
    edited: bool = False


@dataclass(frozen=True, slots=True)
class Outbound:
    """One outbox row to deliver.

    `text` is written by the bot or an engineer and is trusted markup.
    `quote` is untrusted customer text that the channel must render inert
    (Zulip: inside a code fence that no line of it can close).
    """

    outbox_id: int
    channel: str
    kind: Kind
    text: str
    #: Direct: the recipient's identity on the channel (Zulip user id, acct, name).
    recipient: str | None = None
    #: Direct: what to reply to (Mastodon status id), if any.
    conversation: str | None = None
    #: Topic: the case topic's name.
    topic: str | None = None
    quote: str | None = None
    #: 1 on the first try; > 1 means an earlier try may have gone through.
    attempt: int = 1
    #: Topic: whose words `quote` holds; the channel writes the header line (then `text` is empty).
    said: Said | None = None
    #: When the row was written: no earlier post can be this row's (a channel without
    #: idempotency keys looks for its earlier send from then on).
    written_at: datetime | None = None
    #: Topic: the customer's files shown under the header (uploaded by the channel, or noted as not kept).
    #: Direct: an engineer's files for the customer (uploaded or attached by the channel; one with
    #: `left_out` set is named with that sentence instead).
    files: tuple[OutboundFile, ...] = ()
    #: Direct: the incident the row is about, if any (email: the `[#N]` of the subject).
    case: int | None = None
    #: Direct: the subject of the conversation (the incident's, or that of the message answered).
    subject: str | None = None
    #: Direct: written by the bot on its own in answer to a message (email: `Auto-Submitted:
    #: auto-replied`); False for a person's words (an engineer's reply).
    automatic: bool = True
    #: Direct: people copied on the incident the row is about, as addresses on this channel (email:
    #: `Cc`); a channel that cannot copy anyone ignores them.
    copies: tuple[str, ...] = ()
    #: Direct: the language `text` is written in, as a BCP 47 tag ("en", "pt-PT"), for a platform that
    #: tags a post with it (Mastodon: screen readers and the translate button go by it) or a mail's
    #: `Content-Language`; None when unknown or mixed.
    lang: str | None = None


class Sent(list[str]):
    """What `Channel.send` returns when the row was delivered but some of the people copied on it
    (`Outbound.copies`) were not: the platform ids, as a plain list would be, and `refused_copies`,
    each refused address with the platform's reason (its own words, untrusted: the core shows them
    inert). The row stays sent and is never sent again for them; the dispatcher tells the engineers
    in the incident's case topic, once per address, with the row's delivery. Those refused only for
    now are named apart (`deferred_copies`): they are sent the same words later, without the others.
    Files of a direct row the channel could not carry after all (`OutboundFile.unsent`) are named in
    `unsent_files`: the row went without them, and the engineers are told in the case topic.

    A return value rather than a callback set by the runtime (`recorded_elsewhere`, `on_trouble`):
    the refusals belong to this one delivery and are known when `send` returns, so the dispatcher
    records them in the transaction that marks the row sent, there is nothing to wire, and a channel
    that copies nobody keeps returning its plain list.
    """

    def __init__(
        self,
        ids: Iterable[str] = (),
        refused_copies: Mapping[str, str] | None = None,
        deferred_copies: Mapping[str, str] | None = None,
        unsent_files: Mapping[int, str] | None = None,
    ) -> None:
        super().__init__(ids)
        #: Refused address -> why, in the platform's words (e.g. an SMTP reply "550 5.1.1 no such user").
        self.refused_copies: dict[str, str] = dict(refused_copies or {})
        #: Addresses refused for now (email: a `4xx` at `RCPT TO`, greylisting) -> why. The dispatcher
        #: writes them a row with the same words, tried later as any row whose recipient was refused
        #: for now (`RecipientDeferred`); nobody else gets the mail twice.
        self.deferred_copies: dict[str, str] = dict(deferred_copies or {})
        #: File id (`OutboundFile.id`) -> why it did not go, for the engineers (English; a platform's
        #: words in it are untrusted: the core shows them inert).
        self.unsent_files: dict[int, str] = dict(unsent_files or {})


class ChannelError(Exception):
    """Base of the errors a channel reports; the message is one clear line."""


class PermanentChannelError(ChannelError):
    """Start-up can never succeed as configured (bad credentials, public stream)."""


class TransientChannelError(ChannelError):
    """The platform is unreachable or failing for now; try again later."""


class TransientSendError(ChannelError):
    """This send failed but may succeed later. `retry_after` in seconds if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RecipientDeferred(TransientSendError):
    """The platform refused this row's recipient for now, not the channel (SMTP `4xx` at `RCPT`:
    a mailbox full, greylisting): the row is retried after `retry_after`, and rows to other
    recipients go on meanwhile; rows to the same recipient wait behind it, in their order.
    `copies_left`: when some of the people copied on the row took it, those the retry is still to
    copy (the others have it); None when nobody took it (the row's copies stay). `refused_copies`:
    those of them the platform refused for good meanwhile, each with its reply, as `Sent` names
    them: the retry leaves them out, and the engineers are told."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        copies_left: tuple[str, ...] | None = None,
        refused_copies: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, retry_after)
        self.copies_left = copies_left
        self.refused_copies: dict[str, str] = dict(refused_copies or {})


class PermanentSendError(ChannelError):
    """This send can never succeed (4xx other than rate limits)."""


class InboundSink(Protocol):
    """What a channel hands its messages to (implemented by `bot`)."""

    def deliver(self, message: Inbound, *, cursor: tuple[str, str] | None = None) -> None:
        """Record and handle `message`, storing `cursor` (key, value) in the same transaction."""

    def deliver_many(self, items: list[tuple[Inbound, tuple[str, str] | None]], *, backlog: bool = False) -> None:
        """`deliver` each (message, cursor) in order; a catch-up page goes through in one transaction.
        `backlog`: messages that came while the channel was away (not a burst it is receiving live)."""

    def get_cursor(self, key: str) -> str | None:
        """The stored cursor value for `key` (namespaced by the channel), or None."""

    def set_cursor(self, key: str, value: str) -> None:
        """Store a cursor on its own (e.g. after skipping messages that need no handling)."""

    def topic_renamed(self, channel: str, old: str, new: str) -> None:
        """Every message of topic `old` is in topic `new` now (a person renamed the topic, marked it
        resolved, or merged it into `new`): a case whose topic is `old` is in `new` from now on, and
        what the bot has yet to post in `old` goes there. Told as it happens (a channel that was not
        receiving never learns of it); telling it again changes nothing more."""


def engineer_by_setting(email: str, configured: frozenset[str]) -> str | None:
    """`email` as an engineer's name where DESKBOT_ENGINEERS (`configured`, its emails) names it,
    or names no email at all: without a platform to ask, the setting is all there is to go by."""
    email = email.strip().lower()
    return email if not configured or email in configured else None


class Channel(ABC):
    """A chat platform the bot talks through."""

    #: Short name stored with every message: "zulip", "mastodon", "console".
    name: ClassVar[str]
    #: Does this channel carry the engineers' case topics?
    carries_case_topics: ClassVar[bool] = False
    #: The platform's posting budget for the bot's account, as (posts, seconds); None: unbounded.
    #: Answers to unlinked accounts may use a fifth of it (bot.router), so that strangers can never
    #: hold up customers.
    posting_budget: ClassVar[tuple[int, float] | None] = None
    #: Characters one post carries, to count a long answer as the posts it becomes (None: one post).
    post_size: ClassVar[int | None] = None
    #: Set by the runtime: told the seconds of each wait a platform rate limit imposes.
    on_rate_limit_wait: Callable[[float], None] | None = None
    #: Set by the runtime: told why each failed attempt to reach the platform failed.
    on_trouble: Callable[[str], None] | None = None
    #: Set by the runtime: of the platform ids given, those the store records as sent for outbox
    #: rows other than the given one. A channel that looks for its own earlier send of a row by
    #: its content (Zulip) skips them: two rows may say the same words to the same person.
    recorded_elsewhere: Callable[[Outbound, set[str]], set[str]] | None = None
    #: Set by the runtime: the bytes of `Outbound.files` and where they were uploaded.
    files: FileStore | None = None
    #: Set by the runtime (DESKBOT_MAX_ATTACHMENT_MB): the largest file a customer's message keeps.
    max_attachment_bytes: int = 25 * 1024 * 1024
    #: Set by the runtime: what a text is as a customer's command (`CommandShape`), None when it is
    #: none (no command word, or words after it that are no arguments of it: "Status of my order?").
    #: For a channel that carries a command beside the text (email: a new mail's subject, over the
    #: customer's words in its body); the commands are the core's, declared once. Unset: none is read.
    customer_command: Callable[[str], CommandShape | None] | None = None
    #: The most automatic answers one address gets an hour on this channel (None: no cap beyond
    #: the strangers' allowance): two robots answering each other can never loop (email).
    answers_per_hour: int | None = None
    #: Does a thread of the channel's own read the platform while `receive`'s thread handles what
    #: it read (Mastodon's stream)? Then that thread sends the answers to what it hands over itself
    #: (`Dispatcher.inline`): nothing goes unread meanwhile, and the answer saves a hop to the
    #: send loop's thread (a send that waits, for a rate limit or a retry, holds up the handling
    #: of what was read meanwhile, as it would hold up those answers on the loop anyway; never the
    #: reading). A channel whose receiving thread is its reader (Zulip's long-poll) leaves them to
    #: the loop, and polls again while they are on the wire.
    reads_on_its_own_thread: ClassVar[bool] = False

    def report_rate_limit_wait(self, seconds: float) -> None:
        """Channels call this whenever they hold back for a rate limit (for /metrics)."""
        if self.on_rate_limit_wait is not None:
            self.on_rate_limit_wait(seconds)

    def report_trouble(self, reason: str) -> None:
        """Channels call this, rather than log a warning, each time an attempt to reach the platform
        fails and will be retried: the runtime tells an outage once, not at every retry
        (`bot.channel_health`). With nobody listening, it is logged as a warning."""
        if self.on_trouble is not None:
            self.on_trouble(reason)
        else:
            logging.getLogger("deskbot.adapters").warning("%s: %s", self.name, reason)

    def case_topic(self, number: int, customer: str, subject: str) -> str:
        """The name of case `number`'s topic, for a channel that carries case topics.

        The channel decides the form and length (and reads the number back into
        `Inbound.case`); the core stores the name with the incident when it opens.
        """
        return f"#{number} {customer}: {subject}"

    def held_back(self) -> dict[Kind, str]:
        """The kinds of message this channel may not post for now, each with the reason (Zulip: case
        topics while the support stream is public); empty when everything may be posted.

        The dispatcher leaves rows of a held kind waiting, in order, and sends the others; they go
        out once the kind is no longer held. The runtime is not ready meanwhile, with the reason.
        """
        return {}

    def cannot_carry(self, file: OutboundFile) -> FileRefusal | None:
        """Why this channel cannot deliver `file` to a person in a direct message (its type, or a
        size over the platform's limit), or None when it can. Asked when an engineer's `/reply`
        is handled, so that a file left out is said to both sides (SPEC §4 "Files and images")."""
        return None

    def words_for_customer(self, text: str, customer_channel: str) -> str:
        """An engineer's words written on this channel (the one that carries case topics), as the
        customer on `customer_channel` is to read them (SPEC §2: customers never see the bot's
        internal references or markup meant for Zulip). As written, here."""
        return text

    def their_words(self, value: str) -> str:
        """A customer's own words (a subject, an excerpt, a file's name) inside one of the bot's
        sentences to them on this channel, shown so that they cannot act there (Zulip: as markdown).
        As written, here: email is plain text and Mastodon neutralises every mention it posts."""
        return value

    def engineer_name(self, message: Inbound) -> str | None:
        """The name the sender of `message` works under as an engineer, if this channel knows them
        as one (Zulip: by user id, from DESKBOT_ENGINEERS); None for anyone else."""
        return None

    def is_engineer(self, address: str) -> bool:
        """Whether the account `address` (as `Inbound.sender` gives it) is an engineer's here: an
        engineer who wrote to the bot is not one of the unknown contacts `/contacts` lists."""
        return False

    def engineer_at(self, email: str, configured: frozenset[str]) -> str | None:
        """The name the engineer whose account has the address `email` works under here (what
        `engineer_name` gives for their messages: an `/assign` by address must match their own
        `/cases mine`), or None if it is no engineer's. `configured` holds the emails
        DESKBOT_ENGINEERS names. A channel that knows no accounts (the console) takes the
        setting's word (`engineer_by_setting`). Raises ChannelError when the platform cannot be
        asked now."""
        return engineer_by_setting(email, configured)

    def mention(self, engineer: str) -> str:
        """What notifies the engineer who works under the name `engineer` (as `engineer_name` gives
        it) when put in the bot's own text on this channel (Zulip: `@**Full Name|id**`), or "" when
        the channel cannot or does not notify (here: never). Never fails: a name this channel cannot
        place gets no mention, never a broken one."""
        return ""

    def start(self) -> None:
        """Check configuration and credentials; raise PermanentChannelError/TransientChannelError."""

    @abstractmethod
    def receive(self, sink: InboundSink, stop: threading.Event) -> None:
        """Receive until `stop` is set, handing every message to `sink.deliver`.

        Returns when `stop` is set. Raises TransientChannelError when the
        connection is lost in a way the caller should back off from.
        """

    @abstractmethod
    def send(self, message: Outbound) -> list[str]:
        """Deliver one outbox row; return the platform ids of what was posted (a `Sent` to report
        people copied on the row whom the platform refused, though the row was delivered)."""

    @property
    def connected(self) -> bool:
        """For /readyz: is the channel currently receiving?"""
        return True

    def close(self) -> None:
        """Release connections; called once at shutdown."""
