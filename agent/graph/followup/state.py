"""The state one follow-up carries from node to node (checkpointed after each)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from agent.incidents.models import Incident

FollowupKind = Literal["renotify", "resolve", "settle", "retry"]


class FollowupState(TypedDict, total=False):
    """Plain JSON values only, like the main run's state; set at the start but for `notes`."""

    incident_id: str
    """The incident followed up."""
    kind: FollowupKind
    """renotify: the breach goes on; resolve: the monitor is healthy; settle: a failback decided;
    retry: a held failback is due again."""
    incident: dict[str, Any]
    """The incident as the worker saw it: title, Slack channel and thread (`incident_view`)."""
    run: dict[str, Any]
    """The incident run's last checkpointed state values (service, runbook, actions, …)."""
    breach: dict[str, Any]
    """renotify: the breach that arrived after the repeat interval, as JSON."""
    approval_id: str
    """settle: the decided failback request this follow-up carries out (or drops)."""
    step: str
    """The follow-up's own thread id: its thread reply is posted once per incident and step."""
    notes: Annotated[list[str], operator.add]
    """What the thread reply says after its first line; appended by the nodes."""


def incident_view(incident: Incident) -> dict[str, Any]:
    """Return what a follow-up needs of the incident row, as JSON."""
    return {
        "id": str(incident.id),
        "title": incident.title,
        "slack_channel": incident.slack_channel,
        "slack_thread_ts": incident.slack_thread_ts,
    }
