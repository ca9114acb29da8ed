"""POST /events/deployments (pipelines) and GET /events/deployments (reviewers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import ValidationError
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from agent.api.bodies import BodyError, decode_json
from agent.api.deps import (
    AppState,
    AppStateDep,
    SessionDep,
    ViewerAuth,
    WebhookAuth,
    read_bounded,
)
from agent.api.problems import ERRORS
from agent.changes.models import Deployment, DeploymentIn, DeploymentRead
from agent.changes.service import record_deployment
from agent.store.db import session_scope
from agent.store.values import StorableText, UTCTime

router = APIRouter(tags=["changes"])


@router.post(
    "/events/deployments",
    status_code=status.HTTP_201_CREATED,
    response_model=DeploymentRead,
    responses=ERRORS,
    dependencies=[WebhookAuth],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DeploymentIn.model_json_schema()}},
        }
    },
)
async def post_deployment(request: Request, app_state: AppStateDep) -> DeploymentRead:
    """Record a deployment of a model, prompt, index, config or code (from CI/CD).

    The body is read within the webhooks' size limit and decoded as strictly as theirs.
    """
    settings = app_state.settings
    body = await read_bounded(request, settings.max_body_bytes)
    try:
        payload = decode_json(body, max_depth=settings.max_json_depth)
        change = DeploymentIn.model_validate(payload)
    except BodyError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        )
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems) from None
    return await run_in_threadpool(_record, app_state, change)


@router.get("/events/deployments", response_model=list[DeploymentRead], dependencies=[ViewerAuth])
def list_deployments(
    session: SessionDep,
    service: Annotated[StorableText | None, Query(max_length=200)] = None,
    since: UTCTime | None = None,
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
