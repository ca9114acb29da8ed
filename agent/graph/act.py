"""Decide from the runbook, act idempotently, and verify a failover.

Only actions the runbook lists for the diagnosis are ever planned. An action that needs approval is
planned as `needs_approval`; the `approve` node asks for it and turns it into `planned` (approved)
or not taken (rejected, expired: the runbook's timeout branch, or cancelled).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from langgraph.runtime import Runtime

from agent.alerts.models import Breach
from agent.graph.policy import runbook_of
from agent.graph.state import IncidentState, RunContext
from agent.incidents.models import page_dedup_key
from agent.telemetry import metrics
from runbooks.catalog import FailoverTarget
from runbooks.schema import FailoverAction, PageAction, Runbook
from tools.protocols import Pager, PageRequest, Route

DECIDER = "agent.decide"
ACTOR = "agent.act"
VERIFIER = "agent.verify"


def decide(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Plan the runbook's allowed actions for the diagnosis (and an allowed analyst proposal)."""
    ctx = runtime.context
    runbook = runbook_of(ctx, state["runbook"])
    diagnosis = state["diagnosis"]
    kind = diagnosis["kind"]
    specs = list(runbook.allowed(kind))
    proposal = (state.get("analysis") or {}).get("proposal") or {}
    if (state.get("analysis") or {}).get("proposal_allowed"):
        spec = runbook.spec(kind, str(proposal.get("action")))
        if spec is not None and spec not in specs:
            specs.append(spec)
    plan: list[dict[str, Any]] = []
    for spec in specs:
        plan.extend(_plan_item(ctx, state, runbook, spec))
    ctx.record(
        state,
        "decision.made",
        DECIDER,
        {
            "summary": f"decided for {kind} under {runbook.ref}: "
            + ("; ".join(_describe(item) for item in plan) or "no action allowed"),
            "runbook": runbook.ref,
            "diagnosis": kind,
            "plan": plan,
            "allowed": [spec.kind for spec in runbook.allowed(kind)],
        },
    )
    return {"plan": plan}


def _plan_item(
    ctx: RunContext, state: IncidentState, runbook: Runbook, spec: Any
) -> list[dict[str, Any]]:
    item: dict[str, Any] = {
        "kind": spec.kind,
        "approval": spec.approval,
        "status": "needs_approval" if spec.needs_approval else "planned",
    }
    diagnosis = state["diagnosis"]
    if isinstance(spec, PageAction):
        item["severity"] = spec.severity
        item["team"] = _owner_team(ctx, state)
        if not spec.pages_on_call:
            item["kind"] = "notify"  # warning and info are told in Slack, never paged
    elif isinstance(spec, FailoverAction):
        target = _failover_target(ctx, state.get("service"), spec.target)
        if target is None:
            item.update(status="impossible", reason=f"no catalog failover target for {spec.target}")
        else:
            item["target"] = target.model_dump()
    elif spec.kind == "rollback":
        # A rollback is proposed, never executed here: no rollback backend acts on it, and the
        # proposal itself (who should undo what) needs no approval.
        change = diagnosis.get("change") or {}
        item.update(
            version=change.get("version"),
            previous_version=change.get("previous_version"),
            change_kind=change.get("kind"),
            status="planned",
        )
    elif spec.kind == "notify":
        item["severity"] = getattr(spec, "severity", "warning")
    return [item]


def _owner_team(ctx: RunContext, state: IncidentState) -> str | None:
    """Page the owner of a degraded dependency, else the service's team."""
    service = state.get("service")
    if ctx.catalog is None or service not in ctx.catalog.services:
        return None
    spec = ctx.catalog.services[str(service)]
    hint = state["diagnosis"].get("owner_hint")
    if state["diagnosis"]["kind"] == "dependency_degraded" and hint in ("vector_db", "embeddings"):
        dependency = getattr(spec.dependencies, str(hint))
        if dependency is not None:
            return str(dependency.owner)
    return spec.team


def _failover_target(ctx: RunContext, service: str | None, wanted: str) -> FailoverTarget | None:
    if ctx.catalog is None or service not in ctx.catalog.services:
        return None
    failover = ctx.catalog.services[str(service)].failover
    if failover is None:
        return None
    named = wanted.replace("_", "-")
    return next((t for t in failover.targets if t.name in (wanted, named)), None)


def act(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Carry out the plan; every write carries an idempotency key, so a resume repeats nothing."""
    ctx = runtime.context
    outcomes = []
    for item in state.get("plan", []):
        if item["status"] != "planned":
            outcome = {**item, "status": "not_taken", "summary": _not_taken(item)}
            ctx.record(state, "action.not_taken", ACTOR, outcome)
        elif item["kind"] == "page":
            outcome = _page(ctx, state, item)
        elif item["kind"] == "failover":
            outcome = _failover(ctx, state, item)
        elif item["kind"] == "rollback":
            outcome = {
                **item,
                "status": "proposed",
                "summary": (
                    f"proposed rollback of {item.get('change_kind') or 'change'} "
                    f"{item.get('version')} to {item.get('previous_version') or 'the previous one'}"
                ),
            }
            ctx.record(state, "action.proposed", ACTOR, outcome)
        else:
            outcome = {
                **item,
                "status": "done",
                "summary": f"told in the Slack thread ({item.get('severity', 'warning')})",
            }
        outcomes.append(outcome)
    metrics.count_actions(outcomes)
    return {"actions": outcomes}


def _page(ctx: RunContext, state: IncidentState, item: dict[str, Any]) -> dict[str, Any]:
    pager = pager_for(ctx, state.get("service"), item.get("team"))
    breach = state["breach"]
    incident_id = uuid.UUID(state["incident_id"])
    request = PageRequest(
        dedup_key=page_dedup_key(incident_id),
        summary=f"[{state['diagnosis']['kind']}] {_title(breach)}",
        source=breach.get("model_id") or breach.get("monitor_id") or "llm-service",
        severity=item["severity"],
        component=state["diagnosis"].get("component") or breach.get("model_id"),
        group=breach.get("environment"),
        custom_details={
            "incident_id": str(incident_id),
            "diagnosis": state["diagnosis"]["summary"],
            "runbook": state["runbook"],
            "evidence": _evidence_lines(state),
        },
        links=[{"href": str(breach["url"]), "text": "Arize monitor"}] if breach.get("url") else [],
    )
    who = item.get("team") or "on-call"
    if pager is None:
        outcome = {
            **item,
            "status": "dry_run",
            "dedup_key": request.dedup_key,
            "summary": f"dry-run: would page {who} at {request.severity} (no pager configured)",
        }
        ctx.record(state, "action.dry_run", ACTOR, outcome)
        return outcome
    ctx.record(
        state,
        "action.started",
        ACTOR,
        {
            "summary": f"page {who} at {request.severity} (dedup_key {request.dedup_key})",
            "action": "page",
            "team": item.get("team"),
            "idempotency_key": request.dedup_key,
        },
    )
    result = pager.trigger(request)
    ok = result.status == "ok"
    ctx.record(state, "action.succeeded" if ok else "action.failed", ACTOR, result.audit_data())
    return {
        **item,
        "status": "done" if ok else "failed",
        "dedup_key": request.dedup_key,
        "summary": f"paged {who}: {result.summary}",
        "error": result.error,
    }


def _failover(ctx: RunContext, state: IncidentState, item: dict[str, Any]) -> dict[str, Any]:
    service = str(state.get("service"))
    tools = ctx.service_tools(service)
    target = item["target"]
    key = f"{state['incident_id']}/failover/{target['name']}"
    if tools is None or tools.failover is None:
        outcome = {
            **item,
            "status": "dry_run",
            "idempotency_key": key,
            "summary": f"dry-run: would fail {service} over to {target['name']}",
        }
        ctx.record(state, "action.dry_run", ACTOR, outcome)
        return outcome
    ctx.record(
        state,
        "action.started",
        ACTOR,
        {
            "summary": f"fail {service} over to {target['name']} ({target['model']} in "
            f"{target.get('region') or 'its region'})",
            "action": "failover",
            "idempotency_key": key,
        },
    )
    route = Route(provider=target["provider"], model=target["model"], region=target.get("region"))
    result = tools.failover.switch(service, route, idempotency_key=key)
    ok = result.status == "ok"
    ctx.record(state, "action.succeeded" if ok else "action.failed", ACTOR, result.audit_data())
    return {
        **item,
        "status": "done" if ok else "failed",
        "idempotency_key": key,
        "previous": result.evidence.get("previous"),
        "summary": f"failed over to {target['name']}: {result.summary}",
        "error": result.error,
    }


def route_after_act(state: IncidentState) -> Literal["verify", "report"]:
    """Verify only when a failover was carried out."""
    done = [
        a for a in state.get("actions", []) if a["kind"] == "failover" and a["status"] == "done"
    ]
    return "verify" if done else "report"


def verify(state: IncidentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Probe the endpoint on its new route; escalate with a critical page if it still fails."""
    ctx = runtime.context
    tools = ctx.service_tools(state.get("service"))
    if tools is None or tools.endpoint is None:
        ctx.record(
            state,
            "verification.skipped",
            VERIFIER,
            {"summary": "no endpoint probe configured: the new route is not verified"},
        )
        return {"verification": {"status": "skipped"}}
    result = tools.endpoint.probe()
    if result.status == "ok":
        ctx.record(state, "verification.passed", VERIFIER, result.audit_data())
        return {"verification": {"status": "passed", "summary": result.summary}}
    ctx.record(state, "verification.failed", VERIFIER, result.audit_data())
    verification = {"status": "failed", "summary": result.summary}
    # Escalate only as the runbook allows: a page (at critical) if it lists one for the
    # diagnosis, else a Slack notice if it lists that, else nothing beyond the audit trail.
    runbook = runbook_of(ctx, state["runbook"])
    kind = state["diagnosis"]["kind"]
    why = "the endpoint still fails after the failover"
    if runbook.permits(kind, "page"):
        escalation = _page(
            ctx,
            state,
            {
                "kind": "page",
                "approval": "auto",
                "status": "planned",
                "severity": "critical",
                "team": _owner_team(ctx, state),
                "reason": why,
            },
        )
        metrics.count_actions([escalation])
        return {"verification": verification, "actions": [escalation]}
    if runbook.permits(kind, "notify"):
        notice = {
            "kind": "notify",
            "approval": "auto",
            "status": "done",
            "severity": "critical",
            "summary": f"escalated in the Slack thread: {why}",
        }
        ctx.record(state, "action.escalated", VERIFIER, notice)
        metrics.count_actions([notice])
        return {"verification": verification, "actions": [notice]}
    ctx.record(
        state,
        "action.not_taken",
        VERIFIER,
        {
            "summary": f"no escalation: {runbook.ref} allows no page and no notice for {kind}",
        },
    )
    return {"verification": verification}


def pager_for(ctx: RunContext, service: str | None, team: str | None) -> Pager | None:
    """Return the team's pager from the catalog, else the one from the settings."""
    tools = ctx.service_tools(service)
    if tools is not None and team and team in tools.pagers:
        return tools.pagers[team]
    return ctx.tools.pager


def _evidence_lines(state: IncidentState) -> list[str]:
    return [f"{f['probe']}: {f['status']} — {f['summary']}" for f in state.get("findings", [])]


def _title(breach: dict[str, Any]) -> str:
    return Breach.model_validate(breach).title()


def _describe(item: dict[str, Any]) -> str:
    what = str(item["kind"])
    if item.get("target"):
        what += f" to {item['target']['name']}"
    if item.get("severity"):
        what += f" at {item['severity']}"
    if item.get("team"):
        what += f" ({item['team']})"
    if item["status"] != "planned":
        what += f" [{item['status']}]"
    return what


def _not_taken(item: dict[str, Any]) -> str:
    if item["status"] == "needs_approval":
        return f"{_describe(item)} not taken: it was never approved"
    return f"{_describe(item)} not taken: {item.get('reason', item['status'])}"
