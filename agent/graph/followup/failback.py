"""Failing back onto health: the one procedure behind a resolution, a retry and an approval.

A failed-over route goes back only when
1. this incident's switch moved it (a failover that found the route already on its target joined
   another incident's, and that incident moves it back);
2. nothing depends on the failover any more: no other open incident of the service holds a
   failover, and no later switch of the service is still in place (switches go back in reverse);
3. the primary route answers the endpoint's known-answer prompts right, sent to it directly
   (`endpoint.route_model` in the catalog), not through the failover route;
4. and, under `failback: approval`, a listed approver approved it.

Held back, the route stays where it is, the thread and the audit trail say why, and the failback
is tried again: every `failback_retry_minutes` when the runbook sets it, and whenever another
incident of the service gives up its failover or the incident's monitor reports healthy again.
A repeat of the same reason is audited, not posted again.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

from agent.approvals.models import ApprovalStatus
from agent.approvals.service import approval_for
from agent.failovers.models import Failover, FailoverStatus
from agent.failovers.service import (
    blockers,
    failover_by_key,
    failovers_of,
    record_failover,
    settle_failover,
    still_breaching,
    wake_held,
)
from agent.graph.followup.effects import capital, failback_words, record, restore
from agent.graph.followup.state import FollowupState
from agent.graph.policy import runbook_of
from agent.graph.requests import action_key, approvers_for, ask_approval
from agent.graph.state import IncidentState, RunContext
from agent.store.db import session_scope
from runbooks.schema import Runbook
from tools.failover.document import label, route_from_json
from tools.result import ToolResult

HELD = "held"


def attempt_failback(
    ctx: RunContext,
    state: FollowupState,
    failover: dict[str, Any],
    *,
    due_only: bool = False,
    approved: bool = False,
) -> str | None:
    """Try to move one failed-over route back; return what the thread should hear (None:
    nothing new). `due_only`: only when its retry is due; `approved`: an approver said yes."""
    run = state["run"]
    service = str(run.get("service"))
    target = str(failover["target"]["name"])
    row = _row(ctx, state, failover)
    if row.status != FailoverStatus.holding:
        return None
    if due_only and (row.next_try_at is None or row.next_try_at > ctx.now()):
        return None
    runbook = runbook_of(ctx, str(run.get("runbook")))
    tools = ctx.service_tools(service)
    what = capital(failback_words(service, target))
    if not row.moved:
        note = (
            f"{what}: nothing of this incident's to move back; the route was "
            f"already on {target} when it failed over, and the incident that moved it moves it "
            "back."
        )
        _settle(ctx, state, row, FailoverStatus.released, note, "failback.released")
        return note
    if tools is None or tools.failover is None:
        note = f"{what}: not taken, no failover backend configured."
        _settle(ctx, state, row, FailoverStatus.kept, note, "action.not_taken")
        return note
    with session_scope(ctx.engine) as session:
        blocking = [
            f"incident {incident.id} ({incident.title}) still depends on its failover to "
            f"{other.target}"
            if other.incident_id != row.incident_id or not other.moved
            else f"the later failover to {other.target} must move back first"
            for other, incident in blockers(session=session, failover=row)
        ]
        blocking += [
            f"incident {incident.id} ({incident.title}) of {service} is still open"
            for incident in still_breaching(session=session, failover=row)
        ]
    if blocking:
        why = "; ".join(dict.fromkeys(blocking))
        return _hold(ctx, state, row, runbook, "blocked", f"{why}; it stays on {target}")
    pending_approval = False
    if runbook.failback != "auto" and not approved:
        key = action_key(
            cast(IncidentState, run), {"kind": "failback", "target": failover["target"]}
        )
        with session_scope(ctx.engine) as session:
            approval = approval_for(session=session, incident_id=row.incident_id, action_key=key)
            status = approval.status if approval is not None else None
        if status == ApprovalStatus.approved:
            approved = True
        elif status is not None:
            # Pending: the request drives it; decided otherwise: settling the request keeps it.
            _snooze(ctx, row)
            return None
        pending_approval = not approved
    check = _check_primary(ctx, state, row, tools, runbook)
    if check is None:
        note = (
            f"{what}: not taken, nothing can check the primary route (the catalog "
            f"describes no endpoint probe for it); it stays on {target} until someone moves it "
            "back."
        )
        _settle(ctx, state, row, FailoverStatus.kept, note, "action.not_taken")
        return note
    primary = _label(row)
    if check.status != "ok":
        why = f"the primary {primary} failed its known-answer prompts ({check.summary})"
        return _hold(ctx, state, row, runbook, "unhealthy", f"{why}; it stays on {target}")
    if pending_approval:
        approval_id = ask_approval(
            ctx,
            cast(IncidentState, run),
            runbook,
            {"kind": "failback", "target": failover["target"], "status": "needs_approval"},
            approvers_for(ctx, runbook, run.get("service")),
        )
        _snooze(ctx, row)
        return (
            f"The primary {primary} answers its known-answer prompts right. {what}: waits for "
            f"approval (request {approval_id})."
        )
    done, text = restore(ctx, state, failover)
    if not done:
        return _hold(ctx, state, row, runbook, "failed", f"{text} It stays on {target}")
    _settle(ctx, state, row, FailoverStatus.restored, text, None)
    return f"The primary {primary} answers its known-answer prompts right. {text}"


def release_blocked(ctx: RunContext, state: FollowupState) -> None:
    """Once this incident holds no failover of its service any more, wake the held failbacks
    that waited for it."""
    service = state["run"].get("service")
    incident_id = uuid.UUID(state["incident_id"])
    with session_scope(ctx.engine) as session:
        rows = failovers_of(session=session, incident_id=incident_id)
        holding = [f for f in rows if f.status == FailoverStatus.holding]
        if service and rows and not holding:
            wake_held(session=session, service=str(service), now=ctx.now(), exclude=incident_id)


def keep(ctx: RunContext, state: FollowupState, failover: dict[str, Any], note: str) -> None:
    """Leave the route on its failover for a person to move back (a rejected or expired
    failback): nothing tries it again."""
    row = _row(ctx, state, failover)
    if row.status == FailoverStatus.holding:
        with session_scope(ctx.engine) as session:
            settle_failover(
                session=session,
                failover_id=row.id,
                status=FailoverStatus.kept,
                note=note,
                now=ctx.now(),
            )


def _row(ctx: RunContext, state: FollowupState, failover: dict[str, Any]) -> Failover:
    """Return the failover's record; one from before records were kept is recorded now."""
    key = str(failover["idempotency_key"])
    with session_scope(ctx.engine) as session:
        row = failover_by_key(session=session, idempotency_key=key)
        if row is None:
            previous = failover.get("previous")
            row = record_failover(
                session=session,
                incident_id=uuid.UUID(state["incident_id"]),
                service=str(state["run"].get("service")),
                target=str(failover["target"]["name"]),
                idempotency_key=key,
                moved=bool(failover.get("moved", True)),
                primary=previous if isinstance(previous, dict) else None,
                now=ctx.now(),
            )
        session.expunge(row)
        return row


def _check_primary(
    ctx: RunContext, state: FollowupState, row: Failover, tools: Any, runbook: Runbook
) -> ToolResult | None:
    """Send the endpoint's known-answer prompts to the primary route directly; audit it."""
    if tools.route_probe is None:
        return None
    if row.primary is not None:
        probe = tools.route_probe(route_from_json(row.primary))
    else:
        probe = tools.endpoint
    if probe is None:
        return None
    result: ToolResult = probe.probe()
    data = result.audit_data()
    data["summary"] = f"primary {_label(row)} before the failback: {result.summary}"
    record(ctx, state, "failback.checked", data, payload_policy=runbook.payload_policy)
    return result


def _hold(
    ctx: RunContext, state: FollowupState, row: Failover, runbook: Runbook, reason: str, why: str
) -> str | None:
    service = row.service
    minutes = runbook.failback_retry_minutes
    then = (
        f"tried again in {minutes} min and at the next resolution"
        if minutes
        else "tried again at the service's next resolution"
    )
    note = f"{capital(failback_words(service, row.target))}: held, {why}; {then}."
    next_try = ctx.now() + timedelta(minutes=minutes) if minutes else None
    repeated = (row.note or "").startswith(f"{HELD}:{reason}:")
    with session_scope(ctx.engine) as session:
        settle_failover(
            session=session,
            failover_id=row.id,
            status=FailoverStatus.holding,
            note=f"{HELD}:{reason}: {note}",
            now=ctx.now(),
            next_try_at=next_try,
        )
    record(
        ctx,
        state,
        "action.not_taken",
        {
            "summary": note,
            "kind": "failback",
            "reason": reason,
            "idempotency_key": row.idempotency_key,
            "next_try_at": next_try.isoformat() if next_try else None,
        },
    )
    return None if repeated else note


def _snooze(ctx: RunContext, row: Failover) -> None:
    """Stop retrying on a schedule: an approval request decides what happens next."""
    with session_scope(ctx.engine) as session:
        stored = session.get(Failover, row.id)
        if stored is not None and stored.next_try_at is not None:
            stored.next_try_at = None
            session.add(stored)


def _settle(
    ctx: RunContext,
    state: FollowupState,
    row: Failover,
    status: FailoverStatus,
    note: str,
    event: str | None,
) -> None:
    with session_scope(ctx.engine) as session:
        settle_failover(
            session=session, failover_id=row.id, status=status, note=note, now=ctx.now()
        )
    if event is not None:
        record(
            ctx,
            state,
            event,
            {"summary": note, "kind": "failback", "idempotency_key": row.idempotency_key},
        )


def _label(row: Failover) -> str:
    if row.primary is None:
        return "route"
    try:
        return label(route_from_json(row.primary))
    except ValueError:
        return "route"
