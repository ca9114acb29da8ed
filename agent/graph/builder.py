"""Assemble the incident graph.

triage → probes in parallel (one `probe` per runbook probe) → diagnose → (analyse) → decide
→ act (what needs no approval, at once) → (approve: pauses until a person decides → act again)
→ (verify) → report.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from agent.graph.nodes.act import act, route_after_act
from agent.graph.nodes.analyse import analyse
from agent.graph.nodes.approve import approve
from agent.graph.nodes.decide import decide
from agent.graph.nodes.diagnose import diagnose, route_after_diagnose
from agent.graph.nodes.probe import fan_out, probe
from agent.graph.nodes.report import report
from agent.graph.nodes.triage import triage
from agent.graph.nodes.verify import verify
from agent.graph.state import IncidentState, RunContext

GRAPH_NAME = "incident_remediation"
ACT_NODE = "act"
"""The node that takes the actions needing no approval (the page among them)."""
AFTER_ACTING = frozenset({"approve", "verify", "report"})
"""The nodes a run goes on to once it has acted."""


def build_graph(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """Compile the graph once, with the checkpointer that makes runs resumable."""
    builder = StateGraph(IncidentState, context_schema=RunContext)
    builder.add_node("triage", triage)
    builder.add_node("probe", probe)  # type: ignore[call-overload]
    builder.add_node("diagnose", diagnose)
    builder.add_node("analyse", analyse)
    builder.add_node("decide", decide)
    builder.add_node("approve", approve)
    builder.add_node(ACT_NODE, act)
    builder.add_node("verify", verify)
    builder.add_node("report", report)
    builder.add_edge(START, "triage")
    builder.add_conditional_edges("triage", fan_out, ["probe", "diagnose"])
    builder.add_edge("probe", "diagnose")
    builder.add_conditional_edges("diagnose", route_after_diagnose, ["analyse", "decide"])
    builder.add_edge("analyse", "decide")
    builder.add_edge("decide", "act")
    builder.add_edge("approve", "act")
    builder.add_conditional_edges("act", route_after_act, ["approve", "verify", "report"])
    builder.add_edge("verify", "report")
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer, name=GRAPH_NAME)
