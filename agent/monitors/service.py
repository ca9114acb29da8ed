"""The monitor watches in the database: registered by triage, taken one replica at a time."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from agent.alerts.models import Alert, Breach
from agent.monitors.models import MonitorWatch
from agent.store.db import session_scope


def watch_monitor(
    *, session: Session, incident_id: uuid.UUID, monitor_id: str, now: datetime
) -> bool:
    """Start watching the incident's monitor (read first at `now`); False when it already is."""
    if session.get(MonitorWatch, incident_id) is not None:
        return False
    session.add(MonitorWatch(incident_id=incident_id, monitor_id=monitor_id, next_poll_at=now))
    return True


def due_watches(*, session: Session, now: datetime, limit: int) -> list[uuid.UUID]:
    """Return the incidents whose monitor is due to be read (or untagged), oldest due first."""
    rows = session.exec(
        select(MonitorWatch.incident_id)
        .where(col(MonitorWatch.next_poll_at) <= now)
        .order_by(col(MonitorWatch.next_poll_at))
        .limit(limit)
    ).all()
    return list(rows)


def take_watch(
    engine: Engine, incident_id: uuid.UUID, *, worker_id: str, now: datetime, next_at: datetime
) -> bool:
    """Take this read of the watch (compare-and-set on its due time): one replica wins it.

    The winner moves the due time to `next_at` in the same statement, so another replica's
    read of the same row finds it no longer due and changes nothing.
    """
    with session_scope(engine) as session:
        result = session.connection().execute(
            update(MonitorWatch)
            .where(
                col(MonitorWatch.incident_id) == incident_id,
                col(MonitorWatch.next_poll_at) <= now,
            )
            .values(next_poll_at=next_at, polled_by=worker_id)
        )
        return bool(result.rowcount)


def update_watch(engine: Engine, incident_id: uuid.UUID, **values: Any) -> None:
    """Set fields of the watch (what the read found, the tag, when it is due next)."""
    with session_scope(engine) as session:
        session.connection().execute(
            update(MonitorWatch)
            .where(col(MonitorWatch.incident_id) == incident_id)
            .values(**values)
        )


def hurry_watch(*, session: Session, incident_id: uuid.UUID, now: datetime) -> None:
    """Make a live watch due now (its incident just resolved: the tag comes off at once)."""
    watch = session.get(MonitorWatch, incident_id)
    if watch is not None and watch.next_poll_at is not None:
        watch.next_poll_at = now
        session.add(watch)


def first_breach(*, session: Session, incident_id: uuid.UUID) -> Breach | None:
    """Return the breach of the incident's first alert, as stored (its fingerprint's source)."""
    first = session.exec(
        select(Alert).where(Alert.incident_id == incident_id).order_by(col(Alert.received_at))
    ).first()
    return first.breach() if first is not None else None
