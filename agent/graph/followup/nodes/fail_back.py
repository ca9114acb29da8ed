"""Fail back: after the resolution (or on a retry), each failed-over route goes back onto health.

Each failover of the run is tried (`agent.graph.followup.failback`): moved back at once with
`failback: auto`, or after an approval request (posted once) that the `settle` follow-up carries
out; only when nothing depends on it any more and the primary answers its known-answer prompts.
The latest failover goes first: switches go back in the reverse order they were made. At the
resolution each prompt rollback is offered for undo too (`agent.graph.followup.prompts`).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.graph.followup.effects import done_actions
from agent.graph.followup.failback import attempt_failback, release_blocked
from agent.graph.followup.prompts import offer_undo
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext


def fail_back(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Fail each failed-over route back, ask for approval to, or hold it and say why."""
    ctx = runtime.context
    due_only = state["kind"] == "retry"
    notes = [
        attempt_failback(ctx, state, failover, due_only=due_only)
        for failover in reversed(done_actions(state, "failover"))
    ]
    release_blocked(ctx, state)
    if state["kind"] == "resolve":
        notes += [offer_undo(ctx, state, r) for r in done_actions(state, "rollback_prompt")]
    return {"notes": ctx.redact([note for note in notes if note])}
