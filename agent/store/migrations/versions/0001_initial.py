"""Alerts, incidents and the audit chain.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("monitor_key", sa.String(512), nullable=False),
        sa.Column("model_id", sa.String(512), nullable=True),
        sa.Column("environment", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_state", sa.String(16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("slack_channel", sa.String(64), nullable=True),
        sa.Column("slack_thread_ts", sa.String(64), nullable=True),
    )
    op.create_index("ix_incident_fingerprint", "incident", ["fingerprint"])
    op.create_index("ix_incident_status", "incident", ["status"])
    op.create_index("ix_incident_opened_at", "incident", ["opened_at"])

    op.create_table(
        "alert",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("monitor_key", sa.String(512), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("breach_json", sa.Text(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), sa.ForeignKey("incident.id"), nullable=True),
        sa.Column("processed_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("monitor_key", "body_sha256", name="uq_alert_delivery"),
    )
    op.create_index("ix_alert_monitor_key", "alert", ["monitor_key"])
    op.create_index("ix_alert_fingerprint", "alert", ["fingerprint"])
    op.create_index("ix_alert_received_at", "alert", ["received_at"])
    op.create_index("ix_alert_state", "alert", ["state"])
    op.create_index("ix_alert_incident_id", "alert", ["incident_id"])

    op.create_table(
        "audit_event",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("alert_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_event_incident_id", "audit_event", ["incident_id"])
    op.create_index("ix_audit_event_alert_id", "audit_event", ["alert_id"])
    op.create_index("ix_audit_event_kind", "audit_event", ["kind"])

    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_event")
    op.drop_table("alert")
    op.drop_table("incident")
