"""Faults staged by hand on a running sandbox (`python -m sandbox fault …`, `… heal`).

`python -m sandbox up` serves a small control API beside the emulators (`create_control_app`)
and writes where it is to `<workdir>/control.json`; the `fault`, `heal` and `approve` commands
find it there. A fault is set from healthy, as the scenario evaluation sets its worlds
(`sandbox.evaluation.systems`), so staging one fault replaces the last one of that system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import httpx
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from sandbox.evaluation.systems import (
    EmbeddingsWorld,
    VectorDbWorld,
    set_embeddings,
    set_vector_db,
)
from sandbox.stack import EMBEDDING_MODEL, SandboxStack

CONTROL_FILE = "control.json"
# An endpoint fault is staged at the gateway, per region: `slow` or `wrong_answers` would hit
# the upstream model, which serves several regions, so they are left to the scenario eval.
ENDPOINT_STATES = ("healthy", "failing")
VECTOR_DB_STATES: tuple[str, ...] = get_args(VectorDbWorld.model_fields["state"].annotation)
EMBEDDINGS_STATES: tuple[str, ...] = get_args(EmbeddingsWorld.model_fields["state"].annotation)


class FaultError(ValueError):
    """A fault the sandbox cannot stage; the message lists what it can."""


@dataclass(frozen=True)
class Staged:
    """What one request staged, in words."""

    target: str
    state: str
    key: str | None = None

    def __str__(self) -> str:
        where = f"{self.target} {self.key}" if self.key else self.target
        return f"{where}: {self.state}"


def catalog_routes(catalog: Path) -> list[dict[str, Any]]:
    """Return every route of a catalog: each service's primary endpoint and failover targets."""
    data = yaml.safe_load(catalog.read_text(encoding="utf-8")) or {}
    routes: list[dict[str, Any]] = []
    for spec in (data.get("services") or {}).values():
        endpoint = spec.get("endpoint") or {}
        routes.append(
            {"provider": endpoint.get("provider", "openai"), "region": endpoint.get("region")}
        )
        routes += list((spec.get("failover") or {}).get("targets") or [])
    return routes


def endpoint_keys(routes: list[dict[str, Any]]) -> list[str]:
    """Return the regions and providers of these routes."""
    return sorted({str(r[k]) for r in routes for k in ("region", "provider") if r.get(k)})


def valid_faults(routes: list[dict[str, Any]]) -> dict[str, Any]:
    """Return every fault the sandbox stages: target → states (and keys for the endpoint)."""
    return {
        "vector_db": {"states": list(VECTOR_DB_STATES)},
        "embeddings": {"states": list(EMBEDDINGS_STATES)},
        "endpoint": {"keys": endpoint_keys(routes), "states": list(ENDPOINT_STATES)},
    }


def describe(faults: dict[str, Any]) -> str:
    """Say in one line which faults there are (for errors and `--help`)."""
    parts = []
    for target, spec in faults.items():
        keys = f" <{'|'.join(spec['keys'])}>" if "keys" in spec else ""
        parts.append(f"{target}{keys} <{'|'.join(spec['states'])}>")
    return "; ".join(parts)


def stage(
    stack: SandboxStack,
    routes: list[dict[str, Any]],
    target: str,
    state: str,
    key: str | None = None,
) -> Staged:
    """Stage one fault (from healthy), or raise FaultError listing the valid ones."""
    faults = valid_faults(routes)
    if target not in faults:
        raise FaultError(f"unknown target {target!r}; valid: {describe(faults)}")
    spec = faults[target]
    if "keys" in spec and key is None and state in spec["keys"]:
        key, state = state, ""  # `endpoint eu-west-1`: the region given, the state forgotten
    if "keys" in spec and key not in spec["keys"]:
        what = "needs a region or provider" if key is None else f"has no region or provider {key!r}"
        raise FaultError(f"{target} {what}; valid: {', '.join(spec['keys'])}")
    if "keys" not in spec and key is not None:
        raise FaultError(f"{target} takes no region or provider (got {key!r})")
    if not state:
        named = f"{target} {key}" if key else target
        raise FaultError(f"{named} needs a state; valid: {', '.join(spec['states'])}")
    if state not in spec["states"]:
        raise FaultError(f"unknown state {state!r} of {target}; valid: {', '.join(spec['states'])}")
    try:
        if target == "vector_db":
            set_vector_db(stack, VectorDbWorld(state=state))
        elif target == "embeddings":
            set_embeddings(stack, EmbeddingsWorld(state=state))
        else:
            assert key is not None
            _set_endpoint(stack, routes, key, state)
    except ValidationError as exc:  # a state the world model refuses after all
        raise FaultError(str(exc)) from None
    return Staged(target, state, key)


def _set_endpoint(stack: SandboxStack, routes: list[dict[str, Any]], key: str, state: str) -> None:
    """Make every route in a region (or of a provider) fail at the gateway, or heal them."""
    regions = {
        str(route["region"])
        for route in routes
        if key in (route.get("region"), route.get("provider")) and route.get("region")
    }
    with stack.gateway.lock:
        for region in regions:
            stack.gateway.failing_regions.pop(region, None)
            if state == "failing":
                stack.gateway.failing_regions[region] = 503


def heal(stack: SandboxStack) -> list[Staged]:
    """Set every system the sandbox stages faults on back to healthy."""
    healed = [
        stage(stack, [], "vector_db", "healthy"),
        stage(stack, [], "embeddings", "healthy"),
    ]
    with stack.gateway.lock:
        stack.gateway.failing_regions.clear()
    healed.append(Staged("endpoint", "healthy", "every region"))
    return healed


def state_of(stack: SandboxStack) -> dict[str, Any]:
    """Return what is staged now."""
    vector = stack.vectordb
    embedding = stack.openai.model(EMBEDDING_MODEL)
    return {
        "vector_db": {
            "wrong_neighbour": vector.corrupt_index,
            "delay_seconds": vector.delay_seconds,
            "queued_faults": len(vector.faults),
        },
        "embeddings": {
            "drift": embedding.drift,
            "delay_seconds": embedding.latency_seconds,
            "queued_faults": len(embedding.faults),
        },
        "endpoint": {"failing_regions": dict(stack.gateway.failing_regions)},
    }


def create_control_app(stack: SandboxStack, catalog: Path) -> FastAPI:
    """The control API `up` serves: list, stage and heal faults; 400 names the valid ones.

    The endpoint's regions and providers are those of the catalog's routes (`catalog`).
    """
    app = FastAPI(title="sandbox control")
    routes = catalog_routes(catalog)

    @app.get("/faults")
    def faults() -> dict[str, Any]:
        return {"valid": valid_faults(routes), "now": state_of(stack)}

    @app.post("/faults")
    async def post_fault(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"detail": "the body must be JSON"}, status_code=400)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str | None) for k in ("target", "state", "key")
        ):
            return JSONResponse(
                {"detail": "the body must be {target, state, key?} strings"}, status_code=400
            )
        try:
            staged = stage(
                stack, routes, body.get("target") or "", body.get("state") or "", body.get("key")
            )
        except FaultError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse({"staged": str(staged), "now": state_of(stack)})

    @app.post("/heal")
    def post_heal() -> dict[str, Any]:
        return {"healed": [str(s) for s in heal(stack)], "now": state_of(stack)}

    return app


class NotRunning(RuntimeError):
    """No sandbox answers where `up` said it would."""


def read_control(workdir: Path) -> dict[str, Any]:
    """Return what `up` wrote about the running sandbox, or raise NotRunning saying why."""
    path = workdir / CONTROL_FILE
    try:
        found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise NotRunning(
            f"no sandbox is running ({path} not found): start one with `python -m sandbox up`"
        ) from None
    return found


def call_control(control: dict[str, Any], method: str, path: str, body: Any = None) -> Any:
    """Call the control API; raise NotRunning when nobody answers, FaultError on a 400."""
    url = str(control["control"]) + path
    try:
        answer = httpx.request(method, url, json=body, timeout=10)
    except httpx.TransportError:
        raise NotRunning(
            f"no sandbox answers at {control['control']} (stopped?): start one with "
            "`python -m sandbox up`"
        ) from None
    if answer.status_code == 400:
        raise FaultError(answer.json().get("detail", answer.text))
    answer.raise_for_status()
    return answer.json()
