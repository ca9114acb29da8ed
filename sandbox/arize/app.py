"""Arize REST v2 emulator: monitors and tags, as the official SDK (`arize` 8.61.0) calls them.

Contract (ARIZE.md §2-3): `Authorization: Bearer <api key>` on every /v2 call (401 otherwise);
ids are base64 `Kind:N:x` (minted without `/` or `+`), read from percent-decoded path segments; a
malformed id is a 400, an unknown one a 404; errors are RFC 7807 problems; every list carries
`pagination`; enums are strict (a value outside them is refused, never returned).

| route | SDK call |
| --- | --- |
| GET /v2/monitors/{id} | MonitorsApi.get_monitor |
| GET /v2/monitors | MonitorsApi.list_monitors (space_id, status, type, name, limit, cursor) |
| GET, POST, DELETE /v2/monitors/{id}/tags | list_, add_, remove_monitor_tags |
| POST /v2/tags | TagsApi.create_tag (201; 409 on a name the space has, any case) |

The control API under /_sandbox/ (no auth) is for tests and scenarios: read the state, add or
change a monitor (status, values), queue faults (`{"status": 429, "times": 1}`) or slow answers
(`{"delay_seconds": 3}`).

Another part of the API is a router factory `make(state) -> APIRouter` (see `sandbox.arize.wire`;
its data in `state.extras`, ids from `state.minter`) listed in ROUTERS below (one line); auth,
faults, the request log and RFC 7807 answers apply to it with nothing more.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sandbox.arize.prompts import PromptsState, prompts_router
from sandbox.arize.state import MONITOR_STATUSES, MONITOR_TYPES, TAG_COLORS, ArizeState
from sandbox.arize.wire import (
    ProblemError,
    add_problem_handlers,
    gate,
    id_list,
    json_object,
    pagination,
    require_id,
)

RouterFactory = Callable[[ArizeState], APIRouter]


def monitors_router(state: ArizeState) -> APIRouter:
    """GET one monitor, list them (filtered, paginated), and their tags."""
    router = APIRouter()

    def monitor_of(monitor_id: str) -> dict[str, Any]:
        require_id(monitor_id, "Monitor", "monitor_id")
        with state.lock:
            monitor = state.monitors.get(monitor_id)
            if monitor is None:
                raise ProblemError(404, f"Monitor {monitor_id} not found")
            return dict(monitor)

    def tag_list(monitor_id: str) -> dict[str, Any]:
        with state.lock:
            tags = [dict(state.tags[t]) for t in reversed(state.monitor_tags[monitor_id])]
        return {"tags": tags, "pagination": pagination(None)}

    @router.get("/v2/monitors/{monitor_id}")
    def get_monitor(monitor_id: str) -> dict[str, Any]:
        return monitor_of(monitor_id)

    @router.get("/v2/monitors")
    def list_monitors(request: Request) -> dict[str, Any]:
        query = request.query_params
        limit = _limit(query.get("limit"))
        offset = _offset(query.get("cursor"))
        space_id = query.get("space_id")
        if space_id is not None:
            require_id(space_id, "Space", "space_id")
            if space_id != state.space_id:
                raise ProblemError(404, f"Space {space_id} not found")
        for name, allowed in (("status", MONITOR_STATUSES), ("type", MONITOR_TYPES)):
            value = query.get(name)
            if value is not None and value not in allowed:
                raise ProblemError(400, f"{name} must be one of {', '.join(allowed)}")
        name = (query.get("name") or "").lower()
        with state.lock:
            found = [
                dict(m)
                for m in reversed(state.monitors.values())  # newest first
                if query.get("status") in (None, m.get("status"))
                and query.get("type") in (None, m.get("type"))
                and name in str(m.get("name", "")).lower()
            ]
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        cursor = _cursor(offset + limit) if more else None
        return {"monitors": page, "pagination": pagination(cursor)}

    @router.get("/v2/monitors/{monitor_id}/tags")
    def list_monitor_tags(monitor_id: str) -> dict[str, Any]:
        monitor_of(monitor_id)
        return tag_list(monitor_id)

    @router.post("/v2/monitors/{monitor_id}/tags")
    async def add_monitor_tags(monitor_id: str, request: Request) -> dict[str, Any]:
        monitor_of(monitor_id)
        body = await json_object(request, {"tag_ids"}, {"tag_ids"})
        tag_ids = id_list(body, "tag_ids", "Tag")
        with state.lock:
            missing = [t for t in tag_ids if t not in state.tags]
            if missing:
                raise ProblemError(404, f"Tags not found: {', '.join(missing)}")
            attached = state.monitor_tags[monitor_id]
            attached += [t for t in dict.fromkeys(tag_ids) if t not in attached]  # idempotent
        return tag_list(monitor_id)

    @router.delete("/v2/monitors/{monitor_id}/tags")
    async def remove_monitor_tags(monitor_id: str, request: Request) -> dict[str, Any]:
        monitor_of(monitor_id)
        body = await json_object(request, {"tag_ids"}, {"tag_ids"})
        tag_ids = id_list(body, "tag_ids", "Tag")
        with state.lock:
            attached = state.monitor_tags[monitor_id]
            deleted = [t for t in dict.fromkeys(tag_ids) if t in attached]
            state.monitor_tags[monitor_id] = [t for t in attached if t not in deleted]
        not_deleted = [t for t in tag_ids if t not in deleted]
        return {"completed": not not_deleted, "deleted": deleted, "not_deleted": not_deleted}

    return router


def tags_router(state: ArizeState) -> APIRouter:
    """POST /v2/tags: create a tag in the space."""
    router = APIRouter()

    @router.post("/v2/tags", status_code=201)
    async def create_tag(request: Request) -> dict[str, Any]:
        body = await json_object(
            request, {"name", "description", "color", "space_id"}, {"name", "space_id"}
        )
        name = body["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ProblemError(400, "name must be 1 to 100 characters")
        space_id = body["space_id"]
        if not isinstance(space_id, str):
            raise ProblemError(400, "space_id must be a string")
        require_id(space_id, "Space", "space_id")
        if space_id != state.space_id:
            raise ProblemError(404, f"Space {space_id} not found")
        color = body.get("color")
        if color is not None and color not in TAG_COLORS:
            raise ProblemError(400, f"color must be one of {', '.join(TAG_COLORS)}")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise ProblemError(400, "description must be a string")
        try:
            return state.create_tag(name, space_id, description=description, color=color)
        except ValueError as exc:
            raise ProblemError(409, str(exc)) from None

    return router


def prompts_part(state: ArizeState) -> APIRouter:
    """The prompt endpoints (`sandbox/arize/prompts.py`), on the same account's keys, space and
    ids; their state is `state.extras["prompts"]`."""
    prompts = state.extras.setdefault(
        "prompts",
        PromptsState(api_keys=state.api_keys, minter=state.minter, space_id=state.space_id),
    )
    return prompts_router(prompts)


ROUTERS: list[RouterFactory] = [monitors_router, tags_router, prompts_part]
"""The API's parts; one more is one line: `ROUTERS.append(module.router)`."""


def create_arize_app(state: ArizeState) -> FastAPI:
    """Build the emulator around its state: the /v2 routers and the /_sandbox control API."""
    app = FastAPI(title="Arize REST v2 emulator", openapi_url=None)

    @app.middleware("http")
    async def logged(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if not path.startswith("/v2/"):
            return await call_next(request)
        entry: dict[str, Any] = {
            "method": request.method,
            # What the handlers read: the path with its segments percent-decoded.
            "path": unquote(path),
            "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
            "query": dict(request.query_params),
            "body": _json_or_text(await request.body()),
            "status": None,
        }
        with state.lock:  # logged on arrival: a client may give up before the answer
            state.requests.append(entry)
        refused = await gate(request, state.api_keys, state.take_fault)
        answer = refused if refused is not None else await call_next(request)
        entry["status"] = answer.status_code
        return answer

    # No route (an id with an encoded `/`), a wrong method: the API's problem, not FastAPI's.
    add_problem_handlers(app)
    for make in ROUTERS:
        app.include_router(make(state))
    app.include_router(control_router(state))
    return app


def control_router(state: ArizeState) -> APIRouter:
    """The emulator's own API for tests, scenarios and the demo (no auth)."""
    router = APIRouter(prefix="/_sandbox")

    @router.get("/state")
    def snapshot() -> dict[str, Any]:
        return state.snapshot()

    @router.post("/monitors")
    async def add_monitor(request: Request) -> Response:
        body = await _control_body(request)
        try:
            monitor_id = state.add_monitor(**body)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(state.monitors[monitor_id], status_code=201)

    @router.patch("/monitors/{monitor_id}")
    async def set_monitor(monitor_id: str, request: Request) -> Response:
        body = await _control_body(request)
        try:
            return JSONResponse(state.set_monitor(monitor_id, **body))
        except KeyError:
            return JSONResponse({"error": f"no monitor {monitor_id}"}, status_code=404)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    @router.get("/monitors/{monitor_id}/tags")
    def tag_names(monitor_id: str) -> list[str]:
        return state.tag_names(monitor_id)

    @router.post("/faults")
    async def add_fault(request: Request) -> Response:
        body = await _control_body(request)
        times = body.get("times", 1)
        prefix = body.get("path_prefix", "/v2/")
        if not isinstance(times, int) or not isinstance(prefix, str) or times < 1:
            return JSONResponse({"error": "times ≥ 1, path_prefix a string"}, status_code=400)
        delay = body.get("delay_seconds")
        if isinstance(delay, int | float) and not isinstance(delay, bool) and 0 < delay <= 600:
            state.slow_next(float(delay), times, path_prefix=prefix)
        elif isinstance(body.get("status"), int) and 400 <= body["status"] <= 599:
            state.fail_next(
                body["status"], times, retry_after=body.get("retry_after"), path_prefix=prefix
            )
        else:
            return JSONResponse({"error": "give status (4xx/5xx) or delay_seconds (0-600)"}, 400)
        return JSONResponse({"queued": times})

    return router


async def _control_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProblemError(400, "not JSON") from None
    if not isinstance(body, dict):
        raise ProblemError(400, "a JSON object is expected")
    return body


def _limit(text: str | None) -> int:
    if text is None:
        return 50
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise ProblemError(400, "limit must be an integer from 1 to 100")
    return int(text)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode("ascii")


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        kind, _, number = text.partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeError):
        pass
    raise ProblemError(400, "cursor is not one this API returned")


def _json_or_text(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")
