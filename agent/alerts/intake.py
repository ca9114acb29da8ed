"""Group commit for the ack path: one writer stores what the requests queued, many per commit.

A webhook request queues its alerts and waits on a future. The writer takes whatever is queued
when it is free (it never waits for companions), up to MAX_BATCH alerts, prepares them outside
any transaction, then stores them with their `alert.received` events in ONE transaction and
resolves every waiting request once that transaction is committed. Idle, an alert is written at
once; under load one commit carries many alerts, so the write lock stops being the bottleneck.

Where a batch is written is a `Store`: `BatchWriter` on a thread of this process (what `serve`
uses beside its worker), or `agent.alerts.writer_process.WriterProcess`, the same `BatchWriter`
in a child process (what an API replica, `serve --no-worker`, uses), so that preparing and
storing alerts never takes the GIL from the event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from sqlalchemy import Engine, String
from sqlalchemy.exc import DataError, IntegrityError

from agent.alerts.models import Alert, Breach
from agent.alerts.service import (
    Delivery,
    DeliveryMeta,
    Receipt,
    accept_alerts,
    prepare_delivery,
)
from agent.store.audit_log import AuditLog
from agent.store.db import session_scope
from agent.store.values import text_problem

log = structlog.get_logger(__name__)

MAX_BATCH = 256
"""Most alerts in one transaction: bounds the transaction's time and memory, not the queue."""

Received = (
    tuple[Breach, dict[str, Any], str] | tuple[Breach, dict[str, Any], str, DeliveryMeta | None]
)
"""One alert of a request: its breach, its decoded body, the sha256 that identifies it, and
what the sender said of the delivery (its id, event, how it authenticated), when known."""


def unpack(item: Received) -> tuple[Breach, dict[str, Any], str, DeliveryMeta | None]:
    """Return an alert of a request with its delivery's details (None when not given)."""
    if len(item) == 4:
        return item
    breach, payload, digest = item
    return breach, payload, digest, None


class NotStored(Exception):
    """The alerts of a request were not committed: nothing of that request was accepted.

    A temporary failure (the database's trouble, not the alert's): the request may be retried.
    """


class Unstorable(NotStored):
    """The alerts of a request can never be stored as they are: retrying cannot help (4xx)."""


Outcome = list[Receipt] | NotStored
"""What became of one request: its receipts once committed, or why nothing was accepted."""


@dataclass
class _Request:
    items: list[Received]
    future: asyncio.Future[list[Receipt]]


class Store(Protocol):
    """Where the intake's batches are written: in this process, or in a writer process."""

    def open(self) -> None:
        """Get ready to write (may block); raise if writing cannot start."""

    async def write(self, batch: Sequence[list[Received]]) -> list[Outcome]:
        """Store a batch; one outcome per request, in order."""

    def close(self) -> None:
        """Stop writing, once the last batch is answered."""


class AlertIntake:
    """The single writer of accepted alerts, run by the app's lifespan."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._max_batch = max_batch
        self._pending: deque[_Request] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._in_flight: list[_Request] = []

    def start(self) -> None:
        """Open the store, then start the writer on the running event loop."""
        self._store.open()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alert-writer")
        self._task.add_done_callback(self._stopped)

    @property
    def alive(self) -> bool:
        """Tell whether the writer runs and takes new alerts (for readiness)."""
        return self._task is not None and not self._task.done() and not self._closing

    async def close(self) -> None:
        """Store what is still queued, then stop; later submissions are refused."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._store.close()

    async def submit(self, items: list[Received]) -> list[Receipt]:
        """Store one request's alerts, all or none; return once they are committed.

        Raises NotStored when they could not be committed (or the intake is not running).
        """
        if self._task is None or self._closing:
            raise NotStored("the service is not accepting alerts right now (starting or stopping)")
        if self._task.done():
            raise NotStored("the alert writer has stopped; nothing was accepted, retry later")
        future: asyncio.Future[list[Receipt]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(items, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while self._pending or not self._closing:
            if not self._pending:
                await self._wake.wait()
                self._wake.clear()
                continue
            batch = self._in_flight = self._take()
            try:
                outcomes = await self._store.write([request.items for request in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(batch)} requests")
            except Exception as exc:
                # Whatever went wrong fails this batch only: the writer goes on with the next.
                log.exception("intake.batch_failed", requests=len(batch))
                outcomes = [
                    NotStored(
                        f"the alerts could not be stored ({type(exc).__name__}); "
                        "nothing was accepted, retry later"
                    )
                    for _ in batch
                ]
            for request, outcome in zip(batch, outcomes, strict=True):
                if request.future.done():
                    continue  # its client went away; what was stored stays stored
                if isinstance(outcome, BaseException):
                    request.future.set_exception(outcome)
                else:
                    request.future.set_result(outcome)
            self._in_flight = []

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """Answer whatever is still queued if the writer ends without being told to."""
        if not task.cancelled() and task.exception() is not None:
            log.error("intake.writer_died", error=repr(task.exception()))
        unanswered = [*self._in_flight, *self._pending]
        self._in_flight = []
        self._pending.clear()
        for request in unanswered:
            if not request.future.done():
                request.future.set_exception(
                    NotStored("the alert writer has stopped; nothing was accepted, retry later")
                )

    def _take(self) -> list[_Request]:
        """Take queued requests in order, up to MAX_BATCH alerts (always at least one request)."""
        batch = [self._pending.popleft()]
        size = len(batch[0].items)
        while self._pending and size + len(self._pending[0].items) <= self._max_batch:
            request = self._pending.popleft()
            size += len(request.items)
            batch.append(request)
        return batch


class BatchWriter:
    """Stores batches in this process: the writer the intake runs on its own thread.

    Each request's alerts are prepared alone, outside any transaction, and checked storable: one
    that cannot be is refused alone (`Unstorable`). The rest are stored in ONE transaction; a
    row the database refuses only fails its own request (the others are stored again, each
    alone). `lock_timeout` bounds how long a commit waits for a lock (then: 503, retry).
    """

    def __init__(
        self, engine: Engine, audit: AuditLog, *, lock_timeout: float | None = None
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._lock_timeout = lock_timeout
        self._executor: ThreadPoolExecutor | None = None

    def open(self) -> None:
        """Start the writer thread (the engine is the caller's)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-writer")

    def close(self) -> None:
        """Stop the writer thread once its batch is written."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def write(self, batch: Sequence[list[Received]]) -> list[Outcome]:
        """Store a batch on the writer thread; one outcome per request, in order."""
        assert self._executor is not None, "open() first"
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self.write_now, batch
        )

    def write_now(self, batch: Sequence[list[Received]]) -> list[Outcome]:
        """Prepare and store a batch of requests' alerts; one outcome per request, in order."""
        outcomes: list[Outcome] = []
        units: dict[int, list[Delivery]] = {}
        for index, items in enumerate(batch):
            try:
                units[index] = [prepare_alone(self._audit, *unpack(item)) for item in items]
                outcomes.append([])
            except Unstorable as exc:
                outcomes.append(exc)
        if not units:
            return outcomes
        try:
            stored = self._commit(list(units.values()))
        except (IntegrityError, DataError, ValueError) as exc:
            # Logged without the traceback: SQLAlchemy's would carry every alert of the batch.
            log.warning("intake.refused", requests=len(units), reason=_reason(exc))
            if len(units) == 1:
                [index] = units
                outcomes[index] = _refusal(exc)
                return outcomes
            # A row the database refuses aborts the whole transaction: store each request
            # alone, so one bad alert cannot fail its companions.
            for index, unit in units.items():
                try:
                    [outcomes[index]] = self._commit([unit])
                except Exception as alone:
                    log.warning("intake.refused", requests=1, reason=_reason(alone))
                    outcomes[index] = _refusal(alone)
            return outcomes
        except Exception:
            log.exception("intake.store_failed", requests=len(units))
            return self._failed(outcomes, units, "the alert could not be stored")
        for index, receipts in zip(units, stored, strict=True):
            outcomes[index] = receipts
        return outcomes

    def _commit(self, units: Sequence[list[Delivery]]) -> list[list[Receipt]]:
        """Store every unit in one transaction; return each unit's receipts once committed."""
        with session_scope(self._engine, lock_timeout=self._lock_timeout) as session:
            flat = accept_alerts(
                session=session,
                audit=self._audit,
                deliveries=[delivery for unit in units for delivery in unit],
            )
        receipts = []
        start = 0
        for unit in units:
            receipts.append(flat[start : start + len(unit)])
            start += len(unit)
        return receipts

    @staticmethod
    def _failed(
        outcomes: list[Outcome], units: dict[int, list[Delivery]], reason: str
    ) -> list[Outcome]:
        for index in units:
            outcomes[index] = NotStored(f"{reason}; nothing was accepted, retry later")
        return outcomes


_ALERT_LENGTHS = {
    column.name: column.type.length
    for column in Alert.__table__.columns  # type: ignore[attr-defined]
    if isinstance(column.type, String) and column.type.length
}


def prepare_alone(
    audit: AuditLog,
    breach: Breach,
    payload: dict[str, Any],
    body_sha256: str,
    meta: DeliveryMeta | None = None,
) -> Delivery:
    """Prepare one alert and check that both backends can store it; raise Unstorable if not.

    Done per request before the batch's transaction: an alert that cannot be prepared, or
    whose row or event the database could not take (a NUL, a lone surrogate, a value longer
    than its column), is refused alone instead of failing the commit of its companions.
    """
    try:
        delivery = prepare_delivery(
            audit=audit, breach=breach, payload=payload, body_sha256=body_sha256, meta=meta
        )
    except Exception as exc:
        log.warning("intake.prepare_failed", error=type(exc).__name__)
        raise Unstorable(f"the alert could not be prepared: {type(exc).__name__}") from None
    for column, value in delivery.row.items():
        if not isinstance(value, str):
            continue
        problem = text_problem(value)
        limit = _ALERT_LENGTHS.get(column)
        if problem is None and limit is not None and len(value) > limit:
            problem = f"is {len(value)} characters long, over the {limit} stored"
        if problem is not None:
            raise Unstorable(f"the alert's {column} {problem}")
    event = delivery.event
    for name, text in (("actor", event.actor), ("kind", event.kind), ("data", event.data)):
        problem = text_problem(text)
        if problem is not None:
            raise Unstorable(f"the alert's audit event ({name}) {problem}")
    return delivery


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc)[:500]


def _refusal(exc: BaseException) -> NotStored:
    """Answer a request whose commit, alone, the database refused."""
    if isinstance(exc, DataError | ValueError):
        # The value itself does not fit (too long, a character it cannot hold): it never will.
        return Unstorable(f"the database cannot store the alert: {_reason(exc)}")
    return NotStored("the database refused the alert; nothing was accepted, retry later")
