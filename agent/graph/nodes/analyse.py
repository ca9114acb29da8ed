"""Analyse: the optional LLM analyst's hypothesis, judged against what the runbook allows."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.graph.policy import runbook_of
from agent.graph.state import IncidentState, RunContext

ANALYST = "agent.analyst"


def analyse(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Ask the LLM analyst for a hypothesis; its proposal counts only if the runbook allows it."""
    ctx = runtime.context
    runbook = runbook_of(ctx, state["runbook"])
    if ctx.analyst is None or not runbook.analyst.enabled or runbook.analyst.max_calls < 1:
        return {}
    kind = state["diagnosis"]["kind"]
    allowed: list[str] = [spec.kind for spec in runbook.allowed(kind)]
    result = ctx.analyst.analyse(
        incident_summary=f"{state['breach'].get('metric')} breach on "
        f"{state['breach'].get('model_id')}: diagnosis {kind}",
        evidence=[
            {k: f.get(k) for k in ("probe", "status", "summary", "evidence")}
            for f in state.get("findings", [])
        ],
        diagnosis=kind,
        allowed_actions=allowed,
    )
    ctx.record(state, "analyst.consulted", ANALYST, result.audit_data())
    # The model's answer is outside text: redacted before it enters the state.
    analysis = ctx.redact({"status": str(result.status), **result.evidence})
    if result.status == "ok" and not analysis.get("proposal_allowed"):
        ctx.record(
            state,
            "analyst.proposal_discarded",
            ANALYST,
            {
                "summary": f"discarded the analyst's proposal: {analysis.get('discarded_reason')}",
                "proposal": analysis.get("proposal"),
            },
        )
    return {"analysis": analysis}
