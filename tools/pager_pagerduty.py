"""PagerDuty Events API v2 and REST API v2 (incidents, notes) through the `pagerduty` SDK."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pagerduty

from tools.pager_pagerduty_rest import IncidentListingError, find_incident
from tools.protocols import PageRequest
from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import RetryPolicy, count_retry

SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
URGENCIES = frozenset({"high", "low"})
ERROR_LIMIT = 1000
# UrlError is not a pagerduty.Error: it flags a path the SDK cannot map (e.g. an odd incident id).
REST_FAILURES = (pagerduty.Error, pagerduty.UrlError)


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
        self._client = _CountedEventsClient(
            routing_key, base_url=base_url, verify=_verify(ca_bundle)
        )
        _bound_retries(self._client, timeout_seconds, retry_base_seconds)
        self._base_url = base_url

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


class PagerDutyRestPager:
    """Open PagerDuty incidents and add notes through REST API v2, with bounded retries.

    `lookup_attempts` / `lookup_base_seconds` bound how long `note_for_dedup_key` waits for the
    incident of an Events v2 trigger to appear; `sleep` is that wait (tests inject their own).
    """

    name = "pagerduty_rest"

    def __init__(
        self,
        api_key: str,
        *,
        from_email: str,
        base_url: str = "https://api.pagerduty.com",
        ca_bundle: Path | None = None,
        timeout_seconds: float = 10.0,
        retry_base_seconds: float = 0.5,
        lookup_attempts: int = 4,
        lookup_base_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = _CountedRestClient(
            api_key, default_from=from_email, base_url=base_url, verify=_verify(ca_bundle)
        )
        _bound_retries(self._client, timeout_seconds, retry_base_seconds)
        self._base_url = base_url
        self._lookup_policy = RetryPolicy(
            attempts=max(lookup_attempts, 1), base_seconds=lookup_base_seconds, max_seconds=5.0
        )
        self._sleep = sleep

    def check(self) -> tuple[bool, str]:
        """List the account's abilities: the cheapest call that proves the API key works."""
        try:
            self._client.rget("abilities")
        except REST_FAILURES as exc:
            response = getattr(exc, "response", None)
            reason = _rest_error(response)[0] if response is not None else str(exc)
            return False, f"PagerDuty REST API refused or unreachable: {reason[:300]}"
        return True, f"REST API at {self._base_url}, API key accepted"

    def close(self) -> None:
        """Release the client's pooled connections."""
        self._client.close()

    def create_incident(
        self,
        title: str,
        service_id: str,
        urgency: str,
        incident_key: str,
        details: str,
        escalation_policy_id: str | None = None,
    ) -> ToolResult:
        """Open an incident on a service; an open incident with the same key makes it a 400."""
        if urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {sorted(URGENCIES)}")
        incident: dict[str, Any] = {
            "type": "incident",
            "title": title,
            "service": {"id": service_id, "type": "service_reference"},
            "urgency": urgency,
            "incident_key": incident_key,
            "body": {"type": "incident_body", "details": details},
        }
        asked: dict[str, Any] = {
            "call": "POST /incidents",
            "title": title,
            "service_id": service_id,
            "urgency": urgency,
            "incident_key": incident_key,
        }
        if escalation_policy_id:
            incident["escalation_policy"] = {
                "id": escalation_policy_id,
                "type": "escalation_policy_reference",
            }
            asked["escalation_policy_id"] = escalation_policy_id
        watch = Stopwatch()
        try:
            created = self._client.rpost("incidents", json={"incident": incident})
        except REST_FAILURES as exc:
            return self._failure("the incident", asked, watch, exc)
        evidence = _fields(created, id=str, incident_number=int, html_url=str, status=str)
        if evidence is None:
            return self._unreadable("the incident", asked, watch, created)
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            summary=f"opened PagerDuty incident #{evidence['incident_number']} ({evidence['id']})",
            asked=asked,
            evidence=evidence,
            latency_ms=watch.ms,
        )

    def add_note(self, incident_id: str, content: str) -> ToolResult:
        """Add a note to an incident's timeline."""
        asked = {
            "call": "POST /incidents/{id}/notes",
            "incident_id": incident_id,
            "content": content,
        }
        watch = Stopwatch()
        try:
            note = self._client.rpost(
                f"incidents/{quote(incident_id, safe='')}/notes",
                json={"note": {"content": content}},
            )
        except REST_FAILURES as exc:
            return self._failure("the note", asked, watch, exc)
        evidence = _fields(note, id=str, created_at=str)
        if evidence is None:
            return self._unreadable("the note", asked, watch, note)
        return ToolResult(
            tool=self.name,
            status=ToolStatus.ok,
            summary=f"added note {evidence['id']} to PagerDuty incident {incident_id}",
            asked=asked,
            evidence={**evidence, "incident_id": incident_id},
            latency_ms=watch.ms,
        )

    def note_for_dedup_key(self, dedup_key: str, content: str) -> ToolResult:
        """Add a note to the incident PagerDuty opened for an Events v2 dedup_key.

        No incident listed for the key after the bounded lookups is `no_data`.
        """
        asked = {
            "call": "GET /incidents?incident_key=…, POST /incidents/{id}/notes",
            "dedup_key": dedup_key,
            "content": content,
        }
        watch = Stopwatch()
        try:
            incident, lookups = find_incident(
                self._client, dedup_key, policy=self._lookup_policy, sleep=self._sleep
            )
        except REST_FAILURES as exc:
            return self._failure("the incident lookup", asked, watch, exc)
        except IncidentListingError as exc:
            return self._unreadable("the incident lookup", asked, watch, exc)
        if incident is None:
            return ToolResult(
                tool=self.name,
                status=ToolStatus.no_data,
                summary=f"no PagerDuty incident has incident_key {dedup_key!r} "
                f"after {lookups} lookups; the note was not added",
                asked=asked,
                evidence={"lookups": lookups},
                latency_ms=watch.ms,
            )
        noted = self.add_note(incident["id"], content)
        evidence = {
            **noted.evidence,
            "incident_id": incident["id"],
            "incident_number": incident.get("incident_number"),
            "incident_status": incident.get("status"),
            "html_url": incident.get("html_url"),
            "lookups": lookups,
        }
        return noted.model_copy(
            update={"asked": asked, "evidence": evidence, "latency_ms": watch.ms}
        )

    def _failure(
        self, what: str, asked: dict[str, Any], watch: Stopwatch, exc: Exception
    ) -> ToolResult:
        response = getattr(exc, "response", None)
        if response is None:
            cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ else ""
            summary, error, evidence = "PagerDuty unreachable" + cause, str(exc), {}
        elif response.is_success:
            summary = f"PagerDuty's answer about {what} could not be read"
            error, evidence = str(exc), {"http_status": response.status_code}
        else:
            error, code = _rest_error(response)
            summary = f"PagerDuty did not take {what} (HTTP {response.status_code})"
            evidence = {"http_status": response.status_code, "pagerduty_code": code}
        return ToolResult(
            tool=self.name,
            status=ToolStatus.error,
            summary=summary,
            asked=asked,
            evidence=evidence,
            latency_ms=watch.ms,
            error=error[:ERROR_LIMIT],
        )

    def _unreadable(
        self, what: str, asked: dict[str, Any], watch: Stopwatch, answer: object
    ) -> ToolResult:
        return ToolResult(
            tool=self.name,
            status=ToolStatus.error,
            summary=f"PagerDuty's answer about {what} lacks required fields",
            asked=asked,
            latency_ms=watch.ms,
            error=repr(answer)[:ERROR_LIMIT],
        )


def _verify(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    if ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(ca_bundle))


class _CountedEventsClient(pagerduty.EventsApiV2Client):
    """The Events API client, counting each retry: the SDK asks `cooldown_factor` once per retry."""

    def cooldown_factor(self) -> float:
        """Count a retry, then return the SDK's own backoff factor."""
        count_retry(PagerDutyEventsPager.name)
        return float(super().cooldown_factor())


class _CountedRestClient(pagerduty.RestApiV2Client):
    """The REST API client, counting each retry like `_CountedEventsClient`."""

    def cooldown_factor(self) -> float:
        """Count a retry, then return the SDK's own backoff factor."""
        count_retry(PagerDutyRestPager.name)
        return float(super().cooldown_factor())


def _bound_retries(client: Any, timeout_seconds: float, retry_base_seconds: float) -> None:
    client.timeout = timeout_seconds
    # The SDK retries 429 forever by default; an incident cannot wait forever. Other 4xx are
    # not in the table, so they come back at once (401 raises inside the SDK).
    client.retry = {429: 3, 500: 2, 502: 2, 503: 3, 504: 3}
    client.max_http_attempts = 4
    client.max_network_attempts = 2
    client.sleep_timer = retry_base_seconds
    client.sleep_timer_base = 2


def _fields(answer: object, **types: type) -> dict[str, Any] | None:
    """Return the named fields of an answer when each is present with its type, else None."""
    if not isinstance(answer, dict):
        return None
    picked = {name: answer.get(name) for name in types}
    if all(isinstance(picked[name], kind) and picked[name] != "" for name, kind in types.items()):
        return picked
    return None


def _rest_error(response: Any) -> tuple[str, int | None]:
    """Return REST API v2's error as text (message, code, errors) and its numeric code."""
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:ERROR_LIMIT], None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(body)[:ERROR_LIMIT], None
    code = error.get("code") if isinstance(error.get("code"), int) else None
    errors = [str(e) for e in error.get("errors") or []]
    text = "; ".join([str(error.get("message", "")), *errors]).strip("; ")
    return (f"{text} (code {code})" if code is not None else text), code


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
