"""Group alerts into incidents by fingerprint and move incidents through their life."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session, col, select

from agent.alerts.models import Alert, Breach
from agent.auditlog import AuditLog
from agent.incidents.models import Incident, IncidentStatus, RunState

CORRELATOR_ACTOR = "correlator"


def find_open_incident(*, session: Session, fingerprint: str) -> Incident | None:
    """Return the open incident with this fingerprint, if there is one."""
    return session.exec(
        select(Incident)
        .where(Incident.fingerprint == fingerprint, Incident.status == IncidentStatus.open)
        .order_by(col(Incident.opened_at).desc())
    ).first()


def open_incident(*, session: Session, audit: AuditLog, alert: Alert, breach: Breach) -> Incident:
    """Open a new incident for a triggered alert and link the alert to it."""
    incident = Incident(
        fingerprint=alert.fingerprint,
        title=breach.title(),
        monitor_key=breach.monitor_key,
        model_id=breach.model_id,
        environment=breach.environment,
        service=breach.service,
        opened_at=audit.now(),
    )
    session.add(incident)
    session.flush()
    alert.incident_id = incident.id
    session.add(alert)
    audit.record(
        session,
        "incident.opened",
        {"summary": f"incident opened: {incident.title}", "fingerprint": incident.fingerprint},
        actor=CORRELATOR_ACTOR,
        incident_id=incident.id,
        alert_id=alert.id,
    )
    return incident


def attach_alert(*, session: Session, audit: AuditLog, alert: Alert, incident: Incident) -> None:
    """Group a repeated alert into the incident already open for its fingerprint."""
    alert.incident_id = incident.id
    session.add(alert)
    audit.record(
        session,
        "alert.grouped",
        {"summary": f"{alert.status} alert grouped into the open incident", "status": alert.status},
        actor=CORRELATOR_ACTOR,
        incident_id=incident.id,
        alert_id=alert.id,
    )


def resolve_incident(
    *, session: Session, audit: AuditLog, alert: Alert, incident: Incident
) -> None:
    """Mark an incident resolved because its monitor reported healthy again."""
    alert.incident_id = incident.id
    incident.status = IncidentStatus.resolved
    incident.resolved_at = audit.now()
    session.add(alert)
    session.add(incident)
    audit.record(
        session,
        "incident.resolved",
        {"summary": "monitor reported healthy: incident resolved"},
        actor=CORRELATOR_ACTOR,
        incident_id=incident.id,
        alert_id=alert.id,
    )


def set_run_state(*, session: Session, incident_id: uuid.UUID, state: RunState) -> None:
    """Record where the incident's graph run is."""
    incident = session.get(Incident, incident_id)
    if incident is not None:
        incident.run_state = state
        session.add(incident)


def set_slack_thread(
    *, session: Session, incident_id: uuid.UUID, channel: str, thread_ts: str
) -> None:
    """Remember the Slack thread that holds the incident's messages."""
    incident = session.get(Incident, incident_id)
    if incident is not None and incident.slack_thread_ts is None:
        incident.slack_channel = channel
        incident.slack_thread_ts = thread_ts
        session.add(incident)


def get_incident(*, session: Session, incident_id: uuid.UUID) -> Incident | None:
    """Return one incident by id."""
    return session.get(Incident, incident_id)


def alert_ids_of(*, session: Session, incident_id: uuid.UUID) -> Sequence[uuid.UUID]:
    """Return the ids of the alerts grouped into an incident."""
    return session.exec(select(Alert.id).where(Alert.incident_id == incident_id)).all()
