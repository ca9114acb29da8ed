"""PagerDuty emulator: Events API v2 here, REST API v2 incidents and notes in pagerduty_rest.

Contract (CONTRACTS.md): POST /v2/enqueue, JSON, routing_key of 32 characters, event_action
trigger|acknowledge|resolve, dedup_key ≤ 255 (required to acknowledge/resolve), trigger payload with
summary ≤ 1024, source and severity critical|error|warning|info; 202 with the dedup_key; 400 with
`errors` for an invalid event; 512 KB per event. Serve it over HTTPS: the SDK refuses http://.
As in PagerDuty, a trigger that opens an alert opens an incident on the routing key's service with
incident_key = dedup_key (or joins that service's open incident with that key); acknowledging or
resolving the alert acknowledges or resolves the incident.

Knobs for tests, on PagerDutyState: `fail_next` and `answer_malformed_next` (faults instead of
processing), `delay_seconds` (latency on every event), `hold_next` (a crash window: hold one event
before it takes effect, or hold its answer after it did).
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sandbox.pagerduty_rest import add_rest_routes, follow_alert, incident_for_alert

MAX_EVENT_BYTES = 512 * 1024
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
PAYLOAD_FIELDS = {
    "summary",
    "source",
    "severity",
    "timestamp",
    "component",
    "group",
    "class",
    "custom_details",
}
EVENT_FIELDS = {
    "routing_key",
    "event_action",
    "dedup_key",
    "payload",
    "links",
    "images",
    "client",
    "client_url",
}


@dataclass
class Fault:
    """A response the emulator gives instead of processing the next request.

    With `body` set, that raw text is the answer: a malformed reply from a sick server.
    """

    status: int
    retry_after: int | None = None
    body: str | None = None

    def response(self, error_body: dict[str, Any]) -> Response:
        """Answer with the API's own error body, or with this fault's malformed one."""
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        if self.body is not None:
            return Response(self.body, self.status, headers, media_type="application/json")
        return JSONResponse(error_body, status_code=self.status, headers=headers)


HoldPoint = Literal["before", "after"]


@dataclass
class Hold:
    """A pause of one event, before or after it is processed (PagerDutyState.hold_next)."""

    seconds: float
    when: HoldPoint


@dataclass
class PagerDutyState:
    """What the emulator received, the alerts and incidents it holds, and the faults queued.

    `routing_keys` / `rest_api_keys` / `service_ids` set to None accept any well-formed value.
    `routing_services` maps an integration (routing) key to the id of its service; a key not in
    it gets a generated service id on its first trigger. `queries` holds the query parameters of
    each GET /incidents.
    """

    routing_keys: set[str] | None = None
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rest_api_keys: set[str] | None = None
    service_ids: set[str] | None = None
    incidents: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    rest_rejected: list[dict[str, Any]] = field(default_factory=list)
    routing_services: dict[str, str] = field(default_factory=dict)
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    delay_seconds: float = 0.0
    holds: deque[Hold] = field(default_factory=deque)
    held: int = 0
    """Events held at this moment (see hold_next)."""

    def hold_next(self, seconds: float, *, when: HoldPoint, times: int = 1) -> None:
        """Hold each of the next `times` events for `seconds`: a window for a crash test.

        `before`: the event waits unprocessed; if its sender disconnects meanwhile (killed),
        it is dropped unrecorded, as a server does with a request whose client went away.
        `after`: the event is processed and recorded, then its answer waits: a sender killed
        in that window has had its effect without learning it.
        """
        with self.lock:
            self.holds.extend(Hold(seconds, when) for _ in range(times))

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` requests with this HTTP status instead of processing them."""
        with self.lock:
            self.faults.extend(Fault(status, retry_after) for _ in range(times))

    def answer_malformed_next(
        self, status: int, times: int = 1, body: str = '{"incident": {"id": '
    ) -> None:
        """Answer the next `times` requests with this status and a body that cannot be read."""
        with self.lock:
            self.faults.extend(Fault(status, body=body) for _ in range(times))

    def take_fault(self) -> Fault | None:
        """Return the next queued fault, if any (call with the lock held)."""
        return self.faults.popleft() if self.faults else None

    def open_incident(self, service_id: str, incident_key: str) -> dict[str, Any] | None:
        """Return the unresolved incident of this service with this incident_key, if any."""
        for incident in self.incidents:
            if (
                incident["service"]["id"] == service_id
                and incident["incident_key"] == incident_key
                and incident["status"] != "resolved"
            ):
                return incident
        return None

    def resolve_incident(self, incident_id: str) -> None:
        """Resolve an incident and its alerts, as a responder would in PagerDuty's web app."""
        with self.lock:
            for incident in self.incidents:
                if incident["id"] == incident_id:
                    incident["status"] = "resolved"
            for alert in self.alerts:
                if alert.get("incident_id") == incident_id:
                    alert["status"] = "resolved"

    def open_alert(self, routing_key: str, dedup_key: str) -> dict[str, Any] | None:
        """Return the unresolved alert with this key, if any."""
        for alert in reversed(self.alerts):
            if alert["routing_key"] == routing_key and alert["dedup_key"] == dedup_key:
                return alert if alert["status"] != "resolved" else None
        return None

    def triggers(self) -> list[dict[str, Any]]:
        """Return the accepted trigger events."""
        return [e for e in self.accepted if e.get("event_action") == "trigger"]

    def snapshot(self) -> dict[str, Any]:
        """Return everything received, for tests and the demo."""
        with self.lock:
            return {
                "accepted": list(self.accepted),
                "rejected": list(self.rejected),
                "alerts": [dict(a) for a in self.alerts],
                "incidents": [dict(i) for i in self.incidents],
                "notes": [dict(n) for n in self.notes],
                "rest_rejected": list(self.rest_rejected),
                "routing_services": dict(self.routing_services),
                "queries": list(self.queries),
            }


def validate_event(event: Any, routing_keys: set[str] | None) -> list[str]:
    """Return the contract violations of one event (empty when valid)."""
    if not isinstance(event, dict):
        return ["Event must be a JSON object"]
    errors = [f"'{name}' is not a known event field" for name in sorted(set(event) - EVENT_FIELDS)]
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("'routing_key' must be a string of 32 characters")
    elif routing_keys is not None and key not in routing_keys:
        errors.append("'routing_key' is not an integration key of this account")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append(f"'event_action' must be one of {', '.join(ACTIONS)}")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or not 0 < len(dedup_key) <= 255):
        errors.append("'dedup_key' must be a string of 1 to 255 characters")
    if action in ("acknowledge", "resolve") and dedup_key is None:
        errors.append(f"'dedup_key' is required to {action}")
    if action == "trigger":
        errors.extend(_validate_payload(event.get("payload")))
    errors.extend(_validate_links(event.get("links"), event.get("images")))
    return errors


def _validate_payload(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is required to trigger and must be an object"]
    errors = [f"'payload.{k}' is not a known field" for k in sorted(set(payload) - PAYLOAD_FIELDS)]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is required")
    elif len(summary) > 1024:
        errors.append("'payload.summary' must be at most 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"].strip():
        errors.append("'payload.source' is required")
    if payload.get("severity") not in SEVERITIES:
        errors.append(f"'payload.severity' must be one of {', '.join(SEVERITIES)}")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict | str):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _validate_links(links: Any, images: Any) -> list[str]:
    errors = []
    for link in links or []:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            errors.append("each of 'links' needs an 'href'")
    for image in images or []:
        if not isinstance(image, dict) or not str(image.get("src", "")).startswith("https://"):
            errors.append("each of 'images' needs an https 'src'")
    return errors


def create_pagerduty_app(state: PagerDutyState) -> FastAPI:
    """Build the emulator's ASGI app around its state: Events API v2 and the REST API."""
    app = FastAPI(title="PagerDuty emulator", openapi_url=None)

    @app.post("/v2/enqueue")
    async def enqueue(request: Request) -> Response:
        body = await request.body()
        if state.delay_seconds > 0:
            await asyncio.sleep(state.delay_seconds)
        with state.lock:
            fault = state.take_fault()
            hold = state.holds.popleft() if state.holds else None
        if fault is not None:
            return fault.response({"status": "error", "message": "injected fault"})
        if hold is not None and hold.when == "before" and await _held(state, hold, request):
            return Response(status_code=499)  # nobody is listening any more
        if len(body) > MAX_EVENT_BYTES:
            return _invalid(state, None, ["Event is larger than 512 KB"])
        try:
            event = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _invalid(state, None, ["Event body is not valid JSON"])
        errors = validate_event(event, state.routing_keys)
        if errors:
            return _invalid(state, event, errors)
        answer = _process(state, event, str(request.base_url))
        if hold is not None and hold.when == "after":
            await _held(state, hold, request)
        return answer

    @app.get("/_sandbox/events")
    def received() -> dict[str, Any]:
        return state.snapshot()

    add_rest_routes(app, state)
    return app


async def _held(state: PagerDutyState, hold: Hold, request: Request) -> bool:
    """Wait out a hold; return True as soon as the sender has disconnected."""
    with state.lock:
        state.held += 1
    try:
        deadline = asyncio.get_running_loop().time() + hold.seconds
        while asyncio.get_running_loop().time() < deadline:
            if await request.is_disconnected():
                return True
            await asyncio.sleep(0.05)
        return False
    finally:
        with state.lock:
            state.held -= 1


def _invalid(state: PagerDutyState, event: Any, errors: list[str]) -> JSONResponse:
    with state.lock:
        state.rejected.append({"event": event, "errors": errors})
    return JSONResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status_code=400,
    )


def _process(state: PagerDutyState, event: dict[str, Any], base_url: str) -> JSONResponse:
    with state.lock:
        action = event["event_action"]
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        stored = dict(event, dedup_key=dedup_key)
        state.accepted.append(stored)
        alert = state.open_alert(event["routing_key"], dedup_key)
        if action == "trigger":
            if alert is None:
                summary = event["payload"]["summary"]
                incident = incident_for_alert(
                    state, event["routing_key"], dedup_key, summary, base_url
                )
                state.alerts.append(
                    {
                        "routing_key": event["routing_key"],
                        "dedup_key": dedup_key,
                        "status": "triggered",
                        "summary": summary,
                        "severity": event["payload"]["severity"],
                        "events": 1,
                        "incident_id": incident["id"],
                    }
                )
            else:
                alert["events"] += 1
        elif alert is not None:
            alert["status"] = "acknowledged" if action == "acknowledge" else "resolved"
            alert["events"] += 1
            follow_alert(state, alert)
    return JSONResponse(
        {"status": "success", "message": "Event processed", "dedup_key": dedup_key},
        status_code=202,
    )
