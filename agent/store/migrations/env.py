"""Alembic environment: runs on the engine handed over by agent.store.db (SQLite or PostgreSQL)."""

from alembic import context
from sqlalchemy import text
from sqlmodel import SQLModel

import agent.store.tables  # noqa: F401  (registers every table on the metadata)

target_metadata = SQLModel.metadata
engine = context.config.attributes["engine"]
MIGRATION_LOCK = 0x52454D30  # any fixed number, the same in every replica

with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        # Replicas start together: one migrates while the others wait, then find it done.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_name=lambda name, type_, parent: type_ != "table" or name in target_metadata.tables,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
