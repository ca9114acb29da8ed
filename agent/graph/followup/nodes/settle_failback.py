"""Settle failback: a decided failback request is carried out if approved, else dropped.

Approved, the route goes back only onto a primary that answers its known-answer prompts, and only
once nothing depends on the failover any more; held back, it is tried again later (the approval
stands). Rejected or expired, the route stays where it is for a person to move back.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.approvals.models import ApprovalStatus
from agent.graph.followup.effects import (
    capital,
    done_actions,
    failback_words,
    load_approval,
    record,
)
from agent.graph.followup.failback import attempt_failback, keep, release_blocked
from agent.graph.followup.prompts import rollback_for, settle_undo
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext


def settle_failback(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Fail back if the request was approved; otherwise record why the route stays."""
    ctx = runtime.context
    approval = load_approval(ctx, state)
    rollback = rollback_for(state, approval.target)
    if rollback is not None:  # the undo of a prompt rollback, not a route's failback
        return {"notes": [ctx.redact(settle_undo(ctx, state, approval, rollback))]}
    service = str(state["run"].get("service"))
    failover = next(
        (f for f in done_actions(state, "failover") if f["target"]["name"] == approval.target),
        None,
    )
    if approval.status == ApprovalStatus.approved and failover is not None:
        note = attempt_failback(ctx, state, failover, approved=True)
        release_blocked(ctx, state)
        return {"notes": [ctx.redact(note)] if note else []}
    why = approval.reason or str(approval.status)
    words = failback_words(service, str(approval.target))
    record(
        ctx,
        state,
        "action.not_taken",
        {
            "summary": f"{words} not taken: {approval.status} ({why})",
            "kind": "failback",
            "approval_id": str(approval.id),
        },
    )
    note = f"{capital(words)}: not taken, {approval.status}; it stays on "
    note += f"{approval.target} until someone moves it back."
    if failover is not None:
        keep(ctx, state, failover, note)
    return {"notes": [note]}
