"""Resolve pages: the monitor is healthy again, so each paged team's incident is resolved."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime

from agent.causes.paging import resolve_cause_page, tell_cause_resolution
from agent.graph.actions import pager_for
from agent.graph.followup.effects import done_actions, record
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext
from agent.incidents.models import page_dedup_key


def resolve_pages(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Resolve each page of the incident with its team's pager (its own dedup key, as sent)."""
    ctx = runtime.context
    incident_id = uuid.UUID(state["incident_id"])
    pages = {
        str(a.get("dedup_key") or page_dedup_key(incident_id, a.get("team"))): a.get("team")
        for a in done_actions(state, "page")
    }
    for dedup_key, team in pages.items():
        # A cause's page resolves with its last linked incident, never before.
        cause = resolve_cause_page(ctx, dedup_key, incident_id)
        pager = pager_for(ctx, state["run"].get("service"), team)
        if pager is not None and (cause is None or cause.resolve):
            result = pager.resolve(dedup_key)
            ok = result.status == "ok"
            record(ctx, state, "action.succeeded" if ok else "action.failed", result.audit_data())
        if cause is not None:
            tell_cause_resolution(ctx, state, cause)
    return {}
