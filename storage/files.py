"""Where a customer's files wait until a channel has uploaded them (`adapters.channel.FileStore`).

The bytes are kept in the store (`IncidentAttachment.data`), not on a local
disk: any replica sharing the database can send the outbox row that links a
file, after any restart. Where a channel uploaded a file is committed the
moment the upload succeeds, before the row is marked sent, so a row retried
after a crash links the same upload instead of uploading again; the bytes are
then no longer needed and are dropped.
"""

from __future__ import annotations

import json

from sqlalchemy import Engine
from sqlmodel import Session

from storage.models import IncidentAttachment


class StoredFiles:
    """`FileStore` over the incident store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def data(self, file_id: int) -> bytes | None:
        with Session(self.engine) as session:
            row = session.get(IncidentAttachment, file_id)
            return None if row is None else row.data

    def uploaded(self, file_id: int, channel: str) -> str | None:
        with Session(self.engine) as session:
            row = session.get(IncidentAttachment, file_id)
            return None if row is None or not row.uploads else json.loads(row.uploads).get(channel)

    def record_upload(self, file_id: int, channel: str, where: str) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(IncidentAttachment, file_id)
            if row is not None:
                row.uploads = json.dumps({**json.loads(row.uploads or "{}"), channel: where})
                row.data = None
