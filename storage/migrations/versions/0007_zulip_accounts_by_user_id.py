"""zulip accounts by user id

Engineers are recognised by their Zulip user id (DESKBOT_ENGINEERS: ids, emails
resolved at start, user groups), so the pins that tied an engineer's email to
the first account that wrote with it are gone (table `engineerpin`). Zulip
identities are keyed by user id from now on; one stored under an email is
re-keyed the first time it writes (bot.services.customers.identify), so no row
changes here.

A Zulip send retried after a crash is recognised by its content, skipping the
messages recorded for other rows of the same conversation: those rows are found
through `ix_outbox_conversation`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("engineerpin")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_conversation", ["channel", "recipient", "topic"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_conversation")
    op.create_table(
        "engineerpin",
        sa.Column("email", sa.String(length=512), nullable=False),
        sa.Column("platform_user_id", sa.String(length=64), nullable=False),
        sa.Column("pinned_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("email"),
    )
