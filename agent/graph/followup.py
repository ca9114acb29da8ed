"""What happens to an incident after its run: repeat notices, and resolution with failback."""

from __future__ import annotations

import uuid
from typing import Any

from agent.alerts.models import Breach
from agent.graph.act import pager_for
from agent.graph.policy import runbook_of
from agent.graph.report import channel_for
from agent.graph.state import RunContext
from agent.incidents.models import Incident, page_dedup_key
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


def resolve_outside(ctx: RunContext, run: dict[str, Any], incident: Incident) -> None:
    """Resolve the incident's pages, fail back per the runbook, and say so in the thread."""
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


def _failback(
    ctx: RunContext, run: dict[str, Any], incident: Incident, failover: dict[str, Any]
) -> str:
    service = str(run.get("service"))
    runbook = runbook_of(ctx, str(run.get("runbook")))
    tools = ctx.service_tools(service)
    if runbook.failback != "auto" or tools is None or tools.failover is None:
        why = (
            "the runbook wants approval, which is not available yet"
            if runbook.failback != "auto"
            else "no failover backend configured"
        )
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
