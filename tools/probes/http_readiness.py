"""Vector DB health over plain HTTP: a readiness URL, its status and latency against a budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tools.probes.attempts import DEFAULT_POLICY, Attempts, ProbeReport, short
from tools.result import ToolResult, ToolStatus
from tools.retry import (
    NO_RETRY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    Verdict,
    call_with_retry,
    verdict_for_status,
)
from tools.tls import shared_context


class HttpReadinessProbe:
    """GET a vector DB's readiness URL: expected status, optional JSON field, latency budget.

    `json_field` is a dotted path into the JSON answer; with `json_value` None only its presence
    is checked.
    """

    name = "vector_db_http"

    def __init__(
        self,
        url: str,
        *,
        expect_status: int = 200,
        json_field: str | None = None,
        json_value: Any = None,
        headers: dict[str, str] | None = None,
        budget_ms: float = 300.0,
        timeout_seconds: float = 5.0,
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.expect_status = expect_status
        self.json_field = json_field
        self.json_value = json_value
        self.budget_ms = budget_ms
        self._http = httpx.Client(headers=headers, timeout=timeout_seconds, verify=shared_context())
        self._policy = policy
        self._sleep = sleep

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def check(self) -> tuple[bool, str]:
        """GET the URL once, without retries."""
        try:
            response = self._http.get(self.url)
        except httpx.HTTPError as exc:
            return False, f"unreachable: {type(exc).__name__} {exc}"
        if response.status_code != self.expect_status:
            return False, f"HTTP {response.status_code}, expected {self.expect_status}"
        return True, f"{self.url} answers HTTP {response.status_code}"

    def probe(self) -> ToolResult:
        """GET the URL with bounded retries and judge status, JSON field and latency."""
        report = ProbeReport(
            self.name,
            url=self.url,
            expect_status=self.expect_status,
            json_field=self.json_field,
            json_value=self.json_value,
            budget_ms=self.budget_ms,
        )
        evidence, finish = report.evidence, report.finish

        attempts = Attempts(self._get)
        try:
            response = call_with_retry(
                attempts,
                classify=_classify_http,
                policy=self._policy,
                sleep=self._sleep,
                system=self.name,
            )
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            reason = f"HTTP {code} after {attempts.count} attempt(s): {short(exc.response.text)}"
            evidence.update({"http_status": code, "attempts": attempts.count})
            status = ToolStatus.degraded if code == 429 else ToolStatus.down
            return finish(status, reason, reason)
        except httpx.HTTPError as exc:
            reason = f"unreachable after {attempts.count} attempt(s): {type(exc).__name__} {exc}"
            evidence["attempts"] = attempts.count
            return finish(ToolStatus.down, reason, reason)
        evidence.update(
            {
                "http_status": response.status_code,
                "attempts": attempts.count,
                "ms": attempts.last_ms,
            }
        )
        if response.status_code != self.expect_status:
            reason = f"HTTP {response.status_code}, expected {self.expect_status}"
            return finish(ToolStatus.error, reason, short(response.text))
        problems = []
        if self.json_field is not None:
            try:
                found = _field(response.json(), self.json_field)
            except (ValueError, KeyError, TypeError) as exc:
                reason = f"malformed answer: no JSON field `{self.json_field}` ({short(exc)})"
                return finish(ToolStatus.error, reason, reason)
            evidence["json_value"] = found
            if self.json_value is not None and found != self.json_value:
                problems.append(f"`{self.json_field}` is {found!r}, expected {self.json_value!r}")
        if attempts.last_ms > self.budget_ms:
            problems.append(
                f"answered in {attempts.last_ms} ms, over the {self.budget_ms} ms budget"
            )
        if problems:
            return finish(ToolStatus.degraded, "; ".join(problems))
        return finish(ToolStatus.ok, f"ready: HTTP {response.status_code} in {attempts.last_ms} ms")

    def _get(self) -> httpx.Response:
        response = self._http.get(self.url)
        if (
            response.status_code != self.expect_status
            and response.status_code in RETRYABLE_STATUSES
        ):
            raise httpx.HTTPStatusError("retryable", request=response.request, response=response)
        return response


def _classify_http(exc: BaseException) -> Verdict:
    if isinstance(exc, httpx.HTTPStatusError):
        return verdict_for_status(exc.response.status_code, exc.response.headers)
    if isinstance(exc, httpx.TransportError):
        return Verdict(True)
    return NO_RETRY


def _field(body: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(body, dict):
            raise TypeError(f"`{key}` is not inside an object")
        body = body[key]
    return body
