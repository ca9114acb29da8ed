"""Tell: one reply in the incident's thread says what the follow-up did."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from agent.graph.followup.effects import reply, still_breaching
from agent.graph.followup.state import FollowupState
from agent.graph.state import RunContext


def tell(state: FollowupState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Reply in the thread: the breach goes on, the incident resolved, or a failback's fate."""
    lead: list[str] = []
    if state["kind"] == "renotify":
        lead = [still_breaching(state)]
    elif state["kind"] == "resolve":
        lead = [f"Resolved: the monitor reports healthy again. {state['incident']['title']}"]
    text = " ".join([*lead, *state.get("notes", [])])
    if text:  # a retry that changed nothing worth telling says nothing
        reply(runtime.context, state, text)
    return {}


def route_after_tell(state: FollowupState) -> Literal["renotified", "settled", "__end__"]:
    """Record a repeat notice, mark a failback settled; a resolution is over once told."""
    if state["kind"] == "renotify":
        return "renotified"
    if state["kind"] == "settle":
        return "settled"
    return "__end__"
