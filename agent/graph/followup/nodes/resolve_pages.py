"""Resolve pages: the monitor is healthy again, so each paged team's incident is resolved."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime

from agent.graph.actions import pager_for
from agent.graph.followup.effects import done_actions, record
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext
from agent.incidents.models import page_dedup_key


def resolve_pages(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Resolve the incident's page with each paged team's pager (same dedup key as the trigger)."""
    ctx = runtime.context
    teams = {a.get("team") for a in done_actions(state, "page")}
    for team in teams:
        pager = pager_for(ctx, state["run"].get("service"), team)
        if pager is None:
            continue
        result = pager.resolve(page_dedup_key(uuid.UUID(state["incident_id"])))
        ok = result.status == "ok"
        record(ctx, state, "action.succeeded" if ok else "action.failed", result.audit_data())
    return {}
