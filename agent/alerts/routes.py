"""POST /webhooks/arize: authenticate, bound, parse and durably accept one alert."""

from __future__ import annotations

import hashlib
import uuid
from functools import partial
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from agent.alerts.alertmanager import map_alertmanager_payload
from agent.alerts.arize import BreachMappingError, map_arize_payload
from agent.alerts.arize_auth import AuthRefused, Verified, authenticate, needs_body
from agent.alerts.arize_events import event_of, kind_of, map_prompt_event
from agent.alerts.events import UnstorableEvent, accept_event
from agent.alerts.intake import NotStored, Received, Unstorable
from agent.alerts.models import WEBHOOK_EVENT_LENGTH, WEBHOOK_ID_LENGTH, AlertRead
from agent.alerts.service import DeliveryMeta, Receipt, get_alert
from agent.api.bodies import BodyError, decode_json
from agent.api.deps import AppState, SessionDep, WebhookAuth, check_webhook_token, read_bounded
from agent.api.problems import ERRORS, Problem
from agent.incidents.models import Incident
from agent.store.values import text_problem
from agent.telemetry import metrics
from audit.chain import canonical_json
from runbooks.catalog import Catalog
from runbooks.loader import ConfigError

log = structlog.get_logger(__name__)

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


class EventAccepted(BaseModel):
    """The answer to an Arize delivery that is not a monitor alert."""

    delivery_id: uuid.UUID
    status: str
    """`accepted`, or `duplicate` for a retry of a delivery already stored."""
    event: str | None
    recorded_as: str
    """`change` (a prompt version event, recorded as changes) or `audited` (only audited)."""
    change_ids: list[uuid.UUID] = []
    services: list[str] = []


@router.post(
    "/webhooks/arize",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted | EventAccepted,
    responses={
        200: {"model": Accepted | EventAccepted, "description": "The same delivery again"},
        **ERRORS,
    },
    openapi_extra=JSON_OBJECT_BODY,
)
async def receive_arize_alert(request: Request) -> JSONResponse:
    """Accept an Arize delivery: 202 once it is stored, 200 for a re-delivery.

    Authenticated as REMEDIATOR_ARIZE_AUTH says (bearer, hmac or header). A monitor alert
    becomes a breach; a prompt version event is recorded as a change; any other event is
    audited. `X-Arize-Webhook-Id` makes a retry a duplicate, whatever its body.
    """
    metrics.count_received(request.scope["path"])  # before the check: refusals count too
    app_state: AppState = request.app.state.app_state
    settings = app_state.settings
    if needs_body(settings):
        body = await _read_bounded(request, settings.max_body_bytes)
        verified = _authenticate(request, app_state, body)
        _require_json(request)
    else:
        verified = _authenticate(request, app_state, b"")
        _require_json(request)
        body = await _read_bounded(request, settings.max_body_bytes)
    webhook_id = _delivery_header(request, "X-Arize-Webhook-Id", WEBHOOK_ID_LENGTH)
    event_header = _delivery_header(request, "X-Arize-Webhook-Event", WEBHOOK_EVENT_LENGTH)
    payload = _parse_object(request, body, settings.max_json_depth)
    event = event_of(event_header, payload)
    meta = DeliveryMeta(webhook_id, event, verified.mode, verified.key_form)
    if verified.mode == "hmac":
        # Arize cannot send a test delivery to an HMAC webhook: say how the first ones passed.
        log.info(
            "arize.delivery", auth_mode="hmac", key_form=verified.key_form, webhook_event=event
        )
    digest = hashlib.sha256(body).hexdigest()
    kind = kind_of(event, settings.arize_alert_events)
    if kind != "alert":
        return await _accept_event(
            request, app_state, kind, meta, (digest, verified.signed_sha256), payload
        )
    try:
        breach = map_arize_payload(payload, app_state.field_paths)
    except BreachMappingError as exc:
        return _unmapped(request, exc)
    try:
        [receipt] = await app_state.intake.submit([(breach, payload, digest, meta)])
    except NotStored as exc:
        return _not_stored(request, exc)
    metrics.count_stored("arize", [_status(receipt)])
    return JSONResponse(
        status_code=status.HTTP_202_ACCEPTED if receipt.created else status.HTTP_200_OK,
        content=_answer(receipt),
    )


def _authenticate(request: Request, app_state: AppState, body: bytes) -> Verified:
    """Return how the delivery authenticated, or answer 401 saying why it did not."""
    settings = app_state.settings
    try:
        return authenticate(settings, request.headers, body, app_state.audit.now().timestamp())
    except AuthRefused as exc:
        mode = settings.arize_auth
        _refused(request, "bad_signature" if mode == "hmac" else "bad_token")
        log.info("arize.delivery_refused", auth_mode=mode, reason=str(exc))
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            str(exc),
            headers={"WWW-Authenticate": "Bearer"} if mode == "bearer" else None,
        ) from None


def _delivery_header(request: Request, name: str, limit: int) -> str | None:
    """Return a delivery header's value, or answer 400 when it cannot be stored."""
    value = request.headers.get(name)
    if value is None or not value.strip():
        return None
    value = value.strip()
    problem = text_problem(value)
    if problem is None and len(value) > limit:
        problem = f"is {len(value)} characters long; at most {limit} are stored"
    if problem is not None:
        _refused(request, "bad_header")
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{name} {problem}")
    return value


async def _accept_event(
    request: Request,
    app_state: AppState,
    kind: str,
    meta: DeliveryMeta,
    digests: tuple[str, str | None],
    payload: dict[str, Any],
) -> JSONResponse:
    """Record a prompt version event as changes, or audit another event; never a breach."""
    prompt = None
    if kind == "prompt":
        assert meta.event is not None
        try:
            prompt = map_prompt_event(meta.event, payload)
        except BreachMappingError as exc:
            return _unmapped(request, exc)
    try:
        receipt = await run_in_threadpool(
            partial(
                accept_event,
                app_state.engine,
                app_state.audit,
                source="arize",
                meta=meta,
                body_sha256=digests[0],
                payload=payload,
                prompt=prompt,
                catalog=_catalog(app_state),
                signed_sha256=digests[1],
            )
        )
    except (UnstorableEvent, ValidationError) as exc:
        _refused(request, "unstorable")
        detail = str(exc) if isinstance(exc, UnstorableEvent) else _invalid(exc)
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail}
        )
    except SQLAlchemyError as exc:
        log.warning("arize.event_not_stored", error=type(exc).__name__)
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": "the delivery could not be stored; nothing was accepted, retry"},
            headers={"Retry-After": "1"},
        )
    if not receipt.created:
        _refused(request, "duplicate")
    return JSONResponse(
        status_code=status.HTTP_202_ACCEPTED if receipt.created else status.HTTP_200_OK,
        content={
            "delivery_id": str(receipt.delivery_id),
            "status": "accepted" if receipt.created else "duplicate",
            "event": meta.event,
            "recorded_as": receipt.outcome,
            "change_ids": [str(i) for i in receipt.change_ids],
            "services": receipt.services,
        },
    )


def _catalog(app_state: AppState) -> Catalog | None:
    try:
        return app_state.catalog
    except ConfigError:
        log.warning("arize.catalog_unreadable")  # prompts then map to services by name
        return None


def _invalid(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()
    )


def _unmapped(request: Request, exc: BreachMappingError) -> JSONResponse:
    _refused(request, "unmapped")
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": str(exc), "missing": exc.missing or None},
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
        return _unmapped(request, exc)
    items: list[Received] = [
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
