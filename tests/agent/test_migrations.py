"""The migrations build exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from agent.incidents.models import Incident
from agent.store.db import alembic_config, current_revision, make_engine, upgrade
from audit.sqltypes import utcnow

TABLES = {
    "alert",
    "incident",
    "audit_event",
    "audit_head",
    "audit_checkpoint",
    "deployment",
    "failover",
    "webhook_delivery",
    "monitor_watch",
    "outbox_message",
    "outbox_channel",
    "cause",
    "cause_link",
    "alembic_version",
}


def check_schema(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    command.check(alembic_config(engine))  # raises when models and migrations differ
    assert TABLES <= set(inspect(engine).get_table_names())
    assert current_revision(engine) == "0012_causes"
    upgrade(engine)  # a second run changes nothing
    engine.dispose()


def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    check_schema(f"sqlite:///{tmp_path / 'm.db'}")


def test_timestamps_come_back_timezone_aware_on_sqlite(tmp_path: Path) -> None:
    from sqlmodel import Session

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    opened = utcnow()
    with Session(engine) as session:
        incident = Incident(fingerprint="f", title="t", monitor_key="m", opened_at=opened)
        session.add(incident)
        session.commit()
        incident_id = incident.id
    with Session(engine) as session:
        stored = session.get(Incident, incident_id)
        assert stored is not None
        assert stored.opened_at == opened
        assert stored.opened_at.tzinfo is not None


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgres(postgres_url: str) -> None:
    check_schema(postgres_url)
