"""What every router of the Arize emulator shares: RFC 7807 problems, JSON bodies, id checks,
and the gate (bearer key, then a queued fault) each request passes.

A router of another part of the API (e.g. prompts) imports these, takes the `ArizeState`, and is
added to `sandbox.arize.app.ROUTERS`; authentication, faults and the request log apply to it
with nothing more (they are the app's middleware).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.arize.ids import decode
from sandbox.arize.state import Fault

PROBLEM_TYPES = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "resource-not-found",
    405: "method-not-allowed",
    409: "resource-conflict",
    422: "unprocessable-entity",
    429: "rate-limited",
    500: "internal-error",
    502: "bad-gateway",
    503: "service-unavailable",
    504: "gateway-timeout",
}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ProblemError(Exception):
    """Raised by a handler to answer with an RFC 7807 problem."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def problem(
    status: int, detail: str, instance: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Return an RFC 7807 problem answer, as the REST v2 API gives its errors."""
    kind = PROBLEM_TYPES.get(status, "error")
    body = {
        "type": f"https://arize.com/docs/ax/rest-reference/errors#{kind}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def add_problem_handlers(app: FastAPI) -> None:
    """Make the app answer a raised ProblemError, and routing errors (no route, a wrong method),
    as RFC 7807 problems: the API's own, not FastAPI's."""

    @app.exception_handler(ProblemError)
    async def problem_answer(request: Request, exc: ProblemError) -> JSONResponse:
        return problem(exc.status, exc.detail, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_answer(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), request.url.path)


async def gate(
    request: Request,
    api_keys: set[str] | None,
    take_fault: Callable[[str], Fault | None],
) -> Response | None:
    """Check the bearer token (`api_keys` None accepts any), then apply a queued fault or delay;
    return the answer that ends the request, or None to let it be answered."""
    path = request.url.path
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return problem(401, "Missing bearer token in the Authorization header", path)
    if api_keys is not None and token not in api_keys:
        return problem(401, "The API key is not valid", path)
    fault = take_fault(path)
    if fault is not None and fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    if fault is not None and fault.status:
        retry = fault.retry_after
        headers = {"Retry-After": str(retry)} if retry is not None else None
        return problem(fault.status, "injected fault", path, headers)
    return None


async def json_object(request: Request, fields: set[str], required: set[str]) -> dict[str, Any]:
    """Return the request's JSON object body; unknown or missing fields are a 400 problem."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProblemError(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ProblemError(400, "The request body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise ProblemError(400, f"Unrecognized fields: {', '.join(unknown)}")
    missing = sorted(required - set(body))
    if missing:
        raise ProblemError(400, f"Missing required fields: {', '.join(missing)}")
    return body


def require_id(identifier: str, kind: str, what: str) -> str:
    """Return `identifier` if it is a well-formed id of `kind`, else raise a 400 problem."""
    decoded = decode(identifier)
    if decoded is None or decoded[0] != kind:
        raise ProblemError(400, f"{what} is not a well-formed {kind} ID: {identifier!r}")
    return identifier


def id_list(body: dict[str, Any], name: str, kind: str, *, most: int = 100) -> list[str]:
    """Return the body's list of ids of `kind` (1 to `most`), else raise a 400 problem."""
    values = body.get(name)
    if not isinstance(values, list) or not values or len(values) > most:
        raise ProblemError(400, f"{name} must be a list of 1 to {most} IDs")
    if not all(isinstance(v, str) for v in values):
        raise ProblemError(400, f"{name} must hold strings")
    return [require_id(v, kind, name) for v in values]


def pagination(next_cursor: str | None) -> dict[str, Any]:
    """Return the `pagination` object every list answer carries."""
    return {"next_cursor": next_cursor, "has_more": next_cursor is not None}
