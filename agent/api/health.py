"""GET /healthz (the process answers) and GET /readyz (it can do its work)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from agent.api.deps import AppState, AppStateDep, is_viewer
from agent.store.db import write_problem
from agent.telemetry.routes import metrics_token_ok

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer while the process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready; the body says why"}})
def readyz(request: Request, app_state: AppStateDep) -> JSONResponse:
    """Report whether the database takes writes, the intake and worker run, what is live.

    Each adapter's check (its URLs, the Slack bot's id) only with the viewer or metrics token:
    anyone who can reach the port may ask whether the service is ready, not how it is wired.
    """
    checks: dict[str, Any] = {}
    ready = True
    try:
        with app_state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        ready = False
    else:
        problem = write_problem(app_state.engine)
        if problem is not None:
            checks["database"] = f"not writable: {problem}"
            ready = False
    if app_state.intake.alive:
        checks["intake"] = "running"
    else:
        checks["intake"] = "stopped"
        ready = False
    if app_state.worker_alive is None:
        checks["worker"] = "not in this process"
    elif app_state.worker_alive():
        checks["worker"] = "running"
    else:
        checks["worker"] = "stopped"
        ready = False
    checks["integrations"] = app_state.integrations
    if app_state.checks is not None:
        # Informative: a failing dependency is why we are needed, not a reason to stop serving.
        rows = app_state.checks.current()
        if not _may_see_details(request, app_state):
            failing = sum(1 for r in rows if not r.ok)
            checks["adapters"] = {
                "ok": len(rows) - failing,
                "failing": failing,
                "detail": "each adapter's check: send the viewer or metrics token",
            }
            return _answer(ready, checks)
        checks["adapters"] = [
            {
                "scope": r.scope,
                "integration": r.role,
                "adapter": r.adapter,
                "ok": r.ok,
                "detail": r.detail,
            }
            for r in rows
        ]
    return _answer(ready, checks)


def _answer(ready: bool, checks: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        status_code=200 if ready else 503,
        content={"status": "ready" if ready else "not ready", "checks": checks},
    )


def _may_see_details(request: Request, app_state: AppState) -> bool:
    authorization = request.headers.get("authorization")
    viewer = is_viewer(request, app_state.settings, app_state.services.clock())
    return viewer or metrics_token_ok(app_state.settings, authorization)
