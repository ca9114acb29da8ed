"""What happens to an incident after its run: repeat notices, and resolution with failback."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlmodel import col, select

from agent.alerts.models import Breach
from agent.approvals.models import Approval, ApprovalStatus
from agent.approvals.service import close_if_due
from agent.graph.actions import pager_for
from agent.graph.channels import channel_for
from agent.graph.policy import runbook_of
from agent.graph.requests import approvers_for, ask_approval, edit_request
from agent.graph.state import IncidentState, RunContext
from agent.incidents.models import Incident, page_dedup_key
from agent.store.db import session_scope
from tools.protocols import PageRequest

ACTOR = "agent.followup"


def renotify(ctx: RunContext, run: dict[str, Any], incident: Incident, breach: Breach) -> None:
    """Tell again that the breach goes on: the same page again (same dedup_key), a thread reply."""
    pages = [a for a in run.get("actions", []) if a.get("kind") == "page" and a["status"] == "done"]
    text = f"Still breaching after the repeat interval: {breach.title()}"
    for page in pages:
        pager = pager_for(ctx, run.get("service"), page.get("team"))
        if pager is None:
            continue
        result = pager.trigger(
            PageRequest(
                dedup_key=page_dedup_key(incident.id),
                summary=text,
                severity=page["severity"],
                source=breach.model_id or breach.monitor_key,
                component=breach.model_id,
            )
        )
        _record(
            ctx,
            incident,
            "action.succeeded" if result.status == "ok" else "action.failed",
            result.audit_data(),
        )
    _tell(ctx, run, incident, text)
    _record(
        ctx,
        incident,
        "incident.renotified",
        {
            "summary": f"repeat interval passed: notified again ({len(pages)} page(s) re-sent)",
        },
    )


def resolve_outside(ctx: RunContext, run: dict[str, Any], incident: Incident) -> datetime | None:
    """Resolve the incident's pages, fail back per the runbook, and say so in the thread.

    Return when a failback that waits for approval expires (None when nothing waits).
    """
    actions = run.get("actions", [])
    teams = {a.get("team") for a in actions if a.get("kind") == "page" and a["status"] == "done"}
    for team in teams:
        pager = pager_for(ctx, run.get("service"), team)
        if pager is None:
            continue
        result = pager.resolve(page_dedup_key(incident.id))
        _record(
            ctx,
            incident,
            "action.succeeded" if result.status == "ok" else "action.failed",
            result.audit_data(),
        )
    notes = [
        _failback(ctx, run, incident, failover)
        for failover in actions
        if failover.get("kind") == "failover" and failover["status"] == "done"
    ]
    _tell(
        ctx,
        run,
        incident,
        " ".join([f"Resolved: the monitor reports healthy again. {incident.title}", *notes]),
    )
    return _next_failback_moment(ctx, incident.id)


def settle_failbacks(ctx: RunContext, run: dict[str, Any], incident: Incident) -> datetime | None:
    """Carry out (or drop) each decided failback of a resolved incident, exactly once.

    Return when the next still-pending request expires (None when none is left).
    """
    with session_scope(ctx.engine) as session:
        requests = session.exec(
            select(Approval).where(
                Approval.incident_id == incident.id,
                Approval.kind == "failback",
                col(Approval.settled_at).is_(None),
            )
        ).all()
        for approval in requests:
            close_if_due(session=session, audit=ctx.audit, approval=approval)
            session.expunge(approval)
    for approval in requests:
        if not approval.decided:
            continue
        failover = next(
            (
                a
                for a in run.get("actions", [])
                if a.get("kind") == "failover"
                and a.get("status") == "done"
                and a["target"]["name"] == approval.target
            ),
            None,
        )
        service = str(run.get("service"))
        if approval.status == ApprovalStatus.approved and failover is not None:
            note = _restore(ctx, incident, service, failover)
        else:
            why = approval.reason or str(approval.status)
            _record(
                ctx,
                incident,
                "action.not_taken",
                {
                    "summary": f"failback of {service} not taken: {approval.status} ({why})",
                    "kind": "failback",
                    "approval_id": str(approval.id),
                },
            )
            note = f"Failback of {service} not taken: {approval.status}; it stays on "
            note += f"{approval.target} until someone moves it back."
        with session_scope(ctx.engine) as session:
            stored = session.get(Approval, approval.id)
            if stored is not None:
                stored.settled_at = ctx.now()
                session.add(stored)
        edit_request(ctx, cast(IncidentState, run), approval, note)
        _tell(ctx, run, incident, note)
    return _next_failback_moment(ctx, incident.id)


def _next_failback_moment(ctx: RunContext, incident_id: uuid.UUID) -> datetime | None:
    """Return when the incident's unsettled failbacks need a worker: now if one is decided
    (possibly while the resolution was still being told), else at the first expiry."""
    with session_scope(ctx.engine) as session:
        unsettled = session.exec(
            select(Approval).where(
                Approval.incident_id == incident_id,
                Approval.kind == "failback",
                col(Approval.settled_at).is_(None),
            )
        ).all()
        moments = [ctx.now() if a.decided else a.expires_at for a in unsettled]
    return min(moments) if moments else None


def _failback(
    ctx: RunContext, run: dict[str, Any], incident: Incident, failover: dict[str, Any]
) -> str:
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
        _record(
            ctx,
            incident,
            "action.not_taken",
            {
                "summary": f"failback of {service} not taken: {why}",
                "kind": "failback",
                "idempotency_key": failover["idempotency_key"],
            },
        )
        return f"Failback of {service} not taken: {why}."
    return _restore(ctx, incident, service, failover)


def _restore(ctx: RunContext, incident: Incident, service: str, failover: dict[str, Any]) -> str:
    """Move the service back, keyed like its failover, so a retry changes nothing twice."""
    tools = ctx.service_tools(service)
    if tools is None or tools.failover is None:
        return f"Failback of {service} not taken: no failover backend configured."
    _record(
        ctx,
        incident,
        "action.started",
        {
            "summary": f"fail {service} back to its route before the incident",
            "action": "failback",
            "idempotency_key": failover["idempotency_key"],
        },
    )
    result = tools.failover.restore(service, idempotency_key=failover["idempotency_key"])
    ok = result.status == "ok"
    _record(ctx, incident, "action.succeeded" if ok else "action.failed", result.audit_data())
    return f"Failback of {service}: {'done' if ok else 'FAILED'} ({result.summary})."


def _tell(ctx: RunContext, run: dict[str, Any], incident: Incident, text: str) -> None:
    """Reply in the incident's thread; an incident nobody was told about gets no reply."""
    chat = ctx.tools.chat
    channel = incident.slack_channel or channel_for(ctx, run.get("service"))
    if chat is None or channel is None or not incident.slack_thread_ts:
        return
    result = chat.post(
        channel=channel, text=ctx.audit.redactor.text(text), thread_ts=incident.slack_thread_ts
    )
    _record(
        ctx,
        incident,
        "notification.sent" if result.status == "ok" else "notification.failed",
        result.audit_data(),
    )


def _record(ctx: RunContext, incident: Incident, kind: str, data: dict[str, Any]) -> None:
    ctx.audit.record_now(
        ctx.engine, kind, data, actor=ACTOR, incident_id=uuid.UUID(str(incident.id))
    )
