"""credit expiry reminders

A customer is reminded once, in the month before a pack's last valid day, that its
unused credits lapse (bot.reminders): `creditpack.expiry_reminded_at` says when.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 13:45:00
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("creditpack", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expiry_reminded_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("creditpack", schema=None) as batch_op:
        batch_op.drop_column("expiry_reminded_at")
