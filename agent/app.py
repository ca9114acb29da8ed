"""The FastAPI application: webhooks and health, with the worker running beside it."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.requests import Request

from agent import __version__
from agent.alerts.arize import load_field_paths
from agent.alerts.intake import AlertIntake, BatchWriter, Store
from agent.alerts.routes import router as alerts_router
from agent.alerts.writer_process import WriterProcess
from agent.approvals.routes import router as approvals_router
from agent.auditlog import AuditLog, make_audit
from agent.changes.routes import router as changes_router
from agent.db import make_engine, upgrade
from agent.deps import Services
from agent.doctor import CachedChecks, run_checks
from agent.health import router as health_router
from agent.metrics.routes import router as metrics_router
from agent.review.pages import router as pages_router
from agent.review.routes import router as review_router
from agent.review.service import ChainStatus
from agent.settings import Settings
from agent.toolbox import build_toolbox
from agent.worker import Worker, start_worker_thread
from agent.workers import build_runner
from audit.ranges import shared_url
from audit.sqltypes import utcnow
from runbooks.catalog import load_catalog
from runbooks.library import SHIPPED_RUNBOOKS, load_runbooks


def create_app(
    settings: Settings, *, run_worker: bool = True, now: Callable[[], datetime] = utcnow
) -> FastAPI:
    """Build the service; the database is migrated and the worker started at start-up."""
    engine = make_engine(settings.database_url)
    audit = make_audit(settings, now)
    tools = build_toolbox(settings)
    catalog = load_catalog(settings.catalog_file) if settings.catalog_file else None
    runbooks = load_runbooks(settings.runbooks_dir or SHIPPED_RUNBOOKS)
    services = Services(
        settings=settings,
        engine=engine,
        audit=audit,
        chain=ChainStatus(engine, audit.key),
        catalog=catalog,
        checks=CachedChecks(lambda: run_checks(settings, tools, catalog, timeout=5.0)),
        field_paths=load_field_paths(settings.arize_field_map),
        integrations={
            name: "live" if live else "dry-run" for name, live in tools.configured().items()
        },
        intake=AlertIntake(_intake_store(settings, engine, audit, now, run_worker=run_worker)),
        group_members=tools.chat.group_members if tools.chat is not None else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            upgrade(engine)
        stop = None
        thread = None
        worker = None
        if run_worker:
            runner = build_runner(
                settings,
                engine=engine,
                audit=audit,
                tools=tools,
                catalog=catalog,
                runbooks=runbooks,
                now=now,
            )
            worker = Worker(settings=settings, engine=engine, audit=audit, runner=runner, now=now)
            thread, stop = start_worker_thread(worker)
            services.worker_alive = thread.is_alive
            services.wake_worker = worker.wake
        services.intake.start()
        # What start-up built (~350k objects: SDKs, models, the graph) lives as long as the
        # process. Frozen, it is left out of the collector's full passes, each of which
        # otherwise stalls every request for a fifth of a second (measured with gc.callbacks).
        gc.freeze()
        try:
            yield
        finally:
            await services.intake.close()
            if stop is not None and thread is not None and worker is not None:
                stop.set()
                thread.join(timeout=settings.worker_shutdown_seconds)
                if thread.is_alive():
                    worker.release()
            engine.dispose()

    app = FastAPI(
        title="LLM remediation agent",
        version=__version__,
        description="Arize alert webhook that investigates LLM service breaches and acts on them.",
        lifespan=lifespan,
    )
    app.state.services = services
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


def _intake_store(
    settings: Settings,
    engine: Engine,
    audit: AuditLog,
    now: Callable[[], datetime],
    *,
    run_worker: bool,
) -> Store:
    """Return where accepted alerts are written (see `REMEDIATOR_INTAKE_WRITER`).

    `auto` gives an API replica (no worker) a writer process, for the ack rate, and keeps the
    writer on a thread when the worker shares the process, for memory. A writer process keeps
    its own clock and connection, so an injected clock (the scenario evaluation's) or an
    in-memory SQLite database keeps the writer in this process whatever the setting.
    """
    wanted = settings.intake_writer
    if wanted == "auto":
        wanted = "thread" if run_worker else "process"
    if wanted == "process" and now is utcnow and shared_url(engine.url) is not None:
        return WriterProcess(settings)
    return BatchWriter(engine, audit)
