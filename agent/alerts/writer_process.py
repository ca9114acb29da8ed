"""The intake's writer in a process of its own, so storing alerts never competes for the GIL.

`remediator serve` answers webhooks on one event loop. Preparing an alert (redaction, canonical
JSON, the HMAC link) and driving the database are Python work too: in the same process they take
the GIL from the loop, and the loop's share of one core is what bounds the ack rate. Here a child
process holds the engine and the `BatchWriter`; the intake sends it each batch over a pipe and
answers the batch's requests with what the child reports once its transaction is committed.

Nothing about durability changes: a request is answered 202 only after the child said its
transaction committed. If the child dies, the requests of the batch in flight are answered 503
(a retried delivery is recognised as the same alert if it had been stored after all) and the
next batch starts a new child.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import structlog

from agent.alerts.intake import BatchWriter, NotStored, Outcome, Received, Unstorable, unpack
from agent.alerts.models import Breach
from agent.alerts.service import DeliveryMeta, Receipt
from agent.settings import Settings

log = structlog.get_logger(__name__)

START_TIMEOUT = 60.0
"""How long the child may take to import and open the database before start-up fails."""

STOP_TIMEOUT = 10.0
"""How long the child may take to exit once told to; then it is killed."""

_Wire = list[list[tuple[dict[str, Any], dict[str, Any], str, DeliveryMeta | None]]]
"""A batch as sent to the child: per request, its alerts as (breach fields, body, sha256, the
delivery's details)."""


class WriterGone(Exception):
    """The writer process stopped or could not be started."""


class WriterProcess:
    """A `Store` whose writes run in a child process, one batch at a time."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (for tests and diagnostics)."""
        return self._process.pid if self._process is not None else None

    def open(self) -> None:
        """Start the child and wait until it has opened the database; raise WriterGone if not."""
        with self._lock:
            self._start()

    async def write(self, batch: Sequence[list[Received]]) -> list[Outcome]:
        """Send a batch to the child and return its outcomes; every request fails if it dies.

        Runs on the event loop, one batch at a time: the child waits in `recv` whenever it is
        sent a batch, so sending never waits for long, and the answer is awaited without a
        thread (a thread would take the GIL from the loop twice per batch).
        """
        wire: _Wire = [
            [
                (breach.__dict__, payload, digest, meta)
                for breach, payload, digest, meta in map(unpack, items)
            ]
            for items in batch
        ]
        outcomes: list[Outcome | None] = [None] * len(batch)
        try:
            data = ForkingPickler.dumps(wire)
        except Exception:
            # Something in one request cannot be sent (the webhooks bound what they accept, so
            # this is a bug): refuse those requests alone and send the others.
            log.exception("intake.unpicklable_batch", requests=len(batch))
            for index, items in enumerate(wire):
                try:
                    ForkingPickler.dumps(items)
                except Exception as exc:
                    outcomes[index] = Unstorable(
                        f"the alert cannot be handed to the writer ({type(exc).__name__})"
                    )
            data = ForkingPickler.dumps([wire[i] for i, o in enumerate(outcomes) if o is None])
        sent = [index for index, outcome in enumerate(outcomes) if outcome is None]
        if sent:
            answers = await self._exchange(data, len(sent))
            for index, answer in zip(sent, answers, strict=True):
                outcomes[index] = answer
        return [outcome for outcome in outcomes if outcome is not None]

    async def _exchange(self, data: memoryview, requests: int) -> list[Outcome]:
        """Send a pickled batch to the child and return its outcomes; all fail if it dies."""
        loop = asyncio.get_running_loop()
        try:
            if self._conn is None:
                await loop.run_in_executor(None, self.open)
            conn = self._conn
            assert conn is not None
            conn.send_bytes(data)
            await _readable(loop, conn)
            answer = conn.recv()
            outcomes = [_outcome(item) for item in answer]
            if len(outcomes) != requests:
                raise WriterGone(f"{len(outcomes)} answers for {requests} requests")
        except Exception as exc:
            # The child is gone, or where it is in the exchange is unknown: start a new one.
            log.error("intake.writer_gone", error=f"{type(exc).__name__}: {exc}", requests=requests)
            self._stop(kill=True)
            return [
                NotStored(
                    "the alert writer stopped before confirming the write; retry later "
                    "(a retried delivery that was stored after all is answered 200)"
                )
                for _ in range(requests)
            ]
        return outcomes

    def close(self) -> None:
        """Tell the child to stop once idle; kill it if it does not."""
        with self._lock:
            self._stop(kill=False)

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=serve_writer,
            args=(child, self._settings),
            name="remediator-alert-writer",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not parent.poll(START_TIMEOUT):
            self._stop(kill=True)
            raise WriterGone(f"the alert writer did not start within {START_TIMEOUT:.0f}s")
        try:
            ready = parent.recv()
        except (EOFError, OSError):
            ready = ("failed", "it exited during start-up")
        if ready != ("ready", None):
            self._stop(kill=True)
            raise WriterGone(f"the alert writer could not start: {ready[1]}")
        log.info("intake.writer_started", pid=process.pid)

    def _stop(self, *, kill: bool) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            if not kill:
                try:
                    conn.send(None)
                except OSError:
                    pass
            conn.close()
        if process is not None:
            process.join(0 if kill else STOP_TIMEOUT)
            if process.is_alive():
                process.kill()
                process.join()


async def _readable(loop: asyncio.AbstractEventLoop, conn: Connection) -> None:
    """Wait until the child's answer (or its end of the pipe closing) can be read."""
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _outcome(item: tuple[str, Any]) -> Outcome:
    kind, value = item
    if kind == "stored":
        return [Receipt(alert_id, created, incident_id) for alert_id, created, incident_id in value]
    if kind == "unstorable":
        return Unstorable(value)
    return NotStored(value)


def _wire_outcome(outcome: Outcome) -> tuple[str, Any]:
    if isinstance(outcome, Unstorable):
        return ("unstorable", str(outcome))
    if isinstance(outcome, NotStored):
        return ("refused", str(outcome))
    return ("stored", [(r.alert_id, r.created, r.incident_id) for r in outcome])


def serve_writer(conn: Connection, settings: Settings) -> None:
    """The child: open the database, then store each batch it is sent until told to stop."""
    # Ctrl-C and SIGTERM are for the API process: it drains the queue, then stops this child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        from agent.store.db import BackgroundCheckpoints
        from agent.telemetry.logs import configure_logging
        from agent.wiring import build_services

        configure_logging(settings)
        services = build_services(settings)
        engine = services.engine
        checkpoints = (
            BackgroundCheckpoints(engine).start() if engine.dialect.name == "sqlite" else None
        )
        writer = BatchWriter(
            engine, services.audit, lock_timeout=settings.intake_lock_timeout_seconds
        )
        # What start-up built lives as long as the child: leave it out of the collector's passes.
        gc.freeze()
    except Exception as exc:  # reported to the parent, which refuses to start
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            wire: _Wire | None = conn.recv()
        except (EOFError, OSError):
            break  # the API process is gone
        if wire is None:
            break
        batch: list[list[Received]] = [
            # Validated by the API process already: rebuilt as it was, not validated again.
            [
                (Breach.model_construct(**fields), body, digest, meta)
                for fields, body, digest, meta in items
            ]
            for items in wire
        ]
        outcomes = writer.write_now(batch)
        conn.send([_wire_outcome(outcome) for outcome in outcomes])
    if checkpoints is not None:
        checkpoints.stop()
    engine.dispose()
