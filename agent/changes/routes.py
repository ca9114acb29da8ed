"""POST /events/deployments (pipelines) and GET /events/deployments (reviewers)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from agent.api.deps import AppState, AppStateDep, SessionDep, ViewerAuth, WebhookAuth
from agent.api.problems import ERRORS
from agent.changes.models import Deployment, DeploymentIn, DeploymentRead
from agent.changes.service import record_deployment
from agent.store.db import session_scope

router = APIRouter(tags=["changes"])


@router.post(
    "/events/deployments",
    status_code=status.HTTP_201_CREATED,
    response_model=DeploymentRead,
    responses=ERRORS,
    dependencies=[WebhookAuth],
)
async def post_deployment(change: DeploymentIn, app_state: AppStateDep) -> DeploymentRead:
    """Record a deployment of a model, prompt, index, config or code (from CI/CD)."""
    return await run_in_threadpool(_record, app_state, change)


@router.get("/events/deployments", response_model=list[DeploymentRead], dependencies=[ViewerAuth])
def list_deployments(
    session: SessionDep,
    service: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeploymentRead]:
    """List recorded deployments, newest first."""
    query = select(Deployment)
    if service:
        query = query.where(Deployment.service == service)
    if since:
        query = query.where(col(Deployment.deployed_at) >= since)
    rows = session.exec(query.order_by(col(Deployment.deployed_at).desc()).limit(limit)).all()
    return [DeploymentRead.model_validate(r, from_attributes=True) for r in rows]


def _record(app_state: AppState, change: DeploymentIn) -> DeploymentRead:
    with session_scope(app_state.engine) as session:
        deployment = record_deployment(session=session, audit=app_state.audit, change=change)
        return DeploymentRead.model_validate(deployment, from_attributes=True)
