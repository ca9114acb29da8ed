"""Report: the incident's Slack thread gets the diagnosis, the evidence and what was done."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.alerts.models import Breach
from agent.graph.channels import post_to_incident
from agent.graph.state import IncidentState, RunContext

REPORTER = "agent.report"


def report(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Post the incident summary to Slack (redacted like the audit trail)."""
    ctx = runtime.context
    text, blocks = summary_message(state, ctx.settings.public_url)
    posted = post_to_incident(
        ctx,
        state,
        text,
        blocks,
        actor=REPORTER,
        dry_run="dry-run: would post the incident summary (Slack not configured)",
    )
    if posted is None:
        return {"report": {"status": "dry_run"}}
    if isinstance(posted, str):
        return {"report": {"status": "failed", "error": posted}}
    channel, ts = posted
    _note_on_page(ctx, state, ctx.audit.redactor.text(text))
    return {"report": {"status": "sent", "channel": channel, "ts": ts}}


def _note_on_page(ctx: RunContext, state: IncidentState, text: str) -> None:
    """Add the summary as a note to each PagerDuty incident this run paged (REST, when set up)."""
    paged = [a for a in state.get("actions", []) if a["kind"] == "page" and a["status"] == "done"]
    if ctx.tools.incidents is None:
        return
    for dedup_key in dict.fromkeys(str(a["dedup_key"]) for a in paged):
        result = ctx.tools.incidents.note_for_dedup_key(dedup_key, text)
        kind = {"ok": "note.added", "no_data": "note.skipped"}.get(
            str(result.status), "note.failed"
        )
        ctx.record(state, kind, REPORTER, result.audit_data())


def summary_message(
    state: IncidentState, public_url: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """Return the Slack text and Block Kit blocks that summarise the run."""
    breach = state["breach"]
    diagnosis = state.get("diagnosis", {})
    title = Breach.model_validate(breach).title(state.get("service"))
    findings = [
        f"• {f['probe']}: *{f['status']}* — {f['summary']}" for f in state.get("findings", [])
    ]
    actions = [
        f"• {a['kind']}: *{a['status']}* — {a.get('summary', '')}" for a in state.get("actions", [])
    ]
    verification = state.get("verification")
    if verification:
        actions.append(
            f"• verification: *{verification['status']}* — {verification.get('summary', '')}"
        )
    analysis = state.get("analysis") or {}
    hypothesis = (analysis.get("hypothesis") or {}).get("summary")
    done = ", ".join(f"{a['kind']} {a['status']}" for a in state.get("actions", [])) or "none"
    text = f"Incident: {title}. Diagnosis: {diagnosis.get('kind', 'none')}. Actions: {done}."
    sections = [
        f"*Incident* `{state['incident_id']}` · runbook `{state.get('runbook', '-')}`",
        f"*Diagnosis:* {diagnosis.get('kind', 'none')} — {diagnosis.get('summary', '')}",
        "*Evidence*\n" + ("\n".join(findings) or "• none gathered"),
        "*Actions*\n" + ("\n".join(actions) or "• none"),
    ]
    if hypothesis:
        allowed = "adopted" if analysis.get("proposal_allowed") else "discarded"
        sections.append(f"*Analyst hypothesis:* {hypothesis} (proposal {allowed})")
    links = []
    if breach.get("url"):
        links.append(f"<{breach['url']}|Arize monitor>")
    if public_url:
        links.append(f"<{public_url.rstrip('/')}/ui/incidents/{state['incident_id']}|Audit trail>")
    if links:
        sections.append("*Links:* " + " · ".join(links))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}}
    ]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": s[:3000]}} for s in sections]
    return text, blocks
