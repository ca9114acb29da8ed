"""Cloud Logging emulator of `POST /v2/entries:list`: stores entries and applies filters for real.

Contract (CONTRACTS.md): the request carries `resourceNames` (required), `filter`, `orderBy`
(`timestamp asc|desc`), `pageSize` (≤ 1000, default 50) and `pageToken`; unknown fields are refused
as protobuf JSON refuses them. The answer is `{"entries":[…],"nextPageToken"?}`; errors come in
Google's shape `{"error":{"code","message","status"}}`. The filter language is implemented for the
subset the adapter emits (AND, OR, NOT, parentheses, `= != < <= > >= : =~ !~`, field paths with
quoted segments, severity ordering, RFC 3339 timestamps); anything else is a 400 naming the part.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import operator
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

REQUEST_FIELDS = {"resourceNames", "filter", "orderBy", "pageSize", "pageToken"}
ORDERS = {"timestamp asc": False, "timestamp desc": True}
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
MAX_FILTER_CHARS = 20_000
# LogSeverity: DEFAULT 0, DEBUG 100, … EMERGENCY 800.
SEVERITY_NAMES = "DEFAULT DEBUG INFO NOTICE WARNING ERROR CRITICAL ALERT EMERGENCY"
SEVERITIES = {name: 100 * rank for rank, name in enumerate(SEVERITY_NAMES.split())}
ROOT_FIELDS = frozenset(
    "logName resource timestamp receiveTimestamp severity insertId httpRequest labels"
    " textPayload jsonPayload trace spanId".split()
)
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
ORDERINGS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op><=|>=|!=|=~|!~|[=<>:])'
    r"|(?P<paren>[()])|(?P<dot>\.)|(?P<word>[A-Za-z0-9_*\-]+))"
)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


class FilterError(ValueError):
    """A filter outside the supported subset, or malformed; the message names the part."""


@dataclass(frozen=True)
class Comparison:
    """One `path op value` restriction."""

    path: tuple[str, ...]
    op: str
    value: str


@dataclass(frozen=True)
class BoolOp:
    """AND / OR over sub-expressions, or NOT over one."""

    kind: str
    items: tuple[Node, ...]


Node = Comparison | BoolOp


def parse_filter(text: str) -> Node | None:
    """Parse a filter of the supported subset; raise FilterError naming what is unsupported."""
    tokens = _tokenize(text)
    if not tokens:
        return None
    parser = _Parser(tokens)
    node = parser.parse_or()
    if (extra := parser.peek()) is not None:
        raise FilterError(f"unexpected {extra[1]!r} after a complete expression")
    return node


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            # Kept as a token so that a construct recognised earlier is named first.
            tokens.append(("bad", text[position:].lstrip()[0]))
            break
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._at = 0

    def peek(self) -> tuple[str, str] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("filter ends unexpectedly")
        if token[0] == "bad":
            raise FilterError(f"unsupported character {token[1]!r}")
        self._at += 1
        return token

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.peek() == ("word", "OR"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_not()]
        while (token := self.peek()) is not None and token not in (("word", "OR"), ("paren", ")")):
            if token[0] == "bad":
                self.take()
            if token != ("word", "AND"):
                raise FilterError(f"implicit AND before {token[1]!r} is not supported; use AND")
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def parse_not(self) -> Node:
        token = self.take()
        if token == ("word", "NOT"):
            return BoolOp("NOT", (self.parse_not(),))
        if token == ("paren", "("):
            node = self.parse_or()
            if self.peek() != ("paren", ")"):
                raise FilterError("missing ')'")
            self.take()
            return node
        self._at -= 1
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        path = [self._segment()]
        while self.peek() == ("dot", "."):
            self.take()
            path.append(self._segment())
        token = self.peek()
        if token == ("paren", "("):
            raise FilterError(f"function {path[-1]}() is not supported")
        if token is None or token[0] != "op":
            raise FilterError(f"global restriction {'.'.join(path)!r} is not supported")
        self.take()
        if path[0] not in ROOT_FIELDS:
            raise FilterError(f"unknown field {path[0]!r}")
        kind, value = self.take()
        if kind == "paren":
            raise FilterError("value lists in parentheses are not supported")
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        elif kind == "word":
            while self.peek() == ("dot", ".") and self._at + 1 < len(self._tokens):
                self.take()
                value += "." + self.take()[1]
        else:
            raise FilterError(f"expected a value after {token[1]!r}, got {value!r}")
        comparison = Comparison(tuple(path), token[1], value)
        _validate(comparison)
        return comparison

    def _segment(self) -> str:
        kind, text = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "word" and text.startswith("-"):
            raise FilterError("'-' negation is not supported; use NOT")
        if kind != "word" or text in ("AND", "OR", "NOT"):
            raise FilterError(f"expected a field name, got {text!r}")
        return text


def _validate(comparison: Comparison) -> None:
    root = comparison.path[0]
    if root == "severity" and comparison.value.upper() not in SEVERITIES:
        raise FilterError(f"unknown severity {comparison.value!r}")
    if root in ("timestamp", "receiveTimestamp") and not RFC3339.match(comparison.value):
        raise FilterError(f"timestamp {comparison.value!r} is not RFC 3339")
    if comparison.op in ("=~", "!~"):
        try:
            re.compile(comparison.value)
        except re.error as exc:
            raise FilterError(f"invalid regular expression {comparison.value!r}: {exc}") from exc


def matches(node: Node | None, entry: dict[str, Any]) -> bool:
    """Return whether a log entry (in API JSON form) satisfies the parsed filter."""
    if node is None:
        return True
    if isinstance(node, BoolOp):
        if node.kind == "NOT":
            return not matches(node.items[0], entry)
        results = (matches(item, entry) for item in node.items)
        return all(results) if node.kind == "AND" else any(results)
    actual: Any = entry
    for segment in node.path:
        if not isinstance(actual, dict) or segment not in actual:
            actual = None if node.path != ("severity",) else "DEFAULT"
            break
        actual = actual[segment]
    if actual is None or isinstance(actual, dict | list):
        return node.op == ":" and node.value == "*" and actual is not None
    return _compare(node, actual)


def _compare(node: Comparison, actual: Any) -> bool:
    if node.op == ":":
        return node.value == "*" or node.value.lower() in str(actual).lower()
    if node.op in ("=~", "!~"):
        return bool(re.search(node.value, str(actual))) == (node.op == "=~")
    left: Any
    right: Any
    if node.path == ("severity",):
        left, right = SEVERITIES.get(str(actual).upper(), 0), SEVERITIES[node.value.upper()]
    elif node.path[0] in ("timestamp", "receiveTimestamp"):
        left, right = _instant(str(actual)), _instant(node.value)
    elif isinstance(actual, int | float) and not isinstance(actual, bool):
        try:
            left, right = float(actual), float(node.value)
        except ValueError:
            return False
    else:
        left, right = str(actual).lower(), node.value.lower()
    return bool(ORDERINGS[node.op](left, right))


def _instant(text: str) -> datetime:
    # Python parses at most microseconds; Cloud Logging allows nanoseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed)


@dataclass
class Fault:
    """An answer the emulator gives instead of processing the next request."""

    status: int
    retry_after: int | None = None
    body: bytes | None = None


@dataclass
class GcpLoggingState:
    """Stored entries, received requests, and the faults queued for the next requests."""

    project: str = "sandbox-project"
    entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    delay_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_entry(
        self,
        *,
        timestamp: datetime,
        log_name: str = "app",
        severity: str = "DEFAULT",
        text_payload: str | None = None,
        json_payload: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
        resource: dict[str, Any] | None = None,
        http_request: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store one entry in API form; a short log name is placed under the state's project."""
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity}")
        if "/" not in log_name:
            log_name = f"projects/{self.project}/logs/{log_name}"
        moment = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        entry: dict[str, Any] = {
            "logName": log_name,
            "timestamp": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "severity": severity,
            "resource": resource or {"type": "global", "labels": {}},
        }
        if text_payload is not None:
            entry["textPayload"] = text_payload
        if json_payload is not None:
            entry["jsonPayload"] = json_payload
        for key, value in (("labels", labels), ("httpRequest", http_request)):
            if value:
                entry[key] = value
        with self.lock:
            entry["insertId"] = f"{len(self.entries) + 1:08d}"
            self.entries.append(entry)
        return entry

    def fail_next(self, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` requests with this HTTP status in Google's error shape."""
        with self.lock:
            self.faults.extend(Fault(status, retry_after) for _ in range(times))

    def reset(self) -> None:
        """Forget entries, requests, faults and delay (one emulator can serve many tests)."""
        with self.lock:
            self.entries.clear()
            self.requests.clear()
            self.faults.clear()
            self.delay_seconds = 0.0

    def malformed_next(self, body: bytes = b"<html>upstream proxy error</html>") -> None:
        """Answer the next request with HTTP 200 and this body instead of entries."""
        with self.lock:
            self.faults.append(Fault(200, body=body))


def google_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Return an error in the shape Google APIs use."""
    error = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def create_gcp_logging_app(state: GcpLoggingState) -> FastAPI:
    """Build the emulator's ASGI app around its state."""
    app = FastAPI(title="Cloud Logging entries:list emulator", openapi_url=None)

    @app.post("/v2/entries:list")
    async def list_entries(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        with state.lock:
            state.requests.append(
                body if isinstance(body, dict) else {"invalid": raw.decode(errors="replace")}
            )
            fault = state.faults.popleft() if state.faults else None
            entries = list(state.entries)
            delay = state.delay_seconds
        if delay:
            await asyncio.sleep(delay)
        if fault is not None:
            if fault.body is not None:
                return Response(fault.body, status_code=fault.status, media_type="application/json")
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
            return google_error(fault.status, "injected fault", headers)
        if body is None:
            return google_error(400, "Invalid JSON payload received.")
        return _answer(state, body, entries)

    return app


def _answer(state: GcpLoggingState, body: Any, entries: list[dict[str, Any]]) -> JSONResponse:
    if not isinstance(body, dict):
        return google_error(400, "Invalid JSON payload received. Expected an object.")
    unknown = sorted(set(body) - REQUEST_FIELDS)
    if unknown:
        return google_error(
            400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
        )
    names = body.get("resourceNames")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return google_error(400, "resourceNames is required and must list at least one resource")
    projects = set()
    for name in names:
        match = re.fullmatch(r"projects/([a-z0-9:.\-]+)", name)
        if match is None:
            return google_error(400, f"resource name {name!r} is not supported; use projects/P")
        if match.group(1) != state.project:
            return google_error(403, f"The caller does not have permission on {name}")
        projects.add(match.group(1))
    order = body.get("orderBy", "timestamp asc")
    if order not in ORDERS:
        return google_error(400, f"orderBy {order!r} is invalid; use 'timestamp asc|desc'")
    size = body.get("pageSize", 0)
    if not isinstance(size, int) or not 0 <= size <= MAX_PAGE_SIZE:
        return google_error(400, f"pageSize {size!r} must be between 0 and {MAX_PAGE_SIZE}")
    text = body.get("filter", "")
    if not isinstance(text, str) or len(text) > MAX_FILTER_CHARS:
        return google_error(400, f"filter must be a string of at most {MAX_FILTER_CHARS} chars")
    try:
        node = parse_filter(text)
    except FilterError as exc:
        return google_error(400, f"Unsupported or invalid filter: {exc}")
    query_key = hashlib.sha256(json.dumps([names, text, order]).encode()).hexdigest()[:16]
    offset = _offset(body.get("pageToken"), query_key)
    if offset is None:
        return google_error(400, "page_token is invalid or belongs to another query")
    found = [e for e in entries if e["logName"].split("/")[1] in projects and matches(node, e)]
    found.sort(key=lambda e: (_instant(e["timestamp"]), e["insertId"]), reverse=ORDERS[order])
    page = found[offset : offset + (size or DEFAULT_PAGE_SIZE)]
    answer: dict[str, Any] = {"entries": page} if page else {}
    if offset + len(page) < len(found):
        token = json.dumps({"offset": offset + len(page), "query": query_key})
        answer["nextPageToken"] = base64.urlsafe_b64encode(token.encode()).decode()
    return JSONResponse(answer)


def _offset(token: Any, query_key: str) -> int | None:
    if token in (None, ""):
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(decoded, dict) or decoded.get("query") != query_key:
        return None
    offset = decoded.get("offset")
    return offset if isinstance(offset, int) and offset >= 0 else None
