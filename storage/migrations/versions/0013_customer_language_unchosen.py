"""a customer's language may be unchosen

`/customer add` made every customer English, so a Portuguese customer added by
an engineer was answered in English until they sent `idioma pt`. `customer.lang`
may now be NULL: nobody chose it yet. Such a customer is answered in English
until they write plainly Portuguese, which then becomes their language (the rule
an unlinked account already followed). Existing rows keep their language: a
stored `en` cannot tell a choice from the old default.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:30:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.alter_column("lang", existing_type=sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True)


def downgrade() -> None:
    op.execute(sa.text("UPDATE customer SET lang = 'en' WHERE lang IS NULL"))
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.alter_column("lang", existing_type=sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False)
