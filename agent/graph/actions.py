"""The write actions a run takes, each idempotent: page a team, fail a service over."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from agent.alerts.models import Breach
from agent.causes.paging import cause_details, cause_summary, link_page, tell_cause
from agent.failovers.service import record_failover
from agent.graph.messages import page_details, page_links, short_id
from agent.graph.policy import runbook_of
from agent.graph.state import IncidentState, RunContext
from agent.incidents.models import page_dedup_key
from agent.outside_text import http_url, plain, plain_value
from agent.store.db import session_scope
from tools.protocols import Pager, PageRequest, Route

ACTOR = "agent.act"
DEPENDENCIES = ("vector_db", "embeddings")


def page(ctx: RunContext, state: IncidentState, item: dict[str, Any]) -> dict[str, Any]:
    pager = pager_for(ctx, state.get("service"), item.get("team"))
    breach = state["breach"]
    incident_id = uuid.UUID(state["incident_id"])
    steps = runbook_of(ctx, state["runbook"]).next_steps.of(str(state["diagnosis"]["kind"]))
    public_url = ctx.settings.public_url
    # One page per cause: incidents with this diagnosis on this dependency share one alert.
    cause = link_page(ctx, state, item)
    more = len(cause.services) - 1 if cause is not None else 0
    request = PageRequest(
        dedup_key=cause.dedup_key if cause else page_dedup_key(incident_id, item.get("team")),
        summary=page_summary(state, item, more_services=more),
        source=breach.get("model_id") or breach.get("monitor_id") or "llm-service",
        severity=item["severity"],
        component=item.get("component")
        or state["diagnosis"].get("component")
        or breach.get("model_id"),
        group=breach.get("environment"),
        custom_details={
            **page_details(state, public_url, next_steps=steps, reason=item.get("reason")),
            **(cause_details(cause) if cause else {}),
        },
        links=page_links(state, public_url),
    )
    request = outgoing_page(ctx, request)
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
            "severity": request.severity,
            "idempotency_key": request.dedup_key,
            # Why this page is sent beyond the plan (an escalation): the review shows it.
            **({"reason": item["reason"]} if item.get("reason") else {}),
        },
    )
    result = pager.trigger(request)
    ok = result.status == "ok"
    ctx.record(state, "action.succeeded" if ok else "action.failed", ACTOR, result.audit_data())
    pointer = cause_summary(tell_cause(ctx, state, cause)) if cause is not None else ""
    return {
        **item,
        "status": "done" if ok else "failed",
        "dedup_key": request.dedup_key,
        "summary": f"paged {who}: {result.summary}{pointer}",
        "error": result.error,
        **({"cause_id": str(cause.cause_id)} if cause else {}),
    }


def fail_over(ctx: RunContext, state: IncidentState, item: dict[str, Any]) -> dict[str, Any]:
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
    previous = result.evidence.get("previous")
    # Our switch moved the route, or the route was already there (another incident's failover,
    # which that incident moves back): a replayed key answers as the first time did.
    moved = bool(result.evidence.get("changed")) or (
        bool(result.evidence.get("repeated")) and previous != result.evidence.get("new")
    )
    if ok:
        with session_scope(ctx.engine) as session:
            record_failover(
                session=session,
                incident_id=uuid.UUID(state["incident_id"]),
                service=service,
                target=str(target["name"]),
                idempotency_key=key,
                moved=moved,
                primary=previous if isinstance(previous, dict) else None,
                now=ctx.now(),
            )
    return {
        **item,
        "status": "done" if ok else "failed",
        "idempotency_key": key,
        "previous": previous,
        "moved": moved,
        "summary": f"{'failed' if ok else 'did not fail'} over to {target['name']}: "
        f"{result.summary}",
        "error": result.error,
    }


def outgoing_page(ctx: RunContext, request: PageRequest) -> PageRequest:
    """Return a page as it may be sent: every text redacted, links only to http(s) URLs."""
    links = [
        {"href": href, "text": plain(ctx.redact(str(link.get("text", ""))))}
        for link in request.links
        if (href := http_url(ctx.redact(link.get("href")))) is not None
    ]
    # PagerDuty forwards alerts to chat (its Slack app): nothing in them may mention anyone.
    return replace(
        request,
        summary=plain(ctx.redact(request.summary)),
        source=plain(ctx.redact(request.source)),
        component=plain_value(ctx.redact(request.component)),
        group=plain_value(ctx.redact(request.group)),
        custom_details=plain_value(ctx.redact(request.custom_details)),
        links=links,
    )


OUTSIDE_TEXT = ("summary", "error", "reason")
"""The fields of an action's outcome that may carry what an outside system answered."""


def redact_outcome(ctx: RunContext, outcome: dict[str, Any]) -> dict[str, Any]:
    """Return an action's outcome with its outside text redacted, ready for the run's state."""
    return {k: ctx.redact(v) if k in OUTSIDE_TEXT else v for k, v in outcome.items()}


def owner_team(ctx: RunContext, state: IncidentState) -> str | None:
    """Return the first team to tell: the owner of the worst degraded dependency, else the
    service's team (None: the service is not catalogued)."""
    teams = owner_teams(ctx, state)
    return teams[0][0] if teams else None


def owner_teams(ctx: RunContext, state: IncidentState) -> list[tuple[str | None, str | None]]:
    """Return (team, component) for each owner to tell, once per team, the first owner first.

    For dependency_degraded: the owner of every dependency found degraded or down (its own page
    each, so no owner hears of it only from another team); a dependency the catalog does not
    describe falls to the service's team. Otherwise: the service's team. Without a catalogued
    service: one page to nobody in particular (the settings' on-call).
    """
    service = state.get("service")
    if ctx.catalog is None or service not in ctx.catalog.services:
        return [(None, None)]
    spec = ctx.catalog.services[str(service)]
    diagnosis = state["diagnosis"]
    if diagnosis["kind"] != "dependency_degraded":
        return [(spec.team, None)]
    named = diagnosis.get("dependencies") or [diagnosis.get("owner_hint")]
    owners: dict[str, list[str]] = {}
    for name in named:
        dependency = getattr(spec.dependencies, str(name), None) if name in DEPENDENCIES else None
        team = str(dependency.owner) if dependency is not None else spec.team
        owners.setdefault(team, []).append(str(name))
    return [(team, ", ".join(parts)) for team, parts in owners.items()] or [(spec.team, None)]


def pager_for(ctx: RunContext, service: str | None, team: str | None) -> Pager | None:
    """Return the team's pager from the catalog, else the one from the settings."""
    tools = ctx.service_tools(service)
    if tools is not None and team and team in tools.pagers:
        return tools.pagers[team]
    return ctx.tools.pager


def page_summary(state: IncidentState, item: dict[str, Any], *, more_services: int = 0) -> str:
    """Return a page's one line: the title first (what a phone shows), then the diagnosis;
    a page shared by a cause says how many other services it stands for."""
    diagnosis = state["diagnosis"]
    title = Breach.model_validate(state["breach"]).title(state.get("service"))
    cause = f" (+{more_services} more service(s), one cause)" if more_services > 0 else ""
    why = f" — {item['reason']}" if item.get("reason") else ""
    return f"[{diagnosis['kind']}] {title} (incident {short_id(state['incident_id'])}){cause}{why}"


def describe_action(item: dict[str, Any]) -> str:
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


def not_taken(item: dict[str, Any]) -> str:
    if item["status"] == "needs_approval":
        return f"{describe_action(item)} not taken: it was never approved"
    return f"{describe_action(item)} not taken: {item.get('reason', item['status'])}"
