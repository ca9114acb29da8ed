"""Approve: ask in Slack for each planned action that needs a person, then pause the run.

The node posts one request per action (once, whatever happens to the run), then calls
`interrupt()` until the request is decided. The run is checkpointed and the worker is free; a
decision (a click, `POST /approvals/{id}`, `remediator approve`) or the request's expiry makes the
run due again, and the worker that claims it resumes it here. The database, not the resume value,
says what was decided, so a stale or repeated resume changes nothing.

Approved actions go on to `act`; rejected, expired and cancelled ones are not taken, and an
expired one takes the runbook's timeout branch (by default: page on-call, no automatic action).
"""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent.approvals.models import Approval, ApprovalStatus
from agent.approvals.service import close_if_due
from agent.graph.actions import redact_outcome
from agent.graph.policy import runbook_of
from agent.graph.requests import APPROVER, approvers_for, ask_approval, edit_request
from agent.graph.state import IncidentState, RunContext
from agent.incidents.models import Incident, IncidentStatus
from agent.store.db import session_scope
from runbooks.schema import Runbook


def approve(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Request approval of each action that needs it, wait for the decisions, apply them."""
    ctx = runtime.context
    runbook = runbook_of(ctx, state["runbook"])
    plan = [dict(item) for item in state.get("plan", [])]
    approvers = approvers_for(ctx, runbook, state.get("service"))
    asked = [
        (index, ask_approval(ctx, state, runbook, item, approvers))
        for index, item in enumerate(plan)
        if item["status"] == "needs_approval"
    ]
    for _, approval_id in asked:
        _wait_for(ctx, state, approval_id)
    expired = False
    for index, approval_id in asked:
        approval = _load(ctx, approval_id)
        item = plan[index]
        item["approval_id"] = str(approval.id)
        if approval.status == ApprovalStatus.approved:
            item.update(status="planned", approved_by=approval.decided_by)
        else:
            item.update(status=str(approval.status), reason=_why_not(approval))
            expired = expired or approval.status == ApprovalStatus.expired
        edit_request(ctx, state, approval, _next_step(approval, runbook, state.get("service")))
    if expired:
        plan.extend(timeout_branch(runbook, plan))
    ctx.record(
        state,
        "decision.updated",
        APPROVER,
        {
            "summary": "after the approvals: "
            + "; ".join(f"{i['kind']} {i['status']}" for i in plan if i.get("approval_id"))
            + ("; the runbook's timeout branch added" if expired else ""),
            "plan": plan,
        },
    )
    # A rejection's reason is a person's text: redacted like any outside text.
    return {"plan": [redact_outcome(ctx, item) for item in plan]}


def timeout_branch(runbook: Runbook, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the runbook's on-timeout action, unless the plan already does the same."""
    branch = runbook.approval.on_timeout
    paging = branch.action == "page" and branch.severity in ("critical", "error")
    kind = "page" if paging else "notify"
    if any(item["kind"] == kind and item["status"] == "planned" for item in plan):
        return []
    return [
        {
            "kind": kind,
            "approval": "auto",
            "status": "planned",
            "severity": branch.severity,
            "team": None,
            "reason": "no approval before the request expired: the runbook's timeout branch",
        }
    ]


def _wait_for(ctx: RunContext, state: IncidentState, approval_id: uuid.UUID) -> None:
    """Pause the run until the request is decided, expired, or cancelled by a resolution."""
    while True:
        with session_scope(ctx.engine) as session:
            approval = session.get(Approval, approval_id)
            assert approval is not None
            incident = session.get(Incident, approval.incident_id)
            resolved = incident is not None and incident.status == IncidentStatus.resolved
            approval = close_if_due(
                session=session, audit=ctx.audit, approval=approval, incident_resolved=resolved
            )
            if approval.decided:
                return
            expires_at = approval.expires_at.isoformat()
        # A resume returns here; the database says whether anything was decided meanwhile.
        interrupt({"approval_id": str(approval_id), "expires_at": expires_at})


def _load(ctx: RunContext, approval_id: uuid.UUID) -> Approval:
    with session_scope(ctx.engine) as session:
        approval = session.get(Approval, approval_id)
        assert approval is not None
        session.expunge(approval)
        return approval


def _why_not(approval: Approval) -> str:
    if approval.status == ApprovalStatus.rejected:
        return f"rejected by {approval.decided_by}" + (
            f": {approval.reason}" if approval.reason else ""
        )
    return f"approval {approval.status}: {approval.reason or ''}".rstrip(": ")


def _next_step(approval: Approval, runbook: Runbook, service: str | None) -> str:
    what = approval.describe(service)
    if approval.status == ApprovalStatus.approved:
        return f"taking the action now: {what}; the result follows in this thread."
    if approval.status == ApprovalStatus.expired:
        branch = runbook.approval.on_timeout
        return (
            f"{what} is NOT taken; the runbook's timeout branch runs instead: "
            f"{branch.action} at {branch.severity}."
        )
    return f"{what} is NOT taken."
