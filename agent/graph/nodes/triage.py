"""Triage: find the breach's service and runbook, and which probes to run."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime

from agent.alerts.models import Breach
from agent.graph.policy import builtin_runbook, service_probes
from agent.graph.state import IncidentState, RunContext
from agent.incidents.service import set_service
from agent.monitors.enrich import enrich_from_monitor
from agent.store.db import session_scope
from runbooks.library import match_runbook
from runbooks.schema import identify_metric

TRIAGE = "agent.triage"


def triage(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Find the breach's service in the catalog and the runbook that governs it.

    The metric is the alert's `metric` (Arize field, Alertmanager label) when the vocabulary knows
    it, else what its monitor's name says (`RagAnswersSlow` is latency_p95). Without a matching
    runbook the built-in policy governs, and a catalogued service still gets its standard probes.

    An Arize breach is first enriched from its monitor (`agent.monitors.enrich`: the alert's own
    fields win); the enriched breach is what the rest of the run reads.
    """
    ctx = runtime.context
    enriched = enrich_from_monitor(ctx, state)
    breach = enriched or state["breach"]
    found = None
    if ctx.catalog is not None:
        found = ctx.catalog.service_for(
            service=breach.get("service"), model_id=breach.get("model_id")
        )
    service = found[0] if found else None
    metric = identify_metric(breach.get("metric"), breach.get("monitor_name"))
    runbook = (
        match_runbook(
            ctx.runbooks,
            metric=metric,
            service=service or breach.get("service"),
            model=breach.get("model_id"),
            environment=breach.get("environment"),
            segment=breach.get("segment") or {},
        )
        if metric
        else None
    )
    chosen = runbook or builtin_runbook(ctx.settings)
    probes: dict[str, float] = {
        name: spec.timeout_seconds for name, spec in chosen.probes.enabled().items()
    }
    if runbook is None and found is not None:
        # Whatever the policy, a catalogued service is investigated as the catalog allows.
        probes = {**service_probes(found[1]), **probes}
    why = policy_reason(matched=runbook is not None, metric=metric, breach=breach)
    if service is not None:
        with session_scope(ctx.engine) as session:
            set_service(
                session=session,
                incident_id=uuid.UUID(state["incident_id"]),
                service=service,
                title=Breach.model_validate(breach).title(service),
            )
    ctx.record(
        state,
        "runbook.matched",
        TRIAGE,
        {
            "summary": f"runbook {chosen.ref} ({why}); service {service or 'not in the catalog'}; "
            f"probes: {', '.join(probes) or 'none'}",
            "runbook": chosen.ref,
            "service": service,
            "metric": metric,
            "probes": probes,
        },
    )
    update: dict[str, Any] = {"service": service, "runbook": chosen.ref, "probes": probes}
    if enriched is not None:
        update["breach"] = enriched
    return update


def policy_reason(*, matched: bool, metric: str | None, breach: dict[str, Any]) -> str:
    """Say why this policy governs, naming only what the alert said (never `None`)."""
    if matched:
        return "matched"
    if metric:
        return f"no runbook for metric {metric}: built-in policy"
    said = [
        f"{label} {breach[key]!r}"
        for key, label in (("metric", "metric"), ("monitor_name", "monitor"))
        if breach.get(key)
    ]
    if not said:
        return "the alert names no metric: built-in policy"
    return f"{' of '.join(said)} not recognised as a metric: built-in policy"
