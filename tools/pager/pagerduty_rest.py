"""PagerDuty REST API v2 through the `pagerduty` SDK: the incident of a dedup key, its notes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pagerduty

from tools.pager.pagerduty_client import (
    ERROR_LIMIT,
    NOTE_LIMIT,
    bound_retries,
    rest_error,
    tls_verify,
)
from tools.result import Stopwatch, ToolResult, ToolStatus
from tools.retry import RetryPolicy, Verdict, call_with_retry, count_retry
from tools.text import fit

URGENCIES = frozenset({"high", "low"})

REST_FAILURES = (pagerduty.Error, pagerduty.UrlError)


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
        self._client = CountedRestClient(
            api_key, default_from=from_email, base_url=base_url, verify=tls_verify(ca_bundle)
        )
        bound_retries(self._client, timeout_seconds, retry_base_seconds)
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
            reason = rest_error(response)[0] if response is not None else str(exc)
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
        """Add a note to an incident's timeline (cut to PagerDuty's length limit)."""
        content = fit(content, NOTE_LIMIT)
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
            error, code = rest_error(response)
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


def _fields(answer: object, **types: type) -> dict[str, Any] | None:
    """Return the named fields of an answer when each is present with its type, else None."""
    if not isinstance(answer, dict):
        return None
    picked = {name: answer.get(name) for name in types}
    if all(isinstance(picked[name], kind) and picked[name] != "" for name, kind in types.items()):
        return picked
    return None


class IncidentListingError(ValueError):
    """PagerDuty listed incidents in a shape that cannot be read."""


class _NotListedYet(Exception):
    """No incident carries the key yet; worth asking again."""


def find_incident(
    client: pagerduty.RestApiV2Client,
    incident_key: str,
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
) -> tuple[dict[str, Any] | None, int]:
    """Return the incident listed for this key (None when none appeared) and the lookups made.

    Raises the SDK's errors (it has already retried 429/5xx) and IncidentListingError.
    """
    lookups = 0

    def lookup() -> dict[str, Any]:
        nonlocal lookups
        lookups += 1
        listed = client.list_all("incidents", params={"incident_key": incident_key})
        chosen = pick_incident(listed)
        if chosen is None:
            raise _NotListedYet
        return chosen

    try:
        found = call_with_retry(
            lookup,
            classify=lambda exc: Verdict(isinstance(exc, _NotListedYet)),
            policy=policy,
            sleep=sleep,
            system="pagerduty_rest",
        )
    except _NotListedYet:
        return None, lookups
    return found, lookups


def pick_incident(listed: list[Any]) -> dict[str, Any] | None:
    """Return the open incident, else the newest one, of a listing (None when it is empty)."""
    usable = [i for i in listed if isinstance(i, dict) and isinstance(i.get("id"), str) and i["id"]]
    if len(usable) != len(listed):
        raise IncidentListingError(f"incidents without an id in the listing: {listed!r}")
    if not usable:
        return None
    # A key can have a resolved incident and, after a new trigger, an open one: note the open one.
    return max(
        usable,
        key=lambda i: (
            i.get("status") != "resolved",
            str(i.get("created_at") or ""),
            i["incident_number"] if isinstance(i.get("incident_number"), int) else 0,
        ),
    )


class CountedRestClient(pagerduty.RestApiV2Client):
    """The REST API client, counting each retry like `CountedEventsClient`."""

    def cooldown_factor(self) -> float:
        """Count a retry, then return the SDK's own backoff factor."""
        count_retry(PagerDutyRestPager.name)
        return float(super().cooldown_factor())
