"""Read incidents for review: filtered lists, one incident with its alerts and events, the chain."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from agent.alerts.models import Alert
from agent.incidents.models import Incident
from agent.review.story import event_data
from audit.models import AuditEvent
from audit.service import VerifyResult, events_for


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents a reviewer asked for."""

    status: str | None = None
    service: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


def list_incidents(*, session: Session, where: IncidentFilter) -> tuple[Sequence[Incident], int]:
    """Return one page of incidents, newest first, and how many match in all."""
    query = select(Incident)
    if where.status:
        query = query.where(Incident.status == where.status)
    if where.service:
        query = query.where(Incident.service == where.service)
    if where.model:
        query = query.where(Incident.model_id == where.model)
    if where.since:
        query = query.where(col(Incident.opened_at) >= where.since)
    if where.until:
        query = query.where(col(Incident.opened_at) <= where.until)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    page = session.exec(
        query.order_by(col(Incident.opened_at).desc()).offset(where.offset).limit(where.limit)
    ).all()
    return page, int(total)


@dataclass(frozen=True)
class IncidentRecord:
    """Everything known about one incident: the row, its alerts and its audit events."""

    incident: Incident
    alerts: Sequence[Alert]
    events: Sequence[AuditEvent]

    def event_data(self, event: AuditEvent) -> dict[str, Any]:
        """Return an event's data as a dict."""
        return event_data(event)


def load_incident(*, session: Session, incident_id: uuid.UUID) -> IncidentRecord | None:
    """Return an incident with its alerts (oldest first) and audit events, or None."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    alerts = session.exec(
        select(Alert).where(Alert.incident_id == incident_id).order_by(col(Alert.received_at))
    ).all()
    events = events_for(session=session, incident_id=incident_id, alert_ids=[a.id for a in alerts])
    return IncidentRecord(incident=incident, alerts=alerts, events=events)


class ChainStatus:
    """The audit chain's verification result, recomputed when older than `max_age` seconds."""

    def __init__(
        self,
        engine: Engine,
        verify: Callable[[Session], VerifyResult],
        *,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._verify = verify
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._result: VerifyResult | None = None
        self._at = 0.0

    def current(self) -> VerifyResult:
        """Return a verification no older than max_age."""
        with self._lock:
            if self._result is None or self._clock() - self._at > self._max_age:
                with Session(self._engine) as session:
                    self._result = self._verify(session)
                self._at = self._clock()
            return self._result


def chain_summary(result: VerifyResult) -> dict[str, Any]:
    """Return the verification as JSON for the API and the exports."""
    return {
        "verified": result.ok,
        "events_checked": result.checked,
        "head_seq": result.head_seq,
        "checkpoints": result.checkpoints,
        "first_bad_seq": result.first_bad_seq,
        "reason": result.reason,
    }
