"""Approval requests: one row per planned action that waits for a person.

Revision ID: 0006_approvals
Revises: 0005_incident_runs
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_approvals"
down_revision = "0005_incident_runs"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "approval",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("action_key", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("runbook", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_via", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("slack_channel", sa.String(64), nullable=True),
        sa.Column("slack_ts", sa.String(64), nullable=True),
        sa.Column("settled_at", TS, nullable=True),
        sa.UniqueConstraint("incident_id", "action_key", name="uq_approval_action"),
    )
    op.create_index("ix_approval_incident_id", "approval", ["incident_id"])
    op.create_index("ix_approval_status", "approval", ["status"])


def downgrade() -> None:
    op.drop_index("ix_approval_status", "approval")
    op.drop_index("ix_approval_incident_id", "approval")
    op.drop_table("approval")
