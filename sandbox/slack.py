"""Slack Web API emulator: auth.test, chat.postMessage (with metadata), chat.update,
conversations.history and conversations.replies (GET, `include_all_metadata`),
usergroups.users.list.

It also plays the Slack user: `click` sends a button's interaction to the service exactly as
Slack does (form-encoded `payload`, signed with the app's signing secret).

Contract (CONTRACTS.md): POST <base>/api/<method>, JSON or form body, bearer token xoxb-…;
application errors are HTTP 200 with {"ok": false, "error": …}; about one message per second per
channel with short bursts, over it HTTP 429 with Retry-After. chat.update edits a message the bot
posted (`message_not_found` for an unknown ts, `cant_update_message` for someone else's).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

MAX_TEXT = 40_000
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_BUTTON_TEXT = 75
BUTTON_STYLES = ("primary", "danger")
MAX_BLOCKS = 50
HEADER_TEXT = 150
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
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
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    """User group id (S…) → its members' user ids, for usergroups.users.list."""
    answer_delay_seconds: float = 0.0
    """Each call is carried out at once and answered this much later (`delay_seconds`: before)."""
    throttled_until: float = 0.0
    throttle_retry_after: int = 1

    def throttle(self, seconds: float, retry_after: int = 1) -> None:
        """Answer every call with 429 and this Retry-After for the next `seconds` (a storm)."""
        with self.lock:
            self.throttled_until = self.clock() + seconds
            self.throttle_retry_after = retry_after

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

    def message(self, ts: str) -> dict[str, Any] | None:
        """Return the message posted with this ts (as last edited)."""
        with self.lock:
            found = next((m for m in self.messages if m["ts"] == ts), None)
            return dict(found) if found is not None else None

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
        if block["type"] == "actions" and not _elements_ok(block.get("elements")):
            return "invalid_blocks"
        if _layout_error(block):
            return "invalid_blocks"
        text = block.get("text")
        limit = HEADER_TEXT if block["type"] == "header" else SECTION_TEXT
        if text is not None:
            if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
                return "invalid_blocks"
            if len(str(text.get("text", ""))) > limit:
                return "invalid_blocks"
    return None


def _layout_error(block: dict[str, Any]) -> bool:
    """Check what Slack checks of headers, section fields and context elements."""
    kind = block["type"]
    if kind == "header" and (block.get("text") or {}).get("type") != "plain_text":
        return True
    fields = block.get("fields")
    if kind == "section" and fields is not None:
        if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
            return True
        if any(not _text_ok(f, FIELD_TEXT) for f in fields):
            return True
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            return True
        if any(not _text_ok(e, SECTION_TEXT) for e in elements if e.get("type") != "image"):
            return True
    return False


def _text_ok(value: Any, limit: int) -> bool:
    if not isinstance(value, dict) or value.get("type") not in ("plain_text", "mrkdwn"):
        return False
    return 0 < len(str(value.get("text", ""))) <= limit


def _elements_ok(elements: Any) -> bool:
    """Check an actions block's buttons as Slack does (ids, values, labels, styles)."""
    if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
        return False
    for element in elements:
        if not isinstance(element, dict) or element.get("type") != "button":
            return False
        text = element.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            return False
        if not 0 < len(str(text.get("text", ""))) <= MAX_BUTTON_TEXT:
            return False
        if len(str(element.get("action_id", ""))) > MAX_ACTION_ID:
            return False
        if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
            return False
        if "style" in element and element["style"] not in BUTTON_STYLES:
            return False
    return True


def create_slack_app(state: SlackState) -> FastAPI:
    """Build the emulator's ASGI app around its state."""
    app = FastAPI(title="Slack Web API emulator", openapi_url=None)

    @app.api_route("/api/{method}", methods=["GET", "POST"])
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
            if fault is None and state.clock() < state.throttled_until:
                fault = SlackFault(429, state.throttle_retry_after)
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
            answer = handler(state, args)
        if state.answer_delay_seconds > 0:
            # Done, but the answer is slow: a caller that dies meanwhile never learns of it.
            await asyncio.sleep(state.answer_delay_seconds)
        return answer

    @app.get("/_sandbox/messages")
    def received() -> dict[str, Any]:
        return state.snapshot()

    return app


async def _arguments(request: Request) -> dict[str, Any] | None:
    if request.method == "GET":  # the read methods (conversations.history) take query parameters
        return dict(request.query_params)
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
    metadata = args.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            return _error("invalid_metadata_format")
    if metadata is not None and (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        return _error("invalid_metadata_format")
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
        "metadata": metadata,
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


def _history(state: SlackState, args: dict[str, Any]) -> JSONResponse:
    """conversations.history: the channel's top-level messages since `oldest`, newest first."""
    return _read(state, args, lambda m: not m.get("thread_ts") or m["thread_ts"] == m["ts"])


def _replies(state: SlackState, args: dict[str, Any]) -> JSONResponse:
    """conversations.replies: the thread of `ts` (its parent first) since `oldest`."""
    thread = args.get("ts")
    if not thread:
        return _error("invalid_arguments")
    if not any(m["ts"] == thread and m["channel"] == args.get("channel") for m in state.messages):
        return _error("thread_not_found")
    found = _read(state, args, lambda m: thread in (m["ts"], m.get("thread_ts")), newest=False)
    return found


def _read(
    state: SlackState,
    args: dict[str, Any],
    keep: Callable[[dict[str, Any]], bool],
    *,
    newest: bool = True,
) -> JSONResponse:
    channel = args.get("channel")
    if not channel or channel not in state.channels:
        return _error("channel_not_found")
    try:
        oldest = float(args.get("oldest") or 0)
        limit = min(int(args.get("limit") or 100), 1000)
    except ValueError:
        return _error("invalid_arguments")
    with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
    found = [
        m
        for m in state.messages
        if m["channel"] == channel and float(m["ts"]) >= oldest and keep(m)
    ]
    found = list(reversed(found)) if newest else found
    messages = [
        {
            "type": "message",
            "user": m.get("user", BOT_USER),
            "text": m["text"],
            "ts": m["ts"],
            **({"thread_ts": m["thread_ts"]} if m.get("thread_ts") else {}),
            **({"metadata": m["metadata"]} if with_metadata and m.get("metadata") else {}),
        }
        for m in found[:limit]
    ]
    return JSONResponse({"ok": True, "messages": messages, "has_more": len(found) > limit})


def _message_error(args: dict[str, Any]) -> str | None:
    text, blocks = args.get("text"), args.get("blocks")
    if not text and not blocks:
        return "no_text"
    if text is not None and len(str(text)) > MAX_TEXT:
        return "msg_too_long"
    if blocks is not None:
        return _blocks_error(blocks)
    return None


def _usergroup_users(state: SlackState, args: dict[str, Any]) -> JSONResponse:
    group = args.get("usergroup")
    if not group:
        return _error("invalid_arguments")
    if group not in state.usergroups:
        return _error("no_such_subteam")
    return JSONResponse({"ok": True, "users": list(state.usergroups[str(group)])})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return Slack's X-Slack-Signature for a body sent at `timestamp`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def interaction(
    message: dict[str, Any], action_id: str, user_id: str, *, team_id: str = "T0SANDBOX"
) -> dict[str, Any]:
    """Return the block_actions payload Slack sends when a user clicks a button of a message."""
    blocks = message.get("blocks") or []
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    button = next(
        (
            element
            for block in blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("action_id") == action_id
        ),
        None,
    )
    if button is None:
        raise LookupError(f"message {message.get('ts')} has no button {action_id!r}")
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
        "api_app_id": "A0REMEDIATOR",
        "team": {"id": team_id, "domain": "sandbox"},
        "channel": {"id": message["channel"], "name": "incidents"},
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": message["channel"],
            "is_ephemeral": False,
        },
        "message": {"type": "message", "ts": message["ts"], "text": message.get("text", "")},
        "response_url": "https://hooks.slack.invalid/actions/T0SANDBOX/1/x",
        "trigger_id": "1.2.sandbox",
        "actions": [
            {
                "action_id": action_id,
                "block_id": next(
                    (b.get("block_id", "") for b in blocks if b["type"] == "actions"),
                    "",
                ),
                "value": button.get("value", ""),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def click(
    url: str,
    secret: str,
    payload: dict[str, Any],
    *,
    timestamp: int | None = None,
    retry_num: int | None = None,
) -> httpx.Response:
    """POST an interaction to the service as Slack does: form-encoded `payload`, signed."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    sent_at = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(sent_at),
        "X-Slack-Signature": sign(secret, sent_at, body),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return httpx.post(url, content=body, headers=headers, timeout=10)


HANDLERS: dict[str, Callable[[SlackState, dict[str, Any]], JSONResponse]] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "conversations.history": _history,
    "conversations.replies": _replies,
    "usergroups.users.list": _usergroup_users,
}
