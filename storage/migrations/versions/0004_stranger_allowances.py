"""stranger allowances

How many answers each unlinked account got in the current hour, when it last
got the pointer to direct messages for a public mention, and how many posts
answers to strangers used per channel in the current window of its budget.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 06:00:00
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answers_used", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("answers_since", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("public_notice_at", UTCDateTime(), nullable=True))
    op.create_table(
        "strangeranswers",
        sa.Column("channel", sa.String(length=32), primary_key=True),
        sa.Column("since", UTCDateTime(), nullable=True),
        sa.Column("used", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("strangeranswers")
    with op.batch_alter_table("identity", schema=None) as batch_op:
        batch_op.drop_column("public_notice_at")
        batch_op.drop_column("answers_since")
        batch_op.drop_column("answers_used")
