"""Find the REST API incident that PagerDuty opened for an Events API v2 dedup_key.

PagerDuty turns the dedup_key of the trigger that opened an incident into its `incident_key`, and
`GET /incidents?incident_key=K` also lists incidents whose alerts carry K; the incident appears a
moment after the event is accepted, so an empty listing is asked again a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pagerduty

from tools.retry import RetryPolicy, Verdict, call_with_retry


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
