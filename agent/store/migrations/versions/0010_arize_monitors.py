"""The Arize monitor each open incident watches (re-read, tagged).

Revision ID: 0010_arize_monitors
Revises: 0009_arize_deliveries
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_arize_monitors"
down_revision = "0009_arize_deliveries"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitor_watch",
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incident.id"), primary_key=True),
        sa.Column("monitor_id", sa.String(512), nullable=False),
        sa.Column("next_poll_at", TS, nullable=True),
        sa.Column("polled_by", sa.String(200), nullable=True),
        sa.Column("last_status", sa.String(16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("tag_name", sa.String(100), nullable=True),
        sa.Column("tag_id", sa.String(512), nullable=True),
        sa.Column("tagged_at", TS, nullable=True),
        sa.Column("untagged_at", TS, nullable=True),
    )
    op.create_index("ix_monitor_watch_next_poll_at", "monitor_watch", ["next_poll_at"])


def downgrade() -> None:
    op.drop_index("ix_monitor_watch_next_poll_at", "monitor_watch")
    op.drop_table("monitor_watch")
