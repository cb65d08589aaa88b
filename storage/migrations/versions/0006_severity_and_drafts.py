"""severity and drafts

Every incident has a severity (1 critical … 4 low, default 3), remembers when
`DESKBOT_URGENT_NOTIFY` was mentioned in its topic and when the clock of its due
time started (a change of severity counts the new target from there); `/cases`
lists open cases by severity, then due time. A draft says which answer uses it (`awaits`) and, when its
text was added to a resolved incident too, which one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("severity", sa.Integer(), nullable=False, server_default="3"))
        batch_op.add_column(sa.Column("urgent_notified_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("clock_from", UTCDateTime(), nullable=True))
        batch_op.create_index("ix_incident_state_severity_due", ["state", "severity", "due_at"], unique=False)
    # A case never answered has waited since it opened; for the others the start of the clock
    # is not known, and a change of severity counts the new target from the change.
    op.execute(
        "UPDATE incident SET clock_from = opened_at"
        " WHERE state = 'open' AND due_at IS NOT NULL AND first_response_at IS NULL"
    )
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.add_column(sa.Column("awaits", sa.String(length=16), nullable=False, server_default="open"))
        batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_draft_incident_id_incident", "incident", ["incident_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.drop_constraint("fk_draft_incident_id_incident", type_="foreignkey")
        batch_op.drop_column("incident_id")
        batch_op.drop_column("awaits")
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_state_severity_due")
        batch_op.drop_column("clock_from")
        batch_op.drop_column("urgent_notified_at")
        batch_op.drop_column("severity")
