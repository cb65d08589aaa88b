"""an index on a case's topic name, case aside

Every engineer's command in a case topic finds its case by the topic's name as Zulip compares
names, regardless of case (`lower(topic)`, bot.services.incidents._cases_in); so does a topic
moved. Without an index each of them read every incident.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 22:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_incident_topic_lower", "incident", [sa.text("lower(topic)")], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incident_topic_lower", table_name="incident")
