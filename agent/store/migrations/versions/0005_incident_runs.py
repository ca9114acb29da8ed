"""Incident runs are scheduled (group wait) and claimed with a lease.

Revision ID: 0005_incident_runs
Revises: 0004_incident_notified
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_incident_runs"
down_revision = "0004_incident_notified"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.add_column(sa.Column("run_after", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_incident_run_after", ["run_after"])


def downgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.drop_index("ix_incident_run_after")
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
        batch.drop_column("run_after")
