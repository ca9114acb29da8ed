"""GET /metrics: Prometheus text exposition, open unless REMEDIATOR_METRICS_TOKEN is set."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from agent.api.deps import AppStateDep
from agent.settings import Settings
from agent.telemetry.collector import ScrapeCollector

router = APIRouter(tags=["health"])


def metrics_token_ok(settings: Settings, authorization: str | None) -> bool:
    """Tell whether a scrape may read the metrics: no token set, or the right bearer token."""
    if settings.metrics_token is None:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    expected = settings.metrics_token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        401: {"description": "REMEDIATOR_METRICS_TOKEN is set and the bearer token is wrong"},
    },
)
async def metrics(request: Request, app_state: AppStateDep) -> Response:
    """Return this process's metrics and the incidents-by-state gauge read from the database."""
    if not metrics_token_ok(app_state.settings, request.headers.get("authorization")):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send 'Authorization: Bearer <metrics token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # The incidents gauge queries the database: keep that off the event loop.
    body = await run_in_threadpool(generate_latest, ScrapeCollector(app_state.engine))
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
