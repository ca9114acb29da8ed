"""Arize prompt endpoints (REST v2, beta): what `client.prompts` of the `arize` SDK calls.

Contract (ARIZE.md §2 and §4):
- `GET /v2/prompts` → `{prompts: [...], pagination}` (what a reachability check reads);
- `GET /v2/prompts/{id}/versions` → `{prompt_versions: [...], pagination}` (newest first, `limit`
  1..100, an opaque `cursor`);
- `GET /v2/prompt-versions/{id}` → PromptVersion;
- `GET /v2/prompts/{id}/labels/{label}` → the PromptVersion carrying the label;
- `PUT /v2/prompt-versions/{id}/labels` `{"labels": [...]}` → PromptVersion: REPLACES the
  version's labels and MOVES each requested label off any other version of the same prompt;
- `DELETE /v2/prompt-versions/{id}/labels/{label}` → 204.

Every request needs `Authorization: Bearer <key>` (one of `api_keys`; None accepts any). Ids are
padded standard base64 of `Kind:N:suffix`, minted without `/` or `+` (`sandbox.arize.ids`); path
segments arrive percent-encoded (`=` as `%3D`) and are decoded once, by the server, before lookup.
Errors are RFC 7807 problems (`application/problem+json`, `{title, status, type, detail,
instance}`), as `sandbox.arize.wire` writes them for every part of the emulator.
Seeded versions are checked against the SDK's strict enums (provider, input_variable_format,
message role), so the emulator never serves what the SDK would refuse to read.

Knobs for tests, on PromptsState or through the control API under `/_sandbox/arize/prompts`:
seed prompts and versions (`add_prompt`, `add_version`; `POST /_sandbox/arize/prompts`), queue
faults (`fail_next(status, …)` for 404/429/5xx, `slow_next(seconds)`, from
`sandbox.arize.state.FaultQueue`; `POST …/faults`), read what
happened (`snapshot()`; `GET /_sandbox/arize/prompts`): each request, each label moved (the
`prompt.version.labeled`/`unlabeled` events Arize would deliver) and each version's labels.

Mount it into a bigger Arize app with `app.include_router(prompts_router(state))`, and give that
app `sandbox.arize.wire.add_problem_handlers` (or build it standalone with
`create_prompts_app(state)`).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sandbox.arize.ids import IdMinter
from sandbox.arize.state import Fault, FaultQueue
from sandbox.arize.wire import add_problem_handlers, gate, pagination, problem

PROVIDERS = ("OPEN_AI", "AZURE_OPEN_AI", "AWS_BEDROCK", "VERTEX_AI", "ANTHROPIC", "CUSTOM")
VARIABLE_FORMATS = ("F_STRING", "MUSTACHE", "NONE")
ROLES = ("USER", "ASSISTANT", "SYSTEM", "TOOL")
MAX_LABELS = 20
MAX_LABEL_LENGTH = 64
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CONTROL = "/_sandbox/arize/prompts"


@dataclass
class PromptsState(FaultQueue):
    """The prompts, their versions and labels, the faults queued, and what was asked.

    Ids come from `minter`; prompts are in `space_id` and versions made by `user_id` (each
    minted once when not given). Mounted in the whole emulator, the account's minter and space.
    """

    api_keys: set[str] | None = None
    minter: IdMinter = field(default_factory=IdMinter)
    space_id: str = ""
    user_id: str = ""
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Version id → the PromptVersion JSON served (labels included)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    """`prompt.version.labeled` / `unlabeled`, one per label put on or taken off a version."""
    faults: deque[Fault] = field(default_factory=deque)
    lock: threading.RLock = field(default_factory=threading.RLock)
    counter: int = 0
    clock: datetime = field(default_factory=lambda: datetime(2026, 12, 1, tzinfo=UTC))

    def __post_init__(self) -> None:
        self.space_id = self.space_id or self.minter.mint("Space")
        self.user_id = self.user_id or self.minter.mint("User")

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def add_prompt(self, name: str, *, space_id: str | None = None) -> str:
        """Create a prompt with no versions; return its id."""
        with self.lock:
            self._next()  # prompts and versions share the count versions' times are made of
            prompt_id = self.minter.mint("Prompt")
            self.prompts[prompt_id] = {
                "id": prompt_id,
                "name": name,
                "space_id": space_id or self.space_id,
            }
            return prompt_id

    def add_version(
        self,
        prompt_id: str,
        *,
        commit_message: str = "update",
        labels: list[str] | tuple[str, ...] = (),
        created_at: datetime | None = None,
        model: str = "gpt-4o-mini",
        provider: str = "OPEN_AI",
        input_variable_format: str = "F_STRING",
        messages: list[dict[str, Any]] | None = None,
    ) -> str:
        """Add a version to a prompt (newer than the ones before); its labels move onto it."""
        messages = messages or [{"role": "SYSTEM", "content": commit_message}]
        errors = _seed_errors(provider, input_variable_format, messages, list(labels))
        if prompt_id not in self.prompts:
            errors.append(f"no prompt {prompt_id}")
        if errors:
            raise ValueError("; ".join(errors))
        with self.lock:
            number = self._next()
            version_id = self.minter.mint("PromptVersion")
            when = created_at or self.clock + timedelta(minutes=number)
            self.versions[version_id] = {
                "id": version_id,
                "prompt_id": prompt_id,
                "commit_hash": format(number * 2654435761 % 2**32, "08x"),
                "commit_message": commit_message,
                "messages": messages,
                "input_variable_format": input_variable_format,
                "provider": provider,
                "model": model,
                "created_at": when.isoformat(),
                "created_by_user_id": self.user_id,
                "labels": [],
            }
            self.set_labels(version_id, list(labels))
            return version_id

    def versions_of(self, prompt_id: str) -> list[dict[str, Any]]:
        """Return a prompt's versions, newest first."""
        with self.lock:
            found = [v for v in self.versions.values() if v["prompt_id"] == prompt_id]
            return sorted(found, key=lambda v: (v["created_at"], v["id"]), reverse=True)

    def labeled(self, prompt_id: str, label: str) -> dict[str, Any] | None:
        """Return the version of the prompt carrying `label` (labels are case-sensitive)."""
        return next((v for v in self.versions_of(prompt_id) if label in v["labels"]), None)

    def set_labels(self, version_id: str, labels: list[str]) -> dict[str, Any]:
        """Replace a version's labels; move each off the prompt's other versions."""
        with self.lock:
            version = self.versions[version_id]
            wanted = list(dict.fromkeys(labels))
            for other in self.versions_of(version["prompt_id"]):
                if other["id"] == version_id:
                    continue
                for label in [label for label in other["labels"] if label in wanted]:
                    other["labels"].remove(label)
                    self._event("prompt.version.unlabeled", other, label)
            for label in [label for label in version["labels"] if label not in wanted]:
                self._event("prompt.version.unlabeled", version, label)
            for label in [label for label in wanted if label not in version["labels"]]:
                self._event("prompt.version.labeled", version, label)
            version["labels"] = wanted
            return version

    def delete_label(self, version_id: str, label: str) -> bool:
        """Take a label off a version; return whether it was on it."""
        with self.lock:
            version = self.versions[version_id]
            if label not in version["labels"]:
                return False
            version["labels"].remove(label)
            self._event("prompt.version.unlabeled", version, label)
            return True

    def _event(self, event: str, version: dict[str, Any], label: str) -> None:
        self.events.append(
            {
                "event": event,
                "prompt_id": version["prompt_id"],
                "version_id": version["id"],
                "label": label,
            }
        )

    def writes(self) -> list[dict[str, Any]]:
        """Return the label writes that took effect (PUT and DELETE answered 2xx)."""
        with self.lock:
            return [
                r for r in self.requests if r["method"] in ("PUT", "DELETE") and r["status"] < 300
            ]

    def snapshot(self) -> dict[str, Any]:
        """Return everything: prompts, versions (newest first per prompt), requests, events."""
        with self.lock:
            copied: dict[str, Any] = json.loads(
                json.dumps(
                    {
                        "prompts": [
                            {**p, "versions": self.versions_of(p["id"])}
                            for p in self.prompts.values()
                        ],
                        "requests": self.requests,
                        "events": self.events,
                        "faults_queued": len(self.faults),
                    }
                )
            )
            return copied


def _seed_errors(
    provider: str, variable_format: str, messages: list[dict[str, Any]], labels: list[str]
) -> list[str]:
    errors = []
    if provider not in PROVIDERS:
        errors.append(f"provider must be one of {', '.join(PROVIDERS)}")
    if variable_format not in VARIABLE_FORMATS:
        errors.append(f"input_variable_format must be one of {', '.join(VARIABLE_FORMATS)}")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            errors.append(f"each message needs a role, one of {', '.join(ROLES)}")
    errors.extend(_label_errors(labels))
    return errors


def _label_errors(labels: Any) -> list[str]:
    if not isinstance(labels, list):
        return ["labels must be an array of strings"]
    if len(labels) > MAX_LABELS:
        return [f"at most {MAX_LABELS} labels"]
    errors = []
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            errors.append("each label must be a non-empty string")
        elif len(label) > MAX_LABEL_LENGTH or "/" in label:
            errors.append(f"label {label[:80]!r} is over {MAX_LABEL_LENGTH} characters or has '/'")
    return errors


def prompts_router(state: PromptsState) -> APIRouter:
    """Return the REST v2 prompt endpoints and the control API, around `state`."""
    router = APIRouter()

    def log(request: Request, status: int, body: Any = None) -> None:
        with state.lock:
            state.requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "body": body,
                    "status": status,
                }
            )

    async def answer(request: Request, body: Any, handle: Any) -> Response:
        refused = await gate(request, state.api_keys, state.take_fault)
        response = refused if refused is not None else handle()
        log(request, response.status_code, body)
        return response

    def missing(kind: str, value: str, path: str) -> JSONResponse:
        return problem(404, f"{kind} {value!r} not found", path)

    @router.get("/v2/prompts")
    async def list_prompts(request: Request) -> Response:
        def handle() -> Response:
            limit, start, error = _page(request)
            if error:
                return problem(400, error, request.url.path)
            space = request.query_params.get("space_id")
            with state.lock:
                found = [p for p in state.prompts.values() if space in (None, p["space_id"])]
            return JSONResponse(_paged("prompts", found, start, limit))

        return await answer(request, None, handle)

    @router.get("/v2/prompts/{prompt_id}/versions")
    async def list_versions(request: Request, prompt_id: str) -> Response:
        def handle() -> Response:
            pid = prompt_id
            if pid not in state.prompts:
                return missing("prompt", pid, request.url.path)
            limit, start, error = _page(request)
            if error:
                return problem(400, error, request.url.path)
            return JSONResponse(_paged("prompt_versions", state.versions_of(pid), start, limit))

        return await answer(request, None, handle)

    @router.get("/v2/prompt-versions/{version_id}")
    async def get_version(request: Request, version_id: str) -> Response:
        def handle() -> Response:
            vid = version_id
            if vid not in state.versions:
                return missing("prompt version", vid, request.url.path)
            return JSONResponse(state.versions[vid])

        return await answer(request, None, handle)

    @router.get("/v2/prompts/{prompt_id}/labels/{label}")
    async def get_by_label(request: Request, prompt_id: str, label: str) -> Response:
        def handle() -> Response:
            pid, name = prompt_id, label
            if pid not in state.prompts:
                return missing("prompt", pid, request.url.path)
            version = state.labeled(pid, name)
            if version is None:
                return missing("label", name, request.url.path)
            return JSONResponse(version)

        return await answer(request, None, handle)

    @router.put("/v2/prompt-versions/{version_id}/labels")
    async def put_labels(request: Request, version_id: str) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = raw.decode("utf-8", "replace")[:200]

        def handle() -> Response:
            vid = version_id
            if not isinstance(body, dict) or set(body) != {"labels"}:
                detail = 'the body must be a JSON object {"labels": [...]} and nothing else'
                return problem(400, detail, request.url.path)
            errors = _label_errors(body["labels"])
            if errors:
                return problem(400, "; ".join(errors), request.url.path)
            if vid not in state.versions:
                return missing("prompt version", vid, request.url.path)
            return JSONResponse(state.set_labels(vid, body["labels"]))

        return await answer(request, body, handle)

    @router.delete("/v2/prompt-versions/{version_id}/labels/{label}")
    async def delete_label(request: Request, version_id: str, label: str) -> Response:
        def handle() -> Response:
            vid, name = version_id, label
            if vid not in state.versions:
                return missing("prompt version", vid, request.url.path)
            if not state.delete_label(vid, name):
                return missing("label", name, request.url.path)
            return Response(status_code=204)

        return await answer(request, None, handle)

    @router.get(CONTROL)
    def control_snapshot() -> dict[str, Any]:
        return state.snapshot()

    @router.post(CONTROL)
    async def control_seed(request: Request) -> Response:
        """Seed one prompt: `{"name", "versions": [{"commit_message", "labels", "minutes_ago",
        "model", "provider", "messages"}]}`, oldest version first; answers the ids minted."""
        try:
            body = json.loads(await request.body())
            return JSONResponse(seed_prompt(state, body), status_code=201)
        except (ValueError, TypeError, KeyError) as exc:
            return problem(400, f"cannot seed: {exc}", request.url.path)

    @router.post(CONTROL + "/faults")
    async def control_faults(request: Request) -> Response:
        """Queue faults: `{"status": 429, "times": 1, "retry_after": 1, "delay_seconds": 0,
        "path_contains": "/labels"}` (status or delay_seconds, or both)."""
        try:
            body = json.loads(await request.body())
            fault = Fault(
                status=int(body["status"]) if body.get("status") is not None else 0,
                retry_after=body.get("retry_after"),
                delay_seconds=float(body.get("delay_seconds", 0)),
                path_contains=body.get("path_contains"),
            )
            times = int(body.get("times", 1))
        except (ValueError, TypeError, AttributeError) as exc:
            return problem(400, f"not a fault: {exc}", request.url.path)
        if not fault.status and not fault.delay_seconds:
            return problem(400, "give a status or a delay_seconds", CONTROL)
        with state.lock:
            state.queue_fault(fault, max(1, min(times, 100)))
            return JSONResponse({"queued": len(state.faults)})

    return router


def seed_prompt(state: PromptsState, spec: dict[str, Any]) -> dict[str, Any]:
    """Create a prompt and its versions from a plain spec (the control API, scenarios):
    `{"name", "versions": [{"commit_message", "labels", "minutes_ago", …}]}`, oldest first.
    Return `{"prompt_id", "version_ids": [...]}` in the order given."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError("a prompt needs a name")
    versions = spec.get("versions") or []
    if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
        raise ValueError("versions must be a list of objects")
    now = datetime.now(UTC)
    prompt_id = state.add_prompt(spec["name"])
    ids = []
    for version in versions:
        minutes = version.get("minutes_ago")
        created = now - timedelta(minutes=float(minutes)) if minutes is not None else None
        ids.append(
            state.add_version(
                prompt_id,
                commit_message=str(version.get("commit_message", "update")),
                labels=list(version.get("labels", [])),
                created_at=created,
                model=str(version.get("model", "gpt-4o-mini")),
                provider=str(version.get("provider", "OPEN_AI")),
                messages=version.get("messages"),
            )
        )
    return {"prompt_id": prompt_id, "version_ids": ids}


def _paged(key: str, items: list[dict[str, Any]], start: int, limit: int) -> dict[str, Any]:
    """Return one page of a list answer, with the `pagination` every list carries."""
    more = start + limit < len(items)
    cursor = base64.b64encode(str(start + limit).encode()).decode() if more else None
    return {key: items[start : start + limit], "pagination": pagination(cursor)}


def _page(request: Request) -> tuple[int, int, str | None]:
    raw_limit = request.query_params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            return 0, 0, f"limit must be an integer from 1 to {MAX_LIMIT}"
        limit = int(raw_limit)
    cursor = request.query_params.get("cursor")
    if cursor is None:
        return limit, 0, None
    try:
        start = int(base64.b64decode(cursor, validate=True).decode())
    except ValueError:
        return 0, 0, "cursor is not one this server gave"
    return limit, start, None


def create_prompts_app(state: PromptsState) -> FastAPI:
    """Build a standalone Arize emulator with only the prompt endpoints (tests, scenarios)."""
    app = FastAPI(title="Arize emulator (prompts)", openapi_url=None)
    add_problem_handlers(app)
    app.include_router(prompts_router(state))
    return app
