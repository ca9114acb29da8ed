"""Report: the incident's Slack thread gets the diagnosis, the evidence and what was done."""

from __future__ import annotations

import html
import uuid
from typing import Any

from langgraph.runtime import Runtime
from sqlmodel import col, select

from agent.alerts.models import Breach
from agent.graph.channels import Queued, post_to_incident
from agent.graph.state import IncidentState, RunContext
from agent.outside_text import http_url, mrkdwn, mrkdwn_link, plain
from agent.store.db import session_scope
from audit.models import AuditEvent

REPORTER = "agent.report"
NOTE_KINDS = {"ok": "note.added", "no_data": "note.skipped"}
REPORT_STEP = "report"
"""The summary is posted (and noted on the page) once per incident, whatever the resumes."""


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
        step=REPORT_STEP,
    )
    if posted is None:
        return {"report": {"status": "dry_run"}}
    if isinstance(posted, str):
        return {"report": {"status": "failed", "error": posted}}
    # A note is plain text (PagerDuty may forward it to chat): the summary, unescaped, inert.
    _note_on_page(ctx, state, plain(html.unescape(ctx.audit.redactor.text(text))))
    if isinstance(posted, Queued):
        # The channel is busy: its sender posts the summary (or the digest lists the incident).
        return {"report": {"status": "queued", "channel": posted.channel, "key": posted.key}}
    channel, ts = posted
    return {"report": {"status": "sent", "channel": channel, "ts": ts}}


def _note_on_page(ctx: RunContext, state: IncidentState, text: str) -> None:
    """Add the summary as a note to each PagerDuty incident this run paged (REST, when set up)."""
    paged = [a for a in state.get("actions", []) if a["kind"] == "page" and a["status"] == "done"]
    if ctx.tools.incidents is None:
        return
    for dedup_key in dict.fromkeys(str(a["dedup_key"]) for a in paged):
        if _noted_before(ctx, state, dedup_key):
            continue
        result = ctx.tools.incidents.note_for_dedup_key(dedup_key, text)
        kind = NOTE_KINDS.get(str(result.status), "note.failed")
        ctx.record(state, kind, REPORTER, result.audit_data())


def _noted_before(ctx: RunContext, state: IncidentState, dedup_key: str) -> bool:
    """Tell whether the summary is already a note on this page (a resumed run)."""
    with session_scope(ctx.engine) as session:
        found = session.exec(
            select(AuditEvent.seq).where(
                AuditEvent.incident_id == uuid.UUID(state["incident_id"]),
                col(AuditEvent.kind).in_(list(NOTE_KINDS.values())),
                AuditEvent.actor == REPORTER,
                col(AuditEvent.data).contains(dedup_key),
            )
        ).first()
    return found is not None


def summary_message(
    state: IncidentState, public_url: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """Return the Slack text and Block Kit blocks that summarise the run.

    Every value in it came from outside (the alert, what the probes read, what other systems
    answered): each is escaped, so nothing in it can mention anyone or make a link.
    """
    breach = state["breach"]
    diagnosis = state.get("diagnosis", {})
    title = mrkdwn(Breach.model_validate(breach).title(state.get("service")))
    findings = [
        f"• {mrkdwn(f['probe'])}: *{mrkdwn(f['status'])}* — {mrkdwn(f['summary'])}"
        for f in state.get("findings", [])
    ]
    actions = [
        f"• {mrkdwn(a['kind'])}: *{mrkdwn(a['status'])}* — {mrkdwn(a.get('summary', ''))}"
        for a in state.get("actions", [])
    ]
    verification = state.get("verification")
    if verification:
        actions.append(
            f"• verification: *{mrkdwn(verification['status'])}* — "
            f"{mrkdwn(verification.get('summary', ''))}"
        )
    analysis = state.get("analysis") or {}
    hypothesis = (analysis.get("hypothesis") or {}).get("summary")
    done = ", ".join(f"{a['kind']} {a['status']}" for a in state.get("actions", [])) or "none"
    kind = mrkdwn(diagnosis.get("kind", "none"))
    text = f"Incident: {title}. Diagnosis: {kind}. Actions: {mrkdwn(done)}."
    sections = [
        f"*Incident* `{state['incident_id']}` · runbook `{mrkdwn(state.get('runbook', '-'))}`",
        f"*Diagnosis:* {kind} — {mrkdwn(diagnosis.get('summary', ''))}",
        "*Evidence*\n" + ("\n".join(findings) or "• none gathered"),
        "*Actions*\n" + ("\n".join(actions) or "• none"),
    ]
    if hypothesis:
        allowed = "adopted" if analysis.get("proposal_allowed") else "discarded"
        sections.append(f"*Analyst hypothesis:* {mrkdwn(hypothesis)} (proposal {allowed})")
    links = []
    if http_url(breach.get("url")):
        links.append(mrkdwn_link(breach["url"], "Arize monitor"))
    if public_url:
        trail = f"{public_url.rstrip('/')}/ui/incidents/{state['incident_id']}"
        links.append(mrkdwn_link(trail, "Audit trail"))
    if links:
        sections.append("*Links:* " + " · ".join(links))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}}
    ]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": s[:3000]}} for s in sections]
    return text, blocks
