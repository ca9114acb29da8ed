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
from datetime import timedelta
from typing import Any, Literal, cast

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent.alerts.models import Breach
from agent.approvals.message import decided_message, request_message
from agent.approvals.models import Approval, ApprovalStatus
from agent.approvals.service import close_if_due, request_approval, set_message
from agent.graph.policy import runbook_of
from agent.graph.report import post_to_incident
from agent.graph.state import IncidentState, RunContext
from agent.incidents.models import Incident, IncidentStatus
from agent.store.db import session_scope
from runbooks.schema import Runbook

ACTOR = "agent.approve"


def route_after_decide(state: IncidentState) -> Literal["approve", "act"]:
    """Ask for approval only when an action of the plan needs it."""
    waiting = any(item["status"] == "needs_approval" for item in state.get("plan", []))
    return "approve" if waiting else "act"


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
        edit_request(ctx, state, approval, _next_step(approval, runbook))
    if expired:
        plan.extend(timeout_branch(runbook, plan))
    ctx.record(
        state,
        "decision.updated",
        ACTOR,
        {
            "summary": "after the approvals: "
            + "; ".join(f"{i['kind']} {i['status']}" for i in plan if i.get("approval_id"))
            + ("; the runbook's timeout branch added" if expired else ""),
            "plan": plan,
        },
    )
    return {"plan": plan}


def approvers_for(ctx: RunContext, runbook: Runbook, service: str | None) -> list[str]:
    """Return who may approve: the runbook's approvers and those of the service's team."""
    listed = list(runbook.approval.approvers)
    if ctx.catalog is not None and service in ctx.catalog.services:
        team = ctx.catalog.teams.get(ctx.catalog.services[str(service)].team)
        listed += team.approvers if team is not None else []
    return list(dict.fromkeys(listed))


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


def ask_approval(
    ctx: RunContext,
    state: IncidentState,
    runbook: Runbook,
    item: dict[str, Any],
    approvers: list[str],
) -> uuid.UUID:
    """Create the request (once) and post it in the incident's thread (once)."""
    incident_id = uuid.UUID(state["incident_id"])
    planned_target = item.get("target")
    target = planned_target.get("name") if isinstance(planned_target, dict) else None
    params = {k: v for k, v in item.items() if k in ("severity", "team", "target", "version")}
    with session_scope(ctx.engine) as session:
        approval, created = request_approval(
            session=session,
            audit=ctx.audit,
            incident_id=incident_id,
            action_key=action_key(state, item),
            kind=str(item["kind"]),
            target=target,
            params=params,
            runbook=runbook.ref,
            approvers=approvers,
            ttl=timedelta(seconds=runbook.approval.ttl_seconds),
        )
        session.expunge(approval)
    # Post once: again only when an earlier post did not get through (Slack was down, or the
    # process died before storing its ts); a resumed run without Slack records nothing new.
    if approval.slack_ts is None and (created or ctx.tools.chat is not None):
        _post_request(ctx, state, approval)
    return approval.id


def action_key(state: IncidentState, item: dict[str, Any]) -> str:
    """Return the idempotency key of a planned action: the incident, the kind, the target."""
    target = item.get("target")
    name = target.get("name") if isinstance(target, dict) else item.get("team")
    return f"{state['incident_id']}/{item['kind']}/{name or '-'}"


def _post_request(ctx: RunContext, state: IncidentState, approval: Approval) -> None:
    title = Breach.model_validate(state["breach"]).title()
    diagnosis = state.get("diagnosis", {})
    text, blocks = request_message(
        approval,
        title=title,
        diagnosis=f"{diagnosis.get('kind')} — {diagnosis.get('summary', '')}",
        evidence=[
            f"{f['probe']}: {f['status']} — {f['summary']}" for f in state.get("findings", [])
        ],
        blast_radius=blast_radius(ctx, state, approval),
    )
    posted = post_to_incident(
        ctx,
        state,
        text,
        blocks,
        actor=ACTOR,
        dry_run="dry-run: would post the approval request (Slack not configured); "
        f"decide with `remediator approve {approval.id} --as USER`",
    )
    if isinstance(posted, tuple):
        with session_scope(ctx.engine) as session:
            set_message(session=session, approval_id=approval.id, channel=posted[0], ts=posted[1])


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


def _next_step(approval: Approval, runbook: Runbook) -> str:
    if approval.status == ApprovalStatus.approved:
        return f"taking the action now: {approval.describe()}; the result follows in this thread."
    if approval.status == ApprovalStatus.expired:
        branch = runbook.approval.on_timeout
        return (
            f"{approval.describe()} is NOT taken; the runbook's timeout branch runs instead: "
            f"{branch.action} at {branch.severity}."
        )
    return f"{approval.describe()} is NOT taken."


def edit_request(ctx: RunContext, state: IncidentState, approval: Approval, step: str) -> None:
    """Edit the request in place once answered (again after a crash: the same edit)."""
    chat = ctx.tools.chat
    if chat is None or approval.slack_ts is None or approval.slack_channel is None:
        return
    text, blocks = decided_message(
        approval,
        title=Breach.model_validate(state["breach"]).title(),
        blast_radius=blast_radius(ctx, state, approval),
        next_step=step,
    )
    result = chat.update(
        channel=approval.slack_channel,
        ts=approval.slack_ts,
        text=ctx.audit.redactor.text(text),
        blocks=cast(list[dict[str, Any]], ctx.audit.redactor.value(blocks)),
    )
    kind = "notification.updated" if result.status == "ok" else "notification.failed"
    ctx.record(state, kind, ACTOR, result.audit_data())


def blast_radius(ctx: RunContext, state: IncidentState, approval: Approval) -> str:
    """Say what the action touches: which service's traffic moves where."""
    service = state.get("service") or "the service"
    model = state["breach"].get("model_id") or "every model"
    target = approval.params.get("target")
    if approval.kind == "failover" and isinstance(target, dict):
        region = target.get("region") or "its region"
        where = f"{target.get('provider')} {target.get('model')} in {region}"
        return f"all traffic of {service} ({model}) moves to {where}"
    if approval.kind == "failback":
        return f"all traffic of {service} moves back to its route before the incident"
    if approval.kind == "page":
        return f"wakes {approval.params.get('team') or 'on-call'} through PagerDuty"
    return f"{approval.kind} for {service}"
