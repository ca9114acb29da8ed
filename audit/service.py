"""Append to, read and verify the audit chain; every function takes the caller's session."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from audit.chain import canonical_json, event_digest
from audit.models import GENESIS_HASH, AuditEvent, AuditHead
from audit.sqltypes import utcnow

VERIFY_BATCH = 5000


def append_event(
    *,
    session: Session,
    key: bytes,
    kind: str,
    actor: str,
    data: dict[str, Any],
    incident_id: uuid.UUID | None = None,
    alert_id: uuid.UUID | None = None,
    now: Callable[[], datetime] = utcnow,
) -> AuditEvent:
    """Add one event at the head of the chain inside the caller's transaction."""
    head = session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
    seq = head.seq + 1
    ts = now()
    data_text = canonical_json(data)
    digest = event_digest(
        key=key,
        prev_hash=head.hash,
        seq=seq,
        ts=ts,
        incident_id=incident_id,
        alert_id=alert_id,
        actor=actor,
        kind=kind,
        data=data_text,
    )
    event = AuditEvent(
        seq=seq,
        ts=ts,
        incident_id=incident_id,
        alert_id=alert_id,
        actor=actor,
        kind=kind,
        data=data_text,
        prev_hash=head.hash,
        hash=digest,
    )
    head.seq = seq
    head.hash = digest
    session.add(event)
    session.add(head)
    session.flush()
    return event


def events_for(
    *, session: Session, incident_id: uuid.UUID, alert_ids: Iterable[uuid.UUID] = ()
) -> Sequence[AuditEvent]:
    """Return the events of an incident and of the alerts grouped into it, oldest first."""
    clauses = [col(AuditEvent.incident_id) == incident_id]
    ids = list(alert_ids)
    if ids:
        clauses.append(col(AuditEvent.alert_id).in_(ids))
    return session.exec(select(AuditEvent).where(or_(*clauses)).order_by(col(AuditEvent.seq))).all()


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a chain check: how many events were checked and the first bad one, if any."""

    ok: bool
    checked: int
    head_seq: int
    first_bad_seq: int | None = None
    reason: str | None = None


def verify_chain(
    *,
    session: Session,
    key: bytes,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyResult:
    """Recompute every link; name the first event that was edited, removed or moved."""
    head = session.exec(select(AuditHead).where(AuditHead.id == 1)).one()
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0
    last_seq = 0
    while True:
        batch = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.seq) > last_seq)
            .order_by(col(AuditEvent.seq))
            .limit(VERIFY_BATCH)
        ).all()
        if not batch:
            break
        for event in batch:
            problem = _check_event(event, key=key, expected_seq=expected_seq, prev_hash=prev_hash)
            if problem is not None:
                return VerifyResult(False, checked, head.seq, expected_seq, problem)
            prev_hash = event.hash
            expected_seq += 1
            checked += 1
        last_seq = batch[-1].seq
        session.expunge_all()
        if progress is not None:
            progress(checked, head.seq)
    if checked != head.seq or prev_hash != head.hash:
        return VerifyResult(
            False,
            checked,
            head.seq,
            checked + 1,
            f"chain ends at {checked} but the head records {head.seq}: events were removed",
        )
    return VerifyResult(True, checked, head.seq)


def _check_event(event: AuditEvent, *, key: bytes, expected_seq: int, prev_hash: str) -> str | None:
    if event.seq != expected_seq:
        return f"event {expected_seq} is missing (next stored event is {event.seq})"
    if event.prev_hash != prev_hash:
        return f"event {event.seq} does not follow event {event.seq - 1} (moved or replaced)"
    digest = event_digest(
        key=key,
        prev_hash=event.prev_hash,
        seq=event.seq,
        ts=event.ts,
        incident_id=event.incident_id,
        alert_id=event.alert_id,
        actor=event.actor,
        kind=event.kind,
        data=event.data,
    )
    if digest != event.hash:
        return f"event {event.seq} was altered after it was written (HMAC mismatch)"
    return None
