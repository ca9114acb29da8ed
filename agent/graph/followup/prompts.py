"""Undoing a prompt rollback, the way a failover is undone: a failback request at the resolution.

When the incident resolves, each prompt rollback it made is offered for undo: under
`failback: approval` a request asks to move the label back onto the version that was on it
before the rollback (the suspect one). Approved, the label moves back once (keyed by incident and
version, the version's own labels kept, read back after); rejected or expired, the label stays on
the version the incident rolled back to, for a person to move, as a rejected failback keeps a
failover. Under `failback: auto` nothing moves by itself: nothing can check the suspect
version's answers before it returns (undo only onto health), so the label stays and the thread
says so. A label someone moved since the rollback is left where they put it.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from agent.approvals.models import Approval, ApprovalStatus
from agent.approvals.service import approval_for
from agent.graph.followup.effects import done_actions, record
from agent.graph.followup.state import FollowupState
from agent.graph.policy import runbook_of
from agent.graph.prompts import merged, succeeded_before
from agent.graph.requests import action_key, approvers_for, ask_approval
from agent.graph.state import IncidentState, RunContext
from agent.store.db import session_scope


def undo_item(rollback: dict[str, Any]) -> dict[str, Any]:
    """Return the failback item that undoes a prompt rollback (its approval's subject)."""
    target = rollback["target"]
    name = f"{target['label']} of prompt {target['prompt_id']} back to {target['from_version']}"
    return {"kind": "failback", "target": {**target, "name": name}, "status": "needs_approval"}


def rollback_for(state: FollowupState, approval_target: str | None) -> dict[str, Any] | None:
    """Return the run's prompt rollback whose undo this failback request is about."""
    return next(
        (
            r
            for r in done_actions(state, "rollback_prompt")
            if undo_item(r)["target"]["name"] == approval_target
        ),
        None,
    )


def offer_undo(ctx: RunContext, state: FollowupState, rollback: dict[str, Any]) -> str | None:
    """At the resolution: ask to move the label back (once), or say why it stays."""
    run = cast(IncidentState, state["run"])
    runbook = runbook_of(ctx, str(run.get("runbook")))
    target, item = rollback["target"], undo_item(rollback)
    stays = f"{target['label']} of prompt {target['prompt_id']} stays on {target['to_version']}"
    with session_scope(ctx.engine) as session:
        asked = approval_for(
            session=session,
            incident_id=uuid.UUID(state["incident_id"]),
            action_key=action_key(run, item),
        )
    if asked is not None:
        return None
    if runbook.failback == "auto":
        note = (
            f"Prompt rollback not undone: nothing can check version {target['from_version']}'s "
            f"answers before it returns; {stays} until someone moves it back."
        )
        record(ctx, state, "action.not_taken", {"summary": note, "kind": "failback"})
        return note
    approval_id = ask_approval(
        ctx, run, runbook, item, approvers_for(ctx, runbook, run.get("service"))
    )
    return (
        f"Moving {target['label']} of prompt {target['prompt_id']} back to "
        f"{target['from_version']} waits for approval (request {approval_id}); rejected or "
        f"expired, {stays}."
    )


def settle_undo(
    ctx: RunContext, state: FollowupState, approval: Approval, rollback: dict[str, Any]
) -> str:
    """Carry out an approved undo once; a rejected or expired one leaves the label."""
    run = cast(IncidentState, state["run"])
    target, item = rollback["target"], undo_item(rollback)
    label, back_to, on_now = target["label"], target["from_version"], target["to_version"]
    what = f"{label} of prompt {target['prompt_id']} back to {back_to}"
    if approval.status != ApprovalStatus.approved:
        note = f"Moving {what} not taken: {approval.status}; it stays on {on_now}."
        record(ctx, state, "action.not_taken", {"summary": note, "kind": "failback"})
        return note
    registry = ctx.tools.prompts
    key = action_key(run, item)
    if registry is None:
        note = f"dry-run: would move {what} (no Arize key)"
        record(ctx, state, "action.dry_run", {"summary": note, "kind": "failback"})
        return note
    if succeeded_before(ctx, state["incident_id"], key) is not None:
        return f"Moved {what} already."
    record(
        ctx,
        state,
        "action.started",
        {"summary": f"move {what}", "action": "failback", "idempotency_key": key},
    )
    current = registry.version_by_label(target["prompt_id"], label)
    on = current.evidence.get("version", {}).get("id") if current.status == "ok" else None
    if current.status != "ok" and not current.evidence.get("not_found"):
        return _failed(ctx, state, key, what, str(current.error))
    if on not in (back_to, on_now, None):
        note = f"Moving {what} not taken: {label} is on {on} now; left where someone put it."
        record(ctx, state, "action.not_taken", {"summary": note, "kind": "failback"})
        return note
    if on != back_to:
        read = registry.get_version(back_to)
        if read.status != "ok":
            return _failed(ctx, state, key, what, str(read.error))
        labels = merged(read.evidence["version"].get("labels", []), label)
        written = registry.set_labels(back_to, labels)
        if written.status != "ok":
            return _failed(ctx, state, key, what, str(written.error))
    check = registry.version_by_label(target["prompt_id"], label)
    if check.evidence.get("version", {}).get("id") != back_to:
        return _failed(ctx, state, key, what, f"{label} does not read back on {back_to}")
    note = f"Moved {what}: done (read back)."
    data = {"summary": note, "action": "failback", "idempotency_key": key}
    record(ctx, state, "action.succeeded", data)
    return note


def _failed(ctx: RunContext, state: FollowupState, key: str, what: str, error: str) -> str:
    note = f"Moving {what}: FAILED ({error})."
    data = {"summary": note, "action": "failback", "idempotency_key": key, "error": error}
    record(ctx, state, "action.failed", data)
    return note
