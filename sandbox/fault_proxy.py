"""A fault-injecting HTTP proxy in front of another emulator (moto has no faults of its own).

Requests pass through to the upstream unchanged unless a fault is queued: then the proxy answers
with the queued status, headers and body instead (AWS throttling, a 5xx, a garbled answer), the
way the real service would, so the SDK's own retry behaviour is what gets exercised.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response

from sandbox.server import Upstream

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True)
class ProxyFault:
    """One answer to give instead of forwarding."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FaultProxyState:
    """The queued faults, and how many requests were forwarded or faulted."""

    upstream: str
    faults: deque[ProxyFault] = field(default_factory=deque)
    forwarded: int = 0
    faulted: int = 0
    delay_seconds: float = 0.0
    """Wait this long before answering each request (a slow upstream)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(
        self, status: int, body: bytes, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next `times` requests with this status and body."""
        with self.lock:
            self.faults.extend(ProxyFault(status, body, headers or {}) for _ in range(times))


def create_fault_proxy(state: FaultProxyState) -> FastAPI:
    """Build the proxy's ASGI app."""
    app = FastAPI(title="fault-injecting proxy", openapi_url=None)
    upstream = Upstream()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    async def forward(path: str, request: Request) -> Response:
        if state.delay_seconds:
            await asyncio.sleep(state.delay_seconds)
        with state.lock:
            fault = state.faults.popleft() if state.faults else None
            if fault is not None:
                state.faulted += 1
            else:
                state.forwarded += 1
        if fault is not None:
            return Response(
                fault.body,
                status_code=fault.status,
                headers=fault.headers,
                media_type="application/x-amz-json-1.1",
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        answer = await upstream.client().request(
            request.method,
            f"{state.upstream}/{path}",
            params=request.query_params,
            content=await request.body(),
            headers=headers,
        )
        out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=out)

    return app
