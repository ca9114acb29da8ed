"""Triage, the parallel probes, diagnosis and the optional LLM analyst."""

from __future__ import annotations

import contextvars
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import Send

from agent.graph.diagnosis import diagnose as run_rules
from agent.graph.policy import builtin_runbook, runbook_of
from agent.graph.state import IncidentState, RunContext
from agent.incidents.service import set_service
from agent.store.db import session_scope
from agent.telemetry import metrics
from runbooks.library import match_runbook
from runbooks.schema import normalise_metric
from tools.protocols import LogQuery
from tools.result import ToolResult, ToolStatus

TRIAGE = "agent.triage"
INVESTIGATOR = "agent.investigate"
DIAGNOSER = "agent.diagnose"
ANALYST = "agent.analyst"
# Probes run on their own threads so each one's deadline holds even if its SDK ignores it.
_PROBES = ThreadPoolExecutor(max_workers=16, thread_name_prefix="probe")


class ProbeTask(TypedDict):
    """What one parallel probe needs (sent to the `probe` node)."""

    incident_id: str
    breach: dict[str, Any]
    service: str | None
    runbook: str
    probe: str
    timeout: float


def triage(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Find the breach's service in the catalog and the runbook that governs it."""
    ctx = runtime.context
    breach = state["breach"]
    found = None
    if ctx.catalog is not None:
        found = ctx.catalog.service_for(
            service=breach.get("service"), model_id=breach.get("model_id")
        )
    service = found[0] if found else None
    metric = normalise_metric(breach.get("metric") or "")
    runbook = (
        match_runbook(
            ctx.runbooks,
            metric=metric,
            service=service or breach.get("service"),
            model=breach.get("model_id"),
            environment=breach.get("environment"),
            segment=breach.get("segment") or {},
        )
        if metric
        else None
    )
    chosen = runbook or builtin_runbook(ctx.settings)
    probes = {name: spec.timeout_seconds for name, spec in chosen.probes.enabled().items()}
    why = (
        "matched"
        if runbook
        else (f"no runbook for metric {breach.get('metric')!r}: built-in policy")
    )
    if service is not None:
        with session_scope(ctx.engine) as session:
            set_service(
                session=session, incident_id=uuid.UUID(state["incident_id"]), service=service
            )
    ctx.record(
        state,
        "runbook.matched",
        TRIAGE,
        {
            "summary": f"runbook {chosen.ref} ({why}); service {service or 'not in the catalog'}; "
            f"probes: {', '.join(probes) or 'none'}",
            "runbook": chosen.ref,
            "service": service,
            "metric": metric,
            "probes": probes,
        },
    )
    return {"service": service, "runbook": chosen.ref, "probes": probes}


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
    return {"findings": findings}


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
        )
        return [source.search(query) for source in sources] or [_not_configured(name)]
    if name == "changes":
        runbook = runbook_of(ctx, task["runbook"])
        return [
            ctx.changes().recent(
                service=task["service"] or breach.get("service"),
                model_id=breach.get("model_id"),
                around=anchor,
                window_minutes=runbook.diagnosis.change_window_minutes,
            )
        ]
    adapter = getattr(tools, name, None) if tools else None
    return [adapter.probe()] if adapter is not None else [_not_configured(name)]


def _not_configured(name: str) -> ToolResult:
    return ToolResult(
        tool=name,
        status=ToolStatus.no_data,
        summary=f"{name}: not configured for this service, not probed",
    )


def diagnose(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Apply the runbook's diagnosis rules to the findings."""
    ctx = runtime.context
    runbook = runbook_of(ctx, state["runbook"])
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in state.get("findings", []):
        grouped[finding["probe"]].append(finding)
    result = run_rules(
        breach=state["breach"], findings=grouped, rules=runbook.diagnosis, now=ctx.now()
    ).to_dict()
    ctx.record(
        state,
        "diagnosis.made",
        DIAGNOSER,
        {
            **result,
            "explanation": result["summary"],
            "summary": f"diagnosis: {result['kind']} — {result['summary']}",
        },
    )
    return {"diagnosis": result}


def route_after_diagnose(state: IncidentState) -> Literal["analyse", "decide"]:
    """Consult the analyst only for inconclusive or conflicting diagnoses."""
    diagnosis = state.get("diagnosis", {})
    unclear = diagnosis.get("kind") == "no_fault_found" or diagnosis.get("conflicting")
    return "analyse" if unclear else "decide"


def analyse(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Ask the LLM analyst for a hypothesis; its proposal counts only if the runbook allows it."""
    ctx = runtime.context
    runbook = runbook_of(ctx, state["runbook"])
    if ctx.analyst is None or not runbook.analyst.enabled or runbook.analyst.max_calls < 1:
        return {}
    kind = state["diagnosis"]["kind"]
    allowed: list[str] = [spec.kind for spec in runbook.allowed(kind)]
    result = ctx.analyst.analyse(
        incident_summary=f"{state['breach'].get('metric')} breach on "
        f"{state['breach'].get('model_id')}: diagnosis {kind}",
        evidence=[
            {k: f.get(k) for k in ("probe", "status", "summary", "evidence")}
            for f in state.get("findings", [])
        ],
        diagnosis=kind,
        allowed_actions=allowed,
    )
    ctx.record(state, "analyst.consulted", ANALYST, result.audit_data())
    analysis = {"status": str(result.status), **result.evidence}
    if result.status == "ok" and not result.evidence.get("proposal_allowed"):
        ctx.record(
            state,
            "analyst.proposal_discarded",
            ANALYST,
            {
                "summary": "discarded the analyst's proposal: "
                f"{result.evidence.get('discarded_reason')}",
                "proposal": result.evidence.get("proposal"),
            },
        )
    return {"analysis": analysis}


def breach_time(breach: dict[str, Any], fallback: datetime) -> datetime:
    """Return when the breach was triggered, or `fallback` when the alert did not say."""
    raw = breach.get("triggered_at")
    return datetime.fromisoformat(raw) if raw else fallback
