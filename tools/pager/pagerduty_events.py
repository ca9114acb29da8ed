"""PagerDuty Events API v2 through the `pagerduty` SDK: trigger and resolve by dedup key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pagerduty

from tools.pager.pacing import KeyPacer
from tools.pager.pagerduty_client import (
    SUMMARY_LIMIT,
    bound_retries,
    error_detail,
    tls_verify,
)
from tools.protocols import PageRequest
from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import count_retry
from tools.text import fit

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
        events_per_minute: int = 120,
        rate_limit_retries: int = 3,
        pacer: KeyPacer | None = None,
    ) -> None:
        self._client = CountedEventsClient(
            routing_key, base_url=base_url, verify=tls_verify(ca_bundle)
        )
        bound_retries(self._client, timeout_seconds, retry_base_seconds)
        self._base_url = base_url
        # Paced per routing key only (PagerDuty's limit is per key): a page never waits for
        # another team's, nor for Slack. A 429 is answered here (`RateLimited`), so its
        # Retry-After holds every event of the key, not only this one.
        self._key = routing_key
        self._pacer = pacer or KeyPacer(events_per_minute)
        self._rate_limit_retries = rate_limit_retries
        self._retry_base = retry_base_seconds

    def check(self) -> tuple[bool, str]:
        """Report the configured endpoint; Events v2 has no read-only call to probe."""
        return True, f"events API at {self._base_url}"

    def close(self) -> None:
        """Release the client's pooled connections."""
        self._client.close()

    def trigger(self, request: PageRequest) -> ToolResult:
        """Open (or update) the PagerDuty alert with the request's dedup_key."""
        if request.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {sorted(SEVERITIES)}")
        payload: dict[str, Any] = {
            "summary": fit(request.summary, SUMMARY_LIMIT),
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
            dedup_key = self._paced(call)
        except pagerduty.Error as exc:
            response = getattr(exc, "response", None)
            detail = error_detail(response) if response is not None else str(exc)
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

    def _paced(self, call: Any) -> Any:
        """Send within the key's pace; on a 429 hold the key for its Retry-After, boundedly."""
        for attempt in range(self._rate_limit_retries + 1):
            self._pacer.wait(self._key)
            try:
                return call()
            except RateLimited as exc:
                if attempt >= self._rate_limit_retries:
                    raise
                count_retry(self.name)
                wait = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else self._retry_base * 2**attempt
                )
                self._pacer.block(self._key, wait)
        raise AssertionError("unreachable")  # pragma: no cover


class RateLimited(pagerduty.Error):
    """PagerDuty answered 429: `retry_after` is its Retry-After in seconds, when it said one."""

    def __init__(self, response: Any) -> None:
        super().__init__("PagerDuty answered 429 (rate limit)", response=response)  # type: ignore[no-untyped-call]
        self.retry_after = retry_after_seconds(response.headers.get("Retry-After"))


def retry_after_seconds(value: Any) -> float | None:
    """Return a Retry-After header's seconds (None when absent or not a number)."""
    try:
        return max(float(value), 0.0) if value is not None else None
    except (TypeError, ValueError):
        return None


class CountedEventsClient(pagerduty.EventsApiV2Client):
    """The Events API client, counting each retry: the SDK asks `cooldown_factor` once per retry.

    A 429 is not retried inside the SDK (its backoff ignores Retry-After): `postprocess` raises
    `RateLimited`, and the pager waits as the answer says, pacing the whole routing key.
    """

    def cooldown_factor(self) -> float:
        """Count a retry, then return the SDK's own backoff factor."""
        count_retry(PagerDutyEventsPager.name)
        return float(super().cooldown_factor())

    def postprocess(self, response: Any) -> None:
        """Raise `RateLimited` on a 429, before the SDK's own retry loop sees it."""
        super().postprocess(response)
        if response.status_code == 429:
            raise RateLimited(response)
