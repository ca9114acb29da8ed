"""Update request: the failback request in Slack is edited to say what became of it."""

from __future__ import annotations

from typing import Any, cast

from langgraph.runtime import Runtime

from agent.graph.followup.effects import load_approval
from agent.graph.followup.state import FollowupState
from agent.graph.requests import edit_request
from agent.graph.state import IncidentState, RunContext


def update_request(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Edit the answered failback request in place with the outcome."""
    ctx = runtime.context
    run = cast(IncidentState, state["run"])
    edit_request(ctx, run, load_approval(ctx, state), " ".join(state.get("notes", [])))
    return {}
