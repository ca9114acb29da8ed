"""Deployments recorded by CI/CD.

Revision ID: 0003_deployments
Revises: 0002_audit_append_only
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_deployments"
down_revision = "0002_audit_append_only"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("model_id", sa.String(512), nullable=True),
        sa.Column("previous_version", sa.String(200), nullable=True),
        sa.Column("environment", sa.String(128), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
    )
    op.create_index("ix_deployment_deployed_at", "deployment", ["deployed_at"])
    op.create_index("ix_deployment_service", "deployment", ["service"])


def downgrade() -> None:
    op.drop_table("deployment")
