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
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from agent.alerts.models import Breach
from agent.alerts.service import Delivery, Receipt, accept_alerts, prepare_delivery
from agent.store.audit_log import AuditLog
from agent.store.db import session_scope

log = structlog.get_logger(__name__)

MAX_BATCH = 256
"""Most alerts in one transaction: bounds the transaction's time and memory, not the queue."""

Received = tuple[Breach, dict[str, Any], str]
"""One alert of a request: its breach, its decoded body and the sha256 that identifies it."""


class NotStored(Exception):
    """The alerts of a request were not committed: nothing of that request was accepted."""


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

    def start(self) -> None:
        """Open the store, then start the writer on the running event loop."""
        self._store.open()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alert-writer")

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
            batch = self._take()
            outcomes = await self._store.write([request.items for request in batch])
            for request, outcome in zip(batch, outcomes, strict=True):
                if request.future.done():
                    continue  # its client went away; what was stored stays stored
                if isinstance(outcome, BaseException):
                    request.future.set_exception(outcome)
                else:
                    request.future.set_result(outcome)

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

    Each batch is prepared outside any transaction, then stored in ONE transaction; a row the
    database refuses only fails its own request (the others are stored again, each alone).
    """

    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit
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
                units[index] = [
                    prepare_delivery(audit=self._audit, breach=b, payload=p, body_sha256=d)
                    for b, p, d in items
                ]
                outcomes.append([])
            except Exception as exc:
                log.exception("intake.prepare_failed")
                outcomes.append(NotStored(f"the alert could not be prepared: {exc}"))
        try:
            stored = self._commit(list(units.values()))
        except (IntegrityError, DataError) as exc:
            # Logged without the traceback: SQLAlchemy's would carry every alert of the batch.
            log.warning("intake.refused", requests=len(units), reason=str(exc.orig))
            if len(units) == 1:
                return self._failed(outcomes, units, "the database refused the alert")
            # A row the database refuses aborts the whole transaction: store each request
            # alone, so one bad alert cannot fail its companions.
            for index, unit in units.items():
                try:
                    [outcomes[index]] = self._commit([unit])
                except Exception as alone:
                    log.warning(
                        "intake.refused", requests=1, reason=str(getattr(alone, "orig", alone))
                    )
                    outcomes[index] = NotStored(
                        "the database refused the alert; nothing was accepted"
                    )
            return outcomes
        except Exception:
            log.exception("intake.store_failed", requests=len(units))
            return self._failed(outcomes, units, "the alert could not be stored")
        for index, receipts in zip(units, stored, strict=True):
            outcomes[index] = receipts
        return outcomes

    def _commit(self, units: Sequence[list[Delivery]]) -> list[list[Receipt]]:
        """Store every unit in one transaction; return each unit's receipts once committed."""
        with session_scope(self._engine) as session:
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
