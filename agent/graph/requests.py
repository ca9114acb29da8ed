"""Approval requests: who may approve, the request posted once in the thread, its edit later."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from agent.alerts.models import Breach
from agent.approvals.message import decided_message, request_message
from agent.approvals.models import Approval
from agent.approvals.service import request_approval, set_message
from agent.graph.channels import post_to_incident, update_message
from agent.graph.messages import evidence_lines, strongest
from agent.graph.state import IncidentState, RunContext
from agent.outbox.service import find
from agent.store.db import session_scope
from runbooks.schema import Runbook

APPROVER = "agent.approve"


def approvers_for(ctx: RunContext, runbook: Runbook, service: str | None) -> list[str]:
    """Return who may approve: the runbook's approvers and those of the service's team."""
    listed = list(runbook.approval.approvers)
    if ctx.catalog is not None and service in ctx.catalog.services:
        team = ctx.catalog.teams.get(ctx.catalog.services[str(service)].team)
        listed += team.approvers if team is not None else []
    return list(dict.fromkeys(listed))


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
    title = Breach.model_validate(state["breach"]).title(state.get("service"))
    diagnosis = state.get("diagnosis", {})
    pro, con = strongest(diagnosis)
    evidence = [f"for: {pro}"] if pro else []
    evidence += [f"against: {con}"] if con else []
    text, blocks = request_message(
        approval,
        title=title,
        diagnosis=f"{diagnosis.get('kind', 'none')} — {diagnosis.get('summary', '')}",
        evidence=evidence + evidence_lines(state),
        blast_radius=blast_radius(ctx, state, approval),
        service=state.get("service"),
    )
    posted = post_to_incident(
        ctx,
        state,
        text,
        blocks,
        actor=APPROVER,
        dry_run="dry-run: would post the approval request (Slack not configured); "
        f"decide with `remediator approve {approval.id} --as USER`",
        step=request_step(approval),
        approval_id=approval.id,
    )
    if isinstance(posted, tuple):
        with session_scope(ctx.engine) as session:
            set_message(session=session, approval_id=approval.id, channel=posted[0], ts=posted[1])


def edit_request(ctx: RunContext, state: IncidentState, approval: Approval, step: str) -> None:
    """Edit the request in place once answered (again after a crash: the same edit)."""
    request = f"{state['incident_id']}/{request_step(approval)}"
    with session_scope(ctx.engine) as session:
        queued = find(session, request) is not None
    if ctx.tools.chat is None or not (queued or approval.slack_ts):
        return
    text, blocks = decided_message(
        approval,
        title=Breach.model_validate(state["breach"]).title(state.get("service")),
        blast_radius=blast_radius(ctx, state, approval),
        next_step=step,
        service=state.get("service"),
    )
    # Through the outbox: the edit waits for the request's ts if the request itself still
    # waits, and is made once whatever the resumes (its key).
    update_message(
        ctx,
        uuid.UUID(state["incident_id"]),
        key=f"{request}/decided/{step}",
        target_key=request if queued else None,
        target_ts=approval.slack_ts,
        channel=str(approval.slack_channel or ""),
        text=text,
        blocks=blocks,
        actor=APPROVER,
    )


def request_step(approval: Approval) -> str:
    """Return the step of an approval request's message: posted once per request."""
    return f"approval/{approval.id}"


def blast_radius(ctx: RunContext, state: IncidentState, approval: Approval) -> str:
    """Say what the action touches: which service's traffic moves where."""
    service = state.get("service") or "the service"
    model = state["breach"].get("model_id") or "every model"
    target = approval.params.get("target")
    if approval.kind == "failover" and isinstance(target, dict):
        region = target.get("region") or "its region"
        where = f"{target.get('provider')} {target.get('model')} in {region}"
        return f"all traffic of {service} ({model}) moves to {where}"
    if approval.kind == "failback" and isinstance(target, dict) and target.get("label"):
        return (
            f"the {target.get('label')} label of prompt {target.get('prompt_id')} moves back "
            f"from version {target.get('to_version')} to {target.get('from_version')}"
        )
    if approval.kind == "failback":
        away = target.get("name") if isinstance(target, dict) else approval.target
        return f"all traffic of {service} moves back from {away} to its primary route"
    if approval.kind == "rollback_prompt" and isinstance(target, dict):
        return (
            f"the {target.get('label')} label of prompt {target.get('prompt_id')} moves from "
            f"version {target.get('from_version')} back to {target.get('to_version')}"
        )
    if approval.kind == "page":
        return f"wakes {approval.params.get('team') or 'on-call'} through PagerDuty"
    return f"{approval.kind} for {service}"
