"""A customer's files on their incidents (SPEC §4 "Files and images"): recorded, and listed.

The channel fetched each file and sniffed its type (`adapters.channel.Attachment`);
here a message's files become rows of the incident (`IncidentAttachment`): name,
media type, size, SHA-256, and the bytes until the case topic's channel has
uploaded them. A file over a size limit is recorded too, without bytes, so that
the case shows what was left out. Nothing is said here: the customer handler
shows the files in the case topic and tells the customer what was not kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from adapters.channel import Inbound, OutboundFile, size_text
from storage.models import FILE_NAME, Incident, IncidentAttachment, fit


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


def record(session: Session, now: datetime, incident: Incident, message: Inbound) -> list[IncidentAttachment]:
    """Record the files of `message` on `incident` (the ids are known on return)."""
    rows = [
        IncidentAttachment(
            incident_id=incident.id,
            channel=message.channel,
            message_id=message.message_id,
            name=fit(file.name, FILE_NAME),
            media_type=file.media_type,
            size=file.size,
            sha256=file.sha256,
            refused_over=file.refused_over,
            data=file.data if file.refused_over is None else None,
            created_at=now,
        )
        for file in message.attachments
    ]
    session.add_all(rows)
    if rows:
        session.flush()
    return rows


def shown(rows: list[IncidentAttachment]) -> list[OutboundFile]:
    """The recorded files as an outbox row carries them to the case topic."""
    return [
        OutboundFile(
            id=row.id or 0, name=row.name, media_type=row.media_type, size=row.size, refused_over=row.refused_over
        )
        for row in rows
    ]


def of_incident(session: Session, incident_id: int) -> list[FileSummary]:
    """Every file recorded on an incident, oldest first."""
    rows = session.execute(
        select(
            IncidentAttachment.name,
            IncidentAttachment.media_type,
            IncidentAttachment.size,
            IncidentAttachment.sha256,
            IncidentAttachment.refused_over,
            IncidentAttachment.created_at,
        )
        .where(IncidentAttachment.incident_id == incident_id)
        .order_by(IncidentAttachment.id)
    )
    return [FileSummary(*row) for row in rows]


def described(file: FileSummary) -> str:
    """A file's record for engineers (English, no markup): type, size, digest, or why it was not kept."""
    if file.refused_over is not None:
        return f"{size_text(file.size)}, not kept: over the {size_text(file.refused_over)} limit"
    return f"{file.media_type}, {size_text(file.size)}, sha256 {file.sha256}"
