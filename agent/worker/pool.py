"""Run worker loops in a process of their own (`remediator worker`).

With PostgreSQL, API replicas (`serve --no-worker`) and worker processes share nothing but the
database: each loop claims alerts and incident runs with SKIP LOCKED and a lease it renews
while it works. SIGTERM or SIGINT stops the loops: each finishes the work in hand within the
grace period, or gives its lease back so another worker resumes it from the last checkpoint.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from types import FrameType

import structlog

from agent.settings import Settings
from agent.store.db import upgrade
from agent.telemetry.server import start_metrics_server
from agent.wiring import build_services
from agent.worker.loop import Worker
from agent.worker.sender import start_outbox_sender
from audit.sqltypes import utcnow

log = structlog.get_logger(__name__)


def run_workers(
    settings: Settings, concurrency: int, *, now: Callable[[], datetime] = utcnow
) -> None:
    """Run `concurrency` worker loops until SIGTERM or SIGINT, then stop them gracefully."""
    # Handlers first: a SIGTERM while the process is still starting stops it cleanly too.
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("workers.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services = build_services(settings, now)
    services.audit.trusted()  # a missing or bad signing key stops the start, saying why
    engine = services.engine
    if settings.auto_migrate:
        upgrade(engine)
    runner = services.runner(connections=concurrency + 1)
    # One loop signs the periodic audit checkpoints; N copies of each would add nothing.
    quiet = replace(services, settings=settings.model_copy(update={"audit_checkpoint_seconds": 0}))
    workers = [Worker(services if n == 0 else quiet, runner) for n in range(concurrency)]
    threads = [
        threading.Thread(target=w.run, args=(stop,), name=f"remediator-worker-{n}", daemon=True)
        for n, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    # Slack messages the runs write to the outbox leave from here, each channel at its pace.
    sender = start_outbox_sender(services)
    scrape = start_metrics_server(settings, engine)  # REMEDIATOR_METRICS_PORT, when set
    log.info(
        "workers.started",
        concurrency=concurrency,
        pid=os.getpid(),
        database=engine.dialect.name,
        lease_seconds=settings.worker_lease_seconds,
        metrics_port=scrape.port if scrape is not None else None,
    )
    while not stop.is_set() and any(t.is_alive() for t in threads):
        stop.wait(1.0)
    deadline = time.monotonic() + settings.worker_shutdown_seconds
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    if sender is not None:
        sender[1].set()
        sender[0].join(max(deadline - time.monotonic(), 0))
    busy = [w for w, t in zip(workers, threads, strict=True) if t.is_alive()]
    for worker in busy:
        worker.release()
    log.info("workers.stopped", finished=len(workers) - len(busy), released=len(busy))
    if scrape is not None:
        scrape.stop()
    if busy:
        # The loops still running hold no lease now: end them here, before they do more.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    engine.dispose()
