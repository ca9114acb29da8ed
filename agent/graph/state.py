"""The state one incident's graph run carries from node to node (checkpointed after each)."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from sqlalchemy import Engine

from agent.adapters.factory import Adapters, ServiceTools
from agent.changes.source import DeploymentChangeSource
from agent.settings import Settings
from agent.store.audit_log import AuditLog
from runbooks.catalog import Catalog
from runbooks.schema import Runbook

if TYPE_CHECKING:
    from tools.analyst.llm import LlmAnalyst


class IncidentState(TypedDict, total=False):
    """Plain JSON values only, so checkpoints stay portable across versions."""

    incident_id: str
    """The incident (and thread) id; set once at the start."""
    breach: dict[str, Any]
    """The triggering Breach, as JSON; set once at the start."""
    service: str | None
    """The catalog service the breach belongs to (None: not catalogued); set by triage."""
    runbook: str
    """The matched runbook's `name@version` (or the built-in one); set by triage."""
    probes: dict[str, float]
    """Probe name → timeout in seconds, from the runbook; set by triage."""
    findings: Annotated[list[dict[str, Any]], operator.add]
    """One ToolResult (plus `probe`) per probe; parallel probes append (reducer: concatenate)."""
    diagnosis: dict[str, Any]
    """What `diagnose` concluded, with the evidence for and against each candidate."""
    analysis: dict[str, Any]
    """The LLM analyst's hypothesis and proposal, when it was consulted."""
    plan: list[dict[str, Any]]
    """The actions `decide` chose from the runbook, in order; last write wins."""
    actions: Annotated[list[dict[str, Any]], operator.add]
    """Outcomes of the actions taken; appended."""
    verification: dict[str, Any]
    """The probe of the new route after a failover."""
    report: dict[str, Any]
    """Where the summary was posted; last write wins."""


@dataclass(frozen=True)
class RunContext:
    """What nodes need besides the state: settings, adapters, policies, the audit log, a clock."""

    settings: Settings
    engine: Engine
    tools: Adapters
    audit: AuditLog
    now: Callable[[], datetime]
    runbooks: list[Runbook] = field(default_factory=list)

    @property
    def catalog(self) -> Catalog | None:
        """Return the service catalog, when one is configured."""
        return self.tools.catalog

    @property
    def analyst(self) -> LlmAnalyst | None:
        """Return the optional LLM analyst."""
        return self.tools.analyst

    def record(self, state: IncidentState, kind: str, actor: str, data: dict[str, Any]) -> None:
        """Append an audit event for this run's incident, under its runbook's payload policy."""
        runbook = self.runbook(state.get("runbook", ""))
        self.audit.record_now(
            self.engine,
            kind,
            data,
            actor=actor,
            incident_id=uuid.UUID(state["incident_id"]),
            payload_policy=runbook.payload_policy if runbook is not None else None,
        )

    def redact(self, value: Any) -> Any:
        """Return `value` with secrets and PII masked: what outside systems said, before it
        enters the run's state (and so its checkpoints) or is sent anywhere."""
        return self.audit.redactor.value(value)

    def service_tools(self, service: str | None) -> ServiceTools | None:
        """Return the catalogued service's adapters, built once and then reused."""
        return self.tools.for_service(service)

    def changes(self) -> DeploymentChangeSource:
        """Return the recent-deployments probe (our own database)."""
        return DeploymentChangeSource(self.engine)

    def runbook(self, ref: str) -> Runbook | None:
        """Return the loaded runbook with this `name@version`."""
        return next((r for r in self.runbooks if r.ref == ref), None)
