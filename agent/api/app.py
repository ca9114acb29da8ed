"""The FastAPI application: webhooks and health, with the worker running beside it."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import Request

from agent import __version__
from agent.adapters.checks import CachedChecks, run_checks
from agent.alerts.arize import load_field_paths
from agent.alerts.intake import AlertIntake, BatchWriter, Store
from agent.alerts.routes import router as alerts_router
from agent.alerts.writer_process import WriterProcess
from agent.api.deps import AppState
from agent.api.health import router as health_router
from agent.approvals.routes import router as approvals_router
from agent.changes.routes import router as changes_router
from agent.review.pages import router as pages_router
from agent.review.routes import router as review_router
from agent.review.service import ChainStatus
from agent.settings import Settings
from agent.store.db import upgrade
from agent.telemetry.routes import router as metrics_router
from agent.wiring import Services, build_services
from agent.worker.loop import Worker, start_worker_thread
from agent.worker.sender import start_outbox_sender
from audit.ranges import shared_url
from audit.sqltypes import utcnow


def create_app(
    settings: Settings,
    *,
    run_worker: bool = True,
    now: Callable[[], datetime] = utcnow,
    env: Mapping[str, str] = os.environ,
) -> FastAPI:
    """Build the service; the database is migrated and the worker started at start-up.

    `env` is where the catalog's secrets are read (see `build_services`).
    """
    services = build_services(settings, now, env=env)
    # A runbook naming what the catalog lacks (or a broken catalog) stops the start, listing
    # every mistake, before any alert is accepted: ConfigError is a ValueError.
    services.runbooks  # noqa: B018
    engine, adapters = services.engine, services.adapters
    app_state = AppState(
        services=services,
        chain=ChainStatus(engine, services.audit.verify),
        checks=CachedChecks(lambda: run_checks(settings, adapters, timeout=5.0)),
        field_paths=load_field_paths(settings.arize_field_map),
        integrations={
            name: "live" if live else "dry-run" for name, live in adapters.configured().items()
        },
        intake=AlertIntake(_intake_store(services, run_worker=run_worker)),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.audit.trusted()  # a missing or bad signing key stops the start, saying why
        if settings.auto_migrate:
            upgrade(engine)
        loops: list[tuple[Worker, threading.Thread, threading.Event]] = []
        if run_worker:
            # More than one loop lets incidents of a storm run side by side (each run waits on
            # probes most of its time); one loop signs the audit checkpoints, as in `worker -c N`.
            count = settings.serve_worker_loops
            runner = services.runner(connections=count + 1) if count > 1 else services.runner()
            quiet = replace(
                services, settings=settings.model_copy(update={"audit_checkpoint_seconds": 0})
            )
            for n in range(count):
                worker = Worker(services if n == 0 else quiet, runner)
                loops.append((worker, *start_worker_thread(worker)))
            app_state.worker_alive = lambda: all(t.is_alive() for _, t, _ in loops)

            def wake_all() -> None:
                for loop_worker, _, _ in loops:
                    loop_worker.wake()

            app_state.wake_worker = wake_all
        # The worker's runs write Slack messages to the outbox; they leave from here.
        sender = start_outbox_sender(services) if run_worker else None
        app_state.intake.start()
        # What start-up built (~350k objects: SDKs, models, the graph) lives as long as the
        # process. Frozen, it is left out of the collector's full passes, each of which
        # otherwise stalls every request for a fifth of a second (measured with gc.callbacks).
        gc.freeze()
        try:
            yield
        finally:
            await app_state.intake.close()
            if sender is not None:
                sender[1].set()
                sender[0].join(timeout=settings.worker_shutdown_seconds)
            for _, _, stop in loops:
                stop.set()
            deadline = time.monotonic() + settings.worker_shutdown_seconds
            for worker, thread, _ in loops:
                thread.join(timeout=max(deadline - time.monotonic(), 0))
                if thread.is_alive():
                    worker.release()
            engine.dispose()

    app = FastAPI(
        title="LLM remediation agent",
        version=__version__,
        description="Arize alert webhook that investigates LLM service breaches and acts on them.",
        lifespan=lifespan,
    )
    app.state.app_state = app_state
    app.include_router(alerts_router)
    app.include_router(approvals_router)
    app.include_router(changes_router)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(review_router)
    app.include_router(pages_router)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return JSONResponse(status_code=422, content={"detail": problems})

    return app


def _intake_store(services: Services, *, run_worker: bool) -> Store:
    """Return where accepted alerts are written (see `REMEDIATOR_INTAKE_WRITER`).

    `auto` gives an API replica (no worker) a writer process, for the ack rate, and keeps the
    writer on a thread when the worker shares the process, for memory. A writer process keeps
    its own clock and connection, so an injected clock (the scenario evaluation's) or an
    in-memory SQLite database keeps the writer in this process whatever the setting.
    """
    settings = services.settings
    wanted = settings.intake_writer
    if wanted == "auto":
        wanted = "thread" if run_worker else "process"
    if (
        wanted == "process"
        and services.clock is utcnow
        and shared_url(services.engine.url) is not None
    ):
        return WriterProcess(settings)
    return BatchWriter(
        services.engine, services.audit, lock_timeout=settings.intake_lock_timeout_seconds
    )
