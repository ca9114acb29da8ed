"""Failovers held until the route goes back; deployments name their region.

Revision ID: 0007_failovers
Revises: 0006_approvals
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_failovers"
down_revision = "0006_approvals"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "failover",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False, unique=True),
        sa.Column("moved", sa.Boolean(), nullable=False),
        sa.Column("primary", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("next_try_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("settled_at", TS, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_failover_incident_id", "failover", ["incident_id"])
    op.create_index("ix_failover_service", "failover", ["service"])
    op.create_index("ix_failover_status", "failover", ["status"])
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("region", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.drop_column("region")
    op.drop_index("ix_failover_status", "failover")
    op.drop_index("ix_failover_service", "failover")
    op.drop_index("ix_failover_incident_id", "failover")
    op.drop_table("failover")
