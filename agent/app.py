"""The FastAPI application: webhooks and health, with the worker running beside it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import Request

from agent import __version__
from agent.alerts.arize import load_field_paths
from agent.alerts.routes import router as alerts_router
from agent.approvals.routes import router as approvals_router
from agent.auditlog import AuditLog
from agent.changes.routes import router as changes_router
from agent.db import make_engine, upgrade
from agent.deps import Services
from agent.doctor import CachedChecks, run_checks
from agent.graph.runner import GraphRunner, make_checkpointer
from agent.graph.state import RunContext
from agent.health import router as health_router
from agent.metrics.routes import router as metrics_router
from agent.review.pages import router as pages_router
from agent.review.routes import router as review_router
from agent.review.service import ChainStatus
from agent.settings import Settings
from agent.toolbox import build_analyst, build_toolbox
from agent.worker import Worker, start_worker_thread
from audit.redact import Redactor
from audit.sqltypes import utcnow
from runbooks.catalog import load_catalog
from runbooks.library import SHIPPED_RUNBOOKS, load_runbooks


def create_app(
    settings: Settings, *, run_worker: bool = True, now: Callable[[], datetime] = utcnow
) -> FastAPI:
    """Build the service; the database is migrated and the worker started at start-up."""
    engine = make_engine(settings.database_url)
    audit = AuditLog(
        key=settings.audit_key.get_secret_value().encode(),
        now=now,
        redactor=Redactor(field_names=frozenset(settings.redact_fields)),
        payload_policy=settings.payload_policy,
    )
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
        group_members=tools.chat.group_members if tools.chat is not None else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            upgrade(engine)
        stop = None
        thread = None
        if run_worker:
            context = RunContext(
                settings=settings,
                engine=engine,
                tools=tools,
                audit=audit,
                now=now,
                catalog=catalog,
                runbooks=runbooks,
                analyst=build_analyst(settings),
                env=dict(os.environ),
            )
            context.warm_up()
            runner = GraphRunner(context, make_checkpointer(settings))
            worker = Worker(settings=settings, engine=engine, audit=audit, runner=runner, now=now)
            thread, stop = start_worker_thread(worker)
            services.worker_alive = thread.is_alive
            services.wake_worker = worker.wake
        try:
            yield
        finally:
            if stop is not None and thread is not None:
                stop.set()
                thread.join(timeout=30)
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
