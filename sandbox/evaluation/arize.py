"""Scenarios with an Arize monitor: the emulated monitor the alert names, how it changes once
the investigation has settled, and what the agent did with it (enrichment, resolve, tags).

`world.yaml` key `arize`; `expected.yaml` key `arize` (scenarios/README.md). Without the key the
service runs with no Arize API key, as every other scenario does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.alerts.models import Alert
from agent.incidents.models import Incident
from agent.monitors.models import MonitorWatch
from audit.models import AuditEvent
from sandbox.arize import ArizeState
from sandbox.arize.ids import is_id_of
from sandbox.evaluation.systems import Strict
from sandbox.stack import SandboxStack

POLL_SECONDS = 0.3


class ArizeMonitorWorld(Strict):
    """The monitor in the Arize emulator, in its wire form (checked against the API's enums)."""

    id: str
    """Its id (base64 of `Monitor:N:x`), which the scenario's alert names."""
    name: str
    type: Literal["TRACING", "DATA_QUALITY", "PERFORMANCE", "DRIFT", "CUSTOM_METRIC"] = "TRACING"
    status: Literal["TRIGGERED", "CLEARED", "NO_DATA"] = "TRIGGERED"
    metric: str | None = None
    dimension: dict[str, Any] | None = None
    threshold: dict[str, Any] | None = None
    latest_computed_value: float | None = None
    filters: list[dict[str, Any]] | None = None
    model_versions: list[str] | None = None

    @model_validator(mode="after")
    def _as_the_api_would(self) -> ArizeMonitorWorld:
        if not is_id_of(self.id, "Monitor"):
            raise ValueError(f"id {self.id!r} is not base64 of Monitor:N:x")
        ArizeState().add_monitor(**self.fields())  # raises naming what the API would refuse
        return self

    def fields(self) -> dict[str, Any]:
        """Return the monitor as ArizeState.add_monitor takes it."""
        values = self.model_dump(exclude_none=True)
        values["monitor_id"] = values.pop("id")
        return values


class ArizeChange(Strict):
    """What the monitor reads once every alert has settled."""

    status: Literal["TRIGGERED", "CLEARED", "NO_DATA"]
    latest_computed_value: float | None = None


class ArizeWorld(Strict):
    """Arize's REST API for the agent: one monitor, and how it changes after the investigation."""

    monitor: ArizeMonitorWorld
    after_settled: ArizeChange | None = None
    """Set once every alert has settled; the run then waits for what it leads to: CLEARED, every
    incident resolved (no resolve delivery); NO_DATA, the agent's report of it."""
    tagging: bool = True


class ExpectedArize(Strict):
    """What the agent did with the monitor."""

    filled: list[str] | None = None
    """Breach fields the enrichment filled (at least these)."""
    tagged: bool | None = None
    """Whether the monitor was tagged while the incident was open."""
    tags_at_end: list[str] | None = None
    """The monitor's tags at the end ([]: the tag came off)."""
    resolved_by_monitor: bool | None = None
    """Whether an incident was resolved because the monitor read CLEARED."""
    incident_status: Literal["open", "resolved"] | None = None
    """Every incident's status at the end."""
    open_pages: int | None = Field(None, ge=0)
    """PagerDuty alerts still open at the end."""


@dataclass
class SeenArize:
    """What the run shows of the agent and the monitor."""

    filled: list[str] = field(default_factory=list)
    tagged: bool = False
    tags_at_end: list[str] = field(default_factory=list)
    resolved_by_monitor: bool = False
    incident_statuses: list[str] = field(default_factory=list)
    open_pages: int = 0


def stage_arize(stack: SandboxStack, world: ArizeWorld | None) -> None:
    """Put the world's monitor in the Arize emulator."""
    if world is not None:
        stack.arize.add_monitor(**world.monitor.fields())


def arize_settings(stack: SandboxStack, world: ArizeWorld | None) -> dict[str, Any]:
    """Return the settings that give the service Arize's API (none without the world's key)."""
    if world is None:
        return {}
    env = stack.arize_env()
    return {
        "arize_api_key": env["REMEDIATOR_ARIZE_API_KEY"],
        "arize_api_host": env["REMEDIATOR_ARIZE_API_HOST"],
        "arize_api_scheme": env["REMEDIATOR_ARIZE_API_SCHEME"],
        "arize_api_port": int(env["REMEDIATOR_ARIZE_API_PORT"]),
        "arize_space_id": env["REMEDIATOR_ARIZE_SPACE_ID"],
        "arize_monitor_poll_seconds": POLL_SECONDS,
        "arize_tagging": world.tagging,
        "arize_deadline_seconds": 3,
    }


def after_settled(
    stack: SandboxStack, world: ArizeWorld | None, engine: Engine, deadline: float
) -> list[str]:
    """Change the monitor as the world says, then wait for what it leads to; return problems."""
    if world is None or world.after_settled is None:
        return []
    change = world.after_settled.model_dump(exclude_none=True)
    stack.arize.set_monitor(world.monitor.id, **change)
    status = world.after_settled.status
    while time.monotonic() < deadline:
        with Session(engine) as session:
            incidents = session.exec(select(Incident)).all()
            busy = session.exec(
                select(Alert.id).where(col(Alert.state).in_(["pending", "claimed"]))
            ).first()
            reported = session.exec(
                select(AuditEvent.seq).where(AuditEvent.kind == "monitor.no_data")
            ).first()
            # A resolved incident's watch has one more step (the tag comes off), then none.
            watching = session.exec(
                select(MonitorWatch.incident_id).where(col(MonitorWatch.next_poll_at).is_not(None))
            ).first()
        resolved = all(i.status == "resolved" for i in incidents)
        if status == "CLEARED" and busy is None and resolved and watching is None:
            return []
        if status == "NO_DATA" and reported is not None:
            return []
        if status == "TRIGGERED":
            return []
        time.sleep(0.1)
    return [f"the monitor read {status}, and nothing came of it in time"]


def observe_arize(stack: SandboxStack, world: ArizeWorld | None, engine: Engine) -> SeenArize:
    """Read what the agent did with the monitor."""
    seen = SeenArize()
    with Session(engine) as session:
        events = session.exec(
            select(AuditEvent.kind, AuditEvent.data).where(
                col(AuditEvent.kind).startswith("monitor.")
            )
        ).all()
        seen.incident_statuses = [str(i.status) for i in session.exec(select(Incident)).all()]
    for kind, data in events:
        if kind == "monitor.enriched":
            seen.filled += json.loads(data).get("filled", [])
        seen.tagged = seen.tagged or kind == "monitor.tagged"
        seen.resolved_by_monitor = seen.resolved_by_monitor or kind == "monitor.cleared"
    if world is not None:
        seen.tags_at_end = stack.arize.tag_names(world.monitor.id)
    alerts = stack.pagerduty.snapshot()["alerts"]
    seen.open_pages = sum(1 for a in alerts if a["status"] != "resolved")
    return seen


def compare_arize(expected: ExpectedArize | None, seen: SeenArize) -> list[str]:
    """Return every way the run's Arize side differs from the expectations."""
    if expected is None:
        return []
    problems = []
    if expected.filled is not None and not set(expected.filled) <= set(seen.filled):
        problems.append(f"arize: expected {expected.filled} filled, got {sorted(seen.filled)}")
    for name in ("tagged", "tags_at_end", "resolved_by_monitor", "open_pages"):
        want = getattr(expected, name)
        got = getattr(seen, name)
        if want is not None and want != got:
            problems.append(f"arize: {name} expected {want}, got {got}")
    status = expected.incident_status
    if status is not None and any(s != status for s in seen.incident_statuses):
        problems.append(f"arize: incidents expected {status}, got {seen.incident_statuses}")
    return problems
