"""Accept alerts durably and hand them to workers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, bindparam, insert, or_
from sqlmodel import Session, col, select
from uuid6 import uuid7

from agent.alerts.models import Alert, AlertState, Breach
from agent.store.audit_log import AuditLog
from agent.store.leases import note_lease_expired
from audit.redact import Redactor
from audit.service import NewEvent, lock_head

INGRESS_ACTOR = "ingress"
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class DeliveryMeta:
    """What the sender says of a delivery beside its body, and how it authenticated."""

    webhook_id: str | None = None
    """The delivery's own id (X-Arize-Webhook-Id): retries of one event keep it."""
    event: str | None = None
    """The event type (X-Arize-Webhook-Event, or the body's `event`)."""
    auth_mode: str | None = None
    """`bearer`, `hmac` or `header`."""
    key_form: str | None = None
    """For `hmac`: which form of the signing secret matched."""

    def audited(self) -> dict[str, str]:
        """Return what the audit trail keeps of it (the fields that are set)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Delivery:
    """One received alert made ready to store: its row and its redacted `alert.received` event."""

    monitor_key: str
    body_sha256: str
    row: dict[str, Any]
    event: NewEvent
    webhook_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """What became of a delivery: its alert, and whether this delivery created it."""

    alert_id: uuid.UUID
    created: bool
    incident_id: uuid.UUID | None = None


BREACH_TEXT_LIMITS: dict[str, int] = {
    "monitor_id": 512,
    "monitor_name": 512,
    "metric": 512,
    "operator": 512,
    "model_id": 512,
    "model_version": 512,
    "environment": 128,
    "service": 200,
    "url": 512,
}
"""The breach's text fields, each with the most a stored copy keeps (its incident column's size)."""
SEGMENT_KEY_LIMIT = 128


def redact_breach(breach: Breach, redactor: Redactor) -> Breach:
    """Return the breach with secrets and PII masked in every text field, segment keys included.

    This is the door: the alert row, its monitor key and fingerprint, the incident opened from it
    and every run's state all derive from this copy. A number that holds a card number is
    dropped; a mask longer than what it replaced is cut to the column's size.
    """
    changes: dict[str, Any] = {}
    for name, limit in BREACH_TEXT_LIMITS.items():
        text = getattr(breach, name)
        if text is not None:
            masked = redactor.text(text)
            if masked != text:
                changes[name] = masked[:limit]
    for name in ("threshold", "value"):
        number = getattr(breach, name)
        if number is not None and redactor.number(number) is not number:
            changes[name] = None
    if breach.segment:
        segment = {
            str(key)[:SEGMENT_KEY_LIMIT]: str(value)[: BREACH_TEXT_LIMITS["monitor_id"]]
            for key, value in cast(dict[str, str], redactor.value(breach.segment)).items()
        }
        if segment != breach.segment:
            changes["segment"] = segment
    return breach.model_copy(update=changes) if changes else breach


def prepare_delivery(
    *,
    audit: AuditLog,
    breach: Breach,
    payload: dict[str, Any],
    body_sha256: str,
    meta: DeliveryMeta | None = None,
) -> Delivery:
    """Do a delivery's CPU work (redaction, mapping to columns) before any transaction.

    Nothing of the alert is stored raw: the row's breach (and so its monitor key, fingerprint
    and everything derived from it) and the `alert.received` event are redacted here.
    """
    breach = redact_breach(breach, audit.redactor)
    # Time-ordered (UUIDv7): each new id lands at the end of the id indexes (the alert's and the
    # audit trail's), not on a random page, so a commit writes fewer pages.
    alert_id = uuid7()
    row = {
        "id": alert_id,
        "source": breach.source,
        "monitor_key": breach.monitor_key,
        "body_sha256": body_sha256,
        "status": breach.status,
        "fingerprint": breach.fingerprint(),
        "breach_json": breach.model_dump_json(),
        "state": AlertState.pending.value,
        "attempts": 0,
        "webhook_id": meta.webhook_id if meta else None,
        "webhook_event": meta.event if meta else None,
        "auth_mode": meta.auth_mode if meta else None,
    }
    data: dict[str, Any] = {
        "summary": f"{breach.source} alert {breach.status}: {breach.title()}",
        "breach": breach.model_dump(mode="json"),
        "raw": payload,
    }
    if meta is not None:
        data["delivery"] = meta.audited()
    event = audit.prepare(
        "alert.received",
        data,
        actor=INGRESS_ACTOR,
        alert_id=alert_id,
        # Our own hex digest: nothing in it to redact, and new text for every alert.
        computed={"body_sha256": body_sha256},
    )
    return Delivery(breach.monitor_key, body_sha256, row, event, meta.webhook_id if meta else None)


def accept_alerts(
    *, session: Session, audit: AuditLog, deliveries: Sequence[Delivery]
) -> list[Receipt]:
    """Store new deliveries and their events in the caller's transaction; one receipt each.

    A delivery already stored, or repeated earlier in `deliveries`, is a re-delivery: it gets
    the first copy's alert and writes nothing.
    """
    # The head lock comes first: every writer of alerts takes it, so no other transaction can
    # store one of these deliveries between the lookup below and the insert.
    lock_head(session=session)
    known = _stored(session, {(d.monitor_key, d.body_sha256) for d in deliveries})
    by_id = _stored_by_webhook_id(session, deliveries)
    receipts = []
    rows = []
    events = []
    for delivery in deliveries:
        key = (delivery.monitor_key, delivery.body_sha256)
        webhook_key = (delivery.row["source"], delivery.webhook_id)
        if key in known:
            receipts.append(known[key])
            continue
        if delivery.webhook_id is not None and webhook_key in by_id:
            receipts.append(by_id[webhook_key])  # a retry of one event, whatever its body
            continue
        receipt = Receipt(delivery.row["id"], created=True)
        known[key] = Receipt(receipt.alert_id, created=False)
        if delivery.webhook_id is not None:
            by_id[webhook_key] = known[key]
        receipts.append(receipt)
        rows.append(delivery.row)
        events.append(delivery.event)
    if rows:
        moment = audit.now()
        connection = session.connection()
        connection.execute(insert(Alert.__table__), [{**r, "received_at": moment} for r in rows])  # type: ignore[attr-defined]
        audit.record_many(session, events)
    return receipts


def accept_alert(
    *,
    session: Session,
    audit: AuditLog,
    breach: Breach,
    payload: dict[str, Any],
    body_sha256: str,
    meta: DeliveryMeta | None = None,
) -> tuple[Alert, bool]:
    """Store one alert and its `alert.received` event in the caller's transaction.

    Return the alert and whether this delivery created it (False for a re-delivery).
    """
    delivery = prepare_delivery(
        audit=audit, breach=breach, payload=payload, body_sha256=body_sha256, meta=meta
    )
    [receipt] = accept_alerts(session=session, audit=audit, deliveries=[delivery])
    alert = session.get(Alert, receipt.alert_id)
    assert alert is not None, "an accepted alert is in this transaction"
    return alert, receipt.created


_STORED = select(Alert.body_sha256, Alert.id, Alert.incident_id).where(
    col(Alert.monitor_key) == bindparam("monitor_key"),
    col(Alert.body_sha256).in_(bindparam("digests", expanding=True)),
)


def _stored(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Receipt]:
    """Return the receipts of the deliveries among `keys` that are already stored."""
    by_monitor: dict[str, list[str]] = {}
    for monitor_key, body_sha256 in keys:
        by_monitor.setdefault(monitor_key, []).append(body_sha256)
    found: dict[tuple[str, str], Receipt] = {}
    # One indexed lookup per monitor (a storm comes from few monitors). A row-value IN over
    # both columns would be one query, but SQLite answers it with a full scan of the table.
    for monitor_key, digests in by_monitor.items():
        for start in range(0, len(digests), LOOKUP_CHUNK):
            rows = session.connection().execute(
                _STORED,
                {"monitor_key": monitor_key, "digests": digests[start : start + LOOKUP_CHUNK]},
            )
            for body_sha256, alert_id, incident_id in rows:
                found[(monitor_key, body_sha256)] = Receipt(alert_id, False, incident_id)
    return found


def _stored_by_webhook_id(
    session: Session, deliveries: Sequence[Delivery]
) -> dict[tuple[str, str | None], Receipt]:
    """Return the receipts of the stored alerts that carry one of these deliveries' ids."""
    wanted: dict[str, list[str]] = {}
    for delivery in deliveries:
        if delivery.webhook_id is not None:
            wanted.setdefault(delivery.row["source"], []).append(delivery.webhook_id)
    found: dict[tuple[str, str | None], Receipt] = {}
    for source, ids in wanted.items():
        for start in range(0, len(ids), LOOKUP_CHUNK):
            rows = session.connection().execute(
                _STORED_BY_ID, {"source": source, "ids": ids[start : start + LOOKUP_CHUNK]}
            )
            for webhook_id, alert_id, incident_id in rows:
                found[(source, webhook_id)] = Receipt(alert_id, False, incident_id)
    return found


_STORED_BY_ID = select(Alert.webhook_id, Alert.id, Alert.incident_id).where(
    col(Alert.source) == bindparam("source"),
    col(Alert.webhook_id).in_(bindparam("ids", expanding=True)),
)


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
