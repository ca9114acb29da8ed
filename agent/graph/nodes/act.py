"""Act: take each planned action once (idempotency keys), in order, as soon as it may be taken.

An action that needs no approval is taken at once, before the run waits for the approvals of the
others (a critical page never waits behind a failover request); the approved ones follow in a
second pass once `approve` has decided them. Each plan item is marked `acted` when taken (or
recorded as not taken), so no pass takes it twice.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from agent.graph.actions import ACTOR, fail_over, not_taken, page, redact_outcome
from agent.graph.prompts import rollback_prompt
from agent.graph.state import IncidentState, RunContext
from agent.telemetry import metrics


def act(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Take every decided action not taken yet; keyed writes, so a resume repeats nothing."""
    ctx = runtime.context
    plan = [dict(item) for item in state.get("plan", [])]
    outcomes = []
    for item in plan:
        if item.get("acted") or item["status"] == "needs_approval":
            continue
        if item["status"] != "planned":
            outcome = {**item, "status": "not_taken", "summary": not_taken(item)}
            ctx.record(state, "action.not_taken", ACTOR, outcome)
        elif item["kind"] == "page":
            outcome = page(ctx, state, item)
        elif item["kind"] == "failover":
            outcome = fail_over(ctx, state, item)
        elif item["kind"] == "rollback_prompt":
            outcome = rollback_prompt(ctx, state, item)
        elif item["kind"] == "rollback":
            outcome = {
                **item,
                "status": "proposed",
                "summary": (
                    f"proposed rollback of {item.get('change_kind') or 'change'} "
                    f"{item.get('version')} to {item.get('previous_version') or 'the previous one'}"
                ),
            }
            ctx.record(state, "action.proposed", ACTOR, outcome)
        else:
            outcome = {
                **item,
                "status": "done",
                "summary": f"told in the Slack thread ({item.get('severity', 'warning')})",
            }
        item["acted"] = True
        outcomes.append(outcome)
    metrics.count_actions(outcomes)
    return {"actions": [redact_outcome(ctx, outcome) for outcome in outcomes], "plan": plan}


def route_after_act(state: IncidentState) -> Literal["approve", "verify", "report"]:
    """Ask for the approvals the plan still needs; then verify a failover or a prompt
    rollback carried out."""
    if any(item["status"] == "needs_approval" for item in state.get("plan", [])):
        return "approve"
    done = [
        a
        for a in state.get("actions", [])
        if a["kind"] in ("failover", "rollback_prompt") and a["status"] == "done"
    ]
    return "verify" if done else "report"
