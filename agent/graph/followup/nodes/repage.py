"""Repage: the breach goes on after the repeat interval, so the incident's pages go out again."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime

from agent.alerts.models import Breach
from agent.graph.actions import outgoing_page, pager_for
from agent.graph.followup.effects import done_actions, record, still_breaching
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext
from agent.incidents.models import page_dedup_key
from tools.protocols import PageRequest


def repage(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Trigger each page of the run again with its own dedup key: the same PagerDuty alert."""
    ctx = runtime.context
    breach = Breach.model_validate(state["breach"])
    for page in done_actions(state, "page"):
        pager = pager_for(ctx, state["run"].get("service"), page.get("team"))
        if pager is None:
            continue
        request = PageRequest(
            dedup_key=page.get("dedup_key")
            or page_dedup_key(uuid.UUID(state["incident_id"]), page.get("team")),
            summary=still_breaching(state),
            severity=page["severity"],
            source=breach.model_id or breach.monitor_key,
            component=breach.model_id,
        )
        result = pager.trigger(outgoing_page(ctx, request))
        ok = result.status == "ok"
        record(ctx, state, "action.succeeded" if ok else "action.failed", result.audit_data())
    return {}
