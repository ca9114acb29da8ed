"""PagerDuty REST API v2 emulator: create, list and read incidents, add notes.

Contract (CONTRACTS.md): every call needs `Authorization: Token token=<key>` (else 401, code 2006)
and `Accept: application/vnd.pagerduty+json;version=2`; writes need `From: <user email>` (else 400,
code 2016). POST /incidents takes {"incident": {type, title, service{id, type}, urgency,
incident_key, body{type, details}, escalation_policy}} and answers 201 with the incident; an
incident_key equal to an open incident's on the same service is refused with 400. POST
/incidents/{id}/notes takes {"note": {"content"}} and answers 201; an unknown incident is 404.
GET /incidents filters on `incident_key` and `statuses[]` (triggered|acknowledged|resolved), pages
with `limit` (default 25, at most 100) and `offset`, and answers {"incidents", "limit", "offset",
"more", "total"} (total only when asked with total=true); other filters (since, until, date_range,
…) are accepted and ignored, so no incident falls outside PagerDuty's default 30-day window.
Errors are {"error": {"message", "code", "errors"?}}. Mounted on the Events app by
`create_pagerduty_app`, so one HTTPS emulator serves both APIs and shares the fault queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

if TYPE_CHECKING:
    from sandbox.pagerduty import PagerDutyState

ACCEPT = "application/vnd.pagerduty+json;version=2"
URGENCIES = ("high", "low")
STATUSES = ("triggered", "acknowledged", "resolved")
PAGE_SIZE = 25
PAGE_LIMIT = 100
INCIDENT_KEY_LIMIT = 255
NOTE_LIMIT = 25_000
INCIDENT_FIELDS = frozenset(
    {
        "type",
        "title",
        "service",
        "urgency",
        "incident_key",
        "body",
        "escalation_policy",
        "priority",
        "assignments",
        "conference_bridge",
        "incident_type",
    }
)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
TOKEN = re.compile(r"Token token=(\S+)")
FAULT_ERRORS = {429: (2020, "Rate Limit Exceeded")}
INVALID_INPUT = (2001, "Invalid Input Provided")
NOT_FOUND = (2100, "Not Found")
NO_FROM = (
    2016,
    'You must specify a user\'s email address in the "From" header to perform this action',
)
ID_ALPHABET = string.ascii_uppercase + string.digits


def validate_incident(body: Any, service_ids: set[str] | None) -> list[str]:
    """Return the contract violations of a create-incident body (empty when valid)."""
    if not isinstance(body, dict) or not isinstance(body.get("incident"), dict):
        return ["'incident' is required and must be an object"]
    incident = body["incident"]
    errors = [
        f"'{k}' is not a known incident field" for k in sorted(set(incident) - INCIDENT_FIELDS)
    ]
    if incident.get("type") != "incident":
        errors.append("'type' must be incident")
    title = incident.get("title")
    if not isinstance(title, str) or not title.strip():
        errors.append("Title cannot be empty.")
    service = incident.get("service")
    if not _is_reference(service, "service_reference"):
        errors.append("'service' must be {id, type: service_reference}")
    elif service_ids is not None and service["id"] not in service_ids:
        errors.append(f"Service {service['id']} not found")
    if "urgency" in incident and incident["urgency"] not in URGENCIES:
        errors.append(f"'urgency' must be one of {', '.join(URGENCIES)}")
    key = incident.get("incident_key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= INCIDENT_KEY_LIMIT):
        errors.append(f"'incident_key' must be a string of 1 to {INCIDENT_KEY_LIMIT} characters")
    details = incident.get("body")
    if details is not None and (
        not isinstance(details, dict)
        or details.get("type") != "incident_body"
        or not isinstance(details.get("details"), str)
    ):
        errors.append("'body' must be {type: incident_body, details: <string>}")
    policy = incident.get("escalation_policy")
    if policy is not None and not _is_reference(policy, "escalation_policy_reference"):
        errors.append("'escalation_policy' must be {id, type: escalation_policy_reference}")
    return errors


def validate_note(body: Any) -> list[str]:
    """Return the contract violations of a create-note body (empty when valid)."""
    if not isinstance(body, dict) or not isinstance(body.get("note"), dict):
        return ["'note' is required and must be an object"]
    content = body["note"].get("content")
    if not isinstance(content, str) or not content.strip():
        return ["Content cannot be empty."]
    if len(content) > NOTE_LIMIT:
        return [f"Content must be at most {NOTE_LIMIT} characters"]
    return []


def add_rest_routes(app: FastAPI, state: PagerDutyState) -> None:
    """Mount the REST API's incidents, notes and abilities endpoints on the emulator's app."""

    @app.post("/incidents")
    async def create_incident(request: Request) -> Response:
        refusal = await _admit(request, state, write=True)
        if refusal is not None:
            return refusal
        body = await _json(request)
        errors = validate_incident(body, state.service_ids)
        incident = None
        with state.lock:
            # The duplicate check and the insert share one critical section.
            errors = errors or _duplicate_key(state, body["incident"])
            if not errors:
                incident = _new_incident(state, body["incident"], str(request.base_url))
                state.incidents.append(incident)
        if incident is None:
            return _refuse(state, request, 400, INVALID_INPUT, errors)
        return JSONResponse({"incident": incident}, status_code=201)

    @app.get("/incidents")
    async def list_incidents(request: Request) -> Response:
        refusal = await _admit(request, state, write=False)
        if refusal is not None:
            return refusal
        query = request.query_params
        paging, errors = _paging(query.get("limit"), query.get("offset"))
        statuses = query.getlist("statuses[]")
        if set(statuses) - set(STATUSES):
            errors.append(f"'statuses[]' must be one of {', '.join(STATUSES)}")
        if errors:
            return _refuse(state, request, 400, INVALID_INPUT, errors)
        key = query.get("incident_key")
        with state.lock:
            state.queries.append({name: query.getlist(name) for name in query})
            matched = [
                dict(i)
                for i in state.incidents
                if (key is None or i["incident_key"] == key)
                and (not statuses or i["status"] in statuses)
            ]
        limit, offset = paging
        return JSONResponse(
            {
                "incidents": matched[offset : offset + limit],
                "limit": limit,
                "offset": offset,
                "more": offset + limit < len(matched),
                "total": len(matched) if query.get("total") == "true" else None,
            }
        )

    @app.get("/incidents/{incident_id}")
    async def get_incident(incident_id: str, request: Request) -> Response:
        refusal = await _admit(request, state, write=False)
        if refusal is not None:
            return refusal
        with state.lock:
            incident = _find(state, incident_id)
            found = dict(incident) if incident is not None else None
        if found is None:
            return _refuse(state, request, 404, NOT_FOUND, None)
        return JSONResponse({"incident": found})

    @app.post("/incidents/{incident_id}/notes")
    async def create_note(incident_id: str, request: Request) -> Response:
        refusal = await _admit(request, state, write=True)
        if refusal is not None:
            return refusal
        body = await _json(request)
        errors = validate_note(body)
        note = None
        with state.lock:
            found = _find(state, incident_id) is not None
            if found and not errors:
                note = _new_note(body["note"]["content"], request.headers["from"])
                state.notes.append({**note, "incident_id": incident_id})
        if not found:
            return _refuse(state, request, 404, NOT_FOUND, None)
        if note is None:
            return _refuse(state, request, 400, INVALID_INPUT, errors)
        return JSONResponse({"note": note}, status_code=201)

    @app.get("/abilities")
    async def abilities(request: Request) -> Response:
        refusal = await _admit(request, state, write=False)
        if refusal is not None:
            return refusal
        return JSONResponse({"abilities": ["teams", "urgencies"]})


async def _admit(request: Request, state: PagerDutyState, *, write: bool) -> Response | None:
    """Apply latency and faults, then check the headers every REST call needs."""
    if state.delay_seconds > 0:
        await asyncio.sleep(state.delay_seconds)
    with state.lock:
        fault = state.take_fault()
    if fault is not None:
        code, message = FAULT_ERRORS.get(fault.status, (2000, "Internal Error"))
        return fault.response(_error_body((code, message), None))
    match = TOKEN.fullmatch(request.headers.get("authorization", "").strip())
    if match is None or (state.rest_api_keys is not None and match[1] not in state.rest_api_keys):
        return _refuse(state, request, 401, (2006, "Authentication failed"), None)
    if request.headers.get("accept", "").replace(" ", "").lower() != ACCEPT:
        return _refuse(state, request, 400, INVALID_INPUT, [f"'Accept' must be {ACCEPT}"])
    if write:
        sender = request.headers.get("from", "").strip()
        if not sender:
            return _refuse(state, request, 400, NO_FROM, None)
        if not EMAIL.fullmatch(sender):
            return _refuse(state, request, 400, (1028, 'Malformed "From" header'), None)
    return None


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _error_body(error: tuple[int, str], errors: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": error[1], "code": error[0]}
    if errors is not None:
        body["errors"] = errors
    return {"error": body}


def _refuse(
    state: PagerDutyState,
    request: Request,
    status: int,
    error: tuple[int, str],
    errors: list[str] | None,
) -> JSONResponse:
    record = {
        "method": request.method,
        "path": request.url.path,
        "status": status,
        "errors": [error[1], *(errors or [])],
    }
    with state.lock:
        state.rest_rejected.append(record)
    return JSONResponse(_error_body(error, errors), status_code=status)


def incident_for_alert(
    state: PagerDutyState, routing_key: str, dedup_key: str, summary: str, base_url: str
) -> dict[str, Any]:
    """Return the incident a new Events v2 alert belongs to, opening one if needed (lock held)."""
    service_id = state.routing_services.get(routing_key)
    if service_id is None:
        service_id = state.routing_services[routing_key] = _new_id("P", 6)
    incident = state.open_incident(service_id, dedup_key)
    if incident is None:
        wanted = {
            "title": summary,
            "service": {"id": service_id, "type": "service_reference"},
            "incident_key": dedup_key,
        }
        incident = _new_incident(state, wanted, base_url)
        state.incidents.append(incident)
    return incident


def follow_alert(state: PagerDutyState, alert: dict[str, Any]) -> None:
    """Carry an alert's acknowledge or resolve over to its incident (lock held).

    As in PagerDuty, the incident resolves once all of its alerts are resolved.
    """
    incident = _find(state, alert.get("incident_id", ""))
    if incident is None or incident["status"] == "resolved":
        return
    if alert["status"] == "acknowledged":
        status = "acknowledged"
    elif any(
        a.get("incident_id") == incident["id"] and a["status"] != "resolved" for a in state.alerts
    ):
        return
    else:
        status = "resolved"
    incident["status"] = status
    incident["last_status_change_at"] = _now()


def _paging(limit: str | None, offset: str | None) -> tuple[tuple[int, int], list[str]]:
    """Return (limit, offset) of a list call and what is wrong with them."""
    errors = []
    size, start = PAGE_SIZE, 0
    if limit is not None:
        if limit.isdigit() and int(limit) > 0:
            # PagerDuty caps the page size rather than refusing a larger one.
            size = min(int(limit), PAGE_LIMIT)
        else:
            errors.append("'limit' must be a positive integer")
    if offset is not None:
        if offset.isdigit():
            start = int(offset)
        else:
            errors.append("'offset' must be a non-negative integer")
    return (size, start), errors


def _is_reference(value: Any, kind: str) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), str)
        and bool(value["id"])
        and value.get("type") == kind
    )


def _duplicate_key(state: PagerDutyState, wanted: dict[str, Any]) -> list[str]:
    key = wanted.get("incident_key")
    if key and state.open_incident(wanted["service"]["id"], key) is not None:
        return [f"Open incident with key '{key}' already exists on this service"]
    return []


def _find(state: PagerDutyState, incident_id: str) -> dict[str, Any] | None:
    return next((i for i in state.incidents if i["id"] == incident_id), None)


def _new_id(prefix: str, length: int = 13) -> str:
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_incident(state: PagerDutyState, wanted: dict[str, Any], base_url: str) -> dict[str, Any]:
    number = len(state.incidents) + 1
    incident_id = _new_id("Q")
    now = _now()
    return {
        "id": incident_id,
        "type": "incident",
        "summary": f"[#{number}] {wanted['title']}",
        "self": f"{base_url.rstrip('/')}/incidents/{incident_id}",
        "html_url": f"https://sandbox.pagerduty.invalid/incidents/{incident_id}",
        "incident_number": number,
        "title": wanted["title"],
        "status": "triggered",
        "incident_key": wanted.get("incident_key") or uuid.uuid4().hex,
        "urgency": wanted.get("urgency", "high"),
        "created_at": now,
        "last_status_change_at": now,
        "service": {"id": wanted["service"]["id"], "type": "service_reference"},
        "escalation_policy": wanted.get("escalation_policy")
        or {"id": "PSANDBOX", "type": "escalation_policy_reference"},
        "body": wanted.get("body"),
        "assignments": [],
    }


def _new_note(content: str, sender: str) -> dict[str, Any]:
    user_id = "P" + hashlib.sha256(sender.lower().encode()).hexdigest()[:6].upper()
    return {
        "id": _new_id("Q"),
        "user": {"id": user_id, "type": "user_reference", "summary": sender},
        "channel": {"summary": "The PagerDuty REST API"},
        "content": content,
        "created_at": _now(),
    }
