"""Fail back: after the resolution, each failed-over service goes back as its runbook says.

`failback: auto` moves it back at once (keyed like its failover); otherwise a request is posted
(once) and the `settle` follow-up carries it out, or drops it, once it is decided or expires.
"""

from __future__ import annotations

from typing import Any, cast

from langgraph.runtime import Runtime

from agent.graph.followup.effects import done_actions, record, restore
from agent.graph.followup.state import FollowupState
from agent.graph.policy import runbook_of
from agent.graph.requests import approvers_for, ask_approval
from agent.graph.state import IncidentState, RunContext


def fail_back(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Fail each failed-over service back, or ask for approval to, per the runbook."""
    notes = [_fail_back(runtime.context, state, f) for f in done_actions(state, "failover")]
    return {"notes": runtime.context.redact(notes)}


def _fail_back(ctx: RunContext, state: FollowupState, failover: dict[str, Any]) -> str:
    run = state["run"]
    service = str(run.get("service"))
    runbook = runbook_of(ctx, str(run.get("runbook")))
    tools = ctx.service_tools(service)
    if tools is not None and tools.failover is not None and runbook.failback != "auto":
        item = {"kind": "failback", "target": failover["target"], "status": "needs_approval"}
        approval_id = ask_approval(
            ctx,
            cast(IncidentState, run),
            runbook,
            item,
            approvers_for(ctx, runbook, run.get("service")),
        )
        return f"Failback of {service} waits for approval (request {approval_id})."
    if tools is None or tools.failover is None:
        why = "no failover backend configured"
        record(
            ctx,
            state,
            "action.not_taken",
            {
                "summary": f"failback of {service} not taken: {why}",
                "kind": "failback",
                "idempotency_key": failover["idempotency_key"],
            },
        )
        return f"Failback of {service} not taken: {why}."
    return restore(ctx, state, failover)
