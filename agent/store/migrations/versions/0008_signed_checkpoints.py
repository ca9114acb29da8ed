"""Audit checkpoints signed with a private key: algorithm, key id, Merkle root and frontier.

Rows signed before keep their HMAC (`algorithm` 'hmac-sha256') and verify as they did.

Revision ID: 0008_signed_checkpoints
Revises: 0007_failovers
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_signed_checkpoints"
down_revision = "0007_failovers"
branch_labels = None
depends_on = None

TABLE = "audit_checkpoint"


def _sqlite_triggers() -> None:
    # SQLite rebuilds the table to change a column's type, and its triggers go with the old one.
    for operation in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_{operation.lower()}")
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: {operation} refused'); END"
        )


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column(
            "signature", existing_type=sa.String(64), type_=sa.Text(), existing_nullable=False
        )
        batch.add_column(
            sa.Column("algorithm", sa.String(32), nullable=False, server_default="hmac-sha256")
        )
        batch.add_column(sa.Column("key_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("tree_root", sa.String(64), nullable=True))
        batch.add_column(sa.Column("frontier", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("frontier")
        batch.drop_column("tree_root")
        batch.drop_column("key_id")
        batch.drop_column("algorithm")
        batch.alter_column(
            "signature", existing_type=sa.Text(), type_=sa.String(64), existing_nullable=False
        )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
