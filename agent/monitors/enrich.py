"""Enrich a new breach from its Arize monitor: the alert's own fields win, the rest are filled.

Arize's webhook body is unknown (ARIZE.md §1) and may be sparse; `GET /v2/monitors/{id}` says
the threshold, the latest computed value, when it was evaluated, the UI link, the segment (the
monitor's filters), its model versions and its metric. A slow or failing API never holds the
investigation: the adapter's deadline passes, the failure is audited, and the run goes on with
what the alert said.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.alerts.models import Breach
from agent.alerts.service import BREACH_TEXT_LIMITS, redact_breach
from agent.monitors.service import watch_monitor
from agent.store.db import session_scope
from tools.arize.monitors import is_monitor_id
from tools.result import ToolStatus

if TYPE_CHECKING:
    from agent.graph.state import IncidentState, RunContext

ACTOR = "agent.monitors"


def filled_from(breach: Breach, reading: dict[str, Any]) -> dict[str, Any]:
    """Return the breach fields the monitor reading can fill (those the alert left empty)."""
    versions = reading.get("model_versions") or []
    offered: dict[str, Any] = {
        "monitor_name": reading.get("name"),
        "metric": reading.get("metric"),
        "threshold": reading.get("threshold"),
        "operator": reading.get("operator"),
        "value": reading.get("latest_computed_value"),
        "triggered_at": reading.get("evaluated_at"),
        "url": reading.get("uri"),
        # One version names the model version; several are kept in the audit only.
        "model_version": versions[0] if len(versions) == 1 else None,
        "segment": reading.get("segment") or None,
    }
    fill: dict[str, Any] = {}
    for name, value in offered.items():
        if value is None or getattr(breach, name) not in (None, {}, ""):
            continue
        if isinstance(value, str) and name in BREACH_TEXT_LIMITS:
            value = value[: BREACH_TEXT_LIMITS[name]]
        if name == "triggered_at" and isinstance(value, str):
            value = datetime.fromisoformat(value)
        fill[name] = value
    return fill


def enrich_from_monitor(ctx: RunContext, state: IncidentState) -> dict[str, Any] | None:
    """Return the run's breach enriched from its monitor, as JSON (None: left as it is).

    Also starts watching the monitor (re-read while the incident is open, tagged) when the
    breach names an Arize monitor id and an Arize API key is configured.
    """
    arize = ctx.tools.arize
    breach = Breach.model_validate(state["breach"])
    if arize is None or breach.source != "arize" or not breach.monitor_id:
        return None
    if not is_monitor_id(breach.monitor_id):
        ctx.record(
            state,
            "monitor.not_read",
            ACTOR,
            {
                "summary": f"monitor {breach.monitor_id!r} is not an Arize monitor id (base64 of "
                "Monitor:…): not read, not re-read, not tagged",
            },
        )
        return None
    with session_scope(ctx.engine) as session:
        watch_monitor(
            session=session,
            incident_id=uuid.UUID(state["incident_id"]),
            monitor_id=breach.monitor_id,
            now=ctx.now(),
        )
    result = arize.get_monitor(breach.monitor_id)
    if result.status != ToolStatus.ok:
        data = result.audit_data()
        data["summary"] = (
            f"monitor not read ({result.summary}): the investigation goes on with the alert's "
            "own fields"
        )
        ctx.record(state, "monitor.enrichment_failed", ACTOR, data)
        return None
    reading = result.evidence["monitor"]
    fill = filled_from(breach, reading)
    kept = [
        name
        for name in ("metric", "threshold", "operator", "value", "triggered_at", "url", "segment")
        if getattr(breach, name) not in (None, {}, "")
    ]
    enriched = redact_breach(breach.model_copy(update=fill), ctx.audit.redactor)
    ctx.record(
        state,
        "monitor.enriched",
        ACTOR,
        {
            "summary": f"monitor {reading.get('name')!r} read ({reading.get('status')}): "
            + (f"filled {', '.join(fill)}" if fill else "nothing to fill")
            + (f"; the alert's own {', '.join(kept)} kept" if kept else ""),
            "filled": sorted(fill),
            "kept": kept,
            "monitor": reading,
            "latency_ms": result.latency_ms,
        },
    )
    return enriched.model_dump(mode="json") if fill else None
