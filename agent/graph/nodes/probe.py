"""Probe: one probe of the runbook (logs, vector DB, embeddings, endpoint, changes), in parallel."""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import Send
from sqlmodel import Session

from agent.adapters.factory import ServiceTools
from agent.changes.scope import BreachScope
from agent.failovers.service import moved_away
from agent.graph.policy import runbook_of
from agent.graph.state import IncidentState, RunContext
from agent.telemetry import metrics
from tools.failover.document import label, route_from_json
from tools.protocols import LogQuery
from tools.result import ToolResult, ToolStatus

INVESTIGATOR = "agent.investigate"

_PROBES = ThreadPoolExecutor(max_workers=16, thread_name_prefix="probe")


class ProbeTask(TypedDict):
    """What one parallel probe needs (sent to the `probe` node)."""

    incident_id: str
    breach: dict[str, Any]
    service: str | None
    runbook: str
    probe: str
    timeout: float


def fan_out(state: IncidentState) -> list[Send] | Literal["diagnose"]:
    """Start every probe the runbook lists at once; with none, go straight to diagnosis."""
    tasks = [
        Send(
            "probe",
            ProbeTask(
                incident_id=state["incident_id"],
                breach=state["breach"],
                service=state.get("service"),
                runbook=state["runbook"],
                probe=name,
                timeout=timeout,
            ),
        )
        for name, timeout in state.get("probes", {}).items()
    ]
    return tasks or "diagnose"


def probe(task: ProbeTask, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Run one probe within its deadline; a failure or a timeout is evidence, never a crash."""
    ctx = runtime.context
    state: IncidentState = {"incident_id": task["incident_id"], "runbook": task["runbook"]}
    started = time.monotonic()
    # The copied context carries the log ids bound by the worker into the probe's thread.
    future = _PROBES.submit(contextvars.copy_context().run, _run_probe, ctx, task)
    try:
        results = future.result(timeout=task["timeout"])
    except FutureTimeout:
        # Too slow to answer within its deadline is a fault of what was probed, not a shrug.
        results = [
            ToolResult(
                tool=task["probe"],
                status=ToolStatus.down,
                summary=f"{task['probe']} probe timed out after {task['timeout']:g}s",
                error="timeout",
                latency_ms=task["timeout"] * 1000,
            )
        ]
    except Exception as exc:  # a probe bug must not end the investigation
        results = [
            ToolResult(
                tool=task["probe"],
                status=ToolStatus.error,
                summary=f"{task['probe']} probe failed: {type(exc).__name__}",
                error=str(exc)[:300],
            )
        ]
    elapsed = time.monotonic() - started
    findings = []
    for result in results:
        seconds = result.latency_ms / 1000 if result.latency_ms else elapsed
        metrics.PROBE_SECONDS.labels(result.tool, str(result.status)).observe(seconds)
        ctx.record(state, "probe.completed", INVESTIGATOR, result.audit_data())
        findings.append({"probe": task["probe"], **result.model_dump(mode="json")})
    # What the probe read (log lines, model answers, error texts) is outside text: redacted
    # before it enters the state, so no checkpoint holds it raw.
    return {"findings": ctx.redact(findings)}


def _run_probe(ctx: RunContext, task: ProbeTask) -> list[ToolResult]:
    name, breach = task["probe"], task["breach"]
    tools = ctx.service_tools(task["service"])
    anchor = breach_time(breach, ctx.now())
    if name == "logs":
        sources = tools.logs if tools else [s for s in [ctx.tools.logs] if s is not None]
        query = LogQuery(
            start=anchor - timedelta(minutes=ctx.settings.logs_lookback_minutes),
            end=max(ctx.now(), anchor),
            model_id=breach.get("model_id"),
            model_version=breach.get("model_version"),
            scrub=ctx.audit.redactor.text,
        )
        return [source.search(query) for source in sources] or [_not_configured(name)]
    if name == "changes":
        runbook = runbook_of(ctx, task["runbook"])
        scope = BreachScope.of(breach, task["service"])
        return [
            ctx.changes().recent(
                service=scope.service,
                model_id=scope.model_id,
                environment=scope.environment,
                region=scope.region,
                around=anchor,
                window_minutes=runbook.diagnosis.change_window_minutes,
            )
        ]
    adapter = getattr(tools, name, None) if tools else None
    if adapter is None:
        return [_not_configured(name)]
    result: ToolResult = adapter.probe()
    if name == "endpoint" and tools is not None and task["service"] is not None:
        result = _with_the_primary(ctx, task["service"], tools, result)
    return [result]


def _with_the_primary(
    ctx: RunContext, service: str, tools: ServiceTools, current: ToolResult
) -> ToolResult:
    """While a failover holds the service off its primary route, probe the primary too.

    The traffic then runs on the failover route, which answers right; a breach that began on
    the primary (or that the failover hides) would otherwise look like nothing is wrong.
    """
    if tools.route_probe is None or current.status in (ToolStatus.degraded, ToolStatus.down):
        return current
    with Session(ctx.engine) as session:  # a read: no write turn taken
        held = moved_away(session=session, service=service)
        if held is None or held.primary is None:
            return current
        target, incident_id, primary = held.target, held.incident_id, route_from_json(held.primary)
    found: ToolResult = tools.route_probe(primary).probe()
    if found.status not in (ToolStatus.degraded, ToolStatus.down):
        return current
    summary = (
        f"the traffic runs on {target} (failed over by incident {incident_id}) and answers "
        f"right, but the primary route {label(primary)} still fails: {found.summary}"
    )
    return found.model_copy(update={"summary": summary})


def _not_configured(name: str) -> ToolResult:
    return ToolResult(
        tool=name,
        status=ToolStatus.no_data,
        summary=f"{name}: not configured for this service, not probed",
    )


def breach_time(breach: dict[str, Any], fallback: datetime) -> datetime:
    """Return when the breach was triggered, or `fallback` when the alert did not say."""
    raw = breach.get("triggered_at")
    return datetime.fromisoformat(raw) if raw else fallback
