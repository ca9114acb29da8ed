"""OpenAI-compatible emulator: /v1/chat/completions, /v1/embeddings and /v1/models.

Contract (CONTRACTS.md, and the openai SDK 3.57 as langchain-openai 1.7 drives it): JSON bodies,
`Authorization: Bearer <key>`; chat needs `model` and a non-empty `messages` list of
{role, content} (roles system|developer|user|assistant|tool|function); embeddings need `model` and
`input` (a string, a list of strings, or token arrays) and the SDK asks for
`encoding_format: "base64"` (little-endian float32). Errors come as
{"error": {"message", "type", "param", "code"}}: 401 for a missing or wrong key, 404 for an
unknown model, 400 for a bad request. Each model's behaviour is scripted in `openai_state`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sandbox.openai_state import (
    Fault,
    ModelScript,
    OpenAIServerState,
    RecordedRequest,
    Reply,
    ToolCall,
)

__all__ = ["OpenAIServerState", "ToolCall", "create_openai_app"]

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
MAX_EMBEDDING_INPUTS = 2048
ERROR_TYPES = {401: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}


class ApiError(Exception):
    """A refusal in OpenAI's error shape."""

    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        """Return the error as OpenAI sends it."""
        kind = ERROR_TYPES.get(self.status, "invalid_request_error")
        if self.status >= 500:
            kind = "server_error"
        error = {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        return JSONResponse({"error": error}, status_code=self.status, headers=headers)


def tokens(text: str) -> int:
    """Estimate tokens the way OpenAI's rule of thumb does: one per four characters."""
    return max(1, math.ceil(len(text) / 4))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def check_key(request: Request, keys: set[str]) -> None:
    """Refuse a request without a bearer key, or with a key the server does not know."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    if key.strip() not in keys:
        masked = f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}"
        raise ApiError(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")


def parse_body(raw: bytes) -> dict[str, Any]:
    """Return the JSON object of a request body, or refuse it."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "you must provide a model parameter")
    return body


def _missing(param: str) -> ApiError:
    return ApiError(
        400, f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


def _invalid(param: str, detail: str) -> ApiError:
    return ApiError(400, f"Invalid '{param}': {detail}", param, "invalid_value")


def validate_chat(body: dict[str, Any]) -> None:
    """Refuse a chat completion request that breaks the documented contract."""
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "expected a non-empty array of messages.")
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid(param, "expected an object.")
        role = message.get("role")
        if role is None:
            raise _missing(f"{param}.role")
        if role not in ROLES:
            raise _invalid(f"{param}.role", f"'{role}'. Supported values are: {', '.join(ROLES)}.")
        content = message.get("content")
        if content is None and not (role == "assistant" and message.get("tool_calls")):
            raise _missing(f"{param}.content")
        if content is not None and not isinstance(content, str | list):
            raise _invalid(f"{param}.content", "expected a string or an array of content parts.")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _missing(f"{param}.tool_call_id")
    names = _tool_names(body.get("tools"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        function = choice.get("function")
        if not isinstance(function, dict) or function.get("name") not in names:
            raise _invalid("tool_choice", "the named function is not in 'tools'.")
    for limit in ("max_tokens", "max_completion_tokens"):
        value = body.get(limit)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise _invalid(limit, "must be a positive integer.")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict) or response_format.get("type") not in RESPONSE_FORMATS
    ):
        raise _invalid("response_format", f"type must be one of {', '.join(RESPONSE_FORMATS)}.")
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 2
    ):
        raise _invalid("temperature", "must be a number between 0 and 2.")
    if body.get("stream"):
        raise _invalid("stream", "this sandbox server does not stream; send stream=false.")


def _tool_names(tools: Any) -> set[str]:
    if tools is None:
        return set()
    if not isinstance(tools, list):
        raise _invalid("tools", "expected an array.")
    names = set()
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise _invalid(f"tools[{i}]", "expected {'type': 'function', 'function': {...}}.")
        if not isinstance(function.get("name"), str):
            raise _missing(f"tools[{i}].function.name")
        names.add(function["name"])
    return names


def validate_embeddings(body: dict[str, Any], script: ModelScript) -> list[str | list[int]]:
    """Return the inputs of an embeddings request, or refuse it."""
    items = body.get("input")
    if items is None:
        raise _missing("input")
    if isinstance(items, str) or (isinstance(items, list) and items and isinstance(items[0], int)):
        items = [items]
    if not isinstance(items, list) or not 0 < len(items) <= MAX_EMBEDDING_INPUTS:
        raise _invalid("input", f"expected a string or an array of 1 to {MAX_EMBEDDING_INPUTS}.")
    for i, item in enumerate(items):
        is_tokens = isinstance(item, list) and all(isinstance(t, int) for t in item)
        if not (isinstance(item, str) and item) and not (is_tokens and item):
            raise _invalid(f"input[{i}]", "expected a non-empty string or array of tokens.")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise _invalid("encoding_format", "must be 'float' or 'base64'.")
    dimensions = body.get("dimensions")
    if dimensions is not None and not (
        isinstance(dimensions, int) and 0 < dimensions <= script.dimension
    ):
        raise _invalid("dimensions", f"must be an integer from 1 to {script.dimension}.")
    return items


def _served(state: OpenAIServerState, name: str, kind: str) -> ModelScript:
    script = state.models.get(name)
    if script is None:
        raise ApiError(
            404,
            f"The model `{name}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    if script.kind != kind:
        raise ApiError(400, f"The model `{name}` does not support this endpoint.", "model")
    return script


async def _delay_or_fault(script: ModelScript) -> Response | None:
    if script.latency_seconds:
        await asyncio.sleep(script.latency_seconds)
    fault = script.take_fault()
    if isinstance(fault, Fault):
        message = "Rate limit reached" if fault.status == 429 else "The server had an error"
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        code = "rate_limit_exceeded" if fault.status == 429 else None
        return ApiError(fault.status, f"{message} (injected).", code=code).response(headers)
    if fault == "not_json":
        return Response('{"id": "chatcmpl-trunc', media_type="application/json")
    if fault == "missing_field":
        return JSONResponse({"id": f"sandbox-{uuid.uuid4().hex[:8]}", "model": script.name})
    return None


def _message(reply: Reply, max_tokens: int | None) -> tuple[dict[str, Any], str, int]:
    if isinstance(reply, str):
        finish = "stop"
        if max_tokens is not None and tokens(reply) > max_tokens:
            reply, finish = reply[: max_tokens * 4], "length"
        return {"role": "assistant", "content": reply, "refusal": None}, finish, tokens(reply)
    calls = [reply] if isinstance(reply, ToolCall) else reply
    tool_calls: list[dict[str, Any]] = [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
        }
        for c in calls
    ]
    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": tool_calls}
    return message, "tool_calls", sum(tokens(c["function"]["arguments"]) for c in tool_calls)


def chat_answer(script: ModelScript, body: dict[str, Any]) -> dict[str, Any]:
    """Answer a valid chat request by the model's rules, in OpenAI's response shape."""
    messages = body["messages"]
    users = [_text_of(m.get("content")) for m in messages if m["role"] == "user"]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    message, finish, completion = _message(script.reply_for(users[-1] if users else ""), limit)
    prompt = sum(tokens(_text_of(m.get("content"))) for m in messages)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": script.name,
        "system_fingerprint": "fp_sandbox",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def embeddings_answer(
    script: ModelScript, body: dict[str, Any], items: list[str | list[int]]
) -> dict[str, Any]:
    """Embed every input deterministically, as floats or base64 float32 as asked."""
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(items):
        vector: Any = script.embed(item, body.get("dimensions"))
        if as_base64:
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    used = sum(tokens(i) if isinstance(i, str) else len(i) for i in items)
    return {
        "object": "list",
        "data": data,
        "model": script.name,
        "usage": {"prompt_tokens": used, "total_tokens": used},
    }


def create_openai_app(state: OpenAIServerState) -> FastAPI:
    """Build the emulator's ASGI app around its state."""
    app = FastAPI(title="OpenAI-compatible emulator", openapi_url=None)

    async def serve(request: Request, kind: str) -> Response:
        path, body, model, generation = request.url.path, None, None, state.generation
        try:
            check_key(request, state.api_keys)
            body = parse_body(await request.body())
            model = body["model"]
            if kind == "chat":
                validate_chat(body)
            script = _served(state, model, kind)
            items = validate_embeddings(body, script) if kind == "embedding" else []
        except ApiError as refusal:
            state.record(RecordedRequest(path, model, body, refusal.status), generation)
            return refusal.response()
        failure = await _delay_or_fault(script)
        if failure is not None:
            state.record(RecordedRequest(path, model, body, failure.status_code), generation)
            return failure
        answer = (
            chat_answer(script, body) if kind == "chat" else embeddings_answer(script, body, items)
        )
        state.record(RecordedRequest(path, model, body, 200, answer["usage"]), generation)
        return JSONResponse(answer)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await serve(request, "chat")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        return await serve(request, "embedding")

    @app.get("/v1/models")
    def list_models(request: Request) -> Response:
        try:
            check_key(request, state.api_keys)
        except ApiError as refusal:
            return refusal.response()
        return JSONResponse({"object": "list", "data": [_model(n) for n in sorted(state.models)]})

    @app.get("/v1/models/{name:path}")
    def retrieve_model(name: str, request: Request) -> Response:
        try:
            check_key(request, state.api_keys)
            if name not in state.models:
                raise ApiError(
                    404, f"The model '{name}' does not exist", "model", "model_not_found"
                )
        except ApiError as refusal:
            return refusal.response()
        return JSONResponse(_model(name))

    @app.get("/_sandbox/requests")
    def received() -> dict[str, Any]:
        return state.snapshot()

    return app


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "sandbox"}
