"""Failover through the admin API of a LiteLLM-style gateway, over httpx with bounded retries.

The API (emulated by sandbox/gateway.py), authenticated by `Authorization: Bearer <admin token>`:

    GET /routes                    {"routes": {service: route}}
    GET /routes/{service}          {"service", "route", "version"}
    PUT /routes/{service}          body: a route; header Idempotency-Key
                                   {"service", "previous", "route", "changed", "version"}; a key
                                   seen before gets the first answer again, marked by the header
                                   `Idempotent-Replayed: true`, and changes nothing
    GET /routes/{service}/history  {"service", "route", "version",
                                    "changes": [{"idempotency_key", "previous", "route", …}]}

Errors come as {"error": {"message", "type", "param", "code"}}. The gateway's history is the switch
record: `restore` finds the route active before the keyed switch there, and puts it back under the
key `<key>/restore`, so a repeated restore is idempotent at the gateway as well. Timeouts and
connection errors are retried like 408/429/5xx: GETs are safe and every PUT carries its key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from tools.failover.document import (
    change_result,
    check_key,
    failure,
    label,
    route_from_json,
    route_to_json,
)
from tools.protocols import Route
from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import NO_RETRY, RetryPolicy, Verdict, call_with_retry, verdict_for_status
from tools.tls import shared_context

RESTORE_SUFFIX = "/restore"
DEFAULT_RETRY = RetryPolicy(attempts=3, base_seconds=0.5, max_seconds=5.0)


class GatewayError(Exception):
    """A failed call to the gateway, with the status the result should carry."""

    def __init__(
        self, reason: str, status: ToolStatus = ToolStatus.error, http_status: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.http_status = http_status


def _classify(exc: BaseException) -> Verdict:
    if isinstance(exc, httpx.HTTPStatusError):
        return verdict_for_status(exc.response.status_code, exc.response.headers)
    if isinstance(exc, httpx.TransportError):
        return Verdict(True)
    return NO_RETRY


class GatewayFailoverBackend:
    """Read and switch service routes through a gateway's admin API."""

    name = "gateway_failover"

    def __init__(
        self,
        base_url: str,
        admin_token: str,
        *,
        timeout_seconds: float = 5.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._retry = retry
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self._base_url,
            headers={"Authorization": f"Bearer {admin_token}", "Accept": "application/json"},
            timeout=timeout_seconds,
            verify=shared_context(),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def check(self) -> tuple[bool, str]:
        """Confirm that the gateway accepts the admin token and lists its routes."""
        try:
            body, _ = self._call("GET", "/routes")
        except GatewayError as exc:
            return False, exc.reason
        routes = body.get("routes") if isinstance(body, dict) else None
        if not isinstance(routes, dict):
            return False, "gateway answered GET /routes with a malformed body"
        return True, f"gateway at {self._base_url} lists {len(routes)} route(s)"

    def current(self, service: str) -> ToolResult:
        """Return the service's active route."""
        asked = {"action": "current", "service": service, "gateway": self._base_url}
        watch = Stopwatch()
        try:
            body, _ = self._call("GET", _path(service))
            route = _route_in(body, "route")
        except GatewayError as exc:
            return self._failed(asked, watch, exc)
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            summary=f"{service} routes to {label(route)}",
            asked=asked,
            evidence={
                "service": service,
                "route": route_to_json(route),
                "version": body.get("version"),
            },
            latency_ms=watch.ms,
        )

    def switch(self, service: str, to: Route, *, idempotency_key: str) -> ToolResult:
        """PUT the route under this key (the gateway applies a key once); read it back."""
        check_key(idempotency_key)
        asked = {
            "action": "switch",
            "service": service,
            "to": route_to_json(to),
            "idempotency_key": idempotency_key,
            "gateway": self._base_url,
        }
        watch = Stopwatch()
        try:
            body, headers = self._call(
                "PUT", _path(service), body=route_to_json(to), key=idempotency_key
            )
            previous, new = _route_in(body, "previous"), _route_in(body, "route")
        except GatewayError as exc:
            return self._failed(asked, watch, exc)
        replayed = headers.get("idempotent-replayed", "").lower() == "true"
        current, note = self._read_back(service)
        return change_result(
            self.name,
            asked,
            watch,
            service=service,
            previous=previous,
            new=new,
            current=current,
            changed=body.get("changed") is True and not replayed,
            repeated=replayed,
            version=body.get("version"),
            note=note,
        )

    def restore(self, service: str, *, idempotency_key: str) -> ToolResult:
        """Put back the route the gateway's history shows before the switch with this key."""
        check_key(idempotency_key)
        asked = {
            "action": "restore",
            "service": service,
            "idempotency_key": idempotency_key,
            "gateway": self._base_url,
        }
        watch = Stopwatch()
        restore_key = idempotency_key + RESTORE_SUFFIX
        try:
            history, _ = self._call("GET", _path(service) + "/history")
            current = _route_in(history, "route")
            changes = history.get("changes")
            if not isinstance(changes, list):
                raise GatewayError("gateway answered with a malformed body: no 'changes' list")
            keyed = [c for c in changes if isinstance(c, dict)]
            switch = next(
                (c for c in reversed(keyed) if c.get("idempotency_key") == idempotency_key), None
            )
            if switch is None:
                reason = f"no switch of {service} recorded with key {idempotency_key!r}"
                return failure(self.name, asked, watch, reason, ToolStatus.error)
            before, switched_to = _route_in(switch, "previous"), _route_in(switch, "route")
            undone = any(c.get("idempotency_key") == restore_key for c in keyed)
            if undone or current == before:
                return change_result(
                    self.name,
                    asked,
                    watch,
                    service=service,
                    previous=switched_to,
                    new=before,
                    current=current,
                    changed=False,
                    repeated=undone,
                    version=history.get("version"),
                )
            if current != switched_to:
                reason = (
                    f"{service} routes to {label(current)} since the switch to "
                    f"{label(switched_to)}; not overwriting that change"
                )
                return failure(self.name, asked, watch, reason, ToolStatus.error)
            body, _ = self._call("PUT", _path(service), body=route_to_json(before), key=restore_key)
        except GatewayError as exc:
            return self._failed(asked, watch, exc)
        after, note = self._read_back(service)
        return change_result(
            self.name,
            asked,
            watch,
            service=service,
            previous=switched_to,
            new=before,
            current=after,
            changed=body.get("changed") is True,
            repeated=False,
            version=body.get("version"),
            note=note,
        )

    def _read_back(self, service: str) -> tuple[Route | None, str | None]:
        # The PUT was answered; a failed read-back leaves it unconfirmed, not failed.
        try:
            body, _ = self._call("GET", _path(service))
            return _route_in(body, "route"), None
        except GatewayError as exc:
            return None, f"read-back failed: {exc.reason}"

    def _call(
        self, method: str, path: str, *, body: Any = None, key: str | None = None
    ) -> tuple[Any, httpx.Headers]:
        headers = {"Idempotency-Key": key} if key else None

        def attempt() -> httpx.Response:
            response = self._client.request(method, path, json=body, headers=headers)
            response.raise_for_status()
            return response

        try:
            response = call_with_retry(
                attempt,
                classify=_classify,
                policy=self._retry,
                sleep=self._sleep,
                system=self.name,
            )
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            reason = f"gateway answered HTTP {code} to {method} {path}: {_message(exc.response)}"
            raise GatewayError(reason, http_status=code) from exc
        except httpx.TimeoutException as exc:
            reason = f"gateway did not answer {method} {path} within {self._timeout:g}s"
            raise GatewayError(reason, ToolStatus.down) from exc
        except httpx.HTTPError as exc:
            raise GatewayError(f"gateway unreachable: {exc}", ToolStatus.down) from exc
        try:
            answer = response.json()
        except ValueError as exc:
            raise GatewayError(f"gateway answered with a malformed body: {exc}") from exc
        if not isinstance(answer, dict):
            raise GatewayError("gateway answered with a malformed body: not a JSON object")
        return answer, response.headers

    def _failed(self, asked: dict[str, Any], watch: Stopwatch, exc: GatewayError) -> ToolResult:
        result = failure(self.name, asked, watch, exc.reason, exc.status)
        if exc.http_status is not None:
            result.evidence["http_status"] = exc.http_status
        return result


def _path(service: str) -> str:
    return "/routes/" + quote(service, safe="")


def _route_in(body: Any, name: str) -> Route:
    try:
        return route_from_json(body.get(name) if isinstance(body, dict) else None)
    except ValueError as exc:
        raise GatewayError(f"gateway answered with a malformed body: '{name}': {exc}") from exc


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:300]
    return str(body)[:300]
