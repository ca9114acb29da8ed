"""The state one incident's graph run carries from node to node (checkpointed after each)."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypedDict

from sqlalchemy import Engine

from agent.auditlog import AuditLog
from agent.settings import Settings
from agent.toolbox import Toolbox


class IncidentState(TypedDict, total=False):
    """Plain JSON values only, so checkpoints stay portable across versions."""

    incident_id: str
    """The incident (and thread) id; set once at the start."""
    breach: dict[str, Any]
    """The triggering Breach, as JSON; set once at the start."""
    findings: Annotated[list[dict[str, Any]], operator.add]
    """ToolResults from investigation; each probe appends (parallel-safe reducer)."""
    decision: dict[str, Any]
    """What `decide` chose: the rule, the action and its parameters; last write wins."""
    actions: Annotated[list[dict[str, Any]], operator.add]
    """Outcomes of the actions taken; appended."""
    report: dict[str, Any]
    """Where the summary was posted; last write wins."""


@dataclass(frozen=True)
class RunContext:
    """What nodes need besides the state: settings, adapters, the audit log and a clock."""

    settings: Settings
    engine: Engine
    tools: Toolbox
    audit: AuditLog
    now: Callable[[], datetime]

    def record(self, state: IncidentState, kind: str, actor: str, data: dict[str, Any]) -> None:
        """Append an audit event for this run's incident in a transaction of its own."""
        self.audit.record_now(
            self.engine, kind, data, actor=actor, incident_id=uuid.UUID(state["incident_id"])
        )
