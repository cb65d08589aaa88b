"""the language of a direct outbox row

A direct answer is written in the customer's language; the channel tags what it posts with it
where the platform can (Mastodon's `language`, which screen readers and the translate button go
by; a mail's `Content-Language`). Rows written before have none: they go untagged, as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 04:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lang", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("lang")
