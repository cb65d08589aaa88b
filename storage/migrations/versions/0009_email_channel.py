"""email channel

What the email channel needs of the store, kept generic (issue 11):

* `postedmessage`: the platform ids of the messages the bot posted to customers
  about an incident (an email's Message-ID), so that a message answering one
  (`Inbound.replies_to`) joins that incident;
* `outbox.subject`: a direct row's conversation subject (`Re: [#N] subject`);
* `outbox.automatic`: the bot's own answer, or a person's words (an engineer's
  reply carries no `Auto-Submitted`);
* every customer with an email address gets that address as a linked email
  identity (lower case), as `customers add --email` does from now on, unless
  the address is an identity of another customer already.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 12:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.models import Bounded

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postedmessage",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("platform_id", Bounded(512, True), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("channel", "platform_id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", Bounded(200), nullable=True))
        batch_op.add_column(sa.Column("automatic", sa.Boolean(), server_default=sa.true(), nullable=False))
    _link_customer_emails()


def _link_customer_emails() -> None:
    connection = op.get_bind()
    customer = sa.table("customer", sa.column("id"), sa.column("email"))
    identity = sa.table(
        "identity",
        sa.column("id"),
        sa.column("channel"),
        sa.column("address"),
        sa.column("customer_id"),
        sa.column("created_at"),
        sa.column("failed_codes"),
        sa.column("answers_used"),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    for customer_id, email in connection.execute(sa.select(customer.c.id, customer.c.email)).all():
        address = (email or "").strip().lower()
        if not address:
            continue
        found = connection.execute(
            sa.select(identity.c.id, identity.c.customer_id).where(
                identity.c.channel == "email", identity.c.address == address
            )
        ).first()
        if found is None:
            connection.execute(
                identity.insert().values(
                    channel="email",
                    address=address,
                    customer_id=customer_id,
                    created_at=now,
                    failed_codes=0,
                    answers_used=0,
                )
            )
        elif found.customer_id is None:
            connection.execute(identity.update().where(identity.c.id == found.id).values(customer_id=customer_id))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("automatic")
        batch_op.drop_column("subject")
    op.drop_table("postedmessage")
