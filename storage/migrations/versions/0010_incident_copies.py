"""incident copies

The people a customer copies stay in the conversation (issue 17):

* `incidentcopy`: an address on a channel copied on an incident (learned from
  the `To`/`Cc` of the customer's mail, or added by an engineer with `/cc`),
  until `removed_at`;
* `outbox.copies`: the addresses a direct row about an incident copies (JSON),
  fixed when the row is written so that a retried send carries the same ones.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 12:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.models import Bounded, UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidentcopy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("address", Bounded(512, True), nullable=False),
        sa.Column("added_by", Bounded(512, True), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "channel", "address", name="uq_incidentcopy_address"),
    )
    with op.batch_alter_table("incidentcopy", schema=None) as batch_op:
        batch_op.create_index("ix_incidentcopy_incident_id", ["incident_id"], unique=False)
        batch_op.create_index("ix_incidentcopy_address", ["address"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copies", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("copies")
    with op.batch_alter_table("incidentcopy", schema=None) as batch_op:
        batch_op.drop_index("ix_incidentcopy_address")
        batch_op.drop_index("ix_incidentcopy_incident_id")
    op.drop_table("incidentcopy")
