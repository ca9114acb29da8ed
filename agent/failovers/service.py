"""The failovers incidents hold: record them, find what blocks a failback, wake held failbacks.

A route goes back only when no other open incident depends on it: two incidents of one service
that both failed over share the route, and the first to resolve must not move it back under the
other; nor under another open incident of the service that did not fail over (it found the
failover in place, so what it breached on may be the route it left). Switches stack: a later
switch on top of an earlier one goes back first.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from agent.failovers.models import Failover, FailoverStatus
from agent.incidents.models import Incident, IncidentStatus, RunState

HOLDING = FailoverStatus.holding


def record_failover(
    *,
    session: Session,
    incident_id: uuid.UUID,
    service: str,
    target: str,
    idempotency_key: str,
    moved: bool,
    primary: dict[str, Any] | None,
    now: datetime,
) -> Failover:
    """Return the incident's failover with this key, recording it the first time (a retried
    or resumed act records it once)."""
    found = session.exec(
        select(Failover).where(Failover.idempotency_key == idempotency_key)
    ).first()
    if found is not None:
        return found
    failover = Failover(
        incident_id=incident_id,
        service=service,
        target=target,
        idempotency_key=idempotency_key,
        moved=moved,
        primary=primary,
        created_at=now,
    )
    session.add(failover)
    session.flush()
    return failover


def failover_by_key(*, session: Session, idempotency_key: str) -> Failover | None:
    """Return the failover switched with this key."""
    return session.exec(select(Failover).where(Failover.idempotency_key == idempotency_key)).first()


def blockers(*, session: Session, failover: Failover) -> list[tuple[Failover, Incident]]:
    """Return what keeps this failover's route from going back, with the incidents behind it:
    another open incident's failover of the same service (it depends on the failover route),
    and any later switch of the service still held (it must go back first)."""
    rows = session.exec(
        select(Failover, Incident)
        .where(
            col(Failover.incident_id) == Incident.id,
            Failover.service == failover.service,
            Failover.status == HOLDING,
            Failover.id != failover.id,
        )
        .order_by(col(Failover.created_at))
    ).all()
    found: list[tuple[Failover, Incident]] = []
    for other, incident in rows:
        open_elsewhere = (
            incident.status == IncidentStatus.open and incident.id != failover.incident_id
        )
        on_top = other.moved and other.created_at > failover.created_at
        if open_elsewhere or on_top:
            found.append((other, incident))
    return found


def moved_away(*, session: Session, service: str) -> Failover | None:
    """Return the failover holding the service off its primary route, if one does (the first)."""
    return session.exec(
        select(Failover)
        .where(Failover.service == service, Failover.status == HOLDING, col(Failover.moved))
        .order_by(col(Failover.created_at))
    ).first()


def still_breaching(*, session: Session, failover: Failover) -> list[Incident]:
    """Return the other open incidents of the failover's service that hold no failover of their
    own: their breach began on the route the failover left, or the failover hides it, so
    moving back under them would return their traffic to what they breached on."""
    holders = select(Failover.incident_id).where(
        Failover.service == failover.service, Failover.status == HOLDING
    )
    return list(
        session.exec(
            select(Incident)
            .where(
                Incident.service == failover.service,
                Incident.status == IncidentStatus.open,
                Incident.id != failover.incident_id,
                col(Incident.id).not_in(holders),
            )
            .order_by(col(Incident.opened_at))
        ).all()
    )


def settle_failover(
    *,
    session: Session,
    failover_id: uuid.UUID,
    status: FailoverStatus,
    note: str,
    now: datetime,
    next_try_at: datetime | None = None,
) -> Failover | None:
    """Record an attempt's outcome: still held (until `next_try_at`), restored, released, kept."""
    failover = session.get(Failover, failover_id)
    if failover is None:
        return None
    failover.status = status
    failover.note = note
    failover.attempts += 1
    failover.next_try_at = next_try_at if status == HOLDING else None
    failover.settled_at = None if status == HOLDING else now
    session.add(failover)
    return failover


def failovers_of(*, session: Session, incident_id: uuid.UUID) -> Sequence[Failover]:
    """Return every failover of the incident, oldest first."""
    return session.exec(
        select(Failover)
        .where(Failover.incident_id == incident_id)
        .order_by(col(Failover.created_at))
    ).all()


def holding_of(*, session: Session, incident_id: uuid.UUID) -> Sequence[Failover]:
    """Return the incident's failovers still held, oldest first."""
    return session.exec(
        select(Failover)
        .where(Failover.incident_id == incident_id, Failover.status == HOLDING)
        .order_by(col(Failover.created_at))
    ).all()


def next_try(*, session: Session, incident_id: uuid.UUID) -> datetime | None:
    """Return when the incident's earliest held failback is tried again (None: not scheduled)."""
    moments = [
        f.next_try_at for f in holding_of(session=session, incident_id=incident_id) if f.next_try_at
    ]
    return min(moments) if moments else None


def wake_held(
    *, session: Session, service: str, now: datetime, exclude: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Make the held failbacks of the service's resolved incidents due now (something that held
    them back may have gone); return the incidents woken."""
    rows = session.exec(
        select(Failover, Incident).where(
            col(Failover.incident_id) == Incident.id,
            Failover.service == service,
            Failover.status == HOLDING,
            Incident.status == IncidentStatus.resolved,
        )
    ).all()
    woken: list[uuid.UUID] = []
    for failover, incident in rows:
        if incident.id == exclude:
            continue
        failover.next_try_at = now
        session.add(failover)
        if incident.id not in woken and incident.run_state in (
            RunState.completed,
            RunState.waiting,
        ):
            incident.run_state = RunState.waiting
            incident.run_after = now
            session.add(incident)
            woken.append(incident.id)
    return woken


def held_for_fingerprint(*, session: Session, fingerprint: str) -> list[Incident]:
    """Return the resolved incidents of a fingerprint whose failback is still held."""
    return list(
        session.exec(
            select(Incident)
            .where(
                Incident.fingerprint == fingerprint,
                Incident.status == IncidentStatus.resolved,
                col(Incident.id).in_(
                    select(Failover.incident_id).where(Failover.status == HOLDING)
                ),
            )
            .order_by(col(Incident.opened_at))
        ).all()
    )
