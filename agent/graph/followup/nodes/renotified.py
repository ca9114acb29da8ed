"""Renotified: the repeat notice is on record, with the number of pages sent again."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.graph.followup.effects import done_actions, record
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext


def renotified(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Record that the incident was notified again after the repeat interval."""
    pages = done_actions(state, "page")
    record(
        runtime.context,
        state,
        "incident.renotified",
        {"summary": f"repeat interval passed: notified again ({len(pages)} page(s) re-sent)"},
    )
    return {}
