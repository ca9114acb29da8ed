"""Arize deliveries: a delivery's id, event and auth mode on the alert; other deliveries kept
once by their id; prompt versions as changes.

Revision ID: 0009_arize_deliveries
Revises: 0008_signed_checkpoints
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_arize_deliveries"
down_revision = "0008_signed_checkpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("webhook_id", sa.String(256), nullable=True))
        batch.add_column(sa.Column("webhook_event", sa.String(128), nullable=True))
        batch.add_column(sa.Column("auth_mode", sa.String(16), nullable=True))
        batch.create_unique_constraint("uq_alert_webhook_id", ["source", "webhook_id"])
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("prompt_id", sa.String(512), nullable=True))
        batch.add_column(sa.Column("prompt_name", sa.String(512), nullable=True))
        batch.add_column(sa.Column("label", sa.String(200), nullable=True))
        batch.add_column(sa.Column("event", sa.String(128), nullable=True))
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("webhook_id", sa.String(256), nullable=False),
        sa.Column("event", sa.String(128), nullable=True),
        sa.Column("auth_mode", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("signed_sha256", sa.String(64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "webhook_id", name="uq_webhook_delivery"),
        sa.UniqueConstraint("source", "signed_sha256", name="uq_webhook_delivery_signed"),
    )


def downgrade() -> None:
    op.drop_table("webhook_delivery")
    with op.batch_alter_table("deployment") as batch:
        batch.drop_column("event")
        batch.drop_column("label")
        batch.drop_column("prompt_name")
        batch.drop_column("prompt_id")
    with op.batch_alter_table("alert") as batch:
        batch.drop_constraint("uq_alert_webhook_id", type_="unique")
        batch.drop_column("auth_mode")
        batch.drop_column("webhook_event")
        batch.drop_column("webhook_id")
