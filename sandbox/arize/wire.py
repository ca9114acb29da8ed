"""What every router of the Arize emulator shares: RFC 7807 problems, JSON bodies, id checks.

A router of another part of the API (e.g. prompts) imports these, takes the `ArizeState`, and is
added to `sandbox.arize.app.ROUTERS`; authentication, faults and the request log apply to it
with nothing more (they are the app's middleware).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from sandbox.arize.ids import decode

PROBLEM_TYPES = {
    400: "invalid-request",
    401: "unauthorized",
    403: "forbidden",
    404: "resource-not-found",
    409: "resource-conflict",
    422: "unprocessable-entity",
    429: "rate-limited",
    500: "internal-error",
    502: "bad-gateway",
    503: "service-unavailable",
}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
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
