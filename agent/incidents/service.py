"""Group alerts into incidents by fingerprint and move incidents through their life."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, text
from sqlmodel import Session, col, select

from agent.alerts.models import Alert, Breach
from agent.alerts.service import redact_breach
from agent.incidents.models import Incident, IncidentStatus, RunState
from agent.store.audit_log import AuditLog
from agent.store.leases import note_lease_expired

CORRELATOR_ACTOR = "correlator"


def lock_fingerprint(*, session: Session, fingerprint: str) -> None:
    """Serialise correlation per fingerprint until the transaction ends.

    Two workers correlating alerts of one fingerprint at once must not both find no open
    incident and open two. SQLite's write transactions are serial already; PostgreSQL takes a
    transaction-scoped advisory lock on the fingerprint.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:fingerprint, 0))"),
            {"fingerprint": fingerprint},
        )


def find_open_incident(*, session: Session, fingerprint: str) -> Incident | None:
    """Return the open incident with this fingerprint, if there is one."""
    return session.exec(
        select(Incident)
        .where(Incident.fingerprint == fingerprint, Incident.status == IncidentStatus.open)
        .order_by(col(Incident.opened_at).desc())
    ).first()


def open_incident(
    *,
    session: Session,
    audit: AuditLog,
    alert: Alert,
    breach: Breach,
    group_wait: timedelta = timedelta(0),
) -> Incident:
    """Open a new incident for a triggered alert; its investigation is due after `group_wait`."""
    # Alerts are redacted at the door; again here for one stored before that was so.
    breach = redact_breach(breach, audit.redactor)
    opened = audit.now()
    incident = Incident(
        fingerprint=alert.fingerprint,
        title=breach.title(),
        monitor_key=breach.monitor_key,
        model_id=breach.model_id,
        environment=breach.environment,
        service=breach.service,
        opened_at=opened,
        last_notified_at=opened,
        run_after=opened + group_wait,
    )
    session.add(incident)
    session.flush()
    alert.incident_id = incident.id
    session.add(alert)
    audit.record(
        session,
        "incident.opened",
        {
            "summary": f"incident opened: {incident.title}"
            + (
                f" (investigation after a {group_wait.total_seconds():g}s group wait)"
                if group_wait
                else ""
            ),
            "fingerprint": incident.fingerprint,
        },
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


CLAIMABLE = (RunState.pending, RunState.running, RunState.waiting)
"""Run states of an incident a worker may claim (a new run, an unfinished one, a paused one)."""


def _due(states: Sequence[RunState], moment: datetime) -> Any:
    return (
        col(Incident.run_state).in_(list(states)),
        col(Incident.run_after) <= moment,
        or_(col(Incident.lease_until).is_(None), col(Incident.lease_until) < moment),
    )


def new_run_due(*, session: Session, now: datetime) -> bool:
    """Tell whether an investigation that has not started yet is due (a read: nothing locked)."""
    found = session.exec(select(Incident.id).where(*_due([RunState.pending], now)).limit(1))
    return found.first() is not None


def claim_due_incident(
    *,
    session: Session,
    worker_id: str,
    now: Callable[[], datetime],
    lease: timedelta,
    states: Sequence[RunState] = CLAIMABLE,
) -> Incident | None:
    """Claim the incident whose investigation is due (or whose last runner's lease expired),
    the longest due first; `states` narrows which runs (e.g. only new ones)."""
    moment = now()
    due = session.exec(
        select(Incident)
        .where(*_due(states, moment))
        .order_by(col(Incident.run_after))
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if due is None:
        return None
    if due.lease_until is not None:
        # Finished runs and released ones have no lease: this one's runner stopped beating.
        note_lease_expired("incident", due.id, due.claimed_by)
    due.claimed_by = worker_id
    due.lease_until = moment + lease
    session.add(due)
    return due


def requeue_incident(*, session: Session, incident_id: uuid.UUID, now: datetime) -> None:
    """Give back a running run's claim, due again at `now`: behind every run due before it."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return
    incident.run_after = now
    incident.lease_until = None
    incident.claimed_by = None
    session.add(incident)


def park_incident(
    *, session: Session, incident_id: uuid.UUID, wake: datetime, claimed_at: datetime
) -> None:
    """Pause a run for an approval: due again at `wake`, or sooner if a decision came meanwhile.

    A decision recorded while the run was still going sets `run_after` after the claim; keeping
    that earlier time means the run resumes at once instead of at the expiry.
    """
    incident = session.get(Incident, incident_id)
    if incident is None:
        return
    decided_meanwhile = incident.run_after is not None and incident.run_after > claimed_at
    incident.run_after = min(wake, incident.run_after) if decided_meanwhile else wake  # type: ignore[type-var]
    incident.run_state = RunState.waiting
    incident.lease_until = None
    incident.claimed_by = None
    session.add(incident)


def set_run_state(*, session: Session, incident_id: uuid.UUID, state: RunState) -> None:
    """Record where the incident's graph run is."""
    incident = session.get(Incident, incident_id)
    if incident is not None:
        incident.run_state = state
        if state in (RunState.completed, RunState.failed, RunState.skipped):
            incident.lease_until = None
        session.add(incident)


def set_service(
    *, session: Session, incident_id: uuid.UUID, service: str, title: str | None = None
) -> None:
    """Record the catalog service the incident belongs to (found by triage), and the title
    that names it."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return
    if incident.service != service:
        incident.service = service
        session.add(incident)
    if title and incident.title != title:
        incident.title = title
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
