"""Act: take each planned action once (idempotency keys), in order."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from agent.graph.actions import ACTOR, fail_over, not_taken, page, redact_outcome
from agent.graph.state import IncidentState, RunContext
from agent.telemetry import metrics


def act(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Carry out the plan; every write carries an idempotency key, so a resume repeats nothing."""
    ctx = runtime.context
    outcomes = []
    for item in state.get("plan", []):
        if item["status"] != "planned":
            outcome = {**item, "status": "not_taken", "summary": not_taken(item)}
            ctx.record(state, "action.not_taken", ACTOR, outcome)
        elif item["kind"] == "page":
            outcome = page(ctx, state, item)
        elif item["kind"] == "failover":
            outcome = fail_over(ctx, state, item)
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
        outcomes.append(outcome)
    metrics.count_actions(outcomes)
    return {"actions": [redact_outcome(ctx, outcome) for outcome in outcomes]}


def route_after_act(state: IncidentState) -> Literal["verify", "report"]:
    """Verify only when a failover was carried out."""
    done = [
        a for a in state.get("actions", []) if a["kind"] == "failover" and a["status"] == "done"
    ]
    return "verify" if done else "report"
