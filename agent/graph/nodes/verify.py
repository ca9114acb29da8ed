"""Verify: probe the new route after a failover, read a prompt rollback's label back; escalate
as the runbook allows if either fails."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.graph.actions import owner_team, page, redact_outcome
from agent.graph.policy import runbook_of
from agent.graph.prompts import verify_rollbacks
from agent.graph.state import IncidentState, RunContext
from agent.telemetry import metrics

VERIFIER = "agent.verify"


def verify(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Probe the endpoint on its new route; escalate with a critical page if it still fails."""
    ctx = runtime.context
    failed_over = any(
        a["kind"] == "failover" and a["status"] == "done" for a in state.get("actions", [])
    )
    rolled_back = verify_rollbacks(ctx, state)
    for check in rolled_back:
        passed = check["status"] == "passed"
        kind = "verification.passed" if passed else "verification.failed"
        ctx.record(state, kind, VERIFIER, {**check, "action": "rollback_prompt"})
    if rolled_back and not failed_over:
        wrong = [c for c in rolled_back if c["status"] != "passed"]
        summary = ctx.redact("; ".join(c["summary"] for c in rolled_back))
        if not wrong:
            return {"verification": {"status": "passed", "summary": summary}}
        why = "the prompt rollback does not read back: " + wrong[0]["summary"]
        return _escalate(ctx, state, {"status": "failed", "summary": summary}, why)
    tools = ctx.service_tools(state.get("service"))
    if tools is None or tools.endpoint is None:
        ctx.record(
            state,
            "verification.skipped",
            VERIFIER,
            {"summary": "no endpoint probe configured: the new route is not verified"},
        )
        return {"verification": {"status": "skipped"}}
    result = tools.endpoint.probe()
    if result.status == "ok":
        ctx.record(state, "verification.passed", VERIFIER, result.audit_data())
        return {"verification": {"status": "passed", "summary": ctx.redact(result.summary)}}
    ctx.record(state, "verification.failed", VERIFIER, result.audit_data())
    verification = {"status": "failed", "summary": ctx.redact(result.summary)}
    return _escalate(ctx, state, verification, "the endpoint still fails after the failover")


def _escalate(
    ctx: RunContext, state: IncidentState, verification: dict[str, Any], why: str
) -> dict[str, Any]:
    """Escalate only as the runbook allows: a page (at critical) if it lists one for the
    diagnosis, else a Slack notice if it lists that, else nothing beyond the audit trail."""
    runbook = runbook_of(ctx, state["runbook"])
    kind = state["diagnosis"]["kind"]
    if runbook.permits(kind, "page"):
        escalation = page(
            ctx,
            state,
            {
                "kind": "page",
                "approval": "auto",
                "status": "planned",
                "severity": "critical",
                "team": owner_team(ctx, state),
                "reason": why,
            },
        )
        metrics.count_actions([escalation])
        return {"verification": verification, "actions": [redact_outcome(ctx, escalation)]}
    if runbook.permits(kind, "notify"):
        notice = {
            "kind": "notify",
            "approval": "auto",
            "status": "done",
            "severity": "critical",
            "summary": f"escalated in the Slack thread: {why}",
        }
        ctx.record(state, "action.escalated", VERIFIER, notice)
        metrics.count_actions([notice])
        return {"verification": verification, "actions": [notice]}
    ctx.record(
        state,
        "action.not_taken",
        VERIFIER,
        {
            "summary": f"no escalation: {runbook.ref} allows no page and no notice for {kind}",
        },
    )
    return {"verification": verification}
