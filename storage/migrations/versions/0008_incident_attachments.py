"""incident attachments

A customer's files (Zulip uploads, Mastodon media) are recorded on their
incident: name, sniffed media type, size and SHA-256, and the bytes until the
case topic's channel has uploaded them (`uploads`). A file over a size limit is
recorded without bytes (`refused_over`: the limit). Topic rows that show files
list them (`outbox.files`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.models import Bounded, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidentattachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("message_id", Bounded(512, True), nullable=False),
        sa.Column("name", Bounded(200), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("refused_over", sa.BigInteger(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("uploads", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incidentattachment", schema=None) as batch_op:
        batch_op.create_index("ix_incidentattachment_incident_id", ["incident_id"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("files", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("files")
    with op.batch_alter_table("incidentattachment", schema=None) as batch_op:
        batch_op.drop_index("ix_incidentattachment_incident_id")
    op.drop_table("incidentattachment")
