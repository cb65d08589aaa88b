"""copies wait with drafts

The people a customer's mail copies (issue 17) are copied on the incident the
mail's text goes to; when the text is kept as a draft ("reply open to open an
incident with it"), they wait with it: `draft.copies` (JSON list of addresses).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:45:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copies", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("draft", schema=None) as batch_op:
        batch_op.drop_column("copies")
