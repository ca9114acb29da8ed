"""The nodes of the incident graph; each calls tools, never SDKs, and audits what it did."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from langgraph.runtime import Runtime

from agent.alerts.models import Breach
from agent.db import session_scope
from agent.graph.state import IncidentState, RunContext
from agent.incidents.models import page_dedup_key
from agent.incidents.service import set_slack_thread
from tools.protocols import LogQuery, PageRequest

INVESTIGATOR = "agent.investigate"
DECIDER = "agent.decide"
ACTOR_PAGE = "agent.page"
ACTOR_REPORT = "agent.report"


def investigate(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Read the logs of the breached model around the breach time."""
    ctx = runtime.context
    breach = state["breach"]
    logs = ctx.tools.logs
    if logs is None:
        ctx.record(
            state,
            "probe.skipped",
            INVESTIGATOR,
            {
                "summary": "logs: no log source configured, nothing to read",
                "tool": "logs",
            },
        )
        return {"findings": []}
    anchor = _breach_time(breach, ctx.now())
    query = LogQuery(
        start=anchor - timedelta(minutes=ctx.settings.logs_lookback_minutes),
        end=max(ctx.now(), anchor),
        model_id=breach.get("model_id"),
        model_version=breach.get("model_version"),
    )
    ctx.record(
        state,
        "probe.requested",
        INVESTIGATOR,
        {
            "summary": f"{logs.name}: search logs of {query.model_id or 'all models'} "
            f"from {query.start:%H:%M:%S} to {query.end:%H:%M:%S} UTC",
            "tool": logs.name,
        },
    )
    result = logs.search(query)
    ctx.record(state, "probe.completed", INVESTIGATOR, result.audit_data())
    return {"findings": [result.model_dump(mode="json")]}


def decide(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Apply the built-in rule: a triggered breach opens a page."""
    ctx = runtime.context
    breach = state["breach"]
    findings = state.get("findings", [])
    evidence = [f"{f['tool']}: {f['status']} — {f['summary']}" for f in findings]
    if breach.get("status") == "triggered":
        decision = {
            "rule": "builtin.page_on_breach",
            "action": "page",
            "severity": ctx.settings.page_severity,
            "reason": "the monitor is breached; on-call is paged while no runbook narrows it",
            "evidence": evidence,
        }
    else:
        decision = {
            "rule": "builtin.page_on_breach",
            "action": "none",
            "reason": f"monitor status is {breach.get('status')}, nothing to page",
            "evidence": evidence,
        }
    ctx.record(
        state,
        "decision.made",
        DECIDER,
        {
            "summary": f"decided: {decision['action']} ({decision['reason']})",
            **decision,
        },
    )
    return {"decision": decision}


def route_after_decide(state: IncidentState) -> Literal["page", "report"]:
    """Send the run to `page` only when the decision is to page."""
    return "page" if state.get("decision", {}).get("action") == "page" else "report"


def page(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Trigger the PagerDuty alert of this incident (its dedup_key makes a retry harmless)."""
    ctx = runtime.context
    breach = state["breach"]
    incident_id = uuid.UUID(state["incident_id"])
    request = PageRequest(
        dedup_key=page_dedup_key(incident_id),
        summary=_title(breach),
        source=breach.get("model_id") or breach.get("monitor_id") or "llm-service",
        severity=state["decision"]["severity"],
        component=breach.get("model_id"),
        group=breach.get("environment"),
        custom_details={
            "incident_id": str(incident_id),
            "monitor": breach.get("monitor_name") or breach.get("monitor_id"),
            "metric": breach.get("metric"),
            "value": breach.get("value"),
            "threshold": breach.get("threshold"),
            "segment": breach.get("segment"),
            "evidence": state["decision"].get("evidence", []),
        },
        links=_links(breach, ctx, incident_id),
    )
    pager = ctx.tools.pager
    if pager is None:
        outcome: dict[str, Any] = {
            "action": "page",
            "status": "dry_run",
            "summary": f"dry-run: would page on-call at {request.severity} "
            f"with dedup_key {request.dedup_key} (PagerDuty not configured)",
            "dedup_key": request.dedup_key,
        }
        ctx.record(state, "action.dry_run", ACTOR_PAGE, outcome)
        return {"actions": [outcome]}
    ctx.record(
        state,
        "action.started",
        ACTOR_PAGE,
        {
            "summary": f"page on-call at {request.severity} (dedup_key {request.dedup_key})",
            "action": "page",
            "idempotency_key": request.dedup_key,
        },
    )
    result = pager.trigger(request)
    outcome = {
        "action": "page",
        "status": "done" if result.status == "ok" else "failed",
        "summary": result.summary,
        "dedup_key": request.dedup_key,
        "error": result.error,
    }
    kind = "action.succeeded" if outcome["status"] == "done" else "action.failed"
    ctx.record(state, kind, ACTOR_PAGE, result.audit_data())
    return {"actions": [outcome]}


def report(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Post the incident summary to the incident's Slack thread."""
    ctx = runtime.context
    text, blocks = _summary_message(state)
    # Slack is outside the trust boundary: it gets the same redaction as the audit trail.
    text = ctx.audit.redactor.text(text)
    blocks = cast(list[dict[str, Any]], ctx.audit.redactor.value(blocks))
    chat, channel = ctx.tools.chat, ctx.tools.chat_channel
    if chat is None or channel is None:
        ctx.record(
            state,
            "notification.dry_run",
            ACTOR_REPORT,
            {
                "summary": "dry-run: would post the incident summary (Slack not configured)",
                "text": text,
            },
        )
        return {"report": {"status": "dry_run"}}
    result = chat.post(channel=channel, text=text, blocks=blocks)
    if result.status != "ok":
        ctx.record(state, "notification.failed", ACTOR_REPORT, result.audit_data())
        return {"report": {"status": "failed", "error": result.error}}
    ts = str(result.evidence.get("ts"))
    posted_channel = str(result.evidence.get("channel") or channel)
    with session_scope(ctx.engine) as session:
        set_slack_thread(
            session=session,
            incident_id=uuid.UUID(state["incident_id"]),
            channel=posted_channel,
            thread_ts=ts,
        )
    ctx.record(state, "notification.sent", ACTOR_REPORT, result.audit_data())
    return {"report": {"status": "sent", "channel": posted_channel, "ts": ts}}


def _breach_time(breach: dict[str, Any], fallback: datetime) -> datetime:
    raw = breach.get("triggered_at")
    return datetime.fromisoformat(raw) if raw else fallback


def _title(breach: dict[str, Any]) -> str:
    return Breach.model_validate(breach).title()


def _links(breach: dict[str, Any], ctx: RunContext, incident_id: uuid.UUID) -> list[dict[str, str]]:
    links = []
    if breach.get("url"):
        links.append({"href": str(breach["url"]), "text": "Arize monitor"})
    if ctx.settings.public_url:
        href = f"{ctx.settings.public_url.rstrip('/')}/incidents/{incident_id}"
        links.append({"href": href, "text": "Remediation audit trail"})
    return links


def _summary_message(state: IncidentState) -> tuple[str, list[dict[str, Any]]]:
    breach = state["breach"]
    decision = state.get("decision", {})
    title = _title(breach)
    findings = [
        f"• {f['tool']}: *{f['status']}* — {f['summary']}" for f in state.get("findings", [])
    ]
    actions = [
        f"• {a['action']}: *{a['status']}* — {a['summary']}" for a in state.get("actions", [])
    ]
    text = f"Incident: {title}. Decision: {decision.get('action', 'none')}."
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"*Incident* `{state['incident_id']}`\n"
                    f"*Decision:* {decision.get('action', 'none')} "
                    f"— {decision.get('reason', '')}"
                )[:3000],
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": ("*Evidence*\n" + ("\n".join(findings) or "• none gathered"))[:3000],
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": ("*Actions*\n" + ("\n".join(actions) or "• none"))[:3000],
            },
        },
    ]
    return text, blocks
