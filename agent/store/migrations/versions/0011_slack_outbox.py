"""The Slack outbox: messages written in the run's transaction; each channel's pace and lease.

Revision ID: 0011_slack_outbox
Revises: 0010_arize_monitors
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_slack_outbox"
down_revision = "0010_arize_monitors"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("parent_key", sa.String(255), nullable=True),
        sa.Column("thread_ts", sa.String(64), nullable=True),
        sa.Column("target_key", sa.String(255), nullable=True),
        sa.Column("target_ts", sa.String(64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("step", sa.String(128), nullable=True),
        sa.Column("opens_thread", sa.Boolean(), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("digest_key", sa.String(255), nullable=True),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("not_before", TS, nullable=True),
        sa.Column("attempted_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("edited_at", TS, nullable=True),
        sa.Column("ts", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_outbox_message_channel", "outbox_message", ["channel"])
    op.create_index("ix_outbox_message_incident_id", "outbox_message", ["incident_id"])
    op.create_index("ix_outbox_message_digest_key", "outbox_message", ["digest_key"])
    op.create_index("ix_outbox_message_state", "outbox_message", ["state"])
    op.create_table(
        "outbox_channel",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("channel", sa.String(64), nullable=False, unique=True),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", TS, nullable=True),
        sa.Column("blocked_until", TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("outbox_channel")
    op.drop_index("ix_outbox_message_state", "outbox_message")
    op.drop_index("ix_outbox_message_digest_key", "outbox_message")
    op.drop_index("ix_outbox_message_incident_id", "outbox_message")
    op.drop_index("ix_outbox_message_channel", "outbox_message")
    op.drop_table("outbox_message")
