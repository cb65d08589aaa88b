"""cancelled credits

An operator or engineer can cancel a pack's unused credits (a grant made by mistake:
`deskbot credits cancel`, `/credits cancel`). The pack keeps its size as bought and
says how many were cancelled, when and by whom.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 16:10:00
"""

import sqlalchemy as sa
from alembic import op

from storage.models import Bounded, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("creditpack", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancelled", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("cancelled_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("cancelled_by", Bounded(512, True), nullable=True))


def downgrade() -> None:
    # Without the column the cancelled credits would be usable again: the pack shrinks instead.
    op.execute("UPDATE creditpack SET incidents = incidents - cancelled WHERE cancelled > 0")
    with op.batch_alter_table("creditpack", schema=None) as batch_op:
        batch_op.drop_column("cancelled_by")
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("cancelled")
