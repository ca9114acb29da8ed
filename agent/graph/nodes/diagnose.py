"""Diagnose: apply the rules to the findings; ask the analyst only when they are inconclusive."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

from langgraph.runtime import Runtime

from agent.graph.policy import runbook_of
from agent.graph.rules import apply_rules
from agent.graph.state import IncidentState, RunContext

DIAGNOSER = "agent.diagnose"


def diagnose(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Apply the runbook's diagnosis rules to the findings."""
    ctx = runtime.context
    runbook = runbook_of(ctx, state["runbook"])
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in state.get("findings", []):
        grouped[finding["probe"]].append(finding)
    service = state.get("service")
    result = apply_rules(
        breach=state["breach"],
        findings=grouped,
        rules=runbook.diagnosis,
        now=ctx.now(),
        service=service,
        primary_region=primary_region(ctx, service),
    ).to_dict()
    owners = dependency_owners(ctx, service, result.get("dependencies", []))
    if owners:
        # Who owns what is down, in the diagnosis itself: the thread and the page say whom to call.
        result["owners"] = owners
        result["summary"] += (
            " (owned by " + ", ".join(f"{team} for {name}" for name, team in owners.items()) + ")"
        )
    ctx.record(
        state,
        "diagnosis.made",
        DIAGNOSER,
        {
            **result,
            "explanation": result["summary"],
            "summary": f"diagnosis: {result['kind']} — {result['summary']}",
        },
    )
    return {"diagnosis": result}


def dependency_owners(ctx: RunContext, service: str | None, names: list[str]) -> dict[str, str]:
    """Return the catalogued owner team of each named dependency of the service."""
    if ctx.catalog is None or service not in ctx.catalog.services:
        return {}
    dependencies = ctx.catalog.services[str(service)].dependencies
    known = type(dependencies).model_fields
    found = {name: getattr(dependencies, name) for name in names if name in known}
    return {name: str(dep.owner) for name, dep in found.items() if dep is not None}


def primary_region(ctx: RunContext, service: str | None) -> str | None:
    """Return the region the service's primary route serves from (its catalogued endpoint's)."""
    if ctx.catalog is None or service not in ctx.catalog.services:
        return None
    endpoint = ctx.catalog.services[str(service)].endpoint
    return endpoint.region if endpoint is not None else None


def route_after_diagnose(state: IncidentState) -> Literal["analyse", "decide"]:
    """Consult the analyst only for inconclusive or conflicting diagnoses."""
    diagnosis = state.get("diagnosis", {})
    unclear = diagnosis.get("kind") == "no_fault_found" or diagnosis.get("conflicting")
    return "analyse" if unclear else "decide"
