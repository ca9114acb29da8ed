"""The gateway's data plane: OpenAI-compatible calls to a service alias go where its route says.

A LiteLLM-style gateway serves `POST /v1/chat/completions` for a model alias (the service name)
and forwards it to the route's model; switching the route (failover) changes where traffic goes.
A region can be made to fail (`GatewayState.failing_regions`), which is how the sandbox stages an
endpoint fault that a failover to another region cures.

One route can also be called directly, whatever the alias routes to, by the model name
`<provider>/<model>@<region>` (as LiteLLM calls a specific deployment): the agent probes a
service's primary route that way before it fails back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.gateway import GatewayState
from sandbox.server import Upstream

DIRECT = re.compile(r"^(?P<provider>[^/@]+)/(?P<model>[^@]+)@(?P<region>[^@]*)$")


def _openai_error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        },
        status_code=status,
    )


def add_proxy_routes(app: FastAPI, state: GatewayState, upstream: str) -> None:
    """Serve the OpenAI-compatible data plane on `app`, forwarding to `upstream` (…/v1)."""
    forward = Upstream()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        with state.lock:
            aliases = sorted(state.routes)
        return {
            "object": "list",
            "data": [{"id": a, "object": "model", "owned_by": "gateway"} for a in aliases],
        }

    @app.get("/v1/models/{alias}")
    async def model(alias: str, request: Request) -> Response:
        with state.lock:
            route = state.routes.get(alias)
        if route is None:
            return _openai_error(404, f"The model `{alias}` does not exist", "model_not_found")
        # The caller's key is the upstream's to judge, as for every data-plane call.
        headers = {"Authorization": request.headers.get("authorization", "")}
        answer = await forward.client().get(f"{upstream}/models/{route['model']}", headers=headers)
        if answer.status_code != 200:
            return Response(
                answer.content, status_code=answer.status_code, media_type="application/json"
            )
        return JSONResponse({"id": alias, "object": "model", "owned_by": "gateway"})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _openai_error(
                400, "We could not parse the JSON body of your request.", "invalid_json"
            )
        alias = body.get("model") if isinstance(body, dict) else None
        direct = DIRECT.match(str(alias)) if alias else None
        with state.lock:
            route = state.routes.get(str(alias)) if alias else None
            if route is None and direct is not None:
                route = {**direct.groupdict(), "region": direct["region"] or None}
            failing = state.failing_regions.get(str(route.get("region"))) if route else None
        if route is None:
            return _openai_error(404, f"The model `{alias}` does not exist", "model_not_found")
        if failing is not None:
            return _openai_error(
                failing, f"upstream in {route.get('region')} is unavailable", "upstream_unavailable"
            )
        body["model"] = route["model"]
        headers = {"Authorization": request.headers.get("authorization", "")}
        answer = await forward.client().post(
            f"{upstream}/chat/completions", json=body, headers=headers
        )
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
        )
