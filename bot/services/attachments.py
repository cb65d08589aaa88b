"""Files on incidents (SPEC §4 "Files and images"): recorded, and listed.

The channel fetched each file and sniffed its type (`adapters.channel.Attachment`);
here a message's files become rows of the incident (`IncidentAttachment`): name,
media type, size, SHA-256, and the bytes until a channel has uploaded them. A
file over a size limit is recorded too, without bytes, so that the case shows
what was left out. Nothing is said here: the handlers show the files and tell
people what was not passed on.

A customer's file already kept on the incident (the same SHA-256) is not recorded again: Outlook
sends the logo of a signature, and mail clients the pictures of the history they quote, with
every reply, and a case topic would show one more upload of it per message. Nothing is said of
it, to the customer or to the engineers: the file is in the topic where it first came, and in
every listing of the case; a line per message saying "the same file again" would be the same
noise as the upload, for the few customers who send a file again on purpose.

Whose a file is (its origin): the customer's ("in"), an engineer's `/reply`
("out": its bytes wait for the customer's channel), or an engineer's `/note`
("note": kept on the case, never shown to the customer; its bytes are not kept,
the file stays in the engineer's own message). The store has no column for it
yet: an engineer's file is recorded under the message id `out:<id>` or
`note:<id>` (a platform's message ids hold no colon before a digit run like
that: Zulip's and Mastodon's are numbers), so that no migration was needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlmodel import Session

from adapters.channel import Attachment, FileRefusal, Inbound, OutboundFile, size_text
from adapters.markup import inert
from storage.models import FILE_NAME, Incident, IncidentAttachment, fit

#: "in": the customer's; "out": sent with an engineer's reply; "note": kept with an engineer's note.
Origin = Literal["in", "out", "note"]
#: How the engineer views name each origin.
ORIGIN_TEXT = {"in": "from the customer", "out": "with a reply to the customer", "note": "on an internal note"}


@dataclass(frozen=True, slots=True)
class FileSummary:
    """A recorded file as the views list it."""

    name: str
    media_type: str
    size: int
    sha256: str | None
    #: The limit in bytes the file went over (it was not kept), else None.
    refused_over: int | None
    at: datetime
    origin: Origin = "in"


def record(
    session: Session, now: datetime, incident: Incident, message: Inbound, origin: Origin = "in"
) -> list[IncidentAttachment]:
    """Record the files of `message` on `incident` (the ids are known on return); one the channel
    could not fetch is not recorded (`unfetched`), nor a customer's that the incident keeps already
    (`_not_kept_already`: see the module docstring). A note's bytes are not kept: no channel ever
    uploads them. An engineer's files are all recorded: what they attach to a reply is sent."""
    message_id = message.message_id if origin == "in" else f"{origin}:{message.message_id}"
    files = [file for file in message.attachments if file.failed is None]
    if origin == "in":
        files = _not_kept_already(session, incident.id, files)
    rows = [_row(message, file, message_id, now, keep_data=origin != "note", incident_id=incident.id) for file in files]
    session.add_all(rows)
    if rows:
        session.flush()
    return rows


def _not_kept_already(session: Session, incident_id: int | None, files: list[Attachment]) -> list[Attachment]:
    """`files` but those the incident keeps already, and but a second copy of one among them. One that
    came before and was not kept (over a limit) is no file the incident keeps: sent again, it is
    recorded again, and its sender told again."""
    kept = _kept_already(session, incident_id, {file.sha256 for file in files if file.sha256})
    fresh: list[Attachment] = []
    for file in files:
        if file.sha256 is not None:
            if file.sha256 in kept:
                continue
            kept.add(file.sha256)
        fresh.append(file)
    return fresh


def _kept_already(session: Session, incident_id: int | None, digests: set[str]) -> set[str]:
    """Of `digests`, the SHA-256 of files the incident keeps (any origin: an engineer's picture that
    the customer's reply quotes back is in the topic already); none that went over a limit."""
    if incident_id is None or not digests:
        return set()
    return set(
        session.scalars(
            select(IncidentAttachment.sha256).where(
                IncidentAttachment.incident_id == incident_id,
                IncidentAttachment.sha256.in_(sorted(digests)),
                IncidentAttachment.refused_over.is_(None),
            )
        )
    )


def _row(
    message: Inbound,
    file: Attachment,
    message_id: str,
    now: datetime,
    *,
    keep_data: bool = True,
    incident_id: int | None = None,
    waiting_for: int | None = None,
) -> IncidentAttachment:
    return IncidentAttachment(
        incident_id=incident_id,
        waiting_for=waiting_for,
        channel=message.channel,
        message_id=message_id,
        name=fit(file.name, FILE_NAME),
        media_type=file.media_type,
        size=file.size,
        sha256=file.sha256,
        refused_over=file.refused_over,
        data=file.data if file.refused_over is None and keep_data else None,
        created_at=now,
    )


def wait_with_draft(session: Session, now: datetime, identity_id: int, message: Inbound) -> list[IncidentAttachment]:
    """The files of `message`, whose text the bot just kept as the identity's draft: they wait with
    it (bot.services.drafts forgets those of an earlier draft when its text is replaced)."""
    rows = [file for file in message.attachments if file.failed is None]
    if not rows:
        return []
    waiting = [_row(message, file, message.message_id, now, waiting_for=identity_id) for file in rows]
    session.add_all(waiting)
    session.flush()
    return waiting


def claim_waiting(session: Session, identity_id: int, incident: Incident) -> list[IncidentAttachment]:
    """The files waiting with the identity's draft, which just went to `incident`: now the incident's;
    one it keeps already is dropped instead (see the module docstring)."""
    rows = list(
        session.scalars(
            select(IncidentAttachment)
            .where(IncidentAttachment.waiting_for == identity_id)
            .order_by(IncidentAttachment.id)
        )
    )
    kept = _kept_already(session, incident.id, {row.sha256 for row in rows if row.sha256})
    claimed: list[IncidentAttachment] = []
    for row in rows:
        if row.sha256 is not None:
            if row.sha256 in kept:
                session.delete(row)
                continue
            kept.add(row.sha256)
        row.incident_id, row.waiting_for = incident.id, None
        claimed.append(row)
    session.flush()
    return claimed


def unfetched(message: Inbound) -> list[Attachment]:
    """The files of `message` the channel could not fetch (`Attachment.failed` says why)."""
    return [file for file in message.attachments if file.failed is not None]


def shown(rows: list[IncidentAttachment]) -> list[OutboundFile]:
    """The recorded files as an outbox row carries them to the case topic."""
    return [
        OutboundFile(
            id=row.id or 0, name=row.name, media_type=row.media_type, size=row.size, refused_over=row.refused_over
        )
        for row in rows
    ]


def of_incident(session: Session, incident_id: int, *, with_notes: bool = False) -> list[FileSummary]:
    """The files recorded on an incident, oldest first: those the customer may see (theirs and those
    sent to them), and with `with_notes` (engineers' views) those kept with internal notes too."""
    query = (
        select(
            IncidentAttachment.name,
            IncidentAttachment.media_type,
            IncidentAttachment.size,
            IncidentAttachment.sha256,
            IncidentAttachment.refused_over,
            IncidentAttachment.created_at,
            IncidentAttachment.message_id,
        )
        .where(IncidentAttachment.incident_id == incident_id)
        .order_by(IncidentAttachment.id)
    )
    if not with_notes:
        query = query.where(IncidentAttachment.message_id.not_like("note:%"))
    return [FileSummary(*row[:6], origin=_origin(row[6])) for row in session.execute(query)]


def _origin(message_id: str) -> Origin:
    prefix = message_id.partition(":")[0]
    return "out" if prefix == "out" else "note" if prefix == "note" else "in"


def described(file: FileSummary) -> str:
    """A file's record for engineers (English, no markup): whose, type, size, digest, or why it was not kept."""
    if file.refused_over is not None:
        return f"{ORIGIN_TEXT[file.origin]}, {size_text(file.size)}, not kept: over the {size_text(file.refused_over)} limit"
    return f"{ORIGIN_TEXT[file.origin]}, {file.media_type}, {size_text(file.size)}, sha256 {file.sha256}"


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A file of an engineer's reply that does not reach the customer, and why."""

    row: IncidentAttachment
    #: The limit it went over (ours or the platform's), in bytes; None when its kind is the reason.
    limit: int | None
    #: For the engineers (English, no markup).
    why: str


def sort_out(
    rows: list[IncidentAttachment], refuses: Callable[[OutboundFile], FileRefusal | None]
) -> tuple[list[IncidentAttachment], list[LeftOut]]:
    """An engineer's files for the customer's channel: those it carries, and those left out (over
    our limit when fetched, or refused by the channel: `Channel.cannot_carry`). A file left out
    keeps no bytes: nothing will upload it."""
    carried: list[IncidentAttachment] = []
    left_out: list[LeftOut] = []
    for row in rows:
        left = _left_out(row, refuses)
        if left is None:
            carried.append(row)
        else:
            left_out.append(left)
            row.data = None
    return carried, left_out


def left_out_notice(channel: str, files: list[tuple[str, int, str]], *, after_all: bool = False) -> str:
    """The case topic's notice of an engineer's files that did not reach the customer on `channel`:
    each file's name (shown inert), size, and why (markup: the caller makes a platform's words inert).
    `after_all`: the channel found so only when sending (`adapters.channel.Sent.unsent_files`)."""
    when = " after all" if after_all else ""
    lines = [f"⚠️ Not sent to the customer on {channel}{when} (they were told it was left out):"]
    lines += [f"- {inert(name) or 'file'} ({size_text(size)}): {why}" for name, size, why in files]
    return "\n".join(lines)


def hold_to_limit(rows: list[IncidentAttachment], refuses: Callable[[OutboundFile], FileRefusal | None]) -> None:
    """A customer's files for the case topic's channel: one over its size limit is recorded as not
    kept (`refused_over`, no bytes), like one over ours, so that every view says so."""
    for row in rows:
        left = _left_out(row, refuses)
        if left is not None and left.limit is not None:
            row.refused_over, row.data = left.limit, None


def _left_out(row: IncidentAttachment, refuses: Callable[[OutboundFile], FileRefusal | None]) -> LeftOut | None:
    if row.refused_over is not None:
        return LeftOut(row, row.refused_over, f"over the {size_text(row.refused_over)} limit")
    refusal = refuses(shown([row])[0])
    if refusal is None:
        return None
    limit = refusal.limit if refusal.reason == "size" else None
    why = refusal.detail or (f"over the {size_text(limit)} limit" if limit else f"{row.media_type} is not carried")
    return LeftOut(row, limit, why)
