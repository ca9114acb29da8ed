"""Report: the incident's Slack thread gets the report, each page a note of it.

What the report says is built in `agent.graph.messages`; this node posts it, once per incident.
"""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime
from sqlmodel import Session, col, select

from agent.graph.channels import Queued, post_to_incident
from agent.graph.messages import page_note, summary_message
from agent.graph.policy import runbook_of
from agent.graph.state import IncidentState, RunContext
from agent.outside_text import plain
from audit.models import AuditEvent

REPORTER = "agent.report"
NOTE_KINDS = {"ok": "note.added", "no_data": "note.skipped"}
REPORT_STEP = "report"
"""The summary is posted (and noted on the page) once per incident, whatever the resumes."""


def report(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Post the incident summary to Slack (redacted like the audit trail)."""
    ctx = runtime.context
    steps = next_steps(ctx, state)
    text, blocks = summary_message(state, ctx.settings.public_url, next_steps=steps)
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
    # A note is plain text (PagerDuty may forward it to chat): the whole report, inert.
    note = page_note(state, ctx.settings.public_url, next_steps=steps)
    _note_on_page(ctx, state, plain(ctx.audit.redactor.text(note)))
    if isinstance(posted, Queued):
        # The channel is busy: its sender posts the summary (or the digest lists the incident).
        return {"report": {"status": "queued", "channel": posted.channel, "key": posted.key}}
    channel, ts = posted
    return {"report": {"status": "sent", "channel": channel, "ts": ts}}


def next_steps(ctx: RunContext, state: IncidentState) -> list[str]:
    """Return the runbook's suggested next steps for the run's diagnosis."""
    kind = str(state.get("diagnosis", {}).get("kind", ""))
    return runbook_of(ctx, state["runbook"]).next_steps.of(kind)


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
    with Session(ctx.engine) as session:  # a read: no write turn taken
        found = session.exec(
            select(AuditEvent.seq).where(
                AuditEvent.incident_id == uuid.UUID(state["incident_id"]),
                col(AuditEvent.kind).in_(list(NOTE_KINDS.values())),
                AuditEvent.actor == REPORTER,
                col(AuditEvent.data).contains(dedup_key),
            )
        ).first()
    return found is not None
