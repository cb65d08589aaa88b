"""files wait with drafts

A customer's files that came with text the bot kept as a draft (SPEC §2: "reply
open to open an incident with it") are kept with the draft and join the incident
it goes to: `incidentattachment.incident_id` may be empty meanwhile, and
`waiting_for` names the identity whose draft they wait with.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidentattachment", schema=None) as batch_op:
        batch_op.alter_column("incident_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("waiting_for", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_incidentattachment_waiting_for", "identity", ["waiting_for"], ["id"])
        batch_op.create_index("ix_incidentattachment_waiting_for", ["waiting_for"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM incidentattachment WHERE incident_id IS NULL")
    with op.batch_alter_table("incidentattachment", schema=None) as batch_op:
        batch_op.drop_index("ix_incidentattachment_waiting_for")
        batch_op.drop_constraint("fk_incidentattachment_waiting_for", type_="foreignkey")
        batch_op.drop_column("waiting_for")
        batch_op.alter_column("incident_id", existing_type=sa.Integer(), nullable=False)
