"""Accept alerts durably and hand them to workers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agent.alerts.models import Alert, AlertState, Breach
from agent.auditlog import AuditLog
from agent.leases import note_lease_expired

INGRESS_ACTOR = "ingress"


def find_delivery(*, session: Session, monitor_key: str, body_sha256: str) -> Alert | None:
    """Return the alert already stored for this exact delivery, if any."""
    return session.exec(
        select(Alert).where(Alert.monitor_key == monitor_key, Alert.body_sha256 == body_sha256)
    ).first()


def accept_alert(
    *,
    session: Session,
    audit: AuditLog,
    breach: Breach,
    payload: dict[str, Any],
    body_sha256: str,
) -> tuple[Alert, bool]:
    """Store the alert and its `alert.received` event in one transaction; False if a re-delivery."""
    existing = find_delivery(
        session=session, monitor_key=breach.monitor_key, body_sha256=body_sha256
    )
    if existing is not None:
        return existing, False
    alert = Alert(
        source=breach.source,
        monitor_key=breach.monitor_key,
        body_sha256=body_sha256,
        status=breach.status,
        fingerprint=breach.fingerprint(),
        breach_json=breach.model_dump_json(),
        received_at=audit.now(),
    )
    try:
        # A savepoint: losing a race must not undo the other alerts of this transaction.
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # The same delivery raced in on another connection and won.
        existing = find_delivery(
            session=session, monitor_key=breach.monitor_key, body_sha256=body_sha256
        )
        if existing is None:
            raise
        return existing, False
    audit.record(
        session,
        "alert.received",
        {
            "summary": f"{breach.source} alert {breach.status}: {breach.title()}",
            "breach": breach.model_dump(mode="json"),
            "body_sha256": body_sha256,
            "raw": payload,
        },
        actor=INGRESS_ACTOR,
        alert_id=alert.id,
    )
    return alert, True


def get_alert(*, session: Session, alert_id: uuid.UUID) -> Alert | None:
    """Return one alert by id."""
    return session.get(Alert, alert_id)


def claim_next_alert(
    *,
    session: Session,
    worker_id: str,
    now: Callable[[], datetime],
    lease: timedelta,
) -> Alert | None:
    """Claim the oldest pending (or lease-expired) alert for this worker, or return None."""
    moment = now()
    claimable = or_(
        col(Alert.state) == AlertState.pending,
        and_(col(Alert.state) == AlertState.claimed, col(Alert.lease_until) < moment),
    )
    alert = session.exec(
        select(Alert)
        .where(claimable)
        .order_by(col(Alert.received_at))
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if alert is None:
        return None
    if alert.state == AlertState.claimed:
        note_lease_expired("alert", alert.id, alert.claimed_by)
    alert.state = AlertState.claimed
    alert.claimed_by = worker_id
    alert.lease_until = moment + lease
    alert.attempts += 1
    session.add(alert)
    return alert


def finish_alert(
    *,
    session: Session,
    alert_id: uuid.UUID,
    now: Callable[[], datetime],
    error: str | None = None,
) -> None:
    """Mark a claimed alert done (or failed, with the reason)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return
    alert.state = AlertState.failed if error else AlertState.done
    alert.error = error
    alert.processed_at = now()
    alert.lease_until = None
    session.add(alert)
