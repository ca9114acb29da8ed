"""Prompt rollbacks in Arize: plan, take (once), verify and undo moving a label back a version.

A suspect change is an Arize prompt version when it is of kind `prompt` and names an Arize prompt
version id: `arize_version_id` (or `prompt_version_id`), else its `version` when that is an Arize
id (padded base64 of `PromptVersion:N:x`). The prompt is `arize_prompt_id` (or `prompt_id`) when
the change names it, else read from the version. The version to go back to is the change's
`previous_version` when that is an Arize version id, else the newest version older than the
suspect one (`list_versions`).

`set_labels` REPLACES a version's labels and moves each requested label off the prompt's other
versions (ARIZE.md §4): the rollback sends the target version's own labels plus the label, so the
target keeps what it had (`staging`, …) and only the label moves. Keyed by incident and target
version, the write is made once: a success recorded in the audit trail with its key answers as the
first time did, and a label already on the target (a write that landed before a crash) is not
written again. A label someone moved elsewhere since the breach is left where they put it. A
suspect version that an earlier rollback of the agent's put the label on (Arize reports the agent's
own label moves as prompt changes too) is never rolled back again automatically.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from sqlmodel import col, select

from agent.graph.requests import action_key
from agent.graph.state import IncidentState, RunContext
from agent.store.db import session_scope
from audit.models import AuditEvent
from tools.protocols import PromptRegistry

ACTOR = "agent.act"


def arize_prompt_change(change: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return `{prompt_id, version_id, previous_version}` of a change that is an Arize prompt
    version (prompt_id and previous_version may be None), else None."""
    if not isinstance(change, dict) or change.get("kind") != "prompt":
        return None
    version = _text(change.get("arize_version_id")) or _text(change.get("prompt_version_id"))
    if version is None and is_arize_id(change.get("version"), "PromptVersion"):
        version = str(change["version"])
    if version is None:
        return None
    previous = _text(change.get("previous_version"))
    return {
        "prompt_id": _text(change.get("arize_prompt_id")) or _text(change.get("prompt_id")),
        "version_id": version,
        "previous_version": previous if is_arize_id(previous, "PromptVersion") else None,
    }


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def is_arize_id(value: object, kind: str) -> bool:
    """Tell whether `value` is an Arize id of this kind: padded base64 of `Kind:N:suffix`."""
    if not isinstance(value, str) or not value:
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return decoded.startswith(f"{kind}:")


def plan_rollback(
    ctx: RunContext, state: IncidentState, item: dict[str, Any], label: str
) -> dict[str, Any] | None:
    """Return the rollback_prompt plan item for the diagnosis's suspect change (None when the
    change is not an Arize prompt version: the runbook's `rollback` proposal stands)."""
    change = arize_prompt_change(state["diagnosis"].get("change"))
    if change is None:
        return None
    registry = ctx.tools.prompts
    prompt_id, to_version = change["prompt_id"], change["previous_version"]
    why = None
    own = rolled_back_to(ctx, change["version_id"])
    if own is not None:
        # Arize tells subscribers of every label move, the agent's own included: a rollback
        # recorded as a change is never the suspect that a second rollback undoes.
        why = f"the suspect version is where incident {own}'s prompt rollback put the label"
    if registry is not None and prompt_id is None and why is None:
        found = registry.get_version(change["version_id"])
        prompt_id = found.evidence.get("version", {}).get("prompt_id")
        why = None if prompt_id else f"cannot read the suspect version: {found.error}"
    if registry is not None and to_version is None and prompt_id and why is None:
        to_version, why = _previous(registry, prompt_id, change["version_id"])
    target = {
        "name": f"{label} of prompt {prompt_id or '?'} back to {to_version or '?'}",
        "prompt_id": prompt_id,
        "label": label,
        "from_version": change["version_id"],
        "to_version": to_version,
    }
    planned = {**item, "target": target, "version": to_version}
    if why is not None:
        planned.update(status="impossible", reason=why)
    elif registry is not None and to_version is None:
        planned.update(status="impossible", reason="no earlier version of the prompt to go back to")
    return planned


def _previous(
    registry: PromptRegistry, prompt_id: str, version_id: str
) -> tuple[str | None, str | None]:
    """Return the newest version older than `version_id` (versions are listed newest first)."""
    listed = registry.list_versions(prompt_id)
    if listed.status != "ok":
        return None, f"cannot list the prompt's versions: {listed.error}"
    ids = [str(v.get("id")) for v in listed.evidence.get("versions", [])]
    if version_id not in ids:
        return None, f"version {version_id} is not among the prompt's newest versions"
    older = ids[ids.index(version_id) + 1 :]
    return (older[0], None) if older else (None, "no earlier version of the prompt to go back to")


def rollback_prompt(ctx: RunContext, state: IncidentState, item: dict[str, Any]) -> dict[str, Any]:
    """Move the label to the target version once (merging its labels); never twice per key."""
    target = item["target"]
    key = action_key(state, item)
    label, to_version = target["label"], target["to_version"]
    what = f"move {label} of prompt {target['prompt_id']} back to version {to_version}"
    registry = ctx.tools.prompts
    base = {**item, "idempotency_key": key}
    if registry is None:
        outcome = {**base, "status": "dry_run", "summary": f"dry-run: would {what} (no Arize key)"}
        ctx.record(state, "action.dry_run", ACTOR, outcome)
        return outcome
    earlier = succeeded_before(ctx, state["incident_id"], key)
    if earlier is not None:
        summary = f"{what}: already done by this incident (key {key}); not written again"
        return {**base, **earlier, "status": "done", "repeated": True, "summary": summary}
    ctx.record(
        state,
        "action.started",
        ACTOR,
        {"summary": what, "action": "rollback_prompt", "idempotency_key": key},
    )
    current = registry.version_by_label(target["prompt_id"], label)
    on = current.evidence.get("version", {}).get("id") if current.status == "ok" else None
    if current.status != "ok" and not current.evidence.get("not_found"):
        return _failed(ctx, state, base, what, current.audit_data(), str(current.error))
    if on == to_version:
        written: dict[str, Any] = {"labels_sent": None, "repeated": True}
        note = f"{label} already on {to_version}; not written again"
    elif on not in (None, target["from_version"]):
        why = f"{label} is on version {on} now, not on the suspect {target['from_version']}"
        outcome = {**base, "status": "not_taken", "reason": why, "summary": f"{what}: {why}"}
        ctx.record(state, "action.not_taken", ACTOR, outcome)
        return outcome
    else:
        read = registry.get_version(to_version)
        if read.status != "ok":
            return _failed(ctx, state, base, what, read.audit_data(), str(read.error))
        labels = merged(read.evidence["version"].get("labels", []), label)
        result = registry.set_labels(to_version, labels)
        if result.status != "ok":
            return _failed(ctx, state, base, what, result.audit_data(), str(result.error))
        written = {"labels_sent": labels, "repeated": False}
        note = f"{label} moved to {to_version} with its labels {labels}"
    outcome = {**base, **written, "status": "done", "summary": f"{what}: {note}"}
    ctx.record(state, "action.succeeded", ACTOR, {**outcome, "action": "rollback_prompt"})
    return outcome


def merged(existing: list[str], label: str) -> list[str]:
    """Return a version's labels with `label` added (set_labels replaces the whole list)."""
    return list(dict.fromkeys([*existing, label]))


def _failed(
    ctx: RunContext,
    state: IncidentState,
    base: dict[str, Any],
    what: str,
    data: dict[str, Any],
    error: str,
) -> dict[str, Any]:
    ctx.record(state, "action.failed", ACTOR, {**data, "idempotency_key": base["idempotency_key"]})
    return {**base, "status": "failed", "error": error, "summary": f"{what}: FAILED ({error})"}


def succeeded_before(ctx: RunContext, incident_id: str, key: str) -> dict[str, Any] | None:
    """Return what a success the incident recorded with this key said (None: none recorded)."""
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(AuditEvent.data).where(
                AuditEvent.incident_id == uuid.UUID(incident_id),
                AuditEvent.kind == "action.succeeded",
            )
        ).all()
    for raw in rows:
        data = json.loads(raw) if isinstance(raw, str) else raw
        if isinstance(data, dict) and data.get("idempotency_key") == key:
            return {k: data[k] for k in ("labels_sent",) if k in data}
    return None


def rolled_back_to(ctx: RunContext, version_id: str) -> str | None:
    """Return the incident whose prompt rollback moved a label onto this version (None: none)."""
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(AuditEvent.incident_id, AuditEvent.data).where(
                AuditEvent.kind == "action.succeeded", col(AuditEvent.data).contains(version_id)
            )
        ).all()
    for incident_id, raw in rows:
        data = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(data, dict):
            continue
        target = data.get("target")
        if (
            data.get("action") == "rollback_prompt"
            and isinstance(target, dict)
            and target.get("to_version") == version_id
        ):
            return str(incident_id)
    return None


def verify_rollbacks(ctx: RunContext, state: IncidentState) -> list[dict[str, Any]]:
    """Read each rollback's label back; return one check per prompt rolled back."""
    registry = ctx.tools.prompts
    checks = []
    for action in state.get("actions", []):
        if action.get("kind") != "rollback_prompt" or action.get("status") != "done":
            continue
        target = action["target"]
        if registry is None:
            continue
        read = registry.version_by_label(target["prompt_id"], target["label"])
        on = read.evidence.get("version", {}).get("id") if read.status == "ok" else None
        passed = on == target["to_version"]
        summary = (
            f"{target['label']} of prompt {target['prompt_id']} reads back on "
            f"{on or 'no version'} ({'as rolled back' if passed else 'NOT the rollback target'})"
        )
        if read.status != "ok":
            summary = f"cannot read {target['label']} back: {read.error}"
        checks.append({"status": "passed" if passed else "failed", "summary": summary})
    return checks
