"""Triage: find the breach's service and runbook, and which probes to run."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime

from agent.graph.policy import builtin_runbook
from agent.graph.state import IncidentState, RunContext
from agent.incidents.service import set_service
from agent.store.db import session_scope
from runbooks.library import match_runbook
from runbooks.schema import normalise_metric

TRIAGE = "agent.triage"


def triage(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Find the breach's service in the catalog and the runbook that governs it."""
    ctx = runtime.context
    breach = state["breach"]
    found = None
    if ctx.catalog is not None:
        found = ctx.catalog.service_for(
            service=breach.get("service"), model_id=breach.get("model_id")
        )
    service = found[0] if found else None
    metric = normalise_metric(breach.get("metric") or "")
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
    probes = {name: spec.timeout_seconds for name, spec in chosen.probes.enabled().items()}
    why = (
        "matched"
        if runbook
        else (f"no runbook for metric {breach.get('metric')!r}: built-in policy")
    )
    if service is not None:
        with session_scope(ctx.engine) as session:
            set_service(
                session=session, incident_id=uuid.UUID(state["incident_id"]), service=service
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
    return {"service": service, "runbook": chosen.ref, "probes": probes}
