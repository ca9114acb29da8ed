"""Causes: incidents sharing one diagnosis on one dependency, paged and threaded once.

Revision ID: 0012_causes
Revises: 0011_slack_outbox
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_causes"
down_revision = "0011_slack_outbox"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cause",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("accepting_key", sa.String(64), nullable=True, unique=True),
        sa.Column("diagnosis", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("component", sa.String(200), nullable=False),
        sa.Column("identity", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("opened_by", sa.Uuid(), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("dedup_key", sa.String(255), nullable=False, unique=True),
    )
    op.create_index("ix_cause_key", "cause", ["key"])
    op.create_index("ix_cause_status", "cause", ["status"])
    op.create_table(
        "cause_link",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("cause_id", sa.Uuid(), sa.ForeignKey("cause.id"), nullable=False),
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incident.id"), nullable=False),
        sa.Column("service", sa.String(200), nullable=True),
        sa.Column("linked_at", TS, nullable=False),
        sa.UniqueConstraint("cause_id", "incident_id", name="uq_cause_link"),
    )
    op.create_index("ix_cause_link_cause_id", "cause_link", ["cause_id"])
    op.create_index("ix_cause_link_incident_id", "cause_link", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_cause_link_incident_id", "cause_link")
    op.drop_index("ix_cause_link_cause_id", "cause_link")
    op.drop_table("cause_link")
    op.drop_index("ix_cause_status", "cause")
    op.drop_index("ix_cause_key", "cause")
    op.drop_table("cause")
