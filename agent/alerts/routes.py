"""POST /webhooks/arize: authenticate, bound, parse and durably accept one alert."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from agent.alerts.alertmanager import map_alertmanager_payload
from agent.alerts.arize import BreachMappingError, map_arize_payload
from agent.alerts.intake import NotStored, Unstorable
from agent.alerts.models import AlertRead
from agent.alerts.service import Receipt, get_alert
from agent.api.bodies import BodyError, decode_json
from agent.api.deps import AppState, SessionDep, WebhookAuth, check_webhook_token, read_bounded
from agent.api.problems import ERRORS, Problem
from agent.incidents.models import Incident
from agent.telemetry import metrics
from audit.chain import canonical_json

router = APIRouter(tags=["webhooks"])


class Accepted(BaseModel):
    """The answer to an accepted alert."""

    alert_id: uuid.UUID
    status: str
    incident_id: uuid.UUID | None = None


JSON_OBJECT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "/webhooks/arize",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses={200: {"model": Accepted, "description": "The same delivery again"}, **ERRORS},
    openapi_extra=JSON_OBJECT_BODY,
)
async def receive_arize_alert(request: Request) -> JSONResponse:
    """Accept an Arize monitor alert: 202 once it is stored, 200 for a re-delivery."""
    app_state = _webhook_services(request)
    _require_json(request)
    body = await _read_bounded(request, app_state.settings.max_body_bytes)
    payload = _parse_object(request, body, app_state.settings.max_json_depth)
    try:
        breach = map_arize_payload(payload, app_state.field_paths)
    except BreachMappingError as exc:
        _refused(request, "unmapped")
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": str(exc), "missing": exc.missing or None},
        )
    digest = hashlib.sha256(body).hexdigest()
    try:
        [receipt] = await app_state.intake.submit([(breach, payload, digest)])
    except NotStored as exc:
        return _not_stored(request, exc)
    metrics.count_stored("arize", [_status(receipt)])
    return JSONResponse(
        status_code=status.HTTP_202_ACCEPTED if receipt.created else status.HTTP_200_OK,
        content=_answer(receipt),
    )


class AcceptedGroup(BaseModel):
    """The answer to an Alertmanager group: one entry per alert, in order."""

    alerts: list[Accepted]
    accepted: int
    duplicates: int


@router.post(
    "/webhooks/alertmanager",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedGroup,
    responses={200: {"model": AcceptedGroup, "description": "Every alert seen before"}, **ERRORS},
    openapi_extra=JSON_OBJECT_BODY,
)
async def receive_alertmanager_alerts(request: Request) -> JSONResponse:
    """Accept a Prometheus Alertmanager webhook (version 4): every alert of the group, or none."""
    app_state = _webhook_services(request)
    _require_json(request)
    payload = _parse_object(
        request,
        await _read_bounded(request, app_state.settings.max_body_bytes),
        app_state.settings.max_json_depth,
    )
    try:
        mapped = map_alertmanager_payload(payload)
    except BreachMappingError as exc:
        _refused(request, "unmapped")
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": str(exc), "missing": exc.missing or None},
        )
    items = [
        (breach, item, hashlib.sha256(canonical_json(item).encode()).hexdigest())
        for breach, item in mapped
    ]
    try:
        receipts = await app_state.intake.submit(items)
    except NotStored as exc:
        return _not_stored(request, exc)
    metrics.count_stored("alertmanager", [_status(r) for r in receipts])
    accepted = sum(1 for r in receipts if r.created)
    group = {
        "alerts": [_answer(r) for r in receipts],
        "accepted": accepted,
        "duplicates": len(receipts) - accepted,
    }
    return JSONResponse(
        status_code=status.HTTP_202_ACCEPTED if accepted else status.HTTP_200_OK, content=group
    )


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertRead,
    responses={401: {"model": Problem}, 404: {"model": Problem}},
    dependencies=[WebhookAuth],
)
def read_alert(alert_id: uuid.UUID, session: SessionDep) -> AlertRead:
    """Show where an accepted alert is (pending, claimed, done, failed) and its incident's run."""
    alert = get_alert(session=session, alert_id=alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    shown = AlertRead.model_validate(alert, from_attributes=True)
    if alert.incident_id is not None:
        incident = session.get(Incident, alert.incident_id)
        shown.incident_run_state = str(incident.run_state) if incident else None
        shown.incident_status = str(incident.status) if incident else None
    return shown


def _webhook_services(request: Request) -> AppState:
    """Return the service's parts once the request's webhook token is checked.

    The webhooks call this rather than declare FastAPI dependencies: solving those took a
    tenth of the ack path's CPU (measured with py-spy under bench/ingest.py).
    """
    metrics.count_received(request.scope["path"])  # before the token check: refusals count too
    app_state: AppState = request.app.state.app_state
    check_webhook_token(request, app_state.settings)
    return app_state


def _status(receipt: Receipt) -> str:
    return "accepted" if receipt.created else "duplicate"


def _answer(receipt: Receipt) -> dict[str, Any]:
    """Return the JSON of `Accepted` for a receipt (built directly: this is the hot path)."""
    return {
        "alert_id": str(receipt.alert_id),
        "status": _status(receipt),
        "incident_id": str(receipt.incident_id) if receipt.incident_id else None,
    }


def _not_stored(request: Request, exc: NotStored) -> JSONResponse:
    if isinstance(exc, Unstorable):
        # Retrying the same alert cannot help: say so rather than ask for a retry.
        _refused(request, "unstorable")
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": str(exc)}
        )
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": str(exc)},
        headers={"Retry-After": "1"},
    )


def _require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        _refused(request, "wrong_content_type")
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type must be application/json, got {content_type or 'none'}",
        )


async def _read_bounded(request: Request, limit: int) -> bytes:
    return await read_bounded(request, limit, on_too_large=lambda: _refused(request, "too_large"))


def _parse_object(request: Request, body: bytes, max_depth: int) -> dict[str, Any]:
    try:
        payload = decode_json(body, max_depth=max_depth)
    except BodyError as exc:
        _refused(request, exc.reason)
        raise HTTPException(exc.status, exc.detail) from None
    if not isinstance(payload, dict):
        _refused(request, "not_object")
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"alert body must be a JSON object, got {type(payload).__name__}",
        )
    return payload


def _refused(request: Request, reason: str) -> None:
    metrics.count_refused(request.scope["path"], reason)
