"""Emulator of a LiteLLM-style gateway's admin API for routes: the failover backend's other end.

Contract (the one tools/failover/gateway.py speaks; errors in LiteLLM's shape
{"error": {"message", "type", "param", "code"}}):
- every /routes call needs `Authorization: Bearer <admin token>`: 401 without it or with another;
- GET /routes, GET /routes/{service}, GET /routes/{service}/history; an unknown service is 404;
- PUT /routes/{service} needs an `Idempotency-Key` header of 1 to 255 characters (400 without) and a
  JSON route body: 400 when the body is not JSON, 422 when it is not a route (`provider` and `model`
  non-empty strings, `region` a string or null, `extra` an object, no other fields);
- a key seen before with the same service and body gets the first answer again, with
  `Idempotent-Replayed: true`, and changes nothing; with another service or body it is a 422
  (as in the IETF Idempotency-Key draft); refusals are not remembered under their key.
Faults for tests and the demo: `fail_next` (status, Retry-After; the request is not processed),
`delay_next` (the request waits, then is processed), `malform_next` (the request is processed, the
answer's body is cut in half).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

ROUTE_FIELDS = frozenset({"provider", "model", "region", "extra"})
MAX_KEY_CHARS = 255
FIELD_LIMITS = {"provider": 100, "model": 200, "region": 64}


@dataclass
class Fault:
    """What the emulator does to the next request instead of (or besides) answering it."""

    status: int | None = None
    retry_after: int | None = None
    delay_seconds: float = 0.0
    malformed: bool = False
    hold_seconds: float = 0.0
    """Process the request, then hold the answer this long (a caller may die meanwhile)."""
    methods: frozenset[str] | None = None
    """Only requests of these HTTP methods take the fault (None: every request)."""


@dataclass
class GatewayState:
    """The gateway's routing table, its change history, the keys it has seen, and queued faults."""

    admin_token: str
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, tuple[tuple[str, dict[str, Any]], dict[str, Any]]] = field(
        default_factory=dict
    )
    received: list[dict[str, Any]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    failing_regions: dict[str, int] = field(default_factory=dict)
    """Region → HTTP status the data plane answers for routes in that region."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.routes = _checked(self.routes)
        for service in self.routes:
            self.versions.setdefault(service, 1)

    def reset(self, routes: dict[str, dict[str, Any]]) -> None:
        """Forget every change, key, request and fault; start again from these routes."""
        checked = _checked(routes)
        with self.lock:
            self.routes = checked
            self.versions = dict.fromkeys(checked, 1)
            self.history.clear()
            self.answers.clear()
            self.received.clear()
            self.faults.clear()
            self.failing_regions.clear()

    def fail_next(
        self,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        methods: set[str] | None = None,
    ) -> None:
        """Answer the next `times` requests (of `methods`) with this status, unprocessed."""
        only = frozenset(methods) if methods else None
        with self.lock:
            self.faults.extend(
                Fault(status=status, retry_after=retry_after, methods=only) for _ in range(times)
            )

    def delay_next(self, seconds: float, times: int = 1, methods: set[str] | None = None) -> None:
        """Hold the next `times` requests (of `methods`) for `seconds` before processing them."""
        only = frozenset(methods) if methods else None
        with self.lock:
            self.faults.extend(Fault(delay_seconds=seconds, methods=only) for _ in range(times))

    def take_fault(self, method: str) -> Fault | None:
        """Remove and return the first queued fault this request takes (call with the lock)."""
        for fault in self.faults:
            if fault.methods is None or method in fault.methods:
                self.faults.remove(fault)
                return fault
        return None

    def hold_next(self, seconds: float, times: int = 1) -> None:
        """Carry out the next `times` requests, then hold each answer for `seconds`."""
        with self.lock:
            self.faults.extend(Fault(hold_seconds=seconds) for _ in range(times))

    def malform_next(self, times: int = 1) -> None:
        """Process the next `times` requests but cut their answers' bodies in half."""
        with self.lock:
            self.faults.extend(Fault(malformed=True) for _ in range(times))

    def changes(self, service: str | None = None) -> list[dict[str, Any]]:
        """Return the route changes made, oldest first (all services, or one)."""
        with self.lock:
            return [dict(c) for c in self.history if service in (None, c["service"])]

    def snapshot(self) -> dict[str, Any]:
        """Return the routing table, history and requests received, for tests and the demo."""
        with self.lock:
            return {
                "routes": {s: dict(r) for s, r in self.routes.items()},
                "versions": dict(self.versions),
                "history": [dict(c) for c in self.history],
                "received": list(self.received),
            }


def validate_route(body: Any) -> list[str]:
    """Return why a request body is not a route (empty when it is one)."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object (a route)"]
    errors = [f"'{name}' is not a route field" for name in sorted(set(body) - ROUTE_FIELDS)]
    for name in ("provider", "model"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append(f"'{name}' is required and must be a non-empty string")
        elif len(value) > FIELD_LIMITS[name]:
            errors.append(f"'{name}' must be at most {FIELD_LIMITS[name]} characters")
    region = body.get("region")
    if region is not None and (
        not isinstance(region, str) or not region.strip() or len(region) > FIELD_LIMITS["region"]
    ):
        errors.append(f"'region' must be null or a string of 1 to {FIELD_LIMITS['region']} chars")
    if body.get("extra") is not None and not isinstance(body["extra"], dict):
        errors.append("'extra' must be an object")
    return errors


def _checked(routes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the routes normalised; raise ValueError naming the first invalid one."""
    for service, route in routes.items():
        errors = validate_route(route)
        if errors:
            raise ValueError(f"route of {service}: {'; '.join(errors)}")
    return {service: normalise(route) for service, route in routes.items()}


def normalise(route: dict[str, Any]) -> dict[str, Any]:
    """Return a valid route with every field present."""
    return {
        "provider": route["provider"],
        "model": route["model"],
        "region": route.get("region"),
        "extra": dict(route.get("extra") or {}),
    }


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": str(status)}},
        status_code=status,
    )


def _refusal(state: GatewayState, request: Request, service: str | None) -> JSONResponse | None:
    """Return the 401/404 answer this request gets, if any."""
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer ") or not header.removeprefix("Bearer ").strip():
        return _error(401, "auth_error", "Authentication Error, no admin key passed in")
    token = header.removeprefix("Bearer ").strip()
    if not secrets.compare_digest(token.encode(), state.admin_token.encode()):
        return _error(401, "auth_error", "Authentication Error, invalid admin key")
    if service is not None and service not in state.routes:
        return _error(404, "not_found_error", f"no route for service '{service}'")
    return None


def create_gateway_app(state: GatewayState) -> FastAPI:
    """Build the emulator's ASGI app around its state."""
    app = FastAPI(title="LLM gateway admin API emulator", openapi_url=None)

    @app.middleware("http")
    async def faults(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        with state.lock:
            state.received.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "idempotency_key": request.headers.get("idempotency-key"),
                }
            )
            fault = state.take_fault(request.method)
        if fault is not None and fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if fault is not None and fault.status is not None:
            answer = _error(fault.status, "injected_fault", "injected fault")
            if fault.retry_after is not None:
                answer.headers["Retry-After"] = str(fault.retry_after)
            return answer
        response = await call_next(request)
        if fault is not None and fault.hold_seconds:
            await asyncio.sleep(fault.hold_seconds)
        if fault is None or not fault.malformed:
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return Response(body[: len(body) // 2], status_code=response.status_code, headers=headers)

    @app.get("/routes")
    def list_routes(request: Request) -> JSONResponse:
        with state.lock:
            refusal = _refusal(state, request, None)
            return refusal or JSONResponse({"routes": {s: r for s, r in state.routes.items()}})

    @app.get("/routes/{service}")
    def get_route(service: str, request: Request) -> JSONResponse:
        with state.lock:
            refusal = _refusal(state, request, service)
            if refusal is not None:
                return refusal
            return JSONResponse(
                {
                    "service": service,
                    "route": state.routes[service],
                    "version": state.versions[service],
                }
            )

    @app.get("/routes/{service}/history")
    def get_history(service: str, request: Request) -> JSONResponse:
        with state.lock:
            refusal = _refusal(state, request, service)
            if refusal is not None:
                return refusal
            return JSONResponse(
                {
                    "service": service,
                    "route": state.routes[service],
                    "version": state.versions[service],
                    "changes": [c for c in state.history if c["service"] == service],
                }
            )

    @app.put("/routes/{service}")
    async def put_route(service: str, request: Request) -> JSONResponse:
        raw = await request.body()
        with state.lock:
            refusal = _refusal(state, request, service)
            if refusal is not None:
                return refusal
            key = request.headers.get("idempotency-key", "")
            if not key.strip() or len(key) > MAX_KEY_CHARS:
                return _error(
                    400,
                    "invalid_request_error",
                    f"an Idempotency-Key header of 1 to {MAX_KEY_CHARS} characters is required",
                )
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _error(400, "invalid_request_error", "the body is not valid JSON")
            errors = validate_route(body)
            if errors:
                return _error(422, "invalid_request_error", "; ".join(errors))
            return _apply(state, service, key, normalise(body))

    @app.get("/_sandbox/state")
    def sandbox_state() -> dict[str, Any]:
        return state.snapshot()

    return app


def _apply(state: GatewayState, service: str, key: str, route: dict[str, Any]) -> JSONResponse:
    """Change the route once per key; the caller holds the state's lock."""
    seen = state.answers.get(key)
    if seen is not None:
        request, answer = seen
        if request != (service, route):
            return _error(
                422,
                "invalid_request_error",
                "this Idempotency-Key was already used with a different request",
            )
        return JSONResponse(answer, headers={"Idempotent-Replayed": "true"})
    previous = state.routes[service]
    changed = previous != route
    if changed:
        state.versions[service] += 1
        state.routes[service] = route
        state.history.append(
            {
                "service": service,
                "idempotency_key": key,
                "previous": previous,
                "route": route,
                "version": state.versions[service],
                "at": datetime.now(UTC).isoformat(),
            }
        )
    answer = {
        "service": service,
        "previous": previous,
        "route": route,
        "changed": changed,
        "version": state.versions[service],
    }
    state.answers[key] = ((service, route), answer)
    return JSONResponse(answer)
