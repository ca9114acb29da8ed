"""Leases on claimed work: renewed while the work runs, released on shutdown, counted on expiry.

A worker claims an alert or an incident's run with a lease (`lease_until`). While it works, a
heartbeat thread pushes the lease forward, so a run longer than the lease is never taken by
another worker; when the process dies the heartbeat dies with it, the lease runs out, and the
next claim takes the work over (`worker.lease_expired`) and resumes from the last checkpoint.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Engine, update
from sqlmodel import col

from agent.alerts.models import Alert, AlertState
from agent.incidents.models import Incident
from agent.outbox.models import OutboxChannel
from agent.store.db import session_scope
from agent.telemetry import metrics

log = structlog.get_logger(__name__)

LEASE_EXPIRED = "worker.lease_expired"
Leased = type[Alert] | type[Incident] | type[OutboxChannel]

_expiries = 0
_expiries_lock = threading.Lock()


def note_lease_expired(kind: str, item_id: uuid.UUID, previous_owner: str | None) -> None:
    """Log (and count) that work whose lease ran out is being taken over."""
    global _expiries
    with _expiries_lock:
        _expiries += 1
    metrics.LEASE_EXPIRIES.labels(kind).inc()
    log.warning(
        LEASE_EXPIRED, **{f"{kind}_id": str(item_id)}, previous_owner=previous_owner, kind=kind
    )


def lease_expiries() -> int:
    """Return how many expired leases this process has taken over since it started."""
    with _expiries_lock:
        return _expiries


def _held(model: Leased, item_id: uuid.UUID, worker_id: str) -> list[Any]:
    """Return the conditions under which `worker_id` still holds the item's lease."""
    conditions: list[Any] = [col(model.id) == item_id, col(model.claimed_by) == worker_id]
    if model is Alert:
        conditions.append(col(Alert.state) == AlertState.claimed)
    else:
        # A finished run clears its lease; only a run in progress is held. (An outbox channel's
        # sender clears it too when it gives the channel back.)
        conditions.append(col(model.lease_until).is_not(None))
    return conditions


def renew_lease(
    engine: Engine, model: Leased, item_id: uuid.UUID, worker_id: str, until: datetime
) -> bool:
    """Extend the lease if `worker_id` still holds it; False when it was lost or finished."""
    with session_scope(engine) as session:
        result = session.connection().execute(
            update(model).where(*_held(model, item_id, worker_id)).values(lease_until=until)
        )
        return bool(result.rowcount)


def release_lease(engine: Engine, model: Leased, item_id: uuid.UUID, worker_id: str) -> bool:
    """Give the work back at once (shutdown), so the next worker need not wait for expiry."""
    values: dict[str, Any] = {"lease_until": None, "claimed_by": None}
    if model is Alert:
        values["state"] = AlertState.pending
    with session_scope(engine) as session:
        result = session.connection().execute(
            update(model).where(*_held(model, item_id, worker_id)).values(**values)
        )
        return bool(result.rowcount)


@contextmanager
def heartbeat(
    engine: Engine,
    model: Leased,
    item_id: uuid.UUID,
    *,
    worker_id: str,
    lease: timedelta,
    now: Callable[[], datetime],
) -> Iterator[None]:
    """Renew the lease every third of its length until the block ends."""
    stop = threading.Event()
    kind = model.__name__.lower()

    def beat() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            try:
                if not renew_lease(engine, model, item_id, worker_id, now() + lease):
                    if not stop.is_set():
                        log.warning("worker.lease_lost", **{f"{kind}_id": str(item_id)})
                    return
            except Exception:
                # A database blip: try again next beat, while the lease still has two thirds.
                log.exception("worker.heartbeat_failed", **{f"{kind}_id": str(item_id)})

    thread = threading.Thread(target=beat, name=f"lease-{kind}-{item_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
