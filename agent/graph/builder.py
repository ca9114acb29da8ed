"""Assemble the incident graph: investigate → decide → (page) → report."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from agent.graph.nodes import decide, investigate, page, report, route_after_decide
from agent.graph.state import IncidentState, RunContext

GRAPH_NAME = "incident_remediation"


def build_graph(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """Compile the graph once, with the checkpointer that makes runs resumable."""
    builder = StateGraph(IncidentState, context_schema=RunContext)
    builder.add_node("investigate", investigate)
    builder.add_node("decide", decide)
    builder.add_node("page", page)
    builder.add_node("report", report)
    builder.add_edge(START, "investigate")
    builder.add_edge("investigate", "decide")
    builder.add_conditional_edges("decide", route_after_decide, ["page", "report"])
    builder.add_edge("page", "report")
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)
