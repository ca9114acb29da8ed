"""Decide: plan the runbook's actions for the diagnosis, and nothing else.

Only actions the runbook lists for the diagnosis are ever planned. An action that needs approval is
planned as `needs_approval`; the `approve` node asks for it and turns it into `planned` (approved)
or not taken (rejected, expired: the runbook's timeout branch, or cancelled).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.graph.actions import describe_action, owner_teams
from agent.graph.policy import runbook_of
from agent.graph.prompts import plan_rollback
from agent.graph.state import IncidentState, RunContext
from runbooks.catalog import FailoverTarget
from runbooks.schema import FailoverAction, PageAction, RollbackPromptAction, Runbook

DECIDER = "agent.decide"


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
    # Where the suspect change is an Arize prompt version and the runbook allows rolling it
    # back, the rollback is taken (rollback_prompt) instead of proposed.
    if any(item["kind"] == "rollback_prompt" for item in plan):
        plan = [item for item in plan if item["kind"] != "rollback"]
    ctx.record(
        state,
        "decision.made",
        DECIDER,
        {
            "summary": f"decided for {kind} under {runbook.ref}: "
            + ("; ".join(describe_action(item) for item in plan) or "no action allowed"),
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
        # One page per owner to tell (each owner of a faulty dependency), each with its own
        # dedup key; warning and info are told in Slack, never paged.
        kind = "page" if spec.pages_on_call else "notify"
        return [
            {
                **item,
                "kind": kind,
                "severity": spec.severity,
                "team": team,
                **({"component": component} if component else {}),
            }
            for team, component in owner_teams(ctx, state)
        ]
    elif isinstance(spec, FailoverAction):
        target = _failover_target(ctx, state.get("service"), spec.target)
        if target is None:
            item.update(status="impossible", reason=f"no catalog failover target for {spec.target}")
        else:
            item["target"] = target.model_dump()
    elif isinstance(spec, RollbackPromptAction):
        planned = plan_rollback(ctx, state, item, spec.label)
        return [planned] if planned is not None else []
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


def _failover_target(ctx: RunContext, service: str | None, wanted: str) -> FailoverTarget | None:
    if ctx.catalog is None or service not in ctx.catalog.services:
        return None
    failover = ctx.catalog.services[str(service)].failover
    if failover is None:
        return None
    named = wanted.replace("_", "-")
    return next((t for t in failover.targets if t.name in (wanted, named)), None)
