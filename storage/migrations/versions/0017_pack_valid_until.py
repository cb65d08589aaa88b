"""a pack's last valid day, fixed at its grant

`creditpack.valid_until` is the last day a pack can be used, inclusive. Until now every rule
counted it from the purchase date and the current DESKBOT_PACK_VALIDITY_MONTHS, so shortening
the setting ended packs customers had paid for. A pack granted from now on keeps the day the
setting in force at its grant gives it; a pack granted before gets the day the setting in force
at this upgrade gives it (`storage.db.upgrade` passes the setting as
`config.attributes["pack_validity_months"]`; the plain `alembic` command, which has no settings,
uses the default year).

The day is counted in Python, by the rule the grant uses (`months_after`): SQLite's and
PostgreSQL's date functions clamp a month's end differently (31 Jan + 1 month).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import context, op

from bot.policy.entitlements import months_after

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

#: DESKBOT_PACK_VALIDITY_MONTHS' default (bot.config): a year.
DEFAULT_MONTHS = 12

_packs = sa.table(
    "creditpack", sa.column("id", sa.Integer()), sa.column("purchased", sa.Date()), sa.column("valid_until", sa.Date())
)


def upgrade() -> None:
    months = context.config.attributes.get("pack_validity_months", DEFAULT_MONTHS)
    with op.batch_alter_table("creditpack", schema=None) as batch_op:
        batch_op.add_column(sa.Column("valid_until", sa.Date(), nullable=True))
    bind = op.get_bind()
    # One UPDATE per purchase date, not per pack: packs bought on one day end on one day.
    days = bind.scalars(sa.select(_packs.c.purchased).distinct()).all()
    if days:
        bind.execute(
            _packs.update()
            .where(_packs.c.purchased == sa.bindparam("bought"))
            .values(valid_until=sa.bindparam("last_day")),
            [{"bought": day, "last_day": months_after(day, months)} for day in days],
        )
    with op.batch_alter_table("creditpack", schema=None) as batch_op:
        batch_op.alter_column("valid_until", existing_type=sa.Date(), nullable=False)
        batch_op.create_index(batch_op.f("ix_creditpack_valid_until"), ["valid_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("creditpack", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_creditpack_valid_until"))
        batch_op.drop_column("valid_until")
