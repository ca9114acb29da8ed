"""When an incident's people were last told, for the repeat interval.

Revision ID: 0004_incident_notified
Revises: 0003_deployments
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_incident_notified"
down_revision = "0003_deployments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.add_column(sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.drop_column("last_notified_at")
