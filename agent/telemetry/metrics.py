"""Prometheus metrics of this process: what came in, what ran, what was done.

Every metric lives in prometheus_client's default registry, one set per process: each API replica
and each worker process exposes its own, and Prometheus scrapes them all. The incidents-by-state
gauge and the approval waits are the exceptions: they are read from the database at scrape time
(see `collector.py`), so every process reports the same, correct numbers, whoever decided.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

ALERTS_RECEIVED = Counter(
    "remediator_alerts_received",
    "Webhook deliveries received, before any check (an Alertmanager delivery may hold several "
    "alerts).",
    ["source"],
)
ALERTS_ACCEPTED = Counter(
    "remediator_alerts_accepted",
    "Alerts stored for processing (answered 202).",
    ["source"],
)
ALERTS_REFUSED = Counter(
    "remediator_alerts_refused",
    "Webhook deliveries refused (bad_token, wrong_content_type, too_large, bad_json, too_deep, "
    "not_object, unmapped, bad_text, unstorable), and alerts not stored again because they "
    "were already seen (duplicate).",
    ["source", "reason"],
)
RUNS_IN_FLIGHT = Gauge(
    "remediator_runs_in_flight",
    "Incident graph runs this process is executing now.",
)
PROBE_SECONDS = Histogram(
    "remediator_probe_seconds",
    "How long one investigation probe took, by the tool that answered and its status.",
    ["tool", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ACTIONS = Counter(
    "remediator_actions",
    "Actions of incident runs by kind (page, notify, failover, rollback) and outcome (done, "
    "failed, dry_run, not_taken, proposed).",
    ["kind", "outcome"],
)
OUTGOING_RETRIES = Counter(
    "remediator_outgoing_retries",
    "Retries of calls to outside systems (PagerDuty, Slack, probes, logs, gateway), by system.",
    ["system"],
)
LEASE_EXPIRIES = Counter(
    "remediator_worker_lease_expiries",
    "Claims that took over an alert or incident whose previous worker's lease had expired.",
    ["kind"],
)

__all__ = [
    "ACTIONS",
    "ALERTS_ACCEPTED",
    "ALERTS_RECEIVED",
    "ALERTS_REFUSED",
    "LEASE_EXPIRIES",
    "OUTGOING_RETRIES",
    "PROBE_SECONDS",
    "RUNS_IN_FLIGHT",
    "count_actions",
    "count_received",
    "count_refused",
    "count_stored",
]


WEBHOOKS = "/webhooks/"


def count_received(path: str) -> None:
    """Count a delivery to a webhook path (`/webhooks/arize` counts for source `arize`)."""
    if path.startswith(WEBHOOKS):
        ALERTS_RECEIVED.labels(path.removeprefix(WEBHOOKS)).inc()


def count_refused(path: str, reason: str) -> None:
    """Count a refused delivery to a webhook path; other paths' refusals are not alerts."""
    if path.startswith(WEBHOOKS):
        ALERTS_REFUSED.labels(path.removeprefix(WEBHOOKS), reason).inc()


def count_stored(source: str, statuses: Iterable[str]) -> None:
    """Count the alerts of one delivery as accepted or as duplicates."""
    for status in statuses:
        if status == "accepted":
            ALERTS_ACCEPTED.labels(source).inc()
        else:
            ALERTS_REFUSED.labels(source, "duplicate").inc()


def count_actions(outcomes: Iterable[dict[str, Any]]) -> None:
    """Count each action outcome of a run by kind and status."""
    for outcome in outcomes:
        ACTIONS.labels(str(outcome.get("kind")), str(outcome.get("status"))).inc()


def count_outgoing_retry(system: str) -> None:
    """Count one retry of a call to an outside system (the adapters' retry hook)."""
    OUTGOING_RETRIES.labels(system).inc()
