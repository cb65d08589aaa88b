"""bounded text columns and outbox secret

Longer columns for what platforms send (a Mastodon display name of 2,048
characters failed on PostgreSQL), the outbox's `secret`, and the activation
codes that rows already sent still carried in clear, masked.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 05:50:38.785484
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: (table, column, old length, new length, nullable)
LONGER = [
    ("creditpack", "granted_by", 320, 512, True),
    ("customer", "email", 320, 512, True),
    ("engineerpin", "email", 320, 512, False),
    ("identity", "address", 320, 512, False),
    ("identity", "display_name", 200, 2048, True),
    ("incident", "assignee", 320, 512, True),
    ("incidentevent", "actor", 320, 512, False),
    ("incidentmessage", "author", 320, 512, False),
    ("incidentmessage", "conversation", 320, 1024, True),
    ("outbox", "recipient", 320, 512, True),
    ("outbox", "conversation", 320, 1024, True),
    ("processedinbound", "message_id", 128, 512, False),
]

#: How the engineer answers of `/customer add` and `/customer code` showed a code, and its mask
#: (storage.outbox.SECRET_MASK; copied, as a migration must not change when the code does).
_SENT_CODE = re.compile(r"link ([A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4})\)")
_MASK = "[redacted]"


def _alter(to_new: bool) -> None:
    by_table: dict[str, list[tuple[str, int, int, bool]]] = {}
    for table, column, old, new, nullable in LONGER:
        by_table.setdefault(table, []).append((column, old, new, nullable))
    for table, columns in by_table.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, old, new, nullable in columns:
                batch_op.alter_column(
                    column,
                    existing_type=sa.String(length=old if to_new else new),
                    type_=sa.String(length=new if to_new else old),
                    existing_nullable=nullable,
                )


def upgrade() -> None:
    _alter(to_new=True)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret", sa.String(), nullable=True))
    _mask_codes_already_sent()


def _mask_codes_already_sent() -> None:
    outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("text", sa.String), sa.column("state"))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(outbox.c.id, outbox.c.text).where(
            outbox.c.state != "pending", outbox.c.text.like("%the customer sends: link %")
        )
    ).all()
    for row_id, text in rows:
        masked = text
        for code in set(_SENT_CODE.findall(text)):
            masked = masked.replace(code, _MASK)
        if masked != text:
            connection.execute(sa.update(outbox).where(outbox.c.id == row_id).values(text=masked))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("secret")
    _alter(to_new=False)
