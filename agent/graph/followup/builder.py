"""Assemble the follow-up graph: one run per follow-up, each on a thread of its own.

renotify: repage → tell → renotified
resolve:  resolve_pages → fail_back → tell
settle:   settle_failback → update_request → tell → settled
retry:    fail_back → tell  (a held failback due again)

Every node checkpoints, so a follow-up retried after a crash resumes at the node that did not
finish: a page is not resolved twice, the thread gets one reply. A node cut short repeats its own
calls, which are keyed (page dedup key, the failover's idempotency key, one request per action).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from agent.graph.followup.nodes.fail_back import fail_back
from agent.graph.followup.nodes.renotified import renotified
from agent.graph.followup.nodes.repage import repage
from agent.graph.followup.nodes.resolve_pages import resolve_pages
from agent.graph.followup.nodes.settle_failback import settle_failback
from agent.graph.followup.nodes.settled import settled
from agent.graph.followup.nodes.tell import route_after_tell, tell
from agent.graph.followup.nodes.update_request import update_request
from agent.graph.followup.state import FollowupKind, FollowupState
from agent.graph.state import RunContext

FOLLOWUP_GRAPH_NAME = "incident_followup"


def thread_id(incident_id: uuid.UUID, kind: FollowupKind, key: str | None = None) -> str:
    """Return the thread of one follow-up; never an incident id, the main run's thread.

    resolve: one per incident (an incident resolves once; its alert's retry resumes it).
    renotify: one per alert that made the notice due. settle: one per failback request.
    retry: one per attempt at the incident's held failbacks.
    """
    return f"{incident_id}:followup:{kind}" + (f":{key}" if key else "")


def build_followup_graph(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """Compile the follow-up graph once, with the checkpointer of the incident graph."""
    builder = StateGraph(FollowupState, context_schema=RunContext)
    builder.add_node("repage", repage)
    builder.add_node("renotified", renotified)
    builder.add_node("resolve_pages", resolve_pages)
    builder.add_node("fail_back", fail_back)
    builder.add_node("settle_failback", settle_failback)
    builder.add_node("update_request", update_request)
    builder.add_node("tell", tell)
    builder.add_node("settled", settled)
    builder.add_conditional_edges(
        START, route_followup, ["repage", "resolve_pages", "settle_failback", "fail_back"]
    )
    builder.add_edge("repage", "tell")
    builder.add_edge("resolve_pages", "fail_back")
    builder.add_edge("fail_back", "tell")
    builder.add_edge("settle_failback", "update_request")
    builder.add_edge("update_request", "tell")
    builder.add_conditional_edges("tell", route_after_tell, ["renotified", "settled", END])
    builder.add_edge("renotified", END)
    builder.add_edge("settled", END)
    return builder.compile(checkpointer=checkpointer, name=FOLLOWUP_GRAPH_NAME)


def route_followup(
    state: FollowupState,
) -> Literal["repage", "resolve_pages", "settle_failback", "fail_back"]:
    """Start where the follow-up's kind begins."""
    if state["kind"] == "renotify":
        return "repage"
    if state["kind"] == "resolve":
        return "resolve_pages"
    if state["kind"] == "retry":
        return "fail_back"
    return "settle_failback"
