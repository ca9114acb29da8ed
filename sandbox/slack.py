"""Slack Web API emulator: auth.test, chat.postMessage and chat.update, with Slack's errors.

Contract (CONTRACTS.md): POST <base>/api/<method>, JSON or form body, bearer token xoxb-…;
application errors are HTTP 200 with {"ok": false, "error": …}; about one message per second per
channel with short bursts, over it HTTP 429 with Retry-After. chat.update edits a message the bot
posted (`message_not_found` for an unknown ts, `cant_update_message` for someone else's).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

MAX_TEXT = 40_000
MAX_BLOCKS = 50
HEADER_TEXT = 150
SECTION_TEXT = 3000
BOT_USER = "U0REMEDIATOR"


@dataclass
class SlackFault:
    """An answer the emulator gives instead of processing the next call.

    With `body` set, that raw text is the answer: a malformed reply from a sick server.
    """

    status: int
    retry_after: int | None = None
    body: str | None = None

    def response(self) -> Response:
        """Answer with Slack's error shape for the status, or with this fault's raw body."""
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        if self.body is not None:
            return Response(self.body, self.status, headers, media_type="application/json")
        error = "ratelimited" if self.status == 429 else "internal_error"
        return JSONResponse({"ok": False, "error": error}, self.status, headers)


@dataclass
class SlackState:
    """The workspace the emulator pretends to be, and every message posted to it."""

    token: str
    channels: set[str]
    burst: int = 5
    clock: Callable[[], float] = time.monotonic
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _counter: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: deque[SlackFault] = field(default_factory=deque)
    delay_seconds: float = 0.0

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` calls with this HTTP status instead of processing them."""
        with self.lock:
            self.faults.extend(SlackFault(status, retry_after) for _ in range(times))

    def answer_malformed_next(self, times: int = 1, body: str = '{"ok": true, "ts": ') -> None:
        """Answer the next `times` calls with HTTP 200 and a body that cannot be read."""
        with self.lock:
            self.faults.extend(SlackFault(200, body=body) for _ in range(times))

    def take(self, channel: str) -> float:
        """Spend one message of the channel's budget; return seconds to wait when none is left."""
        now = self.clock()
        tokens, last = self._buckets.get(channel, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last))
        if tokens < 1:
            self._buckets[channel] = (tokens, now)
            return 1 - tokens
        self._buckets[channel] = (tokens - 1, now)
        return 0.0

    def next_ts(self) -> str:
        """Return a fresh message timestamp in Slack's `seconds.micro` form."""
        self._counter += 1
        return f"{int(time.time())}.{self._counter:06d}"

    def snapshot(self) -> dict[str, Any]:
        """Return every message and call, for tests and the demo."""
        with self.lock:
            return {"messages": [dict(m) for m in self.messages], "calls": list(self.calls)}


def _error(error: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error})


def _blocks_error(blocks: Any) -> str | None:
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except json.JSONDecodeError:
            return "invalid_blocks_format"
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return "invalid_blocks"
        text = block.get("text")
        limit = HEADER_TEXT if block["type"] == "header" else SECTION_TEXT
        if text is not None:
            if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
                return "invalid_blocks"
            if len(str(text.get("text", ""))) > limit:
                return "invalid_blocks"
    return None


def create_slack_app(state: SlackState) -> FastAPI:
    """Build the emulator's ASGI app around its state."""
    app = FastAPI(title="Slack Web API emulator", openapi_url=None)

    @app.post("/api/{method}")
    async def api(method: str, request: Request) -> Response:
        args = await _arguments(request)
        if state.delay_seconds > 0:
            await asyncio.sleep(state.delay_seconds)
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if args is not None:
            token = token or str(args.pop("token", ""))
        with state.lock:
            if args is not None:
                state.calls.append({"method": method, "args": args})
            fault = state.faults.popleft() if state.faults else None
        if fault is not None:
            return fault.response()
        if args is None:
            return _error("invalid_json")
        with state.lock:
            if not token:
                return _error("not_authed")
            if token != state.token:
                return _error("invalid_auth")
            handler = HANDLERS.get(method)
            if handler is None:
                return _error("unknown_method")
            return handler(state, args)

    @app.get("/_sandbox/messages")
    def received() -> dict[str, Any]:
        return state.snapshot()

    return app


async def _arguments(request: Request) -> dict[str, Any] | None:
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            parsed = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return parsed if isinstance(parsed, dict) else None
    form = parse_qs(body.decode("utf-8", "replace"))
    return {key: values[-1] for key, values in form.items()}


def _auth_test(state: SlackState, args: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        {
            "ok": True,
            "url": "https://sandbox.slack.invalid/",
            "team": "Sandbox",
            "user": "remediator",
            "team_id": "T0SANDBOX",
            "user_id": "U0REMEDIATOR",
            "bot_id": "B0REMEDIATOR",
        }
    )


def _post_message(state: SlackState, args: dict[str, Any]) -> JSONResponse:
    channel = args.get("channel")
    if not channel or channel not in state.channels:
        return _error("channel_not_found")
    problem = _message_error(args)
    if problem:
        return _error(problem)
    wait = state.take(str(channel))
    if wait > 0:
        return JSONResponse(
            {"ok": False, "error": "ratelimited"},
            status_code=429,
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    message = {
        "channel": channel,
        "ts": state.next_ts(),
        "user": BOT_USER,
        "text": args.get("text", ""),
        "blocks": args.get("blocks"),
        "thread_ts": args.get("thread_ts"),
    }
    state.messages.append(message)
    return JSONResponse(
        {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "message": {"type": "message", "text": message["text"], "ts": message["ts"]},
        }
    )


def _update(state: SlackState, args: dict[str, Any]) -> JSONResponse:
    channel, ts = args.get("channel"), args.get("ts")
    if not channel or channel not in state.channels:
        return _error("channel_not_found")
    target = next((m for m in state.messages if m["channel"] == channel and m["ts"] == ts), None)
    if target is None:
        return _error("message_not_found")
    if target.get("user", BOT_USER) != BOT_USER:
        return _error("cant_update_message")
    problem = _message_error(args)
    if problem:
        return _error(problem)
    target["text"] = args.get("text", target["text"])
    target["blocks"] = args.get("blocks", target["blocks"])
    target["edited"] = True
    return JSONResponse(
        {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": target["text"],
            "message": {"type": "message", "user": BOT_USER, "text": target["text"], "ts": ts},
        }
    )


def _message_error(args: dict[str, Any]) -> str | None:
    text, blocks = args.get("text"), args.get("blocks")
    if not text and not blocks:
        return "no_text"
    if text is not None and len(str(text)) > MAX_TEXT:
        return "msg_too_long"
    if blocks is not None:
        return _blocks_error(blocks)
    return None


HANDLERS: dict[str, Callable[[SlackState, dict[str, Any]], JSONResponse]] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.update": _update,
}
