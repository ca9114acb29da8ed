"""PagerDuty Events API v2 through the official `pagerduty` SDK."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pagerduty

from tools.protocols import PageRequest
from tools.result import Stopwatch, ToolResult, ToolStatus

SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
SEVERITIES = frozenset({"critical", "error", "warning", "info"})


class PagerDutyEventsPager:
    """Trigger and resolve PagerDuty alerts, retrying 429/5xx a bounded number of times."""

    name = "pagerduty_events"

    def __init__(
        self,
        routing_key: str,
        *,
        base_url: str = "https://events.pagerduty.com",
        ca_bundle: Path | None = None,
        timeout_seconds: float = 10.0,
        retry_base_seconds: float = 0.5,
    ) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            verify = ssl.create_default_context(cafile=str(ca_bundle))
        self._client = pagerduty.EventsApiV2Client(routing_key, base_url=base_url, verify=verify)
        self._client.timeout = timeout_seconds  # type: ignore[assignment]
        # The SDK retries 429 forever by default; an incident cannot wait forever.
        self._client.retry = {429: 3, 500: 2, 502: 2, 503: 3, 504: 3}
        self._client.max_http_attempts = 4
        self._client.max_network_attempts = 2
        self._client.sleep_timer = retry_base_seconds
        self._client.sleep_timer_base = 2
        self._base_url = base_url

    def check(self) -> tuple[bool, str]:
        """Report the configured endpoint; Events v2 has no read-only call to probe."""
        return True, f"events API at {self._base_url}"

    def trigger(self, request: PageRequest) -> ToolResult:
        """Open (or update) the PagerDuty alert with the request's dedup_key."""
        if request.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {sorted(SEVERITIES)}")
        payload: dict[str, Any] = {
            "summary": request.summary[:SUMMARY_LIMIT],
            "source": request.source,
            "severity": request.severity,
            "custom_details": request.custom_details,
        }
        if request.component:
            payload["component"] = request.component
        if request.group:
            payload["group"] = request.group
        asked = {"event_action": "trigger", "dedup_key": request.dedup_key, "payload": payload}
        return self._send(
            asked,
            lambda: self._client.send_event(
                "trigger",
                dedup_key=request.dedup_key[:DEDUP_KEY_LIMIT],
                payload=payload,
                links=request.links,
            ),
        )

    def resolve(self, dedup_key: str) -> ToolResult:
        """Resolve the PagerDuty alert with this dedup_key."""
        asked = {"event_action": "resolve", "dedup_key": dedup_key}
        return self._send(asked, lambda: self._client.resolve(dedup_key[:DEDUP_KEY_LIMIT]))

    def _send(self, asked: dict[str, Any], call: Any) -> ToolResult:
        watch = Stopwatch()
        try:
            dedup_key = call()
        except pagerduty.Error as exc:
            response = getattr(exc, "response", None)
            detail = _error_detail(response) if response is not None else str(exc)
            status_code = response.status_code if response is not None else None
            return ToolResult(
                tool=self.name,
                status=ToolStatus.error,
                summary=f"PagerDuty refused the {asked['event_action']}"
                + (f" (HTTP {status_code})" if status_code else ""),
                asked=asked,
                evidence={"http_status": status_code},
                latency_ms=watch.ms,
                error=detail[:1000],
            )
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            summary=f"PagerDuty accepted the {asked['event_action']} ({dedup_key})",
            asked=asked,
            evidence={"dedup_key": dedup_key},
            latency_ms=watch.ms,
        )


def _error_detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)
    if isinstance(body, dict):
        errors = body.get("errors") or []
        message = body.get("message", "")
        return "; ".join([str(message), *map(str, errors)]).strip("; ")
    return str(body)
